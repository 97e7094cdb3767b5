"""The outbox: one row per message to send on an external channel (e-mail, SMS, webhook).

Written in the same transaction as the change it reports, so a notice exists if and only if its
messages do. A system table (not workspace-owned): only the relay and the deliver actor read it.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, utcnow

CHANNELS = ("email", "sms", "webhook")


class OutboxMessage(Base):
    """One message for one recipient on one channel.

    * ``key`` — ``{notice key}:{channel}``, unique: a notice yields each message once.
    * ``next_attempt_at`` — the relay hands the row out when this has passed; it is pushed a lease
      ahead on each hand-out and further back after each failure (back-off).
    * ``relayed_at`` — when the relay last handed it to the broker.
    * ``locked_until`` — SQLite only: a delivery in progress (PostgreSQL holds a row lock instead).
    * ``sent_at`` — set in the same transaction that confirms the send; never sent again after.
    """

    __tablename__ = "outbox"
    __table_args__ = (
        # The relay's lookup: only unsent rows are indexed, so the index stays small however many
        # sent rows accumulate.
        Index(
            "ix_outbox_due",
            "next_attempt_at",
            postgresql_where=text("sent_at IS NULL"),
            sqlite_where=text("sent_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(160), unique=True)
    channel: Mapped[str] = mapped_column(String(20))  # email | sms | webhook
    recipient: Mapped[str] = mapped_column(String(200))  # address, mobile number, or user name (webhook)
    subject: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    relayed_at: Mapped[datetime | None] = mapped_column(default=None)
    locked_until: Mapped[datetime | None] = mapped_column(default=None)
    attempts: Mapped[int] = mapped_column(default=0)
    sent_at: Mapped[datetime | None] = mapped_column(default=None)
    last_error: Mapped[str] = mapped_column(Text, default="")
