"""Working-day arithmetic. For now a plain weekday count (Monday–Friday); the deadline issue
replaces it with the official calendar (holidays and 调休 make-up days) kept in the database."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from app.settings import get_settings

REPLY_WORKING_DAYS = 5  # 第十条, 第十一条
MAX_EXTENSION_DAYS = 3  # 第十四条


def local_date(moment: datetime) -> date:
    """The calendar date in Tongliao (Asia/Shanghai) of an aware datetime."""
    return moment.astimezone(ZoneInfo(get_settings().timezone)).date()


def is_working_day(day: date) -> bool:
    return day.weekday() < 5


def add_working_days(start: date, days: int) -> date:
    """The ``days``-th working day after ``start`` (the start day itself is not counted)."""
    current = start
    counted = 0
    while counted < days:
        current += timedelta(days=1)
        if is_working_day(current):
            counted += 1
    return current


def working_days_left(today: date, due: date) -> int:
    """Working days from today to the due date (0 on the due date, negative when overdue)."""
    if due >= today:
        return sum(1 for n in range(1, (due - today).days + 1) if is_working_day(today + timedelta(days=n)))
    return -sum(1 for n in range(1, (today - due).days + 1) if is_working_day(due + timedelta(days=n)))
