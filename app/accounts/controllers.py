"""Sign-in, sign-out, switching workspace and one's own account."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from litestar import Controller, Request, Response, get, post
from litestar.datastructures import Cookie
from litestar.di import NamedDependency
from litestar.params import FromQuery

from app.accounts import services
from app.accounts.identity import CurrentUser
from app.errors import InvalidInput
from app.permissions import PUBLIC, SIGNED_IN
from app.settings import get_settings
from app.web import flash
from app.web.deps import Form
from app.web.identity import SESSION_COOKIE, client_ip
from app.web.render import page


def safe_next(target: str | None) -> str:
    """Only same-site paths: never redirect a signed-in person to another host."""
    if not target:
        return "/ws"
    parts = urlsplit(target)
    if (
        parts.scheme
        or parts.netloc
        or not target.startswith("/")
        or target.startswith("//")
        or "\\" in target
    ):
        return "/ws"
    return target


def _redirect(to: str) -> Response[Any]:
    return Response("", status_code=303, headers={"Location": to})


class AuthController(Controller):
    @get("/login", opt=PUBLIC, sync_to_thread=False)
    def login_form(
        self, request: Request[Any, Any, Any], next: FromQuery[str | None] = None
    ) -> Response[Any]:
        if request.scope.get("user") is not None:
            return _redirect(safe_next(next))
        return page(request, "auth/login.html", next=safe_next(next), error=None, username="")

    @post("/login", opt=PUBLIC, sync_to_thread=True)
    def login(self, request: Request[Any, Any, Any], data: Form) -> Response[Any]:
        username = data.get("username", "")
        target = safe_next(data.get("next"))
        try:
            result = services.sign_in(
                username,
                data.get("password", ""),
                ip=client_ip(request.scope),
                user_agent=request.headers.get("user-agent", ""),
            )
        except InvalidInput as exc:
            return page(
                request,
                "auth/login.html",
                status_code=400,
                next=target,
                error=exc.message,
                username=username,
                notice=None,
            )
        if result.user.must_change_password:
            target = "/account?first=1"
        elif result.user.workspace is None:
            target = "/account"
        response = _redirect(target)
        response.set_cookie(
            Cookie(
                key=SESSION_COOKIE,
                value=result.token,
                httponly=True,
                samesite="lax",
                path="/",
                secure=get_settings().session_cookie_secure,
            )
        )
        return response

    @post("/logout", opt=SIGNED_IN, sync_to_thread=True)
    def logout(self, me: NamedDependency[CurrentUser]) -> Response[Any]:
        services.sign_out(me)
        response = _redirect("/login")
        response.delete_cookie(SESSION_COOKIE, path="/")
        return flash.add(response, "您已安全退出。", "info")

    @post("/ws/switch", opt=SIGNED_IN, sync_to_thread=True)
    def switch(self, me: NamedDependency[CurrentUser], data: Form) -> Response[Any]:
        try:
            workspace_id = int(data.get("workspace_id", ""))
        except ValueError:
            workspace_id = -1
        post_ = services.switch_workspace(me, workspace_id)
        response = Response("", status_code=303, headers={"Location": "/ws", "HX-Redirect": "/ws"})
        return flash.add(response, f"已切换到工作区：{post_.name}")


class AccountController(Controller):
    path = "/account"

    @get("", opt=SIGNED_IN, sync_to_thread=False)
    def show(
        self, request: Request[Any, Any, Any], me: NamedDependency[CurrentUser], first: FromQuery[int] = 0
    ) -> Response[Any]:
        return page(request, "auth/account.html", first=bool(first) or me.must_change_password, error=None)

    @post("/password", opt=SIGNED_IN, sync_to_thread=True)
    def change_password(
        self, request: Request[Any, Any, Any], me: NamedDependency[CurrentUser], data: Form
    ) -> Response[Any]:
        try:
            services.change_password(
                me, data.get("current_password", ""), data.get("password", ""), data.get("confirm", "")
            )
        except InvalidInput as exc:
            return page(
                request, "auth/account.html", status_code=422, first=me.must_change_password, error=exc
            )
        return flash.add(
            _redirect("/ws" if me.workspace else "/account"), "密码已修改，其他设备上的登录已失效。"
        )
