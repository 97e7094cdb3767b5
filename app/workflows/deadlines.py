"""Deadlines on the official working-day calendar (app.calendar), all in Asia/Shanghai time.

- reply due: the 5th working day after the assignment sheet is received (第十条, 第十一条);
- reminder: the working day before the due date (第十三条);
- extension: at most 3 more working days after the current due date (第十四条);
- return: only on the day of receipt (第十五条, see the transition table's guard).
The day of receipt is not counted.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from app.calendar import days
from app.settings import get_settings

REPLY_WORKING_DAYS = 5  # 第十条, 第十一条
MAX_EXTENSION_DAYS = 3  # 第十四条


def local_date(moment: datetime) -> date:
    """The calendar date in Tongliao (Asia/Shanghai) of an aware datetime."""
    return moment.astimezone(ZoneInfo(get_settings().timezone)).date()


def add_working_days(start: date, count: int) -> date:
    return days.current().add(start, count)[0]


def is_provisional(*dates: date | None) -> bool:
    """True when a date lies in a year whose holidays are not loaded yet (shown as 暂定)."""
    calendar = days.current()
    return any(d is not None and not calendar.is_known(d) for d in dates)


def is_overdue(due: date | None, today: date | None = None) -> bool:
    """The reply is late: the due date has passed (in Tongliao's time)."""
    from datetime import UTC

    if due is None:
        return False
    return (today or local_date(datetime.now(UTC))) > due


def publication_due(delivered_at: datetime) -> date:
    """第十二条: the centre publishes on the day it accepts the reply (the next working day if the
    reply arrived on a rest day)."""
    day = local_date(delivered_at)
    calendar = days.current()
    while not calendar.is_working_day(day):
        day += timedelta(days=1)
    return day


def working_days_left(today: date, due: date) -> int:
    return days.current().working_days_between(today, due)


@dataclass(frozen=True)
class Deadline:
    received: date
    due: date
    reminder: date
    extended_max: date
    provisional: bool
    explanation: str

    def as_json(self) -> dict[str, object]:
        data = asdict(self)
        for key in ("received", "due", "reminder", "extended_max"):
            data[key] = data[key].isoformat()
        return data


def reply_deadline(received: date) -> Deadline:
    """Everything about the deadlines of an assignment sheet received on ``received``."""
    calendar = days.current()
    due, provisional = calendar.add(received, REPLY_WORKING_DAYS)
    extended, extended_provisional = calendar.add(due, MAX_EXTENSION_DAYS)
    return Deadline(
        received=received,
        due=due,
        reminder=calendar.previous_working_day(due),
        extended_max=extended,
        provisional=provisional or extended_provisional,
        explanation=calendar.explain(received, due, REPLY_WORKING_DAYS),
    )
