"""页面静态化 in memory (app/public/memory.py): stored reply pages answered before the stack.

On PostgreSQL each web process keeps the pages it served and drops one when the database says
(LISTEN/NOTIFY from migration 0028's triggers). These tests hold the promises: the same bytes and
headers as the application, no database read for a kept page, a change by this process seen at
once (the fence), a change by another process seen as soon as it is notified, nothing answered
while the listener is down, and nothing kept on SQLite.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest
from sqlalchemy import event, select
from sqlalchemy.engine import make_url

from app.cases.models import Case
from app.db import get_engine, system_session
from app.ops.setup import REQUEST_ID
from app.public.memory import APPLICATION, PAGE_MEMORY, PageMemory
from app.public.pages import Stored
from app.settings import get_settings
from app.tenants.models import Workspace
from tests.conftest import IS_POSTGRES
from tests.test_public import portal as portal  # the fixture
from tests.test_public import publish_directly

postgres_only = pytest.mark.skipif(not IS_POSTGRES, reason="pages are kept in memory on PostgreSQL only")
UNSTABLE = {"x-request-id", "date", "server"}


def _statements() -> tuple[list[str], Any]:
    seen: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement)

    event.listen(get_engine(), "before_cursor_execute", count)
    return seen, count


def _quiet(count: Any) -> None:
    event.remove(get_engine(), "before_cursor_execute", count)


def _headers(response: Any) -> dict[str, str]:
    return {k: v for k, v in response.headers.items() if k.lower() not in UNSTABLE}


def _raw_connection() -> psycopg.Connection[Any]:
    """Another process's connection: not the engine, so no fence of this process."""
    url = make_url(get_settings().database_url).set(drivername="postgresql")
    conn = psycopg.connect(url.render_as_string(hide_password=False), autocommit=True)
    conn.execute("SELECT set_config('minpan.system', 'on', false)")  # trusted code (row-level security)
    return conn


def _wait(condition: Any, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return False


def _kept(client: Any, title: str) -> int:
    """A published reply, visited once (through the application, which keeps it)."""
    assert PAGE_MEMORY.wait_listening()
    case_id = publish_directly(title=title, unit="education")
    assert not PAGE_MEMORY.kept(case_id)
    assert client.get(f"/replies/{case_id}").status_code == 200
    assert PAGE_MEMORY.kept(case_id)
    return case_id


@postgres_only
def test_a_kept_page_is_answered_without_the_database_with_the_same_bytes_and_headers(portal) -> None:  # type: ignore[no-untyped-def]
    case_id = publish_directly(title="内存中的答复页面")
    assert PAGE_MEMORY.wait_listening()
    lines: list[tuple[str, str, int, str]] = []

    class Access(logging.Handler):
        def emit(self, record: Any) -> None:
            lines.append((record.path, record.route, record.status, REQUEST_ID.get()))

    access = logging.getLogger("minpan.access")
    handler, level = Access(), access.level
    access.addHandler(handler)
    access.setLevel(logging.INFO)
    first = portal.get(f"/replies/{case_id}", headers={"X-Request-ID": "from-the-stack"})
    seen, count = _statements()
    try:
        again = portal.get(f"/replies/{case_id}", headers={"X-Request-ID": "from-memory"})
        etag, modified = again.headers["etag"], again.headers["last-modified"]
        by_tag = portal.get(f"/replies/{case_id}", headers={"If-None-Match": etag})
        by_date = portal.get(f"/replies/{case_id}", headers={"If-Modified-Since": modified})
    finally:
        _quiet(count)
    assert seen == []  # nothing read: answered from memory
    assert again.status_code == 200 and again.content == first.content
    assert _headers(again) == _headers(first)
    assert again.headers["x-request-id"] == "from-memory" and "set-cookie" not in again.headers
    assert again.headers["content-security-policy"] and again.headers["cache-control"] == "public, no-cache"
    assert by_tag.status_code == 304 and by_tag.content == b"" and by_date.status_code == 304
    from_db = portal.get(f"/replies/{case_id}", headers={"If-None-Match": etag, "Cookie": "minpan_a11y=none"})
    assert from_db.status_code == 304 and _headers(from_db) == _headers(by_tag)
    access.removeHandler(handler)
    access.setLevel(level)
    # The access log (and the metrics, by the same call) see both answers under the same route.
    path, route = f"/replies/{case_id}", "/replies/{case_id}"
    assert lines[:2] == [(path, route, 200, "from-the-stack"), (path, route, 200, "from-memory")]


@postgres_only
def test_a_change_by_this_process_is_seen_at_once_even_before_it_is_notified(portal, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    case_id = _kept(portal, "本进程改动后的答复")
    held = threading.Event()
    handle = PAGE_MEMORY.handle

    def late(payload: str) -> None:  # the listener is slow: notifications wait
        held.wait(10)
        handle(payload)

    monkeypatch.setattr(PAGE_MEMORY, "handle", late)
    try:
        with system_session() as db:
            unit = db.get(Workspace, db.scalar(select(Workspace.id).where(Workspace.slug == "education")))
            assert unit is not None
            unit.contact_phone = "0475-6543210"
        assert PAGE_MEMORY.kept(case_id)  # not dropped yet: the notification waits ...
        page = portal.get(f"/replies/{case_id}")
        assert "0475-6543210" in page.text  # ... but this process's fence sends readers to the database
    finally:
        held.set()
    assert _wait(lambda: not PAGE_MEMORY.kept(case_id))
    assert _wait(lambda: not PAGE_MEMORY._pending)
    assert "0475-6543210" in portal.get(f"/replies/{case_id}").text


@postgres_only
def test_a_change_by_another_process_drops_the_page_when_notified(portal) -> None:  # type: ignore[no-untyped-def]
    case_id = _kept(portal, "他进程改动后的答复")
    other_id = _kept(portal, "不受影响的答复")
    with _raw_connection() as conn:
        conn.execute("UPDATE cases SET reply_text = %s WHERE id = %s", ("另一个进程更正的答复。", case_id))
    assert _wait(lambda: not PAGE_MEMORY.kept(case_id))
    assert PAGE_MEMORY.kept(other_id)  # only the changed page is dropped
    assert "另一个进程更正的答复" in portal.get(f"/replies/{case_id}").text
    with _raw_connection() as conn:  # withdrawn by another process: gone from the portal
        conn.execute("UPDATE cases SET state = 'under_review' WHERE id = %s", (other_id,))
    assert _wait(lambda: not PAGE_MEMORY.kept(other_id))
    assert portal.get(f"/replies/{other_id}").status_code == 404


@postgres_only
def test_a_unit_renamed_or_the_pages_truncated_by_another_process_drop_every_page_concerned(portal) -> None:  # type: ignore[no-untyped-def]
    ours = _kept(portal, "教育局答复一")
    theirs = publish_directly(title="卫健委答复", unit="health")
    portal.get(f"/replies/{theirs}")
    assert PAGE_MEMORY.kept(theirs)
    with _raw_connection() as conn:
        conn.execute("UPDATE workspaces SET short_name = '教育' WHERE slug = 'education'")
    assert _wait(lambda: not PAGE_MEMORY.kept(ours))
    assert PAGE_MEMORY.kept(theirs)
    with _raw_connection() as conn:  # a restore, say
        conn.execute("TRUNCATE public_pages")
    assert _wait(lambda: not PAGE_MEMORY.kept(theirs))


@postgres_only
def test_nothing_is_answered_from_memory_while_the_listener_is_down(portal) -> None:  # type: ignore[no-untyped-def]
    case_id = _kept(portal, "监听中断时的答复")
    with _raw_connection() as conn:
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s",
            (APPLICATION,),
        )
    assert _wait(lambda: not PAGE_MEMORY.active)
    assert not PAGE_MEMORY.kept(case_id)  # what was kept may have missed a notification: dropped
    with _raw_connection() as conn:
        conn.execute("UPDATE cases SET reply_text = %s WHERE id = %s", ("中断期间更正的答复。", case_id))
    assert "中断期间更正的答复" in portal.get(f"/replies/{case_id}").text  # from the database
    assert PAGE_MEMORY.wait_listening()  # it listens again by itself
    portal.get(f"/replies/{case_id}")
    assert PAGE_MEMORY.kept(case_id)


@postgres_only
def test_other_displays_and_addresses_are_never_answered_from_memory(portal) -> None:  # type: ignore[no-untyped-def]
    case_id = _kept(portal, "其他显示方式的答复")
    kept = portal.get(f"/replies/{case_id}").content
    portal.cookies.set("minpan_a11y", "large")
    assert 'class="a11y-large"' in portal.get(f"/replies/{case_id}").text
    portal.cookies.delete("minpan_a11y")
    assert portal.get(f"/replies/{case_id}?from=weibo").content != kept
    assert portal.post(f"/replies/{case_id}").status_code == 405
    assert portal.get(f"/replies/{case_id}").content == kept


@postgres_only
def test_a_page_read_before_a_notified_change_is_not_kept(portal) -> None:  # type: ignore[no-untyped-def]
    case_id = publish_directly(title="读后改动的答复")
    assert PAGE_MEMORY.wait_listening()
    from app.public import pages

    epoch = PAGE_MEMORY.epoch()
    stored = pages.lookup(case_id)
    assert stored is not None and stored.body is not None
    PAGE_MEMORY.handle(f"c{case_id}")  # a change committed after the read was notified meanwhile
    PAGE_MEMORY.keep(case_id, stored, epoch)
    assert not PAGE_MEMORY.kept(case_id)
    PAGE_MEMORY.keep(case_id, stored, PAGE_MEMORY.epoch())
    assert PAGE_MEMORY.kept(case_id)


def test_memory_is_bounded_and_drops_the_least_recently_used_page() -> None:
    memory = PageMemory()
    memory._listening, memory._limit = True, 250
    now = datetime.now(UTC)

    def page(n: int) -> Stored:
        return Stored(1, f'"e{n}"', now, "Fri, 27 Nov 2026 00:00:00 GMT", bytes([n]) * 100)

    memory.keep(1, page(1), memory.epoch())
    memory.keep(2, page(2), memory.epoch())
    assert memory._find(1) is not None  # 1 is now the most recently used
    memory.keep(3, page(3), memory.epoch())
    assert memory.kept(1) and memory.kept(3) and not memory.kept(2)
    memory.keep(4, Stored(1, '"big"', now, "x", b"x" * 300), memory.epoch())
    assert not memory.kept(4)  # larger than the whole memory: never kept
    memory._pending["someone:1"] = time.monotonic() + 60
    assert memory._find(1) is None  # a fence of this process not back yet: read the database
    memory._pending["someone:1"] = time.monotonic() - 1
    assert memory._find(1) is not None  # a fence lost with a failed COMMIT expires


@pytest.mark.skipif(IS_POSTGRES, reason="the embedded default")
def test_the_embedded_default_keeps_nothing_in_memory(portal) -> None:  # type: ignore[no-untyped-def]
    case_id = publish_directly(title="嵌入式默认的答复")
    assert portal.get(f"/replies/{case_id}").status_code == 200
    assert not PAGE_MEMORY.active and not PAGE_MEMORY.kept(case_id)
    with system_session() as db:
        db.get(Case, case_id).reply_text = "更正。"  # type: ignore[union-attr]
    assert "更正" in portal.get(f"/replies/{case_id}").text
