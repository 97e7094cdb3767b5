"""Rate limits on sign-in, the rating link and the intake API: 429 with Retry-After, shared via Redis."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator
from typing import Any

import pytest
from litestar.testing import TestClient

from app.security.headers import HEADERS
from app.settings import get_settings
from app.web.ratelimit import LIMITS, MemoryStore, RateLimiter, parse_limits
from tests.helpers import csrf

REDIS_URL = os.environ.get("MINPAN_TEST_REDIS_URL", "")
# Small numbers, hour-long windows (a window ending mid-test would reset the count).
SMALL = "sign_in=3/3600,rating=3/3600,intake=2/3600"


def _app(**overrides: Any):  # type: ignore[no-untyped-def]
    from app.app import create_app

    settings = dataclasses.replace(
        get_settings(), rate_limit="on", rate_limit_limits=SMALL, **{"rate_limit_url": "", **overrides}
    )
    return create_app(settings)


@pytest.fixture()
def limited_client(demo: None) -> Iterator[TestClient]:  # type: ignore[type-arg]
    with TestClient(app=_app()) as c:
        yield c


def _login(client: TestClient, username: str = "zx.clerk", password: str = "wrong") -> Any:  # type: ignore[type-arg]  # noqa: S107
    return client.post(
        "/login",
        data={"username": username, "password": password},
        headers={"x-csrftoken": csrf(client)},
        follow_redirects=False,
    )


def test_sign_in_over_the_limit_gets_a_chinese_429_page_with_retry_after(limited_client) -> None:  # type: ignore[no-untyped-def]
    for _ in range(3):
        assert _login(limited_client).status_code != 429
    refused = _login(limited_client, password="Tongliao#2026")  # even the right password: not checked
    assert refused.status_code == 429
    assert "操作过于频繁" in refused.text and "后再试" in refused.text
    assert refused.headers["content-type"].startswith("text/html")
    retry = int(refused.headers["retry-after"])
    assert 0 < retry <= 3600
    assert all(refused.headers.get(name) == value for name, value in HEADERS.items())
    assert "minpan_session" not in refused.cookies
    # Reading the sign-in page is not limited.
    assert limited_client.get("/login").status_code == 200


def test_the_two_factor_step_counts_against_the_same_limit(limited_client) -> None:  # type: ignore[no-untyped-def]
    for _ in range(3):
        limited_client.post(
            "/login/two-factor", data={"code": "000000"}, headers={"x-csrftoken": csrf(limited_client)}
        )
    assert _login(limited_client).status_code == 429


def test_the_rating_link_is_limited_on_reads_and_posts(limited_client) -> None:  # type: ignore[no-untyped-def]
    for _ in range(3):
        assert limited_client.get("/rate/not-a-real-token").status_code == 404
    refused = limited_client.get("/rate/another-token")
    assert refused.status_code == 429 and "操作过于频繁" in refused.text
    assert int(refused.headers["retry-after"]) > 0


def test_the_intake_api_answers_429_in_json_per_token(limited_client) -> None:  # type: ignore[no-untyped-def]
    headers = {"authorization": "Bearer guessed-token-1"}
    for _ in range(2):
        assert limited_client.post("/api/v1/messages", json={}, headers=headers).status_code == 401
    refused = limited_client.post("/api/v1/messages", json={}, headers=headers)
    assert refused.status_code == 429
    assert refused.json()["status"] == 429 and refused.json()["error"] == "操作过于频繁"
    assert int(refused.headers["retry-after"]) > 0
    # Another client of the feed (another token) counts on its own.
    other = limited_client.post("/api/v1/messages", json={}, headers={"authorization": "Bearer other"})
    assert other.status_code == 401


def test_limits_are_off_in_the_test_environment_unless_asked_and_settings_parse() -> None:
    settings = get_settings()
    assert settings.environment == "test"
    assert RateLimiter.from_settings(settings).backend == "off"
    assert RateLimiter.from_settings(dataclasses.replace(settings, rate_limit="on")).backend == "MemoryStore"
    production_like = dataclasses.replace(settings, rate_limit="auto", environment="production")
    assert RateLimiter.from_settings(production_like).backend == "MemoryStore"
    assert parse_limits("sign_in=5/60")["sign_in"].hits == 5
    assert parse_limits("")["intake"] == LIMITS["intake"]
    for bad in ("nope=1/1", "sign_in=x/60", "sign_in=5"):
        with pytest.raises(ValueError):
            parse_limits(bad)


def test_the_memory_window_ends_and_counts_are_per_client() -> None:
    import asyncio

    now = [1_000_000.0]
    store = MemoryStore(clock=lambda: now[0])

    def hit(key: str) -> tuple[int, int]:
        return asyncio.run(store.hit(key, 60))

    assert hit("a")[0] == 1
    assert hit("a")[0] == 2
    assert hit("b")[0] == 1
    hits, retry = hit("a")
    assert hits == 3 and 0 < retry <= 60
    now[0] += retry
    assert hit("a")[0] == 1  # a new window


@pytest.mark.skipif(not REDIS_URL, reason="needs MINPAN_TEST_REDIS_URL")
def test_two_web_processes_share_one_count_through_redis(demo: None) -> None:
    import redis

    redis.Redis.from_url(REDIS_URL).flushdb()
    with (
        TestClient(app=_app(rate_limit_url=REDIS_URL)) as one,
        TestClient(app=_app(rate_limit_url=REDIS_URL)) as two,
    ):
        assert _login(one).status_code != 429
        assert _login(two).status_code != 429
        assert _login(one).status_code != 429
        assert _login(two).status_code == 429  # the fourth, whichever process it reached
    keys = redis.Redis.from_url(REDIS_URL).keys("minpan:rl:sign_in:*")
    assert keys and all(0 < redis.Redis.from_url(REDIS_URL).ttl(k) <= 3601 for k in keys)


def test_when_redis_is_down_the_limit_fails_open(demo: None) -> None:
    with TestClient(app=_app(rate_limit_url="redis://127.0.0.1:1/0")) as client:
        for _ in range(5):
            assert _login(client).status_code != 429
