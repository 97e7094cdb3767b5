"""Documents come into being with the steps that create them, rendered by workers: the 承办单 at
dispatch, the signed and sealed reply at the principal's signature (digitally signed, verifiable by
anyone), the notices of 三单一函 — and each person sees only the documents they may see."""

from __future__ import annotations

import hashlib
from datetime import date

from sqlalchemy import func, select

from app.accounts.models import User
from app.audit.models import AuditEvent
from app.cases.models import Assignment, Case
from app.db import system_session
from app.documents.models import Document
from app.notify.models import OutboxMessage
from app.notify.relay import relay_all
from tests.helpers import post, sign_in

FEES = "TL-2026-110306"  # the demo's published case (教育局)


def _run_queued_documents(worker) -> int:  # type: ignore[no-untyped-def]
    """What the workers (and the scheduler's relay) do: run what was handed out at the commit, and
    what the relay hands out; how many outbox rows the relay handed out."""
    worker()
    handed = relay_all()
    worker()
    return handed


def _pdftotext(pdf: bytes) -> str:
    import subprocess

    return subprocess.run(["pdftotext", "-", "-"], input=pdf, capture_output=True, check=True).stdout.decode()


def _stored_pdf(document_id: int) -> tuple[bytes, str]:
    """The PDF column as the database holds it, and the recorded SHA-256 (of the plain PDF)."""
    from sqlalchemy import text

    with system_session() as db:
        row = db.execute(text("SELECT pdf, sha256 FROM documents WHERE id = :i"), {"i": document_id}).one()
    return bytes(row[0]), row[1]


def _fees() -> tuple[int, int]:
    with system_session() as db:
        case = db.scalar(select(Case).where(Case.source_id == FEES))
        assert case is not None and case.state == "published"
        lead = db.scalar(select(Assignment).where(Assignment.case_id == case.id))
        assert lead is not None
        return case.id, lead.id


def test_a_dispatch_queues_the_assignment_sheets_and_the_workers_issue_them(
    make_client, worker, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    with system_session() as db:
        case = db.scalar(select(Case).where(Case.state == "received"))
        assert case is not None
        case_id = case.id
    clerk = make_client()
    sign_in(clerk, "zx.clerk")
    page = clerk.get(f"/cases/{case_id}").text
    version = page.split('name="version" value="')[1].split('"')[0]
    from app.tenants.models import Workspace

    with system_session() as db:
        horqin = db.scalar(select(Workspace.id).where(Workspace.slug == "horqin"))
    import tasks.actors

    with monkeypatch.context() as patch:  # hold the hand-off, to see what the request itself did
        patch.setattr(tasks.actors.deliver, "send", lambda *args: None)
        response = post(
            clerk,
            f"/cases/{case_id}/act/dispatch",
            {"version": version, "lead_unit_id": str(horqin), "instructions": "请按时办理。"},
        )
    assert response.status_code == 303, response.text
    with system_session() as db:
        queued = db.scalars(select(OutboxMessage.key).where(OutboxMessage.channel == "document")).all()
        assert len(queued) == 1 and queued[0].startswith(f"doc:assignment_sheet:sheets:{case_id}:")
        assert db.scalar(select(func.count()).select_from(Document)) == 0  # the page did not render
    assert _run_queued_documents(worker) == 1  # the relay hands it out; a worker renders it
    assert _run_queued_documents(worker) == 0  # once
    with system_session() as db:
        assert len(db.scalars(select(Document.id).where(Document.kind == "assignment_sheet")).all()) == 1
        sheet = db.scalar(select(Document).where(Document.kind == "assignment_sheet"))
        assert sheet is not None and sheet.workspace_id == horqin and sheet.number.startswith("通留〔2026〕")
        sheet_id = sheet.id
    with system_session() as db:
        assert db.scalar(select(OutboxMessage.sent_at).where(OutboxMessage.channel == "document"))
    # The unit sees its 承办单 on its assignment page and downloads it; the centre sees it too.
    handler = make_client()
    sign_in(handler, "horqin.handler")
    with system_session() as db:
        assignment_id = db.scalar(select(Assignment.id).where(Assignment.case_id == case_id))
    assert f"/documents/{sheet_id}" in handler.get(f"/inbox/{assignment_id}").text
    pdf = handler.get(f"/documents/{sheet_id}")
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    # At rest the 承办单 is sealed (it prints the citizen's name and phone); it downloads as
    # issued, matching the SHA-256 recorded of the plain PDF.
    stored, sha256 = _stored_pdf(sheet_id)
    assert stored.startswith(b"enc1:") and b"%PDF" not in stored
    assert hashlib.sha256(pdf.content).hexdigest() == sha256
    assert f"/documents/{sheet_id}" in clerk.get(f"/cases/{case_id}").text
    assert clerk.get(f"/documents/{sheet_id}").status_code == 200
    # The 承办单 prints the citizen's name and telephone: each download is logged as a read of
    # contact data; the unit's administrator (who sees the data masked) cannot take it.
    with system_session() as db:
        logged = db.execute(
            select(User.username, AuditEvent.detail)
            .join(User, User.id == AuditEvent.actor_id)
            .where(AuditEvent.action == "contact.viewed", AuditEvent.target == f"case:{case_id}")
        ).all()
    pages = {(name, detail["page"]) for name, detail in logged}
    assert {
        ("horqin.handler", f"document:assignment_sheet:{sheet_id}"),
        ("zx.clerk", f"document:assignment_sheet:{sheet_id}"),
    } <= pages
    unit_admin = make_client()
    sign_in(unit_admin, "horqin.admin")
    refused = unit_admin.get(f"/documents/{sheet_id}")
    assert (
        refused.status_code == 403 and "不能下载" in refused.text and not refused.content.startswith(b"%PDF")
    )
    assert "不可下载" in unit_admin.get(f"/inbox/{assignment_id}").text
    # Another unit: not a byte of it.
    other = make_client()
    sign_in(other, "naiman.handler")
    assert other.get(f"/documents/{sheet_id}").status_code == 404
    assert other.get("/documents/999999").status_code == 404


def test_the_published_reply_is_signed_and_anyone_can_verify_it(make_client, client, worker) -> None:  # type: ignore[no-untyped-def]
    from app.documents.queue import issue

    case_id, lead_id = _fees()
    with system_session() as db:  # test set-up: the reply repeats the citizen's mobile number
        lead = db.get(Assignment, lead_id)
        assert lead is not None
        lead.reply_text += "如有疑问，我局已与您（13847519876）电话沟通。"
    assert client.get(f"/replies/{case_id}/reply.pdf").status_code == 404  # not issued yet
    before = client.get(f"/replies/{case_id}")
    assert before.status_code == 200 and "sealed-pdf" not in before.text
    assert issue(f"reply_letter|assignment:{lead_id}") == 1  # the worker's side of the 'sign' trigger
    assert issue(f"reply_letter|assignment:{lead_id}") == 0  # the same content: not rendered again
    # The public page now offers it, under a new ETag (a cached copy without the link is stale).
    after = client.get(f"/replies/{case_id}", headers={"If-None-Match": before.headers["etag"]})
    assert after.status_code == 200 and f"/replies/{case_id}/reply.pdf" in after.text
    response = client.get(f"/replies/{case_id}/reply.pdf")
    assert response.status_code == 200 and response.headers["content-type"] == "application/pdf"
    pdf = response.content
    with system_session() as db:  # sealed at rest too; served to the public exactly as signed
        reply_id = db.scalar(select(Document.id).where(Document.kind == "reply_letter"))
    stored, sha256 = _stored_pdf(reply_id)  # type: ignore[arg-type]
    assert stored.startswith(b"enc1:") and b"%PDF" not in stored
    assert hashlib.sha256(pdf).hexdigest() == sha256
    text = _pdftotext(pdf)
    assert "13847519876" not in text and "138****9876" in text  # masked in the public PDF
    assert "通辽市教育局" in text
    with system_session() as db:
        number = db.scalar(select(Document.number).where(Document.kind == "reply_letter"))
    # Verify by upload: the original passes and is recognised as published.
    ok = post(client, "/verify", files={"file": ("reply.pdf", pdf, "application/pdf")})
    assert ok.status_code == 200 and "验证通过" in ok.text and "通辽市教育局" in ok.text
    assert "完全一致" in ok.text
    # One byte changed inside the signed content: refused.
    middle = len(pdf) // 3
    tampered = pdf[:middle] + bytes([pdf[middle] ^ 0x01]) + pdf[middle + 1 :]
    bad = post(client, "/verify", files={"file": ("reply.pdf", tampered, "application/pdf")})
    assert bad.status_code == 200 and "验证未通过" in bad.text
    junk = post(client, "/verify", files={"file": ("x.pdf", b"not a pdf", "application/pdf")})
    assert "验证未通过" in junk.text
    # By number.
    found = client.get("/verify", params={"number": number})
    assert (
        found.status_code == 200
        and "通辽市教育局" in found.text
        and f"/replies/{case_id}/reply.pdf" in found.text
    )
    assert "没有找到" in client.get("/verify", params={"number": "通留〔2026〕999号"}).text


def test_escalation_notices_are_issued_with_the_sweep(make_client, worker) -> None:  # type: ignore[no-untyped-def]
    from app.escalation.services import sweep

    with system_session() as db:
        for a in db.scalars(
            select(Assignment).where(Assignment.is_lead.is_(True), Assignment.state == "pending")
        ):
            a.due_date = date(2026, 12, 4)
    issued = sweep(date(2026, 12, 7)).total
    assert issued > 0
    _run_queued_documents(worker)
    with system_session() as db:
        notices = db.scalars(select(Document).where(Document.kind == "escalation_notice")).all()
        assert len(notices) == issued
        assert {n.number[:2] for n in notices} == {"催办"}
