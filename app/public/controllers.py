"""The public portal's pages: no sign-in, plain links and forms, htmx only as an enhancement.

Every handler reads through :mod:`app.public.queries` (its own read-only session) and never gets
the request's tenant-scoped session.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any, Final
from urllib.parse import parse_qsl, urlsplit
from xml.sax.saxutils import escape as xml_escape

from litestar import Controller, Request, Response, get
from litestar.datastructures import Cookie
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect

from app.errors import NotFound
from app.permissions import PUBLIC
from app.public import pages, queries
from app.public.memory import PAGE_MEMORY
from app.public.render import A11Y_COOKIE, a11y_modes, public_page, safe_local_path
from app.settings import get_settings

LIST_CACHE: Final = "public, max-age=60"
PAGE_CACHE: Final = pages.PAGE_CACHE
# The public pages post nothing: they are left out of the CSRF middleware, so that no response a
# shared cache may keep sets a cookie (app.app's csrf_config).
# The rating page /rate/{token} posts a form: it keeps the CSRF cookie and is never cached.
CSRF_EXEMPT: Final = ("^/$", "^/replies", "^/declined", "^/search", "^/sitemap\\.xml$", "^/a11y", "^/stats$")


def _filters(**raw: str | None) -> queries.Filters:
    return queries.Filters.parse(**raw)


def _list_headers(filters: queries.Filters, page: int, path: str) -> dict[str, str]:
    return {"Cache-Control": LIST_CACHE, "Vary": "Cookie", "HX-Push-Url": filters.url(path, max(page, 1))}


def _canonical(
    request: Request[Any, Any, Any], filters: queries.Filters, page: int, path: str
) -> Response[Any] | None:
    """A GET form sends empty fields (?unit=&category=consult): answer with the clean address."""
    clean = filters.url(path, max(page, 1))
    asked = sorted(parse_qsl(request.url.query, keep_blank_values=True))
    if asked == sorted(parse_qsl(urlsplit(clean).query)):
        return None
    if request.headers.get("hx-request") == "true":
        return None  # htmx swaps the results in; public_page's HX-Push-Url shows the clean address
    return Redirect(clean, status_code=303)


def _not_modified(request: Request[Any, Any, Any], etag: str, last_modified: datetime) -> bool:
    return pages.not_modified(
        request.headers.get("if-none-match"), request.headers.get("if-modified-since"), etag, last_modified
    )


def _cached(
    request: Request[Any, Any, Any],
    etag: str,
    last_modified: datetime,
    render: Callable[[dict[str, str]], Response[Any]],
) -> Response[Any]:
    """The page, or 304 Not Modified without rendering it."""
    modes = a11y_modes(request)
    if modes:
        etag = etag[:-1] + "-" + "-".join(sorted(modes)) + '"'
    headers = {
        "ETag": etag,
        "Last-Modified": format_datetime(last_modified.astimezone(UTC), usegmt=True),
        "Cache-Control": PAGE_CACHE,
        "Vary": "Cookie",
    }
    if _not_modified(request, etag, last_modified):
        return Response(content=b"", status_code=304, headers=headers)
    return render(headers)


def _stored_page(request: Request[Any, Any, Any], stored: pages.Stored) -> Response[Any]:
    assert stored.modified is not None and stored.body is not None
    headers = pages.stored_headers(stored)
    if _not_modified(request, stored.etag, stored.modified):
        return Response(content=b"", status_code=304, headers=headers)
    return Response(stored.body, media_type="text/html", headers=headers)


class PublicPortalController(Controller):
    @get("/replies", opt=PUBLIC, sync_to_thread=True)
    def replies(
        self,
        request: Request[Any, Any, Any],
        unit: FromQuery[str | None] = None,
        category: FromQuery[str | None] = None,
        topic: FromQuery[str | None] = None,
        region: FromQuery[str | None] = None,
        month: FromQuery[str | None] = None,
        page: FromQuery[int] = 1,
    ) -> Response[Any]:
        filters = _filters(unit=unit, category=category, topic=topic, region=region, month=month)
        if redirect := _canonical(request, filters, page, "/replies"):
            return redirect
        return public_page(
            request,
            "public/replies.html",
            headers=_list_headers(filters, page, "/replies"),
            filters=filters,
            options=queries.filter_options("reply"),
            results=queries.list_entries("reply", filters, page),
            path="/replies",
        )

    @get("/replies/{case_id:int}", opt=PUBLIC, sync_to_thread=True)
    def reply(self, request: Request[Any, Any, Any], case_id: FromPath[int]) -> Response[Any]:
        # 页面静态化: the default display comes from the stored page (app.public.pages) when it is
        # current; otherwise the case is read and rendered, and the row filled for the next visit.
        seen: int | None = None
        if not request.url.query and not a11y_modes(request):
            epoch = PAGE_MEMORY.epoch()  # before the read: a change committed after it is not kept
            stored = pages.lookup(case_id)
            if stored is not None and stored.body is not None and stored.modified is not None:
                PAGE_MEMORY.keep(case_id, stored, epoch)
                return _stored_page(request, stored)
            seen = stored.generation if stored is not None else None
        found = queries.reply(case_id)
        if found is None:
            raise NotFound("该答复不存在或尚未公开。")

        def render(headers: dict[str, str]) -> Response[Any]:
            if seen is None or found is None:
                return public_page(
                    request, "public/reply.html", headers=headers, reply=found, pdf_digest=found.pdf_digest
                )
            body = pages.render_reply(found)
            pages.fill(found, body, seen)
            return Response(body, media_type="text/html", headers=headers)

        return _cached(request, found.etag, found.last_modified, render)

    @get("/declined", opt=PUBLIC, sync_to_thread=True)
    def declined_list(
        self,
        request: Request[Any, Any, Any],
        category: FromQuery[str | None] = None,
        month: FromQuery[str | None] = None,
        page: FromQuery[int] = 1,
    ) -> Response[Any]:
        filters = _filters(category=category, month=month)
        if redirect := _canonical(request, filters, page, "/declined"):
            return redirect
        return public_page(
            request,
            "public/declined_list.html",
            headers=_list_headers(filters, page, "/declined"),
            filters=filters,
            options=queries.filter_options("declined"),
            results=queries.list_entries("declined", filters, page),
            path="/declined",
        )

    @get("/declined/{case_id:int}", opt=PUBLIC, sync_to_thread=True)
    def declined(self, request: Request[Any, Any, Any], case_id: FromPath[int]) -> Response[Any]:
        found = queries.declined(case_id)
        if found is None:
            raise NotFound("该留言不存在或未公开。")
        return _cached(
            request,
            found.etag,
            found.last_modified,
            lambda headers: public_page(request, "public/declined.html", headers=headers, message=found),
        )

    @get("/search", opt=PUBLIC, sync_to_thread=True)
    def search(
        self,
        request: Request[Any, Any, Any],
        q: FromQuery[str | None] = None,
        unit: FromQuery[str | None] = None,
        category: FromQuery[str | None] = None,
        month: FromQuery[str | None] = None,
        page: FromQuery[int] = 1,
    ) -> Response[Any]:
        filters = _filters(q=q, unit=unit, category=category, month=month)
        if redirect := _canonical(request, filters, page, "/search"):
            return redirect
        results = queries.list_entries("all", filters, page) if filters.q else None
        return public_page(
            request,
            "public/search.html",
            headers=_list_headers(filters, page, "/search"),
            filters=filters,
            options=queries.filter_options("reply"),
            results=results,
            path="/search",
        )

    @get("/sitemap.xml", opt=PUBLIC, sync_to_thread=True)
    def sitemap(self) -> Response[bytes]:
        base = get_settings().public_url.rstrip("/")
        lines = [
            '<?xml version="1.0" encoding="UTF-8"?>',
            '<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">',
        ]
        for path in ("/", "/replies", "/declined", "/stats"):
            lines.append(f"<url><loc>{xml_escape(base + path)}</loc></url>")
        for entry in queries.sitemap():
            loc, lastmod = xml_escape(base + entry.path), entry.lastmod.isoformat()
            lines.append(f"<url><loc>{loc}</loc><lastmod>{lastmod}</lastmod></url>")
        lines.append("</urlset>")
        return Response(
            ("\n".join(lines) + "\n").encode(),
            media_type="application/xml; charset=utf-8",
            headers={"Cache-Control": "public, max-age=3600"},
        )

    @get("/a11y", opt=PUBLIC, sync_to_thread=False)
    def a11y(
        self,
        request: Request[Any, Any, Any],
        large: FromQuery[int | None] = None,
        contrast: FromQuery[int | None] = None,
        reset: FromQuery[int | None] = None,
        next: FromQuery[str | None] = None,
    ) -> Response[Any]:
        """适老化: large text and high contrast, kept in a cookie; plain links, no script needed."""
        if large is None and contrast is None and reset is None:
            return public_page(request, "public/a11y.html", next=safe_local_path(next))
        modes = set() if reset else set(a11y_modes(request))
        for name, value in (("large", large), ("contrast", contrast)):
            if value is not None:
                (modes.add if value else modes.discard)(name)
        cookie = Cookie(
            key=A11Y_COOKIE,
            value=" ".join(sorted(modes)) or "none",
            max_age=0 if not modes else 365 * 24 * 3600,
            path="/",
            httponly=True,
            samesite="lax",
            secure=get_settings().session_cookie_secure,
        )
        return Redirect(safe_local_path(next), status_code=303, cookies=[cookie])
