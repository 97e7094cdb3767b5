"""Background jobs: asked for in a web request, run by a worker, watched with a progress bar.

``submit`` writes the job and an outbox row (channel ``job``) in the request's transaction, so the
job exists if and only if it will be run; after the commit it hands the row to the workers at once
(the relay hands it out again after a lease if that message is lost). The ``deliver`` actor runs it
through ``JobChannel`` with the outbox's exactly-once guarantees; ``run`` itself is idempotent (a
job already done is not run again). Pages never wait on WeasyPrint or on a big ledger.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any, cast

from sqlalchemy import Table, select, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from app.db import system_session, utcnow
from app.errors import InvalidInput, NotFound
from app.jobs.models import Job
from app.notify.services import enqueue_work

log = logging.getLogger("minpan.jobs")
jobs = cast(Table, Job.__table__)


@dataclass(frozen=True)
class Outcome:
    filename: str
    content_type: str
    data: bytes | None = None
    document_id: int | None = None


Progress = Callable[[int, int], None]  # (done, total: 0 when unknown)
Handler = Callable[[Session, dict[str, Any], Progress], Outcome]
HANDLERS: dict[str, Handler] = {}


def handler(kind: str) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        HANDLERS[kind] = fn
        return fn

    return register


def submit(
    db: Session, *, kind: str, title: str, params: dict[str, Any], workspace_id: int, user_id: int | None
) -> Job:
    """Queue a job in ``db``'s transaction; it starts as soon as the transaction commits."""
    if kind not in HANDLERS:
        raise ValueError(f"unknown job kind {kind!r}")
    job = Job(kind=kind, title=title, params=params, workspace_id=workspace_id, requested_by_id=user_id)
    db.add(job)
    db.flush()
    enqueue_work(db, key=f"job:{job.id}", channel="job", recipient=str(job.id), subject=title)
    return job


def get(db: Session, job_id: int, user_id: int) -> Job:
    """A job of the person asking (in their workspace: the tenant filter applies)."""
    job = db.get(Job, job_id)
    if job is None or job.requested_by_id != user_id:
        raise NotFound()
    return job


def result(db: Session, job: Job, me: Any) -> bytes:
    """The job's file for ``me`` (who asked for it); a document carrying contact data is released
    as a document download is (logged; refused to posts that do not see the data)."""
    if job.state != "done":
        raise NotFound()
    if job.document_id is not None:
        from app.documents import services as documents
        from app.tenants.scope import cross_workspace

        with cross_workspace(db):  # the document of a job the person may see
            document = documents.get(db, job.document_id, with_pdf=True)
            if document is None:
                raise NotFound()
            documents.release(db, me, document)
            return documents.pdf_bytes(document)
    db.refresh(job, ["result"])
    return job.result or b""


class _Reporter:
    """Writes progress in its own short transactions, at most twice a second."""

    def __init__(self, job_id: int) -> None:
        self.job_id = job_id
        self.last = 0.0

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        if now - self.last < 0.5:
            return
        self.last = now
        with system_session() as db:
            db.execute(update(jobs).where(jobs.c.id == self.job_id).values(done=done, total=total))


def run(job_id: int) -> None:
    """Run one job (the worker's side). A job already done is left alone; bad parameters fail the
    job with a Chinese message; anything else is re-raised so the outbox retries it."""
    with system_session() as db:
        job = db.get(Job, job_id)
        if job is None or job.state in ("done", "failed"):
            return
        job.state, job.started_at, job.message = "running", utcnow(), ""
        kind, params = job.kind, dict(job.params)
    try:
        outcome = _work(job_id, kind, params)
    except InvalidInput as exc:
        _finish(job_id, state="failed", message=str(exc))
        return
    except Exception:
        _finish(job_id, state="queued", message="生成时出错，系统将自动重试。")
        raise
    _finish(job_id, state="done", outcome=outcome)


STALE_READ_ATTEMPTS = 3


def _work(job_id: int, kind: str, params: dict[str, Any]) -> Outcome:
    """The job's work: its reads (and a document it issues) in one transaction. On SQLite (WAL) a
    transaction that has read cannot write once another connection committed since it began:
    SQLite refuses at once, "database is locked" (SQLITE_BUSY_SNAPSHOT; the busy timeout does not
    apply) — a PDF render beside the notices being delivered. Nothing was written: the work runs
    again in a new transaction, a few times, before the outbox's slower retry takes over."""
    for attempt in range(1, STALE_READ_ATTEMPTS + 1):
        try:
            with system_session() as db:
                return HANDLERS[kind](db, params, _Reporter(job_id))
        except OperationalError as exc:
            if attempt == STALE_READ_ATTEMPTS or "database is locked" not in str(exc.orig):
                raise
            log.info("job %s: another writer committed since it read; running it again", job_id)
    raise AssertionError("unreachable")


def _finish(job_id: int, *, state: str, message: str = "", outcome: Outcome | None = None) -> None:
    values: dict[str, Any] = {"state": state, "message": message}
    if state in ("done", "failed"):
        values["finished_at"] = utcnow()
    if outcome is not None:
        values |= {
            "filename": outcome.filename,
            "content_type": outcome.content_type,
            "result": outcome.data,
            "document_id": outcome.document_id,
        }
    with system_session() as db:
        db.execute(update(jobs).where(jobs.c.id == job_id).values(**values))


# --- the jobs --------------------------------------------------------------------------------------


XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@handler("ledger")
def _ledger(db: Session, params: dict[str, Any], progress: Progress) -> Outcome:
    from app.documents.ledger import build_ledger

    start, end = date.fromisoformat(params["start"]), date.fromisoformat(params["end"])
    data = build_ledger(
        db,
        start=start,
        end=end,
        unit_id=params.get("unit_id"),
        category=params.get("category") or None,
        state=params.get("state") or None,
        progress=lambda rows: progress(rows, 0),
    )
    return Outcome(filename=f"留言办理台账_{start}_{end}.xlsx", content_type=XLSX, data=data)


@handler("case_file")
def _case_file(db: Session, params: dict[str, Any], progress: Progress) -> Outcome:
    from app.cases.models import Case
    from app.documents import services as documents
    from app.tenants.scope import cross_workspace

    with cross_workspace(db):
        case = db.scalar(select(Case).where(Case.id == params["case_id"]))
        if case is None:
            raise InvalidInput("该留言不存在。")
        document = documents.issue_for(db, "case_file", case, actor_id=params.get("user_id"))
        db.flush()
        return Outcome(
            filename=f"归档_{case.source_id}.pdf", content_type="application/pdf", document_id=document.id
        )


@handler("supervision_export")
def _supervision_export(db: Session, params: dict[str, Any], progress: Progress) -> Outcome:
    from app.supervision.exports import build

    filename, data = build(db, params, progress)
    return Outcome(filename=filename, content_type=XLSX, data=data)


@handler("assessment_report")
def _assessment_report(db: Session, params: dict[str, Any], progress: Progress) -> Outcome:
    """第二十一条: the year's assessment for 督查室, as PDF or Excel (app/assessment/services.py)."""
    from app.assessment.services import build_report

    filename, content_type, data = build_report(db, params, progress)
    return Outcome(filename=filename, content_type=content_type, data=data)


@handler("bulletin_pdf")
def _bulletin_pdf(db: Session, params: dict[str, Any], progress: Progress) -> Outcome:
    """通报's PDF (第二十一条), rendered here rather than in the request (app/assessment/bulletins.py)."""
    from app.assessment.bulletins import render_stored

    progress(0, 1)
    filename, data = render_stored(db, int(params["bulletin_id"]))
    return Outcome(filename=filename, content_type="application/pdf", data=data)
