"""Registering messages and reading cases and assignments.

Reads go through the caller's tenant-scoped session: the centre sees its cases, a unit its
assignments. The centre's view of the units working on one of its cases is cross-workspace by
role (第六条: the centre dispatches and follows up), and says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, func, select, true
from sqlalchemy.orm import Session

from app.accounts.identity import CurrentUser
from app.audit.services import record
from app.cases.models import Assignment, Case, TimelineEntry
from app.cases.vocab import BOARDS, CATEGORIES
from app.errors import Conflict, InvalidInput, NotFound
from app.settings import get_settings
from app.tenants.models import Workspace, WorkspaceKind
from app.tenants.scope import cross_workspace, tenant_of
from app.workflows import engine
from app.workflows.deadlines import local_date, working_days_left

# A unit's work not yet done: its reply still owed (escalation.OWED_STATES — an explanation
# awaiting the centre's consent too, 第十八条), or its return awaiting the centre.
OPEN_ASSIGNMENT_STATES = (
    "pending",
    "handling",
    "awaiting_signoff",
    "return_drafted",
    "extension_requested",
    "extension_pending",
    "explanation_requested",
    "return_requested",
)


@dataclass(frozen=True)
class MessageInput:
    board: str
    source_id: str
    title: str
    body: str
    posted_at: str
    category: str
    topic: str = ""
    region: str = ""
    citizen_name: str = ""
    citizen_phone: str = ""
    citizen_email: str = ""

    @classmethod
    def from_form(cls, data: dict[str, Any]) -> MessageInput:
        return cls(**{k: str(data.get(k, "") or "").strip() for k in cls.__dataclass_fields__})


def parse_posted_at(value: str) -> datetime:
    """'2026-11-20 09:30' or '2026-11-20T09:30' in Tongliao time, or a date alone."""
    value = value.strip().replace("T", " ")
    for fmt in ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d", "%Y/%m/%d %H:%M", "%Y/%m/%d"):
        try:
            local = datetime.strptime(value, fmt)
        except ValueError:
            continue
        return local.replace(tzinfo=ZoneInfo(get_settings().timezone)).astimezone(UTC)
    raise InvalidInput("留言时间格式应为 2026-11-20 09:30。", field="posted_at")


def validate_message(db: Session, msg: MessageInput) -> datetime:
    if msg.board not in BOARDS:
        raise InvalidInput("请选择留言来源板块（市长板块或主席板块）。", field="board")
    if not msg.source_id or len(msg.source_id) > 64:
        raise InvalidInput("请填写留言板上的留言编号（不超过 64 位）。", field="source_id")
    if not msg.title or len(msg.title) > 200:
        raise InvalidInput("请填写留言标题（不超过 200 字）。", field="title")
    if not msg.body:
        raise InvalidInput("请填写留言内容。", field="body")
    if msg.category not in CATEGORIES:
        raise InvalidInput("请选择留言类别。", field="category")
    posted = parse_posted_at(msg.posted_at)
    if posted > datetime.now(UTC):
        raise InvalidInput("留言时间不能晚于当前时间。", field="posted_at")
    if len(msg.citizen_phone) > 40 or len(msg.citizen_email) > 200 or len(msg.citizen_name) > 60:
        raise InvalidInput("网民联系方式过长。", field="citizen_phone")
    for name, label in (("topic", "领域"), ("region", "地区")):
        if len(getattr(msg, name)) > 60:
            raise InvalidInput(f"{label}不超过 60 字。", field=name)
    # 第五条: the same message is never registered twice (checked across the whole table).
    with cross_workspace(db):
        exists = db.scalar(select(Case.id).where(Case.source_id == msg.source_id))
    if exists is not None:
        raise InvalidInput(f"留言编号 {msg.source_id} 已登记，不能重复登记。", field="source_id")
    return posted


def _new_case(
    db: Session, workspace_id: int, msg: MessageInput, posted: datetime, registered_by_id: int | None
) -> Case:
    case = Case(
        workspace_id=workspace_id,
        board=msg.board,
        source_id=msg.source_id,
        title=msg.title,
        body=msg.body,
        posted_at=posted,
        category=msg.category,
        topic=msg.topic,
        region=msg.region,
        citizen_name=msg.citizen_name,
        citizen_phone=msg.citizen_phone,
        citizen_email=msg.citizen_email,
        registered_by_id=registered_by_id,
    )
    db.add(case)
    db.flush()
    return case


def register_case(db: Session, actor: CurrentUser, msg: MessageInput) -> Case:
    """登记 (第九条): one message becomes one case in the centre's workspace."""
    if actor.workspace is None or actor.workspace.kind != WorkspaceKind.CENTRE:
        raise NotFound()
    posted = validate_message(db, msg)
    case = _new_case(db, actor.workspace.workspace_id, msg, posted, actor.user_id)
    record(
        db,
        "case.registered",
        actor_id=actor.user_id,
        workspace_id=case.workspace_id,
        target=f"case:{case.id}",
        ip=actor.ip,
        source_id=case.source_id,
    )
    return case


def register_from_feed(db: Session, workspace_id: int, msg: MessageInput) -> Case:
    """登记 (第三条, 第九条) of a message the board's feed delivers: no person registers it.

    The same checks as the form; a message already registered is a Conflict (the feed re-sends).
    """
    workspace = db.get(Workspace, workspace_id)
    if workspace is None or workspace.kind != WorkspaceKind.CENTRE or not workspace.is_active:
        raise NotFound()
    try:
        posted = validate_message(db, msg)
    except InvalidInput as exc:
        if exc.field == "source_id" and msg.source_id:
            with cross_workspace(db):
                if db.scalar(select(Case.id).where(Case.source_id == msg.source_id)) is not None:
                    raise Conflict(exc.message) from exc
        raise
    case = _new_case(db, workspace_id, msg, posted, None)
    record(
        db,
        "case.registered",
        actor_id=None,
        workspace_id=workspace_id,
        target=f"case:{case.id}",
        ip="api",
        source_id=case.source_id,
    )
    return case


def take_action(
    db: Session, actor: CurrentUser, obj: Case | Assignment, action: str, payload: dict[str, Any]
) -> str:
    """Any workflow step from a form; the engine decides whether it is allowed.

    The form must carry the version the person saw: without it a second, concurrent action could
    not be told apart from a first one (the optimistic check would be skipped).
    """
    try:
        expected = int(payload.pop("version", ""))
    except (TypeError, ValueError):
        raise InvalidInput("页面信息不完整，请刷新页面后重新操作。") from None
    return engine.apply(db, actor, obj, action, expected_version=expected, **payload).label


# --- the centre ----------------------------------------------------------------------------------


# The units' requests the centre decides (第十四条 延办, 第十五条 退办, 第十八条 解释说明).
CENTRE_DECIDES = ("return_requested", "extension_pending", "explanation_requested")
# The centre queue's views besides its states (tabs of /cases, counts of the clerk's to-do list).
CENTRE_VIEWS = {"requests": "承办单位申请待决定", "overdue": "承办单位逾期未办"}


def _with_requests(db: Session) -> Any:
    """The centre's own cases where a unit's request awaits its decision. The units' assignments
    are read across workspaces (run inside ``cross_workspace``); the cases stay the centre's own:
    the workspace the session is bound to, named explicitly since the block lifts the scope."""
    ctx = tenant_of(db)
    own = Case.workspace_id == ctx.workspace_id if ctx and ctx.workspace_id is not None else true()
    asking = select(Assignment.case_id).where(Assignment.state.in_(CENTRE_DECIDES))
    return and_(own, Case.id.in_(asking))


def centre_counts(db: Session, today: date, states: tuple[str, ...]) -> dict[str, int]:
    """How many of the centre's cases each of ``states`` and each centre view holds. One small
    statement each, on an index: cases by state (ix_cases_workspace_state_registered), the units'
    requests by state (ix_assignments_state) — never a pass over every case ever registered."""
    by_state = select(Case.state, func.count()).where(Case.state.in_(states)).group_by(Case.state)
    found: dict[str, int] = {state: n for state, n in db.execute(by_state)}
    counts = {state: found.get(state, 0) for state in states}
    counts["overdue"] = db.scalar(select(func.count()).select_from(Case).where(_overdue_cases(today))) or 0
    with cross_workspace(db):
        counts["requests"] = db.scalar(select(func.count()).select_from(Case).where(_with_requests(db))) or 0
    return counts


def _overdue_cases(today: date) -> Any:
    """With the units and past the due date."""
    return and_(Case.state == "assigned", Case.due_date < today)


def centre_queue(
    db: Session, state: str | None, limit: int = 100, *, view: str | None = None, today: date | None = None
) -> list[Case]:
    """The centre's newest cases, of one state or one of CENTRE_VIEWS (``requests``: a unit's
    request awaits the centre's decision; ``overdue``: with the units, past the due date)."""
    query = select(Case).order_by(Case.registered_at.desc()).limit(limit)
    if state:
        query = query.where(Case.state == state)
    if view == "overdue":
        query = query.where(_overdue_cases(today or local_date(datetime.now(UTC))))
    if view == "requests":
        with cross_workspace(db):
            return list(db.scalars(query.where(_with_requests(db))))
    return list(db.scalars(query))


def get_case(db: Session, case_id: int) -> Case:
    case = db.get(Case, case_id)
    if case is None:
        raise NotFound()
    return case


@dataclass
class UnitWork:
    assignment: Assignment
    unit: Workspace


def units_on_case(db: Session, case: Case) -> list[UnitWork]:
    """The centre follows the units it dispatched to (第六条, 第十三条): cross-workspace by role."""
    with cross_workspace(db):
        rows = db.execute(
            select(Assignment, Workspace)
            .join(Workspace, Workspace.id == Assignment.workspace_id)
            .where(Assignment.case_id == case.id)
            .order_by(Assignment.round.desc(), Assignment.is_lead.desc())
        ).all()
    return [UnitWork(a, w) for a, w in rows]


def case_timeline(db: Session, case: Case) -> list[TimelineEntry]:
    with cross_workspace(db):
        return list(
            db.scalars(
                select(TimelineEntry)
                .where(TimelineEntry.case_id == case.id)
                .order_by(TimelineEntry.at, TimelineEntry.id)
            )
        )


def dispatch_targets(db: Session) -> list[Workspace]:
    kinds = [k.value for k in WorkspaceKind if k.is_unit]
    return list(
        db.scalars(
            select(Workspace)
            .where(Workspace.kind.in_(kinds), Workspace.is_active.is_(True))
            .order_by(Workspace.kind, Workspace.id)
        )
    )


# --- the unit ------------------------------------------------------------------------------------


@dataclass
class InboxRow:
    assignment: Assignment
    days_left: int


# The unit inbox's views (the tabs of /inbox, the counts of the workspace home's to-do list):
# key → label. Each is a condition on the unit's open assignments (``inbox_views``).
INBOX_VIEWS = {
    "overdue": "逾期未办",
    "due_soon": "即将到期",
    "pending": "待签收",
    "handling": "办理中",
    "awaiting_signoff": "待审签",
    "return_drafted": "退办待签字",
    "extension_requested": "延期申请待审核",
}


def inbox_views(today: date) -> dict[str, Any]:
    """Each inbox view as a condition on Assignment: past its due date and still owed; owed and
    due today or on the next working day; or in one state."""
    from app.calendar import days
    from app.escalation.services import OWED_STATES

    owed = Assignment.state.in_(OWED_STATES)
    soon = days.current().add(today, 1)[0]
    found: dict[str, Any] = {
        "overdue": and_(owed, Assignment.due_date < today),
        "due_soon": and_(owed, Assignment.due_date >= today, Assignment.due_date <= soon),
    }
    for state in list(INBOX_VIEWS)[2:]:
        found[state] = Assignment.state == state
    return found


def inbox_counts(db: Session, today: date) -> dict[str, int]:
    """How many of the unit's assignments each view holds, in one statement over its open ones
    (an index range scan of ix_assignments_workspace_state_due)."""
    views = inbox_views(today)
    row = db.execute(
        select(*(func.count().filter(cond).label(key) for key, cond in views.items())).where(
            Assignment.state.in_(OPEN_ASSIGNMENT_STATES)
        )
    ).one()
    return {key: int(row[i] or 0) for i, key in enumerate(views)}


def unit_inbox(
    db: Session, today: date | None = None, limit: int = 200, view: str | None = None
) -> list[InboxRow]:
    """The unit's assignments, most urgent first: open ones by due date, then the most recent
    finished ones. Two index range scans (ix_assignments_workspace_state_due), not a sort of
    everything the unit ever handled. With ``view`` (a key of INBOX_VIEWS): only those."""
    today = today or local_date(datetime.now(UTC))
    if view in INBOX_VIEWS:
        rows = db.scalars(
            select(Assignment)
            .where(inbox_views(today)[view])
            .order_by(Assignment.due_date, Assignment.id)
            .limit(limit)
        )
        return [InboxRow(a, working_days_left(today, a.due_date)) for a in rows]
    open_rows = list(
        db.scalars(
            select(Assignment)
            .where(Assignment.state.in_(OPEN_ASSIGNMENT_STATES))
            .order_by(Assignment.due_date, Assignment.id)
            .limit(limit)
        )
    )
    done_rows = (
        list(
            db.scalars(
                select(Assignment)
                .where(Assignment.state.not_in(OPEN_ASSIGNMENT_STATES))
                .order_by(Assignment.due_date.desc(), Assignment.id.desc())
                .limit(max(limit - len(open_rows), 0))
            )
        )
        if len(open_rows) < limit
        else []
    )
    return [InboxRow(a, working_days_left(today, a.due_date)) for a in open_rows + done_rows]


def get_assignment(db: Session, assignment_id: int) -> Assignment:
    assignment = db.get(Assignment, assignment_id)
    if assignment is None:
        raise NotFound()
    return assignment


def assignment_timeline(db: Session, assignment: Assignment) -> list[TimelineEntry]:
    return list(
        db.scalars(
            select(TimelineEntry)
            .where(TimelineEntry.assignment_id == assignment.id)
            .order_by(TimelineEntry.at, TimelineEntry.id)
        )
    )


def co_unit_input(db: Session, assignment: Assignment) -> list[tuple[str, str]]:
    """What the co-units reported to the lead unit (第十条): the lead composes the one reply."""
    if not assignment.is_lead:
        return []
    with cross_workspace(db):
        rows = db.execute(
            select(Workspace.short_name, Assignment.contribution, Assignment.state)
            .join(Workspace, Workspace.id == Assignment.workspace_id)
            .where(
                Assignment.case_id == assignment.case_id,
                Assignment.round == assignment.round,
                Assignment.is_lead.is_(False),
            )
        ).all()
    return [
        (name, text if state in ("submitted", "closed") else "（尚未报送）") for name, text, state in rows
    ]


# --- duplicates (第五条: 正在办理过程中或办理完毕的重复事项) ------------------------------------------------

MAX_CASE_ID = 2**31 - 1  # an INTEGER column: a larger id cannot exist (nor be compared on PostgreSQL)


def duplicate_target(value: Any) -> int | None:
    """The original case id from a form: empty means "not a duplicate" (unlink)."""
    text = str(value or "").strip()
    if not text:
        return None
    if not (text.isascii() and text.isdigit()):
        raise InvalidInput("请选择要关联的原留言。", field="original_id")
    if int(text) > MAX_CASE_ID:
        raise InvalidInput("要关联的原留言不存在。", field="original_id")
    return int(text)


def duplicate_original(db: Session, case: Case) -> Case | None:
    """The earlier case this one repeats, if it has been linked (same workspace, scoped read)."""
    if case.duplicate_of_id is None:
        return None
    return db.scalar(select(Case).where(Case.id == case.duplicate_of_id))


def _links_back(db: Session, original: Case, case_id: int) -> bool:
    """Whether following duplicate links from ``original`` reaches ``case_id`` (linking would loop)."""
    seen: set[int] = set()
    current = original.duplicate_of_id
    while current is not None and current not in seen:
        if current == case_id:
            return True
        seen.add(current)
        current = db.scalar(select(Case.duplicate_of_id).where(Case.id == current))
    return False


def mark_duplicate(db: Session, actor: CurrentUser, case: Case, original_id: int | None) -> Case | None:
    """Link a case waiting for triage to the earlier message it repeats (None unlinks); not a state change."""
    if case.state != "received":
        raise InvalidInput("只有待交办的留言可以标记或取消重复。", field="original_id")
    previous_id = case.duplicate_of_id
    original = None
    if original_id is None:
        if previous_id is None:
            raise InvalidInput("该留言没有标记为重复留言，无需取消。", field="original_id")
    else:
        if original_id == case.id:
            raise InvalidInput("不能把留言标记为它自己的重复。", field="original_id")
        original = db.scalar(select(Case).where(Case.id == original_id))
        if original is None:
            raise InvalidInput("要关联的原留言不存在。", field="original_id")
        if _links_back(db, original, case.id):
            raise InvalidInput("所选留言已标记为本留言的重复，不能互相标记。", field="original_id")
    case.duplicate_of_id = original.id if original else None
    db.flush()
    record(
        db,
        "case.duplicate_marked" if original else "case.duplicate_unmarked",
        actor_id=actor.user_id,
        workspace_id=case.workspace_id,
        target=f"case:{case.id}",
        ip=actor.ip,
        original_id=original.id if original else None,
        previous_id=previous_id,
    )
    return original


def classify_case(
    db: Session, actor: CurrentUser, case: Case, *, category: str, topic: str, region: str
) -> Case:
    """初审 (第九条): the centre corrects a message's classification before it is dispatched."""
    if case.state != "received":
        raise InvalidInput("只有待交办的留言可以修改分类。")
    if category not in CATEGORIES:
        raise InvalidInput("请选择留言类别。", field="category")
    topic, region = topic.strip(), region.strip()
    if len(topic) > 60 or len(region) > 60:
        raise InvalidInput("领域、地区均不超过 60 字。", field="topic")
    before = {"category": case.category, "topic": case.topic, "region": case.region}
    case.category, case.topic, case.region = category, topic, region
    record(
        db,
        "case.classified",
        actor_id=actor.user_id,
        workspace_id=case.workspace_id,
        target=f"case:{case.id}",
        ip=actor.ip,
        before=before,
    )
    return case
