"""Navigation per role: computed from permissions in Python, never only hidden in a template."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from app.permissions import Permission

if TYPE_CHECKING:
    from app.accounts.identity import CurrentUser


@dataclass(frozen=True)
class NavItem:
    label: str
    href: str
    active: bool


_ITEMS: tuple[tuple[str, str, Permission], ...] = (
    ("工作台", "/ws", Permission.WORKSPACE_VIEW),
    ("留言办理", "/cases", Permission.CASE_VIEW),
    ("台账", "/ledger", Permission.CASE_VIEW),
    ("承办件", "/inbox", Permission.ASSIGNMENT_VIEW),
    ("全市留言", "/oversight", Permission.CASE_OVERSEE),
    ("督查", "/supervision", Permission.CASE_OVERSEE),
    ("统计分析", "/stats/centre", Permission.STATS_VIEW),
    ("本单位统计", "/stats/unit", Permission.STATS_VIEW_OWN),
    ("办理流程", "/workflow", Permission.WORKSPACE_VIEW),
    ("人员与角色", "/staff", Permission.STAFF_VIEW),
    ("操作日志", "/audit", Permission.AUDIT_VIEW),
    ("工作区管理", "/admin/workspaces", Permission.WORKSPACE_MANAGE),
    ("全局日志", "/admin/audit", Permission.AUDIT_VIEW_ALL),
    ("工作日历", "/admin/calendar", Permission.CALENDAR_MANAGE),
    ("催督办规则", "/admin/escalation", Permission.ESCALATION_CONFIGURE),
    ("消息投递", "/admin/outbox", Permission.OUTBOX_MANAGE),
    ("考核", "/assessment", Permission.ASSESSMENT_VIEW),
    ("本单位考核", "/assessment/mine", Permission.ASSESSMENT_VIEW_OWN),
    ("通报", "/bulletins", Permission.BULLETIN_VIEW),
    ("考核规则", "/admin/assessment", Permission.ASSESSMENT_CONFIGURE),
)


def navigation(me: CurrentUser | None, path: str) -> list[NavItem]:
    if me is None:
        return []
    return [
        NavItem(label, href, path == href or path.startswith(href + "/"))
        for label, href, permission in _ITEMS
        if me.can(permission)
    ]
