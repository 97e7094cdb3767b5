"""Sign-in, sign-out, sessions, lockout and passwords.

These run in a system session: they read a person's posts across workspaces, which is exactly
what they are for, and nothing else of those workspaces.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from app.accounts import two_factor
from app.accounts.identity import CurrentUser, Post
from app.accounts.models import PasswordHistory, SecurityPolicy, User, UserSession
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


@dataclass(frozen=True)
class SecondFactorRequired:
    """The password was right; a TOTP or recovery code (or, with ``enrol``, enrolment) is next."""

    user_id: int
    enrol: bool


def sign_in(
    username: str, password: str, *, ip: str = "", user_agent: str = ""
) -> SignInResult | SecondFactorRequired:
    """Check the password, lock after repeated failures, open a new server-side session — or,
    for a person with a second factor (or who must have one), ask for it first."""
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
        posts = posts_of(db, user.id)
        if _password_expired(db, user, now):
            user.must_change_password = True
            record(db, "auth.password_expired", actor_id=user.id, workspace_id=None, target=username, ip=ip)
        if two_factor.enrolled(user) or two_factor.required_for(posts):
            # The password is right; the session opens only after the second factor. The failure
            # count is not reset here, so wrong codes still lead to the lockout.
            return SecondFactorRequired(user.id, enrol=not two_factor.enrolled(user))
        return _open_session(db, user, posts, ip=ip, user_agent=user_agent)


def _open_session(
    db: Session, user: User, posts: tuple[Post, ...], *, ip: str, user_agent: str
) -> SignInResult:
    user.failed_logins = 0
    user.locked_until = None
    user.last_login_at = utcnow()
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
        target=user.username,
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
        policy = security_policy(db)
        history = list(
            db.scalars(
                select(PasswordHistory)
                .where(PasswordHistory.user_id == row.id)
                .order_by(PasswordHistory.created_at.desc(), PasswordHistory.id.desc())
            )
        )
        # The current password is the most recent one; the history holds those before it.
        recent = history[: max(policy.password_history - 1, 0)]
        if policy.password_history > 1 and any(
            verify_password(h.password_hash, new_password) for h in recent
        ):
            raise InvalidInput(
                f"新密码不能与最近 {policy.password_history} 次使用过的密码相同。", field="password"
            )
        db.add(PasswordHistory(user_id=row.id, password_hash=row.password_hash))
        for old in history[MAX_HISTORY - 1 :]:
            db.delete(old)
        row.password_hash = hash_password(new_password)
        row.password_changed_at = utcnow()
        row.must_change_password = False
        # Every other browser of this person is signed out.
        db.execute(
            delete(UserSession).where(UserSession.user_id == row.id, UserSession.id != user.session_id)
        )
        record(db, "auth.password_changed", actor_id=row.id, workspace_id=user.workspace_id, ip=user.ip)


# --- password rules (the system administrator's) ---------------------------------------------

MAX_HISTORY = 24
MAX_AGE_DAYS = 3650


def security_policy(db: Session) -> SecurityPolicy:
    """The password rules: the stored row, or the defaults (90 days, last 5) when none is stored."""
    row = db.get(SecurityPolicy, 1)
    return row if row is not None else SecurityPolicy(id=1, password_max_age_days=90, password_history=5)


def _password_expired(db: Session, user: User, now: datetime) -> bool:
    if user.must_change_password:
        return False
    days = security_policy(db).password_max_age_days
    return days > 0 and now - user.password_changed_at > timedelta(days=days)


def password_expired_notice(me: CurrentUser) -> str:
    """The Chinese notice for a person sent to change an expired password, else ""."""
    if not me.must_change_password:
        return ""
    with system_session() as db:
        user = db.get(User, me.user_id)
        days = security_policy(db).password_max_age_days
        if user is None or days <= 0 or utcnow() - user.password_changed_at <= timedelta(days=days):
            return ""
        return f"您的密码已使用超过 {days} 天，按本系统密码策略已过期，请设置新密码后继续使用。"


def update_security_policy(
    db: Session, me: CurrentUser, max_age_raw: str, history_raw: str
) -> SecurityPolicy:
    """Set the password rules (system administrator; audited with the values before and after)."""
    try:
        max_age = int(max_age_raw.strip())
    except ValueError:
        raise InvalidInput(
            "密码有效期须为整数天数（0 表示不过期）。", field="password_max_age_days"
        ) from None
    if not 0 <= max_age <= MAX_AGE_DAYS:
        raise InvalidInput(f"密码有效期须在 0 到 {MAX_AGE_DAYS} 天之间。", field="password_max_age_days")
    try:
        history = int(history_raw.strip())
    except ValueError:
        raise InvalidInput("密码历史须为整数（0 表示不限制）。", field="password_history") from None
    if not 0 <= history <= MAX_HISTORY:
        raise InvalidInput(f"密码历史须在 0 到 {MAX_HISTORY} 次之间。", field="password_history")
    row = db.get(SecurityPolicy, 1)
    before = (
        {"password_max_age_days": row.password_max_age_days, "password_history": row.password_history}
        if row
        else None
    )
    if row is None:
        row = SecurityPolicy(id=1)
        db.add(row)
    row.password_max_age_days = max_age
    row.password_history = history
    row.updated_at = utcnow()
    row.updated_by = me.user_id
    record(
        db,
        "security.policy_updated",
        actor_id=me.user_id,
        workspace_id=me.workspace_id,
        target="security_policy",
        ip=me.ip,
        before=before,
        after={"password_max_age_days": max_age, "password_history": history},
    )
    return row


# --- two-factor sign-in ----------------------------------------------------------------------

PENDING_SECONDS = 300
SECOND_FACTOR_FAILED = "验证码不正确或已使用，请输入身份验证器中最新的 6 位验证码，或一个未用过的恢复码。"
PENDING_EXPIRED = "登录已超时，请重新输入用户名和密码。"


def _pending_mac(payload: bytes) -> str:
    key = hashlib.sha256(b"minpan-second-factor:" + get_settings().secret_key.encode()).digest()
    return hmac.new(key, payload, hashlib.sha256).hexdigest()


def pending_token(user_id: int, target: str) -> str:
    """The signed, short-lived ``minpan_2fa`` cookie between the password and the second factor."""
    payload = json.dumps({"u": user_id, "t": int(time.time()), "n": target}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(payload).decode() + "." + _pending_mac(payload)


@dataclass(frozen=True)
class Pending:
    user_id: int
    target: str


def read_pending(token: str | None) -> Pending | None:
    if not token or "." not in token:
        return None
    data, mac = token.rsplit(".", 1)
    try:
        payload = base64.urlsafe_b64decode(data.encode())
    except (ValueError, TypeError):
        return None
    if not hmac.compare_digest(mac, _pending_mac(payload)):
        return None
    try:
        fields = json.loads(payload)
        user_id, issued, target = int(fields["u"]), int(fields["t"]), str(fields["n"])
    except (ValueError, KeyError, TypeError):
        return None
    if not 0 <= time.time() - issued <= PENDING_SECONDS:
        return None
    return Pending(user_id, target)


@dataclass(frozen=True)
class Enrolment:
    """What the enrolment page shows: the QR code, the secret to type by hand, the recovery codes."""

    username: str
    qr_svg: str
    secret: str
    recovery_codes: list[str]


def _enrolment(db: Session, user: User) -> Enrolment:
    if not user.totp_secret or user.totp_confirmed_at is not None:
        user.totp_secret = two_factor.new_secret()
        user.totp_confirmed_at = None
        user.totp_last_step = 0
    codes = two_factor.new_recovery_codes(db, user.id)
    return Enrolment(
        user.username,
        two_factor.qr_svg(two_factor.provisioning_uri(user)),
        two_factor.grouped(user.totp_secret),
        codes,
    )


def second_factor_page(user_id: int) -> Enrolment | None:
    """For the page after the password: None when the person is enrolled (asks for a code),
    else a fresh enrolment (the same secret while unconfirmed; new recovery codes each time)."""
    with system_session() as db:
        user = db.get(User, user_id)
        if user is None or not user.is_active:
            raise InvalidInput(PENDING_EXPIRED)
        if two_factor.enrolled(user):
            return None
        return _enrolment(db, user)


def _second_factor_failed(db: Session, user: User, ip: str, reason: str) -> InvalidInput:
    settings = get_settings()
    now = utcnow()
    user.failed_logins += 1
    record(
        db,
        "auth.two_factor_failed",
        actor_id=user.id,
        workspace_id=None,
        target=user.username,
        ip=ip,
        attempt=user.failed_logins,
        reason=reason,
    )
    if user.failed_logins >= settings.lockout_threshold:
        user.locked_until = now + timedelta(minutes=settings.lockout_minutes)
        user.failed_logins = 0
        record(
            db,
            "auth.locked",
            actor_id=user.id,
            workspace_id=None,
            target=user.username,
            ip=ip,
            minutes=settings.lockout_minutes,
        )
        db.commit()
        return AccountLocked(user.locked_until)
    db.commit()
    return InvalidInput(SECOND_FACTOR_FAILED, field="code")


def complete_sign_in(user_id: int, code: str, *, ip: str = "", user_agent: str = "") -> SignInResult:
    """The second step: a TOTP code (which, for a person enrolling, confirms the new secret) or a
    recovery code. Wrong codes count towards the lockout like wrong passwords."""
    now = utcnow()
    with system_session() as db:
        user = db.get(User, user_id)
        if user is None or not user.is_active:
            raise InvalidInput(PENDING_EXPIRED)
        if user.locked_until and user.locked_until > now:
            record(
                db,
                "auth.sign_in_refused_locked",
                actor_id=user.id,
                workspace_id=None,
                target=user.username,
                ip=ip,
            )
            db.commit()
            raise AccountLocked(user.locked_until)
        code = code.strip()
        if two_factor.enrolled(user):
            if two_factor.looks_like_recovery_code(code):
                if not two_factor.use_recovery_code(db, user.id, code, now):
                    raise _second_factor_failed(db, user, ip, "recovery_code")
                record(
                    db,
                    "auth.two_factor_recovery_used",
                    actor_id=user.id,
                    workspace_id=None,
                    target=user.username,
                    ip=ip,
                    left=two_factor.recovery_codes_left(db, user.id),
                )
            elif not two_factor.verify_totp(user, code):
                raise _second_factor_failed(db, user, ip, "totp")
        else:
            if not user.totp_secret or not two_factor.verify_totp(user, code):
                raise _second_factor_failed(db, user, ip, "enrolment")
            user.totp_confirmed_at = now
            record(
                db,
                "auth.two_factor_enrolled",
                actor_id=user.id,
                workspace_id=None,
                target=user.username,
                ip=ip,
            )
        return _open_session(db, user, posts_of(db, user.id), ip=ip, user_agent=user_agent)


@dataclass(frozen=True)
class TwoFactorStatus:
    enrolled: bool
    required: bool
    codes_left: int
    enrolment: Enrolment | None = None


def _me(db: Session, me: CurrentUser) -> User:
    user = db.get(User, me.user_id)
    if user is None:
        raise NotFound()
    return user


def _audit_two_factor(db: Session, me: CurrentUser, action: str, user: User) -> None:
    """An audit entry of a change to ``user``'s second factor, made by ``me``."""
    record(db, action, actor_id=me.user_id, workspace_id=me.workspace_id, target=user.username, ip=me.ip)


def two_factor_status(me: CurrentUser, *, start_enrolment: bool = False) -> TwoFactorStatus:
    with system_session() as db:
        user = _me(db, me)
        required = two_factor.required_for(me.posts)
        if two_factor.enrolled(user):
            return TwoFactorStatus(True, required, two_factor.recovery_codes_left(db, user.id))
        enrolment = _enrolment(db, user) if start_enrolment else None
        return TwoFactorStatus(False, required, 0, enrolment)


def enrol_signed_in(me: CurrentUser, code: str) -> None:
    """Confirm the enrolment started on the account page."""
    with system_session() as db:
        user = _me(db, me)
        if two_factor.enrolled(user):
            raise InvalidInput("您已启用两步验证。", field="code")
        if not user.totp_secret or not two_factor.verify_totp(user, code):
            raise InvalidInput("验证码不正确，请按新的二维码重新添加后再输入。", field="code")
        user.totp_confirmed_at = utcnow()
        _audit_two_factor(db, me, "auth.two_factor_enrolled", user)


def renew_recovery_codes(me: CurrentUser, code: str) -> list[str]:
    """Ten new recovery codes (the old ones stop working), against a current TOTP code."""
    with system_session() as db:
        user = _me(db, me)
        if not two_factor.enrolled(user):
            raise InvalidInput("请先启用两步验证。", field="code")
        if not two_factor.verify_totp(user, code):
            raise InvalidInput("验证码不正确或已使用，请输入身份验证器中最新的 6 位验证码。", field="code")
        codes = two_factor.new_recovery_codes(db, user.id)
        _audit_two_factor(db, me, "auth.two_factor_codes_renewed", user)
        return codes


@dataclass(frozen=True)
class RosterRow:
    user_id: int
    username: str
    display_name: str
    roles: tuple[str, ...]
    required: bool
    enrolled: bool
    codes_left: int


def two_factor_roster(db: Session) -> list[RosterRow]:
    """The people of the administrator's current workspace and their second factor (the request's
    session: memberships are scoped to that workspace)."""
    from sqlalchemy import func

    from app.accounts.models import RecoveryCode
    from app.tenants.models import Membership

    context_ws = db.scalar(select(Membership.workspace_id).limit(1))
    kind = db.scalar(select(Workspace.kind).where(Workspace.id == context_ws)) if context_ws else ""
    roles: dict[int, list[str]] = {}
    for user_id, role in db.execute(select(Membership.user_id, Membership.role).order_by(Membership.role)):
        roles.setdefault(user_id, []).append(role)
    if not roles:
        return []
    left = dict(
        db.execute(
            select(RecoveryCode.user_id, func.count())
            .where(RecoveryCode.user_id.in_(roles), RecoveryCode.used_at.is_(None))
            .group_by(RecoveryCode.user_id)
        ).all()
    )
    rows = []
    for user in db.scalars(select(User).where(User.id.in_(roles)).order_by(User.username)):
        held = tuple(roles[user.id])
        post = Post(0, "", "", "", kind or "", held)
        rows.append(
            RosterRow(
                user.id,
                user.username,
                user.display_name,
                held,
                two_factor.required_for([post]),
                two_factor.enrolled(user),
                int(left.get(user.id, 0)),
            )
        )
    return rows


def reset_two_factor(db: Session, me: CurrentUser, user_id: int) -> User:
    """An administrator clears a colleague's second factor (lost telephone): the person enrols
    again at the next sign-in and every session of theirs ends. ``db`` is the request's session,
    scoped to the administrator's workspace: only a person holding a post there is found."""
    from app.tenants.models import Membership

    if user_id == me.user_id:
        raise InvalidInput("不能重置自己的两步验证，请联系其他管理员。", field="user_id")
    held = db.scalar(select(Membership.id).where(Membership.user_id == user_id).limit(1))
    user = db.get(User, user_id) if held else None
    if user is None:
        raise NotFound()
    two_factor.reset(db, user)
    db.execute(delete(UserSession).where(UserSession.user_id == user.id))
    _audit_two_factor(db, me, "auth.two_factor_reset", user)
    return user


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
