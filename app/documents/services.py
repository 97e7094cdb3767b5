"""Issuing documents: render once per content, keep the PDF, hand it back verified.

``issue`` is the one write. The content hash is the SHA-256 of the template version (every file
of ``templates/documents/``, the seal drawing, the renderer) and the canonical JSON of the render
inputs (sources.py). If the workspace already holds a document of that kind with that hash, it is
the answer and nothing is rendered: the same document is not rendered twice for the same content.
A changed reply, a new 批示 or a new layout is new content and gives a new document; the old one
stays as it was issued.
"""

from __future__ import annotations

import hashlib
from typing import Any, Final

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, undefer

from app.documents import render
from app.documents.models import Document
from app.documents.sources import KINDS, Source, build
from app.errors import Forbidden, InvalidInput
from app.tenants.models import Workspace

# Documents published to the public carry the issuing unit's digital signature (PAdES).
SIGNED_KINDS = frozenset({"reply_letter"})


class DocumentCorrupted(RuntimeError):
    """A stored PDF no longer matches the SHA-256 recorded when it was issued. Always a fault of
    storage, never of the user: logged and answered as 500."""


def content_hash(source: Source) -> str:
    version = render.template_version(source.template)
    return hashlib.sha256(f"{version}\n{source.canonical_json()}".encode()).hexdigest()


def find(db: Session, source: Source) -> Document | None:
    """The document already issued for exactly this content, if any (in the session's workspace)."""
    return _existing(db, source.workspace_id, source.kind, content_hash(source))


def _existing(db: Session, workspace_id: int, kind: str, digest: str) -> Document | None:
    return db.scalar(
        select(Document).where(
            Document.workspace_id == workspace_id, Document.kind == kind, Document.content_hash == digest
        )
    )


def issue(db: Session, kind: str, source: Source, *, actor_id: int | None = None) -> Document:
    """The document ``kind`` of ``source``: the one already issued for this content, else rendered now.

    Written in the caller's transaction, in the source's workspace (the session must be in it, or
    trusted). Two processes issuing the same content at once both render; the unique content hash
    keeps one row and the other returns it.
    """
    if kind not in KINDS or source.kind != kind:
        raise InvalidInput(f"文件类型不符：{kind}")
    digest = content_hash(source)
    existing = _existing(db, source.workspace_id, kind, digest)
    if existing is not None:
        return existing
    unit = db.get(Workspace, source.workspace_id) if kind in SIGNED_KINDS else None
    pdf, pages = render_source(source, unit.name if unit else "")
    return store(db, source, pdf, pages, actor_id=actor_id)


def render_source(source: Source, unit_name: str = "") -> tuple[bytes, int]:
    """The PDF of ``source`` and its page count — no database: workers render outside any
    transaction (SQLite has one writer; a render holds nothing)."""
    rendered = render.render_document(source.template, doc=source)
    pdf = rendered.pdf
    if source.kind in SIGNED_KINDS:  # the issuing unit's digital signature (PAdES): any change shows
        from app.documents.signing import sign_pdf

        pdf = sign_pdf(pdf, unit_id=source.workspace_id, unit_name=unit_name)
    return pdf, rendered.pages


def store(db: Session, source: Source, pdf: bytes, pages: int, *, actor_id: int | None = None) -> Document:
    """Keep a rendered document; if the same content was stored meanwhile, that one is the answer."""
    digest = content_hash(source)
    document = Document(
        workspace_id=source.workspace_id,
        kind=source.kind,
        number=source.number,
        case_id=source.case_id,
        assignment_id=source.assignment_id,
        escalation_id=source.escalation_id,
        content_hash=digest,
        template_version=render.template_version(source.template),
        sha256=hashlib.sha256(pdf).hexdigest(),
        size=len(pdf),
        pages=pages,
        pdf=pdf,
        created_by_id=actor_id,
    )
    try:
        with db.begin_nested():
            db.add(document)
    except IntegrityError:
        existing = _existing(db, source.workspace_id, source.kind, digest)
        if existing is None:
            raise
        return existing
    return document


def issue_for(db: Session, kind: str, obj: Any, *, actor_id: int | None = None) -> Document:
    """Build the source of ``kind`` from its row (Assignment, Escalation or Case) and issue it."""
    return issue(db, kind, build(db, kind, obj), actor_id=actor_id)


def pdf_bytes(document: Document) -> bytes:
    """The PDF as issued; ``DocumentCorrupted`` if the bytes no longer match their SHA-256."""
    data = document.pdf
    if hashlib.sha256(data).hexdigest() != document.sha256 or len(data) != document.size:
        raise DocumentCorrupted(f"document {document.id}: stored PDF does not match its sha256")
    return data


# Documents that print the citizen's name and telephone in full (the unit needs them to answer,
# 第十八条; the archive keeps them). Everything else a case produces carries no contact data.
CONTACT_KINDS: Final = frozenset({"assignment_sheet", "case_file"})
CONTACT_REFUSED: Final = "该文件载有网民的姓名和联系电话，您的岗位不能下载（个人信息保护）。"


def may_take_contact(me: Any) -> bool:
    """Posts that see contact data in full (app/security/contact.py), and the supervision office,
    whose 移交 evidence pack (第二十条) the case file is."""
    from app.permissions import Permission
    from app.security.contact import sees_full_contact

    return bool(sees_full_contact(me) or me.can(Permission.CASE_OVERSEE))


def release(db: Session, me: Any, document: Document) -> None:
    """个人信息保护法: a PDF carrying a citizen's contact data goes only to ``may_take_contact``
    posts, and every such download is logged like a page showing the data. Others: 403."""
    if document.kind not in CONTACT_KINDS:
        return
    if not may_take_contact(me):
        raise Forbidden(CONTACT_REFUSED)
    from app.audit.services import record_contact_view

    record_contact_view(
        db,
        me,
        None,
        case_id=document.case_id,
        assignment_id=document.assignment_id,
        page=f"document:{document.kind}:{document.id}",
        full=True,
    )


def of_case(db: Session, case_id: int) -> list[Document]:
    """The documents of a case in the session's workspace, newest first (PDFs not loaded)."""
    return list(
        db.scalars(
            select(Document)
            .where(Document.case_id == case_id)
            .order_by(Document.created_at.desc(), Document.id.desc())
        )
    )


def get(db: Session, document_id: int, *, with_pdf: bool = False) -> Document | None:
    query = select(Document).where(Document.id == document_id)
    if with_pdf:
        query = query.options(undefer(Document.pdf))
    return db.scalar(query)
