"""通报 (第二十一条: 定期将有关情况报市政府在全市范围内进行通报): a bulletin per month (or quarter).

A daily job (``tasks.actors.generate_bulletins``) makes the previous month's bulletin as a draft
if it does not exist yet — idempotent: the period is unique. The draft holds its figures as JSON
(so it reads the same tomorrow) and a PDF marked 送审稿; the centre admin reviews it on screen and
issues it, which renders the final PDF and is audited. Units see issued bulletins only.
"""

from __future__ import annotations

import calendar as month_calendar
import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, and_, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.accounts.identity import CurrentUser
from app.assessment.models import Bulletin
from app.assessment.rules import Window, rule_query, signed_day
from app.assessment.services import UNIT_KINDS, today
from app.audit.services import record
from app.cases.models import Assignment
from app.cases.vocab import QUALITY_FLAGS
from app.errors import Conflict, InvalidInput, NotFound
from app.escalation.models import Escalation
from app.escalation.services import RUNG_TITLES
from app.permissions import Permission
from app.tenants.models import Workspace
from app.tenants.scope import cross_workspace

LIST_LIMIT = 50
EXAMPLES = 5
_PERIOD = re.compile(r"^(\d{4})-(0[1-9]|1[0-2]|Q[1-4])$")


def span(period: str) -> tuple[str, date, date]:
    """("month" | "quarter", first day, last day) of "2026-10" or "2026-Q3"; ``InvalidInput`` else."""
    match = _PERIOD.match(period.strip())
    if not match:
        raise InvalidInput("期间请写成 2026-10（月度）或 2026-Q3（季度）。", field="period")
    year, part = int(match.group(1)), match.group(2)
    if part.startswith("Q"):
        first_month, kind, months = (int(part[1]) - 1) * 3 + 1, "quarter", 3
    else:
        first_month, kind, months = int(part), "month", 1
    last_month = first_month + months - 1
    end = date(year, last_month, month_calendar.monthrange(year, last_month)[1])
    return kind, date(year, first_month, 1), end


def title_of(b: Bulletin) -> str:
    year, part = b.period.split("-")
    what = f"第{part[1]}季度" if part.startswith("Q") else f"{int(part)}月份"
    return f"关于{year}年{what}人民网地方领导留言板留言办理情况的通报"


# --- the figures ------------------------------------------------------------------------------------


def _unit_names(db: Session) -> dict[int, str]:
    return dict(db.execute(select(Workspace.id, Workspace.name).where(Workspace.kind.in_(UNIT_KINDS))).all())


def _iso(value: Any) -> str:
    if isinstance(value, datetime):
        from app.workflows.deadlines import local_date

        return local_date(value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat()
    return str(value)[:10]


def _rankings(db: Session, w: Window, names: dict[int, str]) -> list[dict[str, Any]]:
    a, dialect = Assignment, db.get_bind().dialect.name
    in_period = and_(a.is_lead, a.due_date >= w.first, a.due_date <= w.last, a.state != "returned")
    on_time = and_(a.signed_at.is_not(None), signed_day(dialect) <= a.due_date)
    due = dict(
        db.execute(select(a.workspace_id, func.count()).where(in_period).group_by(a.workspace_id)).all()
    )
    timely = dict(
        db.execute(
            select(a.workspace_id, func.count()).where(in_period, on_time).group_by(a.workspace_id)
        ).all()
    )
    overdue_q = rule_query("overdue", w, dialect)
    assert overdue_q is not None
    sub = overdue_q.subquery()
    late: dict[int, int] = dict(db.execute(select(sub.c[0], func.count()).group_by(sub.c[0])).all())
    e = Escalation
    escalated = dict(
        db.execute(
            select(e.workspace_id, func.count(func.distinct(e.assignment_id)))
            .where(
                e.rung.in_(("urge", "supervise", "transfer")), e.issued_on >= w.first, e.issued_on <= w.last
            )
            .group_by(e.workspace_id)
        ).all()
    )
    rows: list[dict[str, Any]] = []
    for unit_id in set(due) | set(escalated) | set(late):
        if unit_id not in names:
            continue
        n, ok = int(due.get(unit_id, 0)), int(timely.get(unit_id, 0))
        rows.append(
            {
                "unit": names[unit_id],
                "due": n,
                "on_time": ok,
                "rate": round(ok * 100 / n, 1) if n else None,
                "overdue": int(late.get(unit_id, 0)),
                "escalated": int(escalated.get(unit_id, 0)),
            }
        )
    rows.sort(key=lambda r: (-(r["rate"] if r["rate"] is not None else -1.0), r["overdue"], r["unit"]))
    for i, r in enumerate(rows):
        r["rank"] = i + 1
    return rows


def _rule_rows(db: Session, key: str, w: Window, names: dict[int, str]) -> list[dict[str, Any]]:
    query = rule_query(key, w, db.get_bind().dialect.name)
    if query is None:
        return []
    sub = query.subquery()
    rows = db.execute(select(*sub.c).order_by(sub.c[5], sub.c[1]).limit(LIST_LIMIT)).all()
    return [
        {"unit": names.get(r[0], ""), "sheet": r[3] or "", "title": r[4], "day": _iso(r[5]), "note": r[6]}
        for r in rows
    ]


def _escalations(db: Session, w: Window, names: dict[int, str]) -> list[dict[str, Any]]:
    e, a = Escalation, Assignment
    rows = db.execute(
        select(e.workspace_id, a.sheet_number, a.title, e.rung, e.number, e.issued_on)
        .join(a, a.id == e.assignment_id)
        .where(e.rung.in_(("urge", "supervise", "transfer")), e.issued_on >= w.first, e.issued_on <= w.last)
        .order_by(e.issued_on, e.id)
        .limit(LIST_LIMIT)
    ).all()
    return [
        {
            "unit": names.get(u, ""),
            "sheet": s,
            "title": t,
            "rung": RUNG_TITLES[r],
            "number": n,
            "day": _iso(d),
        }
        for u, s, t, r, n, d in rows
    ]


def _fastest(db: Session, w: Window, names: dict[int, str]) -> list[dict[str, Any]]:
    """Good examples: the lead replies signed in the period soonest after dispatch, on time."""
    a = Assignment
    start, end = w.moments()
    rows = db.execute(
        select(a.workspace_id, a.sheet_number, a.title, a.dispatched_at, a.signed_at, a.due_date)
        .where(a.is_lead, a.signed_at >= start, a.signed_at < end)
        .limit(5000)
    ).all()
    timely = [r for r in rows if r[3] and r[4] and date.fromisoformat(_iso(r[4])) <= r[5]]
    timely.sort(key=lambda r: r[4] - r[3])  # type: ignore[operator]
    return [
        {
            "unit": names.get(r[0], ""),
            "sheet": r[1],
            "title": r[2],
            "hours": round((r[4] - r[3]).total_seconds() / 3600, 1),  # type: ignore[operator]
            "day": _iso(r[4]),
        }
        for r in timely[:EXAMPLES]
    ]


def build_content(db: Session, first: date, last: date, *, on: date | None = None) -> dict[str, Any]:
    """The bulletin's figures for [first, last], as plain JSON (read across every unit)."""
    w = Window(first.year, on or today(), first, last)
    with cross_workspace(db):
        names = _unit_names(db)
        quality = _rule_rows(db, "quality", w, names)
        for row in quality:
            row["note"] = QUALITY_FLAGS.get(str(row["note"] or ""), "")
        overdue = _rule_rows(db, "overdue", w, names)
        for row in overdue:
            row["note"] = f"{_iso(row['note'])} 答复" if row["note"] else "尚未答复"
        rankings = _rankings(db, w, names)
        return {
            "first": first.isoformat(),
            "last": last.isoformat(),
            "as_of": w.today.isoformat(),
            "totals": {
                "due": sum(r["due"] for r in rankings),
                "on_time": sum(r["on_time"] for r in rankings),
                "overdue": sum(r["overdue"] for r in rankings),
                "escalated": sum(r["escalated"] for r in rankings),
            },
            "rankings": rankings,
            "overdue": overdue,
            "escalated": _escalations(db, w, names),
            "good": _fastest(db, w, names),
            "poor": quality[: EXAMPLES * 2],
            "invalid_returns": _rule_rows(db, "invalid_return", w, names)[: EXAMPLES * 2],
        }


# --- making, reading and issuing -------------------------------------------------------------------


def render(b: Bulletin) -> bytes:
    from app.documents.render import render_pdf

    return render_pdf(
        "documents/bulletin.html", doc={"title": title_of(b), "number": b.period}, b=b, c=b.content
    )


def _queue_pdf(db: Session, b: Bulletin, *, user_id: int | None, workspace_id: int | None) -> None:
    """Have a worker render the PDF of the bulletin as it now stands (a job through the outbox, in
    this transaction: pages never render). The old PDF is dropped: it no longer says what the
    bulletin says (送审稿 → issued)."""
    from app.jobs import services as jobs
    from app.tenants.models import WorkspaceKind

    b.pdf, b.pdf_sha256 = None, ""
    db.flush()
    if workspace_id is None:  # the daily job: the centre's
        with cross_workspace(db):
            workspace_id = db.scalar(select(Workspace.id).where(Workspace.kind == WorkspaceKind.CENTRE.value))
    assert workspace_id is not None
    job = jobs.submit(
        db,
        kind="bulletin_pdf",
        title=f"{title_of(b)}（PDF{'' if b.state == 'issued' else '，送审稿'}）",
        params={"bulletin_id": b.id, "state": b.state},
        workspace_id=workspace_id,
        user_id=user_id,
    )
    b.pdf_job_id = job.id


def filename_of(b: Bulletin) -> str:
    return f"通报_{b.period}{'' if b.state == 'issued' else '_送审稿'}.pdf"


def render_stored(db: Session, bulletin_id: int) -> tuple[str, bytes]:
    """The worker's side (job ``bulletin_pdf``): render the bulletin as it stands and store the PDF,
    unless it changed meanwhile (issued while a draft rendered: the issue's own job renders it)."""
    b = db.get(Bulletin, bulletin_id)
    if b is None:
        raise InvalidInput("该期通报不存在。")
    state = b.state
    data = render(b)
    table = cast(Table, Bulletin.__table__)
    db.execute(
        table.update()
        .where(table.c.id == bulletin_id, table.c.state == state)
        .values(pdf=data, pdf_sha256=hashlib.sha256(data).hexdigest())
    )
    return filename_of(b), data


def generate(
    db: Session,
    period: str,
    *,
    on: date | None = None,
    user_id: int | None = None,
    workspace_id: int | None = None,
) -> Bulletin:
    """Make the period's bulletin as a draft, its PDF queued; ``Conflict`` if it exists (the period
    is unique)."""
    kind, first, last = span(period)
    if last >= (on or today()):
        raise InvalidInput("只能为已经结束的月份或季度生成通报。", field="period")
    if db.scalar(select(Bulletin.id).where(Bulletin.period == period)) is not None:
        raise Conflict("该期通报已经生成。")
    b = Bulletin(
        period=period, kind=kind, start=first, end=last, content=build_content(db, first, last, on=on)
    )
    try:
        with db.begin_nested():
            db.add(b)
    except IntegrityError:  # another process made it a moment ago
        raise Conflict("该期通报已经生成。") from None
    _queue_pdf(db, b, user_id=user_id, workspace_id=workspace_id)
    return b


def previous_month(on: date) -> str:
    last = on.replace(day=1) - timedelta(days=1)
    return f"{last.year}-{last.month:02d}"


def ensure_monthly(db: Session, on: date | None = None) -> Bulletin | None:
    """The periodic job: the previous month's bulletin, made once (None if it was there already)."""
    try:
        return generate(db, previous_month(on or today()), on=on)
    except Conflict:
        return None


def listing(db: Session, me: CurrentUser) -> list[Bulletin]:
    query = select(Bulletin).order_by(Bulletin.start.desc(), Bulletin.kind)
    if not can_see_drafts(me):
        query = query.where(Bulletin.state == "issued")
    return list(db.scalars(query))


def can_see_drafts(me: CurrentUser) -> bool:
    return me.can(Permission.BULLETIN_ISSUE) or me.can(Permission.ASSESSMENT_VIEW)


def get(db: Session, bulletin_id: int, me: CurrentUser) -> Bulletin:
    """A bulletin the person may read: a draft only for the centre and the office (else 404)."""
    b = db.get(Bulletin, bulletin_id)
    if b is None or (b.state != "issued" and not can_see_drafts(me)):
        raise NotFound()
    return b


def issue(db: Session, b: Bulletin, me: CurrentUser) -> None:
    """签发: a draft becomes the issued bulletin (final PDF), once; audited."""
    if b.state != "draft":
        raise Conflict("该期通报已经签发。")
    b.state, b.issued_at = "issued", datetime.now(UTC)
    b.issued_by_id, b.issued_by_name = me.user_id, me.display_name
    _queue_pdf(db, b, user_id=me.user_id, workspace_id=me.workspace_id)
    record(
        db,
        "bulletin.issued",
        actor_id=me.user_id,
        workspace_id=me.workspace_id,
        target=f"bulletin:{b.id}",
        period=b.period,
    )


@dataclass(frozen=True)
class PdfStatus:
    """Where the bulletin's PDF stands, for the page (which polls while it is being made)."""

    ready: bool
    state: str  # queued | running | done | failed (the rendering job's), or done when ready
    message: str = ""


def pdf_status(db: Session, b: Bulletin) -> PdfStatus:
    if b.pdf_sha256:
        return PdfStatus(True, "done")
    from app.jobs.models import Job

    with cross_workspace(db):  # the job is the centre's; its state is all that is read
        job = db.get(Job, b.pdf_job_id) if b.pdf_job_id else None
    if job is None:
        return PdfStatus(False, "failed", "PDF 尚未生成。")
    state = "running" if job.state == "done" else job.state  # done but not stored: superseded
    return PdfStatus(False, state, job.message)


def pdf(db: Session, b: Bulletin) -> bytes:
    db.refresh(b, ["pdf"])
    if not b.pdf_sha256:
        raise Conflict("通报 PDF 正在生成，请稍后再下载。")
    if not b.pdf or hashlib.sha256(b.pdf).hexdigest() != b.pdf_sha256:
        raise NotFound()
    return b.pdf
