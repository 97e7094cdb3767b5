"""The tamper-evident audit log: every entry is chained to the one before by SHA-256.

Entry ``n`` stores ``seq = n``, ``prev_hash`` (the hash of entry ``n - 1``; 64 zeros for the
first) and ``hash = sha256(canonical JSON of [version, seq, prev_hash, at, actor, workspace,
action, target, detail, ip])``. Editing an entry breaks its hash, deleting one leaves a gap in
``seq`` (or, at the end, a head that points past the last entry), inserting one breaks a link.

**Concurrency.** Web requests and workers write entries in many transactions at once, on
PostgreSQL and SQLite. Entries are inserted unchained (``seq`` NULL) by :func:`record` (ORM) or
:func:`insert_many` (one bulk INSERT … RETURNING id, for set-based writers); the session notes
their ids, and a ``before_commit`` listener chains them just before the outermost COMMIT: it
takes the single ``audit_chain`` row with ``UPDATE … RETURNING`` — a row lock on PostgreSQL, the
write lock on SQLite — reads the transaction's entries back in id order, hashes them and updates
them and the head. The head lock is thus the last lock a transaction takes and is held only
through its commit: transactions chain one after another, in commit order, without deadlocking
against the row locks of their own work, and a rolled-back transaction (or savepoint) leaves no
trace in the chain. An entry committed any other way keeps ``seq`` NULL and ``verify`` reports it.

**Retention.** :func:`purge` deletes entries older than a cut-off of at least
:data:`RETENTION_DAYS` days and records the hash of the last deleted entry in the head row as the
anchor, so the rest of the chain still verifies.

**Limits.** A plain hash chain proves that nobody edited the log *without recomputing the
chain*: someone with write access to the database could rewrite every later entry and the head.
``minpan audit verify`` prints the head hash; keep it outside the database (the operations log,
a daily print-out) to detect that too.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, bindparam, delete, event, func, insert, select, update
from sqlalchemy.orm import Session

from app.db import utcnow

GENESIS = "0" * 64
HASH_VERSION = 1
RETENTION_DAYS = 180  # 等保2.0 三级: audit records kept at least six months


def _at(value: datetime) -> str:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")


def _detail(value: Any) -> Any:
    # What the JSON column gives back when read: keys become strings, tuples lists.
    return json.loads(json.dumps(value if value is not None else {}, ensure_ascii=False))


def entry_hash(
    *,
    seq: int,
    prev_hash: str,
    at: datetime,
    actor_id: int | None,
    workspace_id: int | None,
    action: str,
    target: str,
    detail: Any,
    ip: str,
) -> str:
    payload = json.dumps(
        [
            HASH_VERSION,
            seq,
            prev_hash,
            _at(at),
            actor_id,
            workspace_id,
            action,
            target or "",
            _detail(detail),
            ip or "",
        ],
        ensure_ascii=False,
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(payload.encode()).hexdigest()


def _tables() -> tuple[Any, Any]:
    from app.audit.models import AuditChain, AuditEvent

    return AuditChain.__table__, AuditEvent.__table__


def _take_head(conn: Connection) -> tuple[int, str]:
    """Lock the chain head (held until the transaction ends) and return (last_seq, last_hash)."""
    head, _ = _tables()
    stmt = (
        update(head)
        .where(head.c.id == 1)
        .values(last_seq=head.c.last_seq)
        .returning(head.c.last_seq, head.c.last_hash)
    )
    row = conn.execute(stmt).first()
    if row is None:
        # A database without a head (first entry ever, or every table wiped): create it.
        if conn.dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as dialect_insert
        else:
            from sqlalchemy.dialects.sqlite import insert as dialect_insert  # type: ignore[assignment]
        conn.execute(
            dialect_insert(head)
            .values(id=1, last_seq=0, last_hash=GENESIS, anchor_seq=0, anchor_hash=GENESIS)
            .on_conflict_do_nothing()
        )
        row = conn.execute(stmt).one()
    return int(row[0]), str(row[1])


def _set_head(conn: Connection, last_seq: int, last_hash: str) -> None:
    head, _ = _tables()
    conn.execute(update(head).where(head.c.id == 1).values(last_seq=last_seq, last_hash=last_hash))


def _chain_pending(session: Session, ids: list[int]) -> None:
    """Give this transaction's new entries (by id) their place in the chain, under the head lock.

    The hash is computed from the rows as stored (read back), exactly what ``verify`` will read.
    Rows gone with a rolled-back savepoint are simply not found.
    """
    _, events = _tables()
    conn = session.connection()
    rows: list[Any] = []
    for i in range(0, len(ids), 1000):
        rows.extend(
            conn.execute(
                select(
                    events.c.id,
                    events.c.at,
                    events.c.actor_id,
                    events.c.workspace_id,
                    events.c.action,
                    events.c.target,
                    events.c.detail,
                    events.c.ip,
                ).where(events.c.id.in_(ids[i : i + 1000]), events.c.seq.is_(None))
            ).all()
        )
    if not rows:
        return
    rows.sort(key=lambda r: r.id)
    seq, prev = _take_head(conn)
    updates = []
    for r in rows:
        seq += 1
        digest = entry_hash(
            seq=seq,
            prev_hash=prev,
            at=r.at,
            actor_id=r.actor_id,
            workspace_id=r.workspace_id,
            action=r.action,
            target=r.target,
            detail=r.detail,
            ip=r.ip,
        )
        updates.append({"b_id": r.id, "b_seq": seq, "b_prev": prev, "b_hash": digest})
        prev = digest
    conn.execute(
        update(events)
        .where(events.c.id == bindparam("b_id"))
        .values(seq=bindparam("b_seq"), prev_hash=bindparam("b_prev"), hash=bindparam("b_hash")),
        updates,
    )
    _set_head(conn, seq, prev)


_PENDING = "audit_chain_pending"


def _remember(session: Session, ids: Iterable[int]) -> None:
    session.info.setdefault(_PENDING, []).extend(ids)


def insert_many(session: Session, rows: Iterable[Mapping[str, Any]]) -> int:
    """Bulk INSERT of audit entries (dicts of AuditEvent columns), chained at commit like any other.

    For set-based writers such as the deadline sweep; runs in the caller's transaction.
    """
    batch = []
    for r in rows:
        row = dict(r)
        row.setdefault("at", utcnow())
        row["target"] = row.get("target") or ""
        row["ip"] = row.get("ip") or ""
        row["detail"] = row.get("detail") if row.get("detail") is not None else {}
        batch.append(row)
    if not batch:
        return 0
    _, events = _tables()
    ids = session.execute(
        insert(events).returning(events.c.id, sort_by_parameter_order=True), batch
    ).scalars()
    _remember(session, list(ids))
    return len(batch)


@event.listens_for(Session, "after_flush")
def _note_new_events(session: Session, _flush_context: Any) -> None:
    from app.audit.models import AuditEvent

    _remember(session, [obj.id for obj in session.new if isinstance(obj, AuditEvent) and obj.seq is None])


@event.listens_for(Session, "before_commit")
def _chain_at_commit(session: Session) -> None:
    """Chain the transaction's entries as late as possible: the head lock is the last lock the
    transaction takes and is held only for the commit, so it cannot deadlock with the row locks
    the work itself took (counters, the sweep's policy row) and barely serialises writers."""
    if session.in_nested_transaction():
        return  # a savepoint: the outer commit chains
    if not session.info.get(_PENDING):
        session.flush()  # the last changes may add entries
        if not session.info.get(_PENDING):
            return
    session.flush()
    ids = session.info.pop(_PENDING, [])
    if not ids:
        return
    from app.tenants.scope import cross_workspace

    # The entries of a request may belong to several workspaces (workflow effects): read and
    # update them past row-level security, as trusted code.
    with cross_workspace(session):
        _chain_pending(session, ids)


@event.listens_for(Session, "after_transaction_end")
def _forget_at_end(session: Session, transaction: Any) -> None:
    if transaction.parent is None:  # the outermost transaction ended (committed or rolled back)
        session.info.pop(_PENDING, None)


# --- verification ------------------------------------------------------------------------------


@dataclass
class Report:
    checked: int = 0
    first_seq: int = 0
    last_seq: int = 0
    head_hash: str = ""
    anchor_seq: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def verify(session: Session, *, batch: int = 2000) -> Report:
    """Walk the whole chain in ``seq`` order; every problem names the entries concerned.

    Run in a system session (it reads every workspace's entries).
    """
    head_t, events = _tables()
    conn = session.connection()
    head = conn.execute(select(head_t).where(head_t.c.id == 1)).first()
    report = Report()
    anchor_seq = int(head.anchor_seq) if head else 0
    prev = str(head.anchor_hash) if head else GENESIS
    report.anchor_seq = anchor_seq
    expected = anchor_seq + 1
    report.first_seq = expected
    cols = (
        events.c.id,
        events.c.seq,
        events.c.prev_hash,
        events.c.hash,
        events.c.at,
        events.c.actor_id,
        events.c.workspace_id,
        events.c.action,
        events.c.target,
        events.c.detail,
        events.c.ip,
    )
    last_id: int | None = None
    after = anchor_seq
    older = conn.execute(select(func.count()).select_from(events).where(events.c.seq <= anchor_seq)).scalar()
    if older:
        report.problems.append(
            f"{older} entries at or before the purge anchor (seq {anchor_seq}) are still present"
        )
    head_seq, head_hash = (int(head.last_seq), str(head.last_hash)) if head else (0, GENESIS)
    while True:
        rows = conn.execute(
            select(*cols).where(events.c.seq > after).order_by(events.c.seq).limit(batch)
        ).all()
        if not rows:
            # Writers may have committed while we walked: read the head again, and walk on if it
            # moved past what we saw.
            again = conn.execute(
                select(head_t.c.last_seq, head_t.c.last_hash).where(head_t.c.id == 1)
            ).first()
            if again is not None and int(again[0]) != head_seq:
                head_seq, head_hash = int(again[0]), str(again[1])
                if head_seq > after:
                    continue
            break
        for r in rows:
            if r.seq > expected:
                missing = f"seq {expected}" if r.seq == expected + 1 else f"seq {expected}–{r.seq - 1}"
                report.problems.append(f"deleted: {missing} missing before entry id {r.id} (seq {r.seq})")
            elif r.prev_hash != prev:
                report.problems.append(
                    f"broken link: entry id {r.id} (seq {r.seq}) does not follow the entry before it"
                )
            recomputed = entry_hash(
                seq=r.seq,
                prev_hash=r.prev_hash,
                at=r.at,
                actor_id=r.actor_id,
                workspace_id=r.workspace_id,
                action=r.action,
                target=r.target,
                detail=r.detail,
                ip=r.ip,
            )
            if recomputed != r.hash:
                report.problems.append(
                    f"edited: entry id {r.id} (seq {r.seq}, {r.action}) does not match its hash"
                )
            prev = r.hash
            expected = r.seq + 1
            last_id = r.id
            report.checked += 1
        after = rows[-1].seq
    report.last_seq = expected - 1
    report.head_hash = prev
    unchained = list(
        conn.execute(select(events.c.id).where(events.c.seq.is_(None)).order_by(events.c.id)).scalars()
    )
    if unchained:
        shown = ", ".join(str(i) for i in unchained[:20]) + (" …" if len(unchained) > 20 else "")
        report.problems.append(f"inserted: {len(unchained)} entries outside the chain (id {shown})")
    if head is None and not report.checked:
        return report
    if head is None:
        report.problems.append("the chain head (audit_chain) is missing")
    elif head_seq > report.last_seq:
        gone = (
            f"seq {head_seq}" if head_seq == report.last_seq + 1 else f"seq {report.last_seq + 1}–{head_seq}"
        )
        where = f" after entry id {last_id}" if last_id is not None else ""
        report.problems.append(f"deleted: {gone} missing at the end of the chain{where}")
    elif head_seq < report.last_seq:
        report.problems.append(
            f"inserted: entries after seq {head_seq} were written outside the chain"
            f" (up to seq {report.last_seq})"
        )
    elif head_hash != prev:
        report.problems.append(
            f"edited: the last entry (seq {report.last_seq}) does not match the chain head"
        )
    return report


# --- retention ---------------------------------------------------------------------------------


class RetentionRefused(Exception):
    pass


@dataclass(frozen=True)
class Purged:
    deleted: int
    anchor_seq: int


def purge(session: Session, before: datetime, *, now: datetime | None = None) -> Purged:
    """Delete the entries older than ``before`` (at least RETENTION_DAYS old), keep the chain whole.

    Deletes the longest run of the oldest entries whose time is before ``before``; the head row
    keeps the hash of the last one deleted as the anchor of the rest. Refuses a younger cut-off
    and refuses to purge a chain that does not verify (that would destroy the evidence).
    The purge itself is an audit entry. Run in a system session.
    """
    now = now or utcnow()
    if before.tzinfo is None:
        before = before.replace(tzinfo=UTC)
    if before > now - timedelta(days=RETENTION_DAYS):
        latest = _at(now - timedelta(days=RETENTION_DAYS))[:10]
        raise RetentionRefused(
            f"audit entries are kept at least {RETENTION_DAYS} days: the cut-off must be before {latest}"
        )
    report = verify(session)
    if not report.ok:
        raise RetentionRefused(
            "the audit chain does not verify; nothing purged:\n" + "\n".join(report.problems)
        )
    head_t, events = _tables()
    conn = session.connection()
    last_seq, _ = _take_head(conn)
    anchor_seq = int(conn.execute(select(head_t.c.anchor_seq).where(head_t.c.id == 1)).scalar_one())
    keep_from = conn.execute(select(func.min(events.c.seq)).where(events.c.at >= before)).scalar()
    cut = int(keep_from) - 1 if keep_from is not None else last_seq
    if cut <= anchor_seq:
        return Purged(0, anchor_seq)
    anchor_hash = conn.execute(select(events.c.hash).where(events.c.seq == cut)).scalar_one()
    result = conn.execute(delete(events).where(events.c.seq <= cut))
    conn.execute(update(head_t).where(head_t.c.id == 1).values(anchor_seq=cut, anchor_hash=anchor_hash))
    deleted = int(result.rowcount or 0)
    from app.audit.services import record

    record(
        session,
        "audit.purged",
        actor_id=None,
        workspace_id=None,
        target=f"seq<={cut}",
        ip="cli",
        deleted=deleted,
        before=_at(before),
    )
    session.flush()
    return Purged(deleted, cut)
