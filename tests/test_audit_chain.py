"""The tamper-evident audit log: hash chain, `minpan audit verify`, retention purge, concurrency."""

from __future__ import annotations

import itertools
import threading
from datetime import timedelta

import pytest
from click.testing import CliRunner
from sqlalchemy import delete, func, select, text

from app.audit.chain import GENESIS, RETENTION_DAYS, RetentionRefused, purge, verify
from app.audit.models import AuditChain, AuditEvent
from app.audit.services import record, record_many
from app.cli import main
from app.db import system_session, utcnow


def _verify() -> list[str]:
    with system_session() as db:
        return verify(db).problems


def _cli(*args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(main, list(args))


def _seqs() -> list[int]:
    with system_session() as db:
        return list(db.scalars(select(AuditEvent.seq).order_by(AuditEvent.seq)))


def _wipe() -> None:
    with system_session() as db:
        db.execute(delete(AuditEvent))
        db.execute(delete(AuditChain))


def test_the_demo_and_sign_ins_leave_an_intact_chain(client) -> None:  # type: ignore[no-untyped-def]
    from tests.helpers import sign_in

    sign_in(client, "horqin.handler")
    sign_in(client, "no.such.person", "Wrong#Password1")
    assert _verify() == []
    seqs = _seqs()
    assert seqs == list(range(1, len(seqs) + 1)) and len(seqs) > 2
    with system_session() as db:
        head = db.get(AuditChain, 1)
        last = db.scalar(select(AuditEvent).order_by(AuditEvent.seq.desc()).limit(1))
        first = db.scalar(select(AuditEvent).order_by(AuditEvent.seq).limit(1))
    assert head is not None and last is not None and first is not None
    assert head.last_seq == last.seq and head.last_hash == last.hash
    assert first.prev_hash == GENESIS
    result = _cli("audit", "verify")
    assert result.exit_code == 0, result.output
    assert "intact" in result.output and head.last_hash in result.output


def test_entries_of_one_transaction_are_chained_in_order(demo) -> None:  # type: ignore[no-untyped-def]
    before = _seqs()[-1]
    with system_session() as db:
        for i in range(3):
            record(db, "test.one", actor_id=None, workspace_id=None, target=f"t{i}", n=i)
        db.flush()
        record(db, "test.one", actor_id=None, workspace_id=None, target="t3", nested={"b": 1, "a": [1, 2]})
    with system_session() as db:
        rows = list(
            db.scalars(select(AuditEvent).where(AuditEvent.action == "test.one").order_by(AuditEvent.seq))
        )
    assert [r.seq for r in rows] == [before + 1, before + 2, before + 3, before + 4]
    assert [r.target for r in rows] == ["t0", "t1", "t2", "t3"]
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(rows))
    assert _verify() == []


def test_a_rolled_back_savepoint_takes_its_entries_out_of_the_chain(demo) -> None:  # type: ignore[no-untyped-def]
    with system_session() as db:
        record(db, "test.kept", actor_id=None, workspace_id=None)
        nested = db.begin_nested()
        record(db, "test.dropped", actor_id=None, workspace_id=None)
        db.flush()
        nested.rollback()
        record(db, "test.kept", actor_id=None, workspace_id=None)
    assert _verify() == []
    seqs = _seqs()
    assert seqs == list(range(1, len(seqs) + 1))


def test_bulk_insert_is_chained(demo) -> None:  # type: ignore[no-untyped-def]
    now = utcnow()
    with system_session() as db:
        n = record_many(
            db,
            [
                {
                    "at": now,
                    "actor_id": None,
                    "workspace_id": None,
                    "action": "test.bulk",
                    "target": f"a:{i}",
                    "detail": {"number": f"催办〔2026〕{i}号"},
                    "ip": "",
                }
                for i in range(500)
            ],
        )
    assert n == 500
    assert _verify() == []
    with system_session() as db:
        assert db.scalar(select(func.count()).where(AuditEvent.action == "test.bulk")) == 500


def test_an_edited_entry_is_found_and_named(demo) -> None:  # type: ignore[no-untyped-def]
    with system_session() as db:
        victim = db.scalar(select(AuditEvent).where(AuditEvent.seq == 3).limit(1))
        assert victim is not None
        victim_id, victim_seq = victim.id, victim.seq
        # Straight SQL, as someone with database access would do it.
        db.execute(text("UPDATE audit_events SET target = 'someone.else' WHERE id = :id"), {"id": victim_id})
    problems = _verify()
    assert len(problems) == 1
    assert f"entry id {victim_id} (seq {victim_seq}" in problems[0] and "edited" in problems[0]
    result = _cli("audit", "verify")
    assert result.exit_code == 1
    assert f"entry id {victim_id}" in result.output


def test_an_edited_detail_is_found(demo) -> None:  # type: ignore[no-untyped-def]
    with system_session() as db:
        record(db, "test.detail", actor_id=None, workspace_id=None, role="principal")
    with system_session() as db:
        event = db.scalar(select(AuditEvent).where(AuditEvent.action == "test.detail"))
        assert event is not None
        event.detail = {"role": "handler"}
    assert any("edited" in p and f"seq {event.seq}" in p for p in _verify())


def test_a_deleted_entry_is_found_and_named(demo) -> None:  # type: ignore[no-untyped-def]
    seqs = _seqs()
    middle = seqs[len(seqs) // 2]
    with system_session() as db:
        db.execute(text("DELETE FROM audit_events WHERE seq = :s"), {"s": middle})
    problems = _verify()
    assert len(problems) == 1 and f"seq {middle} missing" in problems[0] and "deleted" in problems[0]
    assert _cli("audit", "verify").exit_code == 1


def test_deleting_the_newest_entries_is_found(demo) -> None:  # type: ignore[no-untyped-def]
    last = _seqs()[-1]
    with system_session() as db:
        db.execute(text("DELETE FROM audit_events WHERE seq >= :s"), {"s": last - 1})
    problems = _verify()
    assert len(problems) == 1 and f"seq {last - 1}–{last} missing at the end" in problems[0]


def test_a_forged_entry_is_found(demo) -> None:  # type: ignore[no-untyped-def]
    with system_session() as db:
        last = db.scalar(select(AuditEvent).order_by(AuditEvent.seq.desc()).limit(1))
        assert last is not None
        # Insert an entry between two real ones: a made-up seq and hash.
        db.execute(
            text("UPDATE audit_events SET seq = seq + 1000000 WHERE seq = :s"),
            {"s": last.seq},
        )
    assert _verify()


def test_chain_stays_consistent_under_concurrent_writers(demo) -> None:  # type: ignore[no-untyped-def]
    errors: list[BaseException] = []

    def writer(k: int) -> None:
        try:
            for i in range(8):
                with system_session() as db:
                    record(db, "test.concurrent", actor_id=None, workspace_id=None, target=f"{k}:{i}")
                    record(db, "test.concurrent", actor_id=None, workspace_id=None, target=f"{k}:{i}b")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert _verify() == []
    seqs = _seqs()
    assert seqs == list(range(1, len(seqs) + 1))
    with system_session() as db:
        assert db.scalar(select(func.count()).where(AuditEvent.action == "test.concurrent")) == 96


def test_purge_refuses_entries_younger_than_180_days(demo) -> None:  # type: ignore[no-untyped-def]
    count = len(_seqs())
    with system_session() as db, pytest.raises(RetentionRefused):
        purge(db, utcnow() - timedelta(days=RETENTION_DAYS - 1))
    result = _cli("audit", "purge", "--older-than-days", "179")
    assert result.exit_code != 0 and "180" in result.output
    assert len(_seqs()) == count


def test_purge_deletes_only_old_entries_and_the_chain_still_verifies(demo) -> None:  # type: ignore[no-untyped-def]
    _wipe()
    old = utcnow() - timedelta(days=RETENTION_DAYS + 20)
    with system_session() as db:
        record_many(
            db,
            [
                {
                    "at": old + timedelta(minutes=i),
                    "actor_id": None,
                    "workspace_id": None,
                    "action": "test.old",
                }
                for i in range(5)
            ],
        )
        record(db, "test.recent", actor_id=None, workspace_id=None)
    assert _verify() == []
    result = _cli("audit", "purge", "--older-than-days", "180")
    assert result.exit_code == 0, result.output
    assert "5 entries" in result.output
    with system_session() as db:
        actions = list(db.scalars(select(AuditEvent.action).order_by(AuditEvent.seq)))
        head = db.get(AuditChain, 1)
    assert actions == ["test.recent", "audit.purged"]
    assert head is not None and head.anchor_seq == 5
    assert _verify() == []
    assert _cli("audit", "verify").exit_code == 0
    # Nothing more to purge; still intact.
    assert "0 entries" in _cli("audit", "purge", "--older-than-days", "180").output
    # Deleting the first entry kept after the anchor is still found.
    with system_session() as db:
        db.execute(text("DELETE FROM audit_events WHERE seq = 6"))
    assert any("seq 6 missing" in p for p in _verify())


def test_purge_refuses_a_broken_chain(demo) -> None:  # type: ignore[no-untyped-def]
    _wipe()
    old = utcnow() - timedelta(days=RETENTION_DAYS + 20)
    with system_session() as db:
        record_many(
            db,
            [{"at": old, "actor_id": None, "workspace_id": None, "action": "test.old"} for _ in range(3)],
        )
        record(db, "test.recent", actor_id=None, workspace_id=None)
    with system_session() as db:
        db.execute(text("UPDATE audit_events SET target = 'x' WHERE seq = 2"))
    with system_session() as db, pytest.raises(RetentionRefused, match="does not verify"):
        purge(db, utcnow() - timedelta(days=RETENTION_DAYS))
    assert len(_seqs()) == 4


def test_an_entry_inserted_outside_the_chain_is_found(demo) -> None:  # type: ignore[no-untyped-def]
    with system_session() as db:
        db.execute(
            text(
                "INSERT INTO audit_events (at, actor_id, workspace_id, action, target, detail, ip)"
                " VALUES (:at, NULL, NULL, 'auth.sign_in', 'ghost', '{}', '')"
            ),
            {"at": utcnow().replace(tzinfo=None)},
        )
    problems = _verify()
    assert len(problems) == 1 and "outside the chain" in problems[0]
    # The next ordinary entry does not launder it into the chain.
    with system_session() as db:
        record(db, "test.after", actor_id=None, workspace_id=None)
    assert any("outside the chain" in p for p in _verify())
