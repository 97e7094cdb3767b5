"""Page timings at scale: a unit's inbox and the centre's triage queue.

Usage (after bench/seed_cases.py):
    MINPAN_DATABASE_URL=postgresql+psycopg://minpan@127.0.0.1:5432/minpan_bench \
        .venv/bin/python bench/bench_pages.py --runs 60

Each page is requested through the whole application in-process (identity, CSRF, guard, tenant
session, query, Jinja rendering) as a signed-in person, and compared, in the same run, with the
page's database query alone run through the driver with the same row-level security context
(the bare limit). Prints a Markdown table for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable

os.environ.setdefault("MINPAN_BROKER_URL", "stub")
os.environ.setdefault("MINPAN_ARGON2_TIME_COST", "1")
os.environ.setdefault("MINPAN_ARGON2_MEMORY_COST", "1024")

from litestar.testing import TestClient
from sqlalchemy import text

from app.app import create_app
from app.db import get_engine
from app.demo import DEMO_PASSWORD


def _timed(fn: Callable[[], object], runs: int) -> list[float]:
    for _ in range(5):  # warm caches and pools
        fn()
    out = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        out.append((time.perf_counter() - start) * 1000)
    return out


def _stats(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[int(len(ordered) * 0.95) - 1]


def _client(username: str) -> TestClient:  # type: ignore[type-arg]
    client = TestClient(app=create_app())
    client.__enter__()
    client.get("/login")
    token = client.cookies.get("minpan_csrf")
    response = client.post(
        "/login",
        data={"username": username, "password": DEMO_PASSWORD},
        headers={"x-csrftoken": token or ""},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text[:500]
    return client


def _raw(workspace_slug: str, sql: str | tuple[str, str]) -> Callable[[], object]:
    engine = get_engine()
    with engine.connect() as conn:
        ws = conn.execute(text("SELECT id FROM workspaces WHERE slug = :s"), {"s": workspace_slug}).scalar()

    def run() -> object:
        with engine.connect() as conn, conn.begin():
            conn.execute(text("SELECT set_config('minpan.workspace_id', :w, true)"), {"w": str(ws)})
            if isinstance(sql, str):
                return conn.execute(text(sql), {"w": ws}).all()
            first = conn.execute(text(sql[0]), {"w": ws}).all()
            room = 200 - len(first)
            return first + (conn.execute(text(sql[1]), {"w": ws, "room": room}).all() if room > 0 else [])

    return run


OPEN = (
    "('pending','handling','awaiting_signoff','return_drafted','extension_requested','extension_pending',"
    "'return_requested')"
)
# The same two statements the inbox runs: open work by due date, then (if room is left) the most
# recent finished work.
INBOX_SQL = (
    f"SELECT * FROM assignments WHERE workspace_id = :w AND state IN {OPEN} ORDER BY due_date, id LIMIT 200",  # noqa: S608
    f"SELECT * FROM assignments WHERE workspace_id = :w AND state NOT IN {OPEN} "  # noqa: S608
    "ORDER BY due_date DESC, id DESC LIMIT :room",
)
QUEUE_SQL = """
SELECT * FROM cases WHERE workspace_id = :w AND state = 'received' ORDER BY registered_at DESC LIMIT 100
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=60)
    args = parser.parse_args()
    with get_engine().connect() as conn, conn.begin():
        conn.execute(text("SELECT set_config('minpan.system', 'on', true)"))
        cases = conn.execute(text("SELECT count(*) FROM cases")).scalar()
        horqin = conn.execute(
            text(
                "SELECT count(*) FROM assignments a JOIN workspaces w ON w.id = a.workspace_id "
                "WHERE w.slug = 'horqin'"
            )
        ).scalar()
    handler, clerk = _client("horqin.handler"), _client("zx.clerk")
    rows = []
    for name, client, path, slug, sql in (
        ("unit inbox (科尔沁区, /inbox)", handler, "/inbox", "horqin", INBOX_SQL),
        (
            "centre triage queue (/cases?status=received)",
            clerk,
            "/cases?status=received",
            "portal-centre",
            QUEUE_SQL,
        ),
    ):

        def page(client=client, path=path) -> object:  # type: ignore[no-untyped-def]
            response = client.get(path)
            assert response.status_code == 200
            return response

        page_ms = _timed(page, args.runs)
        raw_ms = _timed(_raw(slug, sql), args.runs)
        p50, p95 = _stats(page_ms)
        r50, r95 = _stats(raw_ms)
        rows.append(f"| {name} | {p50:.1f} | {p95:.1f} | {r50:.1f} | {r95:.1f} | {p50 / r50:.1f}× |")
    print(f"\n{cases:,} cases; 科尔沁区 holds {horqin:,} assignments; {args.runs} requests each.\n")
    print("| page | p50 ms | p95 ms | raw SQL p50 ms | raw SQL p95 ms | page / SQL |")
    print("|---|---|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
