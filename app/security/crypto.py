"""Encryption at rest of citizens' personal data (个人信息保护法 第五十一条; 等保2.0 三级 数据保密性).

Values are sealed with AES-256-GCM under a key from the settings and stored as text::

    enc1:<key id>:<base64url(12-byte nonce ‖ ciphertext ‖ 16-byte tag)>

and files (the PDFs of documents, citizens' attachments: ``ENCRYPTED_BLOBS``) as bytes, the same
header in ASCII followed by the raw sealed bytes (no base64: a PDF is a few hundred kilobytes)::

    b"enc1:<key id>:" ‖ 12-byte nonce ‖ ciphertext ‖ 16-byte tag

The key id in front says which key opens the value, so several keys coexist: new values are sealed
with the *active* key (the first of ``MINPAN_DATA_KEYS``), older values stay readable with any key
still listed, and ``minpan keys rotate`` (``app.security.rotation``) re-seals them with the active
key in batches; once ``minpan keys status`` shows no value under an old key, that key can be
removed from the settings.

The associated data binds each value to its purpose (``citizen_phone`` …) and key id, so a
ciphertext moved to another column, or relabelled with another key id, does not open. A tampered
value, an unknown key id or a plaintext where a sealed value belongs raises ``DecryptionError``:
never silently shown. The empty string (and empty bytes) is stored as is (nothing to protect, and
the columns default to it).

Keys: ``MINPAN_DATA_KEYS="k2:<base64 of 32 bytes>,k1:<…>"``; ``minpan keys generate`` prints a
new one. The embedded default generates ``var/data_keys`` once (like the secret key); production
refuses to start without the variable (``Settings.check_production``).
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import secrets
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Final, TypeVar

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import LargeBinary, Text
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

from app.settings import Settings, get_settings

PREFIX: Final = "enc1:"
_KEY_ID = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
_NONCE_BYTES: Final = 12


class KeyConfigError(RuntimeError):
    """MINPAN_DATA_KEYS is missing or malformed."""


class DecryptionError(RuntimeError):
    """A stored value that does not open: tampered, unknown key id, or not sealed at all."""


def _b64decode(text: str) -> bytes:
    padded = text + "=" * (-len(text) % 4)
    return base64.urlsafe_b64decode(padded.encode("ascii"))


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def generate_key_line(key_id: str | None = None) -> str:
    """A new ``id:base64`` entry for MINPAN_DATA_KEYS (256 random bits)."""
    key_id = key_id or "k" + secrets.token_hex(3)
    if not _KEY_ID.match(key_id):
        raise KeyConfigError(f"key id {key_id!r}: letters, digits, '-' or '_', at most 32")
    return f"{key_id}:{base64.b64encode(secrets.token_bytes(32)).decode('ascii')}"


def parse_keys(spec: str) -> tuple[str, dict[str, bytes]]:
    """``"k2:…,k1:…"`` → (active key id, {id: 32-byte key}). The first entry is the active one."""
    keys: dict[str, bytes] = {}
    active = ""
    for raw in spec.replace("\n", ",").split(","):
        entry = raw.strip()
        if not entry:
            continue
        key_id, sep, material = entry.partition(":")
        key_id = key_id.strip()
        if not sep or not _KEY_ID.match(key_id):
            raise KeyConfigError("MINPAN_DATA_KEYS: each entry is <key id>:<base64 of 32 bytes>")
        try:
            key = base64.b64decode(material.strip(), validate=True)
        except (binascii.Error, ValueError) as exc:
            raise KeyConfigError(f"MINPAN_DATA_KEYS: key {key_id} is not valid base64") from exc
        if len(key) != 32:
            raise KeyConfigError(f"MINPAN_DATA_KEYS: key {key_id} must be 32 bytes (AES-256)")
        if key_id in keys:
            raise KeyConfigError(f"MINPAN_DATA_KEYS: key id {key_id} appears twice")
        keys[key_id] = key
        active = active or key_id
    if not keys:
        raise KeyConfigError("MINPAN_DATA_KEYS is empty")
    return active, keys


@dataclass(frozen=True)
class Keyring:
    active: str
    keys: dict[str, bytes]

    @classmethod
    def from_spec(cls, spec: str) -> Keyring:
        active, keys = parse_keys(spec)
        return cls(active, keys)

    @staticmethod
    def _aad(purpose: str, key_id: str) -> bytes:
        return f"minpan:{purpose}:{key_id}".encode()

    def _seal(self, plain: bytes, purpose: str) -> bytes:
        """Nonce ‖ ciphertext ‖ tag of ``plain`` under the active key."""
        nonce = os.urandom(_NONCE_BYTES)
        return nonce + AESGCM(self.keys[self.active]).encrypt(nonce, plain, self._aad(purpose, self.active))

    def _open(self, stored: str | bytes, purpose: str) -> bytes:
        """The plaintext of a sealed value, text (base64 body) or bytes (raw body)."""
        key_id = key_id_of(stored)
        if key_id is None:
            raise DecryptionError(f"{purpose}: stored value is not sealed")
        key = self.keys.get(key_id)
        if key is None:
            raise DecryptionError(f"{purpose}: sealed with key {key_id!r}, which is not in MINPAN_DATA_KEYS")
        body = stored[len(PREFIX) + len(key_id) + 1 :]
        try:
            blob = _b64decode(body) if isinstance(body, str) else body
            if len(blob) < _NONCE_BYTES + 16:
                raise ValueError("too short")
            return AESGCM(key).decrypt(blob[:_NONCE_BYTES], blob[_NONCE_BYTES:], self._aad(purpose, key_id))
        except (InvalidTag, ValueError, binascii.Error) as exc:
            raise DecryptionError(f"{purpose}: sealed value does not open (tampered or wrong key)") from exc

    def encrypt(self, plaintext: str, purpose: str) -> str:
        if plaintext == "":
            return ""
        return f"{PREFIX}{self.active}:{_b64encode(self._seal(plaintext.encode('utf-8'), purpose))}"

    def decrypt(self, stored: str, purpose: str) -> str:
        if stored == "":
            return ""
        try:
            return self._open(stored, purpose).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise DecryptionError(f"{purpose}: sealed value does not open (tampered or wrong key)") from exc

    def encrypt_bytes(self, plain: bytes, purpose: str) -> bytes:
        if plain == b"":
            return b""
        return f"{PREFIX}{self.active}:".encode("ascii") + self._seal(plain, purpose)

    def decrypt_bytes(self, stored: bytes, purpose: str) -> bytes:
        if stored == b"":
            return b""
        return self._open(stored, purpose)

    def needs_rotation(self, stored: str | bytes | None) -> bool:
        """True for a sealed value under another key than the active one, or a plaintext left over."""
        if not stored:
            return False
        return key_id_of(stored) != self.active


def key_id_of(stored: str | bytes) -> str | None:
    """The key id a sealed value (text, or bytes: a sealed file) names; None if it is not sealed.
    Only the header is looked at, so a prefix of a file (``rotation.status``) is enough."""
    head = stored[: len(PREFIX) + 33]  # "enc1:" + at most 32 characters of key id + ":"
    if isinstance(head, bytes):
        head = head.decode("latin-1")  # any byte decodes; a key id is ASCII
    if not head.startswith(PREFIX):
        return None
    key_id, sep, _ = head[len(PREFIX) :].partition(":")
    return key_id if sep and _KEY_ID.match(key_id) else None


def _default_keys(settings: Settings) -> str:
    """The embedded default's key, generated once in MINPAN_VAR_DIR (production sets
    MINPAN_DATA_KEYS)."""
    path = Path(settings.var_dir) / "data_keys"
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    line = generate_key_line("k1")
    path.write_text(line + "\n")
    path.chmod(0o600)
    return line


def keyring_from(settings: Settings) -> Keyring:
    return Keyring.from_spec(settings.data_keys or _default_keys(settings))


_override: list[Keyring] = []


@lru_cache(maxsize=1)
def _settings_keyring() -> Keyring:
    return keyring_from(get_settings())


def keyring() -> Keyring:
    """The process's keyring (settings), unless a test or the CLI installed another one."""
    return _override[-1] if _override else _settings_keyring()


class use_keyring:
    """Seal and open with ``ring`` inside the block (tests; ``minpan keys`` commands)."""

    def __init__(self, ring: Keyring) -> None:
        self.ring = ring

    def __enter__(self) -> Keyring:
        _override.append(self.ring)
        return self.ring

    def __exit__(self, *exc: object) -> None:
        _override.remove(self.ring)


_V = TypeVar("_V", str, bytes)


class _Sealed(TypeDecorator[_V]):
    """A column whose values are sealed in the database and plain in Python (``EncryptedText``,
    ``EncryptedBytes``).

    Equality in SQL on such a column cannot work (every seal has a fresh nonce): nothing queries
    these columns; a lookup that needs equality would use a keyed HMAC blind index column.
    """

    cache_ok = True

    def __init__(self, purpose: str, **kw: Any) -> None:
        super().__init__(**kw)
        self.purpose = purpose

    def _seal(self, ring: Keyring, value: _V) -> _V:
        raise NotImplementedError

    def _unseal(self, ring: Keyring, stored: _V) -> _V:
        raise NotImplementedError

    def process_bind_param(self, value: _V | None, dialect: Dialect) -> _V | None:
        if value is None:
            return None
        return self._seal(keyring(), value)

    def process_result_value(self, value: _V | None, dialect: Dialect) -> _V | None:
        if value is None:
            return None
        return self._unseal(keyring(), value)

    def copy(self, **kw: Any) -> _Sealed[_V]:
        return type(self)(self.purpose)


class EncryptedText(_Sealed[str]):
    """Text sealed as ``enc1:<key id>:<base64>``; the purpose is the column's name."""

    impl = Text
    cache_ok = True  # SQLAlchemy reads it from each class's own namespace, not the base's

    def _seal(self, ring: Keyring, value: str) -> str:
        return ring.encrypt(value, self.purpose)

    def _unseal(self, ring: Keyring, stored: str) -> str:
        return ring.decrypt(stored, self.purpose)


class EncryptedBytes(_Sealed[bytes]):
    """A file sealed as ``b"enc1:<key id>:" + sealed bytes``; the purpose is ``table.column``, so
    one table's file copied into another's column does not open."""

    impl = LargeBinary
    cache_ok = True

    def _seal(self, ring: Keyring, value: bytes) -> bytes:
        return ring.encrypt_bytes(bytes(value), self.purpose)

    def _unseal(self, ring: Keyring, stored: bytes) -> bytes:
        return ring.decrypt_bytes(bytes(stored), self.purpose)


# Which columns are sealed: table → columns (the purpose is the column name, the same for the
# case and the unit's copy of it, so the 承办单's copy of a value opens alike).
ENCRYPTED_COLUMNS: Final[dict[str, tuple[str, ...]]] = {
    "cases": ("citizen_name", "citizen_phone", "citizen_email"),
    "assignments": ("citizen_name", "citizen_phone", "citizen_email"),
    "users": ("totp_secret",),  # the second factor's secret (staff sign-in)
}

# Which files are sealed: table → columns (the purpose is ``table.column``, see EncryptedBytes).
ENCRYPTED_BLOBS: Final[dict[str, tuple[str, ...]]] = {
    "documents": ("pdf",),  # the 承办单 and 归档材料 print the citizen's name and phone in full
    "attachments": ("data",),  # citizens' uploaded files: photos, scans, often of an ID card
}


def blob_purpose(table: str, column: str) -> str:
    return f"{table}.{column}"
