"""Attachments of a message: only passive files, always downloaded, seen only through one's own case."""

from __future__ import annotations

from sqlalchemy import select

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
