"""The open statistics page (/stats): no sign-in, a table first, an ECharts chart on top of it."""

from __future__ import annotations

from typing import Any, Final

from litestar import Controller, Request, Response, get
from litestar.params import FromQuery

from app.permissions import PUBLIC
from app.public import stats
from app.public.render import public_page

# The same for every visitor (only the 适老化 cookie varies): cached for a few minutes.
STATS_CACHE: Final = "public, max-age=300"


class OpenStatsController(Controller):
    @get("/stats", opt=PUBLIC, sync_to_thread=True)
    def stats_page(
        self,
        request: Request[Any, Any, Any],
        year: FromQuery[str | None] = None,
        unit: FromQuery[str | None] = None,
    ) -> Response[Any]:
        figures = stats.open_statistics(stats.parse_year(year), " ".join((unit or "").split())[:64])
        return public_page(
            request,
            "public/stats.html",
            headers={"Cache-Control": STATS_CACHE, "Vary": "Cookie"},
            stats=figures,
            percent=stats.percent,
            day_count=stats.day_count,
        )
