# ruff: noqa: E501, S603, S608  (a benchmark script: fixed commands, generated code run in a subprocess)
"""Load test: the production topology under a realistic mix, loopback only, bounded in time.

Usage (docs/benchmarks.md, "Load: 200 users on 2 web processes and 2 workers"):

    .venv/bin/python -m bench.load \
        --database-url postgresql+psycopg://minpan@127.0.0.1:5432/minpan_load_bench \
        --redis-url redis://127.0.0.1:6379/8 --users 200 --duration 300

1. Seeds the database (``bench.seed_published``: the demo units and people plus ``--published``
   published replies with their public index) and, through the workflow engine itself, work for the
   units: for each unit with demo staff, ``--work`` assignments being handled (the handlers save
   drafts) and ``--work`` awaiting the principal's signature (the leaders sign them).
2. Starts 2 × ``minpan serve``, 2 × ``minpan worker`` and ``minpan scheduler`` on PostgreSQL and
   Redis, as deploy/ describes (no nginx: the virtual users spread over the two ports).
3. Runs ``--users`` virtual users for ``--duration`` seconds (ramped over ``--ramp``), each in a loop
   with 1–3 s of think time: 60 % citizens (home, reply list, a reply, search, declined list),
   30 % unit handlers (inbox, an assignment, save a draft on their own assignments), 10 % leaders
   (inbox, an assignment awaiting signature, sign it with the signature pad's PNG). Staff sessions
   are made directly in the database (sign-in with its rate limit and second factor is not what is
   measured here).
4. Reports per page: requests, errors, p50 / p95 / p99 / max; then checks nothing was lost: every
   signature answered as done is in the database, every draft saved is there, and the outbox (the
   signed replies' PDFs, notices) drains.

Only 127.0.0.1 is contacted. Everything it starts is stopped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import os
import random
import re
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
UNITS = ("horqin", "kailu", "naiman", "education", "housing", "health", "tax")
SEARCHES = ("供暖", "道路", "物业", "学校", "医保", "噪音", "路灯", "公交", "停车", "拆迁")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- set-up ------------------------------------------------------------------------------------------


def seed(args: argparse.Namespace, env: dict[str, str]) -> None:
    subprocess.run(
        [sys.executable, "-m", "bench.seed_published", "--published", str(args.published)],
        cwd=ROOT,
        env=env,
        check=True,
    )
    code = f"""
import app.models
from sqlalchemy import func, select
from app.cases.models import Assignment, Case
from app.cases.services import MessageInput, register_case
from app.db import system_session
from app.demo import _actor, demo_signature_png
from app.tenants.models import Workspace
from app.workflows.engine import apply

with system_session() as db:
    if db.scalar(select(func.count()).select_from(Case).where(Case.source_id.like('LOAD-%'))):
        raise SystemExit(0)
    clerk = _actor(db, 'zx.clerk', 'portal-centre')
    for unit in {UNITS!r}:
        ws = db.scalar(select(Workspace.id).where(Workspace.slug == unit))
        handler = _actor(db, unit + '.handler', unit)
        for i in range({args.work} * 2):
            case = register_case(db, clerk, MessageInput(board='mayor', source_id=f'LOAD-{{unit}}-{{i:04d}}',
                title=f'压测留言{{i}}：小区供暖温度不达标', body='室内温度长期低于十八度，请核实处理。',
                posted_at='2026-11-20 09:00', category='complain', topic='', region='科尔沁区',
                citizen_name='王先生', citizen_phone='13847511000'))
            apply(db, clerk, case, 'dispatch', lead_unit_id=ws, co_unit_ids=[])
            a = db.scalar(select(Assignment).where(Assignment.case_id == case.id))
            apply(db, handler, a, 'receive')
            apply(db, handler, a, 'save_draft', reply_text='网民朋友您好：经核实，已责成供热公司上门检修，现室温已达标。')
            if i % 2:
                apply(db, handler, a, 'request_signoff')
        db.flush()
"""
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, check=True)


def sessions(env: dict[str, str], users: dict[str, int]) -> dict[str, list[str]]:
    """``count`` sessions per demo username, made in the database; returns the cookie tokens."""
    code = f"""
import hashlib, json, secrets
import app.models
from sqlalchemy import select
from app.accounts.models import User, UserSession
from app.tenants.models import Membership
from app.db import system_session
out = {{}}
with system_session() as db:
    for name, count in {users!r}.items():
        uid = db.scalar(select(User.id).where(User.username == name))
        ws = db.scalar(select(Membership.workspace_id).where(Membership.user_id == uid))
        out[name] = []
        for _ in range(count):
            token = secrets.token_urlsafe(32)
            db.add(UserSession(id=hashlib.sha256(token.encode()).hexdigest(), user_id=uid, workspace_id=ws,
                               user_agent='bench/load.py'))
            out[name].append(token)
print(json.dumps(out))
"""
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, check=True, capture_output=True, text=True
    )
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def work_items(env: dict[str, str]) -> dict[str, dict[str, list[int]]]:
    code = """
import json
import app.models
from sqlalchemy import select
from app.cases.models import Assignment, Case
from app.tenants.models import Workspace
from app.db import system_session
out = {}
with system_session() as db:
    rows = db.execute(select(Workspace.slug, Assignment.id, Assignment.state).join(Case, Case.id == Assignment.case_id)
        .join(Workspace, Workspace.id == Assignment.workspace_id).where(Case.source_id.like('LOAD-%')))
    for slug, aid, state in rows:
        out.setdefault(slug, {}).setdefault(state, []).append(aid)
    published = [r for (r,) in db.execute(select(Case.id).where(Case.state == 'published').limit(2000))]
print(json.dumps({'units': out, 'published': published}))
"""
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, check=True, capture_output=True, text=True
    )
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


# --- the virtual users ---------------------------------------------------------------------------------


@dataclass
class Stats:
    times: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    signed: list[int] = field(default_factory=list)
    drafts: dict[int, int] = field(default_factory=lambda: defaultdict(int))

    async def call(
        self, label: str, client: httpx.AsyncClient, method: str, url: str, **kw: Any
    ) -> httpx.Response | None:
        started = time.perf_counter()
        try:
            response = await client.request(method, url, **kw)
        except httpx.HTTPError as exc:
            self.errors[label].append(f"{type(exc).__name__}: {exc}")
            self.times[label].append(time.perf_counter() - started)
            return None
        self.times[label].append(time.perf_counter() - started)
        if response.status_code >= 400:
            self.errors[label].append(f"HTTP {response.status_code} {url}")
        return response


VERSION_RE = r'action="/inbox/{id}/act/{action}"[\s\S]*?name="version" value="(\d+)"'


async def citizen(base: str, stats: Stats, published: list[int], stop: float) -> None:
    async with httpx.AsyncClient(base_url=base, timeout=60) as c:
        while time.monotonic() < stop:
            pick = random.random()
            if pick < 0.2:
                await stats.call("public: home", c, "GET", "/")
            elif pick < 0.4:
                await stats.call("public: replies", c, "GET", f"/replies?page={random.randint(1, 20)}")
            elif pick < 0.7 and published:
                await stats.call("public: reply", c, "GET", f"/replies/{random.choice(published)}")
            elif pick < 0.9:
                await stats.call("public: search", c, "GET", "/search", params={"q": random.choice(SEARCHES)})
            else:
                await stats.call("public: declined", c, "GET", "/declined")
            await asyncio.sleep(random.uniform(1, 3))


async def staff(
    base: str, stats: Stats, token: str, kind: str, own: list[int], stop: float, signature: str
) -> None:
    cookies = {"minpan_session": token}
    async with httpx.AsyncClient(base_url=base, timeout=60, cookies=cookies, follow_redirects=False) as c:
        await c.get("/login")  # the CSRF cookie
        csrf = c.cookies.get("minpan_csrf") or ""
        todo = list(own)
        while time.monotonic() < stop:
            await stats.call(f"{kind}: inbox", c, "GET", "/inbox")
            await asyncio.sleep(random.uniform(1, 3))
            if not todo or time.monotonic() >= stop:
                continue
            aid = todo[0] if kind == "leader" else random.choice(todo)
            page = await stats.call(f"{kind}: assignment", c, "GET", f"/inbox/{aid}")
            await asyncio.sleep(random.uniform(1, 3))
            if page is None or page.status_code != 200 or time.monotonic() >= stop:
                continue
            action = "sign" if kind == "leader" else "save_draft"
            found = re.search(VERSION_RE.format(id=aid, action=action), page.text)
            if not found:
                stats.errors[f"{kind}: {action}"].append(f"no {action} form on /inbox/{aid}")
                todo.remove(aid)
                continue
            data = {"version": found.group(1), "_csrf_token": csrf}
            if kind == "leader":
                data["signature"] = signature
            else:
                data["reply_text"] = f"网民朋友您好：经核实，已安排专人处理（第{stats.drafts[aid] + 1}稿）。"
            done = await stats.call(f"{kind}: {action}", c, "POST", f"/inbox/{aid}/act/{action}", data=data)
            if done is not None and done.status_code in (302, 303):
                if kind == "leader":
                    stats.signed.append(aid)
                    todo.remove(aid)
                else:
                    stats.drafts[aid] += 1
            await asyncio.sleep(random.uniform(1, 3))


async def run_load(
    args: argparse.Namespace,
    bases: list[str],
    tokens: dict[str, list[str]],
    items: dict[str, Any],
    signature: str,
) -> Stats:
    stats = Stats()
    started = time.monotonic()
    stop = started + args.duration
    handlers = [(f"{u}.handler", u) for u in UNITS]
    leaders = [(f"{u}.principal", u) for u in UNITS]
    n_leaders = max(1, args.users // 10)
    n_handlers = max(1, args.users * 3 // 10)
    n_citizens = args.users - n_leaders - n_handlers
    # Each staff user works on a share of their unit's assignments no one else touches.
    shares: dict[tuple[str, str], list[list[int]]] = {}
    for kind, people, count, state in (
        ("handler", handlers, n_handlers, "handling"),
        ("leader", leaders, n_leaders, "awaiting_signoff"),
    ):
        per_unit = defaultdict(int)
        for i in range(count):
            per_unit[people[i % len(people)][1]] += 1
        for unit, k in per_unit.items():
            ids = items["units"].get(unit, {}).get(state, [])
            shares[(kind, unit)] = [ids[j::k] for j in range(k)]
    tasks: list[asyncio.Task[None]] = []
    plan: list[tuple[str, int]] = (
        [("citizen", i) for i in range(n_citizens)]
        + [("handler", i) for i in range(n_handlers)]
        + [("leader", i) for i in range(n_leaders)]
    )
    random.shuffle(plan)
    used: dict[str, int] = defaultdict(int)
    for n, (kind, i) in enumerate(plan):
        base = bases[n % len(bases)]
        if kind == "citizen":
            coro = citizen(base, stats, items["published"], stop)
        else:
            name, unit = (handlers if kind == "handler" else leaders)[i % len(UNITS)]
            token = tokens[name][used[name]]
            share = shares[(kind, unit)][used[name]]
            used[name] += 1
            coro = staff(base, stats, token, kind, share, stop, signature)
        tasks.append(asyncio.create_task(coro))
        await asyncio.sleep(args.ramp / len(plan))
    await asyncio.gather(*tasks)
    return stats


# --- the run ---------------------------------------------------------------------------------------------


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--redis-url", required=True)
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--duration", type=int, default=300)
    parser.add_argument("--ramp", type=int, default=30)
    parser.add_argument("--published", type=int, default=3000)
    parser.add_argument("--work", type=int, default=20)
    parser.add_argument("--json", type=Path, default=None, help="write the figures here too")
    args = parser.parse_args()
    if args.duration > 900 or args.users > 1000:
        parser.error("bounded: at most 1000 users for 15 minutes")
    for url in (args.database_url, args.redis_url):
        host = re.sub(r"^[a-z+]+://([^@/]*@)?", "", url).split("/")[0].split(":")[0]
        if host not in ("127.0.0.1", "localhost"):
            parser.error("loopback only")

    logs = Path(os.environ.get("MINPAN_BENCH_LOGS") or tempfile.mkdtemp(prefix="minpan-load-"))
    logs.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "MINPAN_DATABASE_URL": args.database_url,
        "MINPAN_BROKER_URL": args.redis_url,
        "MINPAN_METRICS_DIR": str(logs / "metrics"),
        "MINPAN_LOG_FORMAT": "json",
        "MINPAN_ENVIRONMENT": "development",
    }
    import redis

    redis.Redis.from_url(args.redis_url).flushdb()
    t0 = time.monotonic()
    seed(args, env)
    print(f"seeded in {time.monotonic() - t0:.0f} s", flush=True)
    users_per_name: dict[str, int] = defaultdict(int)
    n_leaders = max(1, args.users // 10)
    n_handlers = max(1, args.users * 3 // 10)
    for i in range(n_handlers):
        users_per_name[f"{UNITS[i % len(UNITS)]}.handler"] += 1
    for i in range(n_leaders):
        users_per_name[f"{UNITS[i % len(UNITS)]}.principal"] += 1
    tokens = sessions(env, dict(users_per_name))
    items = work_items(env)
    code = "from app.demo import demo_signature_png; print(demo_signature_png())"
    signature = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, check=True, capture_output=True, text=True
    ).stdout.strip()

    procs: list[subprocess.Popen[bytes]] = []

    def start(name: str, *cli: str) -> None:
        out = (logs / f"{name}.log").open("ab")
        procs.append(
            subprocess.Popen(
                [sys.executable, "-m", "app.cli", *cli],
                cwd=ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        )

    ports = [free_port(), free_port()]
    try:
        for i, port in enumerate(ports):
            start(f"web{i + 1}", "serve", "--port", str(port))
        for i in range(2):
            start(f"worker{i + 1}", "worker", "--processes", "1", "--threads", "4")
        start("scheduler", "scheduler")
        bases = [f"http://127.0.0.1:{p}" for p in ports]
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                if all(httpx.get(f"{b}/readyz", timeout=2).status_code == 200 for b in bases):
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        else:
            raise SystemExit("the web processes did not become ready")
        print(f"load: {args.users} users for {args.duration} s on {bases}", flush=True)
        t1 = time.monotonic()
        stats = asyncio.run(run_load(args, bases, tokens, items, signature))
        elapsed = time.monotonic() - t1
        report(args, stats, elapsed, env, items, bases)
    finally:
        for proc in procs:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)


def report(
    args: argparse.Namespace,
    stats: Stats,
    elapsed: float,
    env: dict[str, str],
    items: dict[str, Any],
    bases: list[str],
) -> None:
    total = sum(len(v) for v in stats.times.values())
    errors = sum(len(v) for v in stats.errors.values())
    lines = [f"{'page':<26}{'requests':>9}{'errors':>7}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'max ms':>9}"]
    figures: dict[str, Any] = {
        "users": args.users,
        "duration_s": round(elapsed),
        "requests": total,
        "errors": errors,
        "pages": {},
    }
    for label in sorted(stats.times):
        t = stats.times[label]
        row = {
            "requests": len(t),
            "errors": len(stats.errors.get(label, [])),
            "p50": percentile(t, 50) * 1000,
            "p95": percentile(t, 95) * 1000,
            "p99": percentile(t, 99) * 1000,
            "max": max(t) * 1000,
        }
        figures["pages"][label] = {k: round(v, 1) if isinstance(v, float) else v for k, v in row.items()}
        lines.append(
            f"{label:<26}{row['requests']:>9}{row['errors']:>7}{row['p50']:>9.0f}{row['p95']:>9.0f}{row['p99']:>9.0f}{row['max']:>9.0f}"
        )
    lines.append(f"{'all':<26}{total:>9}{errors:>7}   throughput {total / elapsed:.1f} requests/s")
    for label, errs in stats.errors.items():
        for e in errs[:5]:
            lines.append(f"  error {label}: {e}")

    # Nothing lost: every signature and draft answered as done is in the database; the outbox drains.
    signed = stats.signed
    drafts = dict(stats.drafts)
    code = f"""
import json
import app.models
from sqlalchemy import func, select
from app.cases.models import Assignment, TimelineEntry
from app.notify.models import OutboxMessage
from app.db import system_session
import tempfile
import time
signed = {signed!r}
drafts = {drafts!r}
with system_session() as db:
    states = dict(db.execute(select(Assignment.id, Assignment.state).where(Assignment.id.in_(signed or [0]))).all())
    saved = dict(db.execute(select(TimelineEntry.assignment_id, func.count()).where(
        TimelineEntry.assignment_id.in_([int(k) for k in drafts] or [0]), TimelineEntry.action == 'save_draft')
        .group_by(TimelineEntry.assignment_id)).all())
deadline = time.monotonic() + 300
backlog = None
while time.monotonic() < deadline:
    with system_session() as db:
        backlog = db.scalar(select(func.count()).select_from(OutboxMessage).where(OutboxMessage.sent_at.is_(None)))
    if not backlog:
        break
    time.sleep(2)
print(json.dumps({{'still_awaiting': [a for a, s in states.items() if s == 'awaiting_signoff'],
                   'signed_found': len(states), 'drafts_missing': [int(a) for a, n in drafts.items() if saved.get(int(a), 0) < n + 1],
                   'outbox_backlog': backlog}}))
"""
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, check=True, capture_output=True, text=True
    )
    check = json.loads(done.stdout.strip().splitlines()[-1])
    lost = bool(
        check["still_awaiting"]
        or check["drafts_missing"]
        or check["outbox_backlog"]
        or check["signed_found"] != len(signed)
    )
    figures["signatures"] = len(signed)
    figures["drafts_saved"] = sum(drafts.values())
    figures["check"] = check
    figures["nothing_lost"] = not lost
    lines.append(
        f"signatures {len(signed)} (all in the database: {not check['still_awaiting'] and check['signed_found'] == len(signed)}), "
        f"drafts saved {sum(drafts.values())} (all there: {not check['drafts_missing']}), "
        f"outbox backlog after the run {check['outbox_backlog']}"
    )
    print("\n".join(lines), flush=True)
    if args.json:
        args.json.write_text(json.dumps(figures, ensure_ascii=False, indent=1))
    _ = (hashlib, secrets, bases)


if __name__ == "__main__":
    main()
