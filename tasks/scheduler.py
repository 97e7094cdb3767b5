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
    from tasks.actors import purge_sessions, sweep_deadlines

    return [Periodic(purge_sessions, 600), Periodic(sweep_deadlines, 900)]


def run(stop: threading.Event, *, now: Callable[[], float] = time.monotonic, tick: float = 30) -> None:
    """Send each periodic job on its interval until ``stop`` is set (first run at start-up)."""
    jobs = schedule()
    due = {job.actor.actor_name: now() for job in jobs}
    while not stop.is_set():
        for job in jobs:
            if now() >= due[job.actor.actor_name]:
                try:
                    job.actor.send()
                except Exception:  # the broker may be restarting; try again next round
                    log.exception("could not enqueue %s", job.actor.actor_name)
                    continue
                due[job.actor.actor_name] = now() + job.every_seconds
        stop.wait(min(max(min(due.values()) - now(), 0.5), tick))
