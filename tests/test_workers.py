"""Background work: the actors, the scheduler, the in-process worker of the embedded default, and
real worker and scheduler processes on Redis (when the suite runs against the real services)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path

import dramatiq
import pytest
from sqlalchemy import select

from app.accounts.models import User, UserSession
from app.db import system_session, utcnow

ROOT = Path(__file__).resolve().parent.parent
REDIS_URL = os.environ.get("MINPAN_TEST_REDIS_URL")


def _sessions(stale: int, fresh: int) -> None:
    with system_session() as db:
        user_id = db.scalar(select(User.id).where(User.username == "horqin.handler"))
        for i in range(stale):
            db.add(
                UserSession(id=f"stale{i:059d}", user_id=user_id, last_seen_at=utcnow() - timedelta(hours=1))
            )
        for i in range(fresh):
            db.add(UserSession(id=f"fresh{i:059d}", user_id=user_id))


def _remaining() -> list[str]:
    with system_session() as db:
        return sorted(s[:5] for s in db.scalars(select(UserSession.id)))


def _wait_until(predicate, seconds: float) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return predicate()


def test_purge_actor_removes_only_expired_sessions_and_is_safe_to_run_twice(demo) -> None:  # type: ignore[no-untyped-def]
    import tasks
    from tasks.actors import purge_sessions

    _sessions(stale=3, fresh=2)
    worker = dramatiq.Worker(tasks.broker, worker_timeout=100)
    worker.start()
    try:
        purge_sessions.send()
        purge_sessions.send()
        tasks.broker.join(purge_sessions.queue_name)
        worker.join()
    finally:
        worker.stop()
    assert _remaining() == ["fresh", "fresh"]


def test_scheduler_enqueues_each_periodic_job_on_its_interval(demo) -> None:  # type: ignore[no-untyped-def]
    import tasks
    from tasks import scheduler

    clock = [1000.0]
    stop = threading.Event()
    tasks.broker.flush_all()
    thread = threading.Thread(
        target=scheduler.run, args=(stop,), kwargs={"now": lambda: clock[0], "tick": 0.1}
    )
    thread.start()
    try:
        # At start-up: the session purge (every 10 minutes) and the outbox purge (daily).
        assert _wait_until(lambda: tasks.broker.queues["maintenance"].qsize() == 2, 5)
        clock[0] += 599
        time.sleep(1)
        assert tasks.broker.queues["maintenance"].qsize() == 2  # not yet due
        clock[0] += 2
        assert _wait_until(lambda: tasks.broker.queues["maintenance"].qsize() == 3, 5)  # sessions only
    finally:
        stop.set()
        thread.join(5)
        tasks.broker.flush_all()


def test_embedded_default_runs_jobs_inside_the_web_process(demo) -> None:  # type: ignore[no-untyped-def]
    from tasks.embedded import EmbeddedWorker

    _sessions(stale=2, fresh=1)
    background = EmbeddedWorker()
    background.start()  # the scheduler sends the purge at start-up; the worker thread runs it
    try:
        assert _wait_until(lambda: _remaining() == ["fresh"], 15)
    finally:
        background.stop()


@pytest.mark.skipif(not REDIS_URL, reason="needs the real Redis (set MINPAN_TEST_REDIS_URL; .ci/run does)")
def test_worker_and_scheduler_processes_on_redis(demo) -> None:  # type: ignore[no-untyped-def]
    """Production topology: `minpan scheduler` and `minpan worker` as separate processes on Redis."""
    import redis

    redis.Redis.from_url(REDIS_URL).flushdb()
    _sessions(stale=4, fresh=1)
    env = {**os.environ, "MINPAN_BROKER_URL": REDIS_URL}
    minpan = [sys.executable, "-m", "app.cli"]
    worker = subprocess.Popen(
        [*minpan, "worker", "--processes", "1", "--threads", "2"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    scheduler = subprocess.Popen(
        [*minpan, "scheduler"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        assert _wait_until(lambda: _remaining() == ["fresh"], 30), "the job never ran on the Redis worker"
    finally:
        for proc in (scheduler, worker):
            proc.terminate()
        for proc in (scheduler, worker):
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
        redis.Redis.from_url(REDIS_URL).flushdb()


def test_worker_and_scheduler_commands_refuse_to_run_without_a_broker() -> None:
    env = {k: v for k, v in os.environ.items() if k != "MINPAN_BROKER_URL"}
    for command in ("worker", "scheduler"):
        result = subprocess.run(
            [sys.executable, "-m", "app.cli", command],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode != 0
        assert "MINPAN_BROKER_URL" in result.stderr
