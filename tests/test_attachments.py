"""Attachments of a message: only passive files, always downloaded, seen only through one's own case."""

from __future__ import annotations

import hashlib

from sqlalchemy import select, text

from app.cases.models import Assignment, Attachment, Case
from app.db import system_session
from tests.helpers import csrf, sign_in

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def _upload(client, case_id: int, name: str, content: bytes):  # type: ignore[no-untyped-def]
    return client.post(
        f"/cases/{case_id}/attachments",
        files={"file": (name, content, "application/octet-stream")},
        data={"_csrf_token": csrf(client)},
        follow_redirects=False,
    )


def _heating() -> tuple[int, int, int, int]:
    with system_session() as db:
        case = db.scalar(select(Case).where(Case.source_id == "TL-2026-110301"))
        assert case is not None
        lead = db.scalar(
            select(Assignment.id).where(Assignment.case_id == case.id, Assignment.is_lead.is_(True))
        )
        photo = db.scalar(select(Attachment.id).where(Attachment.case_id == case.id))
        road = db.scalar(select(Case.id).where(Case.source_id == "TL-2026-110302"))
        naiman = db.scalar(select(Assignment.id).where(Assignment.case_id == road))
    assert lead and photo and naiman
    return case.id, lead, photo, naiman


def test_the_centre_attaches_a_document_and_it_downloads_as_a_file(make_client) -> None:  # type: ignore[no-untyped-def]
    case_id, *_ = _heating()
    clerk = make_client()
    sign_in(clerk, "zx.clerk")
    response = _upload(clerk, case_id, "现场情况.pdf", PDF)
    assert response.status_code == 303
    page = clerk.get(f"/cases/{case_id}").text
    assert "现场情况.pdf" in page
    with system_session() as db:
        attachment = db.scalar(select(Attachment).where(Attachment.filename == "现场情况.pdf"))
        assert attachment is not None
        attachment_id = attachment.id
    file = clerk.get(f"/cases/{case_id}/attachments/{attachment_id}")
    assert file.status_code == 200 and file.content == PDF
    # At rest the file is sealed (citizens send scans of ID cards); it downloads as uploaded.
    with system_session() as db:
        stored, sha256 = db.execute(
            text("SELECT data, sha256 FROM attachments WHERE id = :i"), {"i": attachment_id}
        ).one()
    assert bytes(stored).startswith(b"enc1:") and b"%PDF" not in bytes(stored)
    assert sha256 == hashlib.sha256(file.content).hexdigest()
    assert file.headers["content-type"].startswith("application/pdf")
    assert file.headers["content-disposition"].startswith("attachment")
    assert file.headers["x-content-type-options"] == "nosniff"


def test_active_or_unknown_content_is_refused_whatever_its_name(make_client) -> None:  # type: ignore[no-untyped-def]
    case_id, *_ = _heating()
    clerk = make_client()
    sign_in(clerk, "zx.clerk")
    for name, content in (
        ("report.pdf", b"<html><script>alert(1)</script></html>"),
        ("picture.png", b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'),
        ("setup.docx", b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff"),
        ("big.pdf", b"%PDF-1.4\n" + b"0" * (8 * 1024 * 1024)),
    ):
        response = _upload(clerk, case_id, name, content)
        assert response.status_code == 303
        assert "附件已上传" not in clerk.get(f"/cases/{case_id}").text
    with system_session() as db:
        names = set(db.scalars(select(Attachment.filename).where(Attachment.case_id == case_id)))
    assert names == {"室温照片.png"}


def test_units_read_the_attachments_of_their_own_assignment_only(make_client) -> None:  # type: ignore[no-untyped-def]
    _, lead, photo, naiman_assignment = _heating()
    horqin, naiman = make_client(), make_client()
    sign_in(horqin, "horqin.handler")
    sign_in(naiman, "naiman.handler")
    assert "室温照片.png" in horqin.get(f"/inbox/{lead}").text
    assert horqin.get(f"/inbox/{lead}/attachments/{photo}").status_code == 200
    # Naiman holds another case: the photo is not reachable through its own assignment, nor through Horqin's.
    assert naiman.get(f"/inbox/{naiman_assignment}/attachments/{photo}").status_code == 404
    assert naiman.get(f"/inbox/{lead}/attachments/{photo}").status_code == 404
    assert naiman.get(f"/cases/1/attachments/{photo}").status_code == 403
    # Units do not upload to the centre's case.
    assert (
        horqin.post(
            "/cases/1/attachments",
            files={"file": ("a.pdf", PDF, "application/pdf")},
            data={"_csrf_token": csrf(horqin)},
            follow_redirects=False,
        ).status_code
        == 403
    )


def _docx(extra: dict[str, bytes] | None = None, content_types: bytes = b"") -> bytes:
    import io
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(
            "[Content_Types].xml",
            content_types
            or b'<?xml version="1.0"?><Types><Override ContentType="application/vnd.openxmlformats-'
            b'officedocument.wordprocessingml.document.main+xml" PartName="/word/document.xml"/></Types>',
        )
        archive.writestr("word/document.xml", b"<w:document/>")
        for name, content in (extra or {}).items():
            archive.writestr(name, content)
    return buffer.getvalue()


def test_the_type_comes_from_the_content_never_from_the_name_or_the_browser() -> None:
    from app.cases.attachments import safe_filename, sniff

    png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32
    assert sniff(png) is not None and sniff(png).content_type == "image/png"  # type: ignore[union-attr]
    assert sniff(PDF).content_type == "application/pdf"  # type: ignore[union-attr]
    assert sniff(_docx()).extension == "docx"  # type: ignore[union-attr]
    assert sniff("来信内容：暖气温度 12 度，a < b 且 c > d。".encode()).extension == "txt"  # type: ignore[union-attr]
    refused = {
        "Windows program": b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00",
        "ELF program": b"\x7fELF\x02\x01\x01\x00" + b"\x00" * 40,
        "shell script": b"#!/bin/sh\nrm -rf /\n",
        "Java class": b"\xca\xfe\xba\xbe\x00\x00\x00\x34",
        "old Office with macros": b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 64,
        "HTML after a long innocent start": b"hello\n" * 1000 + b"<script>alert(1)</script>",
        "SVG": b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>',
        "uppercase HTML": b"<!DOCTYPE HTML><HTML><BODY>x</BODY></HTML>",
        "javascript: link": b"click javascript:alert(document.cookie)",
        "PDF with JavaScript": PDF.replace(b"<<>>", b"<</OpenAction<</S/JavaScript/JS(app.alert(1))>>>>"),
        "PDF with an escaped name": PDF.replace(b"<<>>", b"<</AA<</O<</S/J#61vaScript/J#53(x)>>>>>>"),
        "PDF launching a program": PDF.replace(b"<<>>", b"<</OpenAction<</S/Launch/F(cmd.exe)>>>>"),
        "Word with macros": _docx({"word/vbaProject.bin": b"\x00macro"}),
        "Word declaring macros": _docx(
            content_types=b"<Types>application/vnd.ms-word.document.macroEnabled</Types>"
        ),
        "Word with an embedded package": _docx({"word/embeddings/oleObject1.bin": b"\xd0\xcf\x11\xe0"}),
        "Word with ActiveX": _docx({"word/activeX/activeX1.xml": b"<ax/>"}),
        "zip that is no Office file": _docx({"payload.exe": b"MZ"}).replace(
            b"word/document.xml", b"word/documenx.xml"
        ),
        "binary that decodes as text": bytes(range(1, 32)) * 4,
    }
    for what, content in refused.items():
        assert sniff(content) is None, what
    # The stored name keeps the sniffed extension only, without separators or direction overrides.
    assert safe_filename("照片\u202egpj.exe", "png") == "照片_gpj.png"
    traversal = safe_filename("../../etc/passwd", "txt")
    assert "/" not in traversal and "\\" not in traversal and traversal.endswith(".txt")
    assert safe_filename("", "pdf") == "附件.pdf"


def test_a_disguised_program_is_refused_though_the_browser_calls_it_a_photo(make_client) -> None:  # type: ignore[no-untyped-def]
    case_id, *_ = _heating()
    clerk = make_client()
    sign_in(clerk, "zx.clerk")
    for name, content, declared in (
        (
            "现场照片.jpg",
            b"MZ\x90\x00" + b"\x00" * 60 + b"This program cannot be run in DOS mode",
            "image/jpeg",
        ),
        ("说明.txt", b"#!/usr/bin/env python3\nimport os\n", "text/plain"),
        ("照片.png", b"<html><img src=x onerror=alert(1)></html>", "image/png"),
        ("文档.docx", _docx({"word/vbaProject.bin": b"macro"}), "application/msword"),
    ):
        response = clerk.post(
            f"/cases/{case_id}/attachments",
            files={"file": (name, content, declared)},
            data={"_csrf_token": csrf(clerk)},
            follow_redirects=False,
        )
        assert response.status_code == 303
    with system_session() as db:
        names = set(db.scalars(select(Attachment.filename).where(Attachment.case_id == case_id)))
    assert names == {"室温照片.png"}


def test_every_download_is_an_attachment_that_the_browser_may_not_sniff_or_run(make_client) -> None:  # type: ignore[no-untyped-def]
    case_id, _, photo, _ = _heating()
    clerk = make_client()
    sign_in(clerk, "zx.clerk")
    assert _upload(clerk, case_id, "notes.txt", "门牌号 3-2-502，暖气 12 度。".encode()).status_code == 303
    with system_session() as db:
        text_id = db.scalar(select(Attachment.id).where(Attachment.filename == "notes.txt"))
    for url in (f"/cases/{case_id}/attachments/{photo}", f"/cases/{case_id}/attachments/{text_id}"):
        file = clerk.get(url)
        assert file.status_code == 200
        assert file.headers["content-disposition"].startswith("attachment;")
        assert file.headers["x-content-type-options"] == "nosniff"
        assert file.headers["content-security-policy"] == "default-src 'none'; sandbox"
        assert "html" not in file.headers["content-type"]
    assert file.headers["content-type"] == "text/plain; charset=utf-8"  # one charset, not two
