"""Asking for a ledger or a case file, and watching it being built (htmx progress, no JS needed)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import quote

from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.accounts.identity import CurrentUser
from app.cases.vocab import CASE_STATES, CATEGORIES
from app.errors import Forbidden, InvalidInput
from app.jobs import services
from app.jobs.models import JOB_STATES
from app.permissions import Permission, requires
from app.tenants.models import Workspace, WorkspaceKind
from app.web.deps import Form, attempt
from app.web.render import page
from app.workflows.deadlines import local_date

MAX_LEDGER_DAYS = 5 * 366


def _redirect(job_id: int) -> Response[Any]:
    return Response("", status_code=303, headers={"Location": f"/jobs/{job_id}"})


def _units(db: Session) -> list[tuple[int, str]]:
    from app.tenants.scope import cross_workspace

    handling = (WorkspaceKind.COUNTY.value, WorkspaceKind.BUREAU.value, WorkspaceKind.VERTICAL.value)
    with cross_workspace(db):
        return [
            (row.id, row.name)
            for row in db.execute(
                select(Workspace.id, Workspace.name)
                .where(Workspace.kind.in_(handling))
                .order_by(Workspace.id)
            )
        ]


def parse_ledger_form(data: dict[str, Any], units: list[tuple[int, str]]) -> dict[str, Any]:
    """The ledger's filters from the form; ``InvalidInput`` in Chinese."""
    try:
        start = date.fromisoformat(str(data.get("start", "")).strip())
        end = date.fromisoformat(str(data.get("end", "")).strip())
    except ValueError:
        raise InvalidInput("请按 年-月-日 填写起止日期，例如 2026-11-01。", field="start") from None
    if start > end:
        raise InvalidInput("开始日期不能晚于结束日期。", field="start")
    if (end - start).days > MAX_LEDGER_DAYS:
        raise InvalidInput("一次最多导出五年的台账。", field="end")
    unit = str(data.get("unit", "")).strip()
    if unit and (not unit.isdigit() or int(unit) not in {uid for uid, _ in units}):
        raise InvalidInput("请选择承办单位。", field="unit")
    category = str(data.get("category", "")).strip()
    if category and category not in CATEGORIES:
        raise InvalidInput("没有这个类别。", field="category")
    state = str(data.get("state", "")).strip()
    if state and state not in CASE_STATES:
        raise InvalidInput("没有这个状态。", field="state")
    return {
        "start": start.isoformat(),
        "end": end.isoformat(),
        "unit_id": int(unit) if unit else None,
        "category": category,
        "state": state,
    }


class LedgerController(Controller):
    """台账 (第十六条): the centre's register of all cases for a period, as Excel."""

    path = "/ledger"

    def _page(
        self,
        request: Request[Any, Any, Any],
        db: Session,
        *,
        form: dict[str, Any] | None = None,
        error: Any = None,
        status_code: int = 200,
    ) -> Response[Any]:
        today = local_date(datetime.now(UTC))
        return page(
            request,
            "jobs/ledger.html",
            form=form or {"start": today.replace(day=1).isoformat(), "end": today.isoformat()},
            units=_units(db),
            categories=CATEGORIES,
            case_states=CASE_STATES,
            error=error,
            status_code=status_code,
        )

    @get("", opt=requires(Permission.CASE_VIEW), sync_to_thread=True)
    def show(self, request: Request[Any, Any, Any], db: NamedDependency[Session]) -> Response[Any]:
        return self._page(request, db)

    @post("", opt=requires(Permission.CASE_VIEW), sync_to_thread=True)
    def export(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[Session],
        me: NamedDependency[CurrentUser],
        data: Form,
    ) -> Response[Any]:
        def queue() -> int:
            params = parse_ledger_form(data, _units(db))
            title = f"留言办理台账（{params['start']}至{params['end']}）"
            assert me.workspace_id is not None
            return services.submit(
                db,
                kind="ledger",
                title=title,
                params=params,
                workspace_id=me.workspace_id,
                user_id=me.user_id,
            ).id

        job_id, error = attempt(db, queue)
        if error or job_id is None:
            return self._page(request, db, form=data, error=error, status_code=422)
        return _redirect(job_id)


class CaseFileController(Controller):
    """归档 (第十六条): one PDF of a case with every document, signature and step."""

    path = "/cases/{case_id:int}/case-file"

    @post("", opt=requires(Permission.CASE_VIEW), sync_to_thread=True)
    def build(
        self, db: NamedDependency[Session], me: NamedDependency[CurrentUser], case_id: FromPath[int]
    ) -> Response[Any]:
        from app.cases.services import get_case
        from app.documents.services import CONTACT_REFUSED, may_take_contact

        if not may_take_contact(me):  # the archive prints the citizen's contact data
            raise Forbidden(CONTACT_REFUSED)
        case = get_case(db, case_id)  # the centre's own case, or 404
        assert me.workspace_id is not None
        job = services.submit(
            db,
            kind="case_file",
            title=f"归档材料《{case.title}》",
            params={"case_id": case.id, "user_id": me.user_id},
            workspace_id=me.workspace_id,
            user_id=me.user_id,
        )
        return _redirect(job.id)


class JobController(Controller):
    """A job the person asked for: progress (htmx polls the same URL) and the file when ready."""

    path = "/jobs"

    @get("/{job_id:int}", opt=requires(Permission.WORKSPACE_VIEW), sync_to_thread=True)
    def show(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[Session],
        me: NamedDependency[CurrentUser],
        job_id: FromPath[int],
    ) -> Response[Any]:
        job = services.get(db, job_id, me.user_id)
        fragment = request.headers.get("hx-request") == "true"
        return page(
            request, "jobs/_status.html" if fragment else "jobs/show.html", job=job, job_states=JOB_STATES
        )

    @get("/{job_id:int}/download", opt=requires(Permission.WORKSPACE_VIEW), sync_to_thread=True)
    def download(
        self, db: NamedDependency[Session], me: NamedDependency[CurrentUser], job_id: FromPath[int]
    ) -> Response[bytes]:
        job = services.get(db, job_id, me.user_id)
        data = services.result(db, job, me)
        return Response(
            data,
            media_type=job.content_type,
            headers={
                "Content-Disposition": f"attachment; filename*=UTF-8''{quote(job.filename)}",
                "X-Content-Type-Options": "nosniff",
                "Cache-Control": "private, no-store",
            },
        )
