"""满意率回访 (第十八条): the citizen rates the reply to their message, once, through a personal link
the centre sends, or the centre records what they said on the telephone.

The link's token is stored only as its SHA-256; it is shown once, to the clerk who made it. A
second rating is refused, an expired or unknown link is not found, a token rates only its own
case, and only the centre's clerk and reviewer make links or record ratings.
"""

from __future__ import annotations

import hashlib
import itertools
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from app.audit.models import AuditEvent
from app.cases.models import Case
from app.db import system_session
from app.public import satisfaction, stats
from app.public.models import Rating, RatingInvite
from app.tenants.models import Workspace
from app.tenants.scope import TenantContext, bind_tenant
from tests.helpers import post, sign_in

FEES = "TL-2026-110306"  # published by the demo through the whole workflow
HEATING = "TL-2026-110301"  # dispatched in the demo, not answered
EMPTY = "TL-2026-110305"  # declined in the demo
LINK = re.compile(r'id="rating-link"[^>]* value="(https?://[^"]+/rate/([A-Za-z0-9_-]+))"')

_serial = itertools.count(1)


def _case_id(source_id: str) -> int:
    with system_session() as db:
        found = db.scalar(select(Case.id).where(Case.source_id == source_id))
    assert found
    return int(found)


def _published(title: str, *, reply_text: str = "经核实，已妥善处理。", private: bool = False) -> int:
    """A case as publication leaves it (the workflow itself is tested elsewhere)."""
    now = datetime.now(UTC)
    with system_session() as db:
        centre = db.scalar(select(Workspace.id).where(Workspace.slug == "portal-centre"))
        unit = db.scalar(select(Workspace.id).where(Workspace.slug == "horqin"))
        case = Case(
            workspace_id=centre,
            board="mayor",
            source_id=f"SAT-{next(_serial)}",
            title=title,
            body="留言内容。",
            posted_at=now - timedelta(days=4),
            category="consult",
            state="published",
            citizen_name="孙先生",
            citizen_phone="13847512345",
            dispatched_at=now - timedelta(days=3),
            due_date=(now + timedelta(days=2)).date(),
            reply_text=reply_text,
            reply_private=private,
            reply_unit_id=unit,
            reply_submitted_at=now - timedelta(days=1),
            published_at=now - timedelta(hours=2),
        )
        db.add(case)
        db.flush()
        return case.id


def _make_link(client: Any, case_id: int) -> tuple[str, str]:
    response = post(client, f"/cases/{case_id}/satisfaction/link")
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    found = LINK.search(response.text)
    assert found, "the page shows the new link"
    return found.group(1), found.group(2)


def _rating(case_id: int) -> Rating | None:
    with system_session() as db:
        return db.scalar(select(Rating).where(Rating.case_id == case_id))


def _events(action: str) -> list[AuditEvent]:
    with system_session() as db:
        return list(db.scalars(select(AuditEvent).where(AuditEvent.action == action)))


@pytest.fixture()
def clerk(make_client):  # type: ignore[no-untyped-def]
    c = make_client()
    assert sign_in(c, "zx.clerk").status_code == 303
    return c


@pytest.fixture()
def visitor(make_client):  # type: ignore[no-untyped-def]
    return make_client()


# --- the link, end to end ----------------------------------------------------------------------------


def test_the_centre_sends_a_link_and_the_citizen_rates_the_reply_once(clerk, visitor) -> None:  # type: ignore[no-untyped-def]
    case_id = _case_id(FEES)
    detail = clerk.get(f"/cases/{case_id}")
    assert f'hx-get="/cases/{case_id}/satisfaction"' in detail.text  # the card on the case page
    card = clerk.get(f"/cases/{case_id}/satisfaction", headers={"HX-Request": "true"})
    assert card.status_code == 200 and "<html" not in card.text and "生成回访链接" in card.text

    url, token = _make_link(clerk, case_id)
    assert url.endswith(f"/rate/{token}") and len(token) >= 32
    with system_session() as db:
        invite = db.scalar(select(RatingInvite).where(RatingInvite.case_id == case_id))
        assert invite is not None
        assert invite.token_hash == hashlib.sha256(token.encode()).hexdigest()
        assert invite.expires_at - invite.created_at == timedelta(days=30)
        assert invite.used_at is None
        stored = db.execute(select(AuditEvent.detail, AuditEvent.target)).all()
    assert token not in repr(stored), "the token itself is stored nowhere"
    # Shown once: the page does not show it again.
    assert token not in clerk.get(f"/cases/{case_id}/satisfaction").text

    form = visitor.get(f"/rate/{token}")
    assert form.status_code == 200
    assert form.headers["cache-control"] == "no-store"
    assert "市区学校课后服务收费标准" in form.text and "每生每学期不超过300元" in form.text
    assert 'name="_csrf_token"' in form.text and 'value="basic"' in form.text
    assert "王先生" not in form.text and "陈女士" not in form.text  # no personal data

    done = post(visitor, f"/rate/{token}", {"score": "basic", "comment": "答复及时，希望继续跟进。"})
    assert done.status_code == 200, done.text
    assert "感谢您的评价" in done.text and "基本满意" in done.text
    rating = _rating(case_id)
    assert rating is not None
    assert (rating.score, rating.source, rating.comment, rating.recorded_by_id) == (
        "basic",
        "link",
        "答复及时，希望继续跟进。",
        None,
    )
    with system_session() as db:
        assert db.scalar(select(RatingInvite.used_at).where(RatingInvite.case_id == case_id)) is not None
    events = _events("satisfaction.rated")
    assert [(e.target, e.actor_id, e.detail["source"], e.detail["score"]) for e in events] == [
        (f"case:{case_id}", None, "link", "basic")
    ]
    assert len(_events("satisfaction.link_issued")) == 1

    again = post(visitor, f"/rate/{token}", {"score": "unsatisfied"})
    assert again.status_code == 409
    assert satisfaction.ALREADY_RATED in again.text
    assert visitor.get(f"/rate/{token}").status_code == 409
    assert _rating(case_id).score == "basic"  # type: ignore[union-attr]

    page = clerk.get(f"/cases/{case_id}/satisfaction")
    assert 'data-testid="rating-score">基本满意' in page.text and "答复及时" in page.text
    refused = post(clerk, f"/cases/{case_id}/satisfaction/link")
    assert refused.status_code == 409 and satisfaction.ALREADY_RATED in refused.text


def test_a_rating_without_the_pages_csrf_token_is_refused(clerk, visitor) -> None:  # type: ignore[no-untyped-def]
    _, token = _make_link(clerk, _case_id(FEES))
    visitor.get(f"/rate/{token}")
    response = visitor.post(f"/rate/{token}", data={"score": "satisfied"}, follow_redirects=False)
    assert response.status_code == 403
    assert _rating(_case_id(FEES)) is None


def test_a_token_rates_only_the_case_it_was_made_for(clerk, visitor) -> None:  # type: ignore[no-untyped-def]
    fees, other = _case_id(FEES), _published("道路照明设施维修")
    _, fees_token = _make_link(clerk, fees)
    _, other_token = _make_link(clerk, other)
    assert fees_token != other_token
    # The token is the only key: a case id slipped into the form changes nothing.
    response = post(visitor, f"/rate/{other_token}", {"score": "satisfied", "case_id": str(fees)})
    assert response.status_code == 200
    assert _rating(other) is not None and _rating(other).case_id == other  # type: ignore[union-attr]
    assert _rating(fees) is None
    assert visitor.get(f"/rate/{fees_token}").status_code == 200  # still open for its own case


def test_an_expired_unknown_or_replaced_link_is_not_found(clerk, visitor) -> None:  # type: ignore[no-untyped-def]
    case_id = _case_id(FEES)
    _, old = _make_link(clerk, case_id)
    _, new = _make_link(clerk, case_id)  # a new link replaces the old one
    assert visitor.get(f"/rate/{old}").status_code == 404
    assert visitor.get(f"/rate/{new}").status_code == 200
    with system_session() as db:
        invite = db.scalar(select(RatingInvite).where(RatingInvite.case_id == case_id))
        assert invite is not None
        invite.expires_at = datetime.now(UTC) - timedelta(minutes=1)
    for token in (new, "x" * 32, "no-such-token-1234567890abc", "短"):
        page = visitor.get(f"/rate/{token}")
        assert page.status_code == 404, token
        assert "回访链接无效或已过期" in page.text
    assert post(visitor, f"/rate/{new}", {"score": "satisfied"}).status_code == 404
    assert _rating(case_id) is None


def test_the_rating_page_shows_the_masked_title_and_the_private_reply_note(clerk, visitor) -> None:  # type: ignore[no-untyped-def]
    case_id = _published(
        "我叫孙建国，电话13847512345，反映路灯不亮", private=True, reply_text="已电话答复孙建国。"
    )
    _, token = _make_link(clerk, case_id)
    page = visitor.get(f"/rate/{token}")
    assert "孙**" in page.text and "138****2345" in page.text
    assert "孙建国" not in page.text and "13847512345" not in page.text
    assert "已通过电话/邮件等方式答复留言人" in page.text and "已电话答复" not in page.text


def test_the_citizens_choice_and_comment_are_checked(clerk, visitor) -> None:  # type: ignore[no-untyped-def]
    case_id = _case_id(FEES)
    _, token = _make_link(clerk, case_id)
    for data in ({}, {"score": "excellent"}, {"score": "satisfied", "comment": "很" * 501}):
        response = post(visitor, f"/rate/{token}", data)
        assert response.status_code == 422, data
        assert 'data-testid="form-error"' in response.text
    assert _rating(case_id) is None
    ok = post(visitor, f"/rate/{token}", {"score": "satisfied", "comment": "好" * 500})
    assert ok.status_code == 200
    assert _rating(case_id).comment == "好" * 500  # type: ignore[union-attr]


# --- who may, and when -------------------------------------------------------------------------------


@pytest.mark.parametrize("username", ["horqin.handler", "education.principal", "zx.admin", "dc.supervisor"])
def test_only_the_centres_clerk_and_reviewer_make_links_or_record_ratings(make_client, username: str) -> None:  # type: ignore[no-untyped-def]
    client = make_client()
    assert sign_in(client, username).status_code == 303
    case_id = _case_id(FEES)
    assert post(client, f"/cases/{case_id}/satisfaction/link").status_code == 403
    assert post(client, f"/cases/{case_id}/satisfaction/phone", {"score": "satisfied"}).status_code == 403
    assert _rating(case_id) is None
    with system_session() as db:
        assert db.scalar(select(RatingInvite.id)) is None


def test_the_centre_admin_sees_the_follow_up_but_cannot_record_it(make_client) -> None:  # type: ignore[no-untyped-def]
    client = make_client()
    sign_in(client, "zx.admin")
    page = client.get(f"/cases/{_case_id(FEES)}/satisfaction")
    assert page.status_code == 200 and "尚未回访" in page.text
    assert "生成回访链接</button>" not in page.text and "保存回访结果" not in page.text


def test_only_a_published_reply_is_followed_up(clerk) -> None:  # type: ignore[no-untyped-def]
    for source in (HEATING, EMPTY):
        case_id = _case_id(source)
        response = post(clerk, f"/cases/{case_id}/satisfaction/link")
        assert response.status_code == 422, source
        assert satisfaction.NOT_PUBLISHED in response.text
        assert post(clerk, f"/cases/{case_id}/satisfaction/phone", {"score": "satisfied"}).status_code == 422
    heating = _case_id(HEATING)
    assert f'hx-get="/cases/{heating}/satisfaction"' not in clerk.get(f"/cases/{heating}").text


def test_another_workspaces_staff_cannot_reach_ratings(make_client) -> None:  # type: ignore[no-untyped-def]
    case_id = _case_id(FEES)
    with system_session() as db:
        centre = db.scalar(select(Case.workspace_id).where(Case.id == case_id))
        unit = db.scalar(select(Workspace.id).where(Workspace.slug == "education"))
        db.add(Rating(workspace_id=centre, case_id=case_id, score="satisfied", source="phone"))
    from app.db import session_factory

    with session_factory()() as db:
        bind_tenant(db, TenantContext.for_workspace(unit, None))  # type: ignore[arg-type]
        assert db.scalars(select(Rating)).all() == []


# --- by telephone ------------------------------------------------------------------------------------


def test_the_centre_records_a_rating_taken_by_telephone_once(make_client, visitor) -> None:  # type: ignore[no-untyped-def]
    reviewer = make_client()
    sign_in(reviewer, "zx.reviewer")
    case_id = _case_id(FEES)
    _, token = _make_link(reviewer, case_id)  # a link was sent, but the citizen answered on the phone

    bad = post(reviewer, f"/cases/{case_id}/satisfaction/phone", {"score": "", "comment": "没说"})
    assert bad.status_code == 422 and "没说" in bad.text
    response = post(
        reviewer, f"/cases/{case_id}/satisfaction/phone", {"score": "unsatisfied", "comment": "收费仍不清楚"}
    )
    assert response.status_code == 303
    assert response.headers["location"] == f"/cases/{case_id}/satisfaction"
    rating = _rating(case_id)
    assert rating is not None and (rating.score, rating.source, rating.comment) == (
        "unsatisfied",
        "phone",
        "收费仍不清楚",
    )
    with system_session() as db:
        reviewer_id = db.scalar(select(AuditEvent.actor_id).where(AuditEvent.action == "satisfaction.rated"))
    assert rating.recorded_by_id == reviewer_id and reviewer_id is not None
    page = reviewer.get(f"/cases/{case_id}/satisfaction")
    assert "电话回访" in page.text and "不满意" in page.text

    again = post(reviewer, f"/cases/{case_id}/satisfaction/phone", {"score": "satisfied"})
    assert again.status_code == 409 and satisfaction.ALREADY_RATED in again.text
    assert visitor.get(f"/rate/{token}").status_code == 409  # the open link is closed by it
    assert post(visitor, f"/rate/{token}", {"score": "satisfied"}).status_code == 409
    assert _rating(case_id).score == "unsatisfied"  # type: ignore[union-attr]


# --- into the statistics -----------------------------------------------------------------------------


def test_ratings_appear_in_the_open_statistics(clerk, visitor) -> None:  # type: ignore[no-untyped-def]
    year = stats.this_year()
    before = stats.open_statistics(year).total.figures
    assert (before.rated, before.satisfied) == (0, 0)
    fees, other = _case_id(FEES), _published("供水管网改造进度")
    _, token = _make_link(clerk, fees)
    post(visitor, f"/rate/{token}", {"score": "satisfied"})
    post(clerk, f"/cases/{other}/satisfaction/phone", {"score": "unsatisfied"})

    figures = stats.open_statistics(year).total.figures
    assert (figures.rated, figures.satisfied, figures.satisfaction_rate) == (2, 1, 50.0)
    page = visitor.get(f"/stats?year={year}")
    total = re.search(r'<tr data-key="total">(.*?)</tr>', page.text, re.S)
    assert total
    cells = re.findall(r"<td>([^<]*)</td>", total.group(1))
    assert cells[-2:] == ["2", "50.0%"]
