"""User accounts and their server-side sessions."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, utcnow
from app.security.crypto import EncryptedText


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(64))
    # Office phone and e-mail: the handler's contact data published with a reply (第十二条).
    office_phone: Mapped[str] = mapped_column(String(40), default="")
    email: Mapped[str] = mapped_column(String(200), default="")
    # Mobile number for SMS notifications (app/notify); empty = none.
    mobile: Mapped[str] = mapped_column(String(20), default="")
    password_hash: Mapped[str] = mapped_column(String(255))
    password_changed_at: Mapped[datetime] = mapped_column(default=utcnow)
    must_change_password: Mapped[bool] = mapped_column(default=False)
    is_active: Mapped[bool] = mapped_column(default=True)
    failed_logins: Mapped[int] = mapped_column(default=0)
    locked_until: Mapped[datetime | None] = mapped_column(default=None)
    last_login_at: Mapped[datetime | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Two-factor sign-in (TOTP, RFC 6238; app/accounts/two_factor.py). The secret is set when the
    # enrolment page is first shown and counts only once confirmed (``totp_confirmed_at``); sealed
    # at rest like citizens' contact data (a copy of the database must not yield sign-in codes).
    totp_secret: Mapped[str] = mapped_column(EncryptedText("totp_secret"), default="")
    totp_confirmed_at: Mapped[datetime | None] = mapped_column(default=None)
    # The 30-second step of the last code accepted: a code is never accepted twice (replay).
    totp_last_step: Mapped[int] = mapped_column(BigInteger, default=0)


class UserSession(Base):
    """A signed-in browser. The cookie holds a random token; only its SHA-256 is stored here.

    Kept in the database so that every web process shares it (no process memory).
    """

    __tablename__ = "user_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # sha256(token) hex
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    workspace_id: Mapped[int | None] = mapped_column(ForeignKey("workspaces.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    ip: Mapped[str] = mapped_column(String(64), default="")
    user_agent: Mapped[str] = mapped_column(String(300), default="")


class RecoveryCode(Base):
    """One of the ten one-time recovery codes of a person's second factor; only a hash is kept."""

    __tablename__ = "recovery_codes"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    code_hash: Mapped[str] = mapped_column(String(64))  # sha256(user id + code) hex
    used_at: Mapped[datetime | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class PasswordHistory(Base):
    """A person's earlier password hashes, for the rule "not one of the last N passwords"."""

    __tablename__ = "password_history"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class SecurityPolicy(Base):
    """The system administrator's password rules (one global row, id 1; defaults when missing)."""

    __tablename__ = "security_policy"

    id: Mapped[int] = mapped_column(primary_key=True)
    # Days after which a password must be changed; 0 = never expires.
    password_max_age_days: Mapped[int] = mapped_column(Integer, default=90)
    # A new password may not equal any of the last N (the current one included); 0 = no rule.
    password_history: Mapped[int] = mapped_column(Integer, default=5)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), default=None)
