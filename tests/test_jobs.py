"""Ledgers and case files are built by a worker while the page shows progress (第十六条)."""

from __future__ import annotations

import io
from datetime import timedelta

import openpyxl
from sqlalchemy import select

from app.db import system_session, utcnow
from app.jobs.models import Job
from tests.conftest import IS_POSTGRES
from tests.helpers import post, sign_in


def _ledger(client, **values: str):  # type: ignore[no-untyped-def]
    return post(
        client,
        "/ledger",
        {"start": "2026-01-01", "end": "2026-12-31", "unit": "", "category": "", "state": ""} | values,
    )


def test_the_centre_asks_for_a_ledger_and_downloads_it_when_the_worker_is_done(make_client, worker) -> None:  # type: ignore[no-untyped-def]
    clerk = make_client()
    sign_in(clerk, "zx.clerk")
    form = clerk.get("/ledger")
    assert form.status_code == 200 and "生成台账" in form.text and "科尔沁区人民政府" in form.text
    for bad, message in (
        ({"start": "2026-13-01"}, "请按 年-月-日 填写起止日期"),
        ({"start": "2026-12-31", "end": "2026-01-01"}, "开始日期不能晚于结束日期"),
        ({"unit": "99999"}, "请选择承办单位"),
        ({"category": "nonsense"}, "没有这个类别"),
    ):
        response = _ledger(clerk, **bad)
        assert response.status_code == 422 and message in response.text, bad
    with system_session() as db:
        assert db.scalar(select(Job)) is None  # nothing half-queued
    response = _ledger(clerk)
    assert response.status_code == 303
    job_url = response.headers["location"]
    waiting = clerk.get(job_url, headers={"HX-Request": "true"})
    assert 'hx-trigger="every 1s"' in waiting.text  # polls itself while queued or running
    assert "排队中" in waiting.text or "正在生成" in waiting.text
    worker()
    done = clerk.get(job_url).text
    assert "已完成" in done and "下载" in done and "hx-trigger" not in done
    download = clerk.get(job_url + "/download")
    assert download.status_code == 200
    assert "attachment" in download.headers["content-disposition"]
    book = openpyxl.load_workbook(io.BytesIO(download.content), read_only=True)
    rows = list(book["台账"].iter_rows(min_row=3, values_only=True))
    titles = {row[2] for row in rows}
    assert "明仁小区供暖温度不达标" in titles
    # Another member of the centre, a unit, the supervision office: not theirs.
    for username in ("zx.reviewer", "horqin.handler", "dc.supervisor"):
        other = make_client()
        sign_in(other, username)
        assert other.get(job_url).status_code in (403, 404), username
        assert other.get(job_url + "/download").status_code in (403, 404), username
    # A job not finished has nothing to download.
    with system_session() as db:
        job = db.scalar(select(Job))
        assert job is not None
        waiting_job = Job(
            kind="ledger",
            title="未完成",
            params={},
            workspace_id=job.workspace_id,
            requested_by_id=job.requested_by_id,
        )
        db.add(waiting_job)
        db.flush()
        waiting_id = waiting_job.id
    assert clerk.get(f"/jobs/{waiting_id}/download").status_code == 404
    assert "排队中" in clerk.get(f"/jobs/{waiting_id}").text
    unit = make_client()
    sign_in(unit, "horqin.handler")
    assert unit.get("/ledger").status_code == 403
    assert _ledger(unit).status_code == 403


def test_a_job_queued_while_the_broker_is_down_runs_once_the_relay_hands_it_out(
    make_client, worker, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    import tasks.actors
    from app.notify.relay import relay

    clerk = make_client()
    sign_in(clerk, "zx.clerk")

    def broker_down(*args: object) -> None:
        raise ConnectionError("broker unreachable")

    with monkeypatch.context() as patch:
        patch.setattr(tasks.actors.deliver, "send", broker_down)
        response = _ledger(clerk)
    assert response.status_code == 303  # the request still succeeds: the job is committed
    job_url = response.headers["location"]
    worker()
    with system_session() as db:
        assert db.scalar(select(Job.state)) == "queued"
    assert relay(now=utcnow() + timedelta(minutes=5)) == 1  # after the lease
    worker()
    assert "已完成" in clerk.get(job_url).text
    assert relay(now=utcnow() + timedelta(minutes=10)) == 0  # done: never again


def test_a_case_file_is_one_pdf_built_in_the_background(make_client, worker) -> None:  # type: ignore[no-untyped-def]
    from app.cases.models import Case

    with system_session() as db:
        case_id = db.scalar(select(Case.id).where(Case.source_id == "TL-2026-110301"))
    clerk = make_client()
    sign_in(clerk, "zx.clerk")
    response = post(clerk, f"/cases/{case_id}/case-file")
    assert response.status_code == 303
    worker()
    pdf = clerk.get(response.headers["location"] + "/download")
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    assert pdf.headers["content-type"].startswith("application/pdf")
    # A unit cannot build the centre's case file.
    unit = make_client()
    sign_in(unit, "horqin.principal")
    assert post(unit, f"/cases/{case_id}/case-file").status_code in (403, 404)


def test_work_is_handed_to_the_workers_at_the_commit_not_at_a_savepoints_release(demo, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """A form's write runs in a savepoint (``attempt``); SQLAlchemy reports its release as a
    commit too. Kicked then, a worker looked for the job before it was committed, found nothing
    and dropped the message: the job waited for the relay (a ledger test failed under load)."""
    from app.notify import services as notify
    from app.notify.models import OutboxMessage

    kicked: list[tuple[int, bool]] = []

    def kick(outbox_id: int) -> None:
        with system_session() as other:  # what a worker would see now
            kicked.append((outbox_id, other.get(OutboxMessage, outbox_id) is not None))

    monkeypatch.setattr(notify, "_kick", kick)
    with system_session() as db:
        with db.begin_nested():
            notify.enqueue_work(db, key="job:savepoint", channel="job", recipient="0")
        assert kicked == []  # the savepoint is released, the transaction is not committed
        with db.begin_nested():
            db.execute(select(1))
        assert kicked == []
    assert len(kicked) == 1 and kicked[0][1], kicked  # after the commit, and the row is there

    with system_session() as db:  # a rolled-back transaction hands nothing out
        db.begin_nested()
        notify.enqueue_work(db, key="job:rolled-back", channel="job", recipient="0")
        db.rollback()
        db.execute(select(1))
    assert len(kicked) == 1, kicked


def test_a_job_that_read_before_another_writer_committed_is_run_again_not_failed(demo, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """On SQLite (WAL) a transaction that has read cannot write once another connection committed
    since it began: SQLite refuses at once with "database is locked" (no busy wait). A bulletin's
    PDF render hit it on the embedded default's first start (the demo's notices delivered beside
    it) and waited for the outbox's next attempt. The job is run again in a new transaction."""
    from sqlalchemy import update

    from app.jobs import services as jobs
    from app.jobs.services import Outcome
    from app.tenants.models import Workspace

    calls: list[int] = []

    def probe(db, params, progress) -> Outcome:  # type: ignore[no-untyped-def]
        calls.append(len(calls) + 1)
        db.scalar(select(Job.state).where(Job.id == params["job"]))  # the transaction reads first
        if len(calls) == 1:
            with system_session() as other:  # another writer commits meanwhile
                other.execute(update(Workspace).where(Workspace.id == params["unit"]).values(address="x"))
        db.execute(update(Workspace).where(Workspace.id == params["unit"]).values(address="通辽市"))
        return Outcome(filename="probe.txt", content_type="text/plain", data=b"ok")

    monkeypatch.setitem(jobs.HANDLERS, "probe", probe)
    with system_session() as db:
        unit = db.scalars(select(Workspace.id).order_by(Workspace.id)).first()
        assert unit is not None
        job = jobs.submit(
            db, kind="probe", title="probe", params={"unit": unit}, workspace_id=unit, user_id=None
        )
        db.flush()
        job.params = {"unit": unit, "job": job.id}
        job_id = job.id
    jobs.run(job_id)
    with system_session() as db:
        state, message, result = db.execute(
            select(Job.state, Job.message, Job.result).where(Job.id == job_id)
        ).one()
        address = db.get_one(Workspace, unit).address
    assert state == "done" and result == b"ok", message
    assert address == "通辽市"
    assert calls == ([1, 2] if not IS_POSTGRES else [1])  # PostgreSQL (READ COMMITTED) writes at once
