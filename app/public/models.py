"""The public index (one row per message the public may see, masked text only) and the
satisfaction follow-up (满意率回访, 第十八条): ratings and the personal links that ask for them.

The public index is not workspace-owned: every value in it is already public (第十二条) and
masked (第十八条). It is written only by :mod:`app.public.search` (from the centre's publish /
decline step, ``minpan demo`` and migration 0015) and read only by :mod:`app.public.queries`,
which also re-checks the case's state on every read, so a row that outlived its publication
shows nothing.

The full-text index over ``terms`` lives beside it: an FTS5 table ``public_search`` kept in step
by triggers on SQLite, a GIN index on ``to_tsvector('simple', terms)`` on PostgreSQL (migration
0015).

Ratings and their links are workspace-owned (the centre's, like the case) with forced row-level
security on PostgreSQL (migration 0017); see :mod:`app.public.satisfaction`.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, utcnow
from app.tenants.models import WorkspaceOwned


class PublicEntry(Base):
    __tablename__ = "public_entries"
    __table_args__ = (
        Index("ix_public_entries_kind_published", "kind", "published_at"),
        Index("ix_public_entries_kind_unit_published", "kind", "unit_id", "published_at"),
        Index("ix_public_entries_kind_category_published", "kind", "category", "published_at"),
        # Migration 0020: newest first across both kinds, and the filters' choices by loose index scan.
        Index("ix_public_entries_published", "published_at", "case_id"),
        Index("ix_public_entries_kind_topic", "kind", "topic"),
        Index("ix_public_entries_kind_region", "kind", "region"),
    )

    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(10))  # "reply" | "declined"
    # The publication (reply) or the decision (declined): the order of every public list.
    published_at: Mapped[datetime]
    posted_at: Mapped[datetime]
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("workspaces.id", ondelete="SET NULL"))
    category: Mapped[str] = mapped_column(String(20))
    topic: Mapped[str] = mapped_column(String(60), default="")
    region: Mapped[str] = mapped_column(String(60), default="")
    # Masked text (app.public.masking): the title, the message and the public answer (empty for a
    # reply given privately, 第十八条), and the same as space-separated search tokens.
    title: Mapped[str] = mapped_column(Text)
    body: Mapped[str] = mapped_column(Text)
    answer: Mapped[str] = mapped_column(Text, default="")
    terms: Mapped[str] = mapped_column(Text)
    indexed_at: Mapped[datetime] = mapped_column(default=utcnow)


class PublicPage(Base):
    """页面静态化: a published reply page as rendered for the default display, with its ETag.

    Written only by :mod:`app.public.pages`. Triggers (migration 0020) clear ``body`` and bump
    ``generation`` in the transaction that changes the case, its answering unit or its documents;
    a page is filled only if the generation is still the one read before rendering, so a stored
    page never shows anything but what a fresh render would.
    """

    __tablename__ = "public_pages"

    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), primary_key=True)
    unit_id: Mapped[int | None] = mapped_column(index=True)
    generation: Mapped[int] = mapped_column(default=0)
    render_version: Mapped[str] = mapped_column(String(16), default="")
    etag: Mapped[str] = mapped_column(String(80), default="")
    last_modified: Mapped[datetime | None]
    body: Mapped[bytes | None] = mapped_column(LargeBinary)
    rendered_at: Mapped[datetime | None]


class Rating(WorkspaceOwned, Base):
    """满意率回访 (第十八条): the citizen's verdict on the reply to their message, once per case.

    Kept with the case in the centre's workspace. Taken through a personal link (``source`` "link")
    or by the centre on the telephone ("phone", with who recorded it). The comment is the
    citizen's own words and never public; only counts reach the open statistics.
    """

    __tablename__ = "ratings"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), unique=True)
    score: Mapped[str] = mapped_column(String(12))  # satisfied | basic | unsatisfied
    comment: Mapped[str] = mapped_column(Text, default="")
    source: Mapped[str] = mapped_column(String(8))  # link | phone
    recorded_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class RatingInvite(WorkspaceOwned, Base):
    """回访链接: the personal link the centre sends the citizen, one per case.

    Only the SHA-256 of the random token is stored (like sessions and API tokens): the link is
    shown once, to the clerk who made it. A new link replaces the old one.
    """

    __tablename__ = "rating_invites"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), unique=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]
