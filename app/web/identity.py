"""Resolve the session cookie into the signed-in person for every HTTP request."""

from __future__ import annotations

import anyio
from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Receive, Scope, Send

from app.accounts.services import resolve_session

SESSION_COOKIE = "minpan_session"


def client_ip(scope: Scope) -> str:
    client = scope.get("client")
    return client[0] if client else ""


class IdentityMiddleware(ASGIMiddleware):
    """Puts ``scope["user"]`` (a CurrentUser, or None) on every HTTP request."""

    scopes = (ScopeType.HTTP,)

    @staticmethod
    def should_bypass_for_scope(scope: Scope) -> bool:
        """Static files need no identity (by path: one route handler serves all of /static/)."""
        return scope["path"].startswith("/static/")

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        token = _cookie(scope, SESSION_COOKIE)
        ip = client_ip(scope)
        if token:
            resolved = await anyio.to_thread.run_sync(lambda: resolve_session(token, ip=ip))
            scope["user"] = resolved.user
            scope["session_expired"] = resolved.expired  # type: ignore[typeddict-unknown-key]
        else:
            scope["user"] = None
            scope["session_expired"] = False  # type: ignore[typeddict-unknown-key]
        await next_app(scope, receive, send)


def _cookie(scope: Scope, name: str) -> str | None:
    for key, value in scope.get("headers", []):
        if key == b"cookie":
            for part in value.decode("latin-1").split(";"):
                k, _, v = part.strip().partition("=")
                if k == name:
                    return v
    return None
