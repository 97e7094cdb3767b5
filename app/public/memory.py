"""页面静态化 in memory: stored reply pages kept by each web process, answered before the stack.

A stored reply page (app.public.pages) costs what any request through the application costs:
the middleware, the guards, a thread hop and a primary-key read. The pages a process has served
are therefore also kept in its memory (``MINPAN_PUBLIC_PAGE_MEMORY_MB``, least recently used
first out) and :meth:`PageMemory.respond` answers them before the application: the same bytes
and headers, with the request id, the access log line and the metrics of the ordinary route.

Keeping them right (PostgreSQL only; SQLite, the one-process embedded default, keeps nothing):

* **invalidation** — every change that clears a stored page clears its ``public_pages`` row or
  bumps its generation (the database's triggers, migration 0020); migration 0028's triggers on
  that table send ``NOTIFY minpan_public_pages`` with the case id (``*`` for a TRUNCATE) at
  commit. One thread per process LISTENs and drops the page. Until it is listening — at start,
  and after its connection broke, when everything kept is dropped — nothing is answered from
  memory;
* **no stale page kept** — a page is kept only with the :meth:`epoch` read before the stored row
  was read: any notification handled in between bumps the epoch and the page is not kept
  (a change committed after the read notifies after it);
* **read your own writes** — a transaction of this process that wrote anything sends a fence
  (``f<process>:<n>``) on the same channel before its COMMIT; while one of this process's fences
  has not come back through the listener, pages are read from the database, not memory. So a
  clerk who changes a unit's phone number and opens the public page sees the new number, and
  so does a test. Another process's change reaches memory as fast as PostgreSQL delivers the
  notification (milliseconds); a fence lost with a failed COMMIT expires after
  ``FENCE_SECONDS``.

Public API: :data:`PAGE_MEMORY`, :class:`PageMemory`.
"""

from __future__ import annotations

import itertools
import logging
import os
import threading
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final

from app.ops.setup import REQUEST_ID, request_id_from
from app.public.pages import Stored, not_modified, stored_headers
from app.security.headers import HEADERS

if TYPE_CHECKING:
    from litestar.types import HTTPScope, Send
    from sqlalchemy.engine import Engine

    from app.settings import Settings

log = logging.getLogger("minpan.public.memory")

CHANNEL: Final = "minpan_public_pages"
ROUTE: Final = "/replies/{case_id}"  # the route's template, as the metrics label it
PREFIX: Final = "/replies/"
FENCE_SECONDS: Final = 2.0
APPLICATION: Final = "minpan-page-memory"  # the listener's application_name in pg_stat_activity
_WROTE: Final = "minpan_public_memory_wrote"
_A11Y: Final = b"minpan_a11y"  # app.public.render.A11Y_COOKIE: another display, never kept


@dataclass(frozen=True, slots=True)
class Entry:
    etag: str
    modified: datetime
    ok: list[tuple[bytes, bytes]]  # the 200's headers; the 304 sends the same without the body's
    not_modified: list[tuple[bytes, bytes]]
    body: bytes


def _entry(stored: Stored) -> Entry:
    assert stored.body is not None and stored.modified is not None
    common = [(k.lower().encode(), v.encode("latin-1")) for k, v in stored_headers(stored).items()]
    common += [(k.lower().encode(), v.encode("latin-1")) for k, v in HEADERS.items()]
    ok = [
        (b"content-type", b"text/html; charset=utf-8"),
        (b"content-length", str(len(stored.body)).encode()),
        *common,
    ]
    return Entry(stored.etag, stored.modified, ok, common, stored.body)


class PageMemory:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: OrderedDict[int, Entry] = OrderedDict()
        self._bytes = 0
        self._limit = 0
        self._epoch = 0
        self._listening = False
        self._pending: dict[str, float] = {}
        self._process = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self._fences = itertools.count(1)
        self._url = ""
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._hooked: set[int] = set()

    # --- life cycle (the application's lifespan) ---------------------------------------------------

    def start(self, settings: Settings) -> None:
        """Listen (a thread) if this process serves PostgreSQL with memory for pages; forget
        whatever was kept before (a new application: its database may have been reset).

        The listener lives as long as the process (a daemon thread, its connection closed with
        it): a later application in the same process reuses it, one for another database
        replaces it."""
        if not settings.is_postgres or settings.public_page_memory_mb <= 0:
            return
        from app.db import engine_for

        with self._lock:
            self._limit = settings.public_page_memory_mb * 1024 * 1024
            self._forget()
            running = self._thread is not None and self._thread.is_alive()
            if running and self._url == settings.database_url:
                return
        if running:
            self._halt()
        self._hook(engine_for(settings.database_url))
        self._url = settings.database_url
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._listen,
            args=(settings.database_url, self._stop),
            name="public-page-memory",
            daemon=True,
        )
        self._thread.start()

    def wait_listening(self, timeout: float = 5.0) -> bool:
        deadline = time.monotonic() + timeout
        while not self._listening and time.monotonic() < deadline:
            time.sleep(0.01)
        return self._listening

    @property
    def active(self) -> bool:
        return self._listening

    def _halt(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._thread = None
        with self._lock:
            self._listening = False
            self._forget()

    def _forget(self) -> None:  # under the lock
        self._entries.clear()
        self._bytes = 0
        self._epoch += 1

    # --- the listener ----------------------------------------------------------------------------

    def _listen(self, url: str, stop: threading.Event) -> None:
        import psycopg
        from sqlalchemy.engine import make_url

        conninfo = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
        while not stop.is_set():
            try:
                with psycopg.connect(
                    conninfo, autocommit=True, application_name="minpan-page-memory"
                ) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    with self._lock:
                        self._forget()  # notifications may have been missed while not listening
                        self._listening = True
                    log.info("listening for changed public pages")
                    while not stop.is_set():
                        for note in conn.notifies(timeout=0.5):
                            self.handle(note.payload)
            except Exception:
                if not stop.is_set():
                    log.warning(
                        "public page memory: listener lost, pages are read from the database", exc_info=True
                    )
            with self._lock:
                self._listening = False
                self._forget()
            stop.wait(1.0)

    def handle(self, payload: str) -> None:
        """One notification: ``c<case id>`` drop that page, ``*`` drop all, ``f<fence>`` a fence."""
        kind, rest = payload[:1], payload[1:]
        if kind == "f":
            self._pending.pop(rest, None)
            return
        with self._lock:
            self._epoch += 1
            if kind == "c" and rest.isdigit():
                entry = self._entries.pop(int(rest), None)
                if entry is not None:
                    self._bytes -= len(entry.body)
            else:
                self._forget()

    # --- fences: this process's own writes -------------------------------------------------------

    def _hook(self, engine: Engine) -> None:
        if id(engine) in self._hooked:
            return
        from sqlalchemy import event

        self._hooked.add(id(engine))
        event.listen(engine, "before_cursor_execute", self._note_write)
        event.listen(engine, "commit", self._fence)
        event.listen(engine, "rollback", self._forget_write)

    @staticmethod
    def _note_write(conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip()[:6].upper() != "SELECT":
            conn.info[_WROTE] = True

    @staticmethod
    def _forget_write(conn: Any) -> None:
        conn.info.pop(_WROTE, None)

    def _fence(self, conn: Any) -> None:
        """Before a COMMIT that wrote: a fence in the same transaction (see the module's text)."""
        if not conn.info.pop(_WROTE, False) or not self._listening:
            return
        fence = f"{self._process}:{next(self._fences)}"
        self._pending[fence] = time.monotonic() + FENCE_SECONDS
        conn.connection.dbapi_connection.execute("SELECT pg_notify(%s, %s)", (CHANNEL, "f" + fence))

    def _fenced(self) -> bool:
        now = time.monotonic()
        for fence, deadline in list(self._pending.items()):
            if deadline < now:
                self._pending.pop(fence, None)
        return bool(self._pending)

    # --- keeping and answering -------------------------------------------------------------------

    def epoch(self) -> int:
        return self._epoch

    def keep(self, case_id: int, stored: Stored, epoch: int) -> None:
        """Keep a stored page read after :meth:`epoch` returned ``epoch`` (else nothing)."""
        if not self._listening or stored.body is None or stored.modified is None:
            return
        entry = _entry(stored)
        with self._lock:
            if epoch != self._epoch or not self._listening or len(entry.body) > self._limit:
                return
            old = self._entries.pop(case_id, None)
            if old is not None:
                self._bytes -= len(old.body)
            self._entries[case_id] = entry
            self._bytes += len(entry.body)
            while self._bytes > self._limit:
                _, dropped = self._entries.popitem(last=False)
                self._bytes -= len(dropped.body)

    def kept(self, case_id: int) -> bool:
        return case_id in self._entries

    def _find(self, case_id: int) -> Entry | None:
        if not self._listening or (self._pending and self._fenced()):
            return None
        with self._lock:
            entry = self._entries.get(case_id)
            if entry is not None:
                self._entries.move_to_end(case_id)
        return entry

    async def respond(self, scope: HTTPScope, send: Send) -> bool:
        """Answer ``GET /replies/<id>`` from memory (True), or leave it to the application."""
        path: str = scope["path"]
        if (
            not self._listening
            or scope["method"] != "GET"
            or scope["query_string"]
            or not path.startswith(PREFIX)
        ):
            return False
        tail = path[len(PREFIX) :]
        if not (tail.isascii() and tail.isdigit()) or tail.startswith("0"):
            return False
        incoming = if_none_match = if_modified_since = None
        for key, value in scope["headers"]:
            if key == b"cookie" and _A11Y in value:
                return False
            if key == b"if-none-match":
                if_none_match = value.decode("latin-1")
            elif key == b"if-modified-since":
                if_modified_since = value.decode("latin-1")
            elif key == b"x-request-id":
                incoming = value.decode("latin-1")
        entry = self._find(int(tail))
        if entry is None:
            return False
        from app.observability import record_request

        started = time.perf_counter()
        rid = request_id_from(incoming)
        token = REQUEST_ID.set(rid)
        try:
            rid_header = (b"x-request-id", rid.encode("latin-1"))
            if not_modified(if_none_match, if_modified_since, entry.etag, entry.modified):
                status, headers, body = 304, [*entry.not_modified, rid_header], b""
            else:
                status, headers, body = 200, [*entry.ok, rid_header], entry.body
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": body, "more_body": False})
            record_request(scope, ROUTE, status, started)
        finally:
            REQUEST_ID.reset(token)
        return True


PAGE_MEMORY: Final = PageMemory()

__all__ = ["CHANNEL", "PAGE_MEMORY", "Entry", "PageMemory"]
