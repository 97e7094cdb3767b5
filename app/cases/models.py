"""Case (owned by the centre) and Assignment (owned by the unit), and the timeline of both.

What crosses between workspaces does so as a document, exactly as on paper: the 承办单 copies the
message data into the unit's assignment (第九条); the signed 回复意见 is copied back onto the case
(第十一条). Only the workflow engine performs those deliveries.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, utcnow
from app.security.crypto import EncryptedBytes, EncryptedText
from app.tenants.models import WorkspaceOwned


class Case(WorkspaceOwned, Base):
    """One citizen's message, from registration to archive. Owned by the centre's workspace."""

    __tablename__ = "cases"
    # Newest-first range scans for the similar-message pool (app/cases/similarity.py, migration 0004).
    __table_args__ = (
        Index("ix_cases_workspace_region_registered", "workspace_id", "region", "registered_at"),
        Index("ix_cases_workspace_topic_registered", "workspace_id", "topic", "registered_at"),
        Index("ix_cases_workspace_registered", "workspace_id", "registered_at"),
        Index("ix_cases_workspace_state_registered", "workspace_id", "state", "registered_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    state: Mapped[str] = mapped_column(String(20), default="received", index=True)
    version: Mapped[int] = mapped_column(Integer, default=1)
    # The message (第三条, 第九条).
    board: Mapped[str] = mapped_column(String(20))
    source_id: Mapped[str] = mapped_column(String(64), unique=True)
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    posted_at: Mapped[datetime]
    category: Mapped[str] = mapped_column(String(20))
    topic: Mapped[str] = mapped_column(String(60), default="")
    region: Mapped[str] = mapped_column(String(60), default="")
    # Personal data: staff only, never public (第七条, 第十八条); sealed at rest (AES-256-GCM,
    # app/security/crypto.py, migration 0023), masked for roles that do not need it (app/security/contact.py).
    citizen_name: Mapped[str] = mapped_column(EncryptedText("citizen_name"), default="")
    citizen_phone: Mapped[str] = mapped_column(EncryptedText("citizen_phone"), default="")
    citizen_email: Mapped[str] = mapped_column(EncryptedText("citizen_email"), default="")
    registered_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    registered_at: Mapped[datetime] = mapped_column(default=utcnow)
    duplicate_of_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id", ondelete="SET NULL"))
    # Decline (第五条).
    decline_reason: Mapped[str] = mapped_column(String(30), default="")
    decline_explanation: Mapped[str] = mapped_column(Text, default="")
    decline_suggestion: Mapped[str] = mapped_column(Text, default="")
    # Dispatch (第十条).
    sheet_number: Mapped[str | None] = mapped_column(String(40), unique=True)
    dispatched_at: Mapped[datetime | None]
    due_date: Mapped[date | None]
    instructions: Mapped[str] = mapped_column(Text, default="")
    # The reply as delivered by the lead unit and published (第十一条, 第十二条).
    reply_text: Mapped[str] = mapped_column(Text, default="")
    reply_private: Mapped[bool] = mapped_column(default=False)
    reply_is_explanation: Mapped[bool] = mapped_column(default=False)  # 第十八条, with the centre's consent
    reply_unit_id: Mapped[int | None] = mapped_column(ForeignKey("workspaces.id", ondelete="SET NULL"))
    reply_handler_name: Mapped[str] = mapped_column(String(64), default="")
    reply_handler_phone: Mapped[str] = mapped_column(String(40), default="")
    reply_signed_by: Mapped[str] = mapped_column(String(64), default="")
    reply_signature: Mapped[str] = mapped_column(Text, default="")
    reply_submitted_at: Mapped[datetime | None]
    quality_flag: Mapped[str] = mapped_column(String(30), default="")
    published_at: Mapped[datetime | None]
    # The publication day (第十二条) already reported to the centre as missed, so it is reported once.
    publication_flagged_for: Mapped[date | None]
    archived_at: Mapped[datetime | None]

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012  (the second, database-level version check)


class Assignment(WorkspaceOwned, Base):
    """A unit's copy of the 承办单 and its work on it. Owned by the unit's workspace."""

    __tablename__ = "assignments"
    __table_args__ = (
        UniqueConstraint("case_id", "workspace_id", "round", name="uq_assignments_case_unit"),
        Index("ix_assignments_workspace_state_due", "workspace_id", "state", "due_date"),
        Index("ix_assignments_workspace_due", "workspace_id", "due_date", "id"),
        # The parent key of the escalations' one foreign key (their unit and case are the
        # assignment's: migration 0029).
        Index("uq_assignments_id_case_workspace", "id", "case_id", "workspace_id", unique=True),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    round: Mapped[int] = mapped_column(Integer, default=1)  # re-dispatch after a return starts a new round
    is_lead: Mapped[bool] = mapped_column(default=True)  # 牵头 (else 协办), 第十条
    state: Mapped[str] = mapped_column(String(24), default="pending", index=True)
    version: Mapped[int] = mapped_column(Integer, default=1)
    # The assignment sheet's data (承办单, 附件2).
    sheet_number: Mapped[str] = mapped_column(String(40))
    lead_unit_name: Mapped[str] = mapped_column(String(200), default="")
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    category: Mapped[str] = mapped_column(String(20))
    posted_at: Mapped[datetime]
    citizen_name: Mapped[str] = mapped_column(EncryptedText("citizen_name"), default="")  # sealed
    citizen_phone: Mapped[str] = mapped_column(EncryptedText("citizen_phone"), default="")
    citizen_email: Mapped[str] = mapped_column(EncryptedText("citizen_email"), default="")
    instructions: Mapped[str] = mapped_column(Text, default="")
    dispatched_at: Mapped[datetime] = mapped_column(default=utcnow)
    due_date: Mapped[date]
    # The due date a 督办单 was issued for (第十九条): the sweep leaves such an assignment alone until
    # its due date moves (an extension). Index ix_assignments_ladder (migration 0034) reads it.
    supervised_for: Mapped[date | None]
    received_at: Mapped[datetime | None]
    handler_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    section_id: Mapped[int | None] = mapped_column(ForeignKey("sections.id", ondelete="SET NULL"))
    # The draft reply and its sign-off (第十一条). Editing bumps draft_version; a signature is
    # valid only for the draft_version it signed.
    reply_text: Mapped[str] = mapped_column(Text, default="")
    reply_private: Mapped[bool] = mapped_column(default=False)
    draft_version: Mapped[int] = mapped_column(Integer, default=0)
    signed_version: Mapped[int | None]
    signature: Mapped[str] = mapped_column(Text, default="")  # PNG data URL drawn on the pad
    signed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    signed_at: Mapped[datetime | None]
    # Return (第十五条) and extension (第十四条).
    return_reason: Mapped[str] = mapped_column(Text, default="")
    return_signature: Mapped[str] = mapped_column(Text, default="")
    extension_days: Mapped[int | None]
    extension_reason: Mapped[str] = mapped_column(Text, default="")
    # What the centre said when it sent the reply back (第十九条).
    centre_comment: Mapped[str] = mapped_column(Text, default="")
    quality_flag: Mapped[str] = mapped_column(String(30), default="")
    # A co-unit's input to the lead unit (第十条).
    contribution: Mapped[str] = mapped_column(Text, default="")
    # 第十八条: a matter that cannot be resolved may, with the centre's consent, be answered with an
    # explanation (解释说明) instead of a resolution.
    explanation_reason: Mapped[str] = mapped_column(Text, default="")
    explanation_consented: Mapped[bool] = mapped_column(default=False)

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012


class TimelineEntry(WorkspaceOwned, Base):
    """One step of a case or assignment: who, when, where, what, with comment and signature."""

    __tablename__ = "timeline_entries"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    assignment_id: Mapped[int | None] = mapped_column(ForeignKey("assignments.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(default=utcnow)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    actor_name: Mapped[str] = mapped_column(String(64), default="")
    workspace_name: Mapped[str] = mapped_column(String(100), default="")
    action: Mapped[str] = mapped_column(String(40))
    from_state: Mapped[str] = mapped_column(String(24), default="")
    to_state: Mapped[str] = mapped_column(String(24), default="")
    comment: Mapped[str] = mapped_column(Text, default="")
    signature: Mapped[str] = mapped_column(Text, default="")


class Counter(Base):
    """Yearly document numbers (通留〔2026〕123号): one row per series and year."""

    __tablename__ = "counters"

    series: Mapped[str] = mapped_column(String(30), primary_key=True)
    year: Mapped[int] = mapped_column(Integer, primary_key=True)
    value: Mapped[int] = mapped_column(Integer, default=0)


class Instruction(WorkspaceOwned, Base):
    """领导批示: a city leader's written instruction on a case (第十六条 archives them with the case).

    Kept with the case in the centre's workspace; shown to the centre, to the units working on the
    case (in their inbox) and in the archive.
    """

    __tablename__ = "instructions"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    author_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    author_name: Mapped[str] = mapped_column(String(64))
    text: Mapped[str] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(default=utcnow)


class Attachment(WorkspaceOwned, Base):
    """A file that came with a citizen's message (第九条: 登记): kept with the case in the centre's
    workspace, in the database so that every web process serves it; sealed at rest (photos and
    scans, often of an ID card: AES-256-GCM, app/security/crypto.py, migration 0027). ``size``
    and ``sha256`` are those of the file as uploaded."""

    __tablename__ = "attachments"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    filename: Mapped[str] = mapped_column(String(200))
    content_type: Mapped[str] = mapped_column(String(100))
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    data: Mapped[bytes] = mapped_column(EncryptedBytes("attachments.data"), deferred=True)
    uploaded_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    uploaded_at: Mapped[datetime] = mapped_column(default=utcnow)
