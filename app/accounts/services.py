"""Sign-in, sign-out, sessions, lockout and passwords.

These run in a system session: they read a person's posts across workspaces, which is exactly
what they are for, and nothing else of those workspaces.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from app.accounts.identity import CurrentUser, Post
from app.accounts.models import User, UserSession
from app.accounts.passwords import (
    check_password_strength,
    dummy_hash,
    hash_password,
    verify_password,
)
from app.audit.services import record
from app.db import system_session, utcnow
from app.errors import InvalidInput, NotFound
from app.settings import get_settings
from app.tenants.models import Membership, Workspace

SIGN_IN_FAILED = "用户名或密码错误。"


class AccountLocked(InvalidInput):
    def __init__(self, until: datetime) -> None:
        local = until.astimezone(_tz())
        super().__init__(f"登录失败次数过多，账户已锁定，请于 {local:%H:%M} 后再试或联系单位管理员。")
        self.until = until


def _tz() -> ZoneInfo:
    return ZoneInfo(get_settings().timezone)


def _session_key(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def posts_of(session: Session, user_id: int) -> tuple[Post, ...]:
    rows = session.execute(
        select(Workspace, Membership.role)
        .join(Membership, Membership.workspace_id == Workspace.id)
        .where(Membership.user_id == user_id, Workspace.is_active.is_(True))
        .order_by(Workspace.id, Membership.role)
    ).all()
    posts: dict[int, Post] = {}
    for ws, role in rows:
        post = posts.get(ws.id)
        roles = (*post.roles, role) if post else (role,)
        posts[ws.id] = Post(ws.id, ws.slug, ws.name, ws.short_name, ws.kind, roles)
    return tuple(posts.values())


@dataclass(frozen=True)
class SignInResult:
    token: str
    user: CurrentUser


def sign_in(username: str, password: str, *, ip: str = "", user_agent: str = "") -> SignInResult:
    """Check the password, lock after repeated failures, open a new server-side session."""
    settings = get_settings()
    now = utcnow()
    username = username.strip().lower()
    with system_session() as db:
        user = db.scalar(select(User).where(User.username == username))
        if user is None or not user.is_active:
            verify_password(dummy_hash(), password)
            record(db, "auth.sign_in_failed", actor_id=None, workspace_id=None, target=username[:120], ip=ip)
            db.commit()
            raise InvalidInput(SIGN_IN_FAILED)
        if user.locked_until and user.locked_until > now:
            record(
                db, "auth.sign_in_refused_locked", actor_id=user.id, workspace_id=None, target=username, ip=ip
            )
            db.commit()
            raise AccountLocked(user.locked_until)
        if not verify_password(user.password_hash, password):
            user.failed_logins += 1
            record(
                db,
                "auth.sign_in_failed",
                actor_id=user.id,
                workspace_id=None,
                target=username,
                ip=ip,
                attempt=user.failed_logins,
            )
            if user.failed_logins >= settings.lockout_threshold:
                user.locked_until = now + timedelta(minutes=settings.lockout_minutes)
                user.failed_logins = 0
                record(
                    db,
                    "auth.locked",
                    actor_id=user.id,
                    workspace_id=None,
                    target=username,
                    ip=ip,
                    minutes=settings.lockout_minutes,
                )
                db.commit()
                raise AccountLocked(user.locked_until)
            db.commit()
            raise InvalidInput(SIGN_IN_FAILED)
        user.failed_logins = 0
        user.locked_until = None
        user.last_login_at = now
        posts = posts_of(db, user.id)
        workspace = _pick_workspace(db, user.id, posts)
        token = secrets.token_urlsafe(32)
        db.add(
            UserSession(
                id=_session_key(token),
                user_id=user.id,
                workspace_id=workspace.workspace_id if workspace else None,
                ip=ip[:64],
                user_agent=user_agent[:300],
            )
        )
        record(
            db,
            "auth.sign_in",
            actor_id=user.id,
            workspace_id=workspace.workspace_id if workspace else None,
            target=username,
            ip=ip,
        )
        current = CurrentUser(
            user.id,
            user.username,
            user.display_name,
            _session_key(token),
            user.must_change_password,
            posts,
            workspace,
            ip,
        )
    return SignInResult(token, current)


def _pick_workspace(db: Session, user_id: int, posts: tuple[Post, ...]) -> Post | None:
    """Land where the person last worked, else in their first post."""
    if not posts:
        return None
    last = db.scalar(
        select(UserSession.workspace_id)
        .where(UserSession.user_id == user_id, UserSession.workspace_id.is_not(None))
        .order_by(UserSession.last_seen_at.desc())
        .limit(1)
    )
    return next((p for p in posts if p.workspace_id == last), posts[0])


@dataclass(frozen=True)
class Resolved:
    user: CurrentUser | None
    expired: bool = False


def resolve_session(token: str | None, *, ip: str = "") -> Resolved:
    """The person behind a session cookie, or None. Ends sessions idle past the timeout."""
    if not token:
        return Resolved(None)
    settings = get_settings()
    now = utcnow()
    key = _session_key(token)
    with system_session() as db:
        row = db.get(UserSession, key)
        if row is None:
            return Resolved(None)
        idle = now - row.last_seen_at > timedelta(minutes=settings.session_idle_minutes)
        too_old = now - row.created_at > timedelta(hours=settings.session_absolute_hours)
        user = db.get(User, row.user_id)
        if idle or too_old or user is None or not user.is_active:
            db.delete(row)
            record(
                db,
                "auth.session_expired",
                actor_id=row.user_id,
                workspace_id=row.workspace_id,
                ip=ip,
                reason="idle" if idle else "lifetime",
            )
            return Resolved(None, expired=True)
        # Throttled touch: one write a minute per session is enough for a 30-minute idle timeout.
        if now - row.last_seen_at > timedelta(seconds=60):
            row.last_seen_at = now
        posts = posts_of(db, user.id)
        workspace = next((p for p in posts if p.workspace_id == row.workspace_id), None)
        if workspace is None and posts:
            workspace = posts[0]
            row.workspace_id = workspace.workspace_id
        return Resolved(
            CurrentUser(
                user.id,
                user.username,
                user.display_name,
                key,
                user.must_change_password,
                posts,
                workspace,
                ip,
            )
        )


def sign_out(user: CurrentUser) -> None:
    with system_session() as db:
        db.execute(delete(UserSession).where(UserSession.id == user.session_id))
        record(db, "auth.sign_out", actor_id=user.user_id, workspace_id=user.workspace_id, ip=user.ip)


def switch_workspace(user: CurrentUser, workspace_id: int) -> Post:
    """Move the session to another of the person's posts. Anything else is 'not found'."""
    post = next((p for p in user.posts if p.workspace_id == workspace_id), None)
    if post is None:
        raise NotFound()
    with system_session() as db:
        row = db.get(UserSession, user.session_id)
        if row is None:
            raise NotFound()
        row.workspace_id = workspace_id
        record(
            db,
            "auth.workspace_switched",
            actor_id=user.user_id,
            workspace_id=workspace_id,
            ip=user.ip,
            previous=user.workspace_id,
        )
    return post


def change_password(user: CurrentUser, current_password: str, new_password: str, confirm: str) -> None:
    with system_session() as db:
        row = db.get(User, user.user_id)
        if row is None:
            raise NotFound()
        if not verify_password(row.password_hash, current_password):
            raise InvalidInput("当前密码不正确。", field="current_password")
        if new_password != confirm:
            raise InvalidInput("两次输入的新密码不一致。", field="confirm")
        if new_password == current_password:
            raise InvalidInput("新密码不能与当前密码相同。", field="password")
        check_password_strength(new_password, row.username)
        row.password_hash = hash_password(new_password)
        row.password_changed_at = utcnow()
        row.must_change_password = False
        # Every other browser of this person is signed out.
        db.execute(
            delete(UserSession).where(UserSession.user_id == row.id, UserSession.id != user.session_id)
        )
        record(db, "auth.password_changed", actor_id=row.id, workspace_id=user.workspace_id, ip=user.ip)


def purge_expired_sessions() -> int:
    """Delete sessions past the idle timeout or the absolute lifetime. Safe to run twice."""
    settings = get_settings()
    now = utcnow()
    with system_session() as db:
        result = db.execute(
            delete(UserSession).where(
                (UserSession.last_seen_at < now - timedelta(minutes=settings.session_idle_minutes))
                | (UserSession.created_at < now - timedelta(hours=settings.session_absolute_hours))
            )
        )
        return int(result.rowcount or 0)  # type: ignore[attr-defined]
