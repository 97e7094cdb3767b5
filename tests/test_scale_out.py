"""Production topology on PostgreSQL and Redis: two web processes (`minpan serve`) and two Dramatiq
workers (`minpan worker`) sharing one database and one broker. A session made on one web process
is used on the other; a job asked for on one is run by a worker and fetched from the other; a
deadline sweep sent twice at the same moment issues each rung once; /metrics on either web process
sums the requests of both; the request id of the web request shows up in the worker's JSON log."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, update

from app.cases.models import Assignment
from app.db import system_session
from app.demo import DEMO_PASSWORD
from app.settings import get_settings

ROOT = Path(__file__).resolve().parent.parent
REDIS_URL = os.environ.get("MINPAN_TEST_REDIS_URL")
REAL_SERVICES = get_settings().is_postgres and bool(REDIS_URL)

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(
        not REAL_SERVICES, reason="needs PostgreSQL and Redis (MINPAN_TEST_DATABASE_URL/REDIS_URL)"
    ),
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(predicate: Any, seconds: float, every: float = 0.2) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if predicate():
                return True
        except Exception:  # noqa: S110  (a service still starting)
            pass
        time.sleep(every)
    return bool(predicate())


class Processes:
    """Starts `minpan` processes in their own process groups, logging to files; stops them all."""

    def __init__(self, env: dict[str, str], logs: Path) -> None:
        self.env = env
        self.logs = logs
        self.running: list[subprocess.Popen[bytes]] = []

    def start(self, name: str, *args: str, **env: str) -> subprocess.Popen[bytes]:
        log = (self.logs / f"{name}.log").open("ab")
        proc = subprocess.Popen(
            [sys.executable, "-m", "app.cli", *args],
            cwd=ROOT,
            env={**self.env, **env},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.running.append(proc)
        return proc

    def web(self, name: str, port: int, **env: str) -> str:
        self.start(name, "serve", "--port", str(port), **env)
        url = f"http://127.0.0.1:{port}"
        assert wait_until(lambda: httpx.get(f"{url}/healthz", timeout=2).status_code == 200, 60), self.log(
            name
        )
        return url

    def worker(self, name: str, **env: str) -> subprocess.Popen[bytes]:
        return self.start(name, "worker", "--processes", "1", "--threads", "2", **env)

    def log(self, name: str) -> str:
        path = self.logs / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    @staticmethod
    def kill(proc: subprocess.Popen[bytes], sig: int = signal.SIGKILL) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)

    def stop_all(self) -> None:
        for proc in self.running:
            if proc.poll() is None:
                self.kill(proc, signal.SIGTERM)
        self.running.clear()


def csrf(client: httpx.Client, base: str) -> str:
    if "minpan_csrf" not in client.cookies:
        client.get(f"{base}/login")
    return client.cookies["minpan_csrf"]


def post(client: httpx.Client, url: str, data: dict[str, str], base: str, **headers: str) -> httpx.Response:
    return client.post(url, data=data, headers={"x-csrftoken": csrf(client, base), **headers})


def sign_in(client: httpx.Client, base: str, username: str) -> None:
    response = post(client, f"{base}/login", {"username": username, "password": DEMO_PASSWORD}, base)
    assert response.status_code in (302, 303), response.text[:500]


@pytest.fixture()
def services(demo: None) -> Iterator[tuple[Processes, dict[str, str]]]:
    import redis

    assert REDIS_URL is not None
    redis.Redis.from_url(REDIS_URL).flushdb()
    logs = Path(tempfile.mkdtemp(prefix="minpan-scale-"))
    env = {
        **os.environ,
        "MINPAN_BROKER_URL": REDIS_URL,
        "MINPAN_DATABASE_URL": get_settings().database_url,
        "MINPAN_METRICS_DIR": str(logs / "metrics"),
        "MINPAN_LOG_FORMAT": "json",
        "MINPAN_OUTBOX_RELAY_SECONDS": "1",
    }
    procs = Processes(env, logs)
    try:
        yield procs, env
    finally:
        procs.stop_all()
        redis.Redis.from_url(REDIS_URL).flushdb()


def test_two_web_processes_and_two_workers_share_sessions_jobs_and_the_sweep(services: Any) -> None:
    import redis
    from dramatiq import Message
    from dramatiq.brokers.redis import RedisBroker

    procs, _env = services
    # Lead assignments long overdue, so the sweep has rungs to issue.
    with system_session() as db:
        db.execute(
            update(Assignment)
            .where(Assignment.is_lead.is_(True), Assignment.state.in_(("pending", "handling")))
            .values(due_date=date.today() - timedelta(days=10))
        )
    web1 = procs.web("web1", free_port())
    web2 = procs.web("web2", free_port())
    procs.worker("worker1")
    procs.worker("worker2")

    with httpx.Client(timeout=30, follow_redirects=False) as browser:
        # A session made on web 1 is good on web 2.
        sign_in(browser, web1, "horqin.handler")
        on_two = browser.get(f"{web2}/inbox")
        assert on_two.status_code == 200, (on_two.status_code, on_two.headers.get("location"))
        assert 'action="/logout"' in on_two.text  # signed in there too

        # A job asked for on web 1 (with a request id) is run by a worker and fetched from web 2.
        asked = post(
            browser,
            f"{web1}/stats/unit/export",
            {"start": "2026-11-01", "end": "2026-11-30"},
            web1,
            **{"X-Request-ID": "scale-export-1"},
        )
        assert asked.status_code in (302, 303), asked.text[:500]
        assert asked.headers["x-request-id"] == "scale-export-1"
        job_url = asked.headers["location"]
        job_id = int(re.search(r"/jobs/(\d+)", job_url).group(1))  # type: ignore[union-attr]
        assert wait_until(lambda: browser.get(f"{web2}/jobs/{job_id}/download").status_code == 200, 60), (
            procs.log("worker1") + procs.log("worker2")
        )
        download = browser.get(f"{web2}/jobs/{job_id}/download")
        assert download.content[:2] == b"PK"  # an .xlsx

    # The deadline sweep sent twice at the same moment, to two workers: each rung once.
    from app.escalation.models import Escalation

    broker = RedisBroker(url=REDIS_URL)  # type: ignore[no-untyped-call]
    for _ in range(2):
        broker.enqueue(
            Message(queue_name="deadlines", actor_name="sweep_deadlines", args=(), kwargs={}, options={})
        )

    def escalations() -> list[tuple[int, str, Any]]:
        with system_session() as db:
            return [
                tuple(r)
                for r in db.execute(select(Escalation.assignment_id, Escalation.rung, Escalation.number))
            ]  # type: ignore[misc]

    def both_processed() -> bool:
        text = httpx.get(f"{web1}/metrics", timeout=10).text
        return 'minpan_jobs_processed_total{actor="sweep_deadlines",outcome="ok"} 2.0' in text

    assert wait_until(both_processed, 60), httpx.get(f"{web1}/metrics").text[-3000:]
    issued = escalations()
    assert issued, "the sweep issued nothing"
    assert len(issued) == len({(a, rung) for a, rung, _n in issued})  # no rung twice
    numbers = [n for _a, _r, n in issued]
    assert len(numbers) == len(set(numbers))  # no number twice
    metrics = httpx.get(f"{web2}/metrics", timeout=10).text
    assert 'minpan_job_failures_total{actor="sweep_deadlines"}' not in metrics

    # /metrics on web 2 counts what web 1 answered (one multiprocess folder on this machine).
    export = r'minpan_http_requests_total\{method="POST",route="/stats/unit/export",status="30[23]"\} 1\.0'
    assert re.search(export, metrics)
    assert re.search(r'minpan_http_requests_total\{method="GET",route="/inbox",status="200"\} 1\.0', metrics)
    assert "minpan_queue_depth" in metrics and "minpan_outbox_backlog" in metrics

    # Ready on both; the worker that ran the ledger logged it as JSON under the request's id.
    for web in (web1, web2):
        assert httpx.get(f"{web}/readyz").json()["status"] == "ready"
    worker_lines = [
        json.loads(line)
        for name in ("worker1", "worker2")
        for line in procs.log(name).splitlines()
        if line.startswith("{")
    ]
    assert any(
        line["request_id"] == "scale-export-1" and line["logger"] == "minpan.jobs.run"
        for line in worker_lines
    ), worker_lines[-20:]
    access = [json.loads(line) for line in procs.log("web1").splitlines() if line.startswith("{")]
    assert any(
        line.get("request_id") == "scale-export-1" and line.get("path") == "/stats/unit/export"
        for line in access
    )
    with system_session() as db:
        assert db.scalar(select(func.count()).select_from(Escalation)) == len(issued)
    _ = redis


# --- nginx from deploy/ in front of the two web processes ------------------------------------------


def _self_signed(folder: Path) -> tuple[Path, Path]:
    from datetime import UTC, datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "minpan.tongliao.gov.cn")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=2))
        .sign(key, hashes.SHA256())
    )
    chain, private = folder / "fullchain.pem", folder / "privkey.pem"
    chain.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    private.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return chain, private


def nginx_config(folder: Path, web_ports: tuple[int, int], http_port: int, https_port: int) -> Path:
    """deploy/nginx/minpan.conf as shipped, with only what differs on a test machine replaced
    (ports, certificate, log and static paths), inside a minimal main configuration."""
    chain, private = _self_signed(folder)
    site = (ROOT / "deploy/nginx/minpan.conf").read_text()
    for old, new in (
        ("127.0.0.1:8001", f"127.0.0.1:{web_ports[0]}"),
        ("127.0.0.1:8002", f"127.0.0.1:{web_ports[1]}"),
        ("listen 80;", f"listen 127.0.0.1:{http_port};"),
        ("listen 443 ssl", f"listen 127.0.0.1:{https_port} ssl"),
        ("/etc/ssl/minpan/fullchain.pem", str(chain)),
        ("/etc/ssl/minpan/privkey.pem", str(private)),
        ("/var/log/nginx/minpan.access.log", str(folder / "access.log")),
        ("/srv/minpan/current/static/", f"{ROOT}/static/"),
    ):
        assert old in site, f"deploy/nginx/minpan.conf no longer has {old!r}"
        site = site.replace(old, new)
    (folder / "minpan.conf").write_text(site)
    user = "user root;" if os.geteuid() == 0 else ""  # the workers read the checkout's static files
    main = folder / "nginx.conf"
    main.write_text(
        f"""{user}
worker_processes 1;
pid {folder}/nginx.pid;
error_log {folder}/error.log warn;
events {{ worker_connections 256; }}
http {{
    include /etc/nginx/mime.types;
    client_body_temp_path {folder}/body;
    proxy_temp_path {folder}/proxy;
    fastcgi_temp_path {folder}/fastcgi;
    uwsgi_temp_path {folder}/uwsgi;
    scgi_temp_path {folder}/scgi;
    include {folder}/minpan.conf;
}}
"""
    )
    return main


def test_nginx_from_deploy_balances_two_web_processes_and_fails_over(services: Any) -> None:
    procs, _env = services
    ports = (free_port(), free_port())
    web1, web2 = (procs.web(f"web{i + 1}", port) for i, port in enumerate(ports))
    folder = Path(tempfile.mkdtemp(prefix="minpan-nginx-"))
    http_port, https_port = free_port(), free_port()
    main = nginx_config(folder, ports, http_port, https_port)
    checked = subprocess.run(
        ["nginx", "-t", "-c", str(main), "-p", str(folder)], capture_output=True, text=True, check=False
    )
    assert checked.returncode == 0, checked.stderr  # the shipped configuration is valid nginx
    nginx = subprocess.Popen(
        ["nginx", "-c", str(main), "-p", str(folder), "-g", "daemon off;"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"https://127.0.0.1:{https_port}"
    try:
        with httpx.Client(timeout=30, follow_redirects=False, verify=False) as browser:  # noqa: S501  (self-signed)
            assert wait_until(lambda: browser.get(f"{base}/healthz").status_code == 200, 20), (
                folder / "error.log"
            ).read_text()
            plain = httpx.get(f"http://127.0.0.1:{http_port}/replies", timeout=10)
            assert plain.status_code == 301 and plain.headers["location"].startswith("https://")
            page = browser.get(f"{base}/replies")
            assert page.status_code == 200 and "max-age=31536000" in page.headers["strict-transport-security"]
            assert page.headers["content-security-policy"]  # the app's own headers pass through
            assert re.fullmatch(r"[0-9a-f]{32}", page.headers["x-request-id"])  # nginx's $request_id
            assert browser.get(f"{base}/metrics").status_code == 403  # never public
            static = browser.get(f"{base}/static/css/app.css")
            assert static.status_code == 200 and static.headers["server"].startswith("nginx")

            # Signed in through nginx; requests spread over both processes (least_conn).
            sign_in(browser, base, "horqin.handler")
            for _ in range(6):
                assert browser.get(f"{base}/inbox").status_code == 200

            def served() -> dict[str, int]:  # the processes' access logs (written after the answer)
                return {name: procs.log(name).count('"path": "/inbox"') for name in ("web1", "web2")}

            assert wait_until(lambda: sum(served().values()) >= 6, 10), served()
            assert all(served().values()), served()

            # One web process dies: nginx sends the next requests to the other, the session holds.
            Processes.kill(procs.running[0])
            responses = [browser.get(f"{base}/inbox") for _ in range(6)]
            assert [r.status_code for r in responses] == [200] * 6, responses
            # nginx writes a request's access-log line after the answer has gone out: read the six
            # by their request ids once they are all there.
            ids = {r.headers["x-request-id"] for r in responses}

            def logged() -> dict[str, str]:
                lines = [json.loads(line) for line in (folder / "access.log").read_text().splitlines()]
                return {line["request_id"]: line["upstream"] for line in lines if line["request_id"] in ids}

            assert wait_until(lambda: len(logged()) == 6, 10), logged()
            # Each answered by the living process (after a failed try on the dead one, at most).
            assert {upstream.split(",")[-1].strip() for upstream in logged().values()} == {
                web2.removeprefix("http://")
            }
            _ = web1
    finally:
        nginx.terminate()
        nginx.wait(10)
