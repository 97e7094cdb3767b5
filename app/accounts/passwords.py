"""Password hashing (argon2id) and the strong-password rule for new passwords."""

from __future__ import annotations

from functools import lru_cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from app.errors import InvalidInput
from app.settings import get_settings

# Passwords seen in every leaked list; refused whatever their length.
_COMMON = {
    "password123",
    "passw0rd123",
    "1234567890",
    "12345678910",
    "qwertyuiop",
    "abc123456789",
    "admin123456",
    "administrator",
    "iloveyou123",
    "woaini1314",
    "zxcvbnm123",
    "minpan123456",
}


@lru_cache(maxsize=1)
def hasher() -> PasswordHasher:
    s = get_settings()
    return PasswordHasher(time_cost=s.argon2_time_cost, memory_cost=s.argon2_memory_cost)


def hash_password(password: str) -> str:
    return hasher().hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return hasher().verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


# Burnt on unknown usernames so a failed sign-in takes as long whether or not the account exists.
@lru_cache(maxsize=1)
def dummy_hash() -> str:
    return hash_password("minpan-no-such-user")


def check_password_strength(password: str, username: str = "") -> None:
    """Raise InvalidInput with a Chinese message unless ``password`` is strong enough."""
    min_len = get_settings().password_min_length
    if len(password) < min_len:
        raise InvalidInput(f"密码长度至少为 {min_len} 位。", field="password")
    if len(password) > 128:
        raise InvalidInput("密码长度不能超过 128 位。", field="password")
    classes = sum(
        (
            any(c.islower() for c in password),
            any(c.isupper() for c in password),
            any(c.isdigit() for c in password),
            any(not c.isalnum() for c in password),
        )
    )
    if classes < 3:
        raise InvalidInput("密码须包含大写字母、小写字母、数字、符号中的至少三类。", field="password")
    lowered = password.lower()
    if username and len(username) >= 3 and username.lower() in lowered:
        raise InvalidInput("密码不能包含用户名。", field="password")
    if lowered in _COMMON or len(set(password)) < 5:
        raise InvalidInput("密码过于简单，请换一个不易被猜到的密码。", field="password")
