"""The render inputs of each document: plain frozen dataclasses built from the ORM rows.

A template sees only these, never a model, so a document is a function of its data: the same data
gives the same PDF, and the data's canonical JSON is what the document cache hashes
(services.issue). Dates and times stay typed (``date``, aware ``datetime`` in UTC); the templates
write them out in Tongliao's time.

The builders take a row the caller has already fetched through its tenant-scoped helper (so the
right to see it is established) and read the rest of the paper file across workspaces, as the
case services do (``cross_workspace``): the 承办单 names the co-units, the case file holds every
unit's reply. Each document belongs to the workspace that holds the row it is built from
(``workspace_id``): a unit's copy of the 承办单 and its notices to the unit, the case file to the
centre.
"""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, ClassVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.accounts.models import User
from app.cases.models import Assignment, Case, Instruction, TimelineEntry
from app.cases.vocab import ASSIGNMENT_STATES, BOARDS, CASE_STATES, CATEGORIES, DECLINE_REASONS
from app.errors import InvalidInput
from app.escalation.models import Escalation
from app.tenants.models import Workspace, WorkspaceKind
from app.tenants.scope import cross_workspace
from app.workflows.signatures import PREFIX as SIGNATURE_PREFIX

# The articles the notices cite, in the regulation's words.
ARTICLES = {
    "第十一条": "自收到《人民网地方领导留言板咨询事项承办单》应立即进行核查，限时5个工作日内，承办单位"
    "形成回复意见，经本单位主要负责人审签后，并加盖公章，书面答复至通辽市政府门户网站运维中心。",
    "第十三条": "网民留言承办单位在办理时限到期前一天仍未报送答复意见或未进行公开答复的，通辽市政府网站"
    "运维中心对承办单位主要负责同志催办提醒。",
    "第十九条": "对答非所问、敷衍塞责、推诿扯皮、逾期办理、久催不办、重答轻办等情况的留言承办单位、地区，"
    "市政府门户网站运维中心按照“三单一函”机制，适时启动“提醒”“催办”“督办”“移交”程序。",
    "第二十条": "“催办”“督办”无果，造成严重后果和社会不良影响的，予以严肃问责，涉嫌违纪违法问题线索，"
    "移交纪检监察机关办理。在移交纪检监察机关的同时将有关情况报送市政府督查室，市政府督查室进行专项督办。",
}

# rung → (title, verb, article); the same words as app.escalation.services.RUNGS.
RUNGS = {
    "reminder": ("提醒单", "提醒", "第十三条"),
    "urge": ("催办单", "催办", "第十九条"),
    "supervise": ("督办单", "督办", "第十九条"),
    "transfer": ("移交函", "移交", "第二十条"),
}
TRANSFER_ADDRESSEE = "通辽市纪委监委"
TRANSFER_COPY_TO = "市政府督查室"


# --- the pieces ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Unit:
    name: str
    short_name: str
    contact_phone: str = ""
    address: str = ""


@dataclass(frozen=True)
class Message:
    """The citizen's message as the 承办单 carries it (第九条)."""

    source_id: str
    board: str
    category: str
    title: str
    body: str
    posted_at: datetime
    region: str = ""
    topic: str = ""
    citizen_name: str = ""
    citizen_phone: str = ""


@dataclass(frozen=True)
class LeaderInstruction:
    """领导批示 (第十六条)."""

    author: str
    text: str
    at: datetime


@dataclass(frozen=True)
class Decision:
    """One step of a request's handling: who decided what, when, with what comment."""

    label: str
    actor: str
    workspace: str
    at: datetime
    comment: str = ""
    by_centre: bool = False  # the centre's decision (else the unit's leaders')


@dataclass(frozen=True)
class Step:
    """One line of the 办理过程 (timeline)."""

    at: datetime
    actor: str
    workspace: str
    action: str
    comment: str
    signed: bool


# --- the documents ----------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Source:
    """What every document has: its kind, its number, the workspace it belongs to, what it is about."""

    kind: ClassVar[str]
    title: ClassVar[str]
    workspace_id: int
    case_id: int
    assignment_id: int | None = None
    escalation_id: int | None = None
    number: str

    @property
    def template(self) -> str:
        return f"documents/{self.kind}.html"

    def inputs(self) -> dict[str, Any]:
        return {"kind": self.kind, **dataclasses.asdict(self)}

    def canonical_json(self) -> str:
        """Sorted keys, no spaces, dates in ISO form: equal data, equal text."""
        return json.dumps(
            self.inputs(), sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=_iso
        )


def _iso(value: object) -> str:
    if isinstance(value, date | datetime):
        return value.isoformat()
    raise TypeError(f"not JSON: {type(value).__name__}")


@dataclass(frozen=True, kw_only=True)
class AssignmentSheet(Source):
    """承办单 — 人民网地方领导留言板咨询事项承办单 (附件2, 第九条, 第十条)."""

    kind: ClassVar[str] = "assignment_sheet"
    title: ClassVar[str] = "人民网地方领导留言板咨询事项承办单"
    issuer: Unit
    unit: Unit  # the unit this copy is addressed to
    message: Message
    lead_unit: str
    co_units: tuple[str, ...]
    round: int
    dispatched_at: datetime
    due_date: date
    instructions: str
    leader_instructions: tuple[LeaderInstruction, ...]


@dataclass(frozen=True, kw_only=True)
class ReplyLetter(Source):
    """回复意见 — signed by the unit's principal and sealed (第十一条), GB/T 9704 layout."""

    kind: ClassVar[str] = "reply_letter"
    title: ClassVar[str] = "回复意见"
    unit: Unit
    addressee: str
    sheet_number: str
    message_title: str
    reply_text: str
    is_explanation: bool
    private: bool
    handler_name: str
    handler_phone: str
    signed_by: str
    signature: str
    signed_at: datetime


@dataclass(frozen=True, kw_only=True)
class ReturnSheet(Source):
    """退办单 — the same-day return, signed by the deputy leader, with the reason (第十五条)."""

    kind: ClassVar[str] = "return_sheet"
    title: ClassVar[str] = "人民网地方领导留言板咨询事项退办单"
    unit: Unit
    addressee: str
    sheet_number: str
    message_title: str
    dispatched_at: datetime
    received_at: datetime | None
    reason: str
    signed_by: str
    signature: str
    signed_at: datetime | None
    decision: Decision | None


@dataclass(frozen=True, kw_only=True)
class ExtensionRequest(Source):
    """延办申请 — at most 3 working days, asked level by level (第十四条)."""

    kind: ClassVar[str] = "extension_request"
    title: ClassVar[str] = "人民网地方领导留言板咨询事项延期办结申请表"
    unit: Unit
    addressee: str
    sheet_number: str
    message_title: str
    due_date: date  # as it stands now: the extended date once approved
    days: int
    reason: str
    requested_by: str
    requested_at: datetime
    decisions: tuple[Decision, ...]
    outcome: str  # pending | endorsed | refused | approved | denied
    approved_days: int | None


@dataclass(frozen=True, kw_only=True)
class EscalationNotice(Source):
    """提醒单 / 催办单 / 督办单 / 移交函 — the 三单一函 (第十三条, 第十九条, 第二十条)."""

    kind: ClassVar[str] = "escalation_notice"
    title: ClassVar[str] = "三单一函"
    rung: str
    ordinal: int
    issuer: Unit
    unit: Unit
    addressee: str
    copy_to: str
    sheet_number: str
    message_title: str
    due_date: date
    issued_on: date
    reason: str

    @property
    def heading(self) -> str:
        return RUNGS[self.rung][0]

    @property
    def verb(self) -> str:
        return RUNGS[self.rung][1]

    @property
    def article(self) -> str:
        return RUNGS[self.rung][2]

    @property
    def article_text(self) -> str:
        return ARTICLES[self.article]


@dataclass(frozen=True)
class AssignmentRecord:
    """One unit's work on the case, as the case file keeps it."""

    unit: Unit
    is_lead: bool
    round: int
    state: str
    sheet_number: str
    dispatched_at: datetime
    due_date: date
    received_at: datetime | None
    reply_text: str
    signed_by: str
    signature: str
    signed_at: datetime | None
    return_reason: str
    return_signature: str
    contribution: str
    extension_days: int | None


@dataclass(frozen=True, kw_only=True)
class CaseFile(Source):
    """归档 — the case's file: message, 承办单 data, replies, 督办文函, 批示, timeline (第十六条)."""

    kind: ClassVar[str] = "case_file"
    title: ClassVar[str] = "人民网地方领导留言板网民留言办理档案"
    centre: Unit
    message: Message
    state: str
    registered_at: datetime
    dispatched_at: datetime | None
    due_date: date | None
    instructions: str
    decline_reason: str
    decline_explanation: str
    decline_suggestion: str
    reply_text: str
    reply_unit: str
    reply_handler: str
    reply_handler_phone: str
    reply_signed_by: str
    reply_signature: str
    reply_submitted_at: datetime | None
    published_at: datetime | None
    archived_at: datetime | None
    assignments: tuple[AssignmentRecord, ...]
    notices: tuple[EscalationNotice, ...]
    leader_instructions: tuple[LeaderInstruction, ...]
    timeline: tuple[Step, ...]
    compiled_at: datetime


SOURCES: dict[str, type[Source]] = {
    cls.kind: cls
    for cls in (AssignmentSheet, ReplyLetter, ReturnSheet, ExtensionRequest, EscalationNotice, CaseFile)
}
KINDS = tuple(SOURCES)


# --- builders -----------------------------------------------------------------------------------------


def _unit(db: Session, workspace_id: int | None) -> Unit:
    ws = db.get(Workspace, workspace_id) if workspace_id is not None else None
    if ws is None:
        return Unit("", "")
    return Unit(ws.name, ws.short_name, ws.contact_phone, ws.address)


def _of_kind(db: Session, kind: WorkspaceKind) -> Unit:
    ws = db.scalar(select(Workspace).where(Workspace.kind == kind.value).order_by(Workspace.id).limit(1))
    return Unit(ws.name, ws.short_name, ws.contact_phone, ws.address) if ws else Unit("", "")


def _user(db: Session, user_id: int | None) -> User | None:
    return db.get(User, user_id) if user_id is not None else None


def _signature(data_url: str) -> str:
    """Only a PNG data URL from the pad is ever put into a document (anything else: no image)."""
    return data_url if data_url.startswith(SIGNATURE_PREFIX) else ""


def _message(case: Case) -> Message:
    return Message(
        source_id=case.source_id,
        board=BOARDS.get(case.board, case.board),
        category=CATEGORIES.get(case.category, case.category),
        title=case.title,
        body=case.body,
        posted_at=case.posted_at,
        region=case.region,
        topic=case.topic,
        citizen_name=case.citizen_name,
        citizen_phone=case.citizen_phone,
    )


def _case(db: Session, case_id: int) -> Case:
    with cross_workspace(db):
        case = db.get(Case, case_id)
    if case is None:
        raise InvalidInput("该留言不存在。")
    return case


def _instructions(db: Session, case_id: int) -> tuple[LeaderInstruction, ...]:
    with cross_workspace(db):
        rows = db.scalars(
            select(Instruction).where(Instruction.case_id == case_id).order_by(Instruction.at, Instruction.id)
        ).all()
    return tuple(LeaderInstruction(i.author_name, i.text, i.at) for i in rows)


def _entries(db: Session, *, case_id: int, assignment_id: int | None = None) -> list[TimelineEntry]:
    query = select(TimelineEntry).where(TimelineEntry.case_id == case_id)
    if assignment_id is not None:
        query = query.where(TimelineEntry.assignment_id == assignment_id)
    with cross_workspace(db):
        return list(db.scalars(query.order_by(TimelineEntry.at, TimelineEntry.id)))


def _decision(entry: TimelineEntry, *, by_centre: bool) -> Decision:
    from app.workflows.transitions import ACTION_LABELS

    return Decision(
        ACTION_LABELS.get(entry.action, entry.action),
        entry.actor_name,
        entry.workspace_name,
        entry.at,
        entry.comment,
        by_centre,
    )


def assignment_sheet(db: Session, assignment: Assignment) -> AssignmentSheet:
    """The unit's copy of the 承办单 (the message data, units, due date, instructions, 批示)."""
    case = _case(db, assignment.case_id)
    with cross_workspace(db):
        peers = db.execute(
            select(Assignment.is_lead, Workspace.name)
            .join(Workspace, Workspace.id == Assignment.workspace_id)
            .where(Assignment.case_id == assignment.case_id, Assignment.round == assignment.round)
            .order_by(Assignment.is_lead.desc(), Assignment.id)
        ).all()
    lead = next((name for is_lead, name in peers if is_lead), assignment.lead_unit_name)
    message = dataclasses.replace(
        _message(case),
        title=assignment.title,
        body=assignment.body,
        category=CATEGORIES.get(assignment.category, assignment.category),
        posted_at=assignment.posted_at,
        citizen_name=assignment.citizen_name,
        citizen_phone=assignment.citizen_phone,
    )
    return AssignmentSheet(
        workspace_id=assignment.workspace_id,
        case_id=assignment.case_id,
        assignment_id=assignment.id,
        number=assignment.sheet_number,
        issuer=_unit(db, case.workspace_id),
        unit=_unit(db, assignment.workspace_id),
        message=message,
        lead_unit=lead,
        co_units=tuple(name for is_lead, name in peers if not is_lead),
        round=assignment.round,
        dispatched_at=assignment.dispatched_at,
        due_date=assignment.due_date,
        instructions=assignment.instructions,
        leader_instructions=_instructions(db, assignment.case_id),
    )


def reply_letter(db: Session, assignment: Assignment) -> ReplyLetter:
    """The signed and sealed 回复意见 (第十一条). Only a signed draft is a document."""
    from app.public.masking import mask

    if not assignment.signature or assignment.signed_at is None or assignment.signed_version is None:
        raise InvalidInput("回复意见尚未经本单位主要负责人审签，不能生成正式文件（第十一条）。")
    case = _case(db, assignment.case_id)
    handler = _user(db, assignment.handler_id)
    signer = _user(db, assignment.signed_by_id)
    return ReplyLetter(
        workspace_id=assignment.workspace_id,
        case_id=assignment.case_id,
        assignment_id=assignment.id,
        number=assignment.sheet_number,
        unit=_unit(db, assignment.workspace_id),
        addressee=_unit(db, case.workspace_id).name,
        sheet_number=assignment.sheet_number,
        # The signed letter is the one published (第十二条): citizens' personal data is masked in it
        # as on every public page; the handler's office phone is published on purpose.
        message_title=mask(assignment.title),
        reply_text=mask(assignment.reply_text, keep=[handler.office_phone] if handler else []),
        is_explanation=assignment.explanation_consented,
        private=assignment.reply_private,
        handler_name=handler.display_name if handler else "",
        handler_phone=handler.office_phone if handler else "",
        signed_by=signer.display_name if signer else "",
        signature=_signature(assignment.signature),
        signed_at=assignment.signed_at,
    )


def return_sheet(db: Session, assignment: Assignment) -> ReturnSheet:
    """The 退办单 as signed by the deputy leader, with the centre's decision once made (第十五条)."""
    if not assignment.return_reason:
        raise InvalidInput("该承办单没有退办申请。")
    case = _case(db, assignment.case_id)
    entries = _entries(db, case_id=assignment.case_id, assignment_id=assignment.id)
    signed = next((e for e in reversed(entries) if e.action == "sign_return"), None)
    decided = next((e for e in reversed(entries) if e.action in _RETURN_DECISIONS), None)
    if decided is not None and signed is not None and decided.at < signed.at:
        decided = None
    decision = None
    if decided is not None:
        # As for extensions: the clerk's own step, with name and comment, is on the case's timeline.
        case_steps = [e for e in _entries(db, case_id=assignment.case_id) if e.assignment_id is None]
        centre = None
        for action in _RETURN_DECISIONS[decided.action]:
            centre = centre or _nearest(case_steps, action, decided.at)
        decision = _decision(centre or decided, by_centre=True)
    return ReturnSheet(
        workspace_id=assignment.workspace_id,
        case_id=assignment.case_id,
        assignment_id=assignment.id,
        number=assignment.sheet_number,
        unit=_unit(db, assignment.workspace_id),
        addressee=_unit(db, case.workspace_id).name,
        sheet_number=assignment.sheet_number,
        message_title=assignment.title,
        dispatched_at=assignment.dispatched_at,
        received_at=assignment.received_at,
        reason=assignment.return_reason,
        signed_by=signed.actor_name if signed else "",
        signature=_signature(assignment.return_signature),
        signed_at=signed.at if signed else None,
        decision=decision,
    )


_RETURN_DECISIONS = {
    "return_accepted": ("accept_return", "accept_co_return"),
    "return_rejected": ("reject_return",),
}
_EXTENSION_OUTCOMES = {
    "endorse_extension": "endorsed",
    "refuse_extension": "refused",
    "extension_approved": "approved",
    "extension_denied": "denied",
}
_CENTRE_DECISIONS = {"extension_approved": "approve_extension", "extension_denied": "deny_extension"}
_REQUESTED_DAYS = re.compile(r"申请延期\s*(\d+)\s*个工作日")


def extension_request(db: Session, assignment: Assignment) -> ExtensionRequest:
    """The latest 延办 request of the assignment and each level's decision on it (第十四条)."""
    entries = _entries(db, case_id=assignment.case_id, assignment_id=assignment.id)
    start = next(
        (i for i in range(len(entries) - 1, -1, -1) if entries[i].action == "request_extension"), None
    )
    if start is None:
        raise InvalidInput("该承办单没有延期申请。")
    request = entries[start]
    case_steps = [e for e in _entries(db, case_id=assignment.case_id) if e.assignment_id is None]
    decisions: list[Decision] = []
    outcome = "pending"
    for entry in entries[start + 1 :]:
        if entry.action not in _EXTENSION_OUTCOMES:
            continue
        outcome = _EXTENSION_OUTCOMES[entry.action]
        by_centre = entry.action in _CENTRE_DECISIONS
        decision = _decision(entry, by_centre=by_centre)
        if by_centre:
            # The system applies the centre's decision to the assignment; the clerk's own step (with
            # name and comment) is on the case's timeline, a moment earlier.
            centre = _nearest(case_steps, _CENTRE_DECISIONS[entry.action], entry.at)
            if centre is not None:
                decision = _decision(centre, by_centre=True)
        decisions.append(decision)
    match = _REQUESTED_DAYS.search(request.comment)
    days = int(match.group(1)) if match else (assignment.extension_days or 0)
    case = _case(db, assignment.case_id)
    return ExtensionRequest(
        workspace_id=assignment.workspace_id,
        case_id=assignment.case_id,
        assignment_id=assignment.id,
        number=assignment.sheet_number,
        unit=_unit(db, assignment.workspace_id),
        addressee=_unit(db, case.workspace_id).name,
        sheet_number=assignment.sheet_number,
        message_title=assignment.title,
        due_date=assignment.due_date,
        days=days,
        reason=assignment.extension_reason,
        requested_by=request.actor_name,
        requested_at=request.at,
        decisions=tuple(decisions),
        outcome=outcome,
        approved_days=assignment.extension_days if outcome == "approved" else None,
    )


def _nearest(entries: list[TimelineEntry], action: str, at: datetime) -> TimelineEntry | None:
    candidates = [e for e in entries if e.action == action and abs((e.at - at).total_seconds()) < 60]
    return min(candidates, key=lambda e: abs((e.at - at).total_seconds()), default=None)


def escalation_notice(db: Session, escalation: Escalation) -> EscalationNotice:
    """提醒单/催办单/督办单 from the centre, or the 移交函 from the supervision office."""
    with cross_workspace(db):
        assignment = db.get(Assignment, escalation.assignment_id)
    if assignment is None:
        raise InvalidInput("该承办单不存在。")
    unit = _unit(db, escalation.workspace_id)
    transfer = escalation.rung == "transfer"
    # 提醒/催办/督办 come from the centre that dispatched the case; 移交 and a 督办单 督查室 issued by
    # hand (decided_by_id, app/supervision/supervise.py) from the supervision office.
    issuer = (
        _of_kind(db, WorkspaceKind.SUPERVISOR)
        if transfer or escalation.decided_by_id is not None
        else _unit(db, _case(db, escalation.case_id).workspace_id)
    )
    return EscalationNotice(
        workspace_id=escalation.workspace_id,
        case_id=escalation.case_id,
        assignment_id=escalation.assignment_id,
        escalation_id=escalation.id,
        number=escalation.number,
        rung=escalation.rung,
        ordinal=escalation.ordinal or 1,
        issuer=issuer,
        unit=unit,
        addressee=(escalation.addressee or TRANSFER_ADDRESSEE) if transfer else f"{unit.name}主要负责同志",
        copy_to=TRANSFER_COPY_TO if transfer else "",
        sheet_number=assignment.sheet_number,
        message_title=assignment.title,
        due_date=escalation.due_date,
        issued_on=escalation.issued_on,
        reason=escalation.reason,
    )


def case_file(db: Session, case: Case, *, compiled_at: datetime | None = None) -> CaseFile:
    """The whole file of a case (第十六条): everything the centre archives, in one document.

    ``compiled_at`` defaults to the archive time (or the latest step), so the same file compiled
    twice is the same document."""
    from app.workflows.transitions import ACTION_LABELS

    with cross_workspace(db):
        work = db.execute(
            select(Assignment, Workspace)
            .join(Workspace, Workspace.id == Assignment.workspace_id)
            .where(Assignment.case_id == case.id)
            .order_by(Assignment.round, Assignment.is_lead.desc(), Assignment.id)
        ).all()
        escalations = db.scalars(
            select(Escalation)
            .where(Escalation.case_id == case.id)
            .order_by(Escalation.issued_at, Escalation.id)
        ).all()
    entries = _entries(db, case_id=case.id)
    records = tuple(_record(db, a, w) for a, w in work)
    handler = case.reply_handler_name
    compiled = compiled_at or case.archived_at or (entries[-1].at if entries else case.registered_at)
    return CaseFile(
        workspace_id=case.workspace_id,
        case_id=case.id,
        number=case.sheet_number or case.source_id,
        centre=_unit(db, case.workspace_id),
        message=_message(case),
        state=CASE_STATES.get(case.state, case.state),
        registered_at=case.registered_at,
        dispatched_at=case.dispatched_at,
        due_date=case.due_date,
        instructions=case.instructions,
        decline_reason=DECLINE_REASONS.get(case.decline_reason, case.decline_reason),
        decline_explanation=case.decline_explanation,
        decline_suggestion=case.decline_suggestion,
        reply_text=case.reply_text,
        reply_unit=_unit(db, case.reply_unit_id).name if case.reply_unit_id else "",
        reply_handler=handler,
        reply_handler_phone=case.reply_handler_phone,
        reply_signed_by=case.reply_signed_by,
        reply_signature=_signature(case.reply_signature),
        reply_submitted_at=case.reply_submitted_at,
        published_at=case.published_at,
        archived_at=case.archived_at,
        assignments=records,
        notices=tuple(escalation_notice(db, e) for e in escalations),
        leader_instructions=_instructions(db, case.id),
        timeline=tuple(
            Step(
                e.at,
                e.actor_name,
                e.workspace_name,
                ACTION_LABELS.get(e.action, e.action),
                e.comment,
                bool(e.signature),
            )
            for e in entries
        ),
        compiled_at=compiled,
    )


def _record(db: Session, a: Assignment, w: Workspace) -> AssignmentRecord:
    signer = _user(db, a.signed_by_id)
    return AssignmentRecord(
        unit=Unit(w.name, w.short_name, w.contact_phone, w.address),
        is_lead=a.is_lead,
        round=a.round,
        state=ASSIGNMENT_STATES.get(a.state, a.state),
        sheet_number=a.sheet_number,
        dispatched_at=a.dispatched_at,
        due_date=a.due_date,
        received_at=a.received_at,
        reply_text=a.reply_text,
        signed_by=signer.display_name if signer else "",
        signature=_signature(a.signature),
        signed_at=a.signed_at,
        return_reason=a.return_reason,
        return_signature=_signature(a.return_signature),
        contribution=a.contribution,
        extension_days=a.extension_days,
    )


BUILDERS: dict[str, Any] = {
    "assignment_sheet": assignment_sheet,
    "reply_letter": reply_letter,
    "return_sheet": return_sheet,
    "extension_request": extension_request,
    "escalation_notice": escalation_notice,
    "case_file": case_file,
}


def build(db: Session, kind: str, obj: Any) -> Source:
    """The source of document ``kind`` from its row: an Assignment, an Escalation or a Case."""
    try:
        builder = BUILDERS[kind]
    except KeyError:
        raise InvalidInput(f"未知的文件类型：{kind}") from None
    source: Source = builder(db, obj)
    return source
