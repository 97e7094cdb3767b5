"""Uploading and downloading a message's attachments."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from litestar import Controller, Request, Response, get, post
from litestar.datastructures import UploadFile
from litestar.di import NamedDependency
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromPath
from sqlalchemy.orm import Session

from app.accounts.identity import CurrentUser
from app.cases import attachments, services
from app.cases.models import Attachment
from app.errors import InvalidInput
from app.permissions import Permission, requires
from app.web import flash
from app.web.deps import attempt

Upload = Annotated[dict[str, Any], Body(media_type=RequestEncodingType.MULTI_PART)]


def download(attachment: Attachment) -> Response[bytes]:
    """Always a download with the sniffed type: nothing uploaded is rendered by the browser."""
    name = quote(attachment.filename)
    return Response(
        attachment.data,
        # Litestar adds "; charset=utf-8" to every text/ type itself.
        media_type=attachment.content_type.split(";")[0],
        headers={
            "Content-Disposition": f"attachment; filename=\"attachment\"; filename*=UTF-8''{name}",
            "X-Content-Type-Options": "nosniff",
            # Should a browser ever render it anyway: no script, no plugins, an opaque origin.
            "Content-Security-Policy": "default-src 'none'; sandbox",
            "Cross-Origin-Resource-Policy": "same-origin",
            "Cache-Control": "private, no-store",
        },
    )


class AttachmentController(Controller):
    @post("/cases/{case_id:int}/attachments", opt=requires(Permission.CASE_REGISTER), sync_to_thread=True)
    def upload(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[Session],
        me: NamedDependency[CurrentUser],
        case_id: FromPath[int],
        data: Upload,
    ) -> Response[Any]:
        case = services.get_case(db, case_id)
        upload = data.get("file")
        if not isinstance(upload, UploadFile):
            error: Any = InvalidInput("请选择要上传的文件。", field="file")
        else:
            content = upload.file.read(attachments.MAX_BYTES + 1)
            _, error = attempt(
                db, lambda: attachments.add_attachment(db, me, case, upload.filename or "", content)
            )
        target = Response("", status_code=303, headers={"Location": f"/cases/{case_id}"})
        if error:
            return flash.add(target, error.message, "error")
        return flash.add(target, "附件已上传。")

    @get(
        "/cases/{case_id:int}/attachments/{attachment_id:int}",
        opt=requires(Permission.CASE_VIEW),
        sync_to_thread=True,
    )
    def centre_file(
        self, db: NamedDependency[Session], case_id: FromPath[int], attachment_id: FromPath[int]
    ) -> Response[bytes]:
        return download(attachments.one_of_case(db, case_id, attachment_id))

    @get(
        "/inbox/{assignment_id:int}/attachments/{attachment_id:int}",
        opt=requires(Permission.ASSIGNMENT_VIEW),
        sync_to_thread=True,
    )
    def unit_file(
        self, db: NamedDependency[Session], assignment_id: FromPath[int], attachment_id: FromPath[int]
    ) -> Response[bytes]:
        assignment = services.get_assignment(db, assignment_id)  # the unit's own, or not found
        return download(attachments.one_of_assignment(db, assignment, attachment_id))
