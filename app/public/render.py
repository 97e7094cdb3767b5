"""Rendering of public pages: the portal's own layout, the same for every visitor.

A public page does not depend on who is signed in (no flash messages, no navigation by role, no
CSRF token), only on the 适老化 cookie, so it can be cached and revalidated by ETag.
"""

from __future__ import annotations

from typing import Any, Final
from urllib.parse import urlencode, urlsplit

from litestar import Request, Response

from app.web.render import environment

A11Y_COOKIE: Final = "minpan_a11y"
A11Y_MODES: Final = ("large", "contrast")

NAV: Final = (
    ("首页", "/"),
    ("答复公开", "/replies"),
    ("不予受理公开", "/declined"),
    ("留言搜索", "/search"),
    ("办理统计", "/stats"),
)


def a11y_modes(request: Request[Any, Any, Any]) -> frozenset[str]:
    raw = request.cookies.get(A11Y_COOKIE, "")
    return frozenset(m for m in raw.split() if m in A11Y_MODES)


def safe_local_path(target: str | None) -> str:
    """Only a path on this site (never //host or a scheme): the a11y switch's way back."""
    if not target:
        return "/"
    parts = urlsplit(target)
    if (
        parts.scheme
        or parts.netloc
        or not target.startswith("/")
        or target.startswith("//")
        or "\\" in target
    ):
        return "/"
    return target


def _here(request: Request[Any, Any, Any]) -> str:
    query = request.url.query
    return request.url.path + ("?" + query if query else "")


def _a11y_links(here: str, modes: frozenset[str]) -> dict[str, str]:
    def link(**params: int) -> str:
        return "/a11y?" + urlencode({**params, "next": here})

    return {
        "large": link(large=0 if "large" in modes else 1),
        "contrast": link(contrast=0 if "contrast" in modes else 1),
        "reset": link(reset=1),
    }


def public_page(
    request: Request[Any, Any, Any],
    template: str,
    *,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
    **context: Any,
) -> Response[str]:
    html = render_public(
        template, url_path=request.url.path, url_query=request.url.query, modes=a11y_modes(request), **context
    )
    return Response(html, media_type="text/html", status_code=status_code, headers=headers or {})


def render_public(
    template: str, *, url_path: str, url_query: str, modes: frozenset[str], **context: Any
) -> str:
    """A public page's HTML: a function of the address, the 适老化 modes and the context only
    (so that a reply page can be rendered once and stored, app.public.pages)."""
    path = url_path
    here = url_path + ("?" + url_query if url_query else "")
    base = {
        "a11y": modes,
        "a11y_class": " ".join(f"a11y-{m}" for m in sorted(modes)),
        "a11y_links": _a11y_links(here, modes),
        "public_nav": [
            (label, href, path == href or (href != "/" and path.startswith(href + "/")))
            for label, href in NAV
        ],
        "here": here,
        "static_version": "1",
    }
    return environment().get_template(template).render({**base, **context})
