"""XSS payloads in every user-supplied field stay inert on the staff and the public pages.

Checked in Chromium, not by string matching: every payload carries a ``data-xss`` attribute and
would open a dialog or set ``window.__xss`` if it ran. On every page the test asserts that no
dialog fired, no element with ``data-xss`` exists (so no markup was injected: the CSP, which
would block the script anyway, is not what makes the test pass), no ``javascript:`` link exists,
``window.__xss`` is unset — and that the payloads' visible marker *is* on the page, so the field
really was rendered there.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import pytest
from playwright.sync_api import Browser, Page
from sqlalchemy import select

from app.accounts.models import User
from app.cases.models import Assignment, Attachment, Case, Instruction, TimelineEntry
from app.db import system_session
from app.public.models import Rating
from tests.browser_support import (  # noqa: F401 - the *_fixture functions register fixtures
    LANDSCAPE,
    SHOTS,
    _free_port,
    _healthy,
    browser_fixture,
    new_context,
    sign_in,
)
from tests.conftest import ROOT, reset_data

MARK = "XSSMARK"
# Many vectors in one text: tags, event handlers, attribute break-outs, mutation XSS, htmx
# attributes, javascript: URLs, template syntax. Each element carries data-xss.
LONG = (
    f"{MARK} <script data-xss>window.__xss=1;alert(1)</script>"
    '"><img data-xss src=x onerror="window.__xss=1;alert(1)">'
    "'><svg data-xss onload=alert(1)></svg>"
    '<a data-xss href="javascript:alert(1)">link</a>'
    '<div data-xss hx-get="/logout" hx-trigger="load">htmx</div>'
    "</textarea></title><details data-xss open ontoggle=alert(1)>"
    "<math><mtext><table><mglyph><style><img data-xss src=x onerror=alert(1)>"
    '<iframe data-xss srcdoc="<script>parent.alert(1)</script>"></iframe>'
    "{{ 7*7 }} {% raw %} ${alert(1)}"
)
SHORT = f"{MARK}<svg data-xss onload=alert(1)>"  # 30 characters: fits VARCHAR(40)
MEDIUM = f'{MARK}"><img data-xss src=x onerror=alert(1)>'  # fits VARCHAR(60)

CASE_TEXT = (
    "title",
    "body",
    "decline_explanation",
    "decline_suggestion",
    "instructions",
    "reply_text",
    "citizen_email",
)
CASE_SHORT = ("topic", "region", "citizen_name", "citizen_phone", "reply_handler_phone")
ASSIGNMENT_TEXT = (
    "title",
    "body",
    "instructions",
    "reply_text",
    "return_reason",
    "extension_reason",
    "centre_comment",
    "contribution",
    "explanation_reason",
    "citizen_email",
)


def _poison() -> dict[str, Any]:
    """Every user-supplied field of the demo data gets a payload; the search index is rebuilt."""
    from app.public.search import index_case

    with system_session() as db:
        cases = db.scalars(select(Case)).all()
        for case in cases:
            for name in CASE_TEXT:
                setattr(case, name, LONG if name != "title" else LONG[:200])
            for name in CASE_SHORT:
                setattr(case, name, SHORT)
            case.reply_handler_name = MEDIUM
            case.reply_signed_by = MEDIUM
        for assignment in db.scalars(select(Assignment)):
            for name in ASSIGNMENT_TEXT:
                setattr(assignment, name, LONG if name != "title" else LONG[:200])
            assignment.citizen_name = SHORT
            assignment.citizen_phone = SHORT
            assignment.lead_unit_name = MEDIUM
        for entry in db.scalars(select(TimelineEntry)):
            entry.comment = LONG
            entry.actor_name = MEDIUM
        for attachment in db.scalars(select(Attachment)):
            attachment.filename = MEDIUM + ".png"
        for user in db.scalars(select(User).where(User.username.in_(["zx.clerk", "horqin.handler"]))):
            user.display_name = MEDIUM
        heating = next(c for c in cases if c.source_id == "TL-2026-110301")
        db.add(
            Instruction(workspace_id=heating.workspace_id, case_id=heating.id, author_name=MEDIUM, text=LONG)
        )
        published = [c for c in cases if c.state == "published"]
        for case in published:
            db.add(
                Rating(
                    workspace_id=case.workspace_id,
                    case_id=case.id,
                    score="unsatisfied",
                    comment=LONG,
                    source="link",
                    created_at=datetime.now(UTC),
                )
            )
        db.flush()
        for case in cases:
            index_case(db, case.id)
        lead = db.scalar(select(Assignment.id).where(Assignment.case_id == heating.id, Assignment.is_lead))
        return {
            "cases": [c.id for c in cases],
            "published": [c.id for c in published],
            "declined": [c.id for c in cases if c.state == "declined"],
            "heating": heating.id,
            "lead": lead,
            "published_assignments": [
                a
                for a in db.scalars(
                    select(Assignment.id).where(Assignment.case_id.in_([c.id for c in published]))
                )
            ],
        }


@pytest.fixture(scope="module", name="server")
def server_fixture(schema: None) -> Iterator[str]:
    """As ``browser_support.server_fixture`` (the real app under uvicorn on fresh demo data), with
    a start-up allowance of 90 s instead of 20: on a loaded two-core machine the first import of
    the app alone can take longer."""
    import os
    import subprocess
    import sys
    import time

    reset_data()
    SHOTS.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    log_path = SHOTS / "server-test_xss.log"
    with log_path.open("wb") as log:
        command = [sys.executable, "-m", "uvicorn", "app.app:create_app", "--factory", "--port", str(port)]
        proc = subprocess.Popen(command, cwd=ROOT, env=dict(os.environ), stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 90
            while not _healthy(base):
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"server did not start: {log_path.read_text(errors='replace')[-2000:]}")
                time.sleep(0.2)
            yield base
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)


@pytest.fixture(scope="module")
def poisoned(server: str) -> Iterator[dict[str, Any]]:
    yield _poison()


def _inert(
    page: Page, url: str, dialogs: list[str], *, rendered: bool = True, signed_in: bool = False
) -> None:
    response = page.goto(url)
    assert response is not None and response.status < 500, (url, response and response.status)
    page.wait_for_timeout(150)  # let onload / ontoggle / htmx "load" triggers run, if any exist
    state = page.evaluate(
        """() => ({
            injected: document.querySelectorAll('[data-xss]').length,
            jsLinks: document.querySelectorAll('a[href^="javascript:" i], [src^="javascript:" i]').length,
            flag: window.__xss === undefined ? null : window.__xss,
            text: document.body ? document.body.innerText : "",
            url: location.pathname,
        })"""
    )
    assert not dialogs, (url, dialogs)
    assert state["injected"] == 0, (url, "markup from a payload became elements")
    assert state["jsLinks"] == 0, url
    assert state["flag"] is None, url
    if signed_in:
        assert state["url"] != "/login", (url, "signed out: an injected hx-get=/logout ran?")
    if rendered:
        assert MARK in state["text"], (url, "the payload is not on the page: the test would prove nothing")


def _browse(browser: Browser, base: str, username: str | None, urls: list[tuple[str, bool]]) -> None:
    ctx = new_context(browser, base, LANDSCAPE)
    dialogs: list[str] = []
    try:
        page = ctx.new_page()
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        if username:
            sign_in(page, username)
        for url, rendered in urls:
            _inert(page, url, dialogs, rendered=rendered, signed_in=bool(username))
    finally:
        ctx.close()


def test_payloads_are_inert_on_the_centres_pages(
    browser: Browser, server: str, poisoned: dict[str, Any]
) -> None:
    urls = [("/cases", True), ("/ws", False), ("/notifications", False)]
    urls += [(f"/cases/{i}", True) for i in poisoned["cases"]]
    urls += [(f"/cases/{i}/satisfaction", True) for i in poisoned["published"]]
    _browse(browser, server, "zx.clerk", urls)


def test_payloads_are_inert_on_the_units_pages(
    browser: Browser, server: str, poisoned: dict[str, Any]
) -> None:
    _browse(browser, server, "horqin.handler", [("/inbox", True), (f"/inbox/{poisoned['lead']}", True)])
    _browse(
        browser,
        server,
        "education.handler",
        [("/inbox", True), *((f"/inbox/{a}", True) for a in poisoned["published_assignments"])],
    )


def test_payloads_are_inert_on_the_supervision_offices_pages(
    browser: Browser, server: str, poisoned: dict[str, Any]
) -> None:
    urls = [("/oversight", True), *((f"/oversight/{i}", True) for i in poisoned["cases"][:4])]
    _browse(browser, server, "dc.supervisor", urls)


def test_payloads_are_inert_on_the_public_pages_and_in_reflected_input(
    browser: Browser, server: str, poisoned: dict[str, Any]
) -> None:
    urls = [("/", True), ("/replies", True), ("/declined", True), ("/search?q=" + MARK, True)]
    urls += [(f"/replies/{i}", True) for i in poisoned["published"]]
    # Reflected: the search box, the sign-in page's next, an unknown path.
    urls += [
        ("/search?q=" + quote(LONG[:300]), False),
        ("/search?q=" + quote('"><img data-xss src=x onerror=alert(1)>'), False),
        ("/login?next=" + quote("javascript:alert(1)"), False),
        ("/login?next=" + quote('"><svg data-xss onload=alert(1)>'), False),
        ("/nope/" + quote("<svg data-xss onload=alert(1)>"), False),
    ]
    _browse(browser, server, None, urls)
