"""Shared test helpers: CSRF-aware posts and sign-in, as a browser does them."""

from __future__ import annotations

import re

from litestar.testing import TestClient

from app.demo import DEMO_PASSWORD

CSRF_RE = re.compile(r'name="_csrf_token" value="([^"]+)"')


def csrf(client: TestClient) -> str:  # type: ignore[type-arg]
    token = client.cookies.get("minpan_csrf")
    if not token:
        client.get("/login")
        token = client.cookies.get("minpan_csrf")
    assert token, "no CSRF cookie issued"
    return token


def post(client: TestClient, url: str, data: dict[str, str] | None = None, **kw):  # type: ignore[no-untyped-def,type-arg]
    headers = {"x-csrftoken": csrf(client), **kw.pop("headers", {})}
    return client.post(url, data=data or {}, headers=headers, follow_redirects=False, **kw)


def totp_code(username: str, secret: str | None = None) -> str:
    """A valid TOTP code for ``username`` now, as the person's authenticator app would show it.

    A code is never accepted twice, so signing the same person in twice within one 30-second step
    would be refused: people cannot, tests do. Then the next step's code is used (accepted for
    clock drift), and past that the remembered step is moved back — a test-only shortcut; the
    replay rule itself is tested in tests/test_two_factor.py without this helper.
    """
    import time

    import pyotp
    from sqlalchemy import select

    from app.accounts.models import User
    from app.db import system_session

    with system_session() as db:
        user = db.scalar(select(User).where(User.username == username))
        assert user is not None and (secret or user.totp_secret), f"{username} has no TOTP secret"
        secret = secret or user.totp_secret
        now = int(time.time() // 30)
        step = max(now, user.totp_last_step + 1)
        if step > now + 1:
            user.totp_last_step = now - 1
            step = now
        return pyotp.TOTP(secret).at(step * 30)


def second_factor(client: TestClient, username: str):  # type: ignore[no-untyped-def,type-arg]
    """The step after the password: enrol (first sign-in of a post that requires it) or a code."""
    page = client.get("/login/two-factor")
    assert page.status_code == 200, page.text
    return post(client, "/login/two-factor", {"code": totp_code(username)})


def sign_in(client: TestClient, username: str, password: str = DEMO_PASSWORD):  # type: ignore[no-untyped-def,type-arg]
    """Sign in as a browser does; for posts with two-factor sign-in, the second step too (the
    person enrols at their first sign-in, like a real one). Returns the last response."""
    response = post(client, "/login", {"username": username, "password": password})
    if response.status_code == 303 and response.headers.get("location") == "/login/two-factor":
        return second_factor(client, username)
    return response
