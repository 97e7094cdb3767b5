"""Notify people: the in-app notification and, through the outbox, e-mail, SMS and webhook.

``notify_many`` only writes rows, in the caller's transaction: the notice and its outgoing
messages are committed together or not at all, and nothing is sent before the commit (the relay
hands committed rows to the workers, see :mod:`app.notify.relay`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Insert, Table, insert, select
from sqlalchemy.orm import Session

from app.accounts.models import User
from app.db import after_commit, utcnow
from app.escalation.models import Notification
from app.notify.models import OutboxMessage
from app.settings import Settings, get_settings
from app.tenants.scope import TenantViolation, tenant_of

log = logging.getLogger("minpan.notify")

NOTICE_KEY_MAX = 100  # notifications.key; the outbox key adds ":{channel}"
SIGNATURE = "民盼通办"


@dataclass(frozen=True)
class Notice:
    """One notice to one person about something in one workspace.

    ``key`` is unique for ever: a notice with a key already notified is skipped, so a caller may
    safely notify again after a retry. ``link`` is a path in the portal (``/inbox/12``).
    """

    workspace_id: int
    user_id: int
    key: str
    subject: str
    text: str
    link: str


def notify_many(db: Session, notices: Sequence[Notice]) -> None:
    """Write the in-app notifications and the outbox messages of ``notices`` in ``db``'s transaction.

    One ``Notification`` per notice; one outbox row per external channel the recipient can receive:
    ``email`` (an e-mail address, unless MINPAN_NOTIFY_EMAIL is off), ``sms`` (a mobile number),
    ``webhook`` (when MINPAN_WEBHOOK_URL is set). Inactive accounts get only the in-app notice.
    Bulk inserts; one query for all the recipients. Does not commit.
    """
    unique: dict[str, Notice] = {}
    for notice in notices:
        if not notice.key or len(notice.key) > NOTICE_KEY_MAX:
            raise ValueError(f"notice key must be 1–{NOTICE_KEY_MAX} characters: {notice.key!r}")
        unique.setdefault(notice.key, notice)
    if not unique:
        return
    _check_tenant(db, unique.values())
    settings = get_settings()
    user_ids = sorted({n.user_id for n in unique.values()})
    people = {
        row.id: row
        for row in db.execute(
            select(User.id, User.username, User.email, User.mobile, User.is_active).where(
                User.id.in_(user_ids)
            )
        )
    }
    now = utcnow()
    notifications: list[dict[str, Any]] = []
    outbox: list[dict[str, Any]] = []
    for notice in unique.values():
        notifications.append(
            {
                "workspace_id": notice.workspace_id,
                "key": notice.key,
                "user_id": notice.user_id,
                "text": notice.text,
                "link": notice.link,
                "created_at": now,
                "read_at": None,
            }
        )
        person = people.get(notice.user_id)
        if person is None or not person.is_active:
            continue
        for channel, recipient in _channels(settings, person.email, person.mobile, person.username):
            outbox.append(
                {
                    "key": f"{notice.key}:{channel}",
                    "channel": channel,
                    "recipient": recipient,
                    "subject": notice.subject,
                    "body": _body(settings, channel, notice),
                    "created_at": now,
                    "next_attempt_at": now,
                    "relayed_at": None,
                    "locked_until": None,
                    "attempts": 0,
                    "sent_at": None,
                    "last_error": "",
                }
            )
    db.execute(_insert_ignoring_duplicates(db, cast(Table, Notification.__table__)), notifications)
    if outbox:
        db.execute(_insert_ignoring_duplicates(db, cast(Table, OutboxMessage.__table__)), outbox)


def _channels(settings: Settings, email: str, mobile: str, username: str) -> list[tuple[str, str]]:
    channels = []
    if settings.notify_email and email.strip():
        channels.append(("email", email.strip()))
    if mobile.strip():
        channels.append(("sms", mobile.strip()))
    if settings.webhook_url:
        channels.append(("webhook", username))
    return channels


def _body(settings: Settings, channel: str, notice: Notice) -> str:
    url = absolute_url(settings, notice.link)
    if channel == "email":
        lines = [notice.text, ""]
        if url:
            lines += [f"办理入口：{url}", ""]
        lines.append(f"—— {SIGNATURE}（系统自动发送，请勿直接回复）")
        return "\n".join(lines)
    return f"【{SIGNATURE}】{notice.text}" + (f" {url}" if url else "")


def absolute_url(settings: Settings, link: str) -> str:
    if link.startswith("/"):
        return settings.public_url.rstrip("/") + link
    return link


def _insert_ignoring_duplicates(db: Session, table: Table) -> Insert:
    """INSERT … ON CONFLICT DO NOTHING: a key already written (an earlier call for the same notice)
    is skipped rather than failing the caller's whole transaction."""
    dialect = db.get_bind().dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(table).on_conflict_do_nothing(index_elements=["key"])
    if dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        return sqlite_insert(table).on_conflict_do_nothing(index_elements=["key"])
    return insert(table)


def _check_tenant(db: Session, notices: Any) -> None:
    """Bulk inserts bypass the ORM's write guard (app.tenants.scope): check the workspaces here.
    Trusted code (a system context) may notify in any workspace; a request only in its own."""
    ctx = tenant_of(db)
    if ctx is not None and ctx.system:
        return
    for notice in notices:
        if ctx is None or ctx.workspace_id is None or notice.workspace_id != ctx.workspace_id:
            raise TenantViolation(
                f"notification of workspace {notice.workspace_id} written from "
                f"workspace {ctx.workspace_id if ctx else None}"
            )


def enqueue_work(db: Session, *, key: str, channel: str, recipient: str, subject: str = "") -> None:
    """Queue background work (a job, a document to render) through the outbox, in ``db``'s
    transaction: it runs if and only if the transaction commits, at most once per ``key``. After the
    commit it is handed to the workers at once, and the relay hands it out too if it is still
    unsent (the kick lost: another process's broker, the broker down)."""
    now = utcnow()
    table = cast(Table, OutboxMessage.__table__)
    outbox_id = db.execute(
        _insert_ignoring_duplicates(db, table).returning(table.c.id),
        {
            "key": key,
            "channel": channel,
            "recipient": recipient,
            "subject": subject[:200],
            "body": "",
            "created_at": now,
            # Due at once: if the kick below is lost (another process, the broker down), the relay
            # hands it out within seconds; if both arrive, the second delivery finds it done.
            "next_attempt_at": now,
            "attempts": 0,
            "last_error": "",
        },
    ).scalar()
    if outbox_id is not None:  # None: this work was queued before
        after_commit(db, lambda: _kick(outbox_id))


def _kick(outbox_id: int) -> None:
    from tasks.actors import deliver

    try:
        deliver.send(outbox_id)
    except Exception:  # the broker may be down: the relay hands it out after the lease
        log.exception("could not enqueue outbox row %s", outbox_id)


def enqueue_many(db: Session, items: Sequence[tuple[str, str, str]]) -> None:
    """Bulk ``enqueue_work`` of (key, channel, recipient), due at once: the relay hands them out."""
    if not items:
        return
    now = utcnow()
    table = cast(Table, OutboxMessage.__table__)
    db.execute(
        _insert_ignoring_duplicates(db, table),
        [
            {
                "key": key,
                "channel": channel,
                "recipient": recipient,
                "subject": "",
                "body": "",
                "created_at": now,
                "next_attempt_at": now,
                "attempts": 0,
                "last_error": "",
            }
            for key, channel, recipient in items
        ],
    )
