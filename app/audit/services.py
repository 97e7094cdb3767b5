"""Writing the audit log. Every security-relevant action calls :func:`record`."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from app.audit.models import AuditEvent

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
