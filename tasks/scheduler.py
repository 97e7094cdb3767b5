"""The scheduler: enqueues periodic jobs. Exactly one runs (``minpan scheduler``, or in-process
on the embedded default); the jobs themselves run on any worker."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import dramatiq

log = logging.getLogger("minpan.scheduler")


@dataclass(frozen=True)
class Periodic:
    actor: dramatiq.Actor  # type: ignore[type-arg]
    every_seconds: int


def schedule() -> list[Periodic]:
    from tasks.actors import generate_bulletins, purge_outbox, purge_sessions, sweep_deadlines

    # generate_bulletins: a daily check, so the previous month's 通报 appears on the 1st (第二十一条)
    return [
        Periodic(purge_sessions, 600),
        Periodic(sweep_deadlines, 900),
        Periodic(generate_bulletins, 86400),
        Periodic(purge_outbox, 86400),
    ]


def relay_outbox() -> int:
    """Hand the due outbox messages (e-mail, SMS, webhook) to the workers. Runs in the scheduler
    itself rather than as a job, so notifications leave even when the workers are busy."""
    from app.notify.relay import relay_all

    try:
        return relay_all()
    except Exception:  # the database or the broker may be restarting; try again next round
        log.exception("could not relay the outbox")
        return 0


def run(
    stop: threading.Event,
    *,
    now: Callable[[], float] = time.monotonic,
    tick: float = 30,
    relay_every: float | None = None,
) -> None:
    """Send each periodic job on its interval until ``stop`` is set (first run at start-up), and
    relay the outbox every ``relay_every`` seconds (MINPAN_OUTBOX_RELAY_SECONDS)."""
    from app.settings import get_settings

    jobs = schedule()
    due = {job.actor.actor_name: now() for job in jobs}
    if relay_every is None:
        relay_every = get_settings().outbox_relay_seconds
    relay_due = now()
    while not stop.is_set():
        if now() >= relay_due:
            relay_outbox()
            relay_due = now() + relay_every
        for job in jobs:
            if now() >= due[job.actor.actor_name]:
                try:
                    job.actor.send()
                except Exception:  # the broker may be restarting; try again next round
                    log.exception("could not enqueue %s", job.actor.actor_name)
                    continue
                due[job.actor.actor_name] = now() + job.every_seconds
        stop.wait(min(max(min(*due.values(), relay_due) - now(), 0.5), tick))
