"""The public portal in real Chromium, as a citizen uses it: search finds a reply by a word of its
body (highlighted), the filters narrow the list, the reply page shows the sealed reply's facts, and
a citizen rates a reply through the personal link the centre sends — once."""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser, expect
from sqlalchemy import select

from app.cases.models import Case
from app.db import system_session
from tests.browser_support import (  # noqa: F401 - the *_fixture functions register fixtures
    LANDSCAPE,
    browser_fixture,
    new_context,
    server_fixture,
    shot,
    signed_in,
)

pytestmark = pytest.mark.browser

FEES = "TL-2026-110306"  # the demo's published reply: 市区学校课后服务收费标准


def _fees_id() -> int:
    with system_session() as db:
        case_id = db.scalar(select(Case.id).where(Case.source_id == FEES))
    assert case_id is not None
    return case_id


def test_a_citizen_finds_a_reply_by_a_word_of_its_body_and_opens_it(browser: Browser, server: str) -> None:
    ctx = new_context(browser, server, LANDSCAPE)
    page = ctx.new_page()
    page.goto("/")
    page.get_by_role("searchbox").first.fill("自愿参加")  # only in the message body, not the title
    page.get_by_role("searchbox").first.press("Enter")
    page.wait_for_url("**/search?**")
    hit = page.locator("mark", has_text="自愿")
    expect(hit.first).to_be_visible()
    shot(page, "public-search")
    page.get_by_role("link", name="市区学校课后服务收费标准").first.click()
    page.wait_for_url(f"**/replies/{_fees_id()}")
    expect(page.get_by_test_id("reply-unit")).to_have_text("通辽市教育局")
    expect(page.locator("h1")).to_contain_text("市区学校课后服务收费标准")
    # Filters: a category with no published reply empties the list; 咨询 shows it.
    page.goto("/replies?category=complain")
    expect(page.get_by_role("link", name="市区学校课后服务收费标准")).to_have_count(0)
    page.goto("/replies?category=consult")
    expect(page.get_by_role("link", name="市区学校课后服务收费标准").first).to_be_visible()
    ctx.close()


def test_a_citizen_rates_a_reply_once_through_the_centres_link(browser: Browser, server: str) -> None:
    case_id = _fees_id()
    with signed_in(browser, server, "zx.clerk") as clerk:
        clerk.goto(f"/cases/{case_id}/satisfaction")
        clerk.get_by_role("button", name="生成回访链接").click()
        link = clerk.get_by_test_id("rating-link").input_value()
    assert "/rate/" in link
    path = link[link.index("/rate/") :]
    citizen = new_context(browser, server, LANDSCAPE).new_page()
    citizen.goto(path)
    expect(citizen.get_by_test_id("rate-case-title")).to_contain_text("课后服务")
    citizen.get_by_label("满意", exact=True).check()
    citizen.locator("#rate-comment").fill("答复清楚，谢谢。")
    citizen.get_by_role("button", name="提交评价").click()
    expect(citizen.locator("h1")).to_have_text("感谢您的评价")
    shot(citizen, "public-rated")
    # The same link a second time: refused, the first rating stands.
    citizen.goto(path)
    expect(citizen.locator("h1")).to_have_text("该留言已评价")
    with system_session() as db:
        from app.public.models import Rating

        ratings = db.scalars(select(Rating).where(Rating.case_id == case_id)).all()
        assert [(r.score, r.comment) for r in ratings] == [("satisfied", "答复清楚，谢谢。")]
