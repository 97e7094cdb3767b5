"""Whole workflows through the real UI: the real server, Debian's Chromium, one person at a time.

Journey 1 (第九条 to 第十六条): the centre registers and dispatches a message, the unit receives it,
drafts the reply and asks for sign-off, the principal signs it by hand on a tablet, the centre
publishes and archives it.

Journey 2 (第十五条): the unit returns a message that is not its business, the deputy leader signs
the return on a tablet, the centre accepts it and dispatches the message to another unit.

Full-page screenshots of the key steps go to ``test-output/browser/workflow-*.png``.
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta

import pytest
from playwright.sync_api import Browser, Locator, Page, expect

from app.workflows.deadlines import local_date
from app.workflows.signatures import decode, signature_problem
from tests.browser_support import (  # noqa: F401 - the *_fixture functions register fixtures
    LANDSCAPE,
    PORTRAIT,
    browser_fixture,
    no_horizontal_scroll,
    server_fixture,
    shot,
    signed_in,
)

pytestmark = pytest.mark.browser

SHEET_RE = re.compile(r"^通留〔(\d{4})〕(\d+)号$")
EMPTY_PAD_NOTE = "请先在签名框内手写签名"


# --- helpers -----------------------------------------------------------------------------------


def snap(page: Page, name: str, *, full_page: bool = True) -> None:
    """A screenshot ``workflow-<name>-<viewport>.png``, on a page that fits the tablet."""
    no_horizontal_scroll(page)
    shot(page, f"workflow-{name}", full_page=full_page)


def snap_signature(page: Page, name: str) -> None:
    """The signing page with the drawn signature, pad and submit button in view.

    Not full-page: a full-page screenshot fires a window ``resize``, and static/js/sign.js clears
    the pad on every resize, so the drawing would be gone before the form is submitted.
    """
    page.locator("form.sign-form button[type=submit]").scroll_into_view_if_needed()
    snap(page, name, full_page=False)
    canvas = page.locator("[data-signature-pad] canvas.sign-canvas")
    assert ink_pixels(canvas) > 200, "the drawn signature vanished from the pad"


def unique_source_id(tag: str) -> str:
    return f"TL-E2E-{tag}-{time.time_ns() % 10**12}"


def posted_at() -> str:
    """Two days ago at 10:00 in Tongliao (the form refuses a time in the future)."""
    day = local_date(datetime.now(UTC)) - timedelta(days=2)
    return f"{day:%Y-%m-%d} 10:00"


def case_state(page: Page) -> Locator:
    return page.get_by_test_id("case-state")


def assignment_state(page: Page) -> Locator:
    return page.get_by_test_id("assignment-state")


def flash(page: Page) -> Locator:
    return page.locator("#messages")


def register_message(page: Page, *, source_id: str, title: str, body: str, category: str) -> str:
    """The clerk registers a message through 登记留言; returns the case page's path."""
    page.goto("/cases")
    page.get_by_role("link", name="登记留言").click()
    page.wait_for_url("**/cases/new")
    page.select_option("#f-board", label="市长板块")
    page.fill("#f-source_id", source_id)
    page.fill("#f-posted_at", posted_at())
    page.select_option("#f-category", label=category)
    page.fill("#f-topic", "城乡建设")
    page.fill("#f-region", "通辽市")
    page.fill("#f-title", title)
    page.fill("#f-body", body)
    page.fill("#f-citizen_name", "韩女士")
    page.fill("#f-citizen_phone", "13847512345")
    page.locator("form[action='/cases'] button[type=submit]").click()
    page.wait_for_url(re.compile(r"/cases/\d+$"))
    expect(flash(page)).to_contain_text("留言已登记")
    expect(page.get_by_role("heading", level=1)).to_have_text(title)
    expect(page.locator(".eyebrow")).to_contain_text(source_id)
    expect(case_state(page)).to_have_text("待交办")
    path = re.sub(r"^https?://[^/]+", "", page.url)
    return path


def dispatch(page: Page, unit: str) -> str:
    """The clerk dispatches the open case to ``unit`` as lead unit; returns the new sheet number."""
    lead = page.locator("select#f-lead")
    labels = [t.strip() for t in lead.locator("option").all_inner_texts()]
    label = next((t for t in labels if t.startswith(f"{unit}（")), None)
    assert label, f"{unit} is not offered as lead unit: {labels[:5]}…"
    lead.select_option(label=label)
    page.get_by_role("button", name="转办", exact=True).click()
    expect(flash(page)).to_contain_text("已完成：转办")
    expect(case_state(page)).to_have_text("办理中")
    number = page.get_by_test_id("sheet-number")
    expect(number).to_have_text(SHEET_RE)
    text = number.inner_text().strip()
    match = SHEET_RE.match(text)
    assert match and int(match.group(1)) == local_date(datetime.now(UTC)).year, text
    return text


def inbox_row(page: Page, title: str) -> Locator:
    return page.locator("table tbody tr").filter(has=page.get_by_role("link", name=title, exact=True))


def open_assignment(page: Page, title: str) -> None:
    page.goto("/inbox")
    page.get_by_role("link", name=title, exact=True).click()
    page.wait_for_url(re.compile(r"/inbox/\d+$"))
    expect(page.get_by_role("heading", level=1)).to_have_text(title)


def open_case(page: Page, title: str) -> None:
    page.goto("/cases")
    page.get_by_role("link", name=title, exact=True).click()
    page.wait_for_url(re.compile(r"/cases/\d+$"))
    expect(page.get_by_role("heading", level=1)).to_have_text(title)


def click(page: Page, button: str) -> None:
    page.get_by_role("button", name=button, exact=True).click()


def ink_pixels(canvas: Locator) -> int:
    """How many pixels of the signature canvas are drawn on."""
    return int(
        canvas.evaluate(
            """c => { const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                     let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i]) n++; return n; }"""
        )
    )


def draw_signature(page: Page) -> None:
    """A real stroke across the pad with the mouse: a wavy line, then a cross-stroke."""
    canvas = page.locator("[data-signature-pad] canvas.sign-canvas")
    canvas.scroll_into_view_if_needed()
    box = canvas.bounding_box()
    assert box and box["width"] > 200 and box["height"] > 100, f"signature pad too small: {box}"
    left, top, width, height = box["x"], box["y"], box["width"], box["height"]
    page.mouse.move(left + width * 0.12, top + height * 0.55)
    page.mouse.down()
    for i in range(1, 25):
        x = left + width * (0.12 + 0.7 * i / 24)
        y = top + height * (0.55 - 0.25 * ((-1) ** i) * (i % 3) / 2)
        page.mouse.move(x, y, steps=3)
    page.mouse.up()
    page.mouse.move(left + width * 0.3, top + height * 0.25)
    page.mouse.down()
    page.mouse.move(left + width * 0.45, top + height * 0.8, steps=8)
    page.mouse.up()
    assert ink_pixels(canvas) > 200, "the stroke did not reach the signature pad"


def assert_signature_image(img: Locator, *, min_width: int = 100) -> None:
    """The image is shown, decodes, and carries a stroke at least ``min_width`` pixels wide."""
    expect(img).to_be_visible()
    assert img.evaluate("i => i.complete && i.naturalWidth > 0"), "signature image does not load"
    src = img.get_attribute("src") or ""
    assert signature_problem(src) is None, signature_problem(src)
    from io import BytesIO

    from PIL import Image

    raw = decode(src)
    assert raw is not None
    with Image.open(BytesIO(raw)) as picture:
        bbox = picture.convert("RGBA").getchannel("A").getbbox()
    assert bbox and bbox[2] - bbox[0] >= min_width, f"signature stroke too small: {bbox}"


# --- journey 1: publish and archive ------------------------------------------------------------


def test_publish_and_archive(browser: Browser, server: str) -> None:
    title = "民主路与和平路交叉口红绿灯故障"
    body = "民主路与和平路交叉口的红绿灯已经坏了一周，早晚高峰非常拥堵，也很危险，请尽快维修。"
    reply = "网民朋友您好：经核实，该路口信号灯控制器损坏，已于本周更换并恢复正常运行。感谢您的监督。"

    # The centre registers the message and dispatches it to Horqin district.
    with signed_in(browser, server, "zx.clerk") as page:
        case_path = register_message(
            page, source_id=unique_source_id("J1"), title=title, body=body, category="投诉"
        )
        snap(page, "1-01-registered")
        sheet = dispatch(page, "科尔沁区人民政府")
        expect(page.locator("table")).to_contain_text("科尔沁区人民政府")
        snap(page, "1-02-dispatched")

    # The handler receives it, drafts the reply and asks the principal to sign.
    with signed_in(browser, server, "horqin.handler") as page:
        page.goto("/inbox")
        row = inbox_row(page, title)
        expect(row).to_contain_text(sheet)
        expect(row).to_contain_text("待签收")
        open_assignment(page, title)
        expect(assignment_state(page)).to_have_text("待签收")
        expect(page.locator(".eyebrow")).to_contain_text(sheet)
        click(page, "签收")
        expect(flash(page)).to_contain_text("已完成：签收")
        expect(assignment_state(page)).to_have_text("办理中")
        page.fill("textarea#f-reply", reply)
        click(page, "保存回复意见")
        expect(flash(page)).to_contain_text("已完成：起草回复意见")
        expect(page.get_by_test_id("draft")).to_have_text(reply)
        snap(page, "1-03-reply-drafted")
        click(page, "提交主要负责人审签")
        expect(assignment_state(page)).to_have_text("待审签")
        snap(page, "1-04-awaiting-signoff")

    # The principal signs by hand on a tablet: first an empty pad (refused in the page), then a stroke.
    with signed_in(browser, server, "horqin.principal", PORTRAIT, has_touch=True) as page:
        open_assignment(page, title)
        expect(assignment_state(page)).to_have_text("待审签")
        expect(page.get_by_test_id("draft")).to_have_text(reply)
        posts: list[str] = []
        page.on("request", lambda r: posts.append(r.url) if r.method == "POST" else None)
        url_before = page.url
        submit = page.get_by_role("button", name="签发并加盖公章，报送运维中心")
        submit.click()
        expect(page.locator("[data-sign-note]")).to_contain_text(EMPTY_PAD_NOTE)
        assert posts == [], f"an empty signature pad was submitted: {posts}"
        assert page.url == url_before
        expect(assignment_state(page)).to_have_text("待审签")
        snap(page, "1-05-empty-pad-refused")
        page.reload()
        expect(assignment_state(page)).to_have_text("待审签")  # nothing reached the server

        draw_signature(page)
        snap_signature(page, "1-06-signature-drawn")
        submit.click()
        expect(flash(page)).to_contain_text("已完成：主要负责人审签并加盖公章")
        expect(assignment_state(page)).to_have_text("已报送")
        assert_signature_image(page.locator("img.sig[alt=主要负责人手写签名]"))
        expect(page.get_by_text("已审签", exact=True)).to_be_visible()
        expect(page.locator("form[action*='/act/']")).to_have_count(0)
        snap(page, "1-07-signed")

    # The centre's reviewer checks the reply and signature, publishes and archives.
    with signed_in(browser, server, "zx.reviewer") as page:
        open_case(page, title)
        assert page.url.endswith(case_path)
        expect(case_state(page)).to_have_text("待审核")
        expect(page.get_by_test_id("reply-text")).to_have_text(reply)
        assert_signature_image(page.locator("img[alt=主要负责人手写签名]"))
        snap(page, "1-08-under-review")
        click(page, "审核通过，当日公开答复")
        expect(flash(page)).to_contain_text("已完成：审核通过并当日公开答复")
        expect(case_state(page)).to_have_text("已公开答复")
        click(page, "归档（第十六条）")
        expect(flash(page)).to_contain_text("已完成：归档")
        expect(case_state(page)).to_have_text("已归档")
        # Archived cases are read-only: no 办理 section, no form that posts a workflow step.
        expect(page.locator("section.actions")).to_have_count(0)
        expect(page.get_by_role("heading", name="办理", exact=True)).to_have_count(0)
        expect(page.locator("form[action*='/act/']")).to_have_count(0)
        expect(page.get_by_test_id("reply-text")).to_have_text(reply)
        expect(page.locator("table")).to_contain_text("已办结")
        snap(page, "1-09-archived")

    # The unit's copy is closed too.
    with signed_in(browser, server, "horqin.handler") as page:
        page.goto("/inbox")
        expect(inbox_row(page, title)).to_contain_text("已办结")


# --- journey 2: return and re-dispatch (第十五条) --------------------------------------------------


def test_return_and_redispatch(browser: Browser, server: str) -> None:
    title = "城区商品房逾期交房问题"
    body = "我在通辽市城区购买的商品房合同约定去年年底交房，开发商至今未交房，请有关部门督促解决。"
    reason = "经核实，该楼盘位于通辽市中心城区，商品房预售和交房监管属市住建局职责，不属于本县职责。"

    with signed_in(browser, server, "zx.clerk") as page:
        case_path = register_message(
            page, source_id=unique_source_id("J2"), title=title, body=body, category="求助"
        )
        old_sheet = dispatch(page, "开鲁县人民政府")
        snap(page, "2-01-dispatched-to-kailu")

    # Kailu's handler drafts a return on the day of receipt.
    with signed_in(browser, server, "kailu.handler") as page:
        open_assignment(page, title)
        expect(assignment_state(page)).to_have_text("待签收")
        page.locator("details summary", has_text="退办").click()
        page.fill("textarea#f-ret", reason)
        click(page, "拟退办，报分管领导签字")
        expect(flash(page)).to_contain_text("已完成：拟退办")
        expect(assignment_state(page)).to_have_text("退办待签")
        expect(page.locator("main")).to_contain_text(reason)
        snap(page, "2-02-return-drafted")

    # The deputy leader signs the return by hand on a tablet.
    with signed_in(browser, server, "kailu.deputy", PORTRAIT, has_touch=True) as page:
        open_assignment(page, title)
        expect(assignment_state(page)).to_have_text("退办待签")
        expect(page.locator("main")).to_contain_text(reason)
        draw_signature(page)
        snap_signature(page, "2-03-return-signature-drawn")
        click(page, "签字并书面退回运维中心")
        expect(flash(page)).to_contain_text("已完成：分管领导签字退办")
        expect(assignment_state(page)).to_have_text("退办待审")
        snap(page, "2-04-return-signed")

    # The centre accepts the return and dispatches the message to the housing bureau.
    with signed_in(browser, server, "zx.clerk") as page:
        page.goto(case_path)
        expect(case_state(page)).to_have_text("办理中")
        row = page.locator("table tbody tr").filter(has_text="开鲁县人民政府")
        expect(row).to_contain_text("退办待审")
        expect(row).to_contain_text(reason)
        assert_signature_image(row.locator("img.sig-thumb[alt=分管领导签字]"))
        snap(page, "2-05-return-requested")
        row.get_by_role("button", name="同意退办").click()
        expect(flash(page)).to_contain_text("已完成：同意牵头单位退办，重新派单")
        expect(case_state(page)).to_have_text("待交办")
        expect(page.get_by_test_id("sheet-number")).to_have_count(0)
        expect(page.locator("table tbody tr").filter(has_text="开鲁县人民政府")).to_contain_text("已退回")
        new_sheet = dispatch(page, "通辽市住房和城乡建设局")
        assert new_sheet != old_sheet
        expect(page.locator("table tbody tr").filter(has_text="通辽市住房和城乡建设局")).to_contain_text(
            new_sheet
        )
        snap(page, "2-06-redispatched")

    with signed_in(browser, server, "housing.handler") as page:
        page.goto("/inbox")
        row = inbox_row(page, title)
        expect(row).to_have_count(1)
        expect(row).to_contain_text(new_sheet)
        expect(row).to_contain_text("待签收")
        snap(page, "2-07-housing-inbox")

    with signed_in(browser, server, "kailu.handler") as page:
        page.goto("/inbox")
        row = inbox_row(page, title)
        expect(row).to_have_count(1)
        expect(row).to_contain_text(old_sheet)
        expect(row).to_contain_text("已退回")
        snap(page, "2-08-kailu-inbox")
