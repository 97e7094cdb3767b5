"""Every setting Minpan reads, in one place, typed, read once from the environment.

No other module reads ``os.environ``. Each field maps to ``MINPAN_<FIELD>`` (upper case).
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field, fields
from functools import lru_cache
from pathlib import Path
from typing import Any

BASE_DIR = Path(__file__).resolve().parent.parent


def _default_secret() -> str:
    # A stable per-checkout secret for the embedded default, so sessions survive a restart.
    # Production sets MINPAN_SECRET_KEY; ``Settings.check_production`` refuses to run without it.
    path = BASE_DIR / "var" / "secret_key"
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    path.write_text(key)
    path.chmod(0o600)
    return key


@dataclass(frozen=True)
class Settings:
    # Where the data lives. SQLite is the embedded default; PostgreSQL by URL
    # (postgresql+psycopg://user@host/db).
    database_url: str = f"sqlite:///{BASE_DIR / 'var' / 'minpan.sqlite3'}"
    # Dramatiq broker: empty = in-process worker (embedded default); redis://… or amqp://…;
    # "stub" = StubBroker with no worker (tests drive it themselves).
    broker_url: str = ""
    secret_key: str = ""
    environment: str = "development"  # development | test | production
    debug: bool = False
    host: str = "127.0.0.1"
    port: int = 8000
    # Sessions (server-side, in the database so every web process shares them).
    session_idle_minutes: int = 30
    session_absolute_hours: int = 12
    session_cookie_secure: bool = False
    # Sign-in protection.
    lockout_threshold: int = 5
    lockout_minutes: int = 15
    password_min_length: int = 10
    # argon2 cost. Tests use a cheaper set (never production): see tests/conftest.py.
    argon2_time_cost: int = 3
    argon2_memory_cost: int = 65536
    # Outgoing mail.
    smtp_host: str = ""  # empty: e-mails are written to the log (the embedded default has no mail server)
    smtp_port: int = 25
    smtp_user: str = ""
    smtp_password: str = ""
    smtp_starttls: bool = False
    mail_from: str = "minpan@localhost"
    # Notifications beyond the in-app centre (app/notify): each goes through the outbox.
    notify_email: bool = True  # mail people who have an e-mail address
    sms_channel: str = "log"  # log (write to the log only) | webhook (an SMS gateway behind the webhook)
    webhook_url: str = ""  # POST every notification here as signed JSON (empty: no webhook channel)
    webhook_secret: str = ""  # HMAC-SHA256 key for the X-Minpan-Signature header
    outbox_lease_seconds: int = 120  # a handed-out message not sent by then is handed out again
    outbox_relay_seconds: int = 5  # how often the scheduler hands out due outbox messages
    # A message that failed this many times is no longer handed out (about a day of back-off); the
    # system admin sees it at /admin/outbox and may send it again.
    outbox_max_attempts: int = 24
    outbox_keep_days: int = 30  # sent messages are deleted after this many days
    # Public base URL used in mails and documents.
    public_url: str = "http://127.0.0.1:8000"
    timezone: str = "Asia/Shanghai"
    # Where the project's static resources are.
    templates_dir: Path = field(default=BASE_DIR / "templates")
    static_dir: Path = field(default=BASE_DIR / "static")
    policies_dir: Path = field(default=BASE_DIR / "policies")
    data_dir: Path = field(default=BASE_DIR / "data")
    var_dir: Path = field(default=BASE_DIR / "var")
    # The document-signing PKI (root CA + one key per unit). Every web process and worker must see
    # the same folder (shared volume); back it up: without ca.pem no published PDF verifies.
    # Empty: var_dir/pki.
    pki_dir: str = ""
    # Operations (app/observability.py, docs/operations.md). Log format: json | text; empty = json
    # in production, text otherwise. /metrics: with a token, "Authorization: Bearer <token>" only;
    # without, loopback clients that did not come through a proxy. Metrics folder: shared by the
    # processes of one machine (empty: var_dir/metrics).
    log_format: str = ""
    metrics_token: str = ""
    metrics_dir: str = ""
    # Encryption at rest of citizens' contact data (app/security/crypto.py): "id:base64,id:base64",
    # 32-byte AES keys, the first one seals new values; the others stay readable until
    # `minpan keys rotate` has re-sealed everything. Empty: var/data_keys (embedded default only).
    data_keys: str = ""
    # Rate limits on sign-in, /rate/{token} and the intake API (app/web/ratelimit.py):
    # auto (on, except in the test environment) | on | off. Shared through Redis when
    # rate_limit_url or the broker URL is redis://…, otherwise counted in the web process.
    rate_limit: str = "auto"
    rate_limit_url: str = ""
    rate_limit_limits: str = ""  # overrides, e.g. "sign_in=30/300,rating=30/600,intake=120/60"
    # 页面静态化 in memory (app/public/memory.py, PostgreSQL only): the stored reply pages each web
    # process keeps and answers before the application stack, in MB. 0: off.
    public_page_memory_mb: int = 64

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def is_postgres(self) -> bool:
        return self.database_url.startswith("postgresql")

    @property
    def in_process_worker(self) -> bool:
        return self.broker_url == ""

    def check_production(self) -> None:
        if self.environment == "production":
            problems = []
            if not self.secret_key or len(self.secret_key) < 32:
                problems.append("MINPAN_SECRET_KEY must be set (32+ characters)")
            if self.is_sqlite:
                problems.append("MINPAN_DATABASE_URL must point to PostgreSQL")
            if self.in_process_worker:
                problems.append("MINPAN_BROKER_URL must point to Redis or RabbitMQ")
            if not self.data_keys:
                problems.append("MINPAN_DATA_KEYS must be set (minpan keys generate)")
            if problems:
                raise RuntimeError("; ".join(problems))


def _coerce(raw: str, annotation: Any) -> Any:
    kind = str(annotation)
    if kind == "bool":
        return raw.strip().lower() in {"1", "true", "yes", "on"}
    if kind == "int":
        return int(raw)
    if kind == "Path":
        return Path(raw)
    return raw


def load_settings(env: dict[str, str] | None = None) -> Settings:
    env = dict(os.environ) if env is None else env
    values: dict[str, Any] = {}
    for f in fields(Settings):
        key = f"MINPAN_{f.name.upper()}"
        if key in env:
            values[f.name] = _coerce(env[key], f.type)
    settings = Settings(**values)
    if not settings.secret_key:
        settings = Settings(**{**values, "secret_key": _default_secret()})
    settings.check_production()
    return settings


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return load_settings()
