"""Pages anyone may see without signing in."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, get
from sqlalchemy import text

from app.db import get_engine
from app.permissions import PUBLIC
from app.web.render import page


class PublicController(Controller):
    @get("/", opt=PUBLIC, sync_to_thread=False)
    def index(self, request: Request[Any, Any, Any]) -> Response[Any]:
        return page(request, "home/public.html")

    @get("/healthz", opt=PUBLIC, sync_to_thread=True)
    def health(self) -> dict[str, str]:
        with get_engine().connect() as conn:
            conn.execute(text("SELECT 1"))
        return {"status": "ok"}
