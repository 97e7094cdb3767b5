"""Issued documents: one row per document per content, with its PDF.

The PDF lives in the database (``pdf``, deferred: listing documents never loads it), as message
attachments do: every web process on every machine can serve it without shared storage, and it is
backed up, replicated and deleted with the case it belongs to. A document is a few dozen to a few
hundred kilobytes (a case file with signatures: well under a megabyte), far below the size where a
file store would pay. ``sha256`` is checked on every read (services.pdf_bytes).

The PDF is sealed at rest (AES-256-GCM, ``app/security/crypto.py``, migration 0027): the 承办单
and the 归档材料 print the citizen's name and phone in full. ``sha256`` and ``size`` are those of
the plain PDF, as issued, so the published reply verifies (/verify) exactly as before.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, utcnow
from app.security.crypto import EncryptedBytes
from app.tenants.models import WorkspaceOwned


class Document(WorkspaceOwned, Base):
    """An official document as issued: 承办单, 回复意见, 退办单, 延办申请, 三单一函, 归档 case file.

    ``content_hash`` (SHA-256 of the template version and the canonical JSON of the render inputs)
    is unique per workspace and kind: the same document is never rendered twice for the same content.
    """

    __tablename__ = "documents"
    __table_args__ = (UniqueConstraint("workspace_id", "kind", "content_hash", name="uq_documents_content"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(30))
    number: Mapped[str] = mapped_column(String(40), default="")  # the document's official number
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    assignment_id: Mapped[int | None] = mapped_column(ForeignKey("assignments.id", ondelete="CASCADE"))
    escalation_id: Mapped[int | None] = mapped_column(ForeignKey("escalations.id", ondelete="CASCADE"))
    content_hash: Mapped[str] = mapped_column(String(64))
    template_version: Mapped[str] = mapped_column(String(16))
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(Integer)
    pages: Mapped[int] = mapped_column(Integer)
    pdf: Mapped[bytes] = mapped_column(EncryptedBytes("documents.pdf"), deferred=True)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
