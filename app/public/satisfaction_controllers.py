"""满意率回访 (第十八条): the centre's follow-up page of a case, and the citizen's rating page.

The centre (``satisfaction:record``: clerk, reviewer) makes the personal link or records a rating
taken by telephone; anyone with ``case:view`` sees the result. The citizen's page ``/rate/{token}``
needs no account; it carries the CSRF token like every form, and is never cached (``no-store``):
it is personal, and it changes once rated.
"""

from __future__ import annotations

from typing import Any, Final

from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath
from markupsafe import Markup
from sqlalchemy.orm import Session

from app.accounts.identity import CurrentUser
from app.audit.services import record_contact_view
from app.cases.models import Case
from app.cases.services import get_case
from app.errors import Conflict, InvalidInput, MinpanError, NotFound
from app.notify.services import absolute_url
from app.permissions import PUBLIC, Permission, requires
from app.public import satisfaction
from app.public.render import public_page
from app.settings import get_settings
from app.web import flash
from app.web.deps import Form, attempt
from app.web.identity import client_ip
from app.web.ratelimit import limited
from app.web.render import csrf_token, is_htmx, page

PRIVATE: Final = {"Cache-Control": "no-store", "X-Robots-Tag": "noindex, nofollow"}
VOCAB: Final[dict[str, Any]] = {
    "scores": satisfaction.SCORES,
    "sources": satisfaction.SOURCES,
    "comment_max": satisfaction.COMMENT_MAX,
    "invite_days": satisfaction.INVITE_DAYS,
}


class SatisfactionController(Controller):
    """The centre's side: /cases/{id}/satisfaction."""

    path = "/cases/{case_id:int}/satisfaction"

    def _page(
        self,
        request: Request[Any, Any, Any],
        db: Session,
        case: Case,
        *,
        link: str = "",
        error: MinpanError | None = None,
        form: dict[str, Any] | None = None,
        status_code: int = 200,
        partial: str | None = None,
    ) -> Response[Any]:
        if not (partial and is_htmx(request)):  # the full page shows the citizen's contact data
            record_contact_view(db, request.scope["user"], case, case_id=case.id, page="satisfaction")
        return page(
            request,
            "cases/satisfaction.html",
            partial=partial,
            status_code=status_code,
            headers=PRIVATE if link else None,
            case=case,
            status=satisfaction.status(db, case),
            link=link,
            error=error,
            form=form or {},
            **VOCAB,
        )

    @get("", opt=requires(Permission.CASE_VIEW), sync_to_thread=True)
    def show(
        self, request: Request[Any, Any, Any], db: NamedDependency[Session], case_id: FromPath[int]
    ) -> Response[Any]:
        # The case page loads its card with htmx from here: the fragment only.
        return self._page(request, db, get_case(db, case_id), partial="cases/_satisfaction_card.html")

    @post("/link", opt=requires(Permission.SATISFACTION_RECORD), sync_to_thread=True)
    def make_link(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[Session],
        me: NamedDependency[CurrentUser],
        case_id: FromPath[int],
    ) -> Response[Any]:
        """生成回访链接: shown once, on this response only (the database keeps its hash)."""
        case = get_case(db, case_id)
        token, error = attempt(db, lambda: satisfaction.issue_invite(db, me, case))
        if error:
            return self._page(request, db, case, error=error, status_code=error.status_code)
        link = absolute_url(get_settings(), f"/rate/{token}")
        return self._page(request, db, case, link=link)

    @post("/phone", opt=requires(Permission.SATISFACTION_RECORD), sync_to_thread=True)
    def record_phone(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[Session],
        me: NamedDependency[CurrentUser],
        case_id: FromPath[int],
        data: Form,
    ) -> Response[Any]:
        """电话回访: the citizen's verdict taken on the telephone."""
        case = get_case(db, case_id)
        _, error = attempt(
            db, lambda: satisfaction.record_by_phone(db, me, case, satisfaction.RatingInput.parse(data))
        )
        if error:
            return self._page(request, db, case, error=error, form=dict(data), status_code=error.status_code)
        response = Response("", status_code=303, headers={"Location": f"/cases/{case_id}/satisfaction"})
        return flash.add(response, "已录入电话回访结果。")


class RatingController(Controller):
    """The citizen's side: /rate/{token}, from the personal link."""

    path = "/rate"
    opt = limited("rating")  # per address: app/web/ratelimit.py

    def _form(
        self,
        request: Request[Any, Any, Any],
        token: str,
        invite: satisfaction.PublicInvite,
        *,
        error: InvalidInput | None = None,
        form: dict[str, Any] | None = None,
    ) -> Response[Any]:
        return public_page(
            request,
            "public/rate.html",
            status_code=error.status_code if error else 200,
            headers=PRIVATE,
            invite=invite,
            token=token,
            error=error,
            form=form or {},
            csrf_input=Markup('<input type="hidden" name="_csrf_token" value="{}">').format(
                csrf_token(request)
            ),
            **VOCAB,
        )

    def _closed(self, request: Request[Any, Any, Any], error: MinpanError) -> Response[Any]:
        return public_page(
            request,
            "public/rate_result.html",
            status_code=error.status_code,
            headers=PRIVATE,
            code=error.status_code,
            message=error.message,
            invite=None,
            score="",
            **VOCAB,
        )

    @get("/{token:str}", opt=PUBLIC, sync_to_thread=True)
    def show(self, request: Request[Any, Any, Any], token: FromPath[str]) -> Response[Any]:
        invite = satisfaction.find_invite(token)
        if invite is None:
            return self._closed(request, NotFound(satisfaction.INVALID_LINK))
        if invite.rated:
            return self._closed(request, Conflict(satisfaction.ALREADY_RATED))
        return self._form(request, token, invite)

    @post("/{token:str}", opt=PUBLIC, sync_to_thread=True)
    def submit(self, request: Request[Any, Any, Any], token: FromPath[str], data: Form) -> Response[Any]:
        invite = satisfaction.find_invite(token)
        if invite is None:
            return self._closed(request, NotFound(satisfaction.INVALID_LINK))
        try:
            rating = satisfaction.RatingInput.parse(data)
            satisfaction.rate_by_link(token, rating, ip=client_ip(request.scope))
        except InvalidInput as exc:
            return self._form(request, token, invite, error=exc, form=dict(data))
        except (NotFound, Conflict) as exc:
            return self._closed(request, exc)
        return public_page(
            request,
            "public/rate_result.html",
            headers=PRIVATE,
            code=200,
            message="",
            invite=invite,
            score=rating.score,
            **VOCAB,
        )
