"""Process set-up that must happen before prometheus_client is imported: request-id context, log
format, the multiprocess metrics folder. See app/observability.py for the whole picture."""

from __future__ import annotations

import json
import logging
import os
import re
import uuid
from contextvars import ContextVar
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from app.settings import Settings, get_settings

REQUEST_ID: ContextVar[str] = ContextVar("minpan_request_id", default="")
_ID_RE = re.compile(r"^[A-Za-z0-9._-]{1,128}$")
REQUEST_ID_HEADER = "X-Request-ID"

# --- request ids and logs ---------------------------------------------------------------------------


def request_id_from(incoming: str | None) -> str:
    """The caller's id if it is a sane token, otherwise a fresh one."""
    if incoming and _ID_RE.match(incoming):
        return incoming
    return uuid.uuid4().hex


class RequestIdFilter(logging.Filter):
    """Puts the current request id (or "") on every record as ``request_id``."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "request_id", ""):
            record.request_id = REQUEST_ID.get()
        return True


EXTRA_FIELDS = ("method", "path", "route", "status", "duration_ms", "client", "actor", "message_id")


class JsonFormatter(logging.Formatter):
    """One JSON object per line."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
            "request_id": getattr(record, "request_id", "") or REQUEST_ID.get(),
            "pid": record.process,
        }
        for name in EXTRA_FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                entry[name] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


QUIET = ("weasyprint", "fontTools", "pyhanko", "httpx")  # chatty at INFO: every render step, every request
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"


def log_format(settings: Settings) -> str:
    if settings.log_format in ("json", "text"):
        return settings.log_format
    return "json" if settings.environment == "production" else "text"


def make_formatter(settings: Settings) -> logging.Formatter:
    return JsonFormatter() if log_format(settings) == "json" else logging.Formatter(TEXT_FORMAT)


def logging_config(settings: Settings | None = None) -> dict[str, Any]:
    """A ``logging.config.dictConfig`` for uvicorn (``minpan serve``): everything to stderr through
    one handler with the request-id filter, uvicorn's loggers included."""
    settings = settings or get_settings()
    formatter: dict[str, Any] = (
        {"()": "app.ops.setup.JsonFormatter"} if log_format(settings) == "json" else {"format": TEXT_FORMAT}
    )
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request_id": {"()": "app.ops.setup.RequestIdFilter"}},
        "formatters": {"default": formatter},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "default",
                "filters": ["request_id"],
                "stream": "ext://sys.stderr",
            }
        },
        "root": {"handlers": ["stderr"], "level": "INFO"},
        "loggers": {
            "uvicorn": {"handlers": [], "level": "INFO", "propagate": True},
            "uvicorn.error": {"handlers": [], "level": "INFO", "propagate": True},
            "uvicorn.access": {"handlers": [], "level": "WARNING", "propagate": True},
            **{name: {"level": "WARNING"} for name in QUIET},
        },
    }


def configure_logging(settings: Settings | None = None) -> None:
    """Give the root logger's handlers our formatter and the request-id filter (a worker process,
    whose logging Dramatiq set up; or the scheduler). Adds a stderr handler if there is none."""
    settings = settings or get_settings()
    root = logging.getLogger()
    if not root.handlers:
        root.addHandler(logging.StreamHandler())
    if root.level == logging.NOTSET or root.level > logging.INFO:
        root.setLevel(logging.INFO)
    for name in QUIET:
        logging.getLogger(name).setLevel(logging.WARNING)
    formatter = make_formatter(settings)
    for handler in root.handlers:
        handler.setFormatter(formatter)
        if not any(isinstance(f, RequestIdFilter) for f in handler.filters):
            handler.addFilter(RequestIdFilter())


# --- metrics ------------------------------------------------------------------------------------------


def prepare_metrics_dir(settings: Settings | None = None) -> Path:
    """Called by ``minpan serve`` / ``worker`` before anything imports prometheus_client: point
    ``PROMETHEUS_MULTIPROC_DIR`` at ``MINPAN_METRICS_DIR`` (default ``var/metrics``), create it, and
    remove the files of processes that no longer run (their counts would otherwise linger)."""
    settings = settings or get_settings()
    path = Path(settings.metrics_dir) if settings.metrics_dir else settings.var_dir / "metrics"
    path.mkdir(parents=True, exist_ok=True)
    for file in path.glob("*.db"):
        pid = file.stem.rsplit("_", 1)[-1]
        if pid.isdigit() and not _alive(int(pid)):
            file.unlink(missing_ok=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(path)
    return path


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def multiprocess_dir() -> str | None:
    # prometheus_client itself reads this variable; we only ask whether it is set.
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


_revisions: list[tuple[str | None, frozenset[str]]] = []


def schema_check(current: str | None) -> str:
    """ "ok" when the schema is at this release's head, or *ahead* of it (a revision this release
    does not know: a newer release has migrated, and by the expand/contract rule this code still
    works — docs/operations.md). Behind, or no schema: the problem."""
    if not _revisions:
        from alembic.script import ScriptDirectory

        from app import migrate

        script = ScriptDirectory.from_config(migrate.alembic_config())
        _revisions.append((script.get_current_head(), frozenset(r.revision for r in script.walk_revisions())))
    head, known = _revisions[0]
    if current == head or (current is not None and current not in known):
        return "ok"
    return f"at {current}, code expects {head}"
