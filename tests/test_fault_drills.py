# ruff: noqa: E501
"""Fault drills, automated, on a PRIVATE PostgreSQL cluster and a PRIVATE Redis started here (never
the machine's shared ones): a worker killed with SIGKILL in the middle of a document render and in
the middle of an e-mail; Redis restarted (losing its queue) while jobs wait; PostgreSQL restarted
during a burst of workflow steps. Afterwards: every committed step is there and nothing is half
written, every job ran once in effect, nothing was sent twice (a real SMTP server), and the portal
answers again by itself. Runs in the PostgreSQL pass of the suite (marker ``postgres``)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from glob import glob
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import Engine, create_engine, text

from app.notify.channels import message_id
from app.settings import get_settings
from tests.test_notify import MailSink
from tests.test_scale_out import Processes, csrf, free_port, sign_in, wait_until

ROOT = Path(__file__).resolve().parent.parent
INITDB = sorted(glob("/usr/lib/postgresql/*/bin/initdb"))
PG_BIN = Path(INITDB[-1]).parent if INITDB else None
REDIS_SERVER = shutil.which("redis-server")

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(
        not get_settings().is_postgres or PG_BIN is None or REDIS_SERVER is None,
        reason="the PostgreSQL pass only (needs initdb/pg_ctl and redis-server to start private ones)",
    ),
]


def _as_postgres(args: list[str]) -> list[str]:
    """initdb and pg_ctl refuse root: run them as the postgres user."""
    return ["runuser", "-u", "postgres", "--", *args] if os.geteuid() == 0 else args


@dataclass
class Cluster:
    """A throwaway PostgreSQL cluster and Redis server on free ports, in a temporary folder."""

    folder: Path
    pg_port: int
    redis_port: int
    redis: subprocess.Popen[bytes] | None = None

    @property
    def data(self) -> Path:
        return self.folder / "pg"

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://minpan@127.0.0.1:{self.pg_port}/minpan"

    @property
    def redis_url(self) -> str:
        return f"redis://127.0.0.1:{self.redis_port}/0"

    def pg_ctl(self, *args: str) -> None:
        assert PG_BIN is not None
        subprocess.run(
            _as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(self.data), *args]),
            check=True,
            capture_output=True,
            timeout=60,
        )

    def pg_start(self) -> None:
        options = f"-p {self.pg_port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=100"
        self.pg_ctl("-o", options, "-l", str(self.folder / "pg.log"), "-w", "start")

    def pg_pid(self) -> int:
        return int((self.data / "postmaster.pid").read_text().split()[0])

    def psql(self, sql: str, db: str = "postgres") -> None:
        assert PG_BIN is not None
        subprocess.run(
            [
                str(PG_BIN / "psql"),
                "-h",
                "127.0.0.1",
                "-p",
                str(self.pg_port),
                "-U",
                "postgres",
                "-d",
                db,
                "-v",
                "ON_ERROR_STOP=1",
                "-qc",
                sql,
            ],
            check=True,
            capture_output=True,
            timeout=60,
        )

    def redis_start(self) -> None:
        assert REDIS_SERVER is not None
        self.redis = subprocess.Popen(
            [
                REDIS_SERVER,
                "--port",
                str(self.redis_port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        import redis

        assert wait_until(lambda: redis.Redis(port=self.redis_port).ping(), 20)

    def redis_stop(self) -> None:
        if self.redis is not None:
            self.redis.kill()  # SIGKILL: with --save "" everything queued is gone
            self.redis.wait(10)
            self.redis = None


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    assert PG_BIN is not None
    folder = Path(tempfile.mkdtemp(prefix="minpan-drill-"))
    shutil.chown(folder, "postgres") if os.geteuid() == 0 else None
    c = Cluster(folder, free_port(), free_port())
    subprocess.run(
        _as_postgres(
            [str(PG_BIN / "initdb"), "-D", str(c.data), "-A", "trust", "-U", "postgres", "--no-sync"]
        ),
        check=True,
        capture_output=True,
        timeout=120,
    )
    c.pg_start()
    c.redis_start()
    try:
        c.psql("CREATE ROLE minpan LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS")
        c.psql("CREATE DATABASE minpan OWNER minpan")
        env = drill_env(c)
        code = (
            "from app import migrate; migrate.upgrade()\nfrom app.cli import _print_logins; _print_logins()"
        )
        done = subprocess.run(
            [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
        )
        assert done.returncode == 0, done.stderr
        yield c
    finally:
        c.redis_stop()
        try:
            c.pg_ctl("-m", "immediate", "stop")
        finally:
            shutil.rmtree(folder, ignore_errors=True)


def drill_env(c: Cluster, **extra: str) -> dict[str, str]:
    env = {
        **os.environ,
        "MINPAN_DATABASE_URL": c.url,
        "MINPAN_BROKER_URL": c.redis_url,
        "MINPAN_OUTBOX_LEASE_SECONDS": "4",
        "MINPAN_OUTBOX_RELAY_SECONDS": "1",
        "MINPAN_METRICS_DIR": str(c.folder / "metrics"),
        "MINPAN_PKI_DIR": str(c.folder / "pki"),
        "MINPAN_LOG_FORMAT": "json",
        "MINPAN_SMTP_HOST": "",
    }
    env.pop("MINPAN_TEST_DATABASE_URL", None)
    return {**env, **{f"MINPAN_{k.upper()}": v for k, v in extra.items()}}


def run_app(c: Cluster, code: str, **extra: str) -> str:
    """Run Python with the app configured for the private services; returns its stdout."""
    done = subprocess.run(
        [sys.executable, "-c", "import app.models\n" + code],
        cwd=ROOT,
        env=drill_env(c, **extra),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def sql(c: Cluster) -> Engine:
    return create_engine(c.url, pool_pre_ping=True)


def rows(engine: Engine, query: str, **params: Any) -> list[Any]:
    with engine.begin() as conn:
        conn.execute(text("SELECT set_config('minpan.system', 'on', true)"))
        return list(conn.execute(text(query), params))


def locked_row(engine: Engine, channel: str) -> int | None:
    """An unsent outbox row of ``channel`` that a worker holds locked, i.e. is delivering now."""
    with engine.begin() as conn:
        unsent = {
            r[0]
            for r in conn.execute(
                text("SELECT id FROM outbox WHERE sent_at IS NULL AND channel = :c"), {"c": channel}
            )
        }
        free = {
            r[0]
            for r in conn.execute(
                text("SELECT id FROM outbox WHERE sent_at IS NULL AND channel = :c FOR UPDATE SKIP LOCKED"),
                {"c": channel},
            )
        }
    busy = unsent - free
    return min(busy) if busy else None


@pytest.fixture()
def procs(cluster: Cluster) -> Iterator[Processes]:
    import redis

    redis.Redis(port=cluster.redis_port).flushall()
    p = Processes(drill_env(cluster), cluster.folder)
    try:
        yield p
    finally:
        for proc in p.running:  # throwaway processes: no graceful stop needed
            Processes.kill(proc)
        p.running.clear()


def test_a_worker_killed_in_the_middle_of_a_document_render(cluster: Cluster, procs: Processes) -> None:
    engine = sql(cluster)
    # The demo queued its documents (承办单, the signed reply …); nothing has rendered them yet.
    pending = rows(engine, "SELECT id FROM outbox WHERE channel = 'document' AND sent_at IS NULL ORDER BY id")
    assert len(pending) >= 3
    with engine.begin() as conn:  # three are enough (2 cores): the rest count as done already
        conn.execute(
            text("UPDATE outbox SET sent_at = now() WHERE channel = 'document' AND id > :i"),
            {"i": pending[2][0]},
        )
    procs.start("scheduler", "scheduler")
    victim = procs.start("worker-a", "worker", "--processes", "1", "--threads", "1")
    busy: list[int] = []
    assert wait_until(
        lambda: busy.append(locked_row(engine, "document") or 0) or busy[-1] > 0, 90, every=0.05
    )
    Processes.kill(victim)  # SIGKILL to the whole process group, mid-render
    killed = busy[-1]
    assert rows(engine, "SELECT sent_at FROM outbox WHERE id = :i", i=killed)[0][0] is None

    procs.start("worker-b", "worker", "--processes", "1", "--threads", "2")
    assert wait_until(
        lambda: not rows(engine, "SELECT 1 FROM outbox WHERE channel = 'document' AND sent_at IS NULL"), 150
    ), procs.log("worker-b")[-3000:]
    outbox = rows(engine, "SELECT id, attempts FROM outbox WHERE id = ANY(:i)", i=[p[0] for p in pending[:3]])
    assert all(attempts == 1 for _id, attempts in outbox), outbox  # the killed attempt left no trace
    documents = rows(engine, "SELECT workspace_id, kind, content_hash, sha256, pdf FROM documents")
    assert documents
    assert len({(w, k, h) for w, k, h, _s, _p in documents}) == len(documents)  # each content once
    import hashlib

    from app.security.crypto import keyring

    opened = [
        (sha, keyring().decrypt_bytes(bytes(pdf), "documents.pdf")) for _w, _k, _h, sha, pdf in documents
    ]
    assert all(hashlib.sha256(pdf).hexdigest() == sha for sha, pdf in opened)  # sealed, and whole


def test_a_worker_killed_in_the_middle_of_a_reminder_email(cluster: Cluster, procs: Processes) -> None:
    engine = sql(cluster)
    sink = MailSink(block_first=True)
    port = free_port()
    smtp = Controller(sink, hostname="127.0.0.1", port=port)
    smtp.start()
    try:
        procs.env = drill_env(cluster, smtp_host="127.0.0.1", smtp_port=str(port))
        run_app(
            cluster,
            "from sqlalchemy import select\n"
            "from app.accounts.models import User\n"
            "from app.tenants.models import Membership\n"
            "from app.db import system_session\n"
            "from app.notify.services import Notice, notify_many\n"
            "with system_session() as db:\n"
            "    notices = []\n"
            "    for i, name in enumerate(['horqin.principal', 'kailu.principal', 'naiman.principal']):\n"
            "        uid, ws = db.execute(select(User.id, Membership.workspace_id).join(Membership, Membership.user_id == User.id).where(User.username == name)).first()\n"
            "        notices.append(Notice(ws, uid, f'drill:remind:{i}', '【提醒单】通辽提〔2026〕9号', '承办单即将到期，请按期答复（第十三条）。', '/inbox'))\n"
            "    notify_many(db, notices)\n",
            smtp_host="127.0.0.1",
            smtp_port=str(port),
        )
        keys = [f"drill:remind:{i}:email" for i in range(3)]
        procs.start("scheduler", "scheduler")
        victim = procs.start("worker-a", "worker", "--processes", "1", "--threads", "1")
        assert sink.entered.wait(60), procs.log("worker-a")[-3000:]  # the worker is inside DATA
        Processes.kill(victim)
        sink.release.set()  # the dead connection's transaction is refused, nothing kept
        procs.start("worker-b", "worker", "--processes", "1", "--threads", "2")
        assert wait_until(
            lambda: (
                len(rows(engine, "SELECT 1 FROM outbox WHERE key = ANY(:k) AND sent_at IS NOT NULL", k=keys))
                == 3
            ),
            90,
        ), procs.log("worker-b")[-3000:]
        for key in keys:
            assert len(sink.with_id(key)) == 1, key  # each reminder arrived exactly once
        assert {m["Message-ID"] for m in sink.messages} >= {message_id(k) for k in keys}
    finally:
        smtp.stop()


def test_redis_restarted_while_jobs_are_queued_loses_none(cluster: Cluster, procs: Processes) -> None:
    import redis

    engine = sql(cluster)
    out = run_app(
        cluster,
        "from sqlalchemy import select\n"
        "from app.accounts.models import User\n"
        "from app.tenants.models import Workspace\n"
        "from app.db import system_session\n"
        "from app.jobs import services\n"
        "with system_session() as db:\n"
        "    uid = db.scalar(select(User.id).where(User.username == 'zx.clerk'))\n"
        "    ws = db.scalar(select(Workspace.id).where(Workspace.slug == 'portal-centre'))\n"
        "    ids = [services.submit(db, kind='ledger', title=f'台账{i}', params={'start': '2026-11-01', 'end': '2026-11-30'}, workspace_id=ws, user_id=uid).id for i in range(4)]\n"
        "print(','.join(map(str, ids)))\n",
    )
    job_ids = [int(i) for i in out.strip().split(",")]
    client = redis.Redis(port=cluster.redis_port)
    assert client.llen("dramatiq:notify") >= 4  # handed to the broker after the commit
    cluster.redis_stop()
    cluster.redis_start()  # a new, empty Redis: the queued messages are gone
    assert client.llen("dramatiq:notify") == 0

    procs.start("scheduler", "scheduler")  # the relay hands out the unsent rows after their lease
    procs.start("worker-a", "worker", "--processes", "1", "--threads", "2")
    procs.start("worker-b", "worker", "--processes", "1", "--threads", "2")
    assert wait_until(
        lambda: (
            all(r[0] == "done" for r in rows(engine, "SELECT state FROM jobs WHERE id = ANY(:i)", i=job_ids))
            and not rows(
                engine,
                "SELECT 1 FROM outbox WHERE key = ANY(:k) AND sent_at IS NULL",
                k=[f"job:{i}" for i in job_ids],
            )
        ),
        90,
    ), procs.log("worker-a")[-2000:] + procs.log("scheduler")[-2000:]
    outbox = rows(
        engine,
        "SELECT key, attempts, sent_at FROM outbox WHERE key = ANY(:k)",
        k=[f"job:{i}" for i in job_ids],
    )
    assert len(outbox) == 4 and all(attempts == 1 and sent for _k, attempts, sent in outbox), outbox
    results = rows(engine, "SELECT length(result) FROM jobs WHERE id = ANY(:i)", i=job_ids)
    assert all(n and n > 1000 for (n,) in results)


def test_postgres_restarted_during_a_burst_of_transitions(cluster: Cluster, procs: Processes) -> None:
    engine = sql(cluster)
    run_app(
        cluster,
        "from sqlalchemy import select\n"
        "from app.cases.services import MessageInput, register_case\n"
        "from app.demo import _actor\n"
        "from app.tenants.models import Workspace\n"
        "from app.workflows.engine import apply\n"
        "from app.db import system_session\n"
        "with system_session() as db:\n"
        "    clerk = _actor(db, 'zx.clerk', 'portal-centre')\n"
        "    naiman = db.scalar(select(Workspace.id).where(Workspace.slug == 'naiman'))\n"
        "    for i in range(24):\n"
        "        case = register_case(db, clerk, MessageInput(board='mayor', source_id=f'DRILL-{i:03d}', title=f'演练留言{i}', body='小区路灯不亮，请尽快维修。', posted_at='2026-11-25 09:00', category='complain', topic='', region='奈曼旗', citizen_name='王先生', citizen_phone='13847511000'))\n"
        "        apply(db, clerk, case, 'dispatch', lead_unit_id=naiman, co_unit_ids=[])\n",
    )
    targets = rows(
        engine,
        "SELECT a.id, a.version FROM assignments a JOIN cases c ON c.id = a.case_id "
        "WHERE c.source_id LIKE 'DRILL-%' AND a.state = 'pending' ORDER BY a.id",
    )
    assert len(targets) == 24
    web = procs.web("web", free_port())
    outcomes: dict[int, str] = {}
    with httpx.Client(timeout=20, follow_redirects=False) as browser:
        sign_in(browser, web, "naiman.handler")
        token = csrf(browser, web)
        cookies = dict(browser.cookies)

    def receive(target: tuple[int, int]) -> None:
        assignment_id, version = target
        try:
            with httpx.Client(timeout=20, cookies=cookies, follow_redirects=False) as c:
                r = c.post(
                    f"{web}/inbox/{assignment_id}/act/receive",
                    data={"version": str(version)},
                    headers={"x-csrftoken": token},
                )
            outcomes[assignment_id] = "ok" if r.status_code in (302, 303) else f"http {r.status_code}"
        except httpx.HTTPError as exc:
            outcomes[assignment_id] = type(exc).__name__

    before = cluster.pg_pid()
    restarter = threading.Thread(
        target=lambda: (
            wait_until(lambda: len(outcomes) >= 8, 30, every=0.01),
            cluster.pg_ctl("-m", "immediate", "stop"),
            time.sleep(1),
            cluster.pg_start(),
        )
    )
    restarter.start()
    with ThreadPoolExecutor(6) as pool:
        for target in targets:
            pool.submit(receive, target)
            time.sleep(0.05)  # a burst over the restart
    restarter.join(60)
    assert cluster.pg_pid() != before  # PostgreSQL really was restarted

    # The portal answers again by itself (the pool drops the dead connections).
    assert wait_until(lambda: httpx.get(f"{web}/readyz", timeout=5).status_code == 200, 60)
    succeeded = {i for i, outcome in outcomes.items() if outcome == "ok"}
    assert succeeded and len(outcomes) == 24
    state = {
        a: (s, n)
        for a, s, n in rows(
            engine,
            "SELECT a.id, a.state, (SELECT count(*) FROM timeline_entries t WHERE t.assignment_id = a.id "
            "AND t.action = 'receive') FROM assignments a WHERE a.id = ANY(:i)",
            i=[t[0] for t in targets],
        )
    }
    for assignment_id in succeeded:
        assert state[assignment_id] == ("handling", 1), (
            assignment_id,
            state[assignment_id],
        )  # committed: there
    for assignment_id, (s, n) in state.items():
        assert (s, n) in (("handling", 1), ("pending", 0)), (assignment_id, s, n)  # never half written
    # What failed during the restart goes through now, on the same web process.
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(receive, [t for t in targets if state[t[0]][0] == "pending"]))
    final = rows(
        engine,
        "SELECT count(*) FROM assignments a JOIN cases c ON c.id = a.case_id WHERE c.source_id LIKE 'DRILL-%' AND a.state = 'handling'",
    )
    assert final[0][0] == 24
    _ = signal
