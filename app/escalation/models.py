"""Escalation notices and notifications."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Date, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, utcnow
from app.tenants.models import WorkspaceOwned


class Escalation(WorkspaceOwned, Base):
    """One rung of 三单一函 issued to a unit on an assignment: 提醒单, 催办单, 督办单.

    ``key`` makes each rung of each deadline happen exactly once, however often the sweep runs.
    """

    __tablename__ = "escalations"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(80), unique=True)
    assignment_id: Mapped[int] = mapped_column(ForeignKey("assignments.id", ondelete="CASCADE"), index=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    rung: Mapped[str] = mapped_column(String(20))  # reminder | urge | supervise
    number: Mapped[str] = mapped_column(String(40))
    due_date: Mapped[date] = mapped_column(Date)
    issued_on: Mapped[date] = mapped_column(Date)
    issued_at: Mapped[datetime] = mapped_column(default=utcnow)


class Notification(WorkspaceOwned, Base):
    """A message in a person's notification centre, in the workspace it concerns."""

    __tablename__ = "notifications"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(100), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    text: Mapped[str] = mapped_column(Text)
    link: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    read_at: Mapped[datetime | None] = mapped_column(default=None)
