"""The notification centre of the signed-in person, and the centre admin's escalation thresholds."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from sqlalchemy.orm import Session

from app.accounts.identity import CurrentUser
from app.escalation import services
from app.permissions import Permission, requires
from app.web import flash
from app.web.deps import Form, attempt
from app.web.render import page


class NotificationController(Controller):
    path = "/notifications"

    @get("", opt=requires(Permission.WORKSPACE_VIEW), sync_to_thread=True)
    def list(
        self, request: Request[Any, Any, Any], db: NamedDependency[Session], me: NamedDependency[CurrentUser]
    ) -> Response[Any]:
        return page(request, "notifications/list.html", rows=services.notifications(db, me.user_id))

    @post("/read", opt=requires(Permission.WORKSPACE_VIEW), sync_to_thread=True)
    def read(self, db: NamedDependency[Session], me: NamedDependency[CurrentUser]) -> Response[Any]:
        services.mark_all_read(db, me.user_id)
        return Response("", status_code=303, headers={"Location": "/notifications"})


class EscalationPolicyController(Controller):
    """The centre admin sets the thresholds of the 三单一函 ladder (第十三条, 第十九条)."""

    path = "/admin/escalation"

    def _page(
        self,
        request: Request[Any, Any, Any],
        db: Session,
        *,
        error: Any = None,
        form: dict[str, str] | None = None,
        status_code: int = 200,
    ) -> Response[Any]:
        current = services.thresholds(db)
        return page(
            request,
            "admin/escalation.html",
            fields=services.Thresholds.FIELDS,
            current=current,
            example=services.example(current),
            form=form or {name: str(getattr(current, name)) for name, *_ in services.Thresholds.FIELDS},
            error=error,
            status_code=status_code,
        )

    @get("", opt=requires(Permission.ESCALATION_CONFIGURE), sync_to_thread=True)
    def show(self, request: Request[Any, Any, Any], db: NamedDependency[Session]) -> Response[Any]:
        return self._page(request, db)

    @post("", opt=requires(Permission.ESCALATION_CONFIGURE), sync_to_thread=True)
    def save(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[Session],
        me: NamedDependency[CurrentUser],
        data: Form,
    ) -> Response[Any]:
        def save() -> None:
            services.set_thresholds(
                db, services.Thresholds.parse(data), actor_id=me.user_id, workspace_id=me.workspace_id
            )

        _, error = attempt(db, save)
        if error:
            return self._page(request, db, error=error, form=data, status_code=error.status_code)
        return flash.add(
            Response("", status_code=303, headers={"Location": "/admin/escalation"}),
            "催督办规则已保存，下一次期限巡查起按新规则执行。",
        )
