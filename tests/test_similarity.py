"""第五条: 正在办理过程中或办理完毕的重复事项 may be declined — the centre sees similar earlier messages
when it triages, and links a case as a duplicate of an earlier one."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from app.audit.models import AuditEvent
from app.cases import similarity
from app.cases.models import Case
from app.cases.similarity import Candidate, document, normalise, rank, score_candidates, text_similarity
from app.db import system_session
from tests.helpers import post, sign_in

HEATING = "明仁小区供暖温度不达标"
HEATING_BODY = (
    "入冬以来我家所在的科尔沁区明仁小区3号楼室温一直只有15度左右，多次给热力公司打电话没有结果，"
    "家里有老人和孩子，请领导帮忙协调解决。"
)
PARAPHRASE = "明仁小区暖气不热，供暖温度太低"
PARAPHRASE_BODY = "科尔沁区明仁小区5号楼今年供暖以来室温只有十四五度，供暖温度不达标，热力公司一直不解决。"
UNRELATED = "个体工商户电子发票开具咨询"
UNRELATED_BODY = "个体工商户如何在电子税务局开具数电发票？需要先办理什么手续？"


# --- scoring, pure -------------------------------------------------------------------------------


def test_identical_messages_score_one() -> None:
    assert text_similarity(HEATING + HEATING_BODY, HEATING + HEATING_BODY) == pytest.approx(1.0)
    same = document(HEATING, HEATING_BODY)
    assert rank(same, [document(HEATING, HEATING_BODY)]) == [pytest.approx(1.0)]


def test_unrelated_messages_score_about_zero() -> None:
    assert text_similarity(HEATING + HEATING_BODY, UNRELATED + UNRELATED_BODY) < 0.05
    assert rank(document(HEATING, HEATING_BODY), [document(UNRELATED, UNRELATED_BODY)])[0] < 0.05


def test_a_paraphrase_sharing_key_phrases_scores_above_an_unrelated_message() -> None:
    paraphrase = text_similarity(HEATING + HEATING_BODY, PARAPHRASE + PARAPHRASE_BODY)
    unrelated = text_similarity(HEATING + HEATING_BODY, UNRELATED + UNRELATED_BODY)
    assert paraphrase > 0.2 > unrelated
    ranked = rank(
        document(PARAPHRASE, PARAPHRASE_BODY),
        [document(UNRELATED, UNRELATED_BODY), document(HEATING, HEATING_BODY)],
    )
    assert ranked[1] > 0.2 > ranked[0]


def test_punctuation_whitespace_full_width_and_latin_case_do_not_matter() -> None:
    assert normalise("明仁小区３号楼，室温１５度！ WiFi\u3000信号") == "明仁小区3号楼室温15度wifi信号"
    a = "明仁小区 3号楼：室温15度。WiFi（信号）差"
    b = "明仁小区３号楼室温１５度ＷＩＦＩ信号差！！"
    assert text_similarity(a, b) == pytest.approx(1.0)


def test_the_title_weighs_more_than_the_body() -> None:
    query = document("供暖温度不达标", "请帮忙解决。")
    in_title = document("供暖温度不达标", "另有其他事情说明。")
    in_body = document("另有其他事情说明", "供暖温度不达标。")
    assert rank(query, [in_title, in_body])[0] > rank(query, [in_title, in_body])[1]


def test_phrases_every_message_has_count_for_little() -> None:
    # 「请领导帮忙」 is in every message of the pool; 「暖气不热」 only in one.
    query = document("暖气不热", "请领导帮忙")
    pool = [document("暖气不热", "另外一件"), document("道路坑洼", "请领导帮忙")]
    pool += [document(f"其他事项{i}", "请领导帮忙") for i in range(5)]
    scores = rank(query, pool)
    assert scores[0] > scores[1]


def test_same_region_and_topic_are_a_small_bonus_that_never_lifts_an_unrelated_message() -> None:
    now = datetime(2026, 11, 20, tzinfo=UTC)
    query = Candidate(0, now, PARAPHRASE, PARAPHRASE_BODY, "科尔沁区", "城乡建设")
    near_other_region = Candidate(1, now, HEATING, HEATING_BODY, "开鲁县", "教育")
    near_same_region = Candidate(2, now, HEATING, HEATING_BODY, "科尔沁区", "城乡建设")
    unrelated_same_region = Candidate(3, now, UNRELATED, UNRELATED_BODY, "科尔沁区", "城乡建设")
    scores = dict(score_candidates(query, [near_other_region, near_same_region, unrelated_same_region]))
    assert scores[2] > scores[1]
    assert scores[2] <= min(1.0, scores[1] * 1.2 + 1e-9)
    assert scores[3] < 0.05


# --- through the app -----------------------------------------------------------------------------

NEW_MESSAGE = {
    "board": "mayor",
    "posted_at": "2026-11-25 08:30",
    "category": "complain",
    "topic": "城乡建设",
    "region": "科尔沁区",
    "title": PARAPHRASE,
    "body": PARAPHRASE_BODY,
    "citizen_name": "韩女士",
    "citizen_phone": "13900000077",
}


def _case(source_id: str) -> Case:
    with system_session() as db:
        case = db.scalar(select(Case).where(Case.source_id == source_id))
    assert case is not None
    return case


def _register(clerk, source_id: str, **fields: str) -> Case:  # type: ignore[no-untyped-def]
    response = post(clerk, "/cases", {**NEW_MESSAGE, "source_id": source_id, **fields})
    assert response.status_code == 303, response.text
    return _case(source_id)


def _audit(action: str, case_id: int) -> list[AuditEvent]:
    with system_session() as db:
        return list(
            db.scalars(
                select(AuditEvent).where(AuditEvent.action == action, AuditEvent.target == f"case:{case_id}")
            )
        )


def _similar_rows(html: str) -> list[str]:
    return re.findall(r'<tr data-testid="similar-row">(.*?)</tr>', html, flags=re.S)


@pytest.fixture()
def clerk(client):  # type: ignore[no-untyped-def]
    assert sign_in(client, "zx.clerk").status_code == 303
    return client


def test_the_demo_heating_complaint_is_listed_first_with_a_score(clerk) -> None:  # type: ignore[no-untyped-def]
    case = _register(clerk, "TL-SIM-0001")
    html = clerk.get(f"/cases/{case.id}").text
    assert "相似留言" in html
    rows = _similar_rows(html)
    assert rows, html
    assert HEATING in rows[0]
    assert "TL-2026-110301" in rows[0]
    assert "办理中" in rows[0]  # the demo heating case was dispatched
    score = int(re.search(r'data-testid="similar-score">(\d+)%', rows[0]).group(1))  # type: ignore[union-attr]
    assert 20 <= score <= 100
    assert "标记为重复" in rows[0]
    assert all(UNRELATED not in row for row in rows)


def test_marking_a_duplicate_links_it_preselects_the_decline_reason_and_is_audited(clerk) -> None:  # type: ignore[no-untyped-def]
    case = _register(clerk, "TL-SIM-0002")
    heating = _case("TL-2026-110301")
    response = post(clerk, f"/cases/{case.id}/duplicate", {"original_id": str(heating.id)})
    assert response.status_code == 303, response.text
    assert _case("TL-SIM-0002").duplicate_of_id == heating.id
    assert _case("TL-SIM-0002").state == "received"  # not a state change
    [event] = _audit("case.duplicate_marked", case.id)
    assert event.detail["original_id"] == heating.id

    html = clerk.get(f"/cases/{case.id}").text
    assert f'已标记为重复留言：<a href="/cases/{heating.id}">{HEATING}</a>' in html
    assert '<option value="duplicate" selected>正在办理过程中或办理完毕的重复事项</option>' in html

    # The clerk changes their mind: the link is undone, and that is audited too.
    response = post(clerk, f"/cases/{case.id}/duplicate", {"original_id": ""})
    assert response.status_code == 303, response.text
    assert _case("TL-SIM-0002").duplicate_of_id is None
    assert _audit("case.duplicate_unmarked", case.id)
    html = clerk.get(f"/cases/{case.id}").text
    assert "已标记为重复留言" not in html
    assert "selected>正在办理过程中" not in html


def test_a_case_cannot_be_marked_a_duplicate_of_itself(clerk) -> None:  # type: ignore[no-untyped-def]
    case = _register(clerk, "TL-SIM-0003")
    response = post(clerk, f"/cases/{case.id}/duplicate", {"original_id": str(case.id)})
    assert response.status_code == 422
    assert "不能把留言标记为它自己的重复" in response.text
    assert _case("TL-SIM-0003").duplicate_of_id is None
    assert not _audit("case.duplicate_marked", case.id)


def test_two_cases_cannot_be_duplicates_of_each_other(clerk) -> None:  # type: ignore[no-untyped-def]
    first = _register(clerk, "TL-SIM-0004")
    second = _register(clerk, "TL-SIM-0005")
    third = _register(clerk, "TL-SIM-0006")
    assert post(clerk, f"/cases/{second.id}/duplicate", {"original_id": str(first.id)}).status_code == 303
    assert post(clerk, f"/cases/{third.id}/duplicate", {"original_id": str(second.id)}).status_code == 303
    for original in (second, third):  # directly, and through a chain
        response = post(clerk, f"/cases/{first.id}/duplicate", {"original_id": str(original.id)})
        assert response.status_code == 422
        assert "不能互相标记" in response.text
    assert _case("TL-SIM-0004").duplicate_of_id is None


@pytest.mark.parametrize("original_id", ["1000000", "abc", "99999999999999999999", "１２"])
def test_linking_to_a_case_that_does_not_exist_is_refused(clerk, original_id: str) -> None:  # type: ignore[no-untyped-def]
    case = _register(clerk, "TL-SIM-0007")
    response = post(clerk, f"/cases/{case.id}/duplicate", {"original_id": original_id})
    assert response.status_code == 422
    assert "原留言" in response.text


def test_unlinking_a_case_that_is_not_linked_is_refused(clerk) -> None:  # type: ignore[no-untyped-def]
    case = _register(clerk, "TL-SIM-0008")
    response = post(clerk, f"/cases/{case.id}/duplicate", {})
    assert response.status_code == 422
    assert "没有标记为重复留言" in response.text


def test_only_a_case_waiting_for_triage_is_linked_or_shows_similar_messages(clerk) -> None:  # type: ignore[no-untyped-def]
    heating, road = _case("TL-2026-110301"), _case("TL-2026-110302")
    response = post(clerk, f"/cases/{heating.id}/duplicate", {"original_id": str(road.id)})
    assert response.status_code == 422
    assert "只有待交办的留言" in response.text
    assert 'data-testid="similar"' not in clerk.get(f"/cases/{heating.id}").text


def test_a_unit_cannot_mark_the_centres_cases(make_client) -> None:  # type: ignore[no-untyped-def]
    clerk = make_client()
    sign_in(clerk, "zx.clerk")
    case = _register(clerk, "TL-SIM-0009")
    heating = _case("TL-2026-110301")
    handler = make_client()
    assert sign_in(handler, "horqin.handler").status_code == 303
    response = post(handler, f"/cases/{case.id}/duplicate", {"original_id": str(heating.id)})
    assert response.status_code == 403
    assert _case("TL-SIM-0009").duplicate_of_id is None


def test_the_pool_reaches_back_one_year_only(demo) -> None:  # type: ignore[no-untyped-def]
    """The documented trade-off: a duplicate registered more than WINDOW_DAYS earlier is not a candidate."""
    with system_session() as db:
        heating = db.scalar(select(Case).where(Case.source_id == "TL-2026-110301"))
        assert heating is not None
        old = Case(
            workspace_id=heating.workspace_id,
            board="mayor",
            source_id="TL-SIM-OLD",
            title=HEATING,
            body=HEATING_BODY,
            posted_at=heating.posted_at - timedelta(days=800),
            registered_at=heating.registered_at - timedelta(days=similarity.WINDOW_DAYS + 30),
            category="consult",
            region=heating.region,
            topic=heating.topic,
        )
        db.add(old)
        db.flush()
        ids = {c.id for c in similarity.candidate_pool(db, heating)}
        assert old.id not in ids
        assert heating.id not in ids
        assert ids  # the other demo cases are
