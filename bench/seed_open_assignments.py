"""Seed a PostgreSQL database with N OPEN lead assignments in the steady state of a daily sweep.

Usage:
    MINPAN_DATABASE_URL=postgresql+psycopg://minpan@127.0.0.1:5432/minpan_sweep_bench \
        .venv/bin/python -m bench.seed_open_assignments --open 1000000

Creates the database if it does not exist (owned by the app role), builds the schema through the
migrations, loads the demo units and people and gives every county, bureau and vertical unit a
principal (主要负责同志, who receives the unit's 三单), then COPYs (as the superuser, see
bench/seed_cases.py) N cases in state ``assigned`` with one open lead assignment each:

* received on a working day of the 12 months up to "today" (the latest working day, unless
  --today), ids in the order of receipt, due on the 5th working day after; 3 % with an
  extension of 1–3 working days, so due dates run from about a year ago to about two weeks ahead;
* the 提醒单/催办单/督办单 a sweep running every working day would already have issued before today
  (``app.escalation.services.simulate`` per due date), with their keys, numbers and counters, so
  that today's first sweep only issues what crosses a threshold today.

Idempotent: a database already seeded for the same N and day is kept (the database's comment
records them); --fresh drops and recreates a bench database seeded for another N or day.
"""

from __future__ import annotations

import argparse
import io
import os
import random
import time
from collections import Counter, defaultdict
from datetime import UTC, date, datetime, timedelta
from datetime import time as time_of_day
from zoneinfo import ZoneInfo

from sqlalchemy import create_engine, make_url, select, text

from app import migrate
from app.calendar import days
from app.db import get_engine, system_session
from app.demo import load_demo
from app.escalation.services import OWED_STATES, RUNGS, Thresholds, _key, simulate
from app.permissions import Role
from app.settings import get_settings
from app.workflows.deadlines import local_date
from bench.seed_cases import (
    ASSIGNMENT_COLUMNS,
    CASE_COLUMNS,
    TITLES,
    _copy,
    _line,
    rebuild_live_set,
    without_triggers,
)

MARKER = "minpan sweep bench"
UNIT_KINDS = ("county", "bureau", "vertical")
# How the open work is spread over the owed states (weights).
STATE_WEIGHTS = {
    "pending": 20,
    "handling": 50,
    "awaiting_signoff": 12,
    "return_drafted": 2,
    "extension_requested": 6,
    "extension_pending": 6,
    "explanation_requested": 4,
}
ESCALATION_COLUMNS = (
    "workspace_id",
    "key",
    "assignment_id",
    "case_id",
    "rung",
    "ordinal",
    "number",
    "due_date",
    "issued_on",
    "issued_at",
    "reason",
    "addressee",
    "fanned_out_at",
)
CASE_ID_BASE = 10_000_000  # far above the demo's cases


def admin_url(database: str | None = None) -> str:
    """The superuser's URL on the same server (MINPAN_BENCH_ADMIN_URL overrides)."""
    url = make_url(os.environ.get("MINPAN_BENCH_ADMIN_URL") or get_engine().url.set(username="postgres"))
    if database:
        url = url.set(database=database)
    return url.render_as_string(hide_password=False)


def latest_working_day(day: date) -> date:
    calendar = days.current()
    while not calendar.is_working_day(day):
        day -= timedelta(days=1)
    return day


def marker_text(total: int, today: date) -> str:
    return f"{MARKER}: open={total} today={today.isoformat()}"


def read_marker() -> tuple[int, date] | None:
    """(open assignments, today) the database was seeded for, or None."""
    with create_engine(admin_url()).connect() as conn:
        comment = conn.execute(
            text(
                "SELECT shobj_description(oid, 'pg_database') FROM pg_database "
                "WHERE datname = current_database()"
            )
        ).scalar()
    if not comment or not comment.startswith(MARKER):
        return None
    fields = dict(part.split("=") for part in comment.split(": ", 1)[1].split())
    return int(fields["open"]), date.fromisoformat(fields["today"])


def ensure_database(fresh: bool) -> None:
    """Create the bench database (owned by the app role) unless it exists; with ``fresh``, drop a
    bench database first (only one that this script marked, or an empty one)."""
    url = get_engine().url
    name, owner = url.database, url.username
    assert name and owner and name.replace("_", "").isalnum(), name
    if name == "minpan_test":
        raise SystemExit("refusing to seed the test database")
    server = create_engine(admin_url("postgres"), isolation_level="AUTOCOMMIT")
    with server.connect() as conn:
        found = conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}).scalar()
        if found and fresh:
            comment = conn.execute(
                text("SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = :n"),
                {"n": name},
            ).scalar()
            if comment and not comment.startswith(MARKER):
                raise SystemExit(f"{name} is not a sweep bench database; not dropping it")
            get_engine().dispose()
            conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
            found = None
        if not found:
            conn.execute(text(f'CREATE DATABASE "{name}" OWNER "{owner}"'))
            print(f"created database {name}")
    server.dispose()


def ensure_principals() -> int:
    """A principal in every county, bureau and vertical unit that has none (the demo gives seven
    units one); bench accounts cannot sign in. Returns how many units have one."""
    from app.accounts.models import User
    from app.tenants.models import Membership, Workspace

    with system_session() as db:
        units = db.execute(
            select(Workspace.id, Workspace.slug).where(Workspace.kind.in_(UNIT_KINDS)).order_by(Workspace.id)
        ).all()
        have = set(db.scalars(select(Membership.workspace_id).where(Membership.role == Role.PRINCIPAL.value)))
        for n, (workspace_id, slug) in enumerate(units):
            if workspace_id in have:
                continue
            user = User(
                username=f"bench.{slug}.principal",
                display_name=f"{slug}负责人",
                password_hash="!bench-account-no-login",  # noqa: S106
                email=f"{slug}.principal@tongliao.example",
                mobile=f"139{47510000 + n:08d}",
            )
            db.add(user)
            db.flush()
            db.add(Membership(workspace_id=workspace_id, user_id=user.id, role=Role.PRINCIPAL.value))
        return len(units)


def history(dues: set[date], t: Thresholds) -> dict[date, list[tuple[date, str, int]]]:
    """Per due date: the (day, rung, ordinal) a daily sweep issues to a reply never given."""
    return {due: simulate(due, t, days_after=40) for due in dues}


def seed(total: int, today: date | None = None, *, fresh: bool = False, batch: int = 250_000) -> date:
    """Seed (or keep) the steady state; returns the "today" it was seeded for."""
    ensure_database(fresh)
    migrate.upgrade()  # a database seeded by an earlier release follows the code's schema
    seeded = read_marker()
    if seeded is not None and seeded[0] == total and (today is None or seeded[1] == today):
        print(f"already seeded: {seeded[0]:,} open assignments for {seeded[1]}")
        return seeded[1]
    started = time.perf_counter()
    with system_session() as db:
        load_demo(db)
    days.invalidate()
    today = today or latest_working_day(local_date(datetime.now(UTC)))
    engine = get_engine()
    with engine.begin() as conn:
        conn.execute(text("SELECT set_config('minpan.system', 'on', true)"))
        if conn.execute(text("SELECT count(*) FROM cases WHERE id >= :b"), {"b": CASE_ID_BASE}).scalar():
            raise SystemExit(
                f"{engine.url.database} holds another bench seed ({seeded}); run with --fresh to recreate it"
            )
        centre = conn.execute(text("SELECT id FROM workspaces WHERE kind = 'centre'")).scalar()
        next_assignment = (
            conn.execute(text("SELECT coalesce(max(id), 0) FROM assignments")).scalar() or 0
        ) + 1
    units_with_principal = ensure_principals()
    with engine.begin() as conn:
        conn.execute(text("SELECT set_config('minpan.system', 'on', true)"))
        units = [
            r[0]
            for r in conn.execute(
                text("SELECT id FROM workspaces WHERE kind IN ('county', 'bureau', 'vertical') ORDER BY id")
            )
        ]
    calendar = days.current()
    t = Thresholds()
    zone = ZoneInfo(get_settings().timezone)
    working = [
        today - timedelta(days=n)
        for n in range(365, -1, -1)
        if calendar.is_working_day(today - timedelta(days=n))
    ]
    rng = random.Random(20261127)
    states, weights = list(STATE_WEIGHTS), list(STATE_WEIGHTS.values())
    assert set(states) <= set(OWED_STATES)
    admin = create_engine(admin_url())

    # 1. cases and their open lead assignments; keep (id, case, unit, due) for the history. Ids
    #    follow the order of receipt, as in production (a case and its sheet get their ids when
    #    they are registered and dispatched), so the rungs of one morning belong to neighbouring
    #    ids — not to ids spread over the whole range.
    receipts = sorted(rng.choice(working) for _ in range(total))
    open_rows: dict[date, list[tuple[int, int, int]]] = defaultdict(list)
    columns = ("id", *ASSIGNMENT_COLUMNS)
    made = 0
    while made < total:
        n = min(batch, total - made)
        cases, assignments = io.StringIO(), io.StringIO()
        for i in range(made, made + n):
            cid, aid = CASE_ID_BASE + i, next_assignment + i
            received = receipts[i]
            due = calendar.add(received, 5)[0]
            if rng.random() < 0.03:  # extended (第十四条)
                due = calendar.add(due, rng.randint(1, 3))[0]
            at = datetime.combine(received, datetime.min.time(), tzinfo=zone).replace(hour=9) + timedelta(
                seconds=rng.randrange(8 * 3600)
            )
            stamp = at.astimezone(UTC).isoformat()
            title = rng.choice(TITLES)
            body = f"{title}，请有关部门尽快处理。"
            sheet = f"通留〔{received.year}〕S{cid}号"
            unit = rng.choice(units)
            cases.write(
                _line(
                    {
                        "id": cid,
                        "workspace_id": centre,
                        "state": "assigned",
                        "version": 1,
                        "board": "mayor",
                        "source_id": f"S-{cid}",
                        "title": title,
                        "body": body,
                        "posted_at": stamp,
                        "category": "consult",
                        "registered_at": stamp,
                        "sheet_number": sheet,
                        "dispatched_at": stamp,
                        "due_date": due.isoformat(),
                        "reply_private": "false",
                        "published_at": None,
                    },
                    CASE_COLUMNS,
                )
            )
            assignments.write(
                _line(
                    {
                        "id": aid,
                        "workspace_id": unit,
                        "case_id": cid,
                        "round": 1,
                        "is_lead": "true",
                        "state": rng.choices(states, weights)[0],
                        "version": 1,
                        "sheet_number": sheet,
                        "title": title,
                        "body": body,
                        "category": "consult",
                        "posted_at": stamp,
                        "dispatched_at": stamp,
                        "due_date": due.isoformat(),
                        "reply_private": "false",
                        "draft_version": 0,
                    },
                    columns,
                )
            )
            open_rows[due].append((aid, cid, unit))
        with admin.begin() as conn:
            without_triggers(conn)
            _copy(conn, "cases", list(CASE_COLUMNS), cases)
            _copy(conn, "assignments", list(columns), assignments)
        made += n
        print(f"{made:>9,} assignments  {time.perf_counter() - started:6.1f} s", flush=True)

    # 2. what the daily sweep issued before today, numbered in the order it was issued: each day's
    #    rungs for one due date take a block of numbers in the order of that due date's rows. The
    #    rows are written in assignment order, so that the indexes fill from left to right.
    ladder = {due: [s for s in steps if s[0] < today] for due, steps in history(set(open_rows), t).items()}
    counters: Counter[tuple[str, int]] = Counter()
    first: dict[tuple[date, date, str, int], int] = {}
    issued = sorted((day, due, rung, n) for due, steps in ladder.items() for day, rung, n in steps)
    for day, due, rung, ordinal in issued:
        series = RUNGS[rung][1]
        first[day, due, rung, ordinal] = counters[series, day.year] + 1
        counters[series, day.year] += len(open_rows[due])
    position = {aid: (due, n) for due, rows in open_rows.items() for n, (aid, _, _) in enumerate(rows)}
    stamps = {  # issued at 8 o'clock on the day
        day: datetime.combine(day, time_of_day(8), tzinfo=zone).astimezone(UTC).isoformat()
        for day, _, _, _ in issued
    }
    buf, written = io.StringIO(), 0

    def flush_escalations() -> None:
        nonlocal buf
        with admin.begin() as conn:
            without_triggers(conn)
            _copy(conn, "escalations", list(ESCALATION_COLUMNS), buf)
        buf = io.StringIO()
        print(f"{written:>9,} escalations  {time.perf_counter() - started:6.1f} s", flush=True)

    for i in range(total):
        aid, cid = next_assignment + i, CASE_ID_BASE + i
        due, n = position[aid]
        unit = open_rows[due][n][2]
        for day, rung, ordinal in ladder[due]:
            series = RUNGS[rung][1]
            buf.write(
                _line(
                    {
                        "workspace_id": unit,
                        "key": _key(aid, rung, due, ordinal),
                        "assignment_id": aid,
                        "case_id": cid,
                        "rung": rung,
                        "ordinal": ordinal,
                        "number": f"{series}〔{day.year}〕{first[day, due, rung, ordinal] + n}号",
                        "due_date": due.isoformat(),
                        "issued_on": day.isoformat(),
                        "issued_at": stamps[day],
                        "reason": "",
                        "addressee": "",
                        "fanned_out_at": stamps[day],  # fanned out that morning
                    },
                    ESCALATION_COLUMNS,
                )
            )
            written += 1
            if written % batch == 0:
                flush_escalations()
    flush_escalations()

    # 3. counters and sequences continue after the seed; statistics and visibility map as after
    #    autovacuum; the database's comment records what it holds.
    with admin.begin() as conn:
        for (series, year), value in counters.items():
            conn.execute(
                text(
                    "INSERT INTO counters (series, year, value) VALUES (:s, :y, :v) "
                    "ON CONFLICT (series, year) DO UPDATE SET value = greatest(counters.value, :v)"
                ),
                {"s": series, "y": year, "v": value},
            )
        # The deadlines already supervised leave the sweep's reading (as the fan-out sets it).
        conn.execute(
            text(
                "UPDATE assignments a SET supervised_for = a.due_date WHERE EXISTS (SELECT 1 "
                "FROM escalations e WHERE e.assignment_id = a.id AND e.rung = 'supervise' "
                "AND e.due_date = a.due_date)"
            )
        )
        rebuild_live_set(conn)
        for table in ("cases", "assignments", "escalations"):
            conn.execute(
                text(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "  # noqa: S608
                    f"(SELECT max(id) FROM {table}))"
                )
            )
    with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE"))
        conn.execute(text(f"COMMENT ON DATABASE \"{engine.url.database}\" IS '{marker_text(total, today)}'"))
    admin.dispose()
    print(
        f"seeded {total:,} open assignments over {len(units)} units ({units_with_principal} with a "
        f"principal) and {written:,} escalations issued before {today} "
        f"in {time.perf_counter() - started:.1f} s"
    )
    return today


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--open", type=int, default=1_000_000, help="open lead assignments")
    parser.add_argument("--today", type=date.fromisoformat, help="the day of the sweep (a working day)")
    parser.add_argument("--fresh", action="store_true", help="drop and recreate a bench database")
    args = parser.parse_args()
    seed(args.open, args.today, fresh=args.fresh)


if __name__ == "__main__":
    main()
