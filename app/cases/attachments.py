"""Attachments of a message: photos and documents the citizen sent with it.

Only passive formats are kept (PDF, images, Office documents, plain text), recognised by their
content (magic bytes and structure), never by their name or the browser's declared type; they are
always served as downloads with their sniffed type, ``X-Content-Type-Options: nosniff`` and a
sandboxing CSP, so nothing uploaded can run in a staff member's browser. The centre adds them to
its case; a unit reads them through its own assignment (the 承办单 carries them).

Refused whatever the name says: executables (PE ``MZ``, ELF, Mach-O, Java class, ``#!`` scripts),
HTML/SVG/XML and anything else with markup in a "text" file, Office files with macros, ActiveX
controls or embedded OLE packages (``.docm``/``.xlsm`` renamed), PDFs whose dictionaries name
JavaScript, launch or submit actions, XFA forms or rich media (hex-escaped names included; a name
hidden inside a compressed object stream is not seen — the download-only serving covers that).
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
# Control characters, path separators, characters Windows forbids, and bidirectional overrides
# (which make "gpj.exe" read as "exe.jpg").
_NAME_UNSAFE = re.compile(r'[\x00-\x1f\x7f\\/:*?"<>|\u200e\u200f\u202a-\u202e\u2066-\u2069]+')


@dataclass(frozen=True)
class Sniffed:
    content_type: str
    extension: str


# Executable formats, refused even where another check would let them through.
_EXECUTABLE_MAGIC = (
    b"MZ",  # Windows PE (.exe, .dll, .scr)
    b"\x7fELF",
    b"\xca\xfe\xba\xbe",  # Java class / Mach-O fat binary
    b"\xfe\xed\xfa\xce",
    b"\xfe\xed\xfa\xcf",
    b"\xce\xfa\xed\xfe",
    b"\xcf\xfa\xed\xfe",
    b"#!",  # scripts
    b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1",  # OLE2: .doc/.xls with macros, .msi
)
# Markup a browser would render or run, anywhere in a "text" file.
_MARKUP = re.compile(
    r"<\s*(script|html|svg|iframe|object|embed|body|meta|link|style|img|a|form|math|xml|\?xml|!doctype)\b"
    r"|javascript\s*:",
    re.IGNORECASE,
)
# PDF names that make a document act (run script, launch a program, carry another file).
# (/EmbeddedFile is allowed: PDF/A-3 e-invoices carry their XML that way; nothing launches it.)
_PDF_ACTIVE = re.compile(rb"/(JavaScript|JS|Launch|RichMedia|XFA|GoToE|SubmitForm|ImportData)\b")
_PDF_NAME_ESCAPE = re.compile(rb"#([0-9A-Fa-f]{2})")
_OFFICE_ACTIVE = re.compile(
    r"(^|/)(vbaProject\.bin|vbaData\.xml|activeX/|embeddings/.*\.(bin|exe|ole))", re.IGNORECASE
)
_OFFICE_MACRO_TYPES = (b"macroEnabled", b"vbaProject", b"activeX")


def _pdf_is_passive(data: bytes) -> bool:
    names = _PDF_NAME_ESCAPE.sub(lambda m: bytes([int(m.group(1), 16)]), data)
    return _PDF_ACTIVE.search(names) is None


def _office(data: bytes) -> Sniffed | None:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = set(archive.namelist())
            types = archive.read("[Content_Types].xml") if "[Content_Types].xml" in names else b""
    except (zipfile.BadZipFile, KeyError, ValueError, OSError, RuntimeError, NotImplementedError):
        return None
    if not types or any(marker in types for marker in _OFFICE_MACRO_TYPES):
        return None
    if any(_OFFICE_ACTIVE.search(name) for name in names):
        return None
    if "word/document.xml" in names:
        return Sniffed("application/vnd.openxmlformats-officedocument.wordprocessingml.document", "docx")
    if "xl/workbook.xml" in names:
        return Sniffed("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "xlsx")
    return None


def sniff(data: bytes) -> Sniffed | None:
    """The file's real type from its content, among the passive formats we accept; else None."""
    if data.startswith(_EXECUTABLE_MAGIC):
        return None
    if data.startswith(b"%PDF-"):
        return Sniffed("application/pdf", "pdf") if _pdf_is_passive(data) else None
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return Sniffed("image/png", "png")
    if data.startswith(b"\xff\xd8\xff"):
        return Sniffed("image/jpeg", "jpg")
    if data.startswith(b"PK\x03\x04"):
        return _office(data)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if "\x00" in text or _MARKUP.search(text):
        return None
    if sum(c < " " and c not in "\t\r\n\f" for c in text[:20000]) > 10:
        return None  # binary that happens to decode
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
