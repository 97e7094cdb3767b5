"""Attachments of a message: photos and documents the citizen sent with it.

Only passive formats are kept (PDF, images, Office documents, plain text), recognised by their
content, never by their name; they are always served as downloads with their sniffed type, so
nothing uploaded can run in a staff member's browser. The centre adds them to its case; a unit
reads them through its own assignment (the 承办单 carries them).
"""

from __future__ import annotations

import hashlib
import io
import re
import zipfile
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session, undefer

from app.accounts.identity import CurrentUser
from app.audit.services import record
from app.cases.models import Assignment, Attachment, Case
from app.errors import InvalidInput, NotFound
from app.tenants.scope import cross_workspace

MAX_BYTES = 8 * 1024 * 1024  # under the server's 10 MB request limit
MAX_PER_CASE = 10
_NAME_UNSAFE = re.compile(r'[\x00-\x1f\\/:*?"<>|]+')


@dataclass(frozen=True)
class Sniffed:
    content_type: str
    extension: str


def sniff(data: bytes) -> Sniffed | None:
    """The file's real type from its first bytes, among the formats we accept."""
    if data.startswith(b"%PDF-"):
        return Sniffed("application/pdf", "pdf")
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return Sniffed("image/png", "png")
    if data.startswith(b"\xff\xd8\xff"):
        return Sniffed("image/jpeg", "jpg")
    if data.startswith(b"PK\x03\x04"):
        try:
            names = set(zipfile.ZipFile(io.BytesIO(data)).namelist())
        except zipfile.BadZipFile:
            return None
        if "word/document.xml" in names:
            return Sniffed("application/vnd.openxmlformats-officedocument.wordprocessingml.document", "docx")
        if "xl/workbook.xml" in names:
            return Sniffed("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "xlsx")
        return None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    lowered = text[:2048].lower()
    if "<script" in lowered or "<html" in lowered or "<svg" in lowered or "\x00" in text:
        return None
    return Sniffed("text/plain; charset=utf-8", "txt")


def safe_filename(name: str, extension: str) -> str:
    base = _NAME_UNSAFE.sub("_", name.strip()).strip(". ") or "附件"
    stem = base.rsplit(".", 1)[0] if "." in base else base
    return f"{stem[:150]}.{extension}"


def add_attachment(
    db: Session, actor: CurrentUser | None, case: Case, filename: str, data: bytes
) -> Attachment:
    """A file for the case; ``actor`` None when the message board's feed delivered it."""
    if case.state == "archived":
        raise InvalidInput("该留言已归档，不能再添加附件。", field="file")
    if not data:
        raise InvalidInput("请选择要上传的文件。", field="file")
    if len(data) > MAX_BYTES:
        raise InvalidInput("单个附件不超过 8 MB。", field="file")
    kind = sniff(data)
    if kind is None:
        raise InvalidInput("只能上传 PDF、图片（PNG/JPEG）、Word、Excel 或纯文本文件。", field="file")
    count = db.scalar(select(func.count()).select_from(Attachment).where(Attachment.case_id == case.id)) or 0
    if count >= MAX_PER_CASE:
        raise InvalidInput(f"每条留言最多 {MAX_PER_CASE} 个附件。", field="file")
    attachment = Attachment(
        workspace_id=case.workspace_id,
        case_id=case.id,
        filename=safe_filename(filename, kind.extension),
        content_type=kind.content_type,
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        data=data,
        uploaded_by_id=actor.user_id if actor else None,
    )
    db.add(attachment)
    db.flush()
    record(
        db,
        "case.attachment_added",
        actor_id=actor.user_id if actor else None,
        workspace_id=case.workspace_id,
        target=f"case:{case.id}",
        ip=actor.ip if actor else "api",
        filename=attachment.filename,
        sha256=attachment.sha256,
    )
    return attachment


def of_case(db: Session, case_id: int) -> list[Attachment]:
    """The centre's own attachments (its scoped session)."""
    return list(db.scalars(select(Attachment).where(Attachment.case_id == case_id).order_by(Attachment.id)))


def of_assignment(db: Session, assignment: Assignment) -> list[Attachment]:
    """A unit reads the attachments of the case it was given, and of no other."""
    with cross_workspace(db):
        return of_case(db, assignment.case_id)


def one_of_case(db: Session, case_id: int, attachment_id: int) -> Attachment:
    # The file itself is loaded here, inside the caller's access (a unit reads it across workspaces).
    attachment = db.get(Attachment, attachment_id, options=[undefer(Attachment.data)])
    if attachment is None or attachment.case_id != case_id:
        raise NotFound()
    return attachment


def one_of_assignment(db: Session, assignment: Assignment, attachment_id: int) -> Attachment:
    with cross_workspace(db):
        return one_of_case(db, assignment.case_id, attachment_id)
