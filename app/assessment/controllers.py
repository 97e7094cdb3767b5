"""第二十一条: the ranking, a unit's explanation, the year-end report, the rules, the bulletins."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery
from sqlalchemy.orm import Session

from app.accounts.identity import CurrentUser
from app.assessment import bulletins, services
from app.assessment.models import BULLETIN_STATES
from app.assessment.rules import RULES, Points, show
from app.errors import InvalidInput
from app.jobs import services as jobs
from app.permissions import Permission, requires
from app.tenants.models import Workspace
from app.tenants.scope import cross_workspace
from app.web import flash
from app.web.deps import Form, attempt
from app.web.render import page


def _see_other(location: str) -> Response[Any]:
    return Response("", status_code=303, headers={"Location": location})


def _years() -> list[int]:
    return list(range(services.today().year, services.FIRST_YEAR - 1, -1))


class AssessmentController(Controller):
    """The centre's and 督查室's view of every unit; a unit's leaders see their own unit only."""

    path = "/assessment"

    @get("", opt=requires(Permission.ASSESSMENT_VIEW), sync_to_thread=True)
    def ranking(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[Session],
        year: FromQuery[str | None] = None,
    ) -> Response[Any]:
        chosen = services.parse_year(year, default=services.today().year)
        return page(
            request,
            "assessment/ranking.html",
            board=services.ranking(db, chosen),
            years=_years(),
            show=show,
            error=None,
        )

    @get("/units/{workspace_id:int}", opt=requires(Permission.ASSESSMENT_VIEW), sync_to_thread=True)
    def unit(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[Session],
        workspace_id: FromPath[int],
        year: FromQuery[str | None] = None,
    ) -> Response[Any]:
        chosen = services.parse_year(year, default=services.today().year)
        with cross_workspace(db):
            found = db.get(Workspace, workspace_id)
        if found is not None and found.kind not in services.UNIT_KINDS:  # the centre or the office
            return page(request, "assessment/unit.html", explanation=None, workspace=found, years=_years())
        return self._explain(request, db, workspace_id, chosen, f"/assessment/units/{workspace_id}")

    @get("/mine", opt=requires(Permission.ASSESSMENT_VIEW_OWN), sync_to_thread=True)
    def mine(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[Session],
        me: NamedDependency[CurrentUser],
        year: FromQuery[str | None] = None,
    ) -> Response[Any]:
        chosen = services.parse_year(year, default=services.today().year)
        assert me.workspace_id is not None
        return self._explain(request, db, me.workspace_id, chosen, "/assessment/mine")

    def _explain(
        self, request: Request[Any, Any, Any], db: Session, workspace_id: int, year: int, here: str
    ) -> Response[Any]:
        explanation = services.explain(db, services.unit_workspace(db, workspace_id), year)
        return page(
            request,
            "assessment/unit.html",
            explanation=explanation,
            workspace=explanation.unit,
            years=_years(),
            here=here,
            show=show,
        )

    @post("/report", opt=requires(Permission.ASSESSMENT_VIEW), sync_to_thread=True)
    def report(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[Session],
        me: NamedDependency[CurrentUser],
        data: Form,
    ) -> Response[Any]:
        def queue() -> int:
            year = services.parse_year(data.get("year"), default=services.today().year)
            fmt = str(data.get("format") or "pdf")
            if fmt not in ("pdf", "xlsx"):
                raise InvalidInput("请选择 PDF 或 Excel。", field="format")
            assert me.workspace_id is not None
            title = f"{year}年度留言办理考核意见（{'PDF' if fmt == 'pdf' else 'Excel'}）"
            params = {"year": year, "format": fmt}
            return jobs.submit(
                db,
                kind="assessment_report",
                title=title,
                params=params,
                workspace_id=me.workspace_id,
                user_id=me.user_id,
            ).id

        job_id, error = attempt(db, queue)
        if error or job_id is None:
            board = services.ranking(db, services.today().year)
            return page(
                request,
                "assessment/ranking.html",
                board=board,
                years=_years(),
                show=show,
                error=error,
                status_code=422,
            )
        return _see_other(f"/jobs/{job_id}")


class AssessmentRulesController(Controller):
    """The centre admin sets each year's deduction rules (第二十一条); every change is audited."""

    path = "/admin/assessment"

    def _page(
        self,
        request: Request[Any, Any, Any],
        db: Session,
        year: int,
        *,
        form: dict[str, Any] | None = None,
        error: Any = None,
        status_code: int = 200,
    ) -> Response[Any]:
        current = services.points(db, year)
        return page(
            request,
            "assessment/rules.html",
            year=year,
            years=_years(),
            rules=RULES,
            form=form or current.as_points(),
            error=error,
            status_code=status_code,
        )

    @get("", opt=requires(Permission.ASSESSMENT_CONFIGURE), sync_to_thread=True)
    def show(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[Session],
        year: FromQuery[str | None] = None,
    ) -> Response[Any]:
        return self._page(request, db, services.parse_year(year, default=services.today().year))

    @post("", opt=requires(Permission.ASSESSMENT_CONFIGURE), sync_to_thread=True)
    def save(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[Session],
        me: NamedDependency[CurrentUser],
        data: Form,
    ) -> Response[Any]:
        holder: dict[str, int] = {}

        def save() -> None:
            holder["year"] = services.parse_year(data.get("year"))
            new = Points.parse(data)
            services.set_points(db, holder["year"], new, actor_id=me.user_id, workspace_id=me.workspace_id)

        _, error = attempt(db, save)
        year = holder.get("year", services.today().year)
        if error:
            return self._page(request, db, year, form=data, error=error, status_code=error.status_code)
        return flash.add(_see_other(f"/admin/assessment?year={year}"), f"{year}年度考核扣分规则已保存。")


class BulletinController(Controller):
    """通报: drafts made by the daily job (or on demand), reviewed and issued by the centre admin."""

    path = "/bulletins"

    def _list(
        self,
        request: Request[Any, Any, Any],
        db: Session,
        me: CurrentUser,
        *,
        error: Any = None,
        form: dict[str, Any] | None = None,
        status_code: int = 200,
    ) -> Response[Any]:
        return page(
            request,
            "assessment/bulletins.html",
            rows=bulletins.listing(db, me),
            states=BULLETIN_STATES,
            title_of=bulletins.title_of,
            can_issue=me.can(Permission.BULLETIN_ISSUE),
            suggested=bulletins.previous_month(services.today()),
            form=form or {},
            error=error,
            status_code=status_code,
        )

    @get("", opt=requires(Permission.BULLETIN_VIEW), sync_to_thread=True)
    def list(
        self, request: Request[Any, Any, Any], db: NamedDependency[Session], me: NamedDependency[CurrentUser]
    ) -> Response[Any]:
        return self._list(request, db, me)

    @post("", opt=requires(Permission.BULLETIN_ISSUE), sync_to_thread=True)
    def generate(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[Session],
        me: NamedDependency[CurrentUser],
        data: Form,
    ) -> Response[Any]:
        made, error = attempt(
            db,
            lambda: (
                bulletins.generate(
                    db, str(data.get("period") or ""), user_id=me.user_id, workspace_id=me.workspace_id
                ).id
            ),
        )
        if error or made is None:
            return self._list(request, db, me, error=error, form=data, status_code=422)
        return flash.add(
            _see_other(f"/bulletins/{made}"), "通报送审稿已生成，PDF 正在后台生成；请审核后签发。"
        )

    @get("/{bulletin_id:int}", opt=requires(Permission.BULLETIN_VIEW), sync_to_thread=True)
    def detail(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[Session],
        me: NamedDependency[CurrentUser],
        bulletin_id: FromPath[int],
    ) -> Response[Any]:
        b = bulletins.get(db, bulletin_id, me)
        return page(
            request,
            "assessment/bulletin.html",
            b=b,
            c=b.content,
            title=bulletins.title_of(b),
            states=BULLETIN_STATES,
            can_issue=me.can(Permission.BULLETIN_ISSUE),
            status=bulletins.pdf_status(db, b),
        )

    @get("/{bulletin_id:int}/pdf-status", opt=requires(Permission.BULLETIN_VIEW), sync_to_thread=True)
    def pdf_status(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[Session],
        me: NamedDependency[CurrentUser],
        bulletin_id: FromPath[int],
    ) -> Response[Any]:
        """The PDF's progress as a fragment (htmx polls it every second until the file is there)."""
        b = bulletins.get(db, bulletin_id, me)
        return page(request, "assessment/_pdf_status.html", b=b, status=bulletins.pdf_status(db, b))

    @get("/{bulletin_id:int}/pdf", opt=requires(Permission.BULLETIN_VIEW), sync_to_thread=True)
    def pdf(
        self, db: NamedDependency[Session], me: NamedDependency[CurrentUser], bulletin_id: FromPath[int]
    ) -> Response[bytes]:
        b = bulletins.get(db, bulletin_id, me)
        name = bulletins.filename_of(b)
        return Response(
            bulletins.pdf(db, b),
            media_type="application/pdf",
            headers={
                "Content-Disposition": f"attachment; filename*=UTF-8''{quote(name)}",
                "X-Content-Type-Options": "nosniff",
                "Cache-Control": "private, no-store",
            },
        )

    @post("/{bulletin_id:int}/issue", opt=requires(Permission.BULLETIN_ISSUE), sync_to_thread=True)
    def issue(
        self, db: NamedDependency[Session], me: NamedDependency[CurrentUser], bulletin_id: FromPath[int]
    ) -> Response[Any]:
        b = bulletins.get(db, bulletin_id, me)
        bulletins.issue(db, b, me)
        return flash.add(_see_other(f"/bulletins/{b.id}"), "通报已签发，正式 PDF 正在后台生成。")
