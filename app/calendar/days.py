"""Working-day arithmetic on the official calendar (第十条, 第十一条, 第十三条, 第十四条).

The receipt day is not counted. A date in a year the calendar does not know is never guessed
silently: weekdays count as working days and the result is marked provisional.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

HOLIDAY_NAMES = {
    "New Year's Day": "元旦",
    "Spring Festival": "春节",
    "Tomb-sweeping Day": "清明节",
    "Labour Day": "劳动节",
    "Dragon Boat Festival": "端午节",
    "Mid-autumn Festival": "中秋节",
    "National Day": "国庆节",
    "Anti-Fascist 70th Day": "抗战胜利纪念日",
}


@dataclass(frozen=True)
class DayRule:
    is_workday: bool
    name: str


class WorkCalendar:
    """An immutable snapshot: known years and their exceptional days, with a sorted index of the
    working days of the known range and, per day, its place in that index, so that adding n
    working days is two list lookups."""

    def __init__(self, known_years: Iterable[int], exceptions: dict[date, DayRule]) -> None:
        self.known_years = frozenset(known_years)
        self.exceptions = dict(exceptions)
        self._workdays: list[date] = []
        # Per day of the known range (by ordinal from _base): how many of _workdays are on or
        # before it, i.e. bisect_right(_workdays, day) computed once — add() is one list index.
        self._after: list[int] = []
        self._base = 0
        # Per known year: the last year of the run of contiguous known years it starts, so that a
        # result past a gap year (which would be skipped silently) is recognised at once.
        self._run_end: dict[int, int] = {}
        if self.known_years:
            day, last = date(min(self.known_years), 1, 1), date(max(self.known_years), 12, 31)
            self._base = day.toordinal()
            while day <= last:
                if day.year in self.known_years and self._standard(day):
                    self._workdays.append(day)
                self._after.append(len(self._workdays))
                day += timedelta(days=1)
            for year in sorted(self.known_years, reverse=True):
                self._run_end[year] = self._run_end.get(year + 1, year)

    def _standard(self, day: date) -> bool:
        exc = self.exceptions.get(day)
        return exc.is_workday if exc else day.weekday() < 5

    def is_known(self, day: date) -> bool:
        return day.year in self.known_years

    def is_working_day(self, day: date) -> bool:
        return self._standard(day) if self.is_known(day) else day.weekday() < 5

    def add(self, start: date, days: int) -> tuple[date, bool]:
        """(the ``days``-th working day after ``start``, provisional?)."""
        offset = start.toordinal() - self._base
        if 0 <= offset < len(self._after):
            k = self._after[offset] + days - 1  # days < 0: counted back from start's working day
            run_end = self._run_end.get(start.year)  # None: start's year is not known
            if run_end is not None and 0 <= k < len(self._workdays):
                result = self._workdays[k]
                # Contiguous known years only: a gap year in between would be skipped silently.
                if result.year <= run_end:
                    return result, False
        current, counted, provisional = start, 0, False
        while counted < days:
            current += timedelta(days=1)
            if not self.is_known(current):
                provisional = True
            if self.is_working_day(current):
                counted += 1
        return current, provisional

    def previous_working_day(self, day: date) -> date:
        current = day - timedelta(days=1)
        while not self.is_working_day(current):
            current -= timedelta(days=1)
        return current

    def working_days_between(self, today: date, due: date) -> int:
        """Working days from today to due (0 on the due date, negative when overdue)."""
        if due >= today:
            return sum(
                1 for n in range(1, (due - today).days + 1) if self.is_working_day(today + timedelta(n))
            )
        return -sum(1 for n in range(1, (today - due).days + 1) if self.is_working_day(due + timedelta(n)))

    def explain(self, start: date, due: date, days: int) -> str:
        """收到 2月12日 → 第5个工作日 2月26日（2月14日调休上班；2月15日至23日春节放假）"""
        notes: list[str] = []
        run: list[date] = []
        run_name = ""

        def flush() -> None:
            if run:
                first, last = run[0], run[-1]
                span = _md(first) if first == last else f"{_md(first)}至{_md(last, same_month=first.month)}"
                notes.append(f"{span}{run_name}放假")

        day = start + timedelta(days=1)
        while day <= due:
            exc = self.exceptions.get(day) if self.is_known(day) else None
            if exc and not exc.is_workday:
                if run and (day - run[-1]).days == 1 and exc.name == run_name:
                    run.append(day)
                else:
                    flush()
                    run, run_name = [day], exc.name
            else:
                flush()
                run, run_name = [], ""
                if exc and exc.is_workday and day.weekday() >= 5:
                    notes.append(f"{_md(day)}调休上班")
            day += timedelta(days=1)
        flush()
        unknown = sorted({d.year for d in (start, due) if not self.is_known(d)})
        if unknown:
            notes.append(f"{'、'.join(map(str, unknown))}年放假安排尚未录入，按周一至周五暂计")
        tail = f"（{'；'.join(notes)}）" if notes else ""
        return f"收到 {_md(start)} → 第{days}个工作日 {_md(due)}{tail}"


def _md(day: date, same_month: int | None = None) -> str:
    return f"{day.day}日" if same_month == day.month else f"{day.month}月{day.day}日"


_lock = threading.Lock()
_cache: tuple[float, WorkCalendar] | None = None
TTL_SECONDS = 30.0  # another process's change to the calendar is seen within this time


def current() -> WorkCalendar:
    global _cache
    now = time.monotonic()
    cached = _cache
    if cached is not None and now - cached[0] < TTL_SECONDS:
        return cached[1]
    with _lock:
        calendar = load()
        _cache = (now, calendar)
        return calendar


def invalidate() -> None:
    global _cache
    _cache = None


def load(db: Session | None = None) -> WorkCalendar:
    """The calendar as the database holds it (in ``db``'s transaction when given: a year being
    loaded is already visible to the code that loads it)."""
    from app.db import system_session

    if db is not None:
        return _read(db)
    with system_session() as session:
        return _read(session)


def _read(db: Session) -> WorkCalendar:
    from sqlalchemy import select

    from app.calendar.models import CalendarDay, CalendarYear

    years = list(db.scalars(select(CalendarYear.year)))
    exceptions = {d.day: DayRule(d.is_workday, d.name) for d in db.scalars(select(CalendarDay))}
    return WorkCalendar(years, exceptions)
