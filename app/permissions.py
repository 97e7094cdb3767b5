"""Roles, permissions and the one guard every route goes through.

Every route handler declares its access in ``opt`` with exactly one of :data:`PUBLIC`,
:data:`SIGNED_IN` or :func:`requires`. A route that declares nothing is refused (deny by
default) and the app refuses to start (see :func:`check_declarations`).

Who may do what is decided by Casbin from ``policies/model.conf`` and ``policies/policy.csv``:
the subject is a role the person holds in the current workspace (from the ``memberships``
table), the domain is the workspace kind.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Final

import casbin

from app.settings import get_settings

if TYPE_CHECKING:
    from litestar import Litestar
    from litestar.connection import ASGIConnection
    from litestar.handlers.base import BaseRouteHandler

    from app.accounts.identity import CurrentUser


class Role(enum.StrEnum):
    CENTRE_CLERK = "centre_clerk"
    CENTRE_REVIEWER = "centre_reviewer"
    CENTRE_ADMIN = "centre_admin"
    SYSTEM_ADMIN = "system_admin"
    SUPERVISOR = "supervisor"
    CITY_LEADER = "city_leader"
    HANDLER = "handler"
    DEPUTY = "deputy"
    PRINCIPAL = "principal"
    UNIT_ADMIN = "unit_admin"

    @property
    def label(self) -> str:
        return ROLE_LABELS[self]


ROLE_LABELS: Final = {
    Role.CENTRE_CLERK: "登记交办员",
    Role.CENTRE_REVIEWER: "审核发布员",
    Role.CENTRE_ADMIN: "运维中心管理员",
    Role.SYSTEM_ADMIN: "系统管理员",
    Role.SUPERVISOR: "督查员",
    Role.CITY_LEADER: "市领导",
    Role.HANDLER: "经办人",
    Role.DEPUTY: "分管领导",
    Role.PRINCIPAL: "主要负责人",
    Role.UNIT_ADMIN: "单位管理员",
}

_UNIT_ROLES: Final = (Role.HANDLER, Role.DEPUTY, Role.PRINCIPAL, Role.UNIT_ADMIN)

# Which roles exist in which kind of workspace (第六条, 第七条).
ROLES_BY_KIND: Final[dict[str, tuple[Role, ...]]] = {
    "centre": (Role.CENTRE_CLERK, Role.CENTRE_REVIEWER, Role.CENTRE_ADMIN, Role.SYSTEM_ADMIN),
    "supervisor": (Role.SUPERVISOR, Role.CITY_LEADER, Role.UNIT_ADMIN),
    "county": _UNIT_ROLES,
    "bureau": _UNIT_ROLES,
    "vertical": _UNIT_ROLES,
}

# Roles a workspace's own administrator may hand out. Only a system administrator appoints
# system administrators.
ROLES_GRANTABLE_BY_STAFF_ADMIN: Final[dict[str, tuple[Role, ...]]] = {
    kind: tuple(r for r in roles if r is not Role.SYSTEM_ADMIN) for kind, roles in ROLES_BY_KIND.items()
}


class Permission(enum.StrEnum):
    """``resource:action`` strings; the Casbin object and action."""

    WORKSPACE_VIEW = "workspace:view"
    WORKSPACE_MANAGE = "workspace:manage"
    STAFF_VIEW = "staff:view"
    STAFF_MANAGE = "staff:manage"
    AUDIT_VIEW = "audit:view"
    AUDIT_VIEW_ALL = "audit:view_all"
    CASE_VIEW = "case:view"
    CASE_REGISTER = "case:register"
    CASE_ACT = "case:act"
    ASSIGNMENT_VIEW = "assignment:view"
    ASSIGNMENT_ACT = "assignment:act"
    CASE_OVERSEE = "case:oversee"
    CASE_INSTRUCT = "case:instruct"
    CALENDAR_MANAGE = "calendar:manage"
    ESCALATION_CONFIGURE = "escalation:configure"
    CASE_TRANSFER = "case:transfer"
    STATS_VIEW = "stats:view"  # 第六条: the centre's statistics, all units
    STATS_VIEW_OWN = "stats:view_own"  # a unit's statistics of its own work only
    SATISFACTION_RECORD = "satisfaction:record"
    ASSESSMENT_VIEW = "assessment:view"  # 第二十一条: every unit's score and deductions
    ASSESSMENT_VIEW_OWN = "assessment:view_own"  # a unit's own score and deductions only
    ASSESSMENT_CONFIGURE = "assessment:configure"  # the centre admin's deduction rules
    BULLETIN_VIEW = "bulletin:view"  # 通报: drafts only with assessment:view or bulletin:issue
    BULLETIN_ISSUE = "bulletin:issue"
    OUTBOX_MANAGE = "outbox:manage"  # the system admin: messages that could not be delivered


ACCESS_KEY: Final = "access"
PERMISSION_KEY: Final = "permission"
PUBLIC: Final[dict[str, Any]] = {ACCESS_KEY: "public"}
SIGNED_IN: Final[dict[str, Any]] = {ACCESS_KEY: "signed_in"}


def requires(permission: Permission) -> dict[str, Any]:
    return {ACCESS_KEY: "permission", PERMISSION_KEY: permission}


@lru_cache(maxsize=1)
def enforcer() -> casbin.Enforcer:
    policies = get_settings().policies_dir
    return casbin.Enforcer(str(policies / "model.conf"), str(policies / "policy.csv"))


@lru_cache(maxsize=4096)
def role_allows(role: str, workspace_kind: str, permission: str) -> bool:
    obj, _, act = permission.partition(":")
    return bool(enforcer().enforce(role, workspace_kind, obj, act))


def allows(roles: Iterable[str], workspace_kind: str, permission: Permission) -> bool:
    return any(role_allows(role, workspace_kind, permission.value) for role in roles)


def declared_access(handler: BaseRouteHandler) -> str | None:
    access = handler.opt.get(ACCESS_KEY)
    if access == "permission" and not isinstance(handler.opt.get(PERMISSION_KEY), Permission):
        return None
    return access if access in {"public", "signed_in", "permission"} else None


def authorize(connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler) -> None:
    """The global guard. Raises NotSignedIn (→ sign-in page) or Forbidden (→ 403)."""
    from app.errors import Forbidden, NotSignedIn, PasswordChangeRequired

    access = declared_access(handler)
    if access is None:
        raise Forbidden("该页面未声明访问权限，已拒绝访问。")
    if access == "public":
        return
    user: CurrentUser | None = connection.scope.get("user")
    if user is None:
        raise NotSignedIn()
    if access == "signed_in":
        return
    if user.must_change_password:
        raise PasswordChangeRequired()
    permission: Permission = handler.opt[PERMISSION_KEY]
    if not user.can(permission):
        raise Forbidden()


def is_automatic_options(handler: BaseRouteHandler) -> bool:
    """Litestar's generated OPTIONS responder: it declares nothing, so the guard refuses it."""
    return getattr(handler, "handler_name", "") == "options_handler" and set(
        getattr(handler, "http_methods", ())
    ) == {"OPTIONS"}


def check_declarations(app: Litestar) -> None:
    """Refuse to start when a route declares neither a permission nor that it is public."""
    missing = [
        f"{route.path} {sorted(getattr(handler, 'http_methods', []))}"
        for route in app.routes
        for handler in getattr(route, "route_handlers", [])
        if declared_access(handler) is None and not is_automatic_options(handler)
    ]
    if missing:
        raise RuntimeError("routes without an access declaration: " + ", ".join(missing))
