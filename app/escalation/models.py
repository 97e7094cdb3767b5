"""Escalation notices and notifications."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Date, ForeignKey, ForeignKeyConstraint, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, utcnow
from app.tenants.models import WorkspaceOwned


class EscalationPolicy(Base):
    """The centre's thresholds for the 三单一函 ladder (第十三条, 第十九条); one row, id 1.

    The sweep locks this row for its whole transaction, so two sweeps never run at the same time
    (a row lock on PostgreSQL, the write lock on SQLite).
    """

    __tablename__ = "escalation_policy"

    id: Mapped[int] = mapped_column(primary_key=True)
    # 提醒: this many working days before the due date (第十三条: the day before).
    reminder_days_before: Mapped[int] = mapped_column(Integer, default=1)
    # 催办: on the n-th overdue working day, then again every ``urge_repeat_days`` while nothing
    # comes (0 = once per deadline).
    urge_after_days: Mapped[int] = mapped_column(Integer, default=1)
    urge_repeat_days: Mapped[int] = mapped_column(Integer, default=2)
    # 督办: after this many overdue working days, or after this many 催办 without result.
    supervise_after_days: Mapped[int] = mapped_column(Integer, default=3)
    supervise_after_urges: Mapped[int] = mapped_column(Integer, default=2)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    last_sweep_at: Mapped[datetime | None]


class Escalation(WorkspaceOwned, Base):
    """One rung of 三单一函 issued to a unit on an assignment: 提醒单, 催办单, 督办单, 移交函.

    The unique ``(assignment_id, rung, due_date, ordinal)`` makes each rung of each deadline
    happen exactly once, however often the sweep runs and whoever issues it (a repeated 催办 has
    its ordinal; 督办 and 移交 are ordinal 1). ``key`` is the same four values as text
    (``12:urge:2026-12-04:2``); it is still written, for the previous release's code, but read
    by nothing any more (migration 0029).

    The assignment, its case and its unit are ONE foreign key to the assignment's
    ``(id, case_id, workspace_id)``: a rung can only belong to the unit and the case of its
    assignment (the workspace isolation of row-level security rests on ``workspace_id``), and a
    rung costs one key check instead of three.
    """

    __tablename__ = "escalations"
    __table_args__ = (
        ForeignKeyConstraint(
            ["assignment_id", "case_id", "workspace_id"],
            ["assignments.id", "assignments.case_id", "assignments.workspace_id"],
            name="fk_escalations_assignment_id_assignments",
            ondelete="CASCADE",
        ),
        Index(
            "uq_escalations_assignment_rung_due_ordinal",
            "assignment_id",
            "rung",
            "due_date",
            "ordinal",
            unique=True,
        ),
        # The rungs whose timeline entry, notices and document are still to be written (fan_out).
        Index(
            "ix_escalations_fan_out",
            "workspace_id",
            "id",
            postgresql_where=text("fanned_out_at IS NULL"),
            sqlite_where=text("fanned_out_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(80), unique=True)
    # No foreign keys of their own: the composite one above (the assignment's unit and case). No
    # index on the unit alone: every query reads rungs by assignment, case, rung and day, or the
    # unit's pending ones (ix_escalations_fan_out); a unit deleted goes through its assignments.
    workspace_id: Mapped[int] = mapped_column(Integer)
    assignment_id: Mapped[int] = mapped_column(Integer)
    case_id: Mapped[int] = mapped_column(Integer, index=True)
    rung: Mapped[str] = mapped_column(String(20))  # reminder | urge | supervise | transfer
    ordinal: Mapped[int] = mapped_column(Integer, default=1)  # the n-th 催办 of this deadline
    number: Mapped[str] = mapped_column(String(40))
    due_date: Mapped[date] = mapped_column(Date)
    issued_on: Mapped[date] = mapped_column(Date)
    issued_at: Mapped[datetime] = mapped_column(default=utcnow)
    # When fan_out wrote its timeline entry, notices, audit event and document (NULL: pending).
    fanned_out_at: Mapped[datetime | None] = mapped_column(default=None)
    # 移交函 (第二十条): the supervisor's decision, its written reason and the addressee.
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    reason: Mapped[str] = mapped_column(Text, default="")
    addressee: Mapped[str] = mapped_column(String(120), default="")


class EscalationBatch(WorkspaceOwned, Base):
    """The rungs one sweep decided for one unit, numbered, not yet written as escalation rows.

    The sweep decides every unit's rungs under its lock and records them here, one row per unit
    (``rungs``: JSON ``[[assignment_id, case_id, "YYYY-MM-DD", rung, ordinal, n], …]``, in the
    order of their numbers); the unit's fan-out writes them as ``escalations`` rows and deletes
    the batch in one transaction. Whoever decides from the rows first writes the unit's pending
    batches (``services.expand``): the next sweep, 督查室's 督办单 by hand, the fan-out itself,
    so a rung is decided once and written once.
    """

    __tablename__ = "escalation_batches"

    id: Mapped[int] = mapped_column(primary_key=True)
    issued_on: Mapped[date] = mapped_column(Date)
    issued_at: Mapped[datetime] = mapped_column(default=utcnow)
    rungs: Mapped[str] = mapped_column(Text)


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
