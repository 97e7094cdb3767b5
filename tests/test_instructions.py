"""领导批示 (第十六条) and the supervision office's read-only view of every case (第六条)."""

from __future__ import annotations

from sqlalchemy import select

from app.audit.models import AuditEvent
from app.cases.models import Assignment, Case
from app.db import system_session
from tests.helpers import post, sign_in


def _heating() -> tuple[int, int]:
    with system_session() as db:
        case = db.scalar(select(Case).where(Case.source_id == "TL-2026-110301"))
        assert case is not None
        lead = db.scalar(
            select(Assignment).where(Assignment.case_id == case.id, Assignment.is_lead.is_(True))
        )
        assert lead is not None
        return case.id, lead.id


def test_a_city_leader_instructs_and_the_centre_and_the_unit_see_it(make_client) -> None:  # type: ignore[no-untyped-def]
    case_id, assignment_id = _heating()
    leader = make_client()
    sign_in(leader, "city.leader")
    listing = leader.get("/oversight")
    assert listing.status_code == 200 and "明仁小区供暖温度不达标" in listing.text
    page = leader.get(f"/oversight/{case_id}")
    assert page.status_code == 200 and "13847511000" not in page.text  # no citizen contact data here
    text = "请科尔沁区政府督促热力公司三日内解决，并将结果报市政府。"
    assert post(leader, f"/oversight/{case_id}/instruct", {"text": text}).status_code == 303
    clerk, handler = make_client(), make_client()
    sign_in(clerk, "zx.clerk")
    sign_in(handler, "horqin.handler")
    assert text in clerk.get(f"/cases/{case_id}").text
    unit_page = handler.get(f"/inbox/{assignment_id}").text
    assert "领导批示" in unit_page and text in unit_page
    with system_session() as db:
        assert db.scalar(select(AuditEvent).where(AuditEvent.action == "case.instructed")) is not None


def test_an_instruction_needs_text_and_an_open_case(make_client) -> None:  # type: ignore[no-untyped-def]
    case_id, _ = _heating()
    leader = make_client()
    sign_in(leader, "city.leader")
    empty = post(leader, f"/oversight/{case_id}/instruct", {"text": "  "})
    assert empty.status_code == 422 and "请填写批示内容" in empty.text
    with system_session() as db:
        archived = db.scalar(select(Case).where(Case.state == "published"))
        assert archived is not None
        archived.state = "archived"  # test set-up: an archived case
        archived_id = archived.id
    refused = post(leader, f"/oversight/{archived_id}/instruct", {"text": "补充批示"})
    assert refused.status_code == 422 and "已归档" in refused.text


def test_the_supervision_office_reads_but_only_leaders_instruct(make_client) -> None:  # type: ignore[no-untyped-def]
    case_id, _ = _heating()
    supervisor = make_client()
    sign_in(supervisor, "dc.supervisor")
    assert supervisor.get(f"/oversight/{case_id}").status_code == 200
    assert post(supervisor, f"/oversight/{case_id}/instruct", {"text": "x"}).status_code == 403
    unit = make_client()
    sign_in(unit, "horqin.principal")
    assert unit.get("/oversight").status_code == 403
    assert unit.get(f"/oversight/{case_id}").status_code == 403
