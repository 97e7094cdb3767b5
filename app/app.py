"""The Litestar application factory."""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator
from contextlib import asynccontextmanager

from litestar import Litestar
from litestar.config.csrf import CSRFConfig
from litestar.enums import ScopeType
from litestar.static_files import create_static_files_router
from litestar.types import LifeSpanReceive, LifeSpanScope, LifeSpanSend, Receive, Scope, Send

from app.accounts.controllers import AccountController, AuthController, SecurityAdminController
from app.assessment.controllers import AssessmentController, AssessmentRulesController, BulletinController
from app.audit.controllers import AuditController
from app.calendar.controllers import CalendarController
from app.cases.api import MessageFeedController, feed_openapi
from app.cases.attachment_controllers import AttachmentController
from app.cases.controllers import CaseController, FlowChartController, InboxController, OversightController
from app.cases.intake_controllers import IntakeController
from app.documents.controllers import DocumentController, PublishedReplyPdfController, VerifyController
from app.escalation.controllers import EscalationPolicyController, NotificationController
from app.jobs.controllers import CaseFileController, JobController, LedgerController
from app.notify.controllers import OutboxController
from app.observability import ObservabilityMiddleware
from app.permissions import PUBLIC, authorize, check_declarations
from app.public.controllers import CSRF_EXEMPT, PublicPortalController
from app.public.memory import PAGE_MEMORY
from app.public.queries import forget_kept
from app.public.satisfaction_controllers import RatingController, SatisfactionController
from app.public.stats_controllers import OpenStatsController
from app.security.headers import SECURITY_HEADERS, add_security_headers
from app.settings import Settings, get_settings
from app.supervision.controllers import StatsController, SupervisionController
from app.tenants.controllers import HomeController, StaffController, WorkspaceAdminController
from app.web.deps import DEPENDENCIES
from app.web.errors import EXCEPTION_HANDLERS
from app.web.identity import IdentityMiddleware
from app.web.public import PublicController
from app.web.ratelimit import RateLimited, RateLimiter, rate_limited_response

log = logging.getLogger("minpan")

# The headers themselves, and the hook that puts them on error and static responses too:
# app/security/headers.py.


class MinpanApp(Litestar):
    """The application, with the stored reply pages kept in memory answered before its stack
    (app/public/memory.py: same bytes and headers, request id, access log and metrics)."""

    async def __call__(
        self,
        scope: Scope | LifeSpanScope,
        receive: Receive | LifeSpanReceive,
        send: Send | LifeSpanSend,
    ) -> None:
        if PAGE_MEMORY.active and scope["type"] == ScopeType.HTTP and await PAGE_MEMORY.respond(scope, send):  # type: ignore[arg-type]
            return
        await super().__call__(scope, receive, send)


def create_app(settings: Settings | None = None) -> Litestar:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(_app: Litestar) -> AsyncGenerator[None, None]:
        background = None
        if settings.in_process_worker:
            from tasks.embedded import EmbeddedWorker

            background = EmbeddedWorker()
            background.start()
        forget_kept()
        PAGE_MEMORY.start(settings)
        try:
            yield
        finally:
            if background is not None:
                background.stop()

    app = MinpanApp(
        route_handlers=[
            PublicController,
            PublicPortalController,
            OpenStatsController,
            RatingController,
            AuthController,
            AccountController,
            SecurityAdminController,
            HomeController,
            StaffController,
            WorkspaceAdminController,
            AuditController,
            CaseController,
            IntakeController,
            InboxController,
            FlowChartController,
            OversightController,
            SupervisionController,
            StatsController,
            AttachmentController,
            SatisfactionController,
            CalendarController,
            EscalationPolicyController,
            OutboxController,
            AssessmentController,
            AssessmentRulesController,
            BulletinController,
            LedgerController,
            CaseFileController,
            JobController,
            DocumentController,
            VerifyController,
            PublishedReplyPdfController,
            NotificationController,
            MessageFeedController,
            feed_openapi,
            create_static_files_router(
                path="/static", directories=[settings.static_dir], opt=PUBLIC, name="static"
            ),
        ],
        dependencies=DEPENDENCIES,
        guards=[authorize, RateLimiter.from_settings(settings)],
        middleware=[ObservabilityMiddleware(), IdentityMiddleware()],
        csrf_config=CSRFConfig(
            secret=settings.secret_key,
            cookie_name="minpan_csrf",
            cookie_secure=settings.session_cookie_secure,
            cookie_httponly=False,
            exclude=["/api/", *CSRF_EXEMPT],
        ),
        exception_handlers={**EXCEPTION_HANDLERS, RateLimited: rate_limited_response},
        response_headers=SECURITY_HEADERS,
        before_send=[add_security_headers],
        openapi_config=None,
        lifespan=[lifespan],
        logging_config=None,  # `minpan serve` configures logging (app/ops/setup.py: JSON, request ids)
        debug=settings.debug,
    )
    check_declarations(app)
    return app
