"""Access tokens of the message board feed (the machine that forwards 第三条's messages to us).

A token is created by the centre's administrator on the command line (``minpan api-token
create``), shown once, and stored only as its SHA-256, exactly like a session cookie. It belongs to
the centre's workspace: whatever arrives with it is registered there (第九条).

``api_tokens`` is a global table (like ``user_sessions``), not workspace-owned: a token is looked up
before anyone knows which workspace the request belongs to.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from sqlalchemy import ForeignKey, String, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from app.db import Base, utcnow
from app.errors import Conflict, InvalidInput, NotFound
from app.tenants.models import Workspace, WorkspaceKind

TOKEN_PREFIX = "mpt_"  # noqa: S105  (a marker, not a secret)
# Touching last_used_at on every message would make each one a second write; once a minute is
# enough to tell an idle feed from a live one.
TOUCH_INTERVAL = timedelta(minutes=1)


class ApiToken(Base):
    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None]
    last_used_at: Mapped[datetime | None]

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def centre_workspace(db: Session, slug: str | None = None) -> Workspace:
    """The centre's workspace (第二条, 第六条): the only one that registers messages."""
    query = select(Workspace).where(
        Workspace.kind == WorkspaceKind.CENTRE.value, Workspace.is_active.is_(True)
    )
    if slug:
        query = query.where(Workspace.slug == slug)
    found = list(db.scalars(query.order_by(Workspace.id)))
    if not found:
        raise NotFound(f"没有找到运维中心工作区{f' {slug}' if slug else ''}。")
    if len(found) > 1:
        raise InvalidInput("有多个运维中心工作区，请用 --workspace 指定。", field="workspace")
    return found[0]


def create_token(db: Session, name: str, workspace_slug: str | None = None) -> tuple[ApiToken, str]:
    """A new token for the centre; the plain token is returned once and never stored."""
    name = name.strip()
    if not name or len(name) > 100:
        raise InvalidInput("请填写令牌名称（不超过 100 字）。", field="name")
    if db.scalar(select(ApiToken.id).where(ApiToken.name == name, ApiToken.revoked_at.is_(None))):
        raise Conflict(f"已有名为 {name} 的有效令牌。")
    workspace = centre_workspace(db, workspace_slug)
    plain = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(name=name, token_hash=hash_token(plain), workspace_id=workspace.id)
    db.add(token)
    db.flush()
    return token, plain


def revoke_token(db: Session, name: str) -> int:
    """Revoke every active token of that name; returns how many."""
    tokens = list(db.scalars(select(ApiToken).where(ApiToken.name == name, ApiToken.revoked_at.is_(None))))
    for token in tokens:
        token.revoked_at = utcnow()
    return len(tokens)


def list_tokens(db: Session) -> list[ApiToken]:
    return list(db.scalars(select(ApiToken).order_by(ApiToken.id)))


def resolve_token(db: Session, plain: str) -> ApiToken | None:
    """The active token for a presented bearer value (and note that it was used), else None."""
    if not plain.startswith(TOKEN_PREFIX) or len(plain) > 200:
        return None
    token = db.scalar(select(ApiToken).where(ApiToken.token_hash == hash_token(plain)))
    if token is None or not token.is_active:
        return None
    now = utcnow()
    if token.last_used_at is None or now - token.last_used_at >= TOUCH_INTERVAL:
        token.last_used_at = now
    return token
