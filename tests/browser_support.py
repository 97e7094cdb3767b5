"""Shared machinery of the browser tests: the real server (uvicorn subprocess) on fresh demo data,
Debian's Chromium through Playwright, and the helpers every browser test uses.

A test module takes the fixtures ``server``, ``browser`` (and ``tablet``) by importing their
functions: ``from tests.browser_support import browser_fixture, server_fixture``. The functions
are named apart from the fixtures so that test parameters do not shadow the imports.

``server`` and ``browser`` are module-scoped: every module gets its own reset of the demo data
and its own server, and pytest tears one module's fixtures down before it sets up the next
module's, so the browser test modules may run in any order in one session. Screenshots go to
``test-output/browser/``. The server shares the test database (SQLite file or PostgreSQL) through
the MINPAN_* environment set by ``tests/conftest.py``.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

from app.demo import DEMO_PASSWORD
from tests.conftest import OUTPUT, ROOT, reset_data

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


@pytest.fixture(scope="module", name="server")
def server_fixture(schema: None, request: pytest.FixtureRequest) -> Iterator[str]:
    """The real app under uvicorn, on fresh demo data (``demo`` is function-scoped, so reset here).

    One per test module: the module's own reset, then its own server (log: ``server-<module>.log``).
    """
    reset_data()
    SHOTS.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    log_path = SHOTS / f"server-{request.module.__name__.rsplit('.', 1)[-1]}.log"
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
            deadline = time.monotonic() + 180  # a loaded shared machine imports the app slowly
            while not _healthy(base):
                if proc.poll() is not None or time.monotonic() > deadline:
                    tail = log_path.read_text(errors="replace")[-3000:]
                    pytest.fail(f"server did not answer /healthz within 180 s (exit {proc.poll()}):\n{tail}")
                time.sleep(0.1)
            yield base
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)


@pytest.fixture(scope="module", name="browser")
def browser_fixture() -> Iterator[Browser]:
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


def new_context(
    browser: Browser, base: str, viewport: dict[str, int], *, has_touch: bool = False
) -> BrowserContext:
    ctx = browser.new_context(
        base_url=base,
        viewport=viewport,  # type: ignore[arg-type]
        locale="zh-CN",
        has_touch=has_touch,
    )
    ctx.set_default_timeout(TIMEOUT_MS)
    return ctx


@pytest.fixture(params=VIEWPORTS, name="tablet")
def tablet_fixture(request: pytest.FixtureRequest, browser: Browser, server: str) -> Iterator[Page]:
    ctx = new_context(browser, server, request.param)
    yield ctx.new_page()
    ctx.close()


# --- helpers -----------------------------------------------------------------------------------


def viewport_tag(page: Page) -> str:
    size = page.viewport_size
    assert size is not None
    return f"{size['width']}x{size['height']}"


def shot(page: Page, name: str, *, full_page: bool = True) -> Path:
    """A screenshot ``test-output/browser/<name>-<width>x<height>.png``, of the full page by default.

    A full-page screenshot fires a ``resize`` event in the page (Chromium resizes the layout to
    the page's height and back), so take a viewport one where a resize would change the page.
    """
    path = SHOTS / f"{name}-{viewport_tag(page)}.png"
    page.screenshot(path=str(path), full_page=full_page)
    return path


def sign_in(page: Page, username: str, password: str = DEMO_PASSWORD) -> None:
    """Password, then — for posts with two-factor sign-in — the code: at the first sign-in the
    test reads the secret off the enrolment page (as a person scans the QR code), later it
    computes the code from the stored secret (the person's authenticator app)."""
    import re

    from tests.helpers import totp_code

    page.goto("/login")
    page.fill("#username", username)
    page.fill("#password", password)
    page.locator("form[action='/login'] button[type=submit]").click()
    page.wait_for_url(re.compile(r".*/(ws|login/two-factor)$"))
    if page.url.endswith("/login/two-factor"):
        secret = page.locator("#totp-secret")
        shown = secret.inner_text().replace(" ", "") if secret.count() else None
        page.fill("#code", totp_code(username, shown))
        page.locator("form[action='/login/two-factor'] button[type=submit]").click()
        page.wait_for_url("**/ws")


def sign_out(page: Page) -> None:
    page.locator("form[action='/logout'] button[type=submit]").click()
    page.wait_for_url("**/login")


@contextmanager
def signed_in(
    browser: Browser,
    base: str,
    username: str,
    viewport: dict[str, int] = LANDSCAPE,
    *,
    has_touch: bool = False,
) -> Iterator[Page]:
    """A fresh browser (own cookies) signed in as ``username``; signs out through the UI after."""
    ctx = new_context(browser, base, viewport, has_touch=has_touch)
    try:
        page = ctx.new_page()
        sign_in(page, username)
        yield page
        sign_out(page)
    finally:
        ctx.close()


def no_horizontal_scroll(page: Page) -> None:
    widths = page.evaluate("() => ({scroll: document.documentElement.scrollWidth, inner: window.innerWidth})")
    assert widths["scroll"] <= widths["inner"], f"page scrolls horizontally at {viewport_tag(page)}: {widths}"
