"""/admin/outbox: the messages and background work that could not be delivered, for the system
admin — what failed and why, sent again or stopped by hand (every action audited)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, cast

from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath
from sqlalchemy import Table, func, or_, select
from sqlalchemy.orm import Session

from app.accounts.identity import CurrentUser
from app.db import utcnow
from app.errors import NotFound
from app.notify.models import OutboxMessage
from app.permissions import Permission, requires
from app.settings import get_settings
from app.web import flash
from app.web.render import page

CHANNEL_NAMES = {
    "email": "电子邮件",
    "sms": "短信",
    "webhook": "接口推送",
    "job": "后台任务",
    "document": "文书生成",
    "fanout": "催督办分发",
}
LIST_LIMIT = 200


def masked_recipient(channel: str, recipient: str) -> str:
    """Who a message goes to, without exposing the address: z***@example.cn, 138****5678."""
    if channel == "email" and "@" in recipient:
        name, _, domain = recipient.partition("@")
        return f"{name[:1]}***@{domain}"
    if channel == "sms" and len(recipient) >= 7:
        return f"{recipient[:3]}****{recipient[-4:]}"
    return recipient


def masked_error(row: OutboxMessage) -> str:
    """The last error, with the recipient's address masked wherever the error repeats it."""
    if not row.recipient or row.channel not in ("email", "sms"):
        return row.last_error
    return row.last_error.replace(row.recipient, masked_recipient(row.channel, row.recipient))


def summary(db: Session) -> dict[str, int]:
    limit = get_settings().outbox_max_attempts
    unsent = OutboxMessage.sent_at.is_(None)
    failed = OutboxMessage.last_error != ""

    def count(*where: Any) -> int:
        return db.scalar(select(func.count()).select_from(OutboxMessage).where(*where)) or 0

    return {
        "waiting": count(unsent, OutboxMessage.last_error == "", OutboxMessage.attempts < limit),
        "failing": count(unsent, failed, OutboxMessage.attempts < limit),
        "stopped": count(unsent, OutboxMessage.attempts >= limit),
        "sent_today": count(OutboxMessage.sent_at >= utcnow() - timedelta(days=1)),
    }


def troubled(db: Session, state: str) -> list[OutboxMessage]:
    limit = get_settings().outbox_max_attempts
    # Failed at least once (a row being sent right now has attempts > 0 but no error yet), or
    # stopped by hand.
    where = [
        OutboxMessage.sent_at.is_(None),
        or_(OutboxMessage.last_error != "", OutboxMessage.attempts >= limit),
    ]
    if state == "stopped":
        where.append(OutboxMessage.attempts >= limit)
    elif state == "failing":
        where.append(OutboxMessage.attempts < limit)
    return list(
        db.scalars(select(OutboxMessage).where(*where).order_by(OutboxMessage.id.desc()).limit(LIST_LIMIT))
    )


def _unsent(db: Session, outbox_id: int) -> OutboxMessage:
    row = db.get(OutboxMessage, outbox_id, with_for_update=True)
    if row is None or row.sent_at is not None:
        raise NotFound("没有这条待投递的消息（可能已经发出）。")
    return row


class OutboxController(Controller):
    path = "/admin/outbox"

    @get("", opt=requires(Permission.OUTBOX_MANAGE), sync_to_thread=True)
    def show(self, request: Request[Any, Any, Any], db: NamedDependency[Session]) -> Response[Any]:
        state = request.query_params.get("state", "")
        state = state if state in ("failing", "stopped") else ""
        return page(
            request,
            "admin/outbox.html",
            counts=summary(db),
            rows=troubled(db, state),
            state=state,
            limit=get_settings().outbox_max_attempts,
            keep_days=get_settings().outbox_keep_days,
            channels=CHANNEL_NAMES,
            masked=masked_recipient,
            error_of=masked_error,
        )

    @post("/{outbox_id:int}/retry", opt=requires(Permission.OUTBOX_MANAGE), sync_to_thread=True)
    def retry(
        self, outbox_id: FromPath[int], db: NamedDependency[Session], me: NamedDependency[CurrentUser]
    ) -> Response[Any]:
        row = _unsent(db, outbox_id)
        before = row.attempts
        table = cast(Table, OutboxMessage.__table__)
        db.execute(
            table.update()
            .where(table.c.id == row.id)
            .values(attempts=0, next_attempt_at=utcnow(), locked_until=None)
        )
        _audit(db, me, "outbox.retry", row, attempts=before)
        return flash.add(
            Response("", status_code=303, headers={"Location": "/admin/outbox"}),
            "已重新安排投递，几秒钟内将再次发送。",
        )

    @post("/{outbox_id:int}/stop", opt=requires(Permission.OUTBOX_MANAGE), sync_to_thread=True)
    def stop(
        self, outbox_id: FromPath[int], db: NamedDependency[Session], me: NamedDependency[CurrentUser]
    ) -> Response[Any]:
        row = _unsent(db, outbox_id)
        row.attempts = max(row.attempts, get_settings().outbox_max_attempts)
        _audit(db, me, "outbox.stop", row, attempts=row.attempts)
        return flash.add(
            Response("", status_code=303, headers={"Location": "/admin/outbox?state=stopped"}),
            "已停止重试，该消息保留在列表中，可随时重新投递。",
        )


def _audit(db: Session, me: CurrentUser, action: str, row: OutboxMessage, **detail: Any) -> None:
    from app.audit.services import record

    record(
        db,
        action,
        actor_id=me.user_id,
        workspace_id=me.workspace_id,
        target=f"outbox:{row.id}",
        channel=row.channel,
        key=row.key,
        **detail,
    )
