"""The regulation's rules, one named test each, through the product's own pages."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select

from app.cases.models import Assignment, Case, TimelineEntry
from app.db import system_session, utcnow
from app.demo import demo_signature_png
from app.tenants.models import Workspace
from app.workflows.deadlines import add_working_days, local_date
from app.workflows.signatures import signature_problem
from tests.helpers import post, sign_in

MESSAGE = {
    "board": "mayor",
    "posted_at": "2026-11-20 10:00",
    "category": "consult",
    "title": "路灯不亮",
    "body": "科尔沁区建国路路灯不亮已一周。",
    "citizen_name": "孙先生",
    "citizen_phone": "13900000001",
}


def _ws(slug: str) -> int:
    with system_session() as db:
        found = db.scalar(select(Workspace.id).where(Workspace.slug == slug))
    assert found
    return found


def _case(source_id: str) -> Case:
    with system_session() as db:
        case = db.scalar(select(Case).where(Case.source_id == source_id))
    assert case is not None
    return case


def _assignments(case_id: int) -> list[Assignment]:
    with system_session() as db:
        return list(
            db.scalars(select(Assignment).where(Assignment.case_id == case_id).order_by(Assignment.id))
        )


def _version(client, url: str) -> str:  # type: ignore[no-untyped-def]
    match = re.search(r'name="version" value="(\d+)"', client.get(url).text)
    assert match, url
    return match.group(1)


def register_and_dispatch(clerk, source_id: str, lead: str = "horqin", co: tuple[str, ...] = ()) -> Case:  # type: ignore[no-untyped-def]
    assert post(clerk, "/cases", {**MESSAGE, "source_id": source_id}).status_code == 303
    case = _case(source_id)
    data: dict[str, object] = {
        "lead_unit_id": str(_ws(lead)),
        "co_unit_ids": [str(_ws(c)) for c in co],
        "version": str(case.version),
    }
    response = post(clerk, f"/cases/{case.id}/act/dispatch", data)  # type: ignore[arg-type]
    assert response.status_code == 303, response.text
    return _case(source_id)


def _db_version(model: type, object_id: int) -> str:
    with system_session() as db:
        return str(db.get(model, object_id).version)  # type: ignore[union-attr]


def act(client, assignment_id: int, action: str, **data: str):  # type: ignore[no-untyped-def]
    """As the form does: post the version of the object as the person last saw it."""
    version = _db_version(Assignment, assignment_id)
    return post(client, f"/inbox/{assignment_id}/act/{action}", {"version": version, **data})


def case_act(client, case_id: int, action: str, **data: str):  # type: ignore[no-untyped-def]
    version = _db_version(Case, case_id)
    return post(client, f"/cases/{case_id}/act/{action}", {"version": version, **data})


@pytest.fixture()
def people(make_client):  # type: ignore[no-untyped-def]
    names = [
        "zx.clerk",
        "zx.reviewer",
        "horqin.handler",
        "horqin.deputy",
        "horqin.principal",
        "housing.handler",
    ]
    clients = {}
    for name in names:
        clients[name] = make_client()
        assert sign_in(clients[name], name).status_code == 303
    return clients


def test_the_same_source_id_is_never_registered_twice(people) -> None:  # type: ignore[no-untyped-def]
    clerk = people["zx.clerk"]
    assert post(clerk, "/cases", {**MESSAGE, "source_id": "DUP-1"}).status_code == 303
    again = post(clerk, "/cases", {**MESSAGE, "source_id": "DUP-1"})
    assert again.status_code == 422 and "已登记，不能重复登记" in again.text
    with system_session() as db:
        assert len(db.scalars(select(Case).where(Case.source_id == "DUP-1")).all()) == 1


def test_registration_refuses_bad_input_in_chinese_and_keeps_what_was_typed(people) -> None:  # type: ignore[no-untyped-def]
    bad = post(people["zx.clerk"], "/cases", {**MESSAGE, "source_id": "BAD-1", "posted_at": "昨天"})
    assert bad.status_code == 422 and "留言时间格式" in bad.text and "建国路路灯" in bad.text
    future = post(people["zx.clerk"], "/cases", {**MESSAGE, "source_id": "BAD-2", "posted_at": "2099-01-01"})
    assert "不能晚于当前时间" in future.text


def test_a_decline_needs_a_statutory_reason_an_explanation_and_a_suggestion(people) -> None:  # type: ignore[no-untyped-def]
    clerk = people["zx.clerk"]
    post(clerk, "/cases", {**MESSAGE, "source_id": "DEC-1"})
    case = _case("DEC-1")
    refused = case_act(clerk, case.id, "decline", reason="i_dont_like_it", explanation="x", suggestion="y")
    assert refused.status_code == 422 and "第五条" in refused.text
    assert _case("DEC-1").state == "received"
    no_suggestion = case_act(
        clerk, case.id, "decline", reason="out_of_scope", explanation="不属于本市", suggestion=""
    )
    assert "请给出合理建议" in no_suggestion.text
    done = case_act(
        clerk,
        case.id,
        "decline",
        reason="out_of_scope",
        explanation="不属于本市",
        suggestion="请向自治区有关部门反映",
    )
    assert done.status_code == 303 and _case("DEC-1").state == "declined"


def test_dispatch_issues_a_numbered_sheet_due_in_five_working_days(people) -> None:  # type: ignore[no-untyped-def]
    case = register_and_dispatch(people["zx.clerk"], "DIS-1", lead="horqin", co=("housing",))
    assert re.fullmatch(r"通留〔\d{4}〕\d+号", case.sheet_number or "")
    assert case.due_date == add_working_days(local_date(case.dispatched_at), 5)  # type: ignore[arg-type]
    lead, co = _assignments(case.id)
    assert lead.is_lead and not co.is_lead and lead.sheet_number == co.sheet_number == case.sheet_number
    # The next sheet gets the next number.
    second = register_and_dispatch(people["zx.clerk"], "DIS-2")
    n1 = int(re.search(r"〕(\d+)号", case.sheet_number).group(1))  # type: ignore[arg-type,union-attr]
    n2 = int(re.search(r"〕(\d+)号", second.sheet_number).group(1))  # type: ignore[arg-type,union-attr]
    assert n2 == n1 + 1


def test_five_working_days_skip_the_weekend() -> None:
    assert add_working_days(date(2026, 11, 27), 5) == date(2026, 12, 4)  # Friday → next Friday
    assert add_working_days(date(2026, 11, 28), 5) == date(2026, 12, 4)  # Saturday: counting starts Monday
    assert add_working_days(date(2026, 11, 25), 5) == date(2026, 12, 2)  # Wednesday → next Wednesday


def test_only_the_lead_unit_replies_and_co_units_report_to_it(people) -> None:  # type: ignore[no-untyped-def]
    case = register_and_dispatch(people["zx.clerk"], "LEAD-1", lead="horqin", co=("housing",))
    lead, co = _assignments(case.id)
    housing = people["housing.handler"]
    act(housing, co.id, "receive")
    refused = act(housing, co.id, "request_signoff")
    assert refused.status_code == 422
    assert act(housing, co.id, "contribute", text="已督促热力公司检修管网。").status_code == 303
    page = people["horqin.handler"].get(f"/inbox/{lead.id}").text
    assert "市住建局" in page and "已督促热力公司检修管网" in page


def to_signoff(handler, assignment_id: int, reply_text: str = "经核实，路灯已于今日修复。") -> None:  # type: ignore[no-untyped-def]
    """The handler receives the assignment, drafts the reply and asks the principal to sign."""
    assert act(handler, assignment_id, "receive").status_code == 303
    assert act(handler, assignment_id, "save_draft", reply_text=reply_text).status_code == 303
    assert act(handler, assignment_id, "request_signoff").status_code == 303


def _through_signoff(people, source_id: str) -> tuple[Case, Assignment]:  # type: ignore[no-untyped-def]
    case = register_and_dispatch(people["zx.clerk"], source_id)
    (assignment,) = _assignments(case.id)
    handler, principal = people["horqin.handler"], people["horqin.principal"]
    to_signoff(handler, assignment.id)
    assert act(principal, assignment.id, "sign", signature=demo_signature_png()).status_code == 303
    return _case(source_id), _assignments(case.id)[0]


def test_the_principal_signs_and_seals_and_the_reply_reaches_the_centre(people) -> None:  # type: ignore[no-untyped-def]
    case, assignment = _through_signoff(people, "SIGN-1")
    assert assignment.state == "submitted" and assignment.signed_version == assignment.draft_version
    assert case.state == "under_review"
    assert case.reply_text == "经核实，路灯已于今日修复。" and case.reply_signature.startswith(
        "data:image/png"
    )
    assert case.reply_handler_name and case.reply_handler_phone  # 第十二条: the handler's contact data


def test_a_handler_cannot_sign_and_a_blank_signature_is_refused(people) -> None:  # type: ignore[no-untyped-def]
    case = register_and_dispatch(people["zx.clerk"], "SIGN-2")
    (assignment,) = _assignments(case.id)
    handler, principal = people["horqin.handler"], people["horqin.principal"]
    act(handler, assignment.id, "receive")
    act(handler, assignment.id, "save_draft", reply_text="答复")
    act(handler, assignment.id, "request_signoff")
    assert act(handler, assignment.id, "sign", signature=demo_signature_png()).status_code == 422
    import base64
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGBA", (400, 150), (255, 255, 255, 0)).save(buf, format="PNG")
    blank = "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()
    assert signature_problem(blank) == "签名为空，请在签名板上手写签名。"
    refused = act(principal, assignment.id, "sign", signature=blank)
    assert refused.status_code == 422 and "签名为空" in refused.text
    assert _assignments(case.id)[0].state == "awaiting_signoff"


def test_an_edit_after_signing_voids_the_signature(people) -> None:  # type: ignore[no-untyped-def]
    case, assignment = _through_signoff(people, "EDIT-1")
    reviewer = people["zx.reviewer"]
    assert (
        case_act(
            reviewer, case.id, "send_back", quality_flag="perfunctory", comment="请说明修复时间"
        ).status_code
        == 303
    )
    reopened = _assignments(case.id)[0]
    assert reopened.state == "handling" and reopened.quality_flag == "perfunctory"
    act(
        people["horqin.handler"],
        assignment.id,
        "save_draft",
        reply_text="路灯已于11月26日修复，并排查了同路段其他路灯。",
    )
    edited = _assignments(case.id)[0]
    assert edited.signed_version is None and edited.signature == ""
    assert edited.draft_version == assignment.draft_version + 1
    # It goes back to the centre only after a new signature.
    act(people["horqin.handler"], assignment.id, "request_signoff")
    assert _case("EDIT-1").state == "assigned"
    act(people["horqin.principal"], assignment.id, "sign", signature=demo_signature_png())
    assert _case("EDIT-1").state == "under_review"


def test_an_accepted_reply_is_published_the_same_day_and_the_work_is_closed(people) -> None:  # type: ignore[no-untyped-def]
    case, _ = _through_signoff(people, "PUB-1")
    assert case_act(people["zx.reviewer"], case.id, "publish").status_code == 303
    published = _case("PUB-1")
    assert published.state == "published"
    assert local_date(published.published_at) == local_date(utcnow())  # type: ignore[arg-type]
    assert _assignments(case.id)[0].state == "closed"
    # A clerk cannot publish: review is the reviewer's (第七条: replies are reviewed before publication).
    case2, _ = _through_signoff(people, "PUB-2")
    assert case_act(people["zx.clerk"], case2.id, "publish").status_code == 422


def test_archived_cases_are_read_only(people) -> None:  # type: ignore[no-untyped-def]
    case, _ = _through_signoff(people, "ARC-1")
    reviewer = people["zx.reviewer"]
    case_act(reviewer, case.id, "publish")
    assert case_act(reviewer, case.id, "archive").status_code == 303
    page = reviewer.get(f"/cases/{case.id}").text
    assert "已归档" in page and "/act/" not in page
    refused = post(reviewer, f"/cases/{case.id}/act/publish", {})
    assert refused.status_code == 422 and _case("ARC-1").state == "archived"


def test_return_must_be_filed_on_the_day_of_receipt(people) -> None:  # type: ignore[no-untyped-def]
    case = register_and_dispatch(people["zx.clerk"], "RET-1")
    (assignment,) = _assignments(case.id)
    handler = people["horqin.handler"]
    act(handler, assignment.id, "receive")
    with system_session() as db:
        row = db.get(Assignment, assignment.id)
        row.received_at = utcnow() - timedelta(days=1)  # type: ignore[union-attr]
    refused = act(handler, assignment.id, "draft_return", reason="不属于本单位职责")
    assert refused.status_code == 422 and "收到承办单当日" in refused.text
    assert _assignments(case.id)[0].state == "handling"


def test_return_signed_by_the_deputy_goes_back_for_redispatch(people) -> None:  # type: ignore[no-untyped-def]
    clerk = people["zx.clerk"]
    case = register_and_dispatch(clerk, "RET-2")
    (assignment,) = _assignments(case.id)
    assert (
        act(people["horqin.handler"], assignment.id, "draft_return", reason="属于住建部门职责").status_code
        == 303
    )
    # Only the deputy leader signs a return (第十五条), not the principal.
    assert (
        act(
            people["horqin.principal"], assignment.id, "sign_return", signature=demo_signature_png()
        ).status_code
        == 422
    )
    assert (
        act(people["horqin.deputy"], assignment.id, "sign_return", signature=demo_signature_png()).status_code
        == 303
    )
    assert _assignments(case.id)[0].state == "return_requested"
    assert case_act(clerk, case.id, "accept_return", assignment_id=str(assignment.id)).status_code == 303
    back = _case("RET-2")
    assert back.state == "received" and back.sheet_number is None
    assert _assignments(case.id)[0].state == "returned"
    # Re-dispatched: a new sheet, a new round, the returning unit on record.
    response = post(
        clerk,
        f"/cases/{case.id}/act/dispatch",
        {"lead_unit_id": str(_ws("housing")), "version": str(back.version)},
    )
    assert response.status_code == 303
    rows = _assignments(case.id)
    assert [(a.round, a.state) for a in rows] == [(1, "returned"), (2, "pending")]
    with system_session() as db:
        actions = list(db.scalars(select(TimelineEntry.action).where(TimelineEntry.case_id == case.id)))
    assert "accept_return" in actions and "return_accepted" in actions


def test_extension_is_at_most_three_working_days_and_approved_level_by_level(people) -> None:  # type: ignore[no-untyped-def]
    clerk, handler, deputy = people["zx.clerk"], people["horqin.handler"], people["horqin.deputy"]
    case = register_and_dispatch(clerk, "EXT-1")
    (assignment,) = _assignments(case.id)
    act(handler, assignment.id, "receive")
    too_long = act(handler, assignment.id, "request_extension", days="4", reason="需要现场核查")
    assert too_long.status_code == 422 and "1 至 3 个工作日" in too_long.text
    assert (
        act(handler, assignment.id, "request_extension", days="3", reason="需要现场核查").status_code == 303
    )
    # The centre cannot decide before the unit's leader has endorsed it (逐级).
    early = case_act(clerk, case.id, "approve_extension", assignment_id=str(assignment.id), days="3")
    assert early.status_code == 422
    assert act(deputy, assignment.id, "endorse_extension").status_code == 303
    more = case_act(clerk, case.id, "approve_extension", assignment_id=str(assignment.id), days="4")
    assert more.status_code == 422
    assert (
        case_act(clerk, case.id, "approve_extension", assignment_id=str(assignment.id), days="2").status_code
        == 303
    )
    extended = _assignments(case.id)[0]
    assert extended.state == "handling" and extended.extension_days == 2
    assert extended.due_date == add_working_days(assignment.due_date, 2)
    assert _case("EXT-1").due_date == extended.due_date
    # Only once.
    again = act(handler, assignment.id, "request_extension", days="1", reason="再延一天")
    assert again.status_code == 422 and "已延期过一次" in again.text


def test_extension_must_be_asked_before_the_due_date(people) -> None:  # type: ignore[no-untyped-def]
    case = register_and_dispatch(people["zx.clerk"], "EXT-2")
    (assignment,) = _assignments(case.id)
    act(people["horqin.handler"], assignment.id, "receive")
    with system_session() as db:
        row = db.get(Assignment, assignment.id)
        row.due_date = local_date(datetime.now(UTC)) - timedelta(days=1)  # type: ignore[union-attr]
    late = act(people["horqin.handler"], assignment.id, "request_extension", days="1", reason="来不及")
    assert late.status_code == 422 and "已超过办理时限" in late.text


def test_the_second_of_two_concurrent_actions_changes_nothing(people, make_client) -> None:  # type: ignore[no-untyped-def]
    clerk = people["zx.clerk"]
    other = make_client()
    sign_in(other, "zx.clerk")
    post(clerk, "/cases", {**MESSAGE, "source_id": "CON-1"})
    case = _case("CON-1")
    stale_version = str(case.version)  # both clerks have the page open
    first = post(
        clerk,
        f"/cases/{case.id}/act/dispatch",
        {"lead_unit_id": str(_ws("horqin")), "version": stale_version},
    )
    assert first.status_code == 303
    second = post(
        other,
        f"/cases/{case.id}/act/decline",
        {"reason": "out_of_scope", "explanation": "x", "suggestion": "y", "version": stale_version},
    )
    assert second.status_code in {409, 422}
    assert "该办件已被他人处理" in second.text or "当前状态下不能执行" in second.text
    same_state = post(
        other, f"/cases/{case.id}/act/dispatch", {"lead_unit_id": str(_ws("kailu")), "version": stale_version}
    )
    assert same_state.status_code in {409, 422}
    after = _case("CON-1")
    assert after.state == "assigned" and len(_assignments(case.id)) == 1


def test_a_stale_version_is_a_conflict(people) -> None:  # type: ignore[no-untyped-def]
    clerk = people["zx.clerk"]
    case = register_and_dispatch(clerk, "CON-2")
    (assignment,) = _assignments(case.id)
    handler = people["horqin.handler"]
    version = _version(handler, f"/inbox/{assignment.id}")
    assert post(handler, f"/inbox/{assignment.id}/act/receive", {"version": version}).status_code == 303
    stale = post(handler, f"/inbox/{assignment.id}/act/save_draft", {"version": version, "reply_text": "x"})
    assert stale.status_code == 409 and "该办件已被他人处理" in stale.text


def test_units_see_only_their_own_assignments(people) -> None:  # type: ignore[no-untyped-def]
    case = register_and_dispatch(people["zx.clerk"], "ISO-1", lead="horqin")
    (assignment,) = _assignments(case.id)
    housing = people["housing.handler"]
    assert housing.get(f"/inbox/{assignment.id}").status_code == 404
    assert "ISO-1" not in housing.get("/inbox").text and "路灯不亮" not in housing.get("/inbox").text
    assert post(housing, f"/inbox/{assignment.id}/act/receive", {}).status_code == 404
    assert housing.get(f"/cases/{case.id}").status_code == 403


def test_a_special_case_is_answered_with_an_explanation_only_with_the_centres_consent(people) -> None:  # type: ignore[no-untyped-def]
    clerk, handler = people["zx.clerk"], people["horqin.handler"]
    case = register_and_dispatch(clerk, "EXP-1")
    (assignment,) = _assignments(case.id)
    act(handler, assignment.id, "receive")
    assert act(handler, assignment.id, "request_explanation", reason="").status_code == 422
    assert act(handler, assignment.id, "request_explanation", reason="涉及历史遗留问题").status_code == 303
    assert _assignments(case.id)[0].state == "explanation_requested"
    # Nothing can be drafted or signed while the centre decides.
    assert act(handler, assignment.id, "save_draft", reply_text="x").status_code == 422
    refused = case_act(clerk, case.id, "refuse_explanation", assignment_id=str(assignment.id), comment="")
    assert refused.status_code == 422
    assert (
        case_act(clerk, case.id, "consent_explanation", assignment_id=str(assignment.id)).status_code == 303
    )
    consented = _assignments(case.id)[0]
    assert consented.state == "handling" and consented.explanation_consented
    act(handler, assignment.id, "save_draft", reply_text="经核实，该问题涉及历史遗留，现向您说明如下……")
    act(handler, assignment.id, "request_signoff")
    act(people["horqin.principal"], assignment.id, "sign", signature=demo_signature_png())
    delivered = _case("EXP-1")
    assert delivered.state == "under_review" and delivered.reply_is_explanation
    assert "解释说明（第十八条" in people["zx.reviewer"].get(f"/cases/{case.id}").text


def test_a_unit_names_its_sections_and_routes_an_assignment_on_receipt(people, make_client) -> None:  # type: ignore[no-untyped-def]
    from app.accounts.models import User
    from app.tenants.models import Section

    admin = make_client()
    sign_in(admin, "horqin.admin")
    assert post(admin, "/staff/sections", {"section_name": "城建科"}).status_code == 303
    again = post(admin, "/staff/sections", {"section_name": "城建科"})
    assert again.status_code == 422 and "已有同名科室" in again.text
    assert post(people["horqin.handler"], "/staff/sections", {"section_name": "x"}).status_code == 403
    with system_session() as db:
        own = db.scalar(select(Section.id).where(Section.name == "城建科"))
        foreign = db.scalar(select(Section.id).where(Section.workspace_id == _ws("naiman")))
        handler = db.scalar(select(User.id).where(User.username == "horqin.handler"))
        other_handler = db.scalar(select(User.id).where(User.username == "naiman.handler"))
    case = register_and_dispatch(people["zx.clerk"], "ROUTE-1")
    (assignment,) = _assignments(case.id)
    principal = people["horqin.principal"]
    wrong_section = act(principal, assignment.id, "receive", section_id=str(foreign), handler_id=str(handler))
    assert wrong_section.status_code == 422 and "本单位的科室" in wrong_section.text
    wrong_handler = act(
        principal, assignment.id, "receive", section_id=str(own), handler_id=str(other_handler)
    )
    assert wrong_handler.status_code == 422 and "本单位的经办人" in wrong_handler.text
    assert _assignments(case.id)[0].state == "pending"
    assert (
        act(principal, assignment.id, "receive", section_id=str(own), handler_id=str(handler)).status_code
        == 303
    )
    routed = _assignments(case.id)[0]
    assert (routed.state, routed.section_id, routed.handler_id) == ("handling", own, handler)
    assert "城建科" in people["horqin.handler"].get(f"/inbox/{assignment.id}").text


def test_triage_classifies_a_message_before_dispatch_only(people) -> None:  # type: ignore[no-untyped-def]
    clerk = people["zx.clerk"]
    post(clerk, "/cases", {**MESSAGE, "source_id": "CLS-1"})
    case = _case("CLS-1")
    bad = post(clerk, f"/cases/{case.id}/classify", {"category": "gossip", "topic": "", "region": ""})
    assert bad.status_code == 422 and "请选择留言类别" in bad.text
    ok = post(
        clerk,
        f"/cases/{case.id}/classify",
        {"category": "complain", "topic": "城市管理", "region": "科尔沁区"},
    )
    assert ok.status_code == 303
    classified = _case("CLS-1")
    assert (classified.category, classified.topic, classified.region) == ("complain", "城市管理", "科尔沁区")
    assert (
        post(people["horqin.handler"], f"/cases/{case.id}/classify", {"category": "other"}).status_code == 403
    )
    dispatched = register_and_dispatch(clerk, "CLS-2")
    late = post(clerk, f"/cases/{dispatched.id}/classify", {"category": "other", "topic": "", "region": ""})
    assert late.status_code == 422 and "待交办" in late.text


def test_a_step_without_the_version_seen_is_refused_and_changes_nothing(people) -> None:  # type: ignore[no-untyped-def]
    clerk = people["zx.clerk"]
    post(clerk, "/cases", {**MESSAGE, "source_id": "VER-1"})
    case = _case("VER-1")
    refused = post(clerk, f"/cases/{case.id}/act/dispatch", {"lead_unit_id": str(_ws("horqin"))})
    assert refused.status_code == 422 and "请刷新页面" in refused.text
    assert _case("VER-1").state == "received" and _assignments(case.id) == []
