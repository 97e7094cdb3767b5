"""The public portal at 1,000,000 published replies: reply pages, search, and throughput.

Usage:
    scripts/services.sh
    MINPAN_DATABASE_URL=postgresql+psycopg://minpan@127.0.0.1:5432/minpan_public_bench \
        .venv/bin/python -m bench.bench_public --published 1000000

Seeds the database first if needed (bench/seed_published.py). Then, in one run, over loopback:

1. ``minpan serve`` (uvicorn, one worker, as in production but with the Dramatiq stub broker so no
   in-process worker runs beside it) and a bare Litestar app (defined here: one route
   ``/replies/{case_id:int}`` answering with the bytes of one rendered reply page, fetched from the
   real app first), started with the same uvicorn settings, one after the other on their own ports;
2. reply pages at random ids, no ``If-None-Match``, one request at a time: first visits (the case
   read, the page rendered and stored, 页面静态化), the same pages again once (served from
   ``public_pages``, and then kept by the web process: app/public/memory.py), again (from its
   memory), and with the 适老化 cookie (read and rendered every time): median and p95;
3. search pages for common, medium and rare words (one request at a time, interleaved), with the
   app's own SQL statements for the same searches replayed alone through the driver (the bare
   limit of a search), and EXPLAIN ANALYZE of the statements for the most common word;
4. throughput of the reply page at a fixed concurrency (16 connections) against the bare route at
   the same concurrency, rounds interleaved (stored pages, rendered pages, bare, …), by a small
   asyncio HTTP/1.1 client with keep-alive (cheap enough per request that it does not cap the bare
   app first). Stored pages are those of step 2, kept in the web process's memory.

Prints Markdown for docs/benchmarks.md. Every phase is bounded in time (--seconds).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

os.environ.setdefault("MINPAN_BROKER_URL", "stub")

import httpx
from litestar import Litestar, Response, get
from sqlalchemy import event, text

from app.db import get_engine

ROOT = Path(__file__).resolve().parent.parent
LOGS = ROOT / "test-output" / "bench"
# Search pages: common two-character words, medium and rare ones, two words, a page deep in a long
# list, a search narrowed to a unit; then the other list pages of the portal at this size.
SEARCHES: tuple[tuple[str, dict[str, str]], ...] = (
    ("小区", {"q": "小区"}),
    ("供暖", {"q": "供暖"}),
    ("问题", {"q": "问题"}),
    ("医保", {"q": "医保"}),
    ("公积金", {"q": "公积金"}),
    ("供暖 温度", {"q": "供暖 温度"}),
    ("蒙医药 (rare)", {"q": "蒙医药"}),
    ("那达慕 (rare)", {"q": "那达慕"}),
    ("月球基地 (none)", {"q": "月球基地"}),
    ("小区, page 50", {"q": "小区", "page": "50"}),
    ("小区, unit 科尔沁区", {"q": "小区", "unit": "horqin"}),
)
LISTS: tuple[tuple[str, str, dict[str, str]], ...] = (
    ("home (8 latest replies)", "/", {}),
    ("/replies", "/replies", {}),
    ("/replies?unit=horqin", "/replies", {"unit": "horqin"}),
    ("/replies?month=2024-05", "/replies", {"month": "2024-05"}),
    ("/declined", "/declined", {}),
)


# --- servers ---------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serving(argv: list[str], name: str, env: dict[str, str] | None = None) -> Iterator[str]:
    """A server subprocess on a free port; yields its base URL once /healthz or / answers."""
    port = _free_port()
    LOGS.mkdir(parents=True, exist_ok=True)
    log_path = LOGS / f"{name}.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
            [*argv, "--port", str(port)],
            cwd=ROOT,
            env={**os.environ, **(env or {})},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 300  # a loaded machine: imports alone can take a minute
            while True:
                try:
                    if httpx.get(base + "/healthz", timeout=2).status_code in (200, 404):
                        break
                except httpx.HTTPError:
                    pass
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"{name} did not start:\n{log_path.read_text(errors='replace')[-3000:]}")
                time.sleep(0.2)
            yield base
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)


def bare_app() -> Litestar:
    """The bare limit: Litestar, one route answering with the bytes of a rendered reply page."""
    body = Path(os.environ["MINPAN_BENCH_BARE_BODY"]).read_bytes()

    @get("/replies/{case_id:int}", sync_to_thread=False)
    def page(case_id: int) -> Response[bytes]:
        return Response(body, media_type="text/html; charset=utf-8")

    @get("/healthz", sync_to_thread=False)
    def health() -> dict[str, str]:
        return {"status": "ok"}

    return Litestar(route_handlers=[page, health], openapi_config=None)


def run_bare(port: int) -> None:
    """``uvicorn.run`` exactly as ``minpan serve`` calls it (app/cli.py), on the bare app."""
    import uvicorn

    uvicorn.run(
        "bench.bench_public:bare_app",
        factory=True,
        host="127.0.0.1",
        port=port,
        workers=1,
        proxy_headers=True,
        log_level="info",
    )


# --- a small HTTP/1.1 load client ------------------------------------------------------------------

_LENGTH = re.compile(rb"\r\ncontent-length:\s*(\d+)", re.IGNORECASE)


@dataclass
class Load:
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)  # ms
    statuses: Counter[int] = field(default_factory=Counter)
    bytes: int = 0
    paths: list[str] = field(default_factory=list)  # as requested

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.seconds if self.seconds else 0.0

    def p(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(len(ordered) * q))] if ordered else float("nan")


async def _connection(
    host: str, port: int, paths: Iterator[str], until: float, load: Load, headers: str
) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while time.perf_counter() < until:
            path = next(paths, None)
            if path is None:
                break
            request = f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n{headers}\r\n".encode()
            start = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            found = _LENGTH.search(head)
            if found is None and status != 304:
                raise RuntimeError(f"no Content-Length in {head[:300]!r}")
            body = await reader.readexactly(int(found.group(1))) if found else b""
            load.latencies.append((time.perf_counter() - start) * 1000)
            load.statuses[status] += 1
            load.bytes += len(body)
            load.paths.append(path)
    finally:
        writer.close()


def hammer(
    base: str,
    paths: Sequence[str],
    concurrency: int,
    seconds: float,
    headers: str = "",
    *,
    once: bool = False,
) -> Load:
    """GET ``paths`` (cycled, shuffled) on ``concurrency`` keep-alive connections for ``seconds``
    (``once``: each path once at most)."""
    host, port = base.removeprefix("http://").split(":")
    order = list(paths)
    random.shuffle(order)

    def cycle() -> Iterator[str]:
        while True:
            yield from order
            if once:
                return

    load = Load()
    it = cycle()

    async def main() -> None:
        start = time.perf_counter()
        until = start + seconds
        await asyncio.gather(
            *(_connection(host, int(port), it, until, load, headers) for _ in range(concurrency))
        )
        load.seconds = time.perf_counter() - start

    asyncio.run(main())
    return load


# --- the app's SQL alone ---------------------------------------------------------------------------


@contextmanager
def captured() -> Iterator[list[tuple[str, Any]]]:
    """The statements (and parameters) the app sends through the engine meanwhile."""
    statements: list[tuple[str, Any]] = []
    engine = get_engine()

    def before(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> None:
        statements.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", before)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", before)


def replay(statements: list[tuple[str, Any]]) -> float:
    """The statements run again through the driver in one read-only transaction (ms)."""
    raw = get_engine().raw_connection()
    try:
        cur = raw.cursor()
        start = time.perf_counter()
        cur.execute("BEGIN READ ONLY")
        for statement, parameters in statements:
            cur.execute(statement, parameters)
            if cur.description:
                cur.fetchall()
        cur.execute("ROLLBACK")
        return (time.perf_counter() - start) * 1000
    finally:
        raw.close()


def explain(statement: str, parameters: Any) -> str:
    raw = get_engine().raw_connection()
    try:
        cur = raw.cursor()
        cur.execute("BEGIN READ ONLY")
        cur.execute("SELECT set_config('minpan.system', 'on', true)")
        cur.execute("EXPLAIN (ANALYZE, BUFFERS) " + statement, parameters)
        plan = "\n".join(row[0] for row in cur.fetchall())
        cur.execute("ROLLBACK")
        return plan
    finally:
        raw.close()


def page_queries(path: str, params: dict[str, str]) -> None:
    """What the page's handler asks of app.public.queries (app/public/controllers.py, app/web/public.py)."""
    from app.public import queries

    filters = queries.Filters.parse(**params)
    page = int(params.get("page", "1"))
    if path == "/":
        queries.latest_replies(8)
    elif path == "/search":
        queries.list_entries("all", filters, page)
        queries.filter_options("reply")
    else:
        kind = "reply" if path == "/replies" else "declined"
        queries.filter_options(kind)
        queries.list_entries(kind, filters, page)


def probe(path: str, params: dict[str, str]) -> tuple[float | None, list[tuple[str, Any]]]:
    """The page's queries run once in this process under the statement timeout: (ms, or None when
    a statement was cancelled; the statements sent)."""
    from sqlalchemy.exc import OperationalError

    with captured() as statements:
        start = time.perf_counter()
        try:
            page_queries(path, params)
        except OperationalError as exc:
            if "statement timeout" not in str(exc):
                raise
            return None, statements
    return (time.perf_counter() - start) * 1000, statements


def quiet(timeout: float) -> None:
    """Wait until no other session runs a statement on the bench database (a page given up on by
    the client still runs in the server)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with get_engine().connect() as conn:
            busy = conn.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND state = 'active' AND pid <> pg_backend_pid()"
                )
            ).scalar()
        if not busy:
            return
        time.sleep(1)


def limit_statements(seconds: float) -> None:
    """Every connection this process opens cancels a statement after ``seconds``."""
    engine = get_engine()
    engine.dispose()

    def connect(dbapi: Any, _record: Any) -> None:
        with dbapi.cursor() as cur:
            cur.execute(f"SET statement_timeout = {int(seconds * 1000)}")
        dbapi.commit()

    event.listen(engine, "connect", connect)


# --- the run ---------------------------------------------------------------------------------------


def _ms(samples: Sequence[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]


def reply_ids(limit: int, seed: int = 20261127) -> list[int]:
    with get_engine().connect() as conn:
        ids = [r[0] for r in conn.execute(text("SELECT case_id FROM public_entries WHERE kind = 'reply'"))]
    return random.Random(seed).sample(ids, min(limit, len(ids)))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--published", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=float, default=15.0, help="each timed phase")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved throughput rounds")
    parser.add_argument("--search-runs", type=int, default=15, help="requests of each list and search page")
    parser.add_argument("--budget", type=float, default=10.0, help="seconds a page's SQL may take")
    parser.add_argument("--explain", action="store_true", help="EXPLAIN ANALYZE the common-word search")
    parser.add_argument("--no-seed", action="store_true", help="use the database as it is")
    parser.add_argument("--bare-server", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop the servers on the way out
    if args.bare_server:
        run_bare(args.port)
        return
    if not args.no_seed:
        from bench.seed_published import seed

        seed(args.published)
    from app import migrate

    migrate.upgrade()  # a database seeded before a later migration

    with get_engine().connect() as conn:
        replies = conn.execute(text("SELECT count(*) FROM public_entries WHERE kind = 'reply'")).scalar()
    ids = reply_ids(200_000)
    paths = [f"/replies/{i}" for i in ids]
    limit_statements(args.budget)
    print(f"{replies:,} published replies in the public index; {len(paths):,} random reply ids", flush=True)

    python = str(Path(sys.executable))
    # `minpan serve` is `python -m app.cli serve`: run as a module so that the app imported is the
    # one beside this file (a scratch copy of the tree measures its own code).
    minpan = [python, "-m", "app.cli", "serve", "--host", "127.0.0.1", "--workers", "1"]
    out: list[str] = []
    with serving(minpan, "bench-public-app") as app_url:
        sample = httpx.get(app_url + paths[0], timeout=30)
        assert sample.status_code == 200, sample.status_code
        body_file = LOGS / "reply-page.html"
        body_file.write_bytes(sample.content)
        print(f"reply page: {len(sample.content):,} bytes, ETag {sample.headers['etag']}", flush=True)

        # warm up: the first requests import, compile templates, fill the pool
        hammer(app_url, paths[-2000:], 4, 3)

        # (a) one request at a time, random ids, no If-None-Match: first visits render and store
        single = hammer(app_url, paths[: len(paths) // 2], 1, args.seconds)
        assert set(single.statuses) == {200}, single.statuses
        stored_paths = list(dict.fromkeys(single.paths))
        # the second visit reads the stored page (and the web process keeps it: app/public/memory.py)
        stored = hammer(app_url, stored_paths, 1, args.seconds, once=True)
        assert set(stored.statuses) == {200}, stored.statuses
        kept = list(dict.fromkeys(stored.paths))
        again = hammer(app_url, kept, 1, args.seconds)
        assert set(again.statuses) == {200}, again.statuses
        large = "Cookie: minpan_a11y=large\r\n"
        rendered = hammer(app_url, paths[len(paths) // 2 :], 1, args.seconds, headers=large)
        assert set(rendered.statuses) == {200}, rendered.statuses
        # the same with a matching If-None-Match: 304 without rendering (for comparison)
        etag = sample.headers["etag"]
        hits = hammer(app_url, [paths[0]], 1, min(args.seconds, 5), headers=f"If-None-Match: {etag}\r\n")
        assert set(hits.statuses) == {304}, hits.statuses

        # (b) search and list pages, one request at a time, interleaved; a page whose SQL takes
        # longer than --budget (probed in this process under a statement timeout) is not requested
        pages = [(name, "/search", params) for name, params in SEARCHES] + list(LISTS)
        probed = {name: probe(path, params) for name, path, params in pages}
        fast = [(n, path, params) for n, path, params in pages if (probed[n][0] or 1e9) < args.budget * 1000]
        page_ms: dict[str, list[float]] = {name: [] for name, _, _ in pages}
        sql_ms: dict[str, list[float]] = {name: [] for name, _, _ in pages}
        sizes: dict[str, int] = {}
        totals: dict[str, str] = {}
        spent: dict[str, float] = dict.fromkeys(page_ms, 0.0)  # seconds
        timed_out: set[str] = set()
        with httpx.Client(base_url=app_url, timeout=args.budget * 3) as client:
            for run in range(args.search_runs + 1):
                for name, path, params in fast:
                    if run > 3 and spent[name] > args.budget * 2:
                        continue  # slow page: a few runs are enough
                    if name in timed_out:
                        continue
                    url = path + ("?" + urlencode(params) if params else "")
                    start = time.perf_counter()
                    try:
                        response = client.get(url)
                    except httpx.TimeoutException:
                        timed_out.add(name)
                        page_ms[name] = []
                        continue
                    elapsed = (time.perf_counter() - start) * 1000
                    assert response.status_code == 200, (name, response.status_code)
                    spent[name] += elapsed / 1000
                    if run:
                        page_ms[name].append(elapsed)
                    sizes[name] = len(response.content)
                    title = re.search(r'id="results-title"[^>]*>(.*?)</h2>', response.text, re.S)
                    count = re.search(r"<strong>(\d+)</strong>", title.group(1)) if title else None
                    more = "+" if title and "超过" in title.group(1) else ""
                    totals[name] = f"{int(count.group(1)):,}{more}" if count else "–"
                    if (
                        run
                        and len(sql_ms[name]) < max(3, args.search_runs // 3)
                        and spent[name] < args.budget * 2
                    ):
                        sql_ms[name].append(replay(probed[name][1]))

        quiet(timeout=args.budget * 10)  # nothing left running from a slow page before (c)

        # (c) throughput, interleaved rounds: app, bare, app, bare …
        rates: dict[str, list[Load]] = {"app": [], "rendered": [], "floor": [], "bare": []}
        with serving(
            [python, "-m", "bench.bench_public", "--bare-server"],
            "bench-public-bare",
            env={"MINPAN_BENCH_BARE_BODY": str(body_file)},
        ) as bare_url:
            check = httpx.get(bare_url + paths[1], timeout=10)
            assert check.content == sample.content
            hammer(bare_url, paths[-2000:], 4, 2)
            for _ in range(args.rounds):
                for name, url, which, head in (
                    ("app", app_url, kept, ""),
                    ("rendered", app_url, paths, large),
                    ("floor", app_url, ["/healthz"], ""),
                    ("bare", bare_url, kept, ""),
                ):
                    load = hammer(url, which, args.concurrency, args.seconds, headers=head)
                    assert set(load.statuses) == {200}, (name, load.statuses)
                    rates[name].append(load)
                    print(f"  {name}: {load.rate:,.0f} requests/s", flush=True)

    p50, p95 = _ms(single.latencies)
    a50, a95 = _ms(again.latencies)
    r50, r95 = _ms(rendered.latencies)
    h50, h95 = _ms(hits.latencies)
    out.append(f"\n{replies:,} published replies; reply page {len(sample.content):,} bytes.\n")
    out.append("| reply page, one request at a time | requests | p50 ms | p95 ms |")
    out.append("|---|---|---|---|")
    n = len(single.latencies)
    out.append(f"| random ids, first visit: read, render, store | {n:,} | {p50:.1f} | {p95:.1f} |")
    d50, d95 = _ms(stored.latencies)
    out.append(
        f"| the same ids again: stored page, from the database | {len(stored.latencies):,} "
        f"| {d50:.1f} | {d95:.1f} |"
    )
    out.append(
        f"| and again: kept in the web process's memory | {len(again.latencies):,} | {a50:.1f} | {a95:.1f} |"
    )
    n = len(rendered.latencies)
    out.append(f"| random ids, 适老化 cookie: read and rendered | {n:,} | {r50:.1f} | {r95:.1f} |")
    out.append(
        f"| same page, matching If-None-Match (304) | {len(hits.latencies):,} | {h50:.1f} | {h95:.1f} |"
    )
    out.append("")
    out.append(
        "| page (one request at a time) | found | page bytes | p50 ms | p95 ms | its SQL alone p50 ms |"
    )
    out.append("|---|---|---|---|---|---|")
    for name, path, _params in pages:
        label = f"search {name}" if path == "/search" else name
        if not page_ms[name]:
            took = probed[name][0]
            if name in timed_out:
                cell = f"> {args.budget * 3:.0f} s (no answer)"
            elif took is None:
                cell = f"> {args.budget:.0f} s (a statement cancelled)"
            else:
                cell = f"not requested: its SQL took {took / 1000:.1f} s"
            out.append(f"| {label} | | | {cell} | | |")
            continue
        s50, s95 = _ms(page_ms[name])
        q50 = _ms(sql_ms[name])[0] if sql_ms[name] else float("nan")
        out.append(f"| {label} | {totals[name]} | {sizes[name]:,} | {s50:.1f} | {s95:.1f} | {q50:.1f} |")
    out.append("")
    out.append(
        f"| throughput, {args.concurrency} connections, {args.seconds:.0f} s a round | rounds (requests/s) "
        "| median requests/s | p50 ms | p95 ms |"
    )
    out.append("|---|---|---|---|---|")
    medians = {}
    for name, label in (
        ("app", "reply page, whole app (`minpan serve`), stored pages kept in memory"),
        ("rendered", "reply page, whole app, read and rendered (适老化 cookie)"),
        ("floor", "`/healthz` of the whole app (the stack, a thread hop, `SELECT 1`)"),
        ("bare", "bare Litestar, same bytes"),
    ):
        loads = rates[name]
        medians[name] = statistics.median(load.rate for load in loads)
        lat = [x for load in loads for x in load.latencies]
        l50, l95 = _ms(lat)
        each = " / ".join(f"{load.rate:,.0f}" for load in loads)
        out.append(f"| {label} | {each} | {medians[name]:,.0f} | {l50:.1f} | {l95:.1f} |")
    out.append(
        f"\napp / bare = {medians['app'] / medians['bare']:.2f} (stored pages), "
        f"{medians['rendered'] / medians['bare']:.2f} (rendered), "
        f"{medians['floor'] / medians['bare']:.2f} (`/healthz`)"
    )
    print("\n".join(out))

    if args.explain:
        limit_statements(args.budget * 20)
        name = SEARCHES[0][0]
        for statement, parameters in probed[name][1]:
            if "@@" in statement and not statement.lstrip().upper().startswith("EXPLAIN"):
                print(f"\n-- {name}\n{statement}\n{parameters}\n")
                print(explain(statement, parameters))


if __name__ == "__main__":
    main()
