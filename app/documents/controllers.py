"""Downloading issued documents (staff), and verifying a document's digital signature (public)."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from litestar import Controller, Request, Response, get, post
from litestar.datastructures import UploadFile
from litestar.di import NamedDependency
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromPath, FromQuery
from markupsafe import Markup
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.accounts.identity import CurrentUser
from app.documents import services
from app.documents.models import Document
from app.documents.signing import verify_pdf
from app.errors import NotFound
from app.permissions import PUBLIC, Permission, requires
from app.tenants.scope import cross_workspace
from app.web.render import csrf_token

KIND_LABELS = {
    "assignment_sheet": "承办单",
    "reply_letter": "回复意见",
    "return_sheet": "退办单",
    "extension_request": "延办申请",
    "escalation_notice": "三单一函",
    "case_file": "归档材料",
}
MAX_VERIFY_BYTES = 10 * 1024 * 1024


def pdf_response(document: Document, data: bytes, *, inline: bool = False) -> Response[bytes]:
    name = f"{KIND_LABELS.get(document.kind, '文件')}_{document.number or document.id}.pdf"
    return Response(
        data,
        media_type="application/pdf",
        headers={
            "Content-Disposition": f"{'inline' if inline else 'attachment'}; filename*=UTF-8''{quote(name)}",
            "X-Content-Type-Options": "nosniff",
            "ETag": f'"{document.sha256}"',
        },
    )


def visible_documents(db: Session, me: CurrentUser, case_id: int) -> list[Document]:
    """The documents of a case a person may open: their own workspace's; the centre and the
    supervision office see the whole case (they see every case)."""
    if me.can(Permission.CASE_VIEW) or me.can(Permission.CASE_OVERSEE):
        with cross_workspace(db):
            return services.of_case(db, case_id)
    return services.of_case(db, case_id)


class DocumentController(Controller):
    path = "/documents"

    @get("/{document_id:int}", opt=requires(Permission.WORKSPACE_VIEW), sync_to_thread=True)
    def download(
        self, db: NamedDependency[Session], me: NamedDependency[CurrentUser], document_id: FromPath[int]
    ) -> Response[bytes]:
        document = services.get(db, document_id, with_pdf=True)  # own workspace
        if document is None and (me.can(Permission.CASE_VIEW) or me.can(Permission.CASE_OVERSEE)):
            with cross_workspace(db):
                document = services.get(db, document_id, with_pdf=True)
                if document is not None:
                    services.release(db, me, document)
                    return pdf_response(document, services.pdf_bytes(document))
        if document is None:
            raise NotFound()
        services.release(db, me, document)
        return pdf_response(document, services.pdf_bytes(document))


def _verify_page(request: Request[Any, Any, Any], *, status_code: int = 200, **context: Any) -> Response[Any]:
    """/verify is for the public: the portal's layout (with the 适老化 switches), and its own CSRF
    token for the upload form (the page is never cached)."""
    from app.public.render import public_page

    return public_page(
        request,
        "verify/verify.html",
        status_code=status_code,
        headers={"Cache-Control": "no-store"},
        csrf_input=Markup('<input type="hidden" name="_csrf_token" value="{}">').format(csrf_token(request)),
        **context,
    )


class VerifyController(Controller):
    """Anyone can check a document: by its number, or by uploading the PDF (第十二条: the reply is
    published with the unit's signature and seal)."""

    path = "/verify"

    @get("", opt=PUBLIC, sync_to_thread=True)
    def form(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[Session],
        number: FromQuery[str | None] = None,
    ) -> Response[Any]:
        found: list[dict[str, Any]] = []
        if number:
            found = published_by_number(db, number.strip()[:40])
        return _verify_page(request, number=number or "", found=found, result=None)

    @post("", opt=PUBLIC, sync_to_thread=True)
    def upload(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[Session],
        data: Annotated[dict[str, Any], Body(media_type=RequestEncodingType.MULTI_PART)],
    ) -> Response[Any]:
        upload = data.get("file")
        error = ""
        result = None
        known = False
        if not isinstance(upload, UploadFile):
            error = "请选择要验证的 PDF 文件。"
        else:
            content = upload.file.read(MAX_VERIFY_BYTES + 1)
            if len(content) > MAX_VERIFY_BYTES:
                error = "文件超过 10 MB，不是本平台出具的文书。"
            elif not content:
                error = "文件是空的。"
            else:
                result = verify_pdf(content)
                known = result.ok and is_published_file(db, content)
        return _verify_page(
            request,
            status_code=422 if error else 200,
            number="",
            found=[],
            result=result,
            known=known,
            error=error,
        )


def _published(db: Session) -> Any:
    from app.cases.models import Case

    return (
        select(Document.number, Document.sha256, Document.created_at, Document.case_id, Case.reply_unit_id)
        .join(Case, Case.id == Document.case_id)
        .where(Document.kind == "reply_letter", Case.state.in_(("published", "archived")))
    )


def published_by_number(db: Session, number: str) -> list[dict[str, Any]]:
    """The published replies with this number (public facts only: number, hash, date, case)."""
    from app.tenants.models import Workspace

    with cross_workspace(db):
        rows = db.execute(_published(db).where(Document.number == number).order_by(Document.created_at)).all()
        names = dict(db.execute(select(Workspace.id, Workspace.name)).all())
    return [
        {
            "number": r.number,
            "sha256": r.sha256,
            "created_at": r.created_at,
            "case_id": r.case_id,
            "unit": names.get(r.reply_unit_id, ""),
        }
        for r in rows
    ]


def is_published_file(db: Session, content: bytes) -> bool:
    import hashlib

    digest = hashlib.sha256(content).hexdigest()
    with cross_workspace(db):
        return db.execute(_published(db).where(Document.sha256 == digest)).first() is not None


def published_reply(db: Session, case_id: int) -> Document | None:
    """The signed reply letter of a published case (the lead unit's, latest), with its PDF."""
    from sqlalchemy.orm import undefer

    from app.cases.models import Case

    with cross_workspace(db):
        return db.scalar(
            select(Document)
            .join(Case, Case.id == Document.case_id)
            .where(
                Document.case_id == case_id,
                Document.kind == "reply_letter",
                Document.workspace_id == Case.reply_unit_id,
                Case.state.in_(("published", "archived")),
                Case.reply_private.is_(False),
            )
            .order_by(Document.created_at.desc(), Document.id.desc())
            .limit(1)
            .options(undefer(Document.pdf))
        )


def published_reply_digest(db: Session, case_id: int) -> str | None:
    """The SHA-256 of the published reply's signed PDF, if it has been issued (no PDF loaded)."""
    from app.cases.models import Case

    with cross_workspace(db):
        return db.scalar(
            select(Document.sha256)
            .join(Case, Case.id == Document.case_id)
            .where(
                Document.case_id == case_id,
                Document.kind == "reply_letter",
                Document.workspace_id == Case.reply_unit_id,
                Case.state.in_(("published", "archived")),
                Case.reply_private.is_(False),
            )
            .order_by(Document.created_at.desc(), Document.id.desc())
            .limit(1)
        )


class PublishedReplyPdfController(Controller):
    path = "/replies/{case_id:int}/reply.pdf"

    @get("", opt=PUBLIC, sync_to_thread=True)
    def pdf(self, db: NamedDependency[Session], case_id: FromPath[int]) -> Response[bytes]:
        document = published_reply(db, case_id)
        if document is None:
            raise NotFound()
        return pdf_response(document, services.pdf_bytes(document), inline=True)
