"""The notification centre of the signed-in person, in the current workspace."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from sqlalchemy.orm import Session

from app.accounts.identity import CurrentUser
from app.escalation import services
from app.permissions import Permission, requires
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
