"""Pages anyone may see without signing in: the portal's home and the health check.

The rest of the public portal (replies, declined messages, search) is app/public/.
"""

from __future__ import annotations

from typing import Any

import anyio
from litestar import Controller, Request, Response, get
from sqlalchemy import text

from app.db import get_engine
from app.permissions import PUBLIC
from app.public import queries
from app.public.render import public_page


class PublicController(Controller):
    @get("/", opt=PUBLIC, sync_to_thread=True)
    def index(self, request: Request[Any, Any, Any]) -> Response[Any]:
        return public_page(
            request,
            "public/home.html",
            headers={"Cache-Control": "public, max-age=60", "Vary": "Cookie"},
            latest=queries.latest_replies(8),
        )

    @get("/healthz", opt=PUBLIC, sync_to_thread=True)
    def health(self) -> dict[str, str]:
        with get_engine().connect() as conn:
            conn.execute(text("SELECT 1"))
        return {"status": "ok"}

    @get("/readyz", opt=PUBLIC)
    async def ready(self) -> Response[dict[str, Any]]:
        """Ready to serve: database reachable, schema at the newest migration, broker reachable.
        200 or 503 with the failing checks (each check bounded: 5 s in all)."""
        from app.observability import readiness

        checks: dict[str, str] = {"database": "timed out", "migrations": "unknown", "broker": "unknown"}
        with anyio.move_on_after(5):
            checks = await anyio.to_thread.run_sync(readiness, abandon_on_cancel=True)
        ok = all(v == "ok" for v in checks.values())
        return Response(
            {"status": "ready" if ok else "not ready", "checks": checks},
            status_code=200 if ok else 503,
            headers={"Cache-Control": "no-store"},
        )

    @get("/metrics", opt=PUBLIC, sync_to_thread=True)
    def metrics(self, request: Request[Any, Any, Any]) -> Response[bytes]:
        """Prometheus metrics: a bearer token (MINPAN_METRICS_TOKEN) or loopback only."""
        from app.observability import metrics_allowed, metrics_text

        if not metrics_allowed(request.scope):
            return Response(b"forbidden\n", status_code=403, media_type="text/plain")
        body, content_type = metrics_text()
        return Response(body, media_type=content_type, headers={"Cache-Control": "no-store"})
