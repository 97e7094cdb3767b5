"""Loading calendar years: from the chinesecalendar package, or by an administrator from the State
Council's yearly notice. Each load replaces the whole year, in one transaction."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from app.accounts.identity import CurrentUser
from app.audit.services import record
from app.calendar import days
from app.calendar.models import CalendarDay, CalendarYear
from app.errors import InvalidInput


def package_years() -> dict[int, list[tuple[date, bool, str]]]:
    """Every year the chinesecalendar package knows, as (day, is_workday, Chinese name)."""
    import chinese_calendar

    by_year: dict[int, list[tuple[date, bool, str]]] = {}
    for table, is_workday in ((chinese_calendar.holidays, False), (chinese_calendar.workdays, True)):
        for day, name in table.items():
            label = days.HOLIDAY_NAMES.get(str(name), str(name or ""))
            by_year.setdefault(day.year, []).append((day, is_workday, label))
    # Every year from the first to the last the package covers is known, even one without entries.
    for year in range(min(by_year), max(by_year) + 1):
        by_year.setdefault(year, [])
    return by_year


def replace_year(
    db: Session,
    year: int,
    entries: list[tuple[date, bool, str]],
    *,
    source: str,
    actor: CurrentUser | None = None,
) -> CalendarYear:
    db.execute(delete(CalendarDay).where(CalendarDay.year == year))
    row = db.get(CalendarYear, year)
    if row is None:
        row = CalendarYear(year=year, source=source)
        db.add(row)
    row.source = source
    row.loaded_by_id = actor.user_id if actor else None
    db.flush()
    for day, is_workday, name in sorted(entries):
        db.add(CalendarDay(day=day, year=year, is_workday=is_workday, name=name[:40]))
    db.flush()
    if actor is not None:
        record(
            db,
            "calendar.year_loaded",
            actor_id=actor.user_id,
            workspace_id=actor.workspace_id,
            target=str(year),
            ip=actor.ip,
            holidays=sum(1 for e in entries if not e[1]),
            workdays=sum(1 for e in entries if e[1]),
        )
    days.invalidate()
    return row


def seed_from_package(db: Session) -> int:
    """Load every year the package knows that the database does not (an admin's year is kept)."""
    known = set(db.scalars(select(CalendarYear.year)))
    loaded = 0
    for year, entries in sorted(package_years().items()):
        if year not in known:
            replace_year(db, year, entries, source="chinesecalendar")
            loaded += 1
    return loaded


_LINE = re.compile(r"^(\d{4}-\d{1,2}-\d{1,2})(?:\s*(?:至|到|~|—|-{2})\s*(\d{4}-\d{1,2}-\d{1,2}))?\s*(.*)$")


@dataclass(frozen=True)
class YearInput:
    year: int
    holidays: str  # lines: "2027-02-10至2027-02-17 春节" or "2027-01-01 元旦"
    workdays: str  # lines: "2027-02-07 春节"


def _parse(text: str, year: int, *, label: str, is_workday: bool) -> list[tuple[date, bool, str]]:
    entries: list[tuple[date, bool, str]] = []
    for n, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        match = _LINE.match(line)
        if not match:
            raise InvalidInput(
                f"{label}第 {n} 行格式不正确：应为 “2027-02-10 春节” 或 “2027-02-10至2027-02-17 春节”。"
            )
        try:
            first = date.fromisoformat(_pad(match.group(1)))
            last = date.fromisoformat(_pad(match.group(2))) if match.group(2) else first
        except ValueError as exc:
            raise InvalidInput(f"{label}第 {n} 行的日期不存在。") from exc
        if last < first or (last - first).days > 31:
            raise InvalidInput(f"{label}第 {n} 行的日期范围不正确。")
        if first.year != year or last.year != year:
            raise InvalidInput(f"{label}第 {n} 行的日期不在 {year} 年内。")
        day = first
        while day <= last:
            if is_workday and day.weekday() < 5:
                raise InvalidInput(f"{label}第 {n} 行：{day:%Y-%m-%d} 本是工作日，不需要调休上班。")
            entries.append((day, is_workday, match.group(3).strip()))
            day += timedelta(days=1)
    return entries


def _pad(value: str) -> str:
    y, m, d = value.split("-")
    return f"{y}-{int(m):02d}-{int(d):02d}"


def load_year(db: Session, actor: CurrentUser, data: YearInput) -> CalendarYear:
    """An administrator adds or corrects a year from the State Council's notice."""
    if not 2000 <= data.year <= 2100:
        raise InvalidInput("请填写年份（2000–2100）。", field="year")
    holidays = _parse(data.holidays, data.year, label="放假日期", is_workday=False)
    workdays = _parse(data.workdays, data.year, label="调休上班日期", is_workday=True)
    if not holidays:
        raise InvalidInput("请至少填写一条放假安排。", field="holidays")
    clash = {d for d, *_ in holidays} & {d for d, *_ in workdays}
    if clash:
        raise InvalidInput(f"{min(clash):%Y-%m-%d} 同时被填为放假和调休上班。")
    row = replace_year(db, data.year, holidays + workdays, source="admin", actor=actor)
    recompute_open_due_dates(db, data.year)
    return row


def recompute_open_due_dates(db: Session, year: int) -> int:
    """Due dates counted provisionally before ``year`` was loaded, counted again on the real
    calendar: every open assignment whose deadline could reach into that year (第十条, 第十四条)."""
    from app.cases.models import Assignment, Case
    from app.cases.services import OPEN_ASSIGNMENT_STATES
    from app.tenants.scope import cross_workspace
    from app.workflows.deadlines import REPLY_WORKING_DAYS, local_date

    calendar = days.load(db)  # includes the year just loaded in this transaction
    changed = 0
    with cross_workspace(db):
        rows = db.scalars(
            select(Assignment).where(
                Assignment.state.in_(OPEN_ASSIGNMENT_STATES),
                Assignment.due_date >= date(year, 1, 1) - timedelta(days=31),
            )
        )
        for assignment in rows:
            pending = assignment.state in ("extension_requested", "extension_pending")
            extra = 0 if pending else (assignment.extension_days or 0)
            due, _ = calendar.add(local_date(assignment.dispatched_at), REPLY_WORKING_DAYS + extra)
            if due != assignment.due_date:
                assignment.due_date = due
                changed += 1
                if assignment.is_lead:
                    case = db.get(Case, assignment.case_id)
                    if case is not None and case.state == "assigned":
                        case.due_date = due
        db.flush()
    return changed


def years(db: Session) -> list[tuple[CalendarYear, int, int]]:
    rows = []
    for year in db.scalars(select(CalendarYear).order_by(CalendarYear.year.desc())):
        entries = list(db.scalars(select(CalendarDay.is_workday).where(CalendarDay.year == year.year)))
        rows.append((year, entries.count(False), entries.count(True)))
    return rows
