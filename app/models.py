"""Imports every model so that Base.metadata knows every table (for Alembic and tests)."""

from app.accounts.models import User, UserSession
from app.audit.models import AuditEvent
from app.tenants.models import Membership, Workspace

__all__ = ["AuditEvent", "Membership", "User", "UserSession", "Workspace"]
