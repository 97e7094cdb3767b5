"""Test set-up: real migrations on a real database, the real app over HTTP, demo data per test.

The embedded default (SQLite) runs unless MINPAN_TEST_DATABASE_URL points to PostgreSQL
(``.ci/run`` runs the suite on both). Settings are fixed here, before the app reads them.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dramatiq
import pytest

_TMP = Path(tempfile.mkdtemp(prefix="minpan-test-"))
os.environ["MINPAN_ENVIRONMENT"] = "test"
# The signing PKI, the data keys and the metrics live under var_dir: each run has its own, or the
# two CI passes running side by side overwrite each other's unit keys (and the backup test sees the
# other pass's keys appear in the folder it copied).
os.environ["MINPAN_VAR_DIR"] = str(_TMP / "var")
os.environ["MINPAN_BROKER_URL"] = "stub"
os.environ["MINPAN_SECRET_KEY"] = "test-secret-key-that-is-long-enough-for-hmac-0123456789"
# Cheaper argon2 in tests only (production default: ~90 ms a hash).
os.environ["MINPAN_ARGON2_TIME_COST"] = "1"
os.environ["MINPAN_ARGON2_MEMORY_COST"] = "1024"
os.environ["MINPAN_DATABASE_URL"] = (
    os.environ.get("MINPAN_TEST_DATABASE_URL") or f"sqlite:///{_TMP / 'test.sqlite3'}"
)

ROOT = Path(__file__).resolve().parent.parent
# What tests leave for a human to look at (PDFs, PNGs, screenshots, server logs); the PostgreSQL
# pass keeps its own folder, as CI runs both passes at once.
OUTPUT = ROOT / "test-output" / ("postgresql" if os.environ.get("MINPAN_TEST_DATABASE_URL") else "")
OUTPUT.mkdir(parents=True, exist_ok=True)

from litestar.testing import TestClient  # noqa: E402

from app.db import Base, system_session  # noqa: E402
from app.demo import load_demo  # noqa: E402
from app.notify.models import OutboxMessage  # noqa: E402
from app.settings import get_settings  # noqa: E402

IS_POSTGRES = get_settings().is_postgres


def _fresh_schema() -> None:
    """Empty database, then every migration from the first to head."""
    from sqlalchemy import create_engine, text

    from app import migrate

    url = get_settings().database_url
    if IS_POSTGRES:
        engine = create_engine(url)
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
        engine.dispose()
    migrate.upgrade(url)


@pytest.fixture(scope="session", autouse=True)
def schema() -> None:
    _fresh_schema()


KEPT = {"calendar_years", "calendar_days"}  # reference data seeded by the migrations


def reset_data() -> None:
    from app.calendar import days

    with system_session() as db:
        for table in reversed(Base.metadata.sorted_tables):
            if table.name not in KEPT:
                db.execute(table.delete())
        load_demo(db)
        # The demo queues its documents for the workers; tests start with an empty outbox and
        # issue the documents they need themselves (rendering is slow and tested on its own).
        db.execute(OutboxMessage.__table__.delete())
    flush_broker()  # and the messages the demo's commit handed to the (stub) broker
    days.invalidate()


def flush_broker() -> None:
    """Empty the stub broker's queues and forget the messages a stopped worker had taken and never
    acknowledged: a later ``join()`` would otherwise wait for them for ever."""
    import tasks

    tasks.broker.flush_all()
    for queue in getattr(tasks.broker, "queues", {}).values():
        with queue.all_tasks_done:
            queue.unfinished_tasks = 0
            queue.all_tasks_done.notify_all()


@pytest.fixture()
def demo() -> None:
    reset_data()


@pytest.fixture()
def client(demo: None) -> Iterator[TestClient]:  # type: ignore[type-arg]
    from app.app import create_app

    with TestClient(app=create_app()) as c:
        yield c


@pytest.fixture()
def make_client(demo: None) -> Iterator:  # type: ignore[type-arg]
    """A factory of independent browsers (each with its own cookies and app instance, as two web
    processes sharing one database would be)."""
    from app.app import create_app

    clients: list[TestClient] = []  # type: ignore[type-arg]

    def make() -> TestClient:  # type: ignore[type-arg]
        c = TestClient(app=create_app())
        c.__enter__()
        clients.append(c)
        return c

    yield make
    for c in clients:
        c.__exit__(None, None, None)


@pytest.fixture()
def worker() -> Iterator[Any]:
    """``drain()``: an in-process Dramatiq worker runs the stub broker's messages until every queue
    is empty, then stops. Nothing runs between drains, so a test sees what a request or the sweep
    committed before any worker touched it (a worker running all along raced such checks)."""
    from dramatiq.worker import _WorkerMiddleware

    import tasks
    import tasks.actors  # declares the queues

    def drain() -> None:
        w = dramatiq.Worker(tasks.broker, worker_timeout=100)
        w.start()
        try:
            for queue in sorted(q for q in tasks.broker.get_declared_queues() if not q.endswith(".DQ")):
                tasks.broker.join(queue)
            w.join()
        finally:
            w.stop()
            tasks.broker.middleware[:] = [
                m for m in tasks.broker.middleware if not (isinstance(m, _WorkerMiddleware) and m.worker is w)
            ]

    try:
        yield drain
    finally:
        flush_broker()


@pytest.fixture()
def env() -> Iterator[Any]:
    """Set MINPAN_* variables for this test (and for subprocesses it starts); settings are read
    again, and everything is put back afterwards."""
    saved: dict[str, str | None] = {}

    def set_env(**values: str) -> None:
        for name, value in values.items():
            key = f"MINPAN_{name.upper()}"
            saved.setdefault(key, os.environ.get(key))
            os.environ[key] = value
        get_settings.cache_clear()

    yield set_env
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    get_settings.cache_clear()
