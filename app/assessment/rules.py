"""The deduction rules of the yearly assessment (第二十一条: 反向扣分) and their SQL.

Each rule is one SELECT that lists its deductions — one row per failing, with the unit, the case,
its assignment-sheet number and title and the day it counts on — so that a score explains itself
case by case; the ranking wraps the same SELECT in a ``GROUP BY workspace_id`` count. A year for
every unit is therefore seven aggregate queries, whatever the number of cases.

The rules, precisely (a deduction counts in the year of its day; during the year only what has
happened up to today counts, so the ranking is the projected score):

- ``overdue`` 逾期办理: a lead unit's assignment (牵头, 第十条) whose due date (after any approved
  extension) fell in the year and has passed, and whose reply was signed by the principal after
  that due date (Tongliao time) — or is still owed and unsigned. Day: the due date. Once per
  assignment (a co-unit's input and a return accepted by the centre are not replies owed).
- ``urge_ignored`` 催办无果 (久催不办): a 催办单 after which the sweep had to issue a further 催办单 or
  a 督办单 for the same deadline. The sweep issues those only when no signed reply came by the
  next threshold of the centre's ladder (``EscalationPolicy``: the next 催办 after
  ``urge_repeat_days`` working days, 督办 after ``supervise_after_days`` overdue working days or
  ``supervise_after_urges`` 催办). The last 催办 before the reply is therefore not counted. Day: the
  催办's date.
- ``supervise`` 督办: each 督办单 issued to the unit. Day: its date.
- ``transfer`` 移交: each 移交函 the supervision office decided (第二十条). Day: its date.
- ``quality`` 质量问题 (答非所问、敷衍塞责、推诿扯皮、重答轻办, 第十九条): each time the centre sent
  the unit's signed reply back with a quality flag (the unit's timeline entry 退回重办). Day: that day.
- ``invalid_return`` 无效退办: each return the centre refused (不同意退办, 第十五条; the unit's
  timeline entry 退办未同意). Day: that day.
- ``unsatisfied`` 群众不满意: each 不满意 rating (满意率回访) of a reply the unit gave (the case's
  replying unit). Day: the rating's date. Only where the ratings table exists.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, Final, TypeAlias
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Date, Select, and_, cast, exists, func, literal, null, or_, select
from sqlalchemy.orm import aliased

from app.cases.models import Assignment, Case, TimelineEntry
from app.errors import InvalidInput
from app.escalation.models import Escalation
from app.escalation.services import OWED_STATES
from app.settings import get_settings

AnySelect: TypeAlias = Select[*tuple[Any, ...]]

try:  # 满意率回访 is another feature's table; the rule is simply absent without it
    from app.public.models import Rating
except ImportError:  # pragma: no cover
    Rating = None  # type: ignore[assignment,misc]


@dataclass(frozen=True)
class Rule:
    key: str
    label: str
    unit_label: str  # what one deduction is "per"
    article: str


RULES: Final = (
    Rule("overdue", "逾期办理", "每件逾期", "第十九条"),
    Rule("urge_ignored", "催办无果", "每份无果的催办单", "第十九条"),
    Rule("supervise", "督办", "每份督办单", "第十九条"),
    Rule("transfer", "移交纪检监察", "每份移交函", "第二十条"),
    Rule("quality", "答复质量问题", "每次因答非所问等被退回重办", "第十九条"),
    Rule("invalid_return", "无效退办", "每次退办未获同意", "第十五条"),
    Rule("unsatisfied", "群众不满意", "每个不满意评价", "第十八条"),
)
RULE_LABELS: Final = {r.key: r.label for r in RULES}
MAX_POINTS: Final = Decimal(100)


@dataclass(frozen=True)
class Points:
    """A year's rules in tenths of a point (exact sums on every database)."""

    base: int = 1000
    overdue: int = 10
    urge_ignored: int = 5
    supervise: int = 20
    transfer: int = 50
    quality: int = 10
    invalid_return: int = 5
    unsatisfied: int = 5

    def of(self, key: str) -> int:
        return int(getattr(self, key))

    def as_points(self) -> dict[str, str]:
        return {f.name: show(getattr(self, f.name)) for f in fields(self)}

    @classmethod
    def parse(cls, data: dict[str, Any]) -> Points:
        """From the centre admin's form; ``InvalidInput`` lists every problem in Chinese."""
        values: dict[str, int] = {}
        problems: list[str] = []
        for name, label in (("base", "基础分"), *((r.key, f"{r.label}（{r.unit_label}）") for r in RULES)):
            raw = str(data.get(name, "")).strip()
            try:
                value = Decimal(raw)
            except InvalidOperation:
                value = Decimal(-1)
            low = Decimal(1) if name == "base" else Decimal(0)
            if not raw or not low <= value <= MAX_POINTS or (value * 10) % 1:
                problems.append(f"{label}：请填写 {low} 到 100 之间的数，最多一位小数。")
            else:
                values[name] = int(value * 10)
        if problems:
            raise InvalidInput(" ".join(problems), field="base")
        return cls(**values)


def show(tenths: int) -> str:
    """12 → "1.2", 10 → "1"."""
    return f"{Decimal(tenths) / 10:.1f}".removesuffix(".0")


@dataclass(frozen=True)
class Window:
    """The days a year's deductions may fall on: 1 January to the end of the year or today."""

    year: int
    today: date
    start: date | None = None  # a shorter span (a bulletin's month or quarter)
    end: date | None = None

    @property
    def first(self) -> date:
        return self.start or date(self.year, 1, 1)

    @property
    def last(self) -> date:
        return min(self.end or date(self.year, 12, 31), self.today)

    def moments(self) -> tuple[datetime, datetime]:
        """[start, end) in UTC of the window's days in Tongliao's time."""
        tz = ZoneInfo(get_settings().timezone)
        start = datetime.combine(self.first, time(), tz).astimezone(UTC)
        end = datetime.combine(self.last + timedelta(days=1), time(), tz).astimezone(UTC)
        return start, end


def signed_day(dialect: str) -> ColumnElement[Any]:
    """The Tongliao date of the principal's signature, in SQL (China has had no DST since 1991)."""
    if dialect == "postgresql":
        return cast(func.timezone(get_settings().timezone, Assignment.signed_at), Date)
    return func.date(Assignment.signed_at, "+8 hours")


# Every rule's SELECT has these columns, in this order.
COLUMNS: Final = ("workspace_id", "case_id", "assignment_id", "sheet_number", "title", "day", "note")


def _overdue(w: Window, dialect: str) -> AnySelect:
    a = Assignment
    late = and_(a.signed_at.is_not(None), signed_day(dialect) > a.due_date)
    owed = and_(a.signed_at.is_(None), a.state.in_(OWED_STATES))
    return select(
        a.workspace_id, a.case_id, a.id, a.sheet_number, a.title, a.due_date, a.signed_at.label("note")
    ).where(a.is_lead, a.due_date >= w.first, a.due_date <= w.last, a.due_date < w.today, or_(late, owed))


def _rung(w: Window, rung: str, *, slim: bool = False) -> AnySelect:
    e, a = Escalation, Assignment
    where = (e.rung == rung, e.issued_on >= w.first, e.issued_on <= w.last)
    if slim:  # counting: the unit is the escalation's own (every escalation has its assignment)
        return select(e.workspace_id).where(*where)
    return (
        select(e.workspace_id, e.case_id, e.assignment_id, a.sheet_number, a.title, e.issued_on, e.number)
        .join(a, a.id == e.assignment_id)
        .where(*where)
    )


def _followed(w: Window) -> ColumnElement[bool]:
    later = aliased(Escalation)
    e = Escalation
    return exists().where(
        later.assignment_id == e.assignment_id,
        later.due_date == e.due_date,
        later.issued_on <= w.today,  # known by then (a December 催办 may be followed in January)
        or_(
            and_(later.rung == "urge", later.ordinal > e.ordinal),
            and_(later.rung == "supervise", later.issued_on > e.issued_on),
        ),
    )


def _urge_ignored(w: Window, dialect: str) -> AnySelect:
    return _rung(w, "urge").where(_followed(w))


def _timeline(w: Window, action: str, *, slim: bool = False) -> AnySelect:
    t, a = TimelineEntry, Assignment
    start, end = w.moments()
    where = (t.action == action, t.at >= start, t.at < end)
    if slim:  # counting: as the listing's inner join, only the steps of an assignment
        return select(t.workspace_id).where(*where, t.assignment_id.is_not(None))
    return (
        select(t.workspace_id, t.case_id, t.assignment_id, a.sheet_number, a.title, t.at, a.quality_flag)
        .join(a, a.id == t.assignment_id)
        .where(*where)
    )


def _unsatisfied(w: Window, dialect: str) -> AnySelect | None:
    if Rating is None:
        return None
    start, end = w.moments()
    c = Case
    return (
        select(
            c.reply_unit_id,
            c.id,
            literal(None).label("assignment_id"),
            c.sheet_number,
            c.title,
            Rating.created_at,
            null().label("note"),
        )
        .join(c, c.id == Rating.case_id)
        .where(Rating.score == "unsatisfied", c.reply_unit_id.is_not(None))
        .where(Rating.created_at >= start, Rating.created_at < end)
    )


def rule_query(key: str, w: Window, dialect: str) -> AnySelect | None:
    """The SELECT listing the deductions of one rule in ``w`` (None: the rule has no data here)."""
    match key:
        case "overdue":
            return _overdue(w, dialect)
        case "urge_ignored":
            return _urge_ignored(w, dialect)
        case "supervise" | "transfer":
            return _rung(w, key)
        case "quality":
            return _timeline(w, "reopen")
        case "invalid_return":
            return _timeline(w, "return_rejected")
        case "unsatisfied":
            return _unsatisfied(w, dialect)
    raise ValueError(key)


def counts_query(key: str, w: Window, dialect: str) -> AnySelect | None:
    """``(workspace_id, n)`` per unit for one rule: the aggregate behind the ranking.

    The rungs and timeline steps are counted without the join to ``assignments`` that their
    listing makes for the sheet number and title (a probe per row: most of the time at a million
    cases, docs/benchmarks.md); the conditions are the same, so are the counts."""
    if key in ("supervise", "transfer", "urge_ignored"):
        query = _rung(w, key if key != "urge_ignored" else "urge", slim=True)
        if key == "urge_ignored":
            query = query.where(_followed(w))
    elif key in ("quality", "invalid_return"):
        query = _timeline(w, "reopen" if key == "quality" else "return_rejected", slim=True)
    else:
        found = rule_query(key, w, dialect)
        if found is None:
            return None
        query = found
    sub = query.subquery()
    unit = sub.c[0]
    return select(unit, func.count()).group_by(unit)


def for_unit(query: AnySelect, unit_id: int) -> AnySelect:
    """Restrict a rule's SELECT to one unit (its first column)."""
    sub = query.subquery()
    return select(*sub.c).where(sub.c[0] == unit_id).order_by(sub.c[5], sub.c[1])
