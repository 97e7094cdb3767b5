"""What a transition does besides changing the state. Called only by the engine.

Effects that reach into another workspace (issuing the 承办单 to units, delivering the signed reply
to the centre, the centre's decisions on a unit's return or extension) are the documents that
cross between workspaces; they do so here, explicitly, inside ``cross_workspace``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.accounts.models import User
from app.cases.models import Assignment, Case, Counter
from app.tenants.models import Workspace, WorkspaceKind
from app.tenants.scope import cross_workspace
from app.workflows.deadlines import REPLY_WORKING_DAYS, add_working_days, local_date

if TYPE_CHECKING:
    from app.workflows.engine import Step

SHEET_SERIES = "通留"


def _text(step: Step, key: str) -> str:
    return str(step.payload.get(key, "") or "").strip()


def _ids(value: Any) -> list[int]:
    if value in (None, ""):
        return []
    items = value if isinstance(value, list | tuple) else [value]
    out = []
    for item in items:
        try:
            out.append(int(item))
        except (TypeError, ValueError):
            out.append(-1)
    return out


# --- numbering ------------------------------------------------------------------------------------


def number_in_series(db: Session, series: str, year: int) -> str:
    """The next number of a yearly series, e.g. 通留〔2026〕123号 (no gaps, no duplicates)."""
    return allocate_numbers(db, series, year, 1)[0]


def numbering(series: str, year: int, n: int) -> str:
    """通留〔2026〕123号"""
    return f"{series}〔{year}〕{n}号"


def locked_counter(db: Session, series: str, year: int) -> Counter:
    """The counter row of a yearly series (made if missing), locked until the transaction ends:
    nobody else numbers in the series meanwhile, so the caller's numbers have no gaps."""
    row = db.scalar(select(Counter).where(Counter.series == series, Counter.year == year).with_for_update())
    if row is None:
        try:
            with db.begin_nested():
                row = Counter(series=series, year=year, value=0)
                db.add(row)
        except IntegrityError:
            row = db.scalar(
                select(Counter).where(Counter.series == series, Counter.year == year).with_for_update()
            )
    assert row is not None
    return row


def allocate_numbers(db: Session, series: str, year: int, count: int) -> list[str]:
    """The next ``count`` numbers of a yearly series, taken in one step under the counter's row lock."""
    row = locked_counter(db, series, year)
    first = row.value + 1
    row.value += count
    return [numbering(series, year, n) for n in range(first, first + count)]


def next_number(step: Step, series: str) -> str:
    return number_in_series(step.db, series, local_date(step.now).year)


# --- decline and dispatch (第五条, 第九条, 第十条) ---------------------------------------------------


def record_decline(step: Step) -> None:
    case: Case = step.obj
    case.decline_reason = _text(step, "reason")
    case.decline_explanation = _text(step, "explanation")
    case.decline_suggestion = _text(step, "suggestion")
    _index_for_public(step)


def dispatch_problem(step: Step) -> str | None:
    lead = _ids(step.payload.get("lead_unit_id"))
    co = _ids(step.payload.get("co_unit_ids"))
    if len(lead) != 1:
        return "请选择一个牵头承办单位（第十条）。"
    if lead[0] in co or len(set(co)) != len(co):
        return "协办单位不能重复，也不能与牵头单位相同。"
    with cross_workspace(step.db):
        units = step.db.scalars(select(Workspace).where(Workspace.id.in_(lead + co))).all()
    usable = {w.id for w in units if w.is_active and WorkspaceKind(w.kind).is_unit}
    if set(lead + co) - usable:
        return "只能转办给在用的旗县市区、市直部门或驻市垂管部门。"
    return None


def issue_assignment_sheets(step: Step) -> None:
    """Number the 承办单, set the 5-working-day due date and deliver a copy to each unit."""
    case: Case = step.obj
    db = step.db
    lead_id = _ids(step.payload.get("lead_unit_id"))[0]
    co_ids = _ids(step.payload.get("co_unit_ids"))
    case.sheet_number = next_number(step, SHEET_SERIES)
    case.dispatched_at = step.now
    case.due_date = add_working_days(local_date(step.now), REPLY_WORKING_DAYS)
    case.instructions = _text(step, "instructions")
    case.reply_text = ""
    case.quality_flag = ""
    with cross_workspace(db):
        lead = db.get(Workspace, lead_id)
        assert lead is not None
        last_round = db.scalar(select(func.max(Assignment.round)).where(Assignment.case_id == case.id)) or 0
        for unit_id in [lead_id, *co_ids]:
            db.add(
                Assignment(
                    workspace_id=unit_id,
                    case_id=case.id,
                    round=last_round + 1,
                    is_lead=unit_id == lead_id,
                    sheet_number=case.sheet_number,
                    lead_unit_name=lead.name,
                    title=case.title,
                    body=case.body,
                    category=case.category,
                    posted_at=case.posted_at,
                    citizen_name=case.citizen_name,
                    citizen_phone=case.citizen_phone,
                    citizen_email=case.citizen_email,
                    instructions=case.instructions,
                    dispatched_at=step.now,
                    due_date=case.due_date,
                )
            )
        db.flush()


# --- the unit's work (第十条, 第十一条) --------------------------------------------------------------


def routing_problem(step: Step) -> str | None:
    """The section and handler chosen on receipt must be this unit's own (第十一条: 立即核查)."""
    from app.tenants.models import Membership, Section

    section_ids, handler_ids = _ids(step.payload.get("section_id")), _ids(step.payload.get("handler_id"))
    db = step.db  # the unit's own, workspace-scoped session: another unit's section is not found
    if section_ids and db.get(Section, section_ids[0]) is None:
        return "请选择本单位的科室。"
    if (
        handler_ids
        and db.scalar(
            select(Membership.id).where(
                Membership.user_id == handler_ids[0],
                Membership.role == "handler",
                Membership.workspace_id == step.obj.workspace_id,
            )
        )
        is None
    ):
        return "请选择本单位的经办人。"
    return None


def mark_received(step: Step) -> None:
    """签收, and routing at once to a section and a handler (第十一条)."""
    assignment: Assignment = step.obj
    assignment.received_at = step.now
    section_ids, handler_ids = _ids(step.payload.get("section_id")), _ids(step.payload.get("handler_id"))
    if section_ids:
        assignment.section_id = section_ids[0]
    if handler_ids:
        assignment.handler_id = handler_ids[0]
    elif step.actor and "handler" in step.actor.roles:
        assignment.handler_id = step.actor.user_id


def save_draft(step: Step) -> None:
    """A new version of the draft. Any signature of an earlier version no longer counts."""
    assignment: Assignment = step.obj
    assignment.reply_text = _text(step, "reply_text")
    assignment.reply_private = bool(step.payload.get("reply_private"))
    assignment.draft_version += 1
    assignment.signed_version = None
    assignment.signature = ""
    assignment.signed_by_id = None
    assignment.signed_at = None
    if step.actor:
        assignment.handler_id = step.actor.user_id


def record_contribution(step: Step) -> None:
    step.obj.contribution = _text(step, "text")
    step.comment = step.comment or step.obj.contribution


def sign_and_deliver(step: Step) -> None:
    """审签: the principal's signature and the unit seal go on this draft version, and the reply
    is delivered in writing to the centre (第十一条)."""
    from app.workflows.engine import apply

    assignment: Assignment = step.obj
    db = step.db
    assignment.signature = step.signature
    assignment.signed_version = assignment.draft_version
    assignment.signed_by_id = step.actor.user_id if step.actor else None
    assignment.signed_at = step.now
    with cross_workspace(db):
        handler = db.get(User, assignment.handler_id) if assignment.handler_id else None
        case = db.get(Case, assignment.case_id)
        assert case is not None
        case.reply_text = assignment.reply_text
        case.reply_private = assignment.reply_private
        case.reply_is_explanation = assignment.explanation_consented
        case.reply_unit_id = assignment.workspace_id
        case.reply_handler_name = handler.display_name if handler else ""
        case.reply_handler_phone = handler.office_phone if handler else ""
        case.reply_signed_by = step.actor.display_name if step.actor else ""
        case.reply_signature = step.signature
        case.reply_submitted_at = step.now
        apply(db, None, case, "deliver_reply")


def record_return_reason(step: Step) -> None:
    step.obj.return_reason = _text(step, "reason")
    step.comment = step.comment or step.obj.return_reason  # the reason stays on the timeline


def record_return_signature(step: Step) -> None:
    step.obj.return_signature = step.signature


def record_extension_request(step: Step) -> None:
    step.obj.extension_days = int(step.payload["days"])
    step.obj.extension_reason = _text(step, "reason")
    step.comment = step.comment or f"申请延期 {step.obj.extension_days} 个工作日：{step.obj.extension_reason}"


def clear_extension_request(step: Step) -> None:
    step.obj.extension_days = None


# --- the centre's decisions on a unit's request (第十四条, 第十五条) ---------------------------------


def _assignment_for_decision(step: Step, state: str) -> Assignment | None:
    ids = _ids(step.payload.get("assignment_id"))
    if len(ids) != 1:
        return None
    with cross_workspace(step.db):
        assignment = step.db.get(Assignment, ids[0])
    if assignment is None or assignment.case_id != step.obj.id or assignment.state != state:
        return None
    return assignment


def return_decision_problem(step: Step, *, lead: bool | None) -> str | None:
    assignment = _assignment_for_decision(step, "return_requested")
    if assignment is None:
        return "该退办申请不存在或已处理。"
    if lead is not None and assignment.is_lead != lead:
        return "请按牵头单位或协办单位分别处理退办。"
    return None


def accept_return(step: Step) -> None:
    """The returning unit is recorded; a lead unit's return sends the case back for re-dispatch."""
    from app.workflows.engine import apply

    assignment = _assignment_for_decision(step, "return_requested")
    assert assignment is not None
    with cross_workspace(step.db):
        apply(step.db, None, assignment, "return_accepted")
        if assignment.is_lead:
            others = step.db.scalars(
                select(Assignment).where(
                    Assignment.case_id == assignment.case_id,
                    Assignment.round == assignment.round,
                    Assignment.id != assignment.id,
                    Assignment.state.not_in(("closed", "returned")),
                )
            )
            for other in others:
                apply(step.db, None, other, "withdraw")
            step.obj.sheet_number = None
            step.obj.due_date = None


def reject_return(step: Step) -> None:
    from app.workflows.engine import apply

    assignment = _assignment_for_decision(step, "return_requested")
    assert assignment is not None
    with cross_workspace(step.db):
        assignment.centre_comment = step.comment
        apply(step.db, None, assignment, "return_rejected")


def extension_decision_problem(step: Step) -> str | None:
    assignment = _assignment_for_decision(step, "extension_pending")
    if assignment is None:
        return "该延期申请不存在或已处理。"
    if step.transition.action == "approve_extension":
        try:
            days = int(step.payload.get("days") or assignment.extension_days or 0)
        except (TypeError, ValueError):
            days = 0
        if not 1 <= days <= (assignment.extension_days or 0):
            limit = assignment.extension_days
            return f"同意延期的天数须为 1 至 {limit} 个工作日（第十四条：最长不超过 3 个工作日）。"
    return None


def approve_extension(step: Step) -> None:
    from app.workflows.engine import apply

    assignment = _assignment_for_decision(step, "extension_pending")
    assert assignment is not None
    days = int(step.payload.get("days") or assignment.extension_days or 0)
    with cross_workspace(step.db):
        assignment.extension_days = days
        assignment.due_date = add_working_days(assignment.due_date, days)
        if assignment.is_lead:
            step.obj.due_date = assignment.due_date
        apply(step.db, None, assignment, "extension_approved")


def deny_extension(step: Step) -> None:
    from app.workflows.engine import apply

    assignment = _assignment_for_decision(step, "extension_pending")
    assert assignment is not None
    with cross_workspace(step.db):
        assignment.centre_comment = step.comment
        apply(step.db, None, assignment, "extension_denied")


# --- special cases answered with an explanation (第十八条) -----------------------------------------


def record_explanation_request(step: Step) -> None:
    step.obj.explanation_reason = _text(step, "reason")
    step.comment = step.comment or step.obj.explanation_reason


def explanation_decision_problem(step: Step) -> str | None:
    if _assignment_for_decision(step, "explanation_requested") is None:
        return "该解释说明申请不存在或已处理。"
    return None


def consent_explanation(step: Step) -> None:
    """The centre's recorded consent: the unit may answer with an explanation (解释说明)."""
    from app.workflows.engine import apply

    assignment = _assignment_for_decision(step, "explanation_requested")
    assert assignment is not None
    with cross_workspace(step.db):
        assignment.explanation_consented = True
        apply(step.db, None, assignment, "explanation_consented")


def refuse_explanation(step: Step) -> None:
    from app.workflows.engine import apply

    assignment = _assignment_for_decision(step, "explanation_requested")
    assert assignment is not None
    with cross_workspace(step.db):
        assignment.centre_comment = step.comment
        apply(step.db, None, assignment, "explanation_refused")


# --- review, publication, archive (第十二条, 第十六条, 第十九条) -------------------------------------


def _current_round(step: Step) -> list[Assignment]:
    case: Case = step.obj
    latest = step.db.scalar(select(func.max(Assignment.round)).where(Assignment.case_id == case.id))
    return list(
        step.db.scalars(select(Assignment).where(Assignment.case_id == case.id, Assignment.round == latest))
    )


def publish(step: Step) -> None:
    """第十二条: published the day the centre accepts it; every assignment of the case is closed."""
    from app.workflows.engine import apply

    step.obj.published_at = step.now
    with cross_workspace(step.db):
        for assignment in _current_round(step):
            if assignment.state in ("submitted", "handling", "pending"):
                apply(step.db, None, assignment, "close")
    _index_for_public(step)


def _index_for_public(step: Step) -> None:
    """The public portal's search index (masked text) follows a publication or a decline at once,
    in the same transaction (第十二条)."""
    from app.public.search import index_case

    step.db.flush()
    index_case(step.db, step.obj.id)


def send_back(step: Step) -> None:
    from app.workflows.engine import apply

    step.obj.quality_flag = _text(step, "quality_flag")
    with cross_workspace(step.db):
        for assignment in _current_round(step):
            if assignment.is_lead and assignment.state == "submitted":
                assignment.centre_comment = step.comment
                assignment.quality_flag = step.obj.quality_flag
                apply(step.db, None, assignment, "reopen")


def archive(step: Step) -> None:
    step.obj.archived_at = step.now
