"""Rate limits on the doors people knock on without being signed in: sign-in, the citizen's rating
link ``/rate/{token}`` and the message board's intake API (等保2.0 三级: 登录失败处理, 防暴力破解).

A route opts in with ``opt={**PUBLIC, **limited("sign_in")}``; the app-wide guard ``RateLimiter``
(``create_app``) counts each request of such a route in a fixed window per client and answers over
the limit with 429 and ``Retry-After``: the Chinese error page, or the API's JSON error under
``/api/``. The per-account lockout (``lockout_threshold``) stays the wall against guessing one
person's password from many addresses; this limit is the wall against one address trying many.

Where the counts live (``MINPAN_RATE_LIMIT_URL``, else the broker URL):

- ``redis://…`` — in Redis (``INCR`` + ``EXPIRE`` in one transaction): shared by every web process
  on every machine, which is what production (``minpan serve --workers N``) needs.
- otherwise — in the web process's memory. Right for the embedded default (one process). With
  RabbitMQ and no Redis, each of N processes counts on its own, so a client gets up to N × the
  limit: set ``MINPAN_RATE_LIMIT_URL`` to a Redis to make it exact. The database is not used: a
  write per anonymous request would put the sign-in page's load on the transactional tables.

If Redis does not answer, the request is let through and the failure logged (the limit fails open:
a Redis outage must not lock every citizen and clerk out); the account lockout still applies.

``MINPAN_RATE_LIMIT``: ``auto`` (on, except in the test environment, where many tests sign in from
one address), ``on`` or ``off``. ``MINPAN_RATE_LIMIT_LIMITS`` overrides the numbers:
``sign_in=30/300,rating=30/600,intake=120/60`` (hits / seconds).
"""

from __future__ import annotations

import hashlib
import logging
import math
import threading
import time
from dataclasses import dataclass
from typing import Any, Final, Protocol

from litestar import Request, Response
from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler

from app.errors import MinpanError
from app.settings import Settings
from app.web.identity import client_ip

log = logging.getLogger("minpan.ratelimit")

RATE_LIMIT_KEY: Final = "rate_limit"


@dataclass(frozen=True)
class Limit:
    hits: int
    seconds: int
    methods: frozenset[str] | None = None  # None: every method


# Defaults. Sign-in: 30 attempts in 5 minutes from one address (an office behind one NAT signs in
# well under that; a password-spraying script is slowed to ~8,600 a day). The rating link: a
# citizen opens and submits it a few times; its token is 256 random bits. The feed: the message
# board posts one message per request, in bursts.
LIMITS: Final[dict[str, Limit]] = {
    "sign_in": Limit(30, 300, frozenset({"POST"})),
    "rating": Limit(30, 600),
    "intake": Limit(120, 60, frozenset({"POST"})),
}


def limited(name: str) -> dict[str, Any]:
    """Route ``opt`` that puts the route under the named limit."""
    if name not in LIMITS:
        raise ValueError(f"unknown rate limit {name!r}")
    return {RATE_LIMIT_KEY: name}


class RateLimited(MinpanError):
    status_code = 429
    title = "操作过于频繁"
    default_message = "操作过于频繁，请稍后再试。"

    def __init__(self, retry_after: int) -> None:
        self.retry_after = max(1, retry_after)
        seconds = self.retry_after
        wait = f"{seconds} 秒" if seconds < 120 else f"{math.ceil(seconds / 60)} 分钟"
        super().__init__(f"操作过于频繁，请 {wait}后再试。")


def rate_limited_response(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """The app's error page (JSON under /api/) with ``Retry-After``."""
    from app.web.errors import handle

    response = handle(request, exc)
    if isinstance(exc, RateLimited):
        response.headers["Retry-After"] = str(exc.retry_after)
    return response


class Store(Protocol):
    async def hit(self, key: str, seconds: int) -> tuple[int, int]:
        """Count one hit in the current window: (hits so far, seconds until the window ends)."""
        ...


class MemoryStore:
    """Counts in this process (the embedded default: one web process)."""

    def __init__(self, clock: Any = time.time) -> None:
        self._counts: dict[str, tuple[int, int]] = {}  # key → (window end, hits)
        self._lock = threading.Lock()
        self._clock = clock

    async def hit(self, key: str, seconds: int) -> tuple[int, int]:
        now = self._clock()
        window_end = (int(now) // seconds + 1) * seconds
        with self._lock:
            end, hits = self._counts.get(key, (window_end, 0))
            if end <= now:
                end, hits = window_end, 0
            hits += 1
            self._counts[key] = (end, hits)
            if len(self._counts) > 50_000:  # forget finished windows
                self._counts = {k: v for k, v in self._counts.items() if v[0] > now}
        return hits, max(1, math.ceil(end - now))


class RedisStore:
    """Counts in Redis, shared by every web process."""

    def __init__(self, url: str) -> None:
        import redis.asyncio as aioredis

        self._redis = aioredis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)

    async def hit(self, key: str, seconds: int) -> tuple[int, int]:
        now = time.time()
        window = int(now) // seconds
        full = f"minpan:rl:{key}:{window}"
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.incr(full)
            pipe.expire(full, seconds + 1)
            hits, _ = await pipe.execute()
        return int(hits), max(1, math.ceil((window + 1) * seconds - now))

    async def close(self) -> None:
        await self._redis.aclose()


def parse_limits(spec: str) -> dict[str, Limit]:
    """``sign_in=30/300,intake=120/60`` over the defaults."""
    limits = dict(LIMITS)
    for entry in filter(None, (e.strip() for e in spec.split(","))):
        name, _, value = entry.partition("=")
        hits, _, seconds = value.partition("/")
        if name.strip() not in LIMITS or not hits.strip().isdigit() or not seconds.strip().isdigit():
            raise ValueError(f"MINPAN_RATE_LIMIT_LIMITS: {entry!r} is not <known name>=<hits>/<seconds>")
        base = LIMITS[name.strip()]
        limits[name.strip()] = Limit(int(hits), max(1, int(seconds)), base.methods)
    return limits


def _client(connection: ASGIConnection[Any, Any, Any, Any], name: str) -> str:
    who = client_ip(connection.scope) or "unknown"
    if name == "intake":
        # Per client of the feed: its address and (a digest of) the token it presents.
        token = connection.headers.get("authorization", "")
        who += ":" + hashlib.sha256(token.encode()).hexdigest()[:16]
    return who


class RateLimiter:
    """The app-wide guard; does nothing for routes without ``limited(…)`` in their opt."""

    def __init__(self, store: Store | None, limits: dict[str, Limit]) -> None:
        self.store = store
        self.limits = limits

    @classmethod
    def from_settings(cls, settings: Settings) -> RateLimiter:
        mode = settings.rate_limit.strip().lower()
        enabled = mode == "on" or (mode == "auto" and settings.environment != "test")
        if not enabled:
            return cls(None, LIMITS)
        limits = parse_limits(settings.rate_limit_limits)
        url = settings.rate_limit_url or settings.broker_url
        if url.startswith(("redis://", "rediss://", "unix://")):
            return cls(RedisStore(url), limits)
        return cls(MemoryStore(), limits)

    @property
    def backend(self) -> str:
        return type(self.store).__name__ if self.store else "off"

    async def __call__(
        self, connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler
    ) -> None:
        name = handler.opt.get(RATE_LIMIT_KEY)
        if self.store is None or not name:
            return
        limit = self.limits[name]
        if limit.methods is not None and connection.scope.get("method") not in limit.methods:
            return
        try:
            hits, retry_after = await self.store.hit(f"{name}:{_client(connection, name)}", limit.seconds)
        except Exception:  # Redis down: fail open, loudly (see the module's docstring)
            log.warning("rate limit store unavailable; %s not limited", name, exc_info=True)
            return
        if hits > limit.hits:
            log.warning("rate limit %s exceeded by %s", name, client_ip(connection.scope))
            raise RateLimited(retry_after)
