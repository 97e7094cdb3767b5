"""Operations: liveness and readiness, Prometheus metrics and who may read them, request ids in and
out and into the jobs' log lines, JSON logs (app/observability.py, docs/operations.md)."""

from __future__ import annotations

import json
import logging
import tempfile
from pathlib import Path
from typing import Any

import dramatiq
from litestar.testing import TestClient

from app.ops.setup import JsonFormatter, RequestIdFilter, logging_config
from app.settings import get_settings
from tests.helpers import post, sign_in


def test_liveness_and_readiness_answer_with_their_checks(client: TestClient) -> None:  # type: ignore[type-arg]
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {
        "status": "ready",
        "checks": {"database": "ok", "migrations": "ok", "broker": "ok"},
    }
    assert ready.headers["cache-control"] == "no-store"


def test_readiness_is_503_until_the_schema_is_at_head(demo: None, env: Any) -> None:
    from app import migrate
    from app.app import create_app

    folder = Path(tempfile.mkdtemp(prefix="minpan-ready-"))
    url = f"sqlite:///{folder / 'old.sqlite3'}"
    script = migrate.ScriptDirectory.from_config(migrate.alembic_config(url))  # type: ignore[attr-defined]
    previous = script.get_revision(migrate.head_revision()).down_revision
    migrate.upgrade(url, previous)
    env(database_url=url)
    with TestClient(app=create_app()) as c:
        response = c.get("/readyz")
        assert response.status_code == 503
        body = response.json()
        assert body["status"] == "not ready"
        assert body["checks"]["database"] == "ok"
        assert body["checks"]["migrations"].startswith(f"at {previous}, code expects")
        migrate.upgrade(url)
        assert c.get("/readyz").status_code == 200


def test_metrics_count_requests_by_route_and_status_with_latency(client: TestClient) -> None:  # type: ignore[type-arg]
    client.get("/healthz")
    client.get("/replies/999999")  # 404 on a route with a parameter: labelled by its template
    text = client.get("/metrics").text
    assert 'minpan_http_requests_total{method="GET",route="/healthz",status="200"}' in text
    assert 'minpan_http_requests_total{method="GET",route="/replies/{case_id}",status="404"}' in text
    assert 'minpan_http_request_duration_seconds_bucket{le="0.5",method="GET",route="/healthz"}' in text
    for gauge in (
        "minpan_outbox_backlog",
        "minpan_overdue_assignments",
        "minpan_queue_depth",
        "minpan_state_up 1.0",
        "minpan_job_failures_total",
    ):
        assert gauge in text


def test_queue_depth_and_outbox_backlog_are_read_from_the_broker_and_the_database(demo: None) -> None:
    import tasks
    from app.db import system_session
    from app.notify.services import enqueue_work
    from app.observability import StateCollector, queue_depths

    tasks.broker.flush_all()
    with system_session() as db:
        for n in range(3):
            enqueue_work(db, key=f"ops:{n}", channel="job", recipient="0")
    assert queue_depths()["notify"] == 3  # the after-commit kicks
    gauges = {f.name: f for f in StateCollector(ttl=0).collect()}
    backlog = {s.labels["channel"]: s.value for s in gauges["minpan_outbox_backlog"].samples}
    assert backlog["job"] == 3
    tasks.broker.flush_all()


def test_metrics_are_for_loopback_or_the_token_only(client: TestClient, env: Any) -> None:  # type: ignore[type-arg]
    assert client.get("/metrics").status_code == 200  # the test client is local
    proxied = client.get("/metrics", headers={"X-Forwarded-For": "203.0.113.9"})
    assert proxied.status_code == 403  # came through nginx: a visitor, not the monitoring
    env(metrics_token="s3cret-metrics-token")
    assert client.get("/metrics").status_code == 403
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 403
    ok = client.get("/metrics", headers={"Authorization": "Bearer s3cret-metrics-token"})
    assert ok.status_code == 200 and "minpan_http_requests_total" in ok.text


def test_request_ids_in_and_out(client: TestClient) -> None:  # type: ignore[type-arg]
    given = client.get("/healthz", headers={"X-Request-ID": "nginx-abc.123"})
    assert given.headers["x-request-id"] == "nginx-abc.123"
    fresh = client.get("/healthz").headers["x-request-id"]
    assert len(fresh) == 32 and fresh != client.get("/healthz").headers["x-request-id"]
    hostile = client.get("/healthz", headers={"X-Request-ID": 'a b"{}<script>'}).headers["x-request-id"]
    assert len(hostile) == 32 and hostile.isalnum()
    # error pages carry it too
    assert client.get("/replies/999999", headers={"X-Request-ID": "r404"}).headers["x-request-id"] == "r404"


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[dict[str, Any]] = []
        self.setFormatter(JsonFormatter())
        self.addFilter(RequestIdFilter())

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(json.loads(self.format(record)))


def test_access_log_is_json_with_the_request_id_and_the_job_it_sends_carries_it(client: TestClient) -> None:  # type: ignore[type-arg]
    import tasks
    import tasks.actors

    records = _Records()
    root = logging.getLogger("minpan")
    root.addHandler(records)
    root.setLevel(logging.INFO)
    tasks.broker.flush_all()
    try:
        sign_in(client, "zx.clerk")
        response = post(
            client,
            "/ledger",
            {"start": "2026-11-01", "end": "2026-11-30"},
            headers={"X-Request-ID": "ledger-req-42"},
        )
        assert response.status_code in (302, 303)
        access = [
            r for r in records.lines if r["logger"] == "minpan.access" and r["request_id"] == "ledger-req-42"
        ]
        assert access and access[0]["method"] == "POST" and access[0]["path"] == "/ledger"
        assert access[0]["route"] == "/ledger" and access[0]["status"] in (302, 303)
        assert isinstance(access[0]["duration_ms"], float)

        # The job message the request sent carries the id; the worker's log line of that job has it.
        worker = dramatiq.Worker(tasks.broker, worker_timeout=100)
        worker.start()
        try:
            tasks.broker.join("notify")
            worker.join()
        finally:
            worker.stop()
        ran = [r for r in records.lines if r["logger"] == "minpan.jobs.run"]
        assert any(r["request_id"] == "ledger-req-42" and r["actor"] == "deliver" for r in ran), ran
    finally:
        root.removeHandler(records)
        tasks.broker.flush_all()


def test_log_format_defaults_to_json_in_production() -> None:
    from dataclasses import replace

    base = get_settings()
    production = replace(base, environment="production", log_format="")
    assert logging_config(production)["formatters"]["default"] == {"()": "app.ops.setup.JsonFormatter"}
    development = replace(base, environment="development", log_format="")
    assert "format" in logging_config(development)["formatters"]["default"]
    forced = replace(base, environment="development", log_format="json")
    assert "()" in logging_config(forced)["formatters"]["default"]
