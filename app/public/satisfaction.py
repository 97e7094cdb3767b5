"""满意率回访 (第十八条): the citizen rates the reply to their message, once per case.

Two ways in, one rating per case (unique ``ratings.case_id``):

* **回访链接** — the centre's clerk or reviewer makes a personal link for a published reply
  (:func:`issue_invite`) and sends it by SMS or telephone. The link carries a random token
  (``secrets.token_urlsafe(24)``); only its SHA-256 is stored, so the link is shown once, to the
  person who made it, and a new link replaces the old one. It is valid for 30 days. The visitor
  needs no account: :func:`find_invite` reads through the public reader, :func:`rate_by_link`
  writes in a session bound to the invite's (the centre's) workspace.
* **电话回访** — the centre records what the citizen said on the telephone
  (:func:`record_by_phone`).

The link is not e-mailed through the outbox on purpose: the outbox keeps each message's body in
plain text after sending, and the token would sit there beside its hash. Every rating and every
link is written to the audit log. Only counts reach the public (:mod:`app.public.stats`).
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.accounts.identity import CurrentUser
from app.accounts.models import User
from app.audit.services import record
from app.cases.models import Case
from app.db import session_factory, utcnow
from app.errors import Conflict, InvalidInput, NotFound
from app.public.masking import mask
from app.public.models import Rating, RatingInvite
from app.public.queries import reader
from app.public.visibility import PRIVATE_REPLY_NOTE, REPLY_STATES, is_public_reply
from app.tenants.models import Workspace
from app.tenants.scope import TenantContext, bind_tenant

SCORES: Final = {"satisfied": "满意", "basic": "基本满意", "unsatisfied": "不满意"}
# The satisfaction rate counts 满意 and 基本满意 as satisfied.
SATISFIED: Final = ("satisfied", "basic")
SOURCES: Final = {"link": "回访链接", "phone": "电话回访"}
COMMENT_MAX: Final = 500
INVITE_DAYS: Final = 30
SUMMARY_CHARS: Final = 300

ALREADY_RATED: Final = "该留言已经回访评价过了，每件留言只评价一次。感谢您的参与！"
INVALID_LINK: Final = "回访链接无效或已过期。如需评价，请联系通辽市政府门户网站运维中心重新获取链接。"
NOT_PUBLISHED: Final = "只有已公开答复的留言才能回访（第十八条）。"

_TOKEN: Final = re.compile(r"[A-Za-z0-9_-]{20,64}")


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class RatingInput:
    score: str
    comment: str

    @classmethod
    def parse(cls, data: Mapping[str, Any]) -> RatingInput:
        """The form's score and comment, or ``InvalidInput`` in Chinese."""
        score = str(data.get("score") or "").strip()
        if score not in SCORES:
            raise InvalidInput("请选择“满意”“基本满意”或“不满意”。", field="score")
        comment = str(data.get("comment") or "").strip()
        if len(comment) > COMMENT_MAX:
            raise InvalidInput(
                f"意见和建议不能超过 {COMMENT_MAX} 字（现有 {len(comment)} 字）。", field="comment"
            )
        return cls(score, comment)


def not_rateable_reason(case: Case) -> str:
    """Why this case cannot be rated ("" when it can): only a published reply is followed up."""
    if case.state in REPLY_STATES and case.published_at is not None and not case.decline_reason:
        return ""
    return NOT_PUBLISHED


def rating_of(db: Session, case_id: int) -> Rating | None:
    return db.scalar(select(Rating).where(Rating.case_id == case_id))


def invite_of(db: Session, case_id: int) -> RatingInvite | None:
    return db.scalar(select(RatingInvite).where(RatingInvite.case_id == case_id))


# --- the centre ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Status:
    """The follow-up of one case as the centre's page shows it."""

    reason: str  # why it cannot be rated, "" when it can
    rating: Rating | None
    recorded_by: str  # who took a telephone rating
    invite: Invite | None

    @property
    def rateable(self) -> bool:
        return not self.reason


@dataclass(frozen=True)
class Invite:
    created_at: datetime
    expires_at: datetime
    used_at: datetime | None

    @property
    def expired(self) -> bool:
        return self.expires_at <= utcnow()


def status(db: Session, case: Case) -> Status:
    rating = rating_of(db, case.id)
    invite = invite_of(db, case.id)
    recorded_by = ""
    if rating is not None and rating.recorded_by_id is not None:
        recorded_by = db.scalar(select(User.display_name).where(User.id == rating.recorded_by_id)) or ""
    return Status(
        reason=not_rateable_reason(case),
        rating=rating,
        recorded_by=recorded_by,
        invite=Invite(invite.created_at, invite.expires_at, invite.used_at) if invite else None,
    )


def _check_open(db: Session, case: Case) -> None:
    if reason := not_rateable_reason(case):
        raise InvalidInput(reason)
    if rating_of(db, case.id) is not None:
        raise Conflict(ALREADY_RATED)


def issue_invite(db: Session, actor: CurrentUser, case: Case) -> str:
    """回访链接: a new personal link for a published, unrated reply; it replaces an earlier one."""
    _check_open(db, case)
    token = secrets.token_urlsafe(24)
    now = utcnow()
    invite = invite_of(db, case.id) or RatingInvite(workspace_id=case.workspace_id, case_id=case.id)
    invite.token_hash = hash_token(token)
    invite.created_by_id = actor.user_id
    invite.created_at = now
    invite.expires_at = now + timedelta(days=INVITE_DAYS)
    invite.used_at = None
    db.add(invite)
    db.flush()
    record(
        db,
        "satisfaction.link_issued",
        actor_id=actor.user_id,
        workspace_id=case.workspace_id,
        target=f"case:{case.id}",
        ip=actor.ip,
        expires_at=invite.expires_at.isoformat(),
    )
    return token


def record_by_phone(db: Session, actor: CurrentUser, case: Case, rating: RatingInput) -> Rating:
    """电话回访: the centre records the citizen's verdict taken by telephone, once per case."""
    _check_open(db, case)
    added = _add_rating(db, case, rating, source="phone", recorded_by_id=actor.user_id)
    _audit_rating(db, added, actor_id=actor.user_id, ip=actor.ip)
    return added


def _add_rating(
    db: Session, case: Case, rating: RatingInput, *, source: str, recorded_by_id: int | None
) -> Rating:
    added = Rating(
        workspace_id=case.workspace_id,
        case_id=case.id,
        score=rating.score,
        comment=rating.comment,
        source=source,
        recorded_by_id=recorded_by_id,
    )
    try:
        with db.begin_nested():  # two ratings at once: the unique key keeps the first
            db.add(added)
            db.flush()
    except IntegrityError:
        raise Conflict(ALREADY_RATED) from None
    return added


def _audit_rating(db: Session, rating: Rating, *, actor_id: int | None, ip: str) -> None:
    record(
        db,
        "satisfaction.rated",
        actor_id=actor_id,
        workspace_id=rating.workspace_id,
        target=f"case:{rating.case_id}",
        ip=ip,
        source=rating.source,
        score=rating.score,
    )


# --- the citizen, through the link -----------------------------------------------------------------


@dataclass(frozen=True)
class PublicInvite:
    """What the rating page shows: public, masked facts of the reply, never personal data."""

    case_id: int
    workspace_id: int
    title: str
    summary: str
    private: bool
    unit_name: str
    published_at: datetime
    expires_at: datetime
    rated: bool


def find_invite(token: str) -> PublicInvite | None:
    """The unexpired link with this token, on a reply that is still public; else None."""
    if not _TOKEN.fullmatch(token or ""):
        return None
    with reader() as db:
        row = db.execute(
            select(
                RatingInvite.case_id,
                RatingInvite.workspace_id,
                RatingInvite.expires_at,
                Case.title,
                Case.reply_text,
                Case.reply_private,
                Case.reply_handler_name,
                Case.reply_handler_phone,
                Case.published_at,
                Workspace.name,
                Workspace.contact_phone,
                Rating.id.label("rating_id"),
            )
            .join(Case, Case.id == RatingInvite.case_id)
            .outerjoin(Workspace, Workspace.id == Case.reply_unit_id)
            .outerjoin(Rating, Rating.case_id == RatingInvite.case_id)
            .where(RatingInvite.token_hash == hash_token(token), is_public_reply())
        ).one_or_none()
    if row is None or row.expires_at <= utcnow():
        return None
    keep = (row.reply_handler_name, row.reply_handler_phone, row.contact_phone or "")
    return PublicInvite(
        case_id=row.case_id,
        workspace_id=row.workspace_id,
        title=mask(row.title),
        summary=PRIVATE_REPLY_NOTE if row.reply_private else _summary(mask(row.reply_text, keep=keep)),
        private=row.reply_private,
        unit_name=row.name or "",
        published_at=row.published_at,
        expires_at=row.expires_at,
        rated=row.rating_id is not None,
    )


def _summary(text: str) -> str:
    text = text.strip()
    return text if len(text) <= SUMMARY_CHARS else text[:SUMMARY_CHARS].rstrip() + "……"


@contextmanager
def _centre_session(workspace_id: int) -> Iterator[Session]:
    """A session of the invite's workspace for the visitor's one write; commits on success."""
    session = session_factory()()
    bind_tenant(session, TenantContext.for_workspace(workspace_id, None))
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def rate_by_link(token: str, rating: RatingInput, *, ip: str = "") -> PublicInvite:
    """The citizen's rating through the link: once (``Conflict``), while valid (``NotFound``)."""
    found = find_invite(token)
    if found is None:
        raise NotFound(INVALID_LINK)
    if found.rated:
        raise Conflict(ALREADY_RATED)
    with _centre_session(found.workspace_id) as db:
        invite = db.scalar(
            select(RatingInvite).where(RatingInvite.token_hash == hash_token(token)).with_for_update()
        )
        case = db.scalar(select(Case).where(Case.id == found.case_id, is_public_reply()))
        if invite is None or case is None or invite.expires_at <= utcnow():
            raise NotFound(INVALID_LINK)  # replaced, withdrawn or expired since the page was read
        if invite.used_at is not None or rating_of(db, case.id) is not None:
            raise Conflict(ALREADY_RATED)
        added = _add_rating(db, case, rating, source="link", recorded_by_id=None)
        invite.used_at = added.created_at
        _audit_rating(db, added, actor_id=None, ip=ip)
    return found
