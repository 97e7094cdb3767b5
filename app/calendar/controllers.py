"""The system administrator keeps the working-day calendar: a year per State Council notice."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from sqlalchemy.orm import Session

from app.accounts.identity import CurrentUser
from app.calendar import services
from app.permissions import Permission, requires
from app.web import flash
from app.web.deps import Form, attempt
from app.web.render import page


class CalendarController(Controller):
    path = "/admin/calendar"

    def _page(
        self,
        request: Request[Any, Any, Any],
        db: Session,
        *,
        error: Any = None,
        form: dict[str, str] | None = None,
        status_code: int = 200,
    ) -> Response[Any]:
        return page(
            request,
            "admin/calendar.html",
            years=services.years(db),
            error=error,
            form=form or {},
            status_code=status_code,
        )

    @get("", opt=requires(Permission.CALENDAR_MANAGE), sync_to_thread=True)
    def show(self, request: Request[Any, Any, Any], db: NamedDependency[Session]) -> Response[Any]:
        return self._page(request, db)

    @post("", opt=requires(Permission.CALENDAR_MANAGE), sync_to_thread=True)
    def load(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[Session],
        me: NamedDependency[CurrentUser],
        data: Form,
    ) -> Response[Any]:
        try:
            year = int(data.get("year", ""))
        except ValueError:
            year = 0
        loaded, error = attempt(
            db,
            lambda: services.load_year(
                db,
                me,
                services.YearInput(
                    year=year, holidays=data.get("holidays", ""), workdays=data.get("workdays", "")
                ),
            ),
        )
        if error or loaded is None:
            return self._page(request, db, error=error, form=data, status_code=422)
        return flash.add(
            Response("", status_code=303, headers={"Location": "/admin/calendar"}),
            f"已录入 {loaded.year} 年放假安排，新的办理期限按此计算。",
        )
