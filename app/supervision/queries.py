"""The supervision office's dashboard and quality list (第六条, 第十九条, 第二十条).

督查室 (supervisor, city leader) sees the workload of every unit: read-only, across workspaces, by
role — only routes behind ``Permission.CASE_OVERSEE`` call these. The unit of counting is the
**lead assignment** (牵头承办单) of a case still in the centre's hands (待交办 after an accepted
return, or 办理中): the unit that owes the reply. Every figure is one aggregate SQL query
(``SUM(CASE WHEN …)`` with ``GROUP BY``) per breakdown.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any, Final

from sqlalchemy import (
    Boolean,
    ColumnElement,
    Date,
    Integer,
    String,
    and_,
    case,
    cast,
    column,
    exists,
    func,
    literal,
    or_,
    select,
    table,
    true,
    union_all,
)
from sqlalchemy.orm import Session

from app.cases.models import Assignment, Case, TimelineEntry
from app.cases.vocab import BOARDS, CATEGORIES, QUALITY_FLAGS
from app.escalation.models import Escalation
from app.escalation.services import OWED_STATES
from app.tenants.models import Workspace
from app.tenants.scope import cross_workspace
from app.workflows.deadlines import add_working_days

# What the dashboard counts, in the order of its columns.
STATUSES: Final = {
    "open": "在办",
    "due_soon": "即将到期",
    "overdue": "逾期",
    "returned": "退办",
    "extended": "已延期",
    "reminder": "已提醒",
    "urge": "已催办",
    "supervise": "已督办",
    "transfer": "已移交",
}
STATUS_NOTES: Final = {
    "open": "承办单位尚未报送答复",
    "due_soon": "距办理期限不超过 1 个工作日",
    "overdue": "已过办理期限仍未答复（第十三条）",
    "returned": "退办待中心审核，或退办已同意、待重新交办（第十五条）",
    "extended": "经批准延期（第十四条）",
    "reminder": "已发提醒单（第十三条）",
    "urge": "已发催办单（第十九条）",
    "supervise": "已发督办单（第十九条）",
    "transfer": "已发移交函（第二十条）",
}
DIMENSIONS: Final = {
    "unit": "承办单位",
    "category": "类别",
    "topic": "主题",
    "region": "地区",
    "board": "板块",
}
RUNG_ORDER: Final = ("reminder", "urge", "supervise", "transfer")
# 第十九条 久催不办: two 催办 with no reply signed since (the ladder's default for 督办).
LONG_URGED: Final = 2
# 第十九条's flags: the centre's verdicts on a reply sent back, then the two the clock decides.
QUALITY_LABELS: Final = {**QUALITY_FLAGS, "overdue": "逾期办理", "long_urged": "久催不办"}
BLANK: Final = "（未填）"
PER_PAGE: Final = 50
LIVE_CASE_STATES: Final = ("received", "assigned")


def _owed() -> ColumnElement[bool]:
    return Assignment.state.in_(OWED_STATES)


def _has_rung(rung: str) -> ColumnElement[bool]:
    return exists().where(Escalation.assignment_id == Assignment.id, Escalation.rung == rung)


@dataclass(frozen=True)
class _Source:
    """Where the statuses are read from: the source tables evaluated live, or ``supervision_live``."""

    state: Any
    due_date: Any
    case_state: Any
    extended: ColumnElement[bool]
    rungs: dict[str, ColumnElement[bool]]


def _live_source() -> _Source:
    extended = exists().where(
        TimelineEntry.assignment_id == Assignment.id, TimelineEntry.action == "extension_approved"
    )
    return _Source(
        Assignment.state, Assignment.due_date, Case.state, extended, {r: _has_rung(r) for r in RUNG_ORDER}
    )


# The live set kept by the database on PostgreSQL (migration 0026): one row per lead assignment of
# a live case that is owed or being returned, with the case's dimensions and the flags that do
# not depend on the day. Not a model: it has no ORM life of its own (written by triggers only).
SUMMARY = table(
    "supervision_live",
    column("assignment_id", Integer),
    column("unit_id", Integer),
    column("case_id", Integer),
    column("state", String),
    column("case_state", String),
    column("due_date", Date),
    *(column(name, String) for name in ("category", "topic", "region", "board")),
    *(column(name, Boolean) for name in ("extended", *RUNG_ORDER)),
)


def _summary_source() -> _Source:
    c = SUMMARY.c
    return _Source(
        c.state, c.due_date, c.case_state, c.extended == true(), {r: c[r] == true() for r in RUNG_ORDER}
    )


def _conditions(src: _Source, today: date) -> dict[str, ColumnElement[bool]]:
    soon = add_working_days(today, 1)
    owed = src.state.in_(OWED_STATES)
    found: dict[str, ColumnElement[bool]] = {
        "open": owed,
        "due_soon": and_(owed, src.due_date >= today, src.due_date <= soon),
        "overdue": and_(owed, src.due_date < today),
        "returned": or_(
            src.state == "return_requested",
            and_(src.state == "returned", src.case_state == "received"),
        ),
        "extended": and_(owed, src.extended),
    }
    for rung in RUNG_ORDER:
        found[rung] = and_(owed, src.rungs[rung])
    return found


def conditions(today: date) -> dict[str, ColumnElement[bool]]:
    """Each status as a condition on (Assignment, Case)."""
    return _conditions(_live_source(), today)


def _base(columns: list[Any]) -> Any:
    """Lead assignments of live cases that are owed or being returned."""
    return (
        select(*columns)
        .select_from(Assignment)
        .join(Case, Case.id == Assignment.case_id)
        .where(
            Assignment.is_lead.is_(True),
            Case.state.in_(LIVE_CASE_STATES),
            or_(_owed(), Assignment.state.in_(("return_requested", "returned"))),
        )
    )


def _dimension(dimension: str) -> list[Any]:
    if dimension == "unit":
        return [Workspace.id, Workspace.name]
    column = {"category": Case.category, "topic": Case.topic, "region": Case.region, "board": Case.board}[
        dimension
    ]
    return [column, column]


@dataclass(frozen=True)
class Row:
    key: str
    label: str
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return self.counts.get("open", 0) + self.counts.get("returned", 0)


def _label(dimension: str, key: Any, raw: Any) -> str:
    if dimension == "category":
        return CATEGORIES.get(str(key), str(key))
    if dimension == "board":
        return BOARDS.get(str(key), str(key))
    return str(raw) if raw else BLANK


def _sums(today: date) -> list[Any]:
    return [func.sum(case((cond, 1), else_=0)).label(key) for key, cond in conditions(today).items()]


def totals(db: Session, today: date) -> dict[str, int]:
    """Every status across all units: one query."""
    with cross_workspace(db):
        row = db.execute(_base(_sums(today))).one()
    return {key: int(row._mapping[key] or 0) for key in STATUSES}


def breakdown(db: Session, dimension: str, today: date) -> list[Row]:
    """The statuses by unit, category, topic, region or board: one GROUP BY query."""
    key_col, label_col = _dimension(dimension)
    query = _base([key_col.label("k"), label_col.label("l"), *_sums(today)])
    if dimension == "unit":
        query = query.join(Workspace, Workspace.id == Assignment.workspace_id)
        query = query.group_by(Workspace.id, Workspace.name)
    else:
        query = query.group_by(key_col)
    with cross_workspace(db):
        result = db.execute(query).all()
    rows = [
        Row(
            key=str(r.k if r.k is not None else ""),
            label=_label(dimension, r.k, r.l),
            counts={key: int(r._mapping[key] or 0) for key in STATUSES},
        )
        for r in result
    ]
    return sorted(rows, key=lambda r: (-r.counts["overdue"], -r.counts["open"], r.label))


def _live_set(today: date, *, summary: bool) -> Any:
    """The live lead assignments with their dimensions and one 0/1 column per status."""
    if summary:
        src, c = _summary_source(), SUMMARY.c
        dims = {
            "unit": c.unit_id,
            "category": c.category,
            "topic": c.topic,
            "region": c.region,
            "board": c.board,
        }
        columns = [col.label(f"d_{dim}") for dim, col in dims.items()]
        flags = [case((cond, 1), else_=0).label(key) for key, cond in _conditions(src, today).items()]
        return select(*columns, *flags).select_from(SUMMARY)
    sources: dict[str, Any] = {
        "unit": Assignment.workspace_id,
        "category": Case.category,
        "topic": Case.topic,
        "region": Case.region,
        "board": Case.board,
    }
    flags = [case((cond, 1), else_=0).label(key) for key, cond in conditions(today).items()]
    return _base([*(col.label(f"d_{dim}") for dim, col in sources.items()), *flags])


def overdue_count(db: Session, today: date) -> int:
    """The dashboard's 逾期 total — lead assignments of live cases, still owed, past their due date
    — alone (the workspace homes' to-do lists): from ``supervision_live`` on PostgreSQL. Across
    units: the caller has checked the reader may see them."""
    with cross_workspace(db):
        if uses_summary(db):
            overdue = _conditions(_summary_source(), today)["overdue"]
            return db.scalar(select(func.count()).select_from(SUMMARY).where(overdue)) or 0
        live = _base([Assignment.id]).where(conditions(today)["overdue"]).subquery()
        return db.scalar(select(func.count()).select_from(live)) or 0


def uses_summary(db: Session) -> bool:
    """PostgreSQL keeps the live set in ``supervision_live`` (migration 0026); SQLite evaluates it."""
    return db.get_bind().dialect.name == "postgresql"


def dashboard(db: Session, today: date, *, summary: bool | None = None) -> dict[str, Any]:
    """The totals and every breakdown in ONE statement: the live set (a CTE, materialized because
    it is read six times), then the six aggregates over it as a UNION ALL. On PostgreSQL the live
    set is the ~20,000 narrow rows of ``supervision_live`` (kept by triggers in the same
    transaction as every change, so never stale); elsewhere, or with ``summary=False``, it is
    evaluated from the source tables (docs/benchmarks.md). Same figures, rows and order as
    ``totals`` and ``breakdown``."""
    if summary is None:
        summary = uses_summary(db)
    live = _live_set(today, summary=summary).cte("live")
    sums = [func.coalesce(func.sum(live.c[key]), 0).label(key) for key in STATUSES]
    parts: list[Any] = [select(literal("").label("dim"), literal("").label("k"), *sums)]
    for dim in DIMENSIONS:
        as_text = cast(live.c[f"d_{dim}"], String).label("k")
        parts.append(select(literal(dim).label("dim"), as_text, *sums).group_by(live.c[f"d_{dim}"]))
    with cross_workspace(db):
        result = db.execute(union_all(*parts)).all()
        names = {str(i): name for i, name in db.execute(select(Workspace.id, Workspace.name))}
    total = dict.fromkeys(STATUSES, 0)
    rows: dict[str, list[Row]] = {dim: [] for dim in DIMENSIONS}
    for r in result:
        counts = {key: int(r._mapping[key] or 0) for key in STATUSES}
        if not r.dim:
            total = counts
            continue
        key = "" if r.k is None else str(r.k)
        label = names.get(key, key) if r.dim == "unit" else _label(r.dim, key, key)
        rows[r.dim].append(Row(key=key, label=label, counts=counts))
    breakdowns = {
        dim: sorted(found, key=lambda row: (-row.counts["overdue"], -row.counts["open"], row.label))
        for dim, found in rows.items()
    }
    return {"totals": total, "breakdowns": breakdowns}


# --- drill-down ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Filters:
    status: str = "open"
    unit: int | None = None
    category: str | None = None
    topic: str | None = None
    region: str | None = None
    board: str | None = None

    @classmethod
    def parse(cls, params: Any) -> Filters:
        """From query parameters; a parameter present but empty means "not filled in"."""
        status = params.get("status") or "open"
        unit = str(params.get("unit") or "")
        return cls(
            status=status if status in STATUSES else "open",
            unit=int(unit) if unit.isdigit() else None,
            category=params.get("category"),
            topic=params.get("topic"),
            region=params.get("region"),
            board=params.get("board"),
        )

    def where(self, today: date) -> list[ColumnElement[bool]]:
        found = [conditions(today)[self.status]]
        if self.unit is not None:
            found.append(Assignment.workspace_id == self.unit)
        for name in ("category", "topic", "region", "board"):
            value = getattr(self, name)
            if value is not None:
                found.append(getattr(Case, name) == value)
        return found

    def query(self, **extra: Any) -> str:
        from urllib.parse import urlencode

        params: dict[str, Any] = {"status": self.status}
        if self.unit is not None:
            params["unit"] = self.unit
        for name in ("category", "topic", "region", "board"):
            if getattr(self, name) is not None:
                params[name] = getattr(self, name)
        return urlencode(params | extra)


def case_list(db: Session, filters: Filters, today: date, page: int = 1) -> tuple[list[Any], int]:
    """One page of the cases behind a count, and how many there are in all."""
    where = filters.where(today)
    columns = [
        Case.id,
        Case.title,
        Case.sheet_number,
        Case.category,
        Case.state,
        Assignment.state.label("assignment_state"),
        Assignment.due_date,
        Workspace.name.label("unit_name"),
    ]
    query = _base(columns).join(Workspace, Workspace.id == Assignment.workspace_id).where(*where)
    count = _base([func.count()]).where(*where)
    with cross_workspace(db):
        total = int(db.scalar(count) or 0)
        rows = list(
            db.execute(
                query.order_by(Assignment.due_date, Case.id)
                .limit(PER_PAGE)
                .offset((max(page, 1) - 1) * PER_PAGE)
            )
        )
    return rows, total


# --- 第十九条: the quality and escalation list --------------------------------------------------------


@dataclass(frozen=True)
class QualityRow:
    case_id: int
    assignment_id: int
    title: str
    sheet_number: str
    unit_name: str
    due_date: date
    state: str
    flags: tuple[str, ...]
    top_rung: str | None
    urges_without_result: int
    owed: bool = False  # still owed on a live case: 督查室 may issue a 督办单
    supervised: bool = False  # a 督办单 already issued for the current deadline (once per deadline)


def _top_rung() -> Any:
    rank = case({rung: n for n, rung in enumerate(RUNG_ORDER, 1)}, value=Escalation.rung, else_=0)
    return select(func.max(rank)).where(Escalation.assignment_id == Assignment.id).scalar_subquery()


def _urges_without_result() -> Any:
    # As in the sweep (app/escalation/services.py due_rows_query): 催办 since the last signature.
    return (
        select(func.count())
        .select_from(Escalation)
        .where(
            Escalation.assignment_id == Assignment.id,
            Escalation.rung == "urge",
            or_(Assignment.signed_at.is_(None), Escalation.issued_at > Assignment.signed_at),
        )
        .scalar_subquery()
    )


def quality_list(db: Session, today: date) -> list[QualityRow]:
    """Every lead assignment with a 第十九条 flag, with the highest rung of 三单一函 reached."""
    urged = _urges_without_result()
    owed = _owed()
    overdue = and_(owed, Assignment.due_date < today)
    long_urged = and_(owed, urged >= LONG_URGED)
    query = (
        select(
            Case.id,
            Assignment.id.label("assignment_id"),
            Case.title,
            Case.sheet_number,
            Case.quality_flag.label("case_flag"),
            case((and_(owed, Case.state == "assigned"), 1), else_=0).label("is_owed"),
            Assignment.quality_flag,
            Assignment.due_date,
            Assignment.state,
            Workspace.name.label("unit_name"),
            case((overdue, 1), else_=0).label("is_overdue"),
            case((long_urged, 1), else_=0).label("is_long_urged"),
            _top_rung().label("top_rung"),
            urged.label("urged"),
            exists()
            .where(
                Escalation.assignment_id == Assignment.id,
                Escalation.rung == "supervise",
                Escalation.due_date == Assignment.due_date,
            )
            .label("supervised"),
        )
        .select_from(Assignment)
        .join(Case, Case.id == Assignment.case_id)
        .join(Workspace, Workspace.id == Assignment.workspace_id)
        .where(
            Assignment.is_lead.is_(True),
            or_(Assignment.quality_flag != "", Case.quality_flag != "", overdue, long_urged),
        )
        .order_by(Assignment.due_date, Case.id)
    )
    with cross_workspace(db):
        result = db.execute(query).all()
    rows = []
    for r in result:
        flags = [f for f in dict.fromkeys((r.quality_flag, r.case_flag)) if f in QUALITY_FLAGS]
        if r.is_overdue:
            flags.append("overdue")
        if r.is_long_urged:
            flags.append("long_urged")
        rows.append(
            QualityRow(
                case_id=r.id,
                assignment_id=r.assignment_id,
                title=r.title,
                sheet_number=r.sheet_number or "",
                unit_name=r.unit_name,
                due_date=r.due_date,
                state=r.state,
                flags=tuple(flags),
                top_rung=RUNG_ORDER[r.top_rung - 1] if r.top_rung else None,
                urges_without_result=int(r.urged or 0),
                owed=bool(r.is_owed),
                supervised=bool(r.supervised),
            )
        )
    return rows
