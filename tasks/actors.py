"""Actors are thin: they take ids, open their own session through a service, and are safe to run twice."""

from __future__ import annotations

import logging

import dramatiq

import tasks  # noqa: F401  (configures the broker before the actors are declared)
from app.accounts.services import purge_expired_sessions

log = logging.getLogger("minpan.tasks")


@dramatiq.actor(queue_name="maintenance", max_retries=3)
def purge_sessions() -> None:
    """Delete sessions past the idle timeout or lifetime (idempotent)."""
    log.info("purged %d expired sessions", purge_expired_sessions())
