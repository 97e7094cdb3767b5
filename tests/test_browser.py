"""Browser tests: the real server (uvicorn subprocess) driven by Debian's Chromium through Playwright.

Tablet viewports only (1024×768 landscape, 768×1024 portrait). Screenshots go to
``test-output/browser/``. The server shares the test database (SQLite file or PostgreSQL)
through the MINPAN_* environment set by ``tests/conftest.py``.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright
from sqlalchemy import select

from app.accounts.models import User
from app.db import system_session
from app.demo import DEMO_PASSWORD
from app.tenants.models import Membership, Workspace
from tests.conftest import OUTPUT, ROOT, reset_data

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
SHOTS = OUTPUT / "browser"
LANDSCAPE = {"width": 1024, "height": 768}
PORTRAIT = {"width": 768, "height": 1024}
VIEWPORTS = [pytest.param(LANDSCAPE, id="landscape"), pytest.param(PORTRAIT, id="portrait")]
TIMEOUT_MS = 10_000

if not Path(CHROMIUM).exists():  # pragma: no cover - depends on the machine
    pytest.skip(f"{CHROMIUM} not installed", allow_module_level=True)


# --- server and browser ------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _healthy(url: str) -> bool:
    try:
        return httpx.get(url + "/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture(scope="module")
def server(schema: None) -> Iterator[str]:
    """The real app under uvicorn, on fresh demo data (``demo`` is function-scoped, so reset here)."""
    reset_data()
    SHOTS.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    log_path = SHOTS / "server.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "app.app:create_app",
                "--factory",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            cwd=ROOT,
            env=dict(os.environ),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 20
            while not _healthy(base):
                if proc.poll() is not None or time.monotonic() > deadline:
                    tail = log_path.read_text(errors="replace")[-3000:]
                    pytest.fail(f"server did not answer /healthz within 20 s (exit {proc.poll()}):\n{tail}")
                time.sleep(0.1)
            yield base
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


def _context(browser: Browser, base: str, viewport: dict[str, int]) -> BrowserContext:
    ctx = browser.new_context(base_url=base, viewport=viewport, locale="zh-CN")  # type: ignore[arg-type]
    ctx.set_default_timeout(TIMEOUT_MS)
    return ctx


@pytest.fixture(params=VIEWPORTS)
def tablet(request: pytest.FixtureRequest, browser: Browser, server: str) -> Iterator[Page]:
    ctx = _context(browser, server, request.param)
    yield ctx.new_page()
    ctx.close()


# --- helpers -----------------------------------------------------------------------------------


def _tag(page: Page) -> str:
    size = page.viewport_size
    assert size is not None
    return f"{size['width']}x{size['height']}"


def shot(page: Page, name: str) -> None:
    page.screenshot(path=str(SHOTS / f"{name}-{_tag(page)}.png"), full_page=True)


def sign_in(page: Page, username: str, password: str = DEMO_PASSWORD) -> None:
    page.goto("/login")
    page.fill("#username", username)
    page.fill("#password", password)
    page.locator("form[action='/login'] button[type=submit]").click()
    page.wait_for_url("**/ws")


def no_horizontal_scroll(page: Page) -> None:
    widths = page.evaluate("() => ({scroll: document.documentElement.scrollWidth, inner: window.innerWidth})")
    assert widths["scroll"] <= widths["inner"], f"page scrolls horizontally at {_tag(page)}: {widths}"


def _names_outside(slug: str) -> set[str]:
    """Display names of demo people without any post in the workspace ``slug``."""
    with system_session() as db:
        inside = set(
            db.scalars(
                select(User.display_name)
                .join(Membership, Membership.user_id == User.id)
                .join(Workspace, Workspace.id == Membership.workspace_id)
                .where(Workspace.slug == slug)
            )
        )
        everyone = set(db.scalars(select(User.display_name)))
    return everyone - inside


# --- scenarios ---------------------------------------------------------------------------------


def test_handler_sees_only_own_workspace(tablet: Page) -> None:
    page = tablet
    sign_in(page, "horqin.handler")
    assert page.url.endswith("/ws")

    expect(page.locator("[data-testid=current-workspace]")).to_contain_text("科尔沁区人民政府")
    expect(page.locator("[data-testid=workspace-title]")).to_have_text("科尔沁区人民政府")
    expect(page.locator("select#ws-switch")).to_have_count(0)  # one post: no switcher

    nav = page.locator("nav.mainnav")
    expect(nav).to_be_visible()
    expect(nav).to_contain_text("工作台")
    expect(nav).not_to_contain_text("人员与角色")

    html = page.content()
    assert "naiman" not in html.lower()
    leaked = sorted(n for n in _names_outside("horqin") if n in page.inner_text("body"))
    assert not leaked, f"names of other units' staff shown: {leaked}"

    no_horizontal_scroll(page)
    shot(page, "handler-ws")

    response = page.goto("/staff")
    assert response is not None and response.status == 403
    expect(page).to_have_title("无权访问 · 民盼通办")
    expect(page.locator("h1")).to_contain_text("无权访问")
    no_horizontal_scroll(page)
    shot(page, "handler-staff-403")


def test_two_posts_switch_workspace(tablet: Page) -> None:
    page = tablet
    names = {"开鲁县人民政府", "通辽市教育局"}
    sign_in(page, "two.posts")
    current = page.locator("[data-testid=current-workspace]")
    expect(current).to_be_visible()
    before = next(n for n in names if n in current.inner_text())
    after = (names - {before}).pop()
    shot(page, "two-posts-before")

    switcher = page.locator("select#ws-switch")
    expect(switcher).to_be_visible()
    options = switcher.locator("option")
    expect(options).to_have_count(2)
    selected = switcher.input_value()
    other = next(v for v in (options.nth(i).get_attribute("value") for i in range(2)) if v and v != selected)
    switcher.select_option(other)
    page.locator("form.switcher").get_by_role("button", name="切换").click()
    page.wait_for_url("**/ws")

    expect(current).to_contain_text(after)
    expect(current).not_to_contain_text(before)
    expect(page.locator("[data-testid=workspace-title]")).to_have_text(after)
    expect(page.locator("#messages")).to_contain_text("已切换到工作区")
    no_horizontal_scroll(page)
    shot(page, "two-posts-after")


def test_sign_out(tablet: Page) -> None:
    page = tablet
    sign_in(page, "kailu.handler")
    page.get_by_role("button", name="退出").click()
    page.wait_for_url("**/login")
    expect(page.locator("#messages")).to_contain_text("您已安全退出")
    shot(page, "signed-out")

    page.goto("/ws")
    assert "/login" in page.url
    expect(page.locator("#username")).to_be_visible()


def test_unit_admin_staff_portrait(browser: Browser, server: str) -> None:
    ctx = _context(browser, server, PORTRAIT)
    try:
        page = ctx.new_page()
        sign_in(page, "horqin.admin")
        response = page.goto("/staff")
        assert response is not None and response.status == 200
        expect(page.locator("nav.mainnav a[aria-current=page]")).to_have_text("人员与角色")
        expect(page.locator("main")).to_contain_text("horqin.handler")
        assert "naiman" not in page.content().lower()
        shot(page, "admin-staff")
    finally:
        ctx.close()
