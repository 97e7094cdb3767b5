"""Writing the audit log. Every security-relevant action calls :func:`record`."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from app.audit.chain import insert_many as record_many
from app.audit.models import AuditEvent

__all__ = ["ACTION_LABELS", "record", "record_contact_view", "record_many"]

ACTION_LABELS = {
    "auth.sign_in": "登录成功",
    "auth.sign_in_failed": "登录失败",
    "auth.locked": "账户锁定",
    "auth.sign_in_refused_locked": "锁定期间尝试登录",
    "auth.sign_out": "退出登录",
    "auth.session_expired": "会话超时",
    "auth.password_changed": "修改密码",
    "auth.password_reset": "重置密码",
    "auth.unlocked": "解除锁定",
    "auth.workspace_switched": "切换工作区",
    "auth.password_expired": "密码过期",
    "auth.two_factor_enrolled": "启用两步验证",
    "auth.two_factor_failed": "两步验证失败",
    "auth.two_factor_recovery_used": "使用恢复码登录",
    "auth.two_factor_codes_renewed": "重新生成恢复码",
    "auth.two_factor_reset": "重置两步验证",
    "security.policy_updated": "修改密码策略",
    "audit.purged": "清理过期日志",
    "contact.viewed": "查看网民联系方式",
    "staff.user_created": "新建人员",
    "staff.role_granted": "授予角色",
    "staff.role_revoked": "撤销角色",
    "staff.section_added": "新增科室",
    "staff.section_removed": "删除科室",
    "workspace.created": "新建工作区",
    "workspace.updated": "修改工作区",
    "case.registered": "登记留言",
    "calendar.year_loaded": "录入工作日历",
    "case.classified": "修改分类",
    "case.instructed": "领导批示",
    "case.attachment_added": "添加附件",
    "case.duplicate_marked": "标记重复留言",
    "case.duplicate_unmarked": "取消重复标记",
    "satisfaction.link_issued": "生成回访链接",
    "satisfaction.rated": "满意率回访",
}


def record(
    session: Session,
    action: str,
    *,
    actor_id: int | None,
    workspace_id: int | None,
    target: str = "",
    ip: str = "",
    **detail: Any,
) -> AuditEvent:
    event = AuditEvent(
        action=action, actor_id=actor_id, workspace_id=workspace_id, target=target, ip=ip, detail=detail
    )
    session.add(event)
    return event


def record_contact_view(
    session: Session,
    me: Any,
    holder: Any,
    *,
    case_id: int,
    assignment_id: int | None = None,
    page: str,
    full: bool | None = None,
) -> AuditEvent | None:
    """个人信息保护法: log each time a page shows staff a citizen's contact data (who, which case,
    which page, whether in full or masked). Nothing is logged when the message has none; a
    ``holder`` of None is a document that prints the data (``full`` then says how).

    On SQLite the entry is flushed at once, so the request takes the write lock now (waiting for
    it if need be) rather than at commit, when an intervening writer would fail the page."""
    fields = ("citizen_name", "citizen_phone", "citizen_email")
    if holder is not None and not any(getattr(holder, f, "") for f in fields):
        return None
    if full is None:
        from app.security.contact import sees_full_contact

        full = bool(sees_full_contact(me))
    detail: dict[str, Any] = {"page": page, "full": full}
    if assignment_id is not None:
        detail["assignment_id"] = assignment_id
    event = record(
        session,
        "contact.viewed",
        actor_id=me.user_id,
        workspace_id=me.workspace_id,
        target=f"case:{case_id}",
        ip=getattr(me, "ip", ""),
        **detail,
    )
    if session.get_bind().dialect.name == "sqlite":
        session.flush()
    return event
