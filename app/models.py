"""Imports every model so that Base.metadata knows every table (for Alembic and tests)."""

from app.accounts.models import User, UserSession
from app.assessment.models import AssessmentRules, Bulletin
from app.audit.models import AuditEvent
from app.calendar.models import CalendarDay, CalendarYear
from app.cases.models import Assignment, Attachment, Case, Counter, Instruction, TimelineEntry
from app.cases.tokens import ApiToken
from app.documents.models import Document
from app.escalation.models import Escalation, EscalationBatch, EscalationPolicy, Notification
from app.jobs.models import Job
from app.notify.models import OutboxMessage
from app.public.models import PublicEntry, Rating, RatingInvite
from app.tenants.models import Membership, Section, Workspace

__all__ = [
    "ApiToken",
    "AssessmentRules",
    "Assignment",
    "Attachment",
    "AuditEvent",
    "Bulletin",
    "CalendarDay",
    "CalendarYear",
    "Case",
    "Counter",
    "Document",
    "Escalation",
    "EscalationBatch",
    "EscalationPolicy",
    "Instruction",
    "Job",
    "Membership",
    "Notification",
    "OutboxMessage",
    "PublicEntry",
    "Rating",
    "RatingInvite",
    "Section",
    "TimelineEntry",
    "User",
    "UserSession",
    "Workspace",
]
