"""Two-factor sign-in: TOTP codes (RFC 6238, any authenticator app) and one-time recovery codes.

Who must use it (等保2.0 三级: 双因素鉴别 for privileged and leading posts): anyone holding a post
in the centre or the supervision office, a unit's principal (主要负责人) or deputy (分管领导), and
every administrator. Others may turn it on for themselves.

- The secret is created when the enrolment page is first shown, kept in ``users.totp_secret`` and
  counts once a code from it has been entered (``totp_confirmed_at``).
- A code is accepted for the current 30-second step and one step either side (clock drift), and
  never twice: ``totp_last_step`` remembers the step of the last code accepted, and only a later
  step passes (a code seen over someone's shoulder cannot be replayed).
- Ten recovery codes (``XXXX-XXXX-XXXX``, 60 bits each) are shown once; only
  ``sha256(user id : code)`` is kept, and each works once.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Iterable
from datetime import datetime

import pyotp
import segno
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from app.accounts.identity import Post
from app.accounts.models import RecoveryCode, User

ISSUER = "民盼通办"
STEP_SECONDS = 30
RECOVERY_CODES = 10
_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I

# Posts whose holders must sign in with a second factor.
REQUIRED_KINDS = frozenset({"centre", "supervisor"})
REQUIRED_ROLES = frozenset({"principal", "deputy", "unit_admin", "centre_admin", "system_admin"})


def required_for(posts: Iterable[Post]) -> bool:
    return any(p.kind in REQUIRED_KINDS or REQUIRED_ROLES.intersection(p.roles) for p in posts)


def enrolled(user: User) -> bool:
    return bool(user.totp_secret) and user.totp_confirmed_at is not None


def new_secret() -> str:
    return pyotp.random_base32()  # 160 bits


def provisioning_uri(user: User) -> str:
    return pyotp.TOTP(user.totp_secret).provisioning_uri(name=user.username, issuer_name=ISSUER)


def qr_svg(uri: str) -> str:
    """The QR code of ``uri`` as an inline ``<svg>`` element (no XML declaration, no script)."""
    svg: str = segno.make(uri, error="m").svg_inline(
        scale=5, dark="#000", light="#fff", border=2, omitsize=True
    )
    return svg


def grouped(secret: str) -> str:
    """The secret in groups of four, for typing it into an app by hand."""
    return " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))


def _current_step(now: float | None = None) -> int:
    return int((time.time() if now is None else now) // STEP_SECONDS)


def _normalise(code: str) -> str:
    return "".join(ch for ch in code if not ch.isspace() and ch != "-").upper()


def matching_step(secret: str, code: str, *, last_step: int, now: float | None = None) -> int | None:
    """The step of ``code`` if it is valid now (±1 step) and later than ``last_step``, else None."""
    code = _normalise(code)
    if not secret or len(code) != 6 or not code.isdigit():
        return None
    totp = pyotp.TOTP(secret)
    step = _current_step(now)
    for candidate in (step - 1, step, step + 1):
        if candidate > last_step and secrets.compare_digest(totp.at(candidate * STEP_SECONDS), code):
            return candidate
    return None


def verify_totp(user: User, code: str, *, now: float | None = None) -> bool:
    """Check a code and, if it passes, remember its step so it is never accepted again."""
    step = matching_step(user.totp_secret, code, last_step=user.totp_last_step or 0, now=now)
    if step is None:
        return False
    user.totp_last_step = step
    return True


def looks_like_recovery_code(code: str) -> bool:
    return len(_normalise(code)) == 12


def _code_hash(user_id: int, code: str) -> str:
    return hashlib.sha256(f"{user_id}:{_normalise(code)}".encode()).hexdigest()


def new_recovery_codes(db: Session, user_id: int) -> list[str]:
    """Replace the person's recovery codes with ten new ones; the plain codes are returned once."""
    db.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user_id))
    codes = []
    for _ in range(RECOVERY_CODES):
        raw = "".join(secrets.choice(_ALPHABET) for _ in range(12))
        codes.append(f"{raw[:4]}-{raw[4:8]}-{raw[8:]}")
    db.add_all(RecoveryCode(user_id=user_id, code_hash=_code_hash(user_id, c)) for c in codes)
    return codes


def use_recovery_code(db: Session, user_id: int, code: str, now: datetime) -> bool:
    """Spend a recovery code: True once per code. The UPDATE settles two uses at once."""
    from sqlalchemy import update

    result = db.execute(
        update(RecoveryCode)
        .where(
            RecoveryCode.user_id == user_id,
            RecoveryCode.code_hash == _code_hash(user_id, code),
            RecoveryCode.used_at.is_(None),
        )
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def recovery_codes_left(db: Session, user_id: int) -> int:
    from sqlalchemy import func

    return int(
        db.scalar(
            select(func.count())
            .select_from(RecoveryCode)
            .where(RecoveryCode.user_id == user_id, RecoveryCode.used_at.is_(None))
        )
        or 0
    )


def reset(db: Session, user: User) -> None:
    """Forget the second factor: the person enrols again at the next sign-in (if required)."""
    user.totp_secret = ""
    user.totp_confirmed_at = None
    user.totp_last_step = 0
    db.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
