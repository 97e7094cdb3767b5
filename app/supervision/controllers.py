"""督查室's dashboard and quality list, the centre's and a unit's statistics, and their exports."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath
from sqlalchemy.orm import Session

from app.accounts.identity import CurrentUser
from app.cases.vocab import ASSIGNMENT_STATES, CASE_STATES, CATEGORIES
from app.errors import Conflict, InvalidInput
from app.escalation.services import RUNG_TITLES
from app.jobs import services as jobs
from app.permissions import Permission, requires
from app.supervision import exports, queries, stats, supervise
from app.web import flash
from app.web.deps import Form, attempt
from app.web.render import page
from app.workflows.deadlines import local_date


def _today() -> date:
    return local_date(datetime.now(UTC))


def _to_job(job_id: int) -> Response[Any]:
    return Response("", status_code=303, headers={"Location": f"/jobs/{job_id}"})


def _submit(db: Session, me: CurrentUser, title: str, params: dict[str, Any]) -> int:
    assert me.workspace_id is not None
    job = jobs.submit(
        db,
        kind="supervision_export",
        title=title,
        params={"today": _today().isoformat(), **params},
        workspace_id=me.workspace_id,
        user_id=me.user_id,
    )
    return job.id


def _chart_data(rows: list[queries.Row]) -> str:
    """The unit breakdown for dashboard.js (a JSON block, no inline code: CSP)."""
    top = rows[:15]
    return json.dumps(
        {
            "labels": [r.label for r in top],
            "series": {
                queries.STATUSES[k]: [r.counts[k] for r in top]
                for k in ("open", "overdue", "urge", "supervise")
            },
        },
        ensure_ascii=False,
    ).replace("</", "<\\/")


class SupervisionController(Controller):
    """第六条, 第十九条: 督查室 and city leaders see every unit's workload, read-only."""

    path = "/supervision"

    @get("", opt=requires(Permission.CASE_OVERSEE), sync_to_thread=True)
    def dashboard(self, request: Request[Any, Any, Any], db: NamedDependency[Session]) -> Response[Any]:
        today = _today()
        data = queries.dashboard(db, today)
        return page(
            request,
            "supervision/dashboard.html",
            today=today,
            statuses=queries.STATUSES,
            notes=queries.STATUS_NOTES,
            dimensions=queries.DIMENSIONS,
            chart_data=_chart_data(data["breakdowns"]["unit"]),
            **data,
        )

    @get("/cases", opt=requires(Permission.CASE_OVERSEE), sync_to_thread=True)
    def cases(self, request: Request[Any, Any, Any], db: NamedDependency[Session]) -> Response[Any]:
        params = request.query_params
        filters = queries.Filters.parse(params)
        raw_page = str(params.get("page") or "1")
        number = int(raw_page) if raw_page.isdigit() and int(raw_page) > 0 else 1
        rows, total = queries.case_list(db, filters, _today(), number)
        pages = max(1, -(-total // queries.PER_PAGE))
        return page(
            request,
            "supervision/cases.html",
            rows=rows,
            total=total,
            page_number=number,
            pages=pages,
            filters=filters,
            statuses=queries.STATUSES,
            case_states=CASE_STATES,
            assignment_states=ASSIGNMENT_STATES,
            categories=CATEGORIES,
        )

    @get("/quality", opt=requires(Permission.CASE_OVERSEE), sync_to_thread=True)
    def quality(self, request: Request[Any, Any, Any], db: NamedDependency[Session]) -> Response[Any]:
        return page(
            request,
            "supervision/quality.html",
            rows=queries.quality_list(db, _today()),
            labels=queries.QUALITY_LABELS,
            rung_titles=RUNG_TITLES,
            assignment_states=ASSIGNMENT_STATES,
            can_supervise=request.scope["user"].can(Permission.CASE_TRANSFER),
        )

    def _supervise_page(
        self,
        request: Request[Any, Any, Any],
        db: Session,
        case_id: int,
        *,
        error: Any = None,
        form: dict[str, Any] | None = None,
        status_code: int = 200,
    ) -> Response[Any]:
        return page(
            request,
            "supervision/supervise.html",
            t=supervise.target(db, case_id),
            rung_titles=RUNG_TITLES,
            assignment_states=ASSIGNMENT_STATES,
            case_states=CASE_STATES,
            error=error,
            form=form or {},
            status_code=status_code,
        )

    # 第十九条: 督查室 issues a 督办单 by hand (the 督查员's escalation decision, like 移交).
    @get("/quality/{case_id:int}/supervise", opt=requires(Permission.CASE_TRANSFER), sync_to_thread=True)
    def supervise_form(
        self, request: Request[Any, Any, Any], db: NamedDependency[Session], case_id: FromPath[int]
    ) -> Response[Any]:
        return self._supervise_page(request, db, case_id)

    @post("/quality/{case_id:int}/supervise", opt=requires(Permission.CASE_TRANSFER), sync_to_thread=True)
    def issue_supervision(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[Session],
        me: NamedDependency[CurrentUser],
        case_id: FromPath[int],
        data: Form,
    ) -> Response[Any]:
        issued, error = attempt(
            db, lambda: supervise.issue(db, me, case_id, str(data.get("reason", "")), _today())
        )
        if error or issued is None:
            status = error.status_code if error else 422
            return self._supervise_page(request, db, case_id, error=error, form=data, status_code=status)
        response = Response("", status_code=303, headers={"Location": f"/oversight/{issued.case_id}"})
        return flash.add(response, f"已发出督办单 {issued.number}，并通知承办单位主要负责同志。")

    @post("/export", opt=requires(Permission.CASE_OVERSEE), sync_to_thread=True)
    def export(
        self, db: NamedDependency[Session], me: NamedDependency[CurrentUser], data: Form
    ) -> Response[Any]:
        table = "quality" if data.get("table") == "quality" else "dashboard"
        return _to_job(_submit(db, me, exports.TABLES[table], {"table": table}))


class StatsController(Controller):
    """统计分析 (第六条): the centre's figures for a period; a unit's figures of its own work."""

    path = "/stats"

    def _page(
        self,
        request: Request[Any, Any, Any],
        db: Session,
        *,
        unit_id: int | None,
        unit_name: str = "",
        action: str,
        params: Any = None,
        error: InvalidInput | Conflict | None = None,
    ) -> Response[Any]:
        today = _today()
        try:
            start, end = stats.parse_period(request.query_params if params is None else params, today)
        except InvalidInput as exc:
            start, end, error = today.replace(day=1), today, error or exc
        figures = stats.period_stats(db, start, end, today, unit_id=unit_id)
        return page(
            request,
            "supervision/stats.html",
            status_code=422 if error else 200,
            s=figures,
            summary=exports.stats_rows(figures),
            unit_name=unit_name,
            action=action,
            show_tabs=unit_id is None and request.scope["user"].can(Permission.CASE_OVERSEE),
            error=error,
        )

    @get("/centre", opt=requires(Permission.STATS_VIEW), sync_to_thread=True)
    def centre(self, request: Request[Any, Any, Any], db: NamedDependency[Session]) -> Response[Any]:
        return self._page(request, db, unit_id=None, action="/stats/centre")

    @get("/unit", opt=requires(Permission.STATS_VIEW_OWN), sync_to_thread=True)
    def unit(
        self, request: Request[Any, Any, Any], db: NamedDependency[Session], me: NamedDependency[CurrentUser]
    ) -> Response[Any]:
        return self._page(
            request,
            db,
            unit_id=me.workspace_id,
            unit_name=me.workspace.name if me.workspace else "",
            action="/stats/unit",
        )

    def _export(
        self,
        request: Request[Any, Any, Any],
        db: Session,
        me: CurrentUser,
        data: dict[str, Any],
        unit_id: int | None,
    ) -> Response[Any]:
        def queue() -> int:
            start, end = stats.parse_period(data, _today())
            params = {
                "table": "stats",
                "start": start.isoformat(),
                "end": end.isoformat(),
                "unit_id": unit_id,
            }
            return _submit(db, me, f"留言统计分析（{start}至{end}）", params)

        job_id, error = attempt(db, queue)
        if error or job_id is None:
            # The page again, with the period as asked and the reason in Chinese (422).
            return self._page(
                request,
                db,
                unit_id=unit_id,
                unit_name=(me.workspace.name if me.workspace else "") if unit_id is not None else "",
                action="/stats/unit" if unit_id is not None else "/stats/centre",
                params=data,
                error=error or InvalidInput("导出失败，请检查统计期间后重试。"),
            )
        return _to_job(job_id)

    @post("/centre/export", opt=requires(Permission.STATS_VIEW), sync_to_thread=True)
    def centre_export(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[Session],
        me: NamedDependency[CurrentUser],
        data: Form,
    ) -> Response[Any]:
        return self._export(request, db, me, data, None)

    @post("/unit/export", opt=requires(Permission.STATS_VIEW_OWN), sync_to_thread=True)
    def unit_export(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[Session],
        me: NamedDependency[CurrentUser],
        data: Form,
    ) -> Response[Any]:
        # The unit is the asker's own workspace, never a form field.
        return self._export(request, db, me, data, me.workspace_id)
