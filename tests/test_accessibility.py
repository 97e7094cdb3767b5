"""Accessibility of the public portal (WCAG 2.1 AA), scanned with axe-core in Debian's Chromium.

Every public page — home, the lists with and without filters, a reply, a reply given privately, a
reply that is an explanation, the declined list and a declined message, a search with hits, the
verification page, the 适老化 settings, a 404 and, when it exists, /stats — is loaded from the real
server (uvicorn subprocess, demo data plus the cases seeded here) and scanned by axe-core with the
tags wcag2a, wcag2aa, wcag21a and wcag21aa, in the standard look and in the large-text and
high-contrast modes, switched on through the portal's own /a11y links. A violation of impact
"serious" or "critical" fails the test with its rule, help text and the elements it found;
"moderate" and "minor" ones are printed.

Also: with JavaScript switched off in the browser, the search form submits, the filters and the
pager work, the 适老化 links switch and a reply page renders (htmx is only an enhancement).

axe-core is vendored under ``tests/a11y/`` (test-only; checksum in ``tests/a11y/SHA256SUMS``,
checked before use) and evaluated through the DevTools protocol, so the page's own
Content-Security-Policy stays in force while it is scanned.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect
from sqlalchemy import select

from app.cases.models import Assignment, Case
from app.db import system_session
from app.documents.models import Document
from app.public.search import index_case
from app.tenants.models import Workspace
from tests.browser_support import (  # noqa: F401 - the *_fixture functions register fixtures
    LANDSCAPE,
    SHOTS,
    TIMEOUT_MS,
    browser_fixture,
    server_fixture,
)

pytestmark = pytest.mark.browser

A11Y_DIR = Path(__file__).resolve().parent / "a11y"
AXE_FILE = "axe-4.14.1.min.js"
TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
BLOCKING = {"serious", "critical"}
MODES = ("standard", "large", "contrast")

HEATING_TITLE = "明仁小区供暖温度仍不达标"
PRIVATE_TITLE = "家庭纠纷求助"
DECLINED_TITLE = "反映外省企业拖欠工资"


def axe_source() -> str:
    """The vendored axe-core, after checking it against its recorded SHA-256."""
    lines = (A11Y_DIR / "SHA256SUMS").read_text().split("\n")
    sums = {name: digest for digest, name in (line.split() for line in lines if line.strip())}
    data = (A11Y_DIR / AXE_FILE).read_bytes()
    assert hashlib.sha256(data).hexdigest() == sums[AXE_FILE], f"{AXE_FILE} does not match SHA256SUMS"
    return data.decode()


# --- data ------------------------------------------------------------------------------------------

_serial = itertools.count(1)


def _ws(db: Any, slug: str) -> int:
    found = db.scalar(select(Workspace.id).where(Workspace.slug == slug))
    assert found, slug
    return int(found)


def _case(**fields: Any) -> int:
    """A case as the workflow leaves it after publication or decline, put in the public index."""
    now = datetime.now(UTC)
    with system_session() as db:
        unit = fields.pop("unit", "horqin")
        state = fields.pop("state", "published")
        case = Case(
            workspace_id=_ws(db, "portal-centre"),
            board="mayor",
            source_id=f"A11Y-{next(_serial)}",
            posted_at=now - timedelta(days=4),
            category=fields.pop("category", "complain"),
            topic=fields.pop("topic", "城乡建设"),
            region=fields.pop("region", "科尔沁区"),
            state=state,
            dispatched_at=now - timedelta(days=3) if state != "declined" else None,
            reply_unit_id=_ws(db, unit) if state != "declined" else None,
            reply_handler_name="刘海燕" if state != "declined" else "",
            reply_handler_phone="0475-8300999" if state != "declined" else "",
            reply_submitted_at=now - timedelta(days=1) if state != "declined" else None,
            published_at=fields.pop("published_at", now) if state != "declined" else None,
            **fields,
        )
        db.add(case)
        db.flush()
        index_case(db, case.id)
        return int(case.id)


@pytest.fixture(scope="module", name="site")
def site_fixture(server: str) -> dict[str, str]:
    """The demo plus: a heating reply with personal data to mask, a private reply, an explanation,
    a declined message that is shown, and enough replies for the lists to have a second page."""
    start = datetime.now(UTC) - timedelta(days=2)
    for i in range(22):
        _case(
            title=f"道路{i + 1}号路段坑洼需修缮",
            body="和平路至建国路之间路面坑洼，雨天积水，请尽快修缮。",
            reply_text="您好，经核实，该路段已列入本年度维修计划，预计下月完工。",
            category="suggest",
            topic="交通运输",
            unit="naiman",
            region="奈曼旗",
            published_at=start + timedelta(minutes=i),
        )
    heating = _case(
        title=HEATING_TITLE,
        body=(
            "我叫王建国，住明仁小区3号楼2单元502室，手机13847511000。入冬以来室温只有15度，"
            "多次给热力公司打电话没有结果，家里有老人和孩子，请领导协调解决供暖问题。"
        ),
        reply_text=(
            "网民朋友您好：经核实，明仁小区供暖管网末端压力不足，热力公司已于11月25日完成调压，"
            "现室温已达18度以上。如仍有问题，请联系经办人刘海燕，电话0475-8300999。"
        ),
    )
    private = _case(
        title=PRIVATE_TITLE,
        body="家中老人赡养问题，希望得到帮助。",
        reply_text="已电话联系留言人。",
        reply_private=True,
        category="help",
        topic="民政",
    )
    explanation = _case(
        title="老旧小区供暖改造进度",
        body="希望加快老旧小区供暖管网改造。",
        reply_text="该小区改造需列入明年计划，已向留言人说明情况。",
        reply_is_explanation=True,
    )
    declined = _case(
        title=DECLINED_TITLE,
        body="我在外省某企业务工，被拖欠工资三个月。",
        state="declined",
        category="help",
        decline_reason="out_of_scope",
        decline_explanation="所反映企业不在通辽市行政区域内。",
        decline_suggestion="请向用人单位所在地劳动保障监察机构反映。",
    )
    with system_session() as db:
        withheld = db.scalar(select(Case.id).where(Case.source_id == "TL-2026-110305"))
        fees = db.scalar(select(Case.id).where(Case.source_id == "TL-2026-110306"))
        lead = db.scalar(select(Assignment.id).where(Assignment.case_id == fees))
    # The demo's signed reply gets its sealed PDF, as the worker would issue it: the reply page then
    # links it with its SHA-256, and /verify finds it by number.
    from app.documents.queue import issue

    issue(f"reply_letter|assignment:{lead}")
    with system_session() as db:
        number = db.scalar(select(Document.number).where(Document.kind == "reply_letter"))
    pages = {
        "home": "/",
        "replies": "/replies",
        "replies-page-2": "/replies?page=2",
        "replies-filtered": "/replies?"
        + urlencode({"unit": "naiman", "category": "suggest", "topic": "交通运输"}),
        "replies-none": "/replies?" + urlencode({"region": "开鲁县"}),
        "reply": f"/replies/{heating}",
        "reply-signed-demo": f"/replies/{fees}",
        "reply-private": f"/replies/{private}",
        "reply-explanation": f"/replies/{explanation}",
        "declined-list": "/declined",
        "declined": f"/declined/{declined}",
        "declined-withheld": f"/declined/{withheld}",
        "search-empty": "/search",
        "search": "/search?" + urlencode({"q": "供暖"}),
        "search-many": "/search?" + urlencode({"q": "路段"}),
        "search-none": "/search?" + urlencode({"q": "月球基地"}),
        "verify": "/verify",
        "verify-found": "/verify?" + urlencode({"number": number}),
        "a11y-settings": "/a11y?next=/replies",
        "not-found": "/replies/99999999",
    }
    if httpx.get(server + "/stats", timeout=10).status_code == 200:  # another issue's page
        pages["stats"] = "/stats"
    return pages


PAGE_NAMES = [
    "home",
    "replies",
    "replies-page-2",
    "replies-filtered",
    "replies-none",
    "reply",
    "reply-signed-demo",
    "reply-private",
    "reply-explanation",
    "declined-list",
    "declined",
    "declined-withheld",
    "search-empty",
    "search",
    "search-many",
    "search-none",
    "verify",
    "verify-found",
    "a11y-settings",
    "not-found",
    "stats",
]


# What each page must show for its scan to mean anything.
SHOWS = {
    "replies-page-2": "nav.pager a[aria-current=page]",
    "replies-filtered": "#results .pub-item",
    "reply": "[data-testid=reply-text]",
    "reply-signed-demo": "[data-testid=sealed-pdf]",
    "reply-private": "[data-testid=private-note]",
    "reply-explanation": ".pub-note",
    "declined": "[data-testid=decline-suggestion]",
    "declined-withheld": "[data-testid=decline-reason]",
    "search": "#results mark",
    "search-many": "nav.pager",
    "verify-found": "[data-testid=verify-found]",
    "not-found": ".error-page",
}


# --- the scan --------------------------------------------------------------------------------------


@pytest.fixture(scope="module", name="axe")
def axe_fixture() -> str:
    return axe_source()


def _context(browser: Browser, base: str, **options: Any) -> BrowserContext:
    ctx = browser.new_context(base_url=base, viewport=LANDSCAPE, locale="zh-CN", **options)  # type: ignore[arg-type]
    ctx.set_default_timeout(TIMEOUT_MS)
    return ctx


@pytest.fixture(scope="module", params=MODES, name="mode_page")
def mode_page_fixture(request: pytest.FixtureRequest, browser: Browser, server: str) -> Iterator[Page]:
    """One browser per 适老化 mode, switched on the way a visitor does: the link in the top strip."""
    ctx = _context(browser, server)
    page = ctx.new_page()
    mode = request.param
    if mode != "standard":
        page.goto("/")
        page.locator(f"[data-testid=a11y-{mode}]").click()
        page.wait_for_load_state()
        expect(page.locator("html")).to_have_class(f"a11y-{mode}")
    yield page
    ctx.close()


def run_axe(page: Page, source: str) -> list[dict[str, Any]]:
    """axe's violations on the page as loaded (source evaluated once per document)."""
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.evaluate(source)
    result = page.evaluate(
        """async (tags) => {
            const options = {runOnly: {type: 'tag', values: tags}, resultTypes: ['violations']};
            const r = await axe.run(document, options);
            return r.violations.map(v => ({
                id: v.id, impact: v.impact, help: v.help, helpUrl: v.helpUrl,
                nodes: v.nodes.map(n => ({
                    target: n.target, summary: n.failureSummary, html: n.html.slice(0, 200),
                })),
            }));
        }""",
        TAGS,
    )
    return list(result)


def describe(violations: list[dict[str, Any]]) -> str:
    lines = []
    for v in violations:
        lines.append(f"[{v['impact']}] {v['id']}: {v['help']} ({v['helpUrl']})")
        for node in v["nodes"][:8]:
            lines.append(f"    {json.dumps(node['target'], ensure_ascii=False)}  {node['html']}")
            lines.append("      " + (node["summary"] or "").replace("\n", "\n      "))
        if len(v["nodes"]) > 8:
            lines.append(f"    … and {len(v['nodes']) - 8} more")
    return "\n".join(lines)


@pytest.mark.parametrize("name", PAGE_NAMES)
def test_public_page_has_no_serious_wcag_violations(
    name: str, site: dict[str, str], mode_page: Page, axe: str
) -> None:
    if name not in site:
        pytest.skip(f"{name}: not served by this build")
    page = mode_page
    response = page.goto(site[name])
    assert response is not None
    assert response.status == (404 if name == "not-found" else 200), (name, response.status)
    if name in SHOWS:  # the part of the page the scan is meant to cover is there
        expect(page.locator(SHOWS[name]).first).to_be_visible()
    mode = page.evaluate("() => document.documentElement.className") or "standard"
    violations = run_axe(page, axe)
    blocking = [v for v in violations if v["impact"] in BLOCKING]
    if violations:
        print(f"\n{name} ({mode}) {site[name]}:\n{describe(violations)}")
    if blocking:
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / f"a11y-{name}-{mode.replace(' ', '-')}.png"), full_page=True)
    assert not blocking, f"{name} ({mode}) {site[name]}:\n{describe(blocking)}"


def _luminance(rgb: Sequence[float]) -> float:
    def channel(c: float) -> float:
        c /= 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(c) for c in rgb[:3])
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(fg: Sequence[float], bg: Sequence[float]) -> float:
    a, b = sorted((_luminance(fg), _luminance(bg)), reverse=True)
    return (a + 0.05) / (b + 0.05)


def test_masthead_text_has_enough_contrast_on_its_gradient(browser: Browser, server: str) -> None:
    """axe leaves text on a gradient "to review": check the masthead's text against every stop."""
    ctx = _context(browser, server)
    page = ctx.new_page()
    page.goto("/")
    found = page.evaluate(
        """() => {
            const rgb = s => (s.match(/rgba?\\([^)]*\\)/g) || []).map(c => c.match(/[\\d.]+/g).map(Number));
            const stops = rgb(getComputedStyle(document.querySelector('.portal-header')).backgroundImage);
            const masthead = '.portal-brand strong, .portal-brand small, .brand-mark';
            const texts = [...document.querySelectorAll(masthead)].map(el => {
                let opacity = 1;
                for (let e = el; e; e = e.parentElement) opacity *= Number(getComputedStyle(e).opacity);
                return {name: el.className || el.tagName, color: rgb(getComputedStyle(el).color)[0], opacity};
            });
            return {stops, texts};
        }"""
    )
    ctx.close()
    assert len(found["stops"]) >= 2 and len(found["texts"]) == 3, found
    for item in found["texts"]:
        alpha = item["opacity"] * (item["color"][3] if len(item["color"]) > 3 else 1)
        for stop in found["stops"]:
            shown = [alpha * f + (1 - alpha) * b for f, b in zip(item["color"][:3], stop[:3], strict=True)]
            assert contrast(shown, stop) >= 4.5, (item, stop, contrast(shown, stop))


# --- without JavaScript ----------------------------------------------------------------------------


@pytest.fixture(name="no_js")
def no_js_fixture(browser: Browser, server: str, site: dict[str, str]) -> Iterator[Page]:
    ctx = _context(browser, server, java_script_enabled=False)
    yield ctx.new_page()
    ctx.close()


def test_search_form_submits_without_javascript(no_js: Page, site: dict[str, str]) -> None:
    page = no_js
    page.goto("/")
    assert page.evaluate("1 + 1") == 2  # (the test's own evaluate still works …)
    assert page.evaluate("() => typeof window.htmx") == "undefined"  # … but the page's scripts do not run
    page.fill("#home-q", "供暖")
    page.locator("form.pub-hero-search button[type=submit]").click()
    page.wait_for_url("**/search?q=*")
    expect(page.locator("#results h2")).to_contain_text("供暖")
    expect(page.locator("#results .pub-item-title a").first).to_be_visible()
    expect(page.locator("#results")).to_contain_text(HEATING_TITLE)
    expect(page.locator("#results mark").first).to_have_text("供暖")
    # The masthead's search box on any page, then a filter on the search page.
    page.goto(site["reply"])
    page.fill("#portal-q", "路段")
    page.locator("form.portal-search button[type=submit]").click()
    page.wait_for_url("**/search?q=*")
    expect(page.locator("#results")).to_contain_text("道路22号路段坑洼需修缮")
    page.select_option("#f-category", "complain")
    page.locator("form.pub-search-form button[type=submit]").click()
    page.wait_for_load_state()
    assert "category=complain" in page.url and "unit=" not in page.url  # the clean address
    expect(page.locator("#results")).to_contain_text("没有找到相关留言")


def test_filters_and_pages_apply_without_javascript(no_js: Page) -> None:
    page = no_js
    page.goto("/replies")
    expect(page.locator("#results-title")).to_contain_text("第 1/2 页")
    page.locator("nav.pager a[rel=next]").click()
    page.wait_for_url("**/replies?page=2")
    expect(page.locator("nav.pager a[aria-current=page]")).to_have_text("2")
    page.select_option("#f-unit", "naiman")
    page.select_option("#f-category", "suggest")
    page.locator("form.pub-filters button[type=submit]").click()
    page.wait_for_url("**/replies?unit=naiman&category=suggest")
    expect(page.locator("#results-title")).to_contain_text("共 22 条答复")
    expect(page.locator("#results")).not_to_contain_text(HEATING_TITLE)
    page.get_by_role("link", name="清除条件").click()
    page.wait_for_url("**/replies")
    page.goto("/declined")
    page.select_option("#f-category", "help")
    page.locator("form.pub-filters button[type=submit]").click()
    page.wait_for_url("**/declined?category=help")
    expect(page.locator("#results")).to_contain_text(DECLINED_TITLE)


def test_reply_pages_and_the_a11y_switches_work_without_javascript(no_js: Page, site: dict[str, str]) -> None:
    page = no_js
    page.goto("/replies")
    page.get_by_role("link", name=HEATING_TITLE).click()
    page.wait_for_url("**" + site["reply"])
    expect(page.locator("h1")).to_have_text(HEATING_TITLE)
    body = page.locator("[data-testid=message-body]")
    expect(body).to_contain_text("138****1000")
    expect(body).not_to_contain_text("13847511000")
    expect(page.locator("[data-testid=reply-text]")).to_contain_text("0475-8300999")  # 第十二条: published
    expect(page.locator("[data-testid=reply-unit]")).to_have_text("科尔沁区人民政府")
    page.locator("[data-testid=a11y-large]").click()
    page.wait_for_url("**" + site["reply"])
    expect(page.locator("html")).to_have_class("a11y-large")
    page.locator("[data-testid=a11y-contrast]").click()
    expect(page.locator("html")).to_have_class("a11y-contrast a11y-large")
    page.goto(site["reply-private"])
    expect(page.locator("[data-testid=private-note]")).to_be_visible()
    page.goto(site["declined"])
    expect(page.locator("[data-testid=decline-suggestion]")).to_contain_text("劳动保障监察机构")
    page.get_by_role("link", name="恢复默认").click()
    expect(page.locator("html")).not_to_have_class("a11y-contrast a11y-large")
