"""Workspace home, a unit's staff and roles, and workspace management for the system administrator."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath
from sqlalchemy.orm import Session

from app.accounts.identity import CurrentUser
from app.db import utcnow
from app.permissions import ROLES_BY_KIND, ROLES_GRANTABLE_BY_STAFF_ADMIN, Permission, requires
from app.tenants import services
from app.tenants.models import WORKSPACE_KIND_LABELS, WorkspaceKind
from app.web import flash
from app.web.deps import Form, attempt
from app.web.render import page


def _back(to: str, message: str) -> Response[Any]:
    return flash.add(Response("", status_code=303, headers={"Location": to}), message)


class HomeController(Controller):
    @get("/ws", opt=requires(Permission.WORKSPACE_VIEW), sync_to_thread=True)
    def home(
        self, request: Request[Any, Any, Any], db: NamedDependency[Session], me: NamedDependency[CurrentUser]
    ) -> Response[Any]:
        from app.tenants.todo import todo
        from app.workflows.deadlines import local_date

        workspace = services.current_workspace(db, me)
        return page(
            request,
            "home/workspace.html",
            workspace=workspace,
            staff_count=len(services.list_staff(db)),
            todo=todo(db, me, local_date(utcnow())),
        )


class StaffController(Controller):
    """第七条: each unit names its leaders, offices and handlers — managed by its own administrator."""

    path = "/staff"

    def _render(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[Session],
        me: NamedDependency[CurrentUser],
        *,
        error: Any = None,
        error_for: str = "",
        form: dict[str, str] | None = None,
        status_code: int = 200,
    ) -> Response[Any]:
        workspace = services.current_workspace(db, me)
        return page(
            request,
            "staff/list.html",
            partial="staff/_table.html",
            status_code=status_code,
            workspace=workspace,
            staff=services.list_staff(db),
            grantable=ROLES_GRANTABLE_BY_STAFF_ADMIN[workspace.kind],
            can_manage=me.can(Permission.STAFF_MANAGE),
            # 科室 exist in the handling units (第七条).
            sections=services.list_sections(db) if WorkspaceKind(workspace.kind).is_unit else None,
            error=error,
            error_for=error_for,
            form=form or {},
        )

    @get("", opt=requires(Permission.STAFF_VIEW), sync_to_thread=True)
    def list(
        self, request: Request[Any, Any, Any], db: NamedDependency[Session], me: NamedDependency[CurrentUser]
    ) -> Response[Any]:
        return self._render(request, db, me)

    @post("", opt=requires(Permission.STAFF_MANAGE), sync_to_thread=True)
    def create(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[Session],
        me: NamedDependency[CurrentUser],
        data: Form,
    ) -> Response[Any]:
        user, error = attempt(
            db,
            lambda: services.create_staff_member(
                db,
                me,
                username=data.get("username", ""),
                display_name=data.get("display_name", ""),
                office_phone=data.get("office_phone", ""),
                email=data.get("email", ""),
                password=data.get("password", ""),
                role=data.get("role", ""),
            ),
        )
        if error:
            return self._render(request, db, me, error=error, error_for="create", form=data, status_code=422)
        return _back("/staff", f"已新建人员 {user.display_name}（{user.username}），首次登录须修改密码。")  # type: ignore[union-attr]

    @post("/grant", opt=requires(Permission.STAFF_MANAGE), sync_to_thread=True)
    def grant(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[Session],
        me: NamedDependency[CurrentUser],
        data: Form,
    ) -> Response[Any]:
        grant, error = attempt(
            db,
            lambda: services.grant_role(db, me, username=data.get("username", ""), role=data.get("role", "")),
        )
        if error:
            return self._render(request, db, me, error=error, error_for="grant", form=data, status_code=422)
        return _back("/staff", f"已授予 {grant.user.display_name} 角色。")  # type: ignore[union-attr]

    @post("/{user_id:int}/revoke", opt=requires(Permission.STAFF_MANAGE), sync_to_thread=True)
    def revoke(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[Session],
        me: NamedDependency[CurrentUser],
        user_id: FromPath[int],
        data: Form,
    ) -> Response[Any]:
        _, error = attempt(
            db, lambda: services.revoke_role(db, me, user_id=user_id, role=data.get("role", ""))
        )
        if error:
            return self._render(request, db, me, error=error, error_for="table", status_code=422)
        return _back("/staff", "已撤销该角色。")

    @post("/{user_id:int}/password", opt=requires(Permission.STAFF_MANAGE), sync_to_thread=True)
    def reset_password(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[Session],
        me: NamedDependency[CurrentUser],
        user_id: FromPath[int],
        data: Form,
    ) -> Response[Any]:
        _, error = attempt(
            db,
            lambda: services.reset_password(db, me, user_id=user_id, new_password=data.get("password", "")),
        )
        if error:
            return self._render(request, db, me, error=error, error_for="table", status_code=422)
        return _back("/staff", "已设置临时密码，该人员下次登录时须修改密码。")

    @post("/sections", opt=requires(Permission.STAFF_MANAGE), sync_to_thread=True)
    def add_section(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[Session],
        me: NamedDependency[CurrentUser],
        data: Form,
    ) -> Response[Any]:
        _, error = attempt(db, lambda: services.add_section(db, me, name=data.get("section_name", "")))
        if error:
            return self._render(request, db, me, error=error, error_for="sections", status_code=422)
        return _back("/staff", "已新增科室。")

    @post("/sections/{section_id:int}/delete", opt=requires(Permission.STAFF_MANAGE), sync_to_thread=True)
    def remove_section(
        self, db: NamedDependency[Session], me: NamedDependency[CurrentUser], section_id: FromPath[int]
    ) -> Response[Any]:
        services.remove_section(db, me, section_id=section_id)
        return _back("/staff", "已删除科室。")


class WorkspaceAdminController(Controller):
    """The system administrator creates and edits workspaces and appoints their administrators."""

    path = "/admin/workspaces"

    def _list(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[Session],
        *,
        error: Any = None,
        form: dict[str, str] | None = None,
        status_code: int = 200,
    ) -> Response[Any]:
        return page(
            request,
            "admin/workspaces.html",
            rows=services.list_workspaces(db),
            kinds=WORKSPACE_KIND_LABELS,
            error=error,
            form=form or {},
            status_code=status_code,
        )

    @get("", opt=requires(Permission.WORKSPACE_MANAGE), sync_to_thread=True)
    def list(self, request: Request[Any, Any, Any], db: NamedDependency[Session]) -> Response[Any]:
        return self._list(request, db)

    @post("", opt=requires(Permission.WORKSPACE_MANAGE), sync_to_thread=True)
    def create(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[Session],
        me: NamedDependency[CurrentUser],
        data: Form,
    ) -> Response[Any]:
        ws, error = attempt(
            db,
            lambda: services.create_workspace(
                db,
                me,
                slug=data.get("slug", ""),
                name=data.get("name", ""),
                short_name=data.get("short_name", ""),
                kind=data.get("kind", ""),
                contact_phone=data.get("contact_phone", ""),
                address=data.get("address", ""),
            ),
        )
        if error:
            return self._list(request, db, error=error, form=data, status_code=422)
        return _back(f"/admin/workspaces/{ws.id}", f"已新建工作区：{ws.name}")  # type: ignore[union-attr]

    def _detail(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[Session],
        workspace_id: FromPath[int],
        *,
        error: Any = None,
        status_code: int = 200,
    ) -> Response[Any]:
        ws = services.get_workspace(db, workspace_id)
        row = next(r for r in services.list_workspaces(db) if r.workspace.id == ws.id)
        return page(
            request,
            "admin/workspace_detail.html",
            ws=ws,
            row=row,
            kinds=WORKSPACE_KIND_LABELS,
            roles=ROLES_BY_KIND[ws.kind],
            error=error,
            status_code=status_code,
        )

    @get("/{workspace_id:int}", opt=requires(Permission.WORKSPACE_MANAGE), sync_to_thread=True)
    def detail(
        self, request: Request[Any, Any, Any], db: NamedDependency[Session], workspace_id: FromPath[int]
    ) -> Response[Any]:
        return self._detail(request, db, workspace_id)

    @post("/{workspace_id:int}", opt=requires(Permission.WORKSPACE_MANAGE), sync_to_thread=True)
    def update(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[Session],
        me: NamedDependency[CurrentUser],
        workspace_id: FromPath[int],
        data: Form,
    ) -> Response[Any]:
        _, error = attempt(
            db,
            lambda: services.update_workspace(
                db,
                me,
                workspace_id,
                name=data.get("name", ""),
                short_name=data.get("short_name", ""),
                contact_phone=data.get("contact_phone", ""),
                address=data.get("address", ""),
                is_active=data.get("is_active") == "on",
            ),
        )
        if error:
            return self._detail(request, db, workspace_id, error=error, status_code=422)
        return _back(f"/admin/workspaces/{workspace_id}", "已保存。")

    @post("/{workspace_id:int}/admins", opt=requires(Permission.WORKSPACE_MANAGE), sync_to_thread=True)
    def appoint(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[Session],
        me: NamedDependency[CurrentUser],
        workspace_id: FromPath[int],
        data: Form,
    ) -> Response[Any]:
        user, error = attempt(
            db,
            lambda: services.appoint_admin(
                db,
                me,
                workspace_id,
                username=data.get("username", ""),
                display_name=data.get("display_name", ""),
                office_phone=data.get("office_phone", ""),
                email=data.get("email", ""),
                password=data.get("password", ""),
            ),
        )
        if error:
            return self._detail(request, db, workspace_id, error=error, status_code=422)
        return _back(f"/admin/workspaces/{workspace_id}", f"已任命 {user.display_name} 为管理员。")  # type: ignore[union-attr]
