"""Reading the audit log: a unit's administrator sees their own unit; the system administrator sees all."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, get
from litestar.di import NamedDependency
from litestar.params import FromQuery
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.accounts.models import User
from app.audit.models import AuditEvent
from app.audit.services import ACTION_LABELS
from app.permissions import Permission, requires
from app.tenants.models import Workspace
from app.tenants.scope import cross_workspace
from app.web.render import page

PAGE_SIZE = 50


def _labels() -> dict[str, str]:
    """Audit actions in Chinese: the account and staff actions, and every workflow step."""
    from app.workflows.transitions import TABLE

    steps = {f"workflow.{t.machine}.{t.action}": t.label for t in TABLE}
    return {**steps, **ACTION_LABELS}


def _events(db: Session, page_no: int) -> tuple[list[Any], int]:
    total = db.scalar(select(func.count()).select_from(AuditEvent)) or 0
    rows = db.execute(
        select(AuditEvent, User.display_name, Workspace.short_name)
        .outerjoin(User, User.id == AuditEvent.actor_id)
        .outerjoin(Workspace, Workspace.id == AuditEvent.workspace_id)
        .order_by(AuditEvent.id.desc())
        .offset((page_no - 1) * PAGE_SIZE)
        .limit(PAGE_SIZE)
    ).all()
    return list(rows), total


class AuditController(Controller):
    @get("/audit", opt=requires(Permission.AUDIT_VIEW), sync_to_thread=True)
    def own(
        self, request: Request[Any, Any, Any], db: NamedDependency[Session], page_no: FromQuery[int] = 1
    ) -> Response[Any]:
        page_no = max(page_no, 1)
        rows, total = _events(db, page_no)  # scoped to the current workspace by the tenant layer
        return page(
            request,
            "audit/list.html",
            rows=rows,
            total=total,
            page_no=page_no,
            page_size=PAGE_SIZE,
            labels=_labels(),
            scope_label="本单位",
        )

    @get("/admin/audit", opt=requires(Permission.AUDIT_VIEW_ALL), sync_to_thread=True)
    def all(
        self, request: Request[Any, Any, Any], db: NamedDependency[Session], page_no: FromQuery[int] = 1
    ) -> Response[Any]:
        page_no = max(page_no, 1)
        with cross_workspace(db):
            rows, total = _events(db, page_no)
        return page(
            request,
            "audit/list.html",
            rows=rows,
            total=total,
            page_no=page_no,
            page_size=PAGE_SIZE,
            labels=_labels(),
            scope_label="全部工作区",
        )
