"""Imports every model so that Base.metadata knows every table (for Alembic and tests)."""

from app.accounts.models import User, UserSession
from app.audit.models import AuditEvent
from app.calendar.models import CalendarDay, CalendarYear
from app.cases.models import Assignment, Attachment, Case, Counter, Instruction, TimelineEntry
from app.cases.tokens import ApiToken
from app.escalation.models import Escalation, EscalationPolicy, Notification
from app.notify.models import OutboxMessage
from app.tenants.models import Membership, Section, Workspace

__all__ = [
    "ApiToken",
    "Assignment",
    "Attachment",
    "AuditEvent",
    "CalendarDay",
    "CalendarYear",
    "Case",
    "Counter",
    "Escalation",
    "EscalationPolicy",
    "Instruction",
    "Membership",
    "Notification",
    "OutboxMessage",
    "Section",
    "TimelineEntry",
    "User",
    "UserSession",
    "Workspace",
]
