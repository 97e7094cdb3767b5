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


def sign_in(client: TestClient, username: str, password: str = DEMO_PASSWORD):  # type: ignore[no-untyped-def,type-arg]
    response = post(client, "/login", {"username": username, "password": password})
    return response
