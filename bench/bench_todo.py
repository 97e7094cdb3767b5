"""The workspace home's to-do counts (工作台 · 待办事项) at 1,000,000 open assignments.

Usage (after bench/seed_open_assignments.py, which bench/bench_sweep.py runs first if needed):
    MINPAN_DATABASE_URL=postgresql+psycopg://minpan@127.0.0.1:5432/minpan_sweep_bench \\
        .venv/bin/python -m bench.bench_todo --runs 30

The worst case for these counts: every one of the 1,000,000 lead assignments is open, ~25,000 per
unit, ~975,000 of them overdue, all in ``supervision_live``. For three people — the handler of the
unit with the most open assignments, the centre's clerk, the supervision office's supervisor — it
times ``app.tenants.todo.todo`` in a tenant-scoped session as a request has it, and the same
counts as hand-written SQL statements sent alone through psycopg (the bare limit), checked equal.
"""

from __future__ import annotations

import argparse
import statistics
import time
from datetime import date

import psycopg
from sqlalchemy import func, select

from app.accounts.identity import CurrentUser
from app.accounts.models import User
from app.accounts.services import posts_of
from app.cases.models import Assignment
from app.cases.services import CENTRE_DECIDES
from app.db import session_factory, system_session
from app.escalation.services import OWED_STATES
from app.settings import get_settings
from app.tenants.models import Membership, Workspace
from app.tenants.scope import TenantContext, bind_tenant
from app.tenants.todo import todo

TODAY = date(2026, 11, 27)  # the seed's "today"


def _person(username: str, workspace_id: int) -> CurrentUser:
    with system_session() as db:
        user = db.scalar(select(User).where(User.username == username))
        assert user is not None, username
        posts = posts_of(db, user.id)
        post = next(p for p in posts if p.workspace_id == workspace_id)
        return CurrentUser(user.id, user.username, user.display_name, "bench", False, posts, post, "bench")


def _raw(unit_id: int) -> dict[str, list[tuple[str, str, tuple[object, ...]]]]:
    """The hand-written statements of each person's counts (one round trip each)."""
    owed, soon = list(OWED_STATES), date(2026, 11, 30)  # the next working day after TODAY
    overdue = "SELECT count(*) FROM supervision_live WHERE state = ANY(%s) AND due_date < %s"
    unit = "SELECT count(*) FROM assignments WHERE workspace_id = %s AND "
    return {
        "handler": [
            ("逾期未办", unit + "state = ANY(%s) AND due_date < %s", (unit_id, owed, TODAY)),
            (
                "即将到期",
                unit + "state = ANY(%s) AND due_date BETWEEN %s AND %s",
                (unit_id, owed, TODAY, soon),
            ),
            ("待签收", unit + "state = 'pending'", (unit_id,)),
            ("办理中", unit + "state = 'handling'", (unit_id,)),
        ],
        "clerk": [
            ("待初审交办", "SELECT count(*) FROM cases WHERE state = 'received'", ()),
            (
                "承办单位申请待决定",
                "SELECT count(DISTINCT case_id) FROM assignments WHERE state = ANY(%s)",
                (list(CENTRE_DECIDES),),
            ),
            (
                "承办单位逾期未办",
                "SELECT count(*) FROM cases WHERE state = 'assigned' AND due_date < %s",
                (TODAY,),
            ),
        ],
        "supervisor": [("承办单位逾期未办", overdue, (owed, TODAY))],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    url = get_settings().database_url
    assert url.startswith("postgresql"), "the bench runs on PostgreSQL"
    with system_session() as db:
        unit_id, open_rows = db.execute(
            select(Assignment.workspace_id, func.count())
            .where(
                Assignment.state.in_(OWED_STATES),
                Assignment.workspace_id.in_(
                    select(Membership.workspace_id).where(Membership.role == "handler")
                ),
            )
            .group_by(Assignment.workspace_id)
            .order_by(func.count().desc())
            .limit(1)
        ).one()
        slug = db.scalar(select(Workspace.slug).where(Workspace.id == unit_id))
        centre = db.scalar(select(Workspace.id).where(Workspace.slug == "portal-centre"))
        office = db.scalar(select(Workspace.id).where(Workspace.kind == "supervisor"))
        total = db.scalar(select(func.count()).select_from(Assignment))
    handler = f"{slug}.handler"
    people = {
        "handler": (handler, unit_id),
        "clerk": ("zx.clerk", centre),
        "supervisor": ("dc.supervisor", office),
    }
    raw = _raw(unit_id)
    dsn = url.replace("postgresql+psycopg://", "postgresql://")
    print(f"{total:,} assignments; {handler}'s unit has {open_rows:,} open; {args.runs} runs each\n")
    print("| person | to-do (app) median | hand-written SQL median | ratio |")
    print("|---|---|---|---|")
    factory = session_factory()
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SELECT set_config('minpan.system', 'on', false)")
        for who, (username, workspace_id) in people.items():
            me = _person(username, workspace_id)
            app_times, raw_times = [], []
            for _ in range(args.runs):
                with factory() as db:
                    bind_tenant(db, TenantContext.for_workspace(workspace_id, me.user_id))
                    started = time.perf_counter()
                    items = {t.label: t.count for t in todo(db, me, TODAY)}
                    app_times.append(time.perf_counter() - started)
                started = time.perf_counter()
                counts = {
                    label: conn.execute(sql, params).fetchone()[0]  # type: ignore[arg-type,index]
                    for label, sql, params in raw[who]
                }
                raw_times.append(time.perf_counter() - started)
                assert all(items[label] == n for label, n in counts.items()), (who, items, counts)
            a, r = statistics.median(app_times), statistics.median(raw_times)
            shown = ", ".join(f"{k} {v:,}" for k, v in items.items())
            print(f"| {username} ({shown}) | {a * 1000:.1f} ms | {r * 1000:.1f} ms | {a / r:.1f}× |")


if __name__ == "__main__":
    main()
