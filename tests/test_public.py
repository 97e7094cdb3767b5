"""The public portal: published replies and declined messages, search, masking, caching, 适老化.

第十二条: replies are published with the unit and the handler's contact data. 第十八条: a reply that
touches privacy is not shown, a note is. 第五条: declined messages show the reason and a suggestion.
Nothing that only staff may see is reachable from any public address.
"""

from __future__ import annotations

import itertools
import re
import time
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from sqlalchemy import select, text

from app.cases.models import Assignment, Case, Instruction, TimelineEntry
from app.db import system_session
from app.public import queries
from app.public.models import PublicEntry
from app.public.search import index_case, reindex_all
from app.tenants.models import Workspace
from tests.conftest import IS_POSTGRES

FEES_TITLE = "市区学校课后服务收费标准"
HEATING_TITLE = "明仁小区供暖温度不达标"  # dispatched in the demo, not answered


def _text(html: str) -> str:
    """The page's text without tags (a search's <mark> splits a title)."""
    return re.sub(r"<[^>]+>", "", html)


def _ws(db: Any, slug: str) -> int:
    found = db.scalar(select(Workspace.id).where(Workspace.slug == slug))
    assert found
    return int(found)


def _case_id(source_id: str) -> int:
    with system_session() as db:
        found = db.scalar(select(Case.id).where(Case.source_id == source_id))
    assert found
    return int(found)


_serial = itertools.count(1)


def publish_directly(
    *,
    title: str,
    body: str = "留言内容。",
    reply_text: str = "答复内容。",
    state: str = "published",
    unit: str = "education",
    published_at: datetime | None = None,
    index: bool = True,
    **fields: Any,
) -> int:
    """A case as the workflow leaves it after publication (the workflow itself is tested elsewhere)."""
    now = datetime.now(UTC)
    with system_session() as db:
        case = Case(
            workspace_id=_ws(db, "portal-centre"),
            board="mayor",
            source_id=f"PUB-TEST-{next(_serial)}-{title[:8]}",
            title=title,
            body=body,
            posted_at=now - timedelta(days=3),
            category=fields.pop("category", "consult"),
            topic=fields.pop("topic", "教育"),
            region=fields.pop("region", "科尔沁区"),
            state=state,
            dispatched_at=now - timedelta(days=2),
            reply_text=reply_text,
            reply_unit_id=_ws(db, unit),
            reply_handler_name=fields.pop("reply_handler_name", "刘海燕"),
            reply_handler_phone=fields.pop("reply_handler_phone", "0475-8300999"),
            reply_submitted_at=now - timedelta(days=1),
            published_at=(published_at or now) if state in ("published", "archived") else None,
            **fields,
        )
        db.add(case)
        db.flush()
        case_id = case.id
        if index:
            index_case(db, case_id)
    return case_id


@pytest.fixture()
def portal(client):  # type: ignore[no-untyped-def]
    """The demo (one published reply, one declined message), indexed."""
    with system_session() as db:
        reindex_all(db)
    return client


# --- browsing ----------------------------------------------------------------------------------------


def test_published_replies_are_listed_and_unanswered_messages_are_not(portal) -> None:  # type: ignore[no-untyped-def]
    page = portal.get("/replies")
    assert page.status_code == 200
    assert FEES_TITLE in page.text
    assert HEATING_TITLE not in page.text
    assert "共 <strong>1</strong> 条答复" in page.text
    home = portal.get("/")
    assert FEES_TITLE in home.text and 'action="/search"' in home.text and 'href="/login"' in home.text


def test_the_lists_filter_by_unit_category_topic_region_and_month(portal) -> None:  # type: ignore[no-untyped-def]
    month = datetime.now(UTC).astimezone(queries._tz()).strftime("%Y-%m")
    finds = [
        {"unit": "education"},
        {"category": "consult"},
        {"topic": "教育"},
        {"region": "科尔沁区"},
        {"month": month},
        {"unit": "education", "category": "consult", "month": month},
    ]
    misses = [
        {"unit": "horqin"},
        {"category": "help"},
        {"topic": "交通运输"},
        {"region": "奈曼旗"},
        {"month": "2020-01"},
    ]
    for params in finds:
        assert FEES_TITLE in portal.get("/replies?" + urlencode(params)).text, params
    for params in misses:
        assert FEES_TITLE not in portal.get("/replies?" + urlencode(params)).text, params
    # The filters offer only what finds something, and an unknown value is simply ignored.
    page = portal.get("/replies")
    assert '<option value="education">通辽市教育局</option>' in page.text
    assert '<option value="horqin">' not in page.text
    assert FEES_TITLE in portal.get("/replies?category=nonsense&month=13-2026").text


def test_the_filters_choices_are_kept_a_minute_then_computed_again(portal, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    assert '<option value="horqin">' not in portal.get("/replies").text
    publish_directly(title="科尔沁区答复", unit="horqin")
    assert '<option value="horqin">' not in portal.get("/replies").text  # the same for a minute
    later = time.monotonic() + queries.OPTIONS_SECONDS + 1
    monkeypatch.setattr(queries.time, "monotonic", lambda: later)
    assert '<option value="horqin">' in portal.get("/replies").text
    assert "科尔沁区答复" in portal.get("/replies?unit=horqin").text


def test_a_filter_form_sent_with_empty_fields_lands_on_the_clean_address(portal) -> None:  # type: ignore[no-untyped-def]
    response = portal.get("/replies?unit=&category=consult&topic=&region=&month=", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/replies?category=consult"
    response = portal.get("/search?q=++课后++&unit=&category=", follow_redirects=False)
    assert response.headers["location"] == "/search?q=" + "%E8%AF%BE%E5%90%8E"
    assert portal.get("/replies?category=consult", follow_redirects=False).status_code == 200
    # htmx swaps the results in place and is told the clean address to show.
    swapped = portal.get("/replies?unit=&category=consult", headers={"HX-Request": "true"})
    assert swapped.status_code == 200 and swapped.headers["hx-push-url"] == "/replies?category=consult"


def test_twenty_replies_a_page_newest_first_with_page_links(portal) -> None:  # type: ignore[no-untyped-def]
    start = datetime.now(UTC) - timedelta(hours=30)
    for i in range(24):
        publish_directly(title=f"批量答复第{i:02d}号", published_at=start + timedelta(minutes=i))
    first = portal.get("/replies")
    titles = re.findall(r"批量答复第(\d\d)号", first.text)
    assert len(titles) == 19  # the demo's reply is the newest
    assert titles == sorted(titles, reverse=True)
    assert 'href="/replies?page=2"' in first.text and 'rel="next"' in first.text
    second = portal.get("/replies?page=2")
    assert re.findall(r"批量答复第(\d\d)号", second.text) == ["04", "03", "02", "01", "00"]
    assert 'aria-current="page" href="/replies?page=2"' in second.text
    assert portal.get("/replies?page=99").text.count("批量答复第") == 5  # clamped to the last page
    assert portal.get("/replies?page=abc").status_code == 400
    filtered = portal.get("/replies?unit=education&page=2")
    assert 'href="/replies?unit=education"' in filtered.text  # page links keep the filters


# --- search ------------------------------------------------------------------------------------------


def test_search_finds_a_reply_by_a_word_of_its_body_and_highlights_it(portal) -> None:  # type: ignore[no-untyped-def]
    for word in ("家庭经济困难", "自愿", "课后服务", "费"):
        page = portal.get("/search", params={"q": word})
        assert FEES_TITLE in _text(page.text), word
        assert f"<mark>{word}</mark>" in page.text, word
    assert FEES_TITLE not in portal.get("/search", params={"q": "供暖"}).text  # not published
    assert "找到 <strong>0</strong> 条" in portal.get("/search", params={"q": "月球基地"}).text
    # Words in any order, each must be found; pairs across punctuation are no match.
    assert FEES_TITLE in _text(portal.get("/search", params={"q": "自愿 收费"}).text)
    assert FEES_TITLE not in portal.get("/search", params={"q": "自愿 月球"}).text
    assert FEES_TITLE not in portal.get("/search", params={"q": "少是"}).text
    assert portal.get("/search", params={"q": "？！"}).status_code == 200


def test_search_finds_declined_messages_by_their_suggestion(portal) -> None:  # type: ignore[no-untyped-def]
    page = portal.get("/search", params={"q": "详细描述"})
    assert f"/declined/{_case_id('TL-2026-110305')}" in page.text
    assert "不予受理" in page.text


def test_search_escapes_the_text_before_marking_it(portal) -> None:  # type: ignore[no-untyped-def]
    publish_directly(title="<script>alert(1)</script> 标题", body="a<b>粗体</b>&amp; 内容")
    page = portal.get("/search", params={"q": "script"})
    assert "<script>alert" not in page.text
    assert "&lt;<mark>script</mark>&gt;alert(1)&lt;/<mark>script</mark>&gt;" in page.text
    page = portal.get("/search", params={"q": "amp"})
    assert "&amp;<mark>amp</mark>;" in page.text


def test_search_snippets_are_masked(portal) -> None:  # type: ignore[no-untyped-def]
    publish_directly(title="噪音扰民", body="楼下烧烤店噪音扰民，我叫张三，电话13847511000，每晚到凌晨。")
    page = portal.get("/search", params={"q": "烧烤"})
    assert "<mark>烧烤</mark>" in page.text
    assert "13847511000" not in page.text and "张三" not in page.text
    assert "138****1000" in page.text


# --- the reply page ------------------------------------------------------------------------------------


def test_the_reply_page_shows_message_reply_unit_handler_and_dates(portal) -> None:  # type: ignore[no-untyped-def]
    case_id = _case_id("TL-2026-110306")
    page = portal.get(f"/replies/{case_id}")
    assert page.status_code == 200
    assert f"<title>{FEES_TITLE} · 民盼通办" in page.text
    assert (
        '<meta name="description" content="通辽市教育局对网民留言“市区学校课后服务收费标准”的答复'
        in page.text
    )
    assert 'lang="zh-CN"' in page.text
    assert "每生每学期不超过300元" in page.text
    assert "通辽市教育局" in page.text
    with system_session() as db:
        handler, phone = db.execute(
            select(Case.reply_handler_name, Case.reply_handler_phone).where(Case.id == case_id)
        ).one()
    # 第十二条: the handler's name and office phone are published as they are.
    assert f'data-testid="handler">{handler}<' in page.text
    assert f'data-testid="handler-phone">{phone}<' in page.text
    for label in ("网民留言", "运维中心受理", "交办承办单位", "承办单位答复", "公开答复"):
        assert label in page.text


def test_the_citizens_personal_data_in_the_message_is_masked(portal) -> None:  # type: ignore[no-untyped-def]
    case_id = publish_directly(
        title="我叫王建国，反映小区停车难",
        body="我叫王建国，住明仁小区3号楼2单元502室，手机138 4751 1000，身份证110105199001011234，"
        "车牌蒙G·12345，邮箱wangjianguo@qq.com。",
        reply_text="王建国先生您好：已协调物业处理。如有问题请联系经办人刘海燕，电话0475-8300999。",
    )
    page = portal.get(f"/replies/{case_id}")
    for secret in ("建国", "502", "4751", "110105199001011234", "12345", "wangjianguo"):
        assert secret not in page.text, secret
    for shown in (
        "我叫王**",
        "*号楼*单元***室",
        "138 **** 1000",
        "110***********1234",
        "蒙G·***45",
        "w***@qq.com",
    ):
        assert shown in page.text, shown
    assert "王**先生您好" in page.text
    assert "请联系经办人刘海燕，电话0475-8300999" in page.text  # the handler's own data stays


def test_a_reply_given_privately_shows_the_note_instead_of_the_text(portal) -> None:  # type: ignore[no-untyped-def]
    case_id = publish_directly(
        title="个人医疗费用报销", reply_text="私下答复的具体内容甲乙丙", reply_private=True
    )
    page = portal.get(f"/replies/{case_id}")
    assert "该留言涉及个人隐私，已通过电话/邮件等方式答复留言人。" in page.text
    assert "私下答复的具体内容" not in page.text
    assert "找到 <strong>0</strong> 条" in portal.get("/search", params={"q": "私下答复"}).text
    assert "个人医疗费用报销" in _text(portal.get("/search", params={"q": "医疗费用"}).text)


def test_unpublished_declined_and_missing_ids_are_not_reply_pages(portal) -> None:  # type: ignore[no-untyped-def]
    with system_session() as db:
        ids = db.scalars(select(Case.id).where(Case.state != "published")).all()
    for case_id in [*ids, 10**6]:
        assert portal.get(f"/replies/{case_id}").status_code == 404
    declined = _case_id("TL-2026-110305")
    assert portal.get(f"/declined/{declined}").status_code == 200
    assert portal.get(f"/declined/{_case_id('TL-2026-110306')}").status_code == 404


def test_an_index_row_that_outlived_its_publication_shows_nothing(portal) -> None:  # type: ignore[no-untyped-def]
    case_id = publish_directly(title="撤回的答复标题")
    with system_session() as db:
        db.get(Case, case_id).state = "under_review"  # type: ignore[union-attr]
    assert "撤回的答复标题" not in portal.get("/replies").text
    assert "撤回的答复标题" not in portal.get("/search", params={"q": "撤回"}).text
    assert f"/replies/{case_id}" not in portal.get("/sitemap.xml").text
    with system_session() as db:
        assert index_case(db, case_id) is False
        assert db.get(PublicEntry, case_id) is None


def test_index_case_runs_in_the_publishing_steps_own_transaction(portal) -> None:  # type: ignore[no-untyped-def]
    """The centre's publish step calls index_case in its workspace-bound session (RLS on PostgreSQL)."""
    from app.db import session_factory
    from app.tenants.scope import TenantContext, bind_tenant

    case_id = publish_directly(title="由发布步骤写入索引的答复", index=False)
    assert "由发布步骤写入索引" not in _text(portal.get("/search", params={"q": "发布步骤"}).text)
    with system_session() as db:
        centre = _ws(db, "portal-centre")
    db = session_factory()()
    bind_tenant(db, TenantContext.for_workspace(centre, None))
    try:
        assert index_case(db, case_id) is True
        db.commit()
    finally:
        db.close()
    assert "由发布步骤写入索引的答复" in _text(portal.get("/search", params={"q": "发布步骤"}).text)


# --- declined ----------------------------------------------------------------------------------------


def test_declined_messages_show_the_statutory_reason_and_the_suggestion(portal) -> None:  # type: ignore[no-untyped-def]
    listing = portal.get("/declined")
    case_id = _case_id("TL-2026-110305")
    assert f'href="/declined/{case_id}"' in listing.text
    page = portal.get(f"/declined/{case_id}")
    assert "违反法律规定、社会公序良俗以及恶意攻击、骚扰或无实质内容的事项" in page.text
    assert "如有具体诉求，请详细描述后重新留言。" in page.text
    assert "留言无实质内容。" in page.text
    # 第五条 abusive or private matters: the message itself is not shown.
    assert "（留言内容不予公开）" in page.text


def test_a_declined_message_out_of_scope_is_shown_masked(portal) -> None:  # type: ignore[no-untyped-def]
    with system_session() as db:
        case = Case(
            workspace_id=_ws(db, "portal-centre"),
            board="mayor",
            source_id="PUB-DECLINED-1",
            title="外省某市的房产纠纷",
            body="我叫李四，电话13912345678，外省房产纠纷。",
            posted_at=datetime.now(UTC),
            category="complain",
            state="declined",
            decline_reason="out_of_scope",
            decline_explanation="该事项不属于通辽市行政管理范围。",
            decline_suggestion="请向房产所在地人民政府反映。",
        )
        db.add(case)
        db.flush()
        index_case(db, case.id)
        case_id = case.id
    page = portal.get(f"/declined/{case_id}")
    assert "外省某市的房产纠纷" in page.text and "超出通辽市政府行政管理范围的事项" in page.text
    assert "13912345678" not in page.text and "李四" not in page.text
    assert "外省某市的房产纠纷" in portal.get("/declined?category=complain").text
    assert "外省某市的房产纠纷" not in portal.get("/declined?category=consult").text


# --- HTTP caching, sitemap, 适老化 ----------------------------------------------------------------------


def test_a_reply_page_is_revalidated_by_etag_and_last_modified(portal) -> None:  # type: ignore[no-untyped-def]
    url = f"/replies/{_case_id('TL-2026-110306')}"
    first = portal.get(url)
    etag, modified = first.headers["etag"], first.headers["last-modified"]
    assert etag.startswith('"') and first.headers["cache-control"] == "public, no-cache"
    assert "set-cookie" not in first.headers
    again = portal.get(url, headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == etag
    assert portal.get(url, headers={"If-None-Match": f'"other", W/{etag}'}).status_code == 304
    assert portal.get(url, headers={"If-None-Match": '"other"'}).status_code == 200
    assert portal.get(url, headers={"If-Modified-Since": modified}).status_code == 304
    assert portal.get(url, headers={"If-Modified-Since": "Mon, 01 Jan 2024 00:00:00 GMT"}).status_code == 200
    # Large text is another rendering: another ETag.
    portal.cookies.set("minpan_a11y", "large")
    assert portal.get(url, headers={"If-None-Match": etag}).status_code == 200


def test_the_304_does_not_render(portal, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    url = f"/replies/{_case_id('TL-2026-110306')}"
    etag = portal.get(url).headers["etag"]

    def refuse(*_args: Any, **_kw: Any) -> None:
        raise AssertionError("rendered")

    monkeypatch.setattr("app.public.controllers.public_page", refuse)
    assert portal.get(url, headers={"If-None-Match": etag}).status_code == 304


def test_the_sitemap_lists_public_pages_only(portal) -> None:  # type: ignore[no-untyped-def]
    page = portal.get("/sitemap.xml")
    assert page.status_code == 200 and page.headers["content-type"].startswith("application/xml")
    assert f"/replies/{_case_id('TL-2026-110306')}</loc><lastmod>{date.today().year}" in page.text
    assert f"/declined/{_case_id('TL-2026-110305')}</loc>" in page.text
    assert f"/replies/{_case_id('TL-2026-110301')}<" not in page.text


def test_large_text_and_high_contrast_switch_by_plain_links(portal) -> None:  # type: ignore[no-untyped-def]
    page = portal.get("/replies")
    assert 'class="a11y-' not in page.text
    assert 'href="/a11y?large=1&amp;next=%2Freplies"' in page.text
    switched = portal.get("/a11y?large=1&next=/replies", follow_redirects=False)
    assert switched.status_code == 303 and switched.headers["location"] == "/replies"
    assert '<html lang="zh-CN" class="a11y-large">' in portal.get("/replies").text
    portal.get("/a11y?contrast=1&next=/", follow_redirects=False)
    assert '<html lang="zh-CN" class="a11y-contrast a11y-large">' in portal.get("/").text
    portal.get("/a11y?large=0&next=/", follow_redirects=False)
    assert '<html lang="zh-CN" class="a11y-contrast">' in portal.get("/").text
    portal.get("/a11y?reset=1", follow_redirects=False)
    assert 'class="a11y-' not in portal.get("/").text
    for evil in ("//evil.example/", "https://evil.example/", "/\\evil"):
        response = portal.get("/a11y", params={"large": "1", "next": evil}, follow_redirects=False)
        assert response.headers["location"] == "/", evil
    assert portal.get("/a11y").status_code == 200


def test_pages_work_without_javascript_and_have_landmarks(portal) -> None:  # type: ignore[no-untyped-def]
    for url in ("/", "/replies", "/declined", "/search?q=课后", f"/replies/{_case_id('TL-2026-110306')}"):
        html = portal.get(url).text
        assert '<main id="main"' in html and "<nav" in html and "<footer" in html, url
        assert '<a class="skip" href="#main">' in html
        assert re.search(r'<form[^>]+method="get" action="/search"', html), url
    replies = portal.get("/replies").text
    for name in ("unit", "category", "topic", "region", "month"):
        assert f'<label for="f-{name}">' in replies and f'id="f-{name}" name="{name}"' in replies


# --- nothing that only staff may see -----------------------------------------------------------------

SECRETS = [
    "欧阳机密",  # citizen name
    "电话机密7781",  # citizen phone
    "leak-secret@example.org",  # citizen e-mail
    "交办要求机密",  # instructions on the case
    "时间线机密备注",  # a timeline comment
    "领导批示机密",  # a leader's instruction
    "草稿机密内容",  # a unit's draft on its assignment
    "中心退回意见机密",  # the centre's comment when sending back
    "协办意见机密",  # a co-unit's contribution
    "退办理由机密",
    "延期理由机密",
    "签发人机密",
    "SECRETSIGNATURE",
    "通留〔2026〕9999号",  # the internal sheet number
    "未公开标题机密",  # a case not (yet) published
    "未公开正文机密",
    "未发布答复机密",
]


def _seed_secrets() -> list[int]:
    now = datetime.now(UTC)
    published = publish_directly(
        title="公开标题甲",
        body="公开正文甲",
        reply_text="公开答复甲",
        citizen_name="欧阳机密",
        citizen_phone="电话机密7781",
        citizen_email="leak-secret@example.org",
        instructions="交办要求机密",
        reply_signed_by="签发人机密",
        reply_signature="data:image/png;base64,SECRETSIGNATURE",
        sheet_number="通留〔2026〕9999号",
        quality_flag="perfunctory",
    )
    unpublished = [
        publish_directly(
            title=f"未公开标题机密{state}",
            body="未公开正文机密",
            reply_text="未发布答复机密",
            state=state,
            index=False,
        )
        for state in ("received", "assigned", "under_review")
    ]
    with system_session() as db:
        centre, unit = _ws(db, "portal-centre"), _ws(db, "education")
        for case_id in (published, *unpublished):
            db.add(
                TimelineEntry(
                    workspace_id=centre, case_id=case_id, action="publish", comment="时间线机密备注"
                )
            )
            db.add(
                Instruction(workspace_id=centre, case_id=case_id, author_name="市领导", text="领导批示机密")
            )
            db.add(
                Assignment(
                    workspace_id=unit,
                    case_id=case_id,
                    sheet_number="通留〔2026〕9999号",
                    title="未公开标题机密",
                    body="未公开正文机密",
                    category="consult",
                    posted_at=now,
                    due_date=now.date(),
                    citizen_name="欧阳机密",
                    citizen_phone="电话机密7781",
                    reply_text="草稿机密内容",
                    centre_comment="中心退回意见机密",
                    contribution="协办意见机密",
                    return_reason="退办理由机密",
                    extension_reason="延期理由机密",
                    signature="data:image/png;base64,SECRETSIGNATURE",
                )
            )
        # Even a full reindex (the demo's, the migration's) must not carry any of it.
        reindex_all(db)
        return [published, *unpublished, *db.scalars(select(Case.id)).all()]


def _public_urls(case_ids: list[int]) -> list[str]:
    urls = ["/", "/replies", "/declined", "/search", "/sitemap.xml", "/a11y"]
    for kind, path in (("reply", "/replies"), ("declined", "/declined"), ("reply", "/search")):
        options = queries.filter_options(kind)
        values = {
            "unit": [slug for slug, _ in options.units],
            "category": [key for key, _ in options.categories],
            "topic": options.topics,
            "region": options.regions,
            "month": options.months,
        }
        for name, choices in values.items():
            for value in choices:
                params = {name: value, **({"q": "公开"} if path == "/search" else {})}
                urls.append(f"{path}?{urlencode(params)}")
    for case_id in [*sorted(set(case_ids)), 0, -1, 10**6]:
        urls += [f"/replies/{case_id}", f"/declined/{case_id}"]
    for secret in SECRETS:
        urls.append("/search?" + urlencode({"q": secret}))
        urls.append("/search?" + urlencode({"q": secret[:2]}))
    return urls


def test_no_staff_only_data_is_reachable_from_any_public_address(portal) -> None:  # type: ignore[no-untyped-def]
    case_ids = _seed_secrets()
    urls = _public_urls(case_ids)
    assert len(urls) > 60
    seen_published = False
    for url in urls:
        response = portal.get(url)
        assert response.status_code in (200, 400, 404), url
        seen_published |= "公开答复甲" in response.text
        # The words looked for are shown back (“…” in the title and heading, the search box):
        # what is left, without tags (so <mark> cannot split a secret), must hold none.
        text = _text(response.text)
        for q in parse_qs(urlsplit(url).query).get("q", []):
            text = text.replace(f"“{q}”", "")
        for secret in SECRETS:
            assert secret not in text, (url, secret)
    assert seen_published
    # and through the index itself
    with system_session() as db:
        for entry in db.scalars(select(PublicEntry)):
            blob = " ".join((entry.title, entry.body, entry.answer, entry.terms))
            assert not any(s in blob for s in SECRETS), entry.case_id


# --- 页面静态化: stored reply pages ----------------------------------------------------------------


def _stored(case_id: int) -> Any:
    from app.public.models import PublicPage

    with system_session() as db:
        row = db.get(PublicPage, case_id)
        return None if row is None else (row.generation, row.etag, row.body)


def test_publication_stores_the_page_and_visits_get_exactly_its_bytes(portal, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    case_id = publish_directly(title="静态化答复标题", body="我叫王小明，电话13812345678。")
    _generation, etag, body = _stored(case_id)
    assert body and b"\xe9\x9d\x99\xe6\x80\x81\xe5\x8c\x96" in body  # 静态化
    assert b"13812345678" not in body and "王小明".encode() not in body  # masked when stored

    def refuse(*_args: Any, **_kw: Any) -> None:
        raise AssertionError("read the case")

    monkeypatch.setattr("app.public.queries.reply", refuse)  # a stored page reads no case
    page = portal.get(f"/replies/{case_id}")
    assert page.status_code == 200 and page.content == body and page.headers["etag"] == etag
    assert page.headers["cache-control"] == "public, no-cache" and "set-cookie" not in page.headers
    assert portal.get(f"/replies/{case_id}", headers={"If-None-Match": etag}).status_code == 304
    modified = page.headers["last-modified"]
    assert portal.get(f"/replies/{case_id}", headers={"If-Modified-Since": modified}).status_code == 304
    monkeypatch.undo()
    # The stored bytes are what a fresh render gives (the same ETag, the same page).
    from sqlalchemy import update

    from app.public.models import PublicPage

    with system_session() as db:
        db.execute(update(PublicPage).where(PublicPage.case_id == case_id).values(body=None))
    fresh = portal.get(f"/replies/{case_id}")
    assert fresh.content == body and fresh.headers["etag"] == etag


def test_a_page_that_stops_being_public_is_never_served_from_the_store(portal) -> None:  # type: ignore[no-untyped-def]
    case_id = publish_directly(title="撤回后不得再现的答复")
    assert portal.get(f"/replies/{case_id}").status_code == 200
    before = _stored(case_id)
    assert before[2]
    with system_session() as db:  # withdrawn: any change of the case clears its page at once
        db.get(Case, case_id).state = "under_review"  # type: ignore[union-attr]
    after = _stored(case_id)
    assert after[2] is None and after[0] > before[0]
    for _ in range(2):  # the first visit does not store it again either
        assert portal.get(f"/replies/{case_id}").status_code == 404
    assert _stored(case_id)[2] is None
    with system_session() as db:
        db.get(Case, case_id).published_at = None  # type: ignore[union-attr]
        db.get(Case, case_id).state = "published"  # type: ignore[union-attr]
    assert portal.get(f"/replies/{case_id}").status_code == 404
    assert _stored(case_id)[2] is None


def test_a_changed_case_unit_or_document_clears_the_page_and_the_next_visit_renders_it(portal) -> None:  # type: ignore[no-untyped-def]
    case_id = publish_directly(title="改动后重新生成的答复", unit="education")
    etag = _stored(case_id)[1]
    with system_session() as db:
        db.get(Case, case_id).reply_text = "更正后的答复内容。"  # type: ignore[union-attr]
    assert _stored(case_id)[2] is None
    page = portal.get(f"/replies/{case_id}")
    assert "更正后的答复内容" in page.text and page.headers["etag"] != etag
    assert _stored(case_id)[2] == page.content  # filled on the visit
    with system_session() as db:
        unit = db.get(Workspace, _ws(db, "education"))
        assert unit is not None
        old_phone, unit.contact_phone = unit.contact_phone, "0475-8888777"
    assert _stored(case_id)[2] is None
    assert "0475-8888777" in portal.get(f"/replies/{case_id}").text
    with system_session() as db:
        unit = db.get(Workspace, _ws(db, "education"))
        assert unit is not None
        unit.contact_phone = old_phone
    assert portal.get(f"/replies/{case_id}").status_code == 200
    assert _stored(case_id)[2]
    from app.documents.models import Document

    with system_session() as db:  # a document of the case (the sealed PDF arrives later)
        centre = _ws(db, "portal-centre")
        db.add(
            Document(
                workspace_id=centre,
                kind="case_file",
                case_id=case_id,
                content_hash="x" * 64,
                template_version="t",
                sha256="y" * 64,
                size=1,
                pages=1,
                pdf=b"%PDF",
            )
        )
    assert _stored(case_id)[2] is None


def test_a_page_stored_at_publication_is_cleared_when_its_unit_changes(portal) -> None:  # type: ignore[no-untyped-def]
    case_id = publish_directly(title="发布时生成的答复", unit="education")
    assert _stored(case_id)[2]  # rendered in the publishing transaction, the case not updated since
    with system_session() as db:
        unit = db.get(Workspace, _ws(db, "education"))
        assert unit is not None
        unit.contact_phone = "0475-7777666"
    assert _stored(case_id)[2] is None
    assert "0475-7777666" in portal.get(f"/replies/{case_id}").text


def test_a_render_older_than_a_change_is_not_stored(portal) -> None:  # type: ignore[no-untyped-def]
    from app.public import pages

    case_id = publish_directly(title="并发改动的答复")
    seen = _stored(case_id)[0]
    found = queries.reply(case_id)
    assert found is not None
    body = pages.render_reply(found)
    with system_session() as db:  # changed after the read, before the write
        db.get(Case, case_id).reply_text = "新的答复。"  # type: ignore[union-attr]
    assert pages.fill(found, body, seen) is False
    assert _stored(case_id)[2] is None
    assert "新的答复" in portal.get(f"/replies/{case_id}").text


def test_the_aged_friendly_display_and_query_strings_are_rendered_not_stored(portal) -> None:  # type: ignore[no-untyped-def]
    case_id = publish_directly(title="适老化显示的答复")
    body = _stored(case_id)[2]
    portal.cookies.set("minpan_a11y", "large contrast")
    page = portal.get(f"/replies/{case_id}")
    assert (
        page.status_code == 200 and page.content != body and 'class="a11y-contrast a11y-large"' in page.text
    )
    assert page.headers["etag"] != _stored(case_id)[1]
    portal.cookies.delete("minpan_a11y")
    other = portal.get(f"/replies/{case_id}?from=weibo")
    assert "next=%2Freplies%2F" in other.text and other.content != body
    assert _stored(case_id)[2] == body


def test_counts_stop_at_the_cap_and_say_more_than(portal, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    for n in range(4):
        publish_directly(title=f"封顶计数答复{n}", body="封顶计数的留言。")
    monkeypatch.setattr(queries, "COUNT_CAP", 3)
    found = queries.list_entries("all", queries.Filters.parse(q="封顶计数"), 1, per_page=2)
    assert found.capped and found.total == 4 and found.pages == 2
    page = portal.get("/search", params={"q": "封顶计数"})
    assert "找到 超过 <strong>3</strong> 条" in page.text
    assert "超过" not in _text(portal.get("/search", params={"q": "封顶计数答复0"}).text).split("条")[0]

    # On PostgreSQL a common term is found along the date index within the newest WALK_WINDOW
    # rows, a rarer one through the full-text index: both give the same hits, newest first.
    for n in range(3):
        publish_directly(title=f"无关答复{n}", body="与检索词无关的留言。")
    walked = [
        i.case_id
        for i in queries.list_entries("all", queries.Filters.parse(q="封顶计数"), 1, per_page=4).items
    ]
    monkeypatch.setattr(queries, "WALK_WINDOW", 2)  # the newest rows do not match: the index answers
    indexed = queries.list_entries("all", queries.Filters.parse(q="封顶计数"), 1, per_page=4)
    assert indexed.capped and [i.case_id for i in indexed.items] == walked
    assert walked == sorted(walked, reverse=True) and len(walked) == 4

    # A hit whose case is no longer public is never counted nor shown, whichever way it is found
    # (HIDDEN_SLACK 0: the index path has to fall back to its exact statement).
    with system_session() as db:
        db.get_one(Case, walked[0]).state = "under_review"
    monkeypatch.setattr(queries, "HIDDEN_SLACK", 0)
    for window in (2, 120_000):
        monkeypatch.setattr(queries, "WALK_WINDOW", window)
        left = queries.list_entries("all", queries.Filters.parse(q="封顶计数"), 1, per_page=4)
        assert [i.case_id for i in left.items] == walked[1:] and left.total == 3 and not left.capped


def test_a_search_within_a_unit_or_a_month_finds_exactly_its_hits(portal, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    # On PostgreSQL such a search walks the unit's (or the month's) rows newest first; the walk
    # answers alone when it found enough or saw every row, else the full-text index answers.
    may = datetime(2024, 5, 3, tzinfo=UTC)
    old = publish_directly(title="单位内检索旧答复", body="单位内检索的留言。", published_at=may)
    ours = [publish_directly(title=f"单位内检索{n}", body="单位内检索的留言。") for n in range(3)]
    publish_directly(title="单位内检索他单位", body="单位内检索的留言。", unit="health")
    publish_directly(title="五月他单位", body="单位内检索的留言。", unit="health", published_at=may)
    publish_directly(title="无关答复", body="与检索词无关。")
    with system_session() as db:
        db.get_one(Case, ours[1]).state = "under_review"  # withdrawn: never found
    expected = [ours[2], ours[0], old]
    monkeypatch.setattr(queries, "_estimated_share", lambda *_: 1e9)  # a common word: walk first
    for window in (1, 2, 120_000):  # cut short (the index answers), or every row seen
        monkeypatch.setattr(queries, "UNIT_WALK_WINDOW", window)
        monkeypatch.setattr(queries, "WALK_WINDOW", window)
        found = queries.list_entries("all", queries.Filters.parse(q="单位内检索", unit="education"), 1)
        assert [i.case_id for i in found.items] == expected and found.total == 3, window
        in_may = queries.list_entries("all", queries.Filters.parse(q="单位内检索", month="2024-05"), 1)
        assert len(in_may.items) == 2 and old in [i.case_id for i in in_may.items], window
        both = queries.Filters.parse(q="单位内检索", unit="education", month="2024-05")
        assert [i.case_id for i in queries.list_entries("all", both, 1).items] == [old], window
    page = portal.get("/search", params={"q": "单位内检索", "unit": "education"})
    assert "单位内检索他单位" not in _text(page.text) and "单位内检索旧答复" in _text(page.text)


def test_a_search_asks_for_the_newest_hits_first_and_for_all_when_they_are_too_few(
    portal, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    # On PostgreSQL a word in a few per cent of the messages asks the index for its hits since a
    # date first (a window of the newest rows), and for all of them when the window has too few.
    may = datetime(2024, 5, 3, tzinfo=UTC)
    old = [
        publish_directly(
            title=f"窗口检索旧{n}", body="窗口检索的留言。", published_at=may + timedelta(days=n)
        )
        for n in range(3)
    ]
    new = [publish_directly(title=f"窗口检索新{n}", body="窗口检索的留言。") for n in range(3)]
    monkeypatch.setattr(queries, "_estimated_share", lambda *_: 0.05)
    monkeypatch.setattr(queries, "_newest_since", lambda *_: datetime(2025, 1, 1, tzinfo=UTC))
    monkeypatch.setattr(queries, "COUNT_CAP", 2)
    monkeypatch.setattr(queries, "HIDDEN_SLACK", 0)
    words = queries.Filters.parse(q="窗口检索")
    found = queries.list_entries("all", words, 1, per_page=2)
    assert found.capped and [i.case_id for i in found.items] == [new[2], new[1]]  # the window had enough
    with system_session() as db:  # two of the new ones withdrawn: the window is one hit short
        for case_id in new[:2]:
            db.get_one(Case, case_id).state = "under_review"
            db.flush()
            index_case(db, case_id)  # (as the workflow does: out of the index)
    found = queries.list_entries("all", words, 1, per_page=2)
    assert [i.case_id for i in found.items] == [new[2], old[2]]
    with system_session() as db:  # withdrawn, still in the index: the window's hits are checked
        db.get_one(Case, new[2]).state = "under_review"
    found = queries.list_entries("all", words, 1, per_page=2)
    assert [i.case_id for i in found.items] == [old[2], old[1]] and found.total == 3


@pytest.mark.skipif(not IS_POSTGRES, reason="the PostgreSQL search's path")
def test_terms_that_go_together_are_sampled_and_asked_for_among_the_newest_rows(portal, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    # Two terms the statistics call rare together (their product) but that the newest messages
    # hold together: the sample finds it, and the index is asked for the newest hits first.
    together = [publish_directly(title=f"采暖季{n}", body="室内温度不达标的留言。") for n in range(4)]
    monkeypatch.setattr(queries, "_estimated_share", lambda *_: 1e-9)
    monkeypatch.setattr(queries, "COUNT_CAP", 2)
    asked: list[tuple[float, object]] = []
    windows: list[object] = []
    real_indexed, real_since = queries._indexed, queries._newest_since

    def newest_since(db, rows):  # type: ignore[no-untyped-def]
        asked.append((rows, real_since(db, rows)))
        return datetime(2000, 1, 1, tzinfo=UTC)  # (the test database has no useful histogram)

    def indexed(db, kind, filters, query, since=None):  # type: ignore[no-untyped-def]
        windows.append(since)
        return real_indexed(db, kind, filters, query, since)

    monkeypatch.setattr(queries, "_newest_since", newest_since)
    monkeypatch.setattr(queries, "_indexed", indexed)
    found = queries.list_entries("all", queries.Filters.parse(q="采暖季 温度"), 1, per_page=2)
    assert found.capped and [i.case_id for i in found.items] == together[:1:-1]
    with system_session() as db:
        rows = db.scalar(text("SELECT count(*) FROM public_terms"))
    # All 4 of the sample's rows-with-both among its ``rows``: a window of 1.5 × 6 hits' worth.
    assert asked and asked[0][0] == pytest.approx(1.5 * 6 * rows / 4)
    assert windows == [datetime(2000, 1, 1, tzinfo=UTC)]  # the window had enough: no second query


def test_a_window_of_the_newest_rows_is_asked_of_the_index_by_month(portal, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    # On PostgreSQL the full-text index also holds each row's month (migration 0032): a window of
    # the newest rows is its months through the index, then the exact date on what it returns.
    months = queries.search.month_lexemes(
        datetime(2025, 11, 30, 23, tzinfo=UTC), datetime(2026, 2, 1, tzinfo=UTC)
    )
    assert months == ["@202511", "@202512", "@202601", "@202602"]
    if not IS_POSTGRES:
        return
    case_id = publish_directly(title="月份窗口测试答复", body="月份窗口的留言。")
    publish_directly(
        title="月份窗口测试旧答复", body="月份窗口的留言。", published_at=datetime(2025, 1, 5, tzinfo=UTC)
    )
    publish_directly(
        title="月份窗口测试同月早答复",
        body="月份窗口的留言。",
        published_at=datetime.now(UTC) - timedelta(days=3),
    )
    monkeypatch.setattr(queries, "COUNT_CAP", 0)  # (so that one hit is enough for the window)
    monkeypatch.setattr(queries, "HIDDEN_SLACK", 0)
    words = queries.search.parse_query("月份窗口")
    with queries.reader() as db:
        since = datetime.now(UTC) - timedelta(days=1)
        assert queries._indexed(db, "all", queries.Filters.parse(q="月份窗口"), words, since) == [case_id]
        window = queries._pg_search("all", queries.Filters.parse(q="月份窗口"), words, since=since)
        assert [row.case_id for row in db.execute(window)] == [case_id]  # not 3 days ago, same month
        month = db.scalar(text("SELECT tsvector_to_array(public_terms_month(now()))"))
    assert month == [f"@{datetime.now(UTC):%Y%m}"]


def test_the_window_of_newest_rows_reaches_back_far_enough(monkeypatch) -> None:
    # 1,001 bounds over 100,000 rows: 100 rows between two bounds. The newest 250 rows lie after
    # the bound three buckets before the last (a window of 300 rows: never fewer than asked).
    bounds = [datetime(2020, 1, 1, tzinfo=UTC) + timedelta(hours=n) for n in range(1001)]
    monkeypatch.setattr(queries, "_histogram", [(time.monotonic() + 60, 100_000.0, bounds)])
    assert queries._newest_since(None, 250) == bounds[997]  # type: ignore[arg-type]
    assert queries._newest_since(None, 50) == bounds[999]  # type: ignore[arg-type]
    assert queries._newest_since(None, 60_000) is None  # type: ignore[arg-type]  # most of the table


def test_the_public_404_and_verify_pages_wear_the_portal_layout(portal) -> None:  # type: ignore[no-untyped-def]
    missing = portal.get("/replies/999999999")
    assert missing.status_code == 404
    assert (
        'class="portal"' in missing.text and "适老化服务" in missing.text and "该答复不存在" in missing.text
    )
    elsewhere = portal.get("/no-such-page")
    assert elsewhere.status_code == 404 and 'class="portal"' in elsewhere.text
    verify = portal.get("/verify")
    assert verify.status_code == 200 and 'class="portal"' in verify.text and "文书验证" in verify.text
    assert 'name="_csrf_token"' in verify.text
