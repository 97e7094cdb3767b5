"""The embedded default: a Dramatiq worker and the scheduler inside the web process."""

from __future__ import annotations

import threading

import dramatiq

import tasks
import tasks.actors
from tasks import scheduler


class EmbeddedWorker:
    def __init__(self) -> None:
        self.worker = dramatiq.Worker(tasks.broker, worker_threads=2, worker_timeout=200)
        self._stop = threading.Event()
        self._scheduler = threading.Thread(
            target=scheduler.run, args=(self._stop,), name="minpan-scheduler", daemon=True
        )

    def start(self) -> None:
        self.worker.start()
        self._scheduler.start()

    def stop(self) -> None:
        self._stop.set()
        self.worker.stop(timeout=5000)
        self._scheduler.join(timeout=5)
