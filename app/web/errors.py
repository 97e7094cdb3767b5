"""Every error, mapped once: a Chinese HTML page, an htmx fragment, or a precise JSON body for the API."""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import quote

from litestar import MediaType, Request, Response
from litestar.exceptions import (
    HTTPException,
    NotAuthorizedException,
    NotFoundException,
    PermissionDeniedException,
    ValidationException,
)
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR
from sqlalchemy.orm.exc import StaleDataError

from app.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    MinpanError,
    NotFound,
    NotSignedIn,
    PasswordChangeRequired,
)
from app.tenants.scope import TenantViolation
from app.web import flash
from app.web.identity import SESSION_COOKIE
from app.web.render import is_htmx, render_html

log = logging.getLogger("minpan.errors")

_TITLES = {
    400: ("请求有误", "请求格式不正确，请返回上一页检查后重试。"),
    401: (NotSignedIn.title, NotSignedIn.default_message),
    403: (Forbidden.title, Forbidden.default_message),
    404: (NotFound.title, NotFound.default_message),
    405: ("不支持的操作", "该页面不支持此种访问方式。"),
    409: (Conflict.title, Conflict.default_message),
    413: ("内容过大", "提交的内容超过了允许的大小。"),
    422: ("填写有误", "提交的内容有误，请检查后重试。"),
    429: ("操作过于频繁", "操作过于频繁，请稍后再试。"),
    500: ("系统繁忙", "系统暂时无法完成您的请求，请稍后重试。如多次出现，请联系运维中心。"),
}


def _describe(exc: Exception) -> tuple[int, str, str]:
    if isinstance(exc, MinpanError):
        return exc.status_code, exc.title, exc.message
    if isinstance(exc, PermissionDeniedException) and "CSRF" in str(exc.detail):
        return 403, "页面已过期", "页面安全校验失败（可能已超时），请刷新页面后重新提交。"
    if isinstance(exc, StaleDataError):
        # Another person changed the same case between our read and our write (optimistic lock).
        return 409, Conflict.title, "该办件已被他人处理，请刷新后查看最新状态。"
    if isinstance(exc, TenantViolation):
        # Always a bug, and never a reason to show anything of the other workspace.
        log.error("tenant violation: %s", exc)
        return 404, *_TITLES[404]
    if isinstance(exc, HTTPException):
        code = exc.status_code
        title, message = _TITLES.get(code, _TITLES[400] if code < 500 else _TITLES[500])
        return code, title, message
    log.exception("unhandled error", exc_info=exc)
    return 500, *_TITLES[500]


# The public portal's addresses: their errors (a reply not public, a bad search) wear its layout.
_PUBLIC_PREFIXES = ("/replies", "/declined", "/search", "/stats", "/a11y", "/rate", "/verify", "/sitemap.xml")


def _public_layout(request: Request[Any, Any, Any]) -> bool:
    """A visitor of the public portal, or anyone who is not signed in, gets the public layout."""
    path = request.url.path
    if path == "/" or any(path == p or path.startswith(p + "/") for p in _PUBLIC_PREFIXES):
        return True
    return SESSION_COOKIE not in request.cookies


def handle(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    code, title, message = _describe(exc)
    if request.url.path.startswith("/api/"):
        body: dict[str, Any] = {"status": code, "error": title, "detail": message}
        if isinstance(exc, ValidationException) and exc.extra:
            body["errors"] = exc.extra
        if isinstance(exc, InvalidInput) and exc.field:
            body["field"] = exc.field
        return Response(body, status_code=code, media_type=MediaType.JSON)
    if code == 401:
        if isinstance(exc, PasswordChangeRequired):
            target = "/account?first=1"
        else:
            target = "/login?next=" + quote(request.url.path, safe="/")
        if is_htmx(request):
            redirect = Response("", status_code=200, headers={"HX-Redirect": target})
        else:
            redirect = Response("", status_code=303, headers={"Location": target})
        if request.scope.get("session_expired"):
            redirect.delete_cookie(SESSION_COOKIE, path="/")
            flash.add(redirect, "您长时间未操作，已自动退出，请重新登录。", "info")
        return redirect
    if is_htmx(request):
        html, cookies = render_html(request, "errors/_fragment.html", code=code, title=title, message=message)
        # Show the message in the page's message area instead of swapping it into the target.
        return Response(
            html,
            status_code=code,
            media_type=MediaType.HTML,
            cookies=cookies,
            headers={"HX-Retarget": "#messages", "HX-Reswap": "innerHTML"},
        )
    try:
        if _public_layout(request):
            from app.public.render import a11y_modes, render_public

            html, cookies = (
                render_public(
                    "public/error.html",
                    url_path=request.url.path,
                    url_query=request.url.query,
                    modes=a11y_modes(request),
                    code=code,
                    title=title,
                    message=message,
                ),
                [],
            )
            return Response(html, status_code=code, media_type=MediaType.HTML)
        html, cookies = render_html(request, "errors/error.html", code=code, title=title, message=message)
    except Exception:  # the error page itself must never fail
        log.exception("error page failed")
        html, cookies = f"<h1>{code}</h1><p>系统繁忙，请稍后重试。</p>", []
        code = HTTP_500_INTERNAL_SERVER_ERROR if code < 400 else code
    return Response(html, status_code=code, media_type=MediaType.HTML, cookies=cookies)


EXCEPTION_HANDLERS: dict[type[Exception] | int, Any] = {
    MinpanError: handle,
    TenantViolation: handle,
    HTTPException: handle,
    NotFoundException: handle,
    NotAuthorizedException: handle,
    PermissionDeniedException: handle,
    Exception: handle,
}
