"""Audit events, written from day one for sign-in, sign-out, failures and role changes."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, BigInteger, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, utcnow
from app.tenants.models import WorkspaceOwned


class AuditEvent(WorkspaceOwned, Base):
    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), index=True)
    # The workspace the action happened in; NULL for events outside any workspace (a failed sign-in).
    workspace_id: Mapped[int | None] = mapped_column(  # type: ignore[assignment]
        ForeignKey("workspaces.id", ondelete="SET NULL"), index=True
    )
    action: Mapped[str] = mapped_column(String(60), index=True)
    target: Mapped[str] = mapped_column(String(120), default="")
    detail: Mapped[dict[str, object]] = mapped_column(JSON, default=dict)
    ip: Mapped[str] = mapped_column(String(64), default="")
    # The hash chain (app/audit/chain.py): position in the chain, the previous entry's hash and
    # this entry's own, assigned just before COMMIT under the row lock on ``audit_chain`` (NULL
    # until then; an entry committed with NULL was written outside the chain).
    seq: Mapped[int | None] = mapped_column(BigInteger, unique=True, default=None)
    prev_hash: Mapped[str | None] = mapped_column(String(64), default=None)
    hash: Mapped[str | None] = mapped_column(String(64), default=None)


class AuditChain(Base):
    """The head of the audit hash chain (one global row, id 1) and the anchor left by a purge.

    Every transaction that writes audit entries locks this row (UPDATE first), so entries are
    chained one transaction after another, in the order of ``seq``.
    """

    __tablename__ = "audit_chain"

    id: Mapped[int] = mapped_column(primary_key=True)
    last_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    last_hash: Mapped[str] = mapped_column(String(64))
    # Entries up to ``anchor_seq`` were purged (retention); ``anchor_hash`` is the hash of entry
    # ``anchor_seq``, the ``prev_hash`` of the first entry kept.
    anchor_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    anchor_hash: Mapped[str] = mapped_column(String(64))


from app.audit import chain as _chain  # noqa: E402,F401  (registers the flush listener)
