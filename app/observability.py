"""Operations: request ids, structured (JSON) logs, Prometheus metrics and the readiness check.

* **Request ids** — every HTTP request gets an id: the caller's ``X-Request-ID`` if it is a sane
  token (≤ 128 characters of ``A-Za-z0-9._-``, as nginx's ``$request_id`` is), otherwise a new one.
  It is answered in the ``X-Request-ID`` response header, put on every log record written while the
  request runs, and carried into the Dramatiq messages the request sends (``message.options``), so
  the worker's log lines of that job carry it too. Work handed out later by the outbox relay runs
  under ``job-<message id>`` instead.
* **Logs** — ``MINPAN_LOG_FORMAT=json`` (the production default) writes one JSON object per line:
  ``ts, level, logger, msg, request_id`` and, for the access log (logger ``minpan.access``),
  ``method, path, route, status, duration_ms, client``. ``text`` is the development default.
* **Metrics** — ``prometheus_client``. The web processes (and workers on the same machine) write
  their counters to files in ``PROMETHEUS_MULTIPROC_DIR``, which ``minpan serve`` / ``minpan
  worker`` set from ``MINPAN_METRICS_DIR`` (default ``var/metrics``), so ``/metrics`` on any
  process reports the sum over all of them. Gauges that describe shared state (queue depth, outbox
  backlog, jobs by state, overdue assignments) are read from the database and the broker at scrape
  time, cached for a few seconds.
* **Access to /metrics** — with ``MINPAN_METRICS_TOKEN`` set: ``Authorization: Bearer <token>``
  only; without it: loopback clients only, and never a request that came through a proxy.
"""

from __future__ import annotations

import hmac
import logging
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import dramatiq
from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import REGISTRY, Collector

from app.ops.setup import REQUEST_ID, configure_logging, multiprocess_dir, request_id_from, schema_check
from app.settings import Settings, get_settings

access_log = logging.getLogger("minpan.access")
job_log = logging.getLogger("minpan.jobs.run")


HTTP_REQUESTS = Counter("minpan_http_requests_total", "HTTP requests answered", ["method", "route", "status"])
HTTP_LATENCY = Histogram(
    "minpan_http_request_duration_seconds",
    "Time to answer an HTTP request",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
JOBS = Counter("minpan_jobs_processed_total", "Dramatiq messages processed", ["actor", "outcome"])
JOB_FAILURES = Counter("minpan_job_failures_total", "Dramatiq messages that raised", ["actor"])
JOB_LATENCY = Histogram(
    "minpan_job_duration_seconds",
    "Time to process a Dramatiq message",
    ["actor"],
    buckets=(0.01, 0.05, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
)


class StateCollector(Collector):
    """Gauges of the shared state, read at scrape time (cached ``ttl`` seconds per process)."""

    def __init__(self, ttl: float = 10.0) -> None:
        self.ttl = ttl
        self._lock = threading.Lock()
        self._cached: tuple[float, list[GaugeMetricFamily]] | None = None

    def collect(self) -> Iterator[GaugeMetricFamily]:
        with self._lock:
            now = time.monotonic()
            if self._cached is None or now - self._cached[0] > self.ttl:
                self._cached = (now, self._read())
            families = self._cached[1]
        yield from families

    def _read(self) -> list[GaugeMetricFamily]:
        families: list[GaugeMetricFamily] = []
        up = GaugeMetricFamily("minpan_state_up", "1 if the database could be read for these gauges")
        try:
            families += _database_gauges()
            up.add_metric([], 1)
        except Exception:
            logging.getLogger("minpan.metrics").exception("could not read the database for /metrics")
            up.add_metric([], 0)
        families.append(up)
        depth = GaugeMetricFamily("minpan_queue_depth", "Messages waiting in the broker", labels=["queue"])
        try:
            for queue, n in queue_depths().items():
                depth.add_metric([queue], n)
        except Exception:
            logging.getLogger("minpan.metrics").exception("could not read the broker for /metrics")
        families.append(depth)
        return families


def _database_gauges() -> list[GaugeMetricFamily]:
    from sqlalchemy import func, select

    from app.cases.models import Assignment
    from app.db import system_session
    from app.escalation.services import OWED_STATES
    from app.jobs.models import Job
    from app.notify.models import OutboxMessage
    from app.workflows.deadlines import local_date

    backlog = GaugeMetricFamily("minpan_outbox_backlog", "Outbox messages not sent yet", labels=["channel"])
    failing = GaugeMetricFamily(
        "minpan_outbox_failing", "Unsent outbox messages whose last attempt failed", labels=["channel"]
    )
    oldest = GaugeMetricFamily(
        "minpan_outbox_oldest_unsent_seconds", "Age of the oldest unsent outbox message", labels=["channel"]
    )
    jobs = GaugeMetricFamily("minpan_jobs", "Background jobs by state", labels=["state"])
    overdue = GaugeMetricFamily(
        "minpan_overdue_assignments", "Lead assignments owing a reply past their due date"
    )
    now = datetime.now(UTC)
    with system_session() as db:
        rows = db.execute(
            select(
                OutboxMessage.channel,
                func.count(),
                func.sum(func.cast(OutboxMessage.last_error != "", _int())),
                func.min(OutboxMessage.created_at),
            )
            .where(OutboxMessage.sent_at.is_(None))
            .group_by(OutboxMessage.channel)
        ).all()
        for channel, count, failed, first in rows:
            backlog.add_metric([channel], count)
            failing.add_metric([channel], failed or 0)
            if first is not None:
                if first.tzinfo is None:
                    first = first.replace(tzinfo=UTC)
                oldest.add_metric([channel], max((now - first).total_seconds(), 0.0))
        for state, count in db.execute(select(Job.state, func.count()).group_by(Job.state)):
            jobs.add_metric([state], count)
        overdue.add_metric(
            [],
            db.scalar(
                select(func.count())
                .select_from(Assignment)
                .where(
                    Assignment.is_lead.is_(True),
                    Assignment.state.in_(OWED_STATES),
                    Assignment.due_date < local_date(now),
                )
            )
            or 0,
        )
    return [backlog, failing, oldest, jobs, overdue]


def _int() -> Any:
    from sqlalchemy import Integer

    return Integer()


def queue_depths() -> dict[str, int]:
    """Messages waiting per queue (ready + delayed) in the configured broker."""
    import tasks
    import tasks.actors

    broker: Any = tasks.broker
    depths: dict[str, int] = {}
    queues = sorted(q for q in broker.get_declared_queues() if not q.endswith(".DQ"))
    if hasattr(broker, "client") and hasattr(broker, "namespace"):  # Redis
        pipe = broker.client.pipeline()
        for q in queues:
            pipe.llen(f"{broker.namespace}:{q}")
            pipe.llen(f"{broker.namespace}:{q}.DQ")
        counts = pipe.execute()
        for i, q in enumerate(queues):
            depths[q] = int(counts[2 * i]) + int(counts[2 * i + 1])
    elif hasattr(broker, "get_queue_message_counts"):  # RabbitMQ
        for q in queues:
            ready, delayed, _dead = broker.get_queue_message_counts(q)
            depths[q] = int(ready) + int(delayed)
    elif hasattr(broker, "queues"):  # StubBroker
        for q in queues:
            depths[q] = broker.queues[q].qsize() + broker.queues[f"{q}.DQ"].qsize()
    return depths


_state_collector = StateCollector()
_registered = False
_register_lock = threading.Lock()


def _registry() -> CollectorRegistry:
    global _registered
    directory = multiprocess_dir()
    if directory:
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=directory)  # type: ignore[no-untyped-call]
        registry.register(_state_collector)
        return registry
    with _register_lock:
        if not _registered:
            REGISTRY.register(_state_collector)
            _registered = True
    return REGISTRY


def metrics_text() -> tuple[bytes, str]:
    return generate_latest(_registry()), CONTENT_TYPE_LATEST


LOOPBACK = ("127.", "::1", "localhost")
PROXY_HEADERS = (b"x-forwarded-for", b"x-real-ip", b"forwarded")


def metrics_allowed(scope: Any, settings: Settings | None = None) -> bool:
    """``MINPAN_METRICS_TOKEN`` set: the bearer token, compared in constant time. Otherwise a
    loopback client that did not come through a proxy (nginx adds X-Forwarded-For / X-Real-IP)."""
    settings = settings or get_settings()
    headers = dict(scope.get("headers", []))
    if settings.metrics_token:
        given = headers.get(b"authorization", b"").decode("latin-1")
        return hmac.compare_digest(given.encode(), f"Bearer {settings.metrics_token}".encode())
    if any(h in headers for h in PROXY_HEADERS):
        return False
    client = scope.get("client")
    host = client[0] if client else ""
    return host.startswith(LOOPBACK) or host == "testclient"


# --- the ASGI middleware: request id, access log, request metrics ------------------------------------


class ObservabilityMiddleware(ASGIMiddleware):
    """Outermost: sets the request id, times the request, counts it by route and status, writes the
    access log line and answers ``X-Request-ID``."""

    scopes = (ScopeType.HTTP,)

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        incoming = None
        for key, value in scope.get("headers", []):
            if key == b"x-request-id":
                incoming = value.decode("latin-1")
                break
        rid = request_id_from(incoming)
        token = REQUEST_ID.set(rid)
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", rid.encode("latin-1")))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await next_app(scope, receive, send_with_id)
        finally:
            record_request(scope, scope.get("path_template") or "<unmatched>", status, started)
            REQUEST_ID.reset(token)


def record_request(scope: Scope, route: str, status: int, started: float) -> None:
    """Count and time an answered request and write its access log line (under its request id)."""
    elapsed = time.perf_counter() - started
    method = scope.get("method", "")
    HTTP_REQUESTS.labels(method, route, str(status)).inc()
    HTTP_LATENCY.labels(method, route).observe(elapsed)
    client = scope.get("client")
    access_log.info(
        "%s %s %d %.1fms",
        method,
        scope.get("path", ""),
        status,
        elapsed * 1000,
        extra={
            "method": method,
            "path": scope.get("path", ""),
            "route": route,
            "status": status,
            "duration_ms": round(elapsed * 1000, 1),
            "client": client[0] if client else "",
        },
    )


# --- Dramatiq: request ids into jobs, job metrics, worker logs ----------------------------------------


class JobObservability(dramatiq.Middleware):
    """Carries the request id of the request that sent a message into the job's log lines, counts
    processed and failed messages, and gives worker processes the JSON log format."""

    def __init__(self) -> None:
        self._started = threading.local()

    def after_process_boot(self, broker: dramatiq.Broker) -> None:
        configure_logging()  # a worker process, whose logging Dramatiq has just set up

    def before_enqueue(self, broker: dramatiq.Broker, message: Any, delay: int) -> None:
        rid = REQUEST_ID.get()
        if rid and "request_id" not in message.options:
            message.options["request_id"] = rid

    def before_process_message(self, broker: dramatiq.Broker, message: Any) -> None:
        REQUEST_ID.set(message.options.get("request_id") or f"job-{message.message_id[:12]}")
        self._started.value = time.perf_counter()

    def after_process_message(
        self,
        broker: dramatiq.Broker,
        message: Any,
        *,
        result: Any = None,
        exception: BaseException | None = None,
    ) -> None:
        started = getattr(self._started, "value", None)
        if started is not None:
            JOB_LATENCY.labels(message.actor_name).observe(time.perf_counter() - started)
        elapsed = time.perf_counter() - started if started is not None else 0.0
        outcome = "failed" if exception is not None else "ok"
        if exception is not None:
            JOB_FAILURES.labels(message.actor_name).inc()
        JOBS.labels(message.actor_name, outcome).inc()
        job_log.info(
            "%s %s %.1fms",
            message.actor_name,
            outcome,
            elapsed * 1000,
            extra={"actor": message.actor_name, "message_id": message.message_id, "status": outcome},
        )
        REQUEST_ID.set("")

    def after_skip_message(self, broker: dramatiq.Broker, message: Any) -> None:
        JOBS.labels(message.actor_name, "skipped").inc()
        REQUEST_ID.set("")


def install(broker: dramatiq.Broker) -> None:
    """Add :class:`JobObservability` to ``broker`` (tasks/broker.py)."""
    broker.add_middleware(JobObservability())


# --- readiness ------------------------------------------------------------------------------------------


def readiness() -> dict[str, str]:
    """``{check: "ok" | problem}`` for the database, the schema (at the newest migration) and the
    broker. Blocking: call it in a thread, with a time limit."""
    checks: dict[str, str] = {}
    try:
        from alembic.runtime.migration import MigrationContext
        from sqlalchemy import text

        from app.db import get_engine

        with get_engine().connect() as conn:
            conn.execute(text("SELECT 1"))
            checks["database"] = "ok"
            current = MigrationContext.configure(conn).get_current_revision()
        checks["migrations"] = schema_check(current)
    except Exception as exc:
        checks.setdefault("database", f"{type(exc).__name__}: {exc}"[:300])
        checks.setdefault("migrations", "unknown")
    checks["broker"] = _broker_check()
    return checks


def _broker_check() -> str:
    settings = get_settings()
    if settings.broker_url in ("", "stub"):
        return "ok"  # in-process
    try:
        import tasks

        broker: Any = tasks.broker
        if hasattr(broker, "client"):  # Redis
            broker.client.ping()
        elif hasattr(broker, "connection") and not broker.connection.is_open:  # RabbitMQ
            return "not connected"
        return "ok"
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"[:300]
