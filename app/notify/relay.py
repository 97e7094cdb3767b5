"""The outbox relay and the delivery of one outbox message.

* :func:`relay` (run by the scheduler every few seconds) claims the unsent rows that are due,
  pushes their ``next_attempt_at`` one lease ahead, **commits**, and only then sends one
  ``deliver`` message per row to the broker — a worker never sees a row that is not committed.
  A crash between the commit and the sends only means the lease runs out and the rows are
  handed out again.
* :func:`deliver` (the ``deliver`` actor) sends one row at most once successfully:

  - PostgreSQL: the row is locked (``SELECT … FOR UPDATE``) for the whole send and ``sent_at`` is
    set in the same transaction. A duplicate message waits on the lock and then sees ``sent_at``;
    the relay skips locked rows (``SKIP LOCKED``). If the worker dies mid-send, the transaction and
    the lock die with it, and the row is handed out again after the lease.
  - SQLite: a lock held during a send would block every writer of the database, so the delivery
    instead takes a lease on the row (``locked_until``) in a short transaction, sends outside any
    transaction, then records ``sent_at``. A duplicate message during the send finds the lease and
    does nothing. The lease (MINPAN_OUTBOX_LEASE_SECONDS) must exceed a send's time-out.

  A failure records ``last_error`` and a back-off in ``next_attempt_at`` and re-raises, so Dramatiq
  retries a few times quickly; after that the relay hands the row out again when it is due, up to
  MINPAN_OUTBOX_MAX_ATTEMPTS attempts (about a day). A row past that stays in the outbox, unsent,
  listed for the system admin at /admin/outbox, who may send it again: nothing is lost, and a
  permanently bad address is not tried every hour for ever.
* :func:`purge_sent` deletes sent rows older than MINPAN_OUTBOX_KEEP_DAYS (a daily job).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import cast

from sqlalchemy import Table, exists, or_, select, update

from app.db import system_session, utcnow
from app.notify.channels import channel_for
from app.notify.models import OutboxMessage
from app.settings import get_settings

log = logging.getLogger("minpan.notify")

BATCH = 500  # rows handed out per relay round
MAX_ROUNDS = 20  # rounds per scheduler tick (10,000 messages)
BACKOFF_BASE_SECONDS = 30
BACKOFF_MAX_SECONDS = 3600

outbox = cast(Table, OutboxMessage.__table__)


def _lease() -> timedelta:
    return timedelta(seconds=get_settings().outbox_lease_seconds)


def _enqueue(outbox_id: int) -> None:
    from tasks.actors import deliver as deliver_actor

    deliver_actor.send(outbox_id)


def relay(
    now: datetime | None = None, *, enqueue: Callable[[int], None] | None = None, batch: int = BATCH
) -> int:
    """Hand out up to ``batch`` due unsent rows to the workers; return how many were handed out."""
    now = now or utcnow()
    enqueue = enqueue or _enqueue
    due = (
        OutboxMessage.sent_at.is_(None),
        OutboxMessage.next_attempt_at <= now,
        OutboxMessage.attempts < get_settings().outbox_max_attempts,
    )
    with system_session() as db:  # a read first, so an idle relay never takes a write lock
        if not db.scalar(select(exists().where(*due))):
            return 0
    with system_session() as db:
        claim = (
            select(OutboxMessage.id)
            .where(*due)
            .order_by(OutboxMessage.next_attempt_at)
            .limit(batch)
            .with_for_update(skip_locked=True)  # PostgreSQL; SQLite serialises writers anyway
        )
        ids = list(
            db.scalars(
                update(outbox)
                .where(outbox.c.id.in_(claim.scalar_subquery()))
                .values(relayed_at=now, next_attempt_at=now + _lease())
                .returning(outbox.c.id)
            )
        )
    # Committed: now the workers may see them.
    for n, outbox_id in enumerate(ids):
        try:
            enqueue(outbox_id)
        except Exception:  # the broker may be down: the rest are handed out again after the lease
            log.exception(
                "could not enqueue outbox message %s (%d left for the next lease)", outbox_id, len(ids) - n
            )
            return n
    return len(ids)


def relay_all(now: datetime | None = None, *, enqueue: Callable[[int], None] | None = None) -> int:
    """Relay rounds until nothing more is due (bounded: ``MAX_ROUNDS`` × ``BATCH``)."""
    total = 0
    for _ in range(MAX_ROUNDS):
        handed = relay(now, enqueue=enqueue)
        total += handed
        if handed < BATCH:
            break
    return total


def deliver(outbox_id: int) -> bool:
    """Send one outbox row unless it is already sent. True if this call sent it.

    Raises the channel's error after recording it (so the actor is retried)."""
    if get_settings().is_postgres:
        return _deliver_locked(outbox_id)
    return _deliver_leased(outbox_id)


def _deliver_locked(outbox_id: int) -> bool:
    failure: Exception | None = None
    with system_session() as db:
        row = db.scalar(select(OutboxMessage).where(OutboxMessage.id == outbox_id).with_for_update())
        if row is None or row.sent_at is not None:
            return False
        row.attempts += 1
        try:
            channel_for(row.channel).send(row)
        except Exception as exc:
            failure = exc
            row.last_error = _describe(exc)
            row.next_attempt_at = utcnow() + _backoff(row.attempts)
        else:
            row.sent_at = utcnow()
            row.last_error = ""
        attempts, key = row.attempts, row.key
    if failure is not None:
        log.warning("outbox %s (%s) failed on attempt %d: %s", outbox_id, key, attempts, _describe(failure))
        raise failure
    return True


def _deliver_leased(outbox_id: int) -> bool:
    now = utcnow()
    with system_session() as db:
        claimed = db.execute(
            update(outbox)
            .where(
                outbox.c.id == outbox_id,
                outbox.c.sent_at.is_(None),
                or_(outbox.c.locked_until.is_(None), outbox.c.locked_until <= now),
            )
            .values(
                attempts=outbox.c.attempts + 1,
                locked_until=now + _lease(),
                next_attempt_at=now + _lease(),
            )
        ).rowcount  # type: ignore[attr-defined]
        if not claimed:
            return False  # sent already, or another delivery holds the lease
        row = db.get_one(OutboxMessage, outbox_id)
    try:
        channel_for(row.channel).send(row)
    except Exception as exc:
        with system_session() as db:
            db.execute(
                update(outbox)
                .where(outbox.c.id == outbox_id)
                .values(
                    last_error=_describe(exc),
                    locked_until=None,
                    next_attempt_at=utcnow() + _backoff(row.attempts),
                )
            )
        log.warning(
            "outbox %s (%s) failed on attempt %d: %s", outbox_id, row.key, row.attempts, _describe(exc)
        )
        raise
    with system_session() as db:
        db.execute(
            update(outbox)
            .where(outbox.c.id == outbox_id)
            .values(sent_at=utcnow(), locked_until=None, last_error="")
        )
    return True


def _backoff(attempts: int) -> timedelta:
    """How long the relay waits before handing a failed row out again (never less than a lease)."""
    seconds = min(BACKOFF_BASE_SECONDS * 2 ** min(attempts, 20), BACKOFF_MAX_SECONDS)
    return max(timedelta(seconds=seconds), _lease())


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:2000]


def purge_sent(now: datetime | None = None) -> int:
    """Delete the messages sent more than MINPAN_OUTBOX_KEEP_DAYS ago; how many went. Unsent rows
    (due, failing or given up) are never deleted here."""
    cutoff = (now or utcnow()) - timedelta(days=get_settings().outbox_keep_days)
    with system_session() as db:
        gone = db.execute(outbox.delete().where(outbox.c.sent_at.is_not(None), outbox.c.sent_at < cutoff))
        return int(gone.rowcount)  # type: ignore[attr-defined]
