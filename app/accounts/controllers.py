"""Sign-in, sign-out, switching workspace and one's own account."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from litestar import Controller, Request, Response, get, post
from litestar.datastructures import Cookie
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery
from sqlalchemy.orm import Session

from app.accounts import services
from app.accounts.identity import CurrentUser
from app.errors import InvalidInput
from app.permissions import PUBLIC, SIGNED_IN, Permission, requires
from app.settings import get_settings
from app.web import flash
from app.web.deps import Form
from app.web.identity import SESSION_COOKIE, client_ip
from app.web.ratelimit import limited
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


PENDING_COOKIE = "minpan_2fa"
# Pages with a TOTP secret or recovery codes on them are never cached.
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def _session_response(result: services.SignInResult, target: str) -> Response[Any]:
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


class AuthController(Controller):
    @get("/login", opt=PUBLIC, sync_to_thread=False)
    def login_form(
        self, request: Request[Any, Any, Any], next: FromQuery[str | None] = None
    ) -> Response[Any]:
        if request.scope.get("user") is not None:
            return _redirect(safe_next(next))
        return page(request, "auth/login.html", next=safe_next(next), error=None, username="")

    @post("/login", opt={**PUBLIC, **limited("sign_in")}, sync_to_thread=True)
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
        if isinstance(result, services.SecondFactorRequired):
            response = _redirect("/login/two-factor")
            response.set_cookie(
                Cookie(
                    key=PENDING_COOKIE,
                    value=services.pending_token(result.user_id, target),
                    httponly=True,
                    samesite="lax",
                    path="/login",
                    max_age=services.PENDING_SECONDS,
                    secure=get_settings().session_cookie_secure,
                )
            )
            return response
        return _session_response(result, target)

    def _second_factor_page(
        self, request: Request[Any, Any, Any], *, error: InvalidInput | None = None, status_code: int = 200
    ) -> Response[Any]:
        pending = services.read_pending(request.cookies.get(PENDING_COOKIE))
        if pending is None:
            return page(
                request,
                "accounts/two_factor_login.html",
                status_code=400,
                headers=NO_STORE,
                expired=services.PENDING_EXPIRED,
                enrolment=None,
                error=None,
            )
        enrolment = services.second_factor_page(pending.user_id)
        return page(
            request,
            "accounts/two_factor_login.html",
            status_code=status_code,
            headers=NO_STORE,
            expired=None,
            enrolment=enrolment,
            error=error,
        )

    @get("/login/two-factor", opt=PUBLIC, sync_to_thread=True)
    def second_factor_form(self, request: Request[Any, Any, Any]) -> Response[Any]:
        if request.scope.get("user") is not None:
            return _redirect("/ws")
        return self._second_factor_page(request)

    @post("/login/two-factor", opt={**PUBLIC, **limited("sign_in")}, sync_to_thread=True)
    def second_factor(self, request: Request[Any, Any, Any], data: Form) -> Response[Any]:
        pending = services.read_pending(request.cookies.get(PENDING_COOKIE))
        if pending is None:
            return self._second_factor_page(request)
        try:
            result = services.complete_sign_in(
                pending.user_id,
                data.get("code", ""),
                ip=client_ip(request.scope),
                user_agent=request.headers.get("user-agent", ""),
            )
        except services.AccountLocked as exc:
            response = page(
                request,
                "auth/login.html",
                status_code=400,
                next="/ws",
                error=exc.message,
                username="",
                notice=None,
            )
            response.delete_cookie(PENDING_COOKIE, path="/login")
            return response
        except InvalidInput as exc:
            return self._second_factor_page(request, error=exc, status_code=400)
        response = _session_response(result, safe_next(pending.target))
        response.delete_cookie(PENDING_COOKIE, path="/login")
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
        self,
        request: Request[Any, Any, Any],
        me: NamedDependency[CurrentUser],
        first: FromQuery[int] = 0,
    ) -> Response[Any]:
        return page(
            request,
            "auth/account.html",
            first=bool(first) or me.must_change_password,
            expired=services.password_expired_notice(me),
            error=None,
            two_factor=services.two_factor_status(me),
        )

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
                request,
                "auth/account.html",
                status_code=422,
                first=me.must_change_password,
                expired=services.password_expired_notice(me),
                error=exc,
                two_factor=services.two_factor_status(me),
            )
        return flash.add(
            _redirect("/ws" if me.workspace else "/account"), "密码已修改，其他设备上的登录已失效。"
        )

    @get("/two-factor", opt=SIGNED_IN, sync_to_thread=True)
    def two_factor(self, request: Request[Any, Any, Any], me: NamedDependency[CurrentUser]) -> Response[Any]:
        status = services.two_factor_status(me, start_enrolment=True)
        return page(
            request, "accounts/two_factor.html", headers=NO_STORE, status=status, codes=None, error=None
        )

    @post("/two-factor/enrol", opt=SIGNED_IN, sync_to_thread=True)
    def enrol(
        self, request: Request[Any, Any, Any], me: NamedDependency[CurrentUser], data: Form
    ) -> Response[Any]:
        try:
            services.enrol_signed_in(me, data.get("code", ""))
        except InvalidInput as exc:
            status = services.two_factor_status(me, start_enrolment=True)
            return page(
                request,
                "accounts/two_factor.html",
                status_code=422,
                headers=NO_STORE,
                status=status,
                codes=None,
                error=exc,
            )
        return flash.add(_redirect("/account/two-factor"), "两步验证已启用。请妥善保存恢复码。")

    @post("/two-factor/recovery-codes", opt=SIGNED_IN, sync_to_thread=True)
    def renew_codes(
        self, request: Request[Any, Any, Any], me: NamedDependency[CurrentUser], data: Form
    ) -> Response[Any]:
        try:
            codes = services.renew_recovery_codes(me, data.get("code", ""))
        except InvalidInput as exc:
            return page(
                request,
                "accounts/two_factor.html",
                status_code=422,
                headers=NO_STORE,
                status=services.two_factor_status(me, start_enrolment=True),
                codes=None,
                error=exc,
            )
        return page(
            request,
            "accounts/two_factor.html",
            headers=NO_STORE,
            status=services.two_factor_status(me),
            codes=codes,
            error=None,
        )


class SecurityAdminController(Controller):
    """The administrators' side: resetting a colleague's second factor, the password rules."""

    @get("/admin/two-factor", opt=requires(Permission.STAFF_MANAGE), sync_to_thread=True)
    def people(self, request: Request[Any, Any, Any], db: NamedDependency[Session]) -> Response[Any]:
        return page(
            request, "accounts/two_factor_admin.html", people=services.two_factor_roster(db), error=None
        )

    @post("/admin/two-factor/{user_id:int}/reset", opt=requires(Permission.STAFF_MANAGE), sync_to_thread=True)
    def reset(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[Session],
        me: NamedDependency[CurrentUser],
        user_id: FromPath[int],
    ) -> Response[Any]:
        try:
            person = services.reset_two_factor(db, me, user_id)
        except InvalidInput as exc:
            return page(
                request,
                "accounts/two_factor_admin.html",
                status_code=422,
                people=services.two_factor_roster(db),
                error=exc,
            )
        return flash.add(
            _redirect("/admin/two-factor"),
            f"已重置 {person.display_name} 的两步验证，其下次登录时须重新绑定身份验证器。",
        )

    @get("/admin/security", opt=requires(Permission.WORKSPACE_MANAGE), sync_to_thread=True)
    def policy(self, request: Request[Any, Any, Any], db: NamedDependency[Session]) -> Response[Any]:
        return page(
            request, "accounts/security_policy.html", policy=services.security_policy(db), error=None, form={}
        )

    @post("/admin/security", opt=requires(Permission.WORKSPACE_MANAGE), sync_to_thread=True)
    def save_policy(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[Session],
        me: NamedDependency[CurrentUser],
        data: Form,
    ) -> Response[Any]:
        try:
            services.update_security_policy(
                db, me, data.get("password_max_age_days", ""), data.get("password_history", "")
            )
        except InvalidInput as exc:
            return page(
                request,
                "accounts/security_policy.html",
                status_code=422,
                policy=services.security_policy(db),
                error=exc,
                form=data,
            )
        return flash.add(_redirect("/admin/security"), "密码策略已保存。")
