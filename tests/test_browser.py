"""Browser tests: the real server (uvicorn subprocess) driven by Debian's Chromium through Playwright.

Tablet viewports only (1024×768 landscape, 768×1024 portrait). Screenshots go to
``test-output/browser/``. The server shares the test database (SQLite file or PostgreSQL)
through the MINPAN_* environment set by ``tests/conftest.py``.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser, Page, expect
from sqlalchemy import select

from app.accounts.models import User
from app.db import system_session
from app.tenants.models import Membership, Workspace
from tests.browser_support import (  # noqa: F401 - the *_fixture functions register fixtures
    PORTRAIT,
    browser_fixture,
    new_context,
    no_horizontal_scroll,
    server_fixture,
    shot,
    sign_in,
    tablet_fixture,
)

pytestmark = pytest.mark.browser


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
    ctx = new_context(browser, server, PORTRAIT)
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
