"""Due-date computation speed: 1,000,000 reply deadlines on the official calendar.

Usage: .venv/bin/python bench/bench_deadlines.py [--count 1000000]

Compares, in the same run, the calendar's add() (binary search in the index of working days)
with the bare limit: a plain weekday count with no holidays at all.
"""

from __future__ import annotations

import argparse
import os
import random
import time
from datetime import date, timedelta

os.environ.setdefault("MINPAN_BROKER_URL", "stub")

from app.calendar import days
from app.calendar.days import WorkCalendar
from app.calendar.services import package_years


def weekdays_only(start: date, n: int) -> date:
    current, counted = start, 0
    while counted < n:
        current += timedelta(days=1)
        if current.weekday() < 5:
            counted += 1
    return current


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=1_000_000)
    args = parser.parse_args()
    data = package_years()
    calendar = WorkCalendar(data, {d: days.DayRule(w, n) for entries in data.values() for d, w, n in entries})
    rng = random.Random(5)
    starts = [date(2021, 1, 1) + timedelta(days=rng.randrange(5 * 365)) for _ in range(args.count)]
    t0 = time.perf_counter()
    for start in starts:
        calendar.add(start, 5)
    official = time.perf_counter() - t0
    t0 = time.perf_counter()
    for start in starts:
        weekdays_only(start, 5)
    bare = time.perf_counter() - t0
    print(
        f"{args.count:,} due dates: official calendar {official:.2f} s, weekday count {bare:.2f} s, "
        f"ratio {official / bare:.2f}×"
    )


if __name__ == "__main__":
    main()
