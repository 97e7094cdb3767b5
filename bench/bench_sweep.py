"""Deadline sweep at scale: one ``sweep(today)`` over N open lead assignments (default 1,000,000).

Usage:
    MINPAN_DATABASE_URL=postgresql+psycopg://minpan@127.0.0.1:5432/minpan_sweep_bench \
        .venv/bin/python -m bench.bench_sweep --open 1000000 --runs 5

Seeds the database first when needed (bench/seed_open_assignments.py: the steady state of a sweep
that has run every working day for a year). Then, as the app role, compares in the same run:

* the bare limit: one hand-written SQL statement selecting the same due rows (same predicate, same
  counts), run through the driver alone with the same row-level security context;
* today's first sweep, which issues the day's new rungs (checked against what the calendar says
  today's rungs are), and a repeated sweep the same day, which issues nothing (95 of a day's 96).

The statement and the sweeps are timed in interleaved rounds (statement, first sweep, two repeated
sweeps, statement), so that the machine's changing load hits both sides of the ratio. Each first
sweep commits like the real one; the rows it wrote (escalations, timeline, audit,
notifications, outbox — everything above the ids noted before it) are deleted afterwards, its
counters and publication flags restored and the tables vacuumed, so every run starts from the
same state and the database stays seeded for "today". Per-part times come from the driver's
cursor calls (SQLAlchemy events), the rest of the sweep is Python. Prints Markdown for
docs/benchmarks.md; --explain adds EXPLAIN (ANALYZE, BUFFERS) of the due-row query, of the
sweep's decision and of the INSERT with which the largest unit's fan-out writes its rungs (rolled
back).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

os.environ.setdefault("MINPAN_BROKER_URL", "stub")

import psycopg
from sqlalchemy import create_engine, event, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session

from app.calendar import days
from app.db import get_engine, session_factory, system_session
from app.escalation.services import (
    OWED_STATES,
    Thresholds,
    due_rows_query,
    fan_out,
    overdue_days,
    plan,
    reminder_day,
    simulate,
    sweep,
    thresholds,
)
from bench.seed_open_assignments import admin_url, seed

OWED = ", ".join(f"'{s}'" for s in OWED_STATES)
# The due rows written by hand: owed lead assignments due by the end of the reminder window with no
# 督办 for their current due date, with the counts the plan needs.
RAW_SQL = f"""
SELECT a.id, a.workspace_id, a.case_id, a.due_date, a.sheet_number, a.title,
       (SELECT count(*) FROM escalations e
         WHERE e.assignment_id = a.id AND e.rung = 'reminder' AND e.due_date = a.due_date) AS reminders,
       (SELECT count(*) FROM escalations e
         WHERE e.assignment_id = a.id AND e.rung = 'urge' AND e.due_date = a.due_date) AS urges,
       (SELECT count(*) FROM escalations e
         WHERE e.assignment_id = a.id AND e.rung = 'urge'
           AND (a.signed_at IS NULL OR e.issued_at > a.signed_at)) AS urges_without_result
  FROM assignments a
 WHERE a.state IN ({OWED}) AND a.is_lead IS true AND a.due_date <= %(horizon)s
   AND a.supervised_for IS DISTINCT FROM a.due_date
   AND NOT EXISTS (SELECT 1 FROM escalations e
                    WHERE e.assignment_id = a.id AND e.rung = 'supervise' AND e.due_date = a.due_date)
"""  # noqa: S608
WRITTEN = ("escalations", "escalation_batches", "timeline_entries", "audit_events", "notifications", "outbox")
DECISION = "decision: due rows and their rungs (SELECT)"
INSERT = "INSERT escalations (a unit's batch, from arrays, numbers and keys in SQL)"


def horizon(today: date, t: Thresholds) -> date:
    """The last due date whose reminder day has come (the query's bound)."""
    day = today
    while reminder_day(day + timedelta(days=1), t.reminder_days_before) <= today:
        day += timedelta(days=1)
    return day


def previous_working_day(day: date) -> date:
    return days.current().previous_working_day(day)


def _dsn() -> str:
    return get_engine().url.set(drivername="postgresql").render_as_string(hide_password=False)


def raw_rows(conn: psycopg.Connection[Any], until: date) -> list[tuple[Any, ...]]:
    with conn.transaction(), conn.cursor() as cur:
        # JIT off, as in every transaction of the app (app/tenants/scope.py): compiling this
        # statement costs ~55 ms of its ~130 — the bare limit is the statement without it.
        cur.execute("SELECT set_config('minpan.system', 'on', true), set_config('jit', 'off', true)")
        cur.execute(RAW_SQL, {"horizon": until})
        return cur.fetchall()


def app_rows(today: date, t: Thresholds) -> list[Any]:
    with system_session() as db:
        return list(db.execute(due_rows_query(today, t)))


def planned(rows: list[Any], today: date, t: Thresholds) -> Counter[str]:
    out: Counter[str] = Counter()
    for row in rows:
        for rung, _ in plan(
            today,
            row.due_date,
            t,
            reminders=row.reminders,
            urges=row.urges,
            urges_without_result=row.urges_without_result,
            overdue=overdue_days(today, row.due_date),
        ):
            out[rung] += 1
    return out


def expected_today(today: date, t: Thresholds) -> Counter[str]:
    """Today's rungs from the calendar alone: per due date, what a daily sweep issues today."""
    out: Counter[str] = Counter()
    with system_session() as db:
        per_due = db.execute(
            text(
                f"SELECT due_date, count(*) FROM assignments WHERE is_lead AND state IN ({OWED}) "  # noqa: S608
                "GROUP BY due_date"
            )
        ).all()
    for due, n in per_due:
        for day, rung, _ in simulate(due, t, days_after=40):
            if day == today:
                out[rung] += n
    return out


# --- per-part timing of a sweep ---------------------------------------------------------------------


@dataclass
class Parts:
    sql: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    calls: Counter[str] = field(default_factory=Counter)
    rows: Counter[str] = field(default_factory=Counter)
    commit: float = 0.0


def _kind(statement: str) -> str:
    head = " ".join(statement.split()[:3]).lower()
    if head.startswith("insert into escalations") and "unnest(" in statement:
        return INSERT
    if "as overdue" in statement.lower() and "from assignments" in statement.lower():
        return DECISION
    if "not (exists" in statement.lower() and "from assignments" in statement.lower():
        return "due-row query"
    if head.startswith("select min(assignments.due_date)"):
        return "oldest due date on the ladder"
    if head.startswith("select counters."):
        return "lock counters"
    for table in WRITTEN:
        if head.startswith(f"insert into {table}"):
            return f"insert {table}"
    if head.startswith("update escalation_policy"):
        return "lock"
    if head.startswith("update assignments"):
        return "update assignments.supervised_for"
    if head.startswith("update escalations"):
        return "claim escalations (fanned_out_at)"
    if head.startswith("update counters"):
        return "numbers (counters)"
    return "other SQL"


@contextmanager
def timed_parts() -> Iterator[Parts]:
    parts = Parts()
    engine = get_engine()
    marks: dict[str, float] = {}

    def before(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        conn.info["bench_t0"] = time.perf_counter()

    def after(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> None:
        kind = _kind(statement)
        if kind == "insert outbox" and many and parameters:  # messages, or queued work (documents)
            channel = parameters[0].get("channel") if isinstance(parameters[0], dict) else None
            kind += " (e-mail, SMS)" if channel in ("email", "sms", "webhook") else f" ({channel})"
        parts.sql[kind] += time.perf_counter() - conn.info.pop("bench_t0")
        parts.calls[kind] += 1
        parts.rows[kind] += len(parameters) if many else max(cursor.rowcount, 0)

    def before_commit(session: Session) -> None:
        marks["commit"] = time.perf_counter()

    def after_commit(session: Session) -> None:
        parts.commit += time.perf_counter() - marks.pop("commit", time.perf_counter())

    hooks: list[tuple[Any, str, Callable[..., Any]]] = [
        (engine, "before_cursor_execute", before),
        (engine, "after_cursor_execute", after),
        (Session, "before_commit", before_commit),
        (Session, "after_commit", after_commit),
    ]
    for target, name, fn in hooks:
        event.listen(target, name, fn)
    try:
        yield parts
    finally:
        for target, name, fn in hooks:
            event.remove(target, name, fn)


# --- putting the database back as it was before today's first sweep ----------------------------------


@dataclass
class Snapshot:
    max_ids: dict[str, int]
    counters: list[tuple[str, int, int]]
    flagged: list[tuple[int, date | None]]


def snapshot(admin: Any) -> Snapshot:
    with admin.connect() as conn:
        snap = Snapshot(
            {t: conn.execute(text(f"SELECT coalesce(max(id), 0) FROM {t}")).scalar() for t in WRITTEN},  # noqa: S608
            [tuple(r) for r in conn.execute(text("SELECT series, year, value FROM counters"))],
            [
                tuple(r)
                for r in conn.execute(
                    text("SELECT id, publication_flagged_for FROM cases WHERE state = 'under_review'")
                )
            ],
        )
    # Kept in the database too: a run killed mid-round is put back by the next run (resume()).
    with admin.begin() as conn:
        conn.execute(text("CREATE TABLE IF NOT EXISTS bench_sweep_snapshot (data text NOT NULL)"))
        conn.execute(text("DELETE FROM bench_sweep_snapshot"))
        conn.execute(
            text("INSERT INTO bench_sweep_snapshot (data) VALUES (:d)"),
            {"d": json.dumps(dataclasses.asdict(snap), default=str)},
        )
    return snap


def resume(admin: Any) -> None:
    """Undo the first sweep of a run that was killed before it could restore the database."""
    with admin.connect() as conn:
        exists_ = conn.execute(text("SELECT to_regclass('bench_sweep_snapshot') IS NOT NULL")).scalar()
        data = exists_ and conn.execute(text("SELECT data FROM bench_sweep_snapshot")).scalar()
    if data:
        raw = json.loads(data)
        print("restoring the database after an interrupted run", flush=True)
        restore(
            admin,
            Snapshot(
                raw["max_ids"],
                [tuple(c) for c in raw["counters"]],
                [(i, date.fromisoformat(d) if d else None) for i, d in raw["flagged"]],
            ),
        )


def restore(admin: Any, snap: Snapshot) -> None:
    with admin.begin() as conn:
        # The 督办单 the sweep issued set supervised_for: back to what the older rungs say.
        conn.execute(
            text(
                "UPDATE assignments a SET supervised_for = (SELECT max(e.due_date) FROM escalations e "
                "WHERE e.assignment_id = a.id AND e.rung = 'supervise' AND e.id <= :top) "
                "WHERE a.id IN (SELECT assignment_id FROM escalations WHERE id > :top AND rung = 'supervise')"
            ),
            {"top": snap.max_ids["escalations"]},
        )
        for table, top in snap.max_ids.items():
            conn.execute(text(f"DELETE FROM {table} WHERE id > :top"), {"top": top})  # noqa: S608
        conn.execute(text("DELETE FROM counters"))
        for series, year, value in snap.counters:
            conn.execute(
                text("INSERT INTO counters (series, year, value) VALUES (:s, :y, :v)"),
                {"s": series, "y": year, "v": value},
            )
        for case_id, flagged in snap.flagged:
            conn.execute(
                text("UPDATE cases SET publication_flagged_for = :f WHERE id = :i"),
                {"f": flagged, "i": case_id},
            )
        conn.execute(text("DROP TABLE IF EXISTS bench_sweep_snapshot"))
    with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text(f"VACUUM {', '.join(WRITTEN)}, counters, assignments"))


# --- the run --------------------------------------------------------------------------------------------


def _median(samples: list[float]) -> float:
    return statistics.median(samples)


def _spread(samples: list[float], unit: float = 1.0, fmt: str = "{:.2f}") -> str:
    return " / ".join(fmt.format(s * unit) for s in samples)


def explain(conn: psycopg.Connection[Any], today: date, t: Thresholds) -> str:
    compiled = due_rows_query(today, t).compile(
        dialect=postgresql.dialect(),  # type: ignore[no-untyped-call]
        compile_kwargs={"literal_binds": True},
    )
    with conn.transaction(), conn.cursor() as cur:
        cur.execute("SELECT set_config('minpan.system', 'on', true), set_config('jit', 'off', true)")
        cur.execute(f"EXPLAIN (ANALYZE, BUFFERS) {compiled}")
        return "\n".join(r[0] for r in cur.fetchall())


def explain_sweep(today: date) -> str:
    """EXPLAIN (ANALYZE, BUFFERS) of the big statements as today's first sweep and the largest
    unit's fan-out run them, rolled back: the decision (a SELECT) and the INSERT of the unit's
    rungs from arrays, its foreign-key and trigger time included."""
    from sqlalchemy import func, select

    from app.cases.models import Assignment
    from app.escalation import services
    from app.tenants.scope import TenantContext, bind_tenant

    engine = get_engine()
    plans: list[str] = []

    def explain_it(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> Any:
        if _kind(statement) == INSERT:
            statement = f"EXPLAIN (ANALYZE, BUFFERS) {statement}"
        return statement, parameters

    def keep(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.startswith("EXPLAIN"):
            plans.append(f"{INSERT}:\n\n" + "\n".join(r[0] for r in cursor.fetchall()))

    with session_factory()() as db:
        bind_tenant(db, TenantContext.system_context())
        t = services._lock(db)
        oldest = db.scalar(select(func.min(Assignment.due_date)).where(*services._on_ladder(today, t)))
        compiled = services.decisions(today, t, oldest).compile(
            dialect=engine.dialect, compile_kwargs={"render_postcompile": True}
        )
        rows = db.connection().exec_driver_sql(
            f"EXPLAIN (ANALYZE, BUFFERS) {compiled}", compiled.construct_params()
        )
        plans.append(f"{DECISION}:\n\n" + "\n".join(r[0] for r in rows))
        decided = services.issue_due(db, today, t)
        largest = max(decided, key=lambda unit: sum(decided[unit].values()))
        event.listen(engine, "before_cursor_execute", explain_it, retval=True)
        event.listen(engine, "after_cursor_execute", keep)
        try:
            written = services.expand(db, largest)
        finally:
            event.remove(engine, "before_cursor_execute", explain_it)
            event.remove(engine, "after_cursor_execute", keep)
        db.rollback()
    return (
        "\n\n".join(plans)
        + f"\n\n({sum(sum(c.values()) for c in decided.values())} rungs decided, "
        + f"{written} of them the largest unit's)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--open", type=int, default=1_000_000, help="open lead assignments to seed")
    parser.add_argument("--today", type=date.fromisoformat, help="seed for this day (a working day)")
    parser.add_argument("--fresh", action="store_true", help="recreate the bench database")
    parser.add_argument("--runs", type=int, default=5, help="rounds: first sweep, reset (default 5)")
    parser.add_argument("--explain", action="store_true", help="print EXPLAIN ANALYZE of the due-row query")
    args = parser.parse_args()

    today = seed(args.open, args.today, fresh=args.fresh)
    days.invalidate()
    with system_session() as db:
        t = thresholds(db)
    until = horizon(today, t)
    admin = create_engine(admin_url())
    resume(admin)
    conn = psycopg.connect(_dsn())

    # Checks: the hand-written statement selects exactly the app's rows; the seed is the steady
    # state (yesterday's sweep has nothing left to issue); today's rungs are the calendar's.
    app = app_rows(today, t)
    raw = raw_rows(conn, until)
    assert sorted(r[0] for r in raw) == sorted(r.id for r in app), "raw SQL and due_rows_query differ"
    yesterday = previous_working_day(today)
    left = planned(app_rows(yesterday, t), yesterday, t)
    assert not left, f"the seed is not the steady state: {yesterday} would still issue {dict(left)}"
    expected = expected_today(today, t)
    assert planned(app, today, t) == expected, (planned(app, today, t), expected)

    # Each round: the hand-written statement, today's first sweep, two repeated sweeps, the statement
    # again, then the reset; interleaved so that a change in the machine's load hits both sides.
    raw_s: list[float] = []
    first_s: list[float] = []
    repeat_s: list[float] = []
    fan_s: list[float] = []
    fan_max_s: list[float] = []
    part_runs: list[Parts] = []
    issued: dict[str, int] = {}
    units = 0

    def time_raw() -> None:
        start = time.perf_counter()
        raw_rows(conn, until)
        raw_s.append(time.perf_counter() - start)

    for _ in range(args.runs):
        time_raw()
        snap = snapshot(admin)
        try:
            with timed_parts() as parts:
                start = time.perf_counter()
                result = sweep(today)
                first_s.append(time.perf_counter() - start)
            part_runs.append(parts)
            assert dict(result.issued) == {r: expected.get(r, 0) for r in result.issued}, (
                result.issued,
                expected,
            )
            issued = dict(result.issued)
            units = len(result.workspaces)
            # The fan-out the sweep queued (one job per unit, run by the workers in parallel): here
            # one unit after another in this process; the largest unit is the parallel floor.
            per_unit: list[float] = []
            fanned = 0
            for workspace_id in sorted(result.workspaces):
                start = time.perf_counter()
                fanned += fan_out(workspace_id)
                per_unit.append(time.perf_counter() - start)
            assert fanned == result.total, (fanned, result.total)
            fan_s.append(sum(per_unit))
            fan_max_s.append(max(per_unit, default=0.0))
            for _ in range(2):
                start = time.perf_counter()
                again = sweep(today)
                repeat_s.append(time.perf_counter() - start)
                assert again.total == 0, again.issued
        finally:
            restore(admin, snap)
        time_raw()
        print(
            f"  raw {raw_s[-2] * 1000:.0f} / {raw_s[-1] * 1000:.0f} ms, first sweep {first_s[-1]:.2f} s, "
            f"fan-out {fan_s[-1]:.2f} s (largest unit {fan_max_s[-1]:.2f} s), "
            f"repeated {repeat_s[-2]:.2f} / {repeat_s[-1]:.2f} s",
            flush=True,
        )

    with admin.connect() as c:
        escalations = c.execute(text("SELECT count(*) FROM escalations")).scalar()
    raw_ms = _median(raw_s) * 1000
    first, repeat = _median(first_s), _median(repeat_s)
    print(
        f"\n{args.open:,} open lead assignments, {escalations:,} escalations issued before {today}; "
        f"due rows today: {len(raw):,} (due by {until}); {len(first_s)} first sweeps, "
        f"{len(repeat_s)} repeated, {len(raw_s)} hand-written statements; load average "
        f"{' '.join(f'{x:.1f}' for x in os.getloadavg())} on {os.cpu_count()} cores.\n"
    )
    print("| what | median | runs | / raw SQL |")
    print("|---|---|---|---|")
    print(f"| hand-written SQL, due rows only | {raw_ms:.0f} ms | {_spread(raw_s, 1000, '{:.0f}')} ms | 1× |")
    rungs = ", ".join(f"{n:,} {r}" for r, n in issued.items())
    print(
        f"| first sweep of the day ({rungs}) | {first:.2f} s | {_spread(first_s)} s "
        f"| {first * 1000 / raw_ms:.1f}× |"
    )
    fan, fan_max = _median(fan_s), _median(fan_max_s)
    print(
        f"| its fan-out, {units} units one after another (timeline, notices, audit, documents queued) "
        f"| {fan:.2f} s | {_spread(fan_s)} s | {fan * 1000 / raw_ms:.1f}× |"
    )
    print(
        f"| its fan-out, the largest unit alone (the floor with parallel workers) | {fan_max:.2f} s "
        f"| {_spread(fan_max_s)} s | {fan_max * 1000 / raw_ms:.1f}× |"
    )
    print(
        f"| repeated sweep the same day (issues nothing) | {repeat:.2f} s | {_spread(repeat_s)} s "
        f"| {repeat * 1000 / raw_ms:.1f}× |"
    )

    # Where the first sweep's time goes: the median run (the upper one of an even number).
    middle = sorted(range(len(first_s)), key=first_s.__getitem__)[len(first_s) // 2]
    parts, total = part_runs[middle], first_s[middle]
    sql_total = sum(parts.sql.values())
    print(f"\n| first sweep (run {middle + 1}), part | s | statements | rows |")
    print("|---|---|---|---|")
    for kind, seconds in sorted(parts.sql.items(), key=lambda kv: -kv[1]):
        print(f"| {kind} | {seconds:.2f} | {parts.calls[kind]} | {parts.rows[kind]:,} |")
    python = total - sql_total - parts.commit
    print(f"| commit | {parts.commit:.2f} | 1 | |")
    print(f"| Python (building the statement, SQLAlchemy, reading RETURNING) | {python:.2f} | | |")
    print(f"| total | {total:.2f} | | |")

    if args.explain:
        print("\nEXPLAIN (ANALYZE, BUFFERS) of due_rows_query:\n")
        print(explain(conn, today, t))
        print("\nEXPLAIN (ANALYZE, BUFFERS) of the sweep's statements (rolled back):\n")
        print(explain_sweep(today))
    conn.close()
    admin.dispose()


if __name__ == "__main__":
    main()
