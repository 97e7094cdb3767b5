"""Open statistics (``/stats``): how messages were handled, per month and per unit (第十八条, 第二十一条).

Counts only — no title, no name, no comment — computed by aggregate SQL (``GROUP BY``) through the
public reader (:func:`app.public.queries.reader`). The definitions, also printed under the tables:

* **month** — the calendar month in Tongliao (``settings.timezone``, Asia/Shanghai);
* **受理** (received) — messages the centre registered in the month, whatever became of them. For
  one unit, **交办**: the cases it was given as lead unit (承办单), counted in the month it first
  got each case that year;
* **答复公开** (replied) — replies published in the month (第十二条), replies given privately
  (第十八条) included; for a unit, the replies it wrote;
* **按期** (on time) — of those, the signed reply reached the centre (``reply_submitted_at``) no later
  than the case's due date (5 working days from dispatch plus any approved extension, 第十条,
  第十四条), both in Tongliao's calendar;
* **平均办理天数** — calendar days (24 hours each, not working days) from the last dispatch to the
  signed reply reaching the centre, averaged over the month's replies;
* **满意率** — (满意 + 基本满意) / rated, over the ratings of the month's replies: a rating counts in
  the month its reply was published, so every reply figure of a row is about the same replies.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final, TypeAlias
from zoneinfo import ZoneInfo

from sqlalchemy import Date, Float, Select, case, cast, func, select
from sqlalchemy.orm import Session
from sqlalchemy.sql import ColumnElement

from app.cases.models import Assignment, Case
from app.public.models import Rating
from app.public.queries import reader
from app.public.satisfaction import SATISFIED
from app.public.visibility import is_public_reply
from app.settings import get_settings
from app.tenants.models import Workspace, WorkspaceKind

# Any SELECT, whatever its columns.
AnySelect: TypeAlias = Select[*tuple[Any, ...]]

FIRST_YEAR: Final = 2000
UNIT_KINDS: Final = (WorkspaceKind.COUNTY.value, WorkspaceKind.BUREAU.value, WorkspaceKind.VERTICAL.value)


def _tz() -> ZoneInfo:
    return ZoneInfo(get_settings().timezone)


def this_year() -> int:
    return datetime.now(UTC).astimezone(_tz()).year


# --- figures ---------------------------------------------------------------------------------------


def _pct(part: int, whole: int) -> float | None:
    return round(100 * part / whole, 1) if whole else None


@dataclass(frozen=True)
class Figures:
    """The counts of one row; the rates are derived, so rows add up exactly."""

    received: int = 0
    replied: int = 0
    on_time: int = 0
    days_sum: float = 0.0  # calendar days, dispatch → signed reply, summed over ``timed`` replies
    timed: int = 0
    rated: int = 0
    satisfied: int = 0  # 满意 + 基本满意

    def __add__(self, other: Figures) -> Figures:
        return Figures(
            self.received + other.received,
            self.replied + other.replied,
            self.on_time + other.on_time,
            self.days_sum + other.days_sum,
            self.timed + other.timed,
            self.rated + other.rated,
            self.satisfied + other.satisfied,
        )

    @property
    def on_time_rate(self) -> float | None:
        return _pct(self.on_time, self.replied)

    @property
    def avg_days(self) -> float | None:
        return round(self.days_sum / self.timed, 1) if self.timed else None

    @property
    def satisfaction_rate(self) -> float | None:
        return _pct(self.satisfied, self.rated)

    @property
    def empty(self) -> bool:
        return not (self.received or self.replied or self.rated)


def percent(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f}%"


def day_count(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f}"


@dataclass(frozen=True)
class Row:
    key: str  # "2026-03" for a month, the unit's slug for a unit
    label: str
    figures: Figures
    short: str = ""  # a unit's short name, for the chart

    @property
    def short_label(self) -> str:
        return self.short or self.label


@dataclass(frozen=True)
class OpenStats:
    year: int
    unit_slug: str  # "" for all units
    unit_name: str
    months: list[Row]
    total: Row
    units: list[Row]  # every unit with something in the year; empty when one unit is chosen
    years: list[int]  # newest first
    unit_options: list[tuple[str, str]] = field(default_factory=list)  # (slug, name)

    @property
    def received_label(self) -> str:
        return "交办" if self.unit_slug else "受理留言"

    def chart_data(self) -> dict[str, Any]:
        """Plain numbers for static/js/stats.js (ECharts)."""
        return {
            "year": self.year,
            "receivedLabel": self.received_label,
            "months": [r.label for r in self.months],
            "received": [r.figures.received for r in self.months],
            "replied": [r.figures.replied for r in self.months],
            "onTimeRate": [r.figures.on_time_rate for r in self.months],
            "satisfactionRate": [r.figures.satisfaction_rate for r in self.months],
            "units": [r.short_label for r in self.units],
            "unitReceived": [r.figures.received for r in self.units],
            "unitReplied": [r.figures.replied for r in self.units],
            "unitOnTime": [r.figures.on_time for r in self.units],
        }

    def monthly_summary(self) -> str:
        """The monthly chart in words (its aria-label): the table below has every number."""
        total = self.total.figures
        who = self.unit_name or "全市"
        parts = [
            f"{self.year}年{who}各月办理情况图：{self.received_label}共{total.received}件，答复公开{total.replied}件"
        ]
        busiest = max(self.months, key=lambda r: r.figures.received, default=None)
        if busiest is not None and busiest.figures.received:
            parts.append(f"{self.received_label}最多的是{busiest.label}（{busiest.figures.received}件）")
        parts.append(f"全年按期答复率{percent(total.on_time_rate)}，满意率{percent(total.satisfaction_rate)}")
        return "，".join(parts) + "。各月数字见下表。"

    def unit_summary(self) -> str:
        if not self.units:
            return ""
        top = self.units[0]
        return (
            f"{self.year}年各承办单位答复公开件数图：共{len(self.units)}个单位，"
            f"答复公开最多的是{top.label}（{top.figures.replied}件）。各单位数字见下表。"
        )


# --- SQL -------------------------------------------------------------------------------------------


def _year_start(year: int) -> datetime:
    return datetime(year, 1, 1, tzinfo=_tz()).astimezone(UTC)


def _month_starts(year: int) -> list[datetime]:
    """The UTC instants at which months 2…12 and the next year begin in Tongliao."""
    return [
        datetime(year + (m == 13), 1 if m == 13 else m, 1, tzinfo=_tz()).astimezone(UTC) for m in range(2, 14)
    ]


def _in_year(column: Any, year: int) -> ColumnElement[bool]:
    in_year: ColumnElement[bool] = (column >= _year_start(year)) & (column < _year_start(year + 1))
    return in_year


def _month_of(column: Any, year: int) -> ColumnElement[int]:
    """The local month (1–12) of a timestamp inside ``year``: exact for any zone, any database."""
    return case(*[(column < start, month) for month, start in enumerate(_month_starts(year), 1)], else_=12)


def _local_date(db: Session, column: Any) -> ColumnElement[Any]:
    if db.get_bind().dialect.name == "postgresql":
        return cast(func.timezone(get_settings().timezone, column), Date)
    # SQLite stores UTC text: shift by the zone's offset (Asia/Shanghai has had no DST since 1991).
    offset = datetime.now(_tz()).utcoffset()
    hours = int(offset.total_seconds() // 3600) if offset else 0
    return func.date(column, f"{hours:+d} hours")


def _elapsed_days(db: Session, start: Any, end: Any) -> ColumnElement[Any]:
    if db.get_bind().dialect.name == "postgresql":
        return cast(func.extract("epoch", end - start), Float) / 86400.0
    return func.julianday(end) - func.julianday(start)


def _reply_rows(db: Session, year: int, group: Any, unit_id: int | None) -> AnySelect:
    """One row per reply published in ``year``: its group, on time, days taken and rating."""
    timed = Case.dispatched_at.is_not(None) & Case.reply_submitted_at.is_not(None)
    stmt = (
        select(
            group.label("grp"),
            case((_local_date(db, Case.reply_submitted_at) <= Case.due_date, 1), else_=0).label("on_time"),
            case((timed, _elapsed_days(db, Case.dispatched_at, Case.reply_submitted_at)), else_=None).label(
                "days"
            ),
            case((timed, 1), else_=0).label("timed"),
            case((Rating.id.is_not(None), 1), else_=0).label("rated"),
            case((Rating.score.in_(SATISFIED), 1), else_=0).label("satisfied"),
        )
        .select_from(Case)
        .outerjoin(Rating, Rating.case_id == Case.id)
        .where(is_public_reply(), _in_year(Case.published_at, year))
    )
    if unit_id is not None:
        stmt = stmt.where(Case.reply_unit_id == unit_id)
    return stmt


def _replies_by(db: Session, rows: AnySelect) -> dict[Any, Figures]:
    inner = rows.subquery()
    grouped = select(
        inner.c.grp,
        func.count(),
        func.sum(inner.c.on_time),
        func.sum(inner.c.days),
        func.sum(inner.c.timed),
        func.sum(inner.c.rated),
        func.sum(inner.c.satisfied),
    ).group_by(inner.c.grp)
    return {
        grp: Figures(0, n, int(on or 0), float(d or 0), int(t or 0), int(r or 0), int(s or 0))
        for grp, n, on, d, t, r, s in db.execute(grouped)
    }


def _count_by(db: Session, rows: AnySelect) -> dict[Any, int]:
    inner = rows.subquery()
    return {grp: int(n) for grp, n in db.execute(select(inner.c.grp, func.count()).group_by(inner.c.grp))}


def _first_lead_dispatches(year: int, unit_id: int | None) -> AnySelect:
    """Each case given to a unit as lead in ``year``, with the first such dispatch."""
    stmt = (
        select(
            Assignment.workspace_id,
            Assignment.case_id,
            func.min(Assignment.dispatched_at).label("at"),
        )
        .where(Assignment.is_lead.is_(True), _in_year(Assignment.dispatched_at, year))
        .group_by(Assignment.workspace_id, Assignment.case_id)
    )
    if unit_id is not None:
        stmt = stmt.where(Assignment.workspace_id == unit_id)
    return stmt


def _received_by_month(db: Session, year: int, unit_id: int | None) -> dict[int, int]:
    if unit_id is None:
        rows = select(_month_of(Case.registered_at, year).label("grp")).where(
            _in_year(Case.registered_at, year)
        )
    else:
        first = _first_lead_dispatches(year, unit_id).subquery()
        rows = select(_month_of(first.c.at, year).label("grp"))
    return _count_by(db, rows)


def _received_by_unit(db: Session, year: int) -> dict[int, int]:
    first = _first_lead_dispatches(year, None).subquery()
    return _count_by(db, select(first.c.workspace_id.label("grp")))


# --- the page's figures ----------------------------------------------------------------------------


def _months_shown(year: int) -> int:
    now = datetime.now(UTC).astimezone(_tz())
    return now.month if year == now.year else 12


def _units(db: Session, ids: Iterable[int]) -> dict[int, tuple[str, str, str]]:
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    rows = db.execute(
        select(Workspace.id, Workspace.slug, Workspace.name, Workspace.short_name).where(
            Workspace.id.in_(wanted)
        )
    )
    return {row.id: (row.slug, row.name, row.short_name) for row in rows}


def _unit_options(db: Session) -> list[tuple[str, str]]:
    """Units that have ever been given a case as lead unit (only choices that find something)."""
    # EXISTS per unit (the index on assignments.workspace_id), not a DISTINCT over every assignment.
    given = (
        select(Assignment.id)
        .where(Assignment.workspace_id == Workspace.id, Assignment.is_lead.is_(True))
        .exists()
    )
    rows = db.execute(
        select(Workspace.slug, Workspace.name)
        .where(Workspace.kind.in_(UNIT_KINDS), given)
        .order_by(Workspace.name)
    )
    return [(slug, name) for slug, name in rows]


def _years(db: Session) -> list[int]:
    first = db.scalar(select(func.min(Case.registered_at)))
    current = this_year()
    start = first.astimezone(_tz()).year if first else current
    return list(range(current, max(FIRST_YEAR, min(start, current)) - 1, -1))


def parse_year(raw: str | None) -> int:
    """The year asked for, or this year (a year in the future has nothing to show)."""
    try:
        year = int((raw or "").strip())
    except ValueError:
        return this_year()
    return year if FIRST_YEAR <= year <= this_year() else this_year()


def open_statistics(year: int, unit: str = "") -> OpenStats:
    """The figures of ``year`` per month (for one unit, by its slug, or all) and per unit."""
    with reader() as db:
        unit_row = (
            db.execute(
                select(Workspace.id, Workspace.name).where(
                    Workspace.slug == unit, Workspace.kind.in_(UNIT_KINDS)
                )
            ).one_or_none()
            if unit
            else None
        )
        unit_id = unit_row.id if unit_row else None
        received = _received_by_month(db, year, unit_id)
        replies = _replies_by(db, _reply_rows(db, year, _month_of(Case.published_at, year), unit_id))
        months = [
            Row(
                f"{year}-{m:02d}",
                f"{m}月",
                Figures(received=received.get(m, 0)) + replies.get(m, Figures()),
            )
            for m in range(1, _months_shown(year) + 1)
        ]
        total = Figures()
        for row in months:
            total += row.figures
        units: list[Row] = []
        if unit_id is None:
            unit_received = _received_by_unit(db, year)
            unit_replies = _replies_by(db, _reply_rows(db, year, Case.reply_unit_id, None))
            names = _units(db, [*unit_received, *(k for k in unit_replies if k is not None)])
            units = sorted(
                (
                    Row(
                        slug,
                        name,
                        Figures(received=unit_received.get(uid, 0)) + unit_replies.get(uid, Figures()),
                        short,
                    )
                    for uid, (slug, name, short) in names.items()
                ),
                key=lambda r: (-r.figures.replied, -r.figures.received, r.label),
            )
        return OpenStats(
            year=year,
            unit_slug=unit if unit_row else "",
            unit_name=unit_row.name if unit_row else "",
            months=months,
            total=Row("", "全年合计", total),
            units=units,
            years=_years(db),
            unit_options=_unit_options(db),
        )
