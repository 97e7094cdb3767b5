"""The centre's case pages and the unit's assignment inbox. Every state change is one call to the
workflow engine through ``services.take_action``; the engine decides who may take which step."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery
from sqlalchemy.orm import Session

from app.accounts.identity import CurrentUser
from app.audit.services import record_contact_view
from app.cases import attachments, oversight, services, similarity
from app.cases.vocab import ASSIGNMENT_STATES, BOARDS, CASE_STATES, CATEGORIES, DECLINE_REASONS, QUALITY_FLAGS
from app.db import utcnow
from app.documents.controllers import KIND_LABELS, visible_documents
from app.escalation import services as escalation
from app.permissions import Permission, requires
from app.tenants import services as tenant_services
from app.web import flash
from app.web.deps import Form, attempt
from app.web.render import page
from app.workflows import engine
from app.workflows.deadlines import local_date
from app.workflows.transitions import ACTION_LABELS

VOCAB: dict[str, Any] = {
    "boards": BOARDS,
    "categories": CATEGORIES,
    "case_states": CASE_STATES,
    "assignment_states": ASSIGNMENT_STATES,
    "decline_reasons": DECLINE_REASONS,
    "quality_flags": QUALITY_FLAGS,
    "action_labels": ACTION_LABELS,
}


def _redirect(to: str, message: str) -> Response[Any]:
    return flash.add(Response("", status_code=303, headers={"Location": to}), message)


class CaseController(Controller):
    path = "/cases"

    @get("", opt=requires(Permission.CASE_VIEW), sync_to_thread=True)
    def queue(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[Session],
        status: FromQuery[str | None] = None,
        view: FromQuery[str | None] = None,
    ) -> Response[Any]:
        state = status if status in CASE_STATES else None
        chosen = view if view in services.CENTRE_VIEWS and not state else None
        cases = services.centre_queue(db, state, view=chosen, today=local_date(utcnow()))
        return page(
            request,
            "cases/queue.html",
            cases=cases,
            state=state,
            view=chosen,
            views=services.CENTRE_VIEWS,
            **VOCAB,
        )

    @get("/new", opt=requires(Permission.CASE_REGISTER), sync_to_thread=False)
    def new(self, request: Request[Any, Any, Any]) -> Response[Any]:
        return page(request, "cases/register.html", form={}, error=None, **VOCAB)

    @post("", opt=requires(Permission.CASE_REGISTER), sync_to_thread=True)
    def register(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[Session],
        me: NamedDependency[CurrentUser],
        data: Form,
    ) -> Response[Any]:
        case, error = attempt(
            db, lambda: services.register_case(db, me, services.MessageInput.from_form(data))
        )
        if error:
            return page(request, "cases/register.html", status_code=422, form=data, error=error, **VOCAB)
        return _redirect(f"/cases/{case.id}", "留言已登记。")  # type: ignore[union-attr]

    def _detail(
        self,
        request: Request[Any, Any, Any],
        db: Session,
        case_id: int,
        *,
        error: Any = None,
        status_code: int = 200,
    ) -> Response[Any]:
        case = services.get_case(db, case_id)
        me: CurrentUser = request.scope["user"]
        record_contact_view(db, me, case, case_id=case.id, page="case")
        triage = case.state == "received"
        return page(
            request,
            "cases/detail.html",
            status_code=status_code,
            case=case,
            can=engine.available(me, case),
            documents=visible_documents(db, me, case.id),
            kind_labels=KIND_LABELS,
            units=services.units_on_case(db, case),
            timeline=services.case_timeline(db, case),
            targets=services.dispatch_targets(db) if triage else [],
            # 第五条 重复事项: similar messages while the case waits for triage, and its original.
            similar=similarity.similar_cases(db, case) if triage else [],
            original=services.duplicate_original(db, case),
            can_link=triage and me.can(Permission.CASE_ACT),
            instructions=oversight.instructions_on(db, case.id),
            files=attachments.of_case(db, case.id),
            error=error,
            **VOCAB,
        )

    @get("/{case_id:int}", opt=requires(Permission.CASE_VIEW), sync_to_thread=True)
    def detail(
        self, request: Request[Any, Any, Any], db: NamedDependency[Session], case_id: FromPath[int]
    ) -> Response[Any]:
        return self._detail(request, db, case_id)

    @post("/{case_id:int}/act/{action:str}", opt=requires(Permission.CASE_ACT), sync_to_thread=True)
    def act(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[Session],
        me: NamedDependency[CurrentUser],
        case_id: FromPath[int],
        action: FromPath[str],
        data: Form,
    ) -> Response[Any]:
        case = services.get_case(db, case_id)
        label, error = attempt(db, lambda: services.take_action(db, me, case, action, dict(data)))
        if error:
            db.expire_all()
            return self._detail(request, db, case_id, error=error, status_code=error.status_code)
        return _redirect(f"/cases/{case_id}", f"已完成：{label}")

    @post("/{case_id:int}/duplicate", opt=requires(Permission.CASE_ACT), sync_to_thread=True)
    def duplicate(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[Session],
        me: NamedDependency[CurrentUser],
        case_id: FromPath[int],
        data: Form,
    ) -> Response[Any]:
        """Mark as a duplicate of ``original_id``, or unlink when it is empty (第五条; no state change)."""
        case = services.get_case(db, case_id)
        original, error = attempt(
            db,
            lambda: services.mark_duplicate(db, me, case, services.duplicate_target(data.get("original_id"))),
        )
        if error:
            db.expire_all()
            return self._detail(request, db, case_id, error=error, status_code=error.status_code)
        message = f"已标记为重复留言：{original.title}" if original else "已取消重复留言标记。"
        return _redirect(f"/cases/{case_id}", message)

    @post("/{case_id:int}/classify", opt=requires(Permission.CASE_ACT), sync_to_thread=True)
    def classify(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[Session],
        me: NamedDependency[CurrentUser],
        case_id: FromPath[int],
        data: Form,
    ) -> Response[Any]:
        """初审: category, topic and region before dispatch (no state change)."""
        case = services.get_case(db, case_id)
        _, error = attempt(
            db,
            lambda: services.classify_case(
                db,
                me,
                case,
                category=str(data.get("category", "")),
                topic=str(data.get("topic", "")),
                region=str(data.get("region", "")),
            ),
        )
        if error:
            db.expire_all()
            return self._detail(request, db, case_id, error=error, status_code=error.status_code)
        return _redirect(f"/cases/{case_id}", "分类已更新。")


class FlowChartController(Controller):
    """附件1: the flow chart, drawn from the transition table."""

    @get("/workflow", opt=requires(Permission.WORKSPACE_VIEW), sync_to_thread=True)
    def chart(self, request: Request[Any, Any, Any]) -> Response[Any]:
        from markupsafe import Markup

        from app.workflows.chart import flow_chart_svg
        from app.workflows.transitions import TABLE

        # SVG that Graphviz made from our own transition table (it escapes every label as XML).
        charts = {m: Markup(flow_chart_svg(m)) for m in ("case", "assignment")}  # noqa: S704
        return page(request, "cases/workflow.html", charts=charts, table=TABLE, **VOCAB)


class InboxController(Controller):
    path = "/inbox"

    @get("", opt=requires(Permission.ASSIGNMENT_VIEW), sync_to_thread=True)
    def inbox(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[Session],
        view: FromQuery[str | None] = None,
    ) -> Response[Any]:
        today = local_date(utcnow())
        chosen = view if view in services.INBOX_VIEWS else None
        return page(
            request,
            "inbox/list.html",
            rows=services.unit_inbox(db, today, view=chosen),
            view=chosen,
            views=services.INBOX_VIEWS,
            counts=services.inbox_counts(db, today),
            **VOCAB,
        )

    def _detail(
        self,
        request: Request[Any, Any, Any],
        db: Session,
        assignment_id: int,
        *,
        error: Any = None,
        status_code: int = 200,
    ) -> Response[Any]:
        assignment = services.get_assignment(db, assignment_id)
        me: CurrentUser = request.scope["user"]
        record_contact_view(
            db, me, assignment, case_id=assignment.case_id, assignment_id=assignment.id, page="assignment"
        )
        return page(
            request,
            "inbox/detail.html",
            status_code=status_code,
            a=assignment,
            can=engine.available(me, assignment),
            documents=[
                d for d in visible_documents(db, me, assignment.case_id) if d.assignment_id == assignment.id
            ],
            kind_labels=KIND_LABELS,
            timeline=services.assignment_timeline(db, assignment),
            co_input=services.co_unit_input(db, assignment),
            instructions=oversight.instructions_for_assignment(db, assignment),
            files=attachments.of_assignment(db, assignment),
            escalations=escalation.of_assignment(db, assignment),
            sections=tenant_services.list_sections(db),
            handlers=tenant_services.unit_handlers(db),
            error=error,
            **VOCAB,
        )

    @get("/{assignment_id:int}", opt=requires(Permission.ASSIGNMENT_VIEW), sync_to_thread=True)
    def detail(
        self, request: Request[Any, Any, Any], db: NamedDependency[Session], assignment_id: FromPath[int]
    ) -> Response[Any]:
        return self._detail(request, db, assignment_id)

    @post(
        "/{assignment_id:int}/act/{action:str}", opt=requires(Permission.ASSIGNMENT_ACT), sync_to_thread=True
    )
    def act(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[Session],
        me: NamedDependency[CurrentUser],
        assignment_id: FromPath[int],
        action: FromPath[str],
        data: Form,
    ) -> Response[Any]:
        assignment = services.get_assignment(db, assignment_id)
        label, error = attempt(db, lambda: services.take_action(db, me, assignment, action, dict(data)))
        if error:
            db.expire_all()
            return self._detail(request, db, assignment_id, error=error, status_code=error.status_code)
        return _redirect(f"/inbox/{assignment_id}", f"已完成：{label}")


class OversightController(Controller):
    """督查室 and city leaders: every case, read-only, and leaders' instructions (领导批示)."""

    path = "/oversight"

    @get("", opt=requires(Permission.CASE_OVERSEE), sync_to_thread=True)
    def cases(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[Session],
        status: FromQuery[str | None] = None,
    ) -> Response[Any]:
        state = status if status in CASE_STATES else None
        return page(
            request, "oversight/list.html", cases=oversight.all_cases(db, state), state=state, **VOCAB
        )

    def _detail(
        self,
        request: Request[Any, Any, Any],
        db: Session,
        case_id: int,
        *,
        error: Any = None,
        status_code: int = 200,
    ) -> Response[Any]:
        case = oversight.any_case(db, case_id)
        me: CurrentUser = request.scope["user"]
        ladder, transferable = oversight.ladder_of(db, case_id)
        return page(
            request,
            "oversight/detail.html",
            status_code=status_code,
            case=case,
            timeline=oversight.oversight_timeline(db, case),
            instructions=oversight.instructions_on(db, case.id),
            can_instruct=me.can(Permission.CASE_INSTRUCT) and case.state != "archived",
            ladder=ladder,
            transferable=transferable if me.can(Permission.CASE_TRANSFER) else [],
            documents=visible_documents(db, me, case.id),
            kind_labels=KIND_LABELS,
            rung_titles=escalation.RUNG_TITLES,
            error=error,
            **VOCAB,
        )

    @get("/{case_id:int}", opt=requires(Permission.CASE_OVERSEE), sync_to_thread=True)
    def case(
        self, request: Request[Any, Any, Any], db: NamedDependency[Session], case_id: FromPath[int]
    ) -> Response[Any]:
        return self._detail(request, db, case_id)

    @post("/{case_id:int}/instruct", opt=requires(Permission.CASE_INSTRUCT), sync_to_thread=True)
    def instruct(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[Session],
        me: NamedDependency[CurrentUser],
        case_id: FromPath[int],
        data: Form,
    ) -> Response[Any]:
        _, error = attempt(db, lambda: oversight.add_instruction(db, me, case_id, str(data.get("text", ""))))
        if error:
            return self._detail(request, db, case_id, error=error, status_code=error.status_code)
        return _redirect(f"/oversight/{case_id}", "批示已送达运维中心和承办单位。")

    @post("/{case_id:int}/transfer", opt=requires(Permission.CASE_TRANSFER), sync_to_thread=True)
    def transfer(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[Session],
        me: NamedDependency[CurrentUser],
        case_id: FromPath[int],
        data: Form,
    ) -> Response[Any]:
        raw = str(data.get("assignment_id", ""))
        number, error = attempt(
            db,
            lambda: oversight.transfer(
                db, me, case_id, int(raw) if raw.isdigit() else 0, str(data.get("reason", ""))
            ),
        )
        if error:
            return self._detail(request, db, case_id, error=error, status_code=error.status_code)
        return _redirect(f"/oversight/{case_id}", f"已发出移交函 {number}，抄送市政府督查室。")
