"""Actors are thin: they take ids, open their own session through a service, and are safe to run twice."""

from __future__ import annotations

import logging

import dramatiq

import app.models  # noqa: F401  (every mapper: a worker's flush must resolve every foreign key)
import tasks  # noqa: F401  (configures the broker before the actors are declared)
from app.accounts.services import purge_expired_sessions

log = logging.getLogger("minpan.tasks")


@dramatiq.actor(queue_name="maintenance", max_retries=3)
def purge_sessions() -> None:
    """Delete sessions past the idle timeout or lifetime (idempotent)."""
    log.info("purged %d expired sessions", purge_expired_sessions())


@dramatiq.actor(queue_name="maintenance", max_retries=3)
def purge_outbox() -> None:
    """Delete outbox messages sent more than MINPAN_OUTBOX_KEEP_DAYS ago (idempotent)."""
    from app.notify.relay import purge_sent

    log.info("purged %d sent outbox messages", purge_sent())


@dramatiq.actor(queue_name="deadlines", max_retries=5)
def sweep_deadlines() -> None:
    """提醒单 / 催办单 / 督办单 due today (idempotent: each rung of each deadline once)."""
    from datetime import UTC, datetime

    from app.escalation.services import sweep
    from app.workflows.deadlines import local_date

    result = sweep(local_date(datetime.now(UTC)))
    log.info("deadline sweep issued %s", result.issued)


@dramatiq.actor(queue_name="notify", max_retries=3, min_backoff=10_000, max_backoff=60_000)
def deliver(outbox_id: int) -> None:
    """Send one outbox message (e-mail, SMS, webhook) unless it is sent already (idempotent: a
    duplicate message waits for the first and then finds it sent). After these quick retries the
    relay hands the message out again with a longer back-off."""
    from app.notify.relay import deliver as deliver_one

    deliver_one(outbox_id)


@dramatiq.actor(queue_name="reports", max_retries=3)
def generate_bulletins() -> None:
    """通报 (第二十一条): the previous month's bulletin as a draft, if it is missing (idempotent)."""
    from app.assessment.bulletins import ensure_monthly
    from app.db import system_session

    with system_session() as db:
        made = ensure_monthly(db)
        log.info("bulletin %s", made.period if made else "already there")
