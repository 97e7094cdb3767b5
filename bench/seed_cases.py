"""Seed a PostgreSQL database with N cases spread over all units (default 1,000,000).

Usage:
    MINPAN_DATABASE_URL=postgresql+psycopg://minpan@127.0.0.1:5432/minpan_bench \
        .venv/bin/python bench/seed_cases.py --cases 1000000

Builds the schema through the migrations, loads the units and demo people, then COPYs cases and
their lead assignments (about 1 in 50 still open in the units, 1 in 100 waiting for triage, the
rest published or archived) over five years. Idempotent: an already seeded database is kept.

PostgreSQL refuses COPY into tables under row-level security, so the bulk load connects as the
database superuser (MINPAN_BENCH_ADMIN_URL, default postgres@ the same server); the portal itself
keeps running as the ordinary role.
"""

from __future__ import annotations

import argparse
import io
import os
import random
import time
from datetime import UTC, datetime, timedelta

from sqlalchemy import create_engine, text

from app import migrate
from app.db import get_engine, system_session
from app.demo import load_demo

OPEN_STATES = ("pending", "handling", "awaiting_signoff", "extension_pending")
TITLES = (
    "供暖温度不达标",
    "道路坑洼需修缮",
    "小区物业服务问题",
    "学校招生咨询",
    "医保报销咨询",
    "噪音扰民",
    "路灯不亮",
    "公交线路调整建议",
    "农贸市场管理",
    "养老金发放咨询",
)


# The supervision dashboard's live set (migration 0026) is kept by triggers on assignments, cases,
# escalations and timeline entries. A seed COPYs with them off (``without_triggers``) and rebuilds
# the set once at the end (``rebuild_live_set``): row by row they would cost minutes per million.
REBUILD_LIVE_SET = (
    "SELECT supervision_live_refresh(ARRAY(SELECT a.id FROM assignments a JOIN cases c ON c.id = a.case_id "
    "WHERE a.is_lead AND c.state IN ('received', 'assigned')))"
)


def without_triggers(conn) -> None:  # type: ignore[no-untyped-def]
    """This transaction's COPYs fire no trigger (superuser; the seed's rows are consistent)."""
    conn.execute(text("SET LOCAL session_replication_role = replica"))


def rebuild_live_set(conn) -> None:  # type: ignore[no-untyped-def]
    conn.execute(text(REBUILD_LIVE_SET))


def _copy(conn, table: str, columns: list[str], rows: io.StringIO) -> None:  # type: ignore[no-untyped-def]
    rows.seek(0)
    with (
        conn.connection.dbapi_connection.cursor() as cur,
        cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy,
    ):
        while chunk := rows.read(1 << 20):
            copy.write(chunk)


CASE_COLUMNS = (
    "id",
    "workspace_id",
    "state",
    "version",
    "board",
    "source_id",
    "title",
    "body",
    "posted_at",
    "category",
    "topic",
    "region",
    "citizen_name",
    "citizen_phone",
    "citizen_email",
    "registered_at",
    "decline_reason",
    "decline_explanation",
    "decline_suggestion",
    "sheet_number",
    "dispatched_at",
    "due_date",
    "instructions",
    "reply_text",
    "reply_private",
    "reply_handler_name",
    "reply_handler_phone",
    "reply_signed_by",
    "reply_signature",
    "quality_flag",
    "published_at",
)
ASSIGNMENT_COLUMNS = (
    "workspace_id",
    "case_id",
    "round",
    "is_lead",
    "state",
    "version",
    "sheet_number",
    "lead_unit_name",
    "title",
    "body",
    "category",
    "posted_at",
    "citizen_name",
    "citizen_phone",
    "citizen_email",
    "instructions",
    "dispatched_at",
    "due_date",
    "reply_text",
    "reply_private",
    "draft_version",
    "signature",
    "return_reason",
    "return_signature",
    "extension_reason",
    "centre_comment",
    "quality_flag",
    "contribution",
)
NULL = "\\N"


def _line(values: dict[str, object], columns: tuple[str, ...]) -> str:
    # A column left out is an empty string; an explicit None is SQL NULL.
    return (
        "\t".join(NULL if c in values and values[c] is None else str(values.get(c, "")) for c in columns)
        + "\n"
    )


def seed(total: int, batch: int = 100_000) -> None:
    migrate.upgrade()
    with system_session() as db:
        load_demo(db)
    engine = get_engine()
    with engine.begin() as conn:
        conn.execute(text("SELECT set_config('minpan.system', 'on', true)"))
        existing = conn.execute(text("SELECT count(*) FROM cases")).scalar() or 0
        if existing >= total:
            print(f"already seeded: {existing} cases")
            return
        centre = conn.execute(text("SELECT id FROM workspaces WHERE kind = 'centre'")).scalar()
        units = [
            r[0]
            for r in conn.execute(
                text("SELECT id FROM workspaces WHERE kind IN ('county', 'bureau', 'vertical') ORDER BY id")
            )
        ]
        next_id = (conn.execute(text("SELECT coalesce(max(id), 0) FROM cases")).scalar() or 0) + 1
    url = engine.url
    admin = create_engine(
        os.environ.get("MINPAN_BENCH_ADMIN_URL")
        or url.set(username="postgres").render_as_string(hide_password=False)
    )
    rng = random.Random(20261127)
    now = datetime.now(UTC)
    five_years = 5 * 365 * 86400
    started = time.perf_counter()
    made = existing
    while made < total:
        n = min(batch, total - made)
        cases, assignments = io.StringIO(), io.StringIO()
        for _ in range(n):
            cid, next_id = next_id, next_id + 1
            roll = rng.random()
            state = (
                "received"
                if roll < 0.01
                else "assigned"
                if roll < 0.03
                else "published"
                if roll < 0.5
                else "archived"
            )
            span = 30 * 86400 if state in ("received", "assigned") else five_years  # open work is recent
            registered = now - timedelta(seconds=rng.randrange(span))
            title = rng.choice(TITLES)
            body = f"{title}，请有关部门尽快处理。"
            dispatched = state != "received"
            due = (registered + timedelta(days=7)).date()
            sheet = f"通留〔{registered.year}〕B{cid}号" if dispatched else None
            case = {
                "id": cid,
                "workspace_id": centre,
                "state": state,
                "version": 1,
                "board": "mayor",
                "source_id": f"B-{cid}",
                "title": title,
                "body": body,
                "posted_at": registered.isoformat(),
                "category": "consult",
                "registered_at": registered.isoformat(),
                "sheet_number": sheet,
                "dispatched_at": registered.isoformat() if dispatched else None,
                "due_date": due.isoformat() if dispatched else None,
                "reply_private": "false",
                "published_at": registered.isoformat() if state in ("published", "archived") else None,
            }
            cases.write(_line(case, CASE_COLUMNS))
            if dispatched:
                assignment = {
                    "workspace_id": rng.choice(units),
                    "case_id": cid,
                    "round": 1,
                    "is_lead": "true",
                    "state": rng.choice(OPEN_STATES) if state == "assigned" else "closed",
                    "version": 1,
                    "sheet_number": sheet,
                    "title": title,
                    "body": body,
                    "category": "consult",
                    "posted_at": registered.isoformat(),
                    "dispatched_at": registered.isoformat(),
                    "due_date": due.isoformat(),
                    "reply_private": "false",
                    "draft_version": 0,
                }
                assignments.write(_line(assignment, ASSIGNMENT_COLUMNS))
        with admin.begin() as conn:
            without_triggers(conn)
            _copy(conn, "cases", list(CASE_COLUMNS), cases)
            _copy(conn, "assignments", list(ASSIGNMENT_COLUMNS), assignments)
        made += n
        print(f"{made:>9} cases  {time.perf_counter() - started:6.1f} s", flush=True)
    with engine.begin() as conn:
        conn.execute(text("SELECT set_config('minpan.system', 'on', true)"))
        rebuild_live_set(conn)
        conn.execute(
            text("SELECT setval(pg_get_serial_sequence('cases', 'id'), (SELECT max(id) FROM cases))")
        )
        conn.execute(
            text(
                "SELECT setval(pg_get_serial_sequence('assignments', 'id'), "
                "(SELECT max(id) FROM assignments))"
            )
        )
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("ANALYZE"))
    print(f"seeded {total} cases in {time.perf_counter() - started:.1f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cases", type=int, default=1_000_000)
    args = parser.parse_args()
    seed(args.cases)


if __name__ == "__main__":
    main()
