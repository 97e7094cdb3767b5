"""页面静态化: published reply pages stored as bytes with their ETag, served without rendering.

A reply page is rendered once for the default display (no 适老化 switch on, no query string) and
kept in ``public_pages`` (migration 0020) with the ETag and Last-Modified a fresh render would
give. Keeping it right is the database's job, not the callers':

* triggers clear ``body`` and bump ``generation`` in the very transaction that changes what the
  page shows — the case (any update of a case that is or was published: state, text, version),
  the answering unit's name, short name or phone, or a document of the case (the sealed PDF);
* a page is written only by :func:`fill` with the generation read *before* the case was read
  (``UPDATE … WHERE generation = :seen``): if anything changed the case in between, the row's
  generation moved (or is locked by the uncommitted change, and moves when it commits) and the
  write does nothing. Rows are never deleted while the case exists, so a generation cannot come
  back to an older value;
* the publish step renders the page in its own transaction (:func:`render_in`), after the case
  is written: it commits with the publication or not at all. A later change in that transaction
  clears it again.

So a page that is stored is one that is public and current; anything else (a case withdrawn,
declined, unpublished, or a page not rendered yet) goes to the ordinary route, which checks the
case and renders, and then fills the row for the next visitor.

Public API: :func:`lookup`, :func:`fill`, :func:`render_in`, :func:`render_reply`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from sqlalchemy import bindparam, select, text, update
from sqlalchemy.orm import Session

from app.db import get_engine, session_factory, utcnow
from app.public.models import PublicPage

if TYPE_CHECKING:
    from app.public.queries import Reply

ROOT = Path(__file__).resolve().parent.parent.parent
# Reply pages are revalidated on every visit: cheap with the ETag (304), and never stale.
PAGE_CACHE: Final = "public, no-cache"
_SOURCES: Final = (
    "templates/public/base.html",
    "templates/public/reply.html",
    "templates/public/_macros.html",
    "app/public/masking.py",
    "app/public/render.py",
)
_PAGES = PublicPage.__table__.c
_LOOKUP: Final = select(
    _PAGES.generation, _PAGES.render_version, _PAGES.etag, _PAGES.last_modified, _PAGES.body
).where(_PAGES.case_id == bindparam("id"))


@dataclass(frozen=True, slots=True)
class Stored:
    generation: int
    etag: str
    modified: datetime | None
    last_modified: str  # as the HTTP header says it
    body: bytes | None  # None: not rendered, or cleared since


@cache
def render_version() -> str:
    """The stored pages' version: the reply page's templates and the masking rules, as deployed.
    A page stored by other code is ignored (and rendered again)."""
    from app.public.queries import RENDER_VERSION

    digest = hashlib.sha256(RENDER_VERSION.encode())
    for name in _SOURCES:
        digest.update((ROOT / name).read_bytes())
    return digest.hexdigest()[:16]


def lookup(case_id: int) -> Stored | None:
    """The stored row of a reply page (one primary-key read, no tenant context needed: the table
    holds only what is public). ``body`` is None unless it is current for this code's templates."""
    with get_engine().connect() as conn:
        row = conn.execute(_LOOKUP, {"id": case_id}).first()
        conn.rollback()
    if row is None:
        return None
    generation, version, etag, modified, body = row
    if body is None or version != render_version() or modified is None:
        return Stored(generation, "", None, "", None)
    if modified.tzinfo is None:  # SQLite
        modified = modified.replace(tzinfo=UTC)
    return Stored(generation, etag, modified, http_date(modified), bytes(body))


def render_reply(found: Reply) -> bytes:
    """The reply page for the default display, exactly as the route renders it without a cookie."""
    from app.public.render import render_public

    html = render_public(
        "public/reply.html",
        url_path=f"/replies/{found.case_id}",
        url_query="",
        modes=frozenset(),
        reply=found,
        pdf_digest=found.pdf_digest,
    )
    return html.encode()


def _store(db: Session, found: Reply, body: bytes, seen: int | None) -> bool:
    stmt = update(PublicPage).where(PublicPage.case_id == found.case_id)
    if seen is not None:
        stmt = stmt.where(PublicPage.generation == seen)
    result: Any = db.execute(
        stmt.values(
            render_version=render_version(),
            etag=found.etag,
            last_modified=found.last_modified,
            body=body,
            rendered_at=utcnow(),
        ).execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)


def fill(found: Reply, body: bytes, seen: int) -> bool:
    """Store a page rendered from a read that started after ``seen`` was read; True if stored.

    Does nothing if the row's generation is no longer ``seen`` (the case, its unit or its
    documents changed since), or waits for an uncommitted change to commit and then does nothing.
    """
    with session_factory()() as db:
        stored = _store(db, found, body, seen)
        db.commit()
    return stored


def render_in(db: Session, case_id: int) -> bool:
    """In the publish step's transaction: render the case's page and store it (True), or leave
    its row cleared if the case is not a public reply. The caller has flushed the case."""
    from app.public.queries import reply

    found = reply(case_id, db)
    if found is None:
        return False
    db.execute(
        text(
            # With the answering unit: a change of its name or phone clears the page (0020).
            "INSERT INTO public_pages (case_id, unit_id, generation, etag, render_version) "
            "SELECT id, reply_unit_id, 1, '', '' FROM cases WHERE id = :id "
            "ON CONFLICT (case_id) DO UPDATE SET unit_id = EXCLUDED.unit_id"
        ),
        {"id": case_id},
    )
    return _store(db, found, render_reply(found), None)


def http_date(value: datetime) -> str:
    return format_datetime(value.astimezone(UTC), usegmt=True)


def stored_headers(stored: Stored) -> dict[str, str]:
    """The headers of a stored page's answer (200 or 304), besides its content type and length."""
    return {
        "ETag": stored.etag,
        "Last-Modified": stored.last_modified,
        "Cache-Control": PAGE_CACHE,
        "Vary": "Cookie",
    }


def not_modified(
    if_none_match: str | None, if_modified_since: str | None, etag: str, last_modified: datetime
) -> bool:
    """RFC 9110: If-None-Match wins; If-Modified-Since only when it is absent."""
    if if_none_match is not None:
        wanted = {t.strip().removeprefix("W/") for t in if_none_match.split(",")}
        return "*" in wanted or etag in wanted
    if if_modified_since:
        try:
            return last_modified.replace(microsecond=0) <= parsedate_to_datetime(if_modified_since)
        except (TypeError, ValueError):
            return False
    return False


__all__ = [
    "PAGE_CACHE",
    "Stored",
    "fill",
    "http_date",
    "lookup",
    "not_modified",
    "render_in",
    "render_reply",
    "stored_headers",
]
