"""Pages anyone may see without signing in: the portal's home and the health check.

The rest of the public portal (replies, declined messages, search) is app/public/.
"""

from __future__ import annotations

from typing import Any

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
