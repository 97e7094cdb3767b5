"""Render Jinja2 templates into HTML responses.

One template per page with named parts: a normal request gets the whole page, an htmx request
that names a partial gets just that fragment (django-htmx-patterns).
"""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from litestar import Request, Response
from litestar.datastructures import Cookie
from litestar.utils.scope.state import ScopeState
from markupsafe import Markup

from app.permissions import ROLE_LABELS, Permission, Role
from app.security.contact import contact
from app.settings import get_settings
from app.web import flash
from app.web.nav import navigation


def _local(value: datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    if value is None:
        return ""
    return value.astimezone(ZoneInfo(get_settings().timezone)).strftime(fmt)


def _provisional(day: object) -> str:
    """'（暂定）' after a due date in a year whose holidays are not loaded yet."""
    from datetime import date

    from app.workflows.deadlines import is_provisional

    return "（暂定）" if isinstance(day, date) and is_provisional(day) else ""


def _overdue(obj: object) -> bool:
    """A case still with the units, or a unit's assignment still owed, whose reply is past its due
    date (shown as 逾期 everywhere)."""
    from app.cases.models import Assignment
    from app.escalation.services import OWED_STATES
    from app.workflows.deadlines import is_overdue

    state = getattr(obj, "state", "")
    owed = state in OWED_STATES if isinstance(obj, Assignment) else state == "assigned"
    return owed and is_overdue(getattr(obj, "due_date", None))


def _publish_by(case: object) -> str:
    """The centre's own deadline (第十二条): a reply under review is published the day it is accepted."""
    from datetime import UTC, datetime

    from app.workflows.deadlines import local_date, publication_due

    delivered = getattr(case, "reply_submitted_at", None)
    if getattr(case, "state", "") != "under_review" or delivered is None:
        return ""
    due = publication_due(delivered)
    today = local_date(datetime.now(UTC))
    if today > due:
        return f"应于{due.month}月{due.day}日发布 · 发布逾期"
    return "今日须发布" if today == due else f"应于{due.month}月{due.day}日发布"


def _role_label(role: str) -> str:
    try:
        return Role(role).label
    except ValueError:
        return role


@lru_cache(maxsize=1)
def environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(str(get_settings().templates_dir)),
        autoescape=select_autoescape(["html", "xml", "svg"], default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["local"] = _local
    env.filters["role_label"] = _role_label
    env.globals["ROLE_LABELS"] = ROLE_LABELS
    env.globals["Permission"] = Permission
    env.globals["settings"] = get_settings()
    env.filters["provisional"] = _provisional
    env.filters["overdue"] = _overdue
    env.filters["publish_by"] = _publish_by
    env.globals["contact"] = contact  # the citizen's contact data, full or masked by role
    env.globals["may_download"] = _may_download  # a document that prints the contact data
    return env


def _may_download(me: object, kind: str) -> bool:
    from app.documents.services import CONTACT_KINDS, may_take_contact

    return kind not in CONTACT_KINDS or may_take_contact(me)


def _unread(me: object) -> int:
    """Unread notifications of the signed-in person in the current workspace (the header's badge)."""
    from app.accounts.identity import CurrentUser
    from app.db import session_factory
    from app.escalation.services import unread_count
    from app.tenants.scope import TenantContext, bind_tenant

    if not isinstance(me, CurrentUser) or me.workspace_id is None:
        return 0
    with session_factory()() as db:
        bind_tenant(db, TenantContext.for_workspace(me.workspace_id, me.user_id))
        return unread_count(db, me.user_id)


def _calendar_warning(me: object) -> str:
    """For calendar administrators: next year's holidays are not loaded yet."""
    from datetime import UTC, datetime

    if me is None or not me.can(Permission.CALENDAR_MANAGE):  # type: ignore[attr-defined]
        return ""
    from app.calendar import days
    from app.workflows.deadlines import local_date

    next_year = local_date(datetime.now(UTC)).year + 1
    if days.current().is_known(datetime(next_year, 1, 1).date()):
        return ""
    return (
        f"{next_year} 年放假安排尚未录入：跨年的办理期限按周一至周五暂计并标注“暂定”。请在“工作日历”中录入。"
    )


def csrf_token(request: Request[Any, Any, Any]) -> str:
    token = ScopeState.from_scope(request.scope).csrf_token
    return token if isinstance(token, str) else ""


def is_htmx(request: Request[Any, Any, Any]) -> bool:
    return (
        request.headers.get("hx-request") == "true"
        and request.headers.get("hx-history-restore-request") != "true"
    )


def render_html(request: Request[Any, Any, Any], template: str, **context: Any) -> tuple[str, list[Cookie]]:
    me = request.scope.get("user")
    token = csrf_token(request)
    messages, cookies = flash.consume(request)
    base = {
        "request": request,
        "me": me,
        "nav": navigation(me, request.url.path),
        "messages": messages,
        "csrf_token": token,
        "csrf_input": Markup('<input type="hidden" name="_csrf_token" value="{}">').format(token),
        "htmx": is_htmx(request),
        "calendar_warning": _calendar_warning(me),
        "unread": _unread(me),
        "static_version": "1",
    }
    base.update(context)
    return environment().get_template(template).render(base), cookies


def page(
    request: Request[Any, Any, Any],
    template: str,
    *,
    partial: str | None = None,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
    **context: Any,
) -> Response[str]:
    """The whole page, or only ``partial`` when htmx asks for a fragment."""
    name = partial if partial and is_htmx(request) else template
    html, cookies = render_html(request, name, **context)
    return Response(
        html,
        media_type="text/html",
        status_code=status_code,
        headers=headers or {},
        cookies=cookies,
    )
