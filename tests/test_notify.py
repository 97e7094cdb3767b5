"""Notifications: the outbox is written with the notice or not at all, the relay hands it to the
workers only after the commit, and each message reaches a real SMTP server / HTTP endpoint exactly
once — through duplicate broker messages, failures, and a worker killed in the middle of a send
(on the real Redis when the suite runs against the real services)."""

from __future__ import annotations

import asyncio
import email
import email.policy
import hashlib
import hmac
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import dramatiq
import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import event, func, select, update
from sqlalchemy.exc import IntegrityError

from app.accounts.models import User
from app.db import get_engine, session_factory, system_session, utcnow
from app.escalation.models import Notification
from app.notify import relay as outbox_relay
from app.notify.channels import message_id
from app.notify.models import OutboxMessage
from app.notify.services import Notice, notify_many
from app.settings import get_settings
from app.tenants.models import Membership
from app.tenants.scope import TenantContext, TenantViolation, bind_tenant

ROOT = Path(__file__).resolve().parent.parent
REDIS_URL = os.environ.get("MINPAN_TEST_REDIS_URL")
SUBJECT = "【催办单】通辽催〔2026〕7号"
TEXT = "承办单 2026-0012《科尔沁区供暖不热》已于 12月4日到期，请主要负责同志督促办理（第十九条）。"


# --- fixtures: settings, a real SMTP server, a real HTTP endpoint, an in-process worker ------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class MailSink:
    """aiosmtpd handler keeping every completed mail. With ``block_first`` the first DATA hangs
    until ``release`` (the sender is mid-send) and is then refused without being kept."""

    block_first: bool = False
    messages: list[EmailMessage] = field(default_factory=list)
    entered: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)
    _blocked_one: bool = False

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.block_first and not self._blocked_one:
            self._blocked_one = True
            self.entered.set()
            while not self.release.is_set():
                await asyncio.sleep(0.05)
            return "451 4.3.0 the transaction did not complete"
        parsed = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        self.messages.append(parsed)
        return "250 OK"

    def with_id(self, key: str) -> list[EmailMessage]:
        return [m for m in self.messages if m["Message-ID"] == message_id(key)]


def start_smtp(env: Any, sink: MailSink) -> Controller:
    port = free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    env(smtp_host="127.0.0.1", smtp_port=str(port))
    return controller


@pytest.fixture()
def smtp(env: Any) -> Iterator[MailSink]:
    sink = MailSink()
    controller = start_smtp(env, sink)
    yield sink
    controller.stop()


@dataclass
class Hook:
    status: int = 200
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)


@pytest.fixture()
def webhook(env: Any) -> Iterator[Hook]:
    hook = Hook()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            hook.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
            self.send_response(hook.status)
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    env(webhook_url=f"http://127.0.0.1:{server.server_address[1]}/minpan", webhook_secret="hook-secret-42")
    yield hook
    server.shutdown()
    server.server_close()


# --- helpers --------------------------------------------------------------------------------------


def principal(username: str = "horqin.principal") -> tuple[int, int]:
    """(user id, workspace id) of a demo person."""
    with system_session() as db:
        user_id, workspace_id = db.execute(
            select(User.id, Membership.workspace_id)
            .join(Membership, Membership.user_id == User.id)
            .where(User.username == username)
        ).first()  # type: ignore[misc]
    return user_id, workspace_id


def notice(key: str, username: str = "horqin.principal") -> Notice:
    user_id, workspace_id = principal(username)
    return Notice(workspace_id, user_id, key, SUBJECT, TEXT, "/inbox/12")


def outbox(key_prefix: str) -> list[OutboxMessage]:
    with system_session() as db:
        return list(
            db.scalars(
                select(OutboxMessage)
                .where(OutboxMessage.key.startswith(key_prefix))
                .order_by(OutboxMessage.key)
            )
        )


def set_user(username: str, **values: Any) -> None:
    with system_session() as db:
        db.execute(update(User).where(User.username == username).values(**values))


def wait_until(predicate: Any, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return bool(predicate())


# --- writing: in the caller's transaction, bulk, once per key -------------------------------------


def test_notify_many_writes_the_notice_and_one_outbox_row_per_channel(demo, env) -> None:  # type: ignore[no-untyped-def]
    env(webhook_url="http://127.0.0.1:9/unused")
    set_user("horqin.principal", mobile="13800000001")
    set_user("kailu.principal", email="")
    set_user("naiman.principal", is_active=False)
    with system_session() as db:
        notify_many(db, [notice("w:1"), notice("w:2", "kailu.principal"), notice("w:3", "naiman.principal")])
    rows = {(m.key, m.channel, m.recipient) for m in outbox("w:")}
    assert rows == {
        ("w:1:email", "email", "horqin.principal@tongliao.example"),
        ("w:1:sms", "sms", "13800000001"),
        ("w:1:webhook", "webhook", "horqin.principal"),
        ("w:2:webhook", "webhook", "kailu.principal"),  # no e-mail address, no mobile
        # naiman.principal is inactive: the in-app notice only
    }
    mail = next(m for m in outbox("w:1:email"))
    assert mail.subject == SUBJECT and TEXT in mail.body and "http://127.0.0.1:8000/inbox/12" in mail.body
    assert mail.sent_at is None and mail.attempts == 0
    with system_session() as db:
        keys = set(db.scalars(select(Notification.key).where(Notification.key.startswith("w:"))))
    assert keys == {"w:1", "w:2", "w:3"}


def test_notify_many_is_one_bulk_write_with_one_recipient_query(demo) -> None:  # type: ignore[no-untyped-def]
    people = ["horqin.principal", "kailu.principal", "naiman.principal", "horqin.handler"]
    notices = [notice(f"b:{i}", people[i % len(people)]) for i in range(400)]
    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements.append(statement.split()[0].upper())

    engine = get_engine()
    with system_session() as db:
        db.connection()  # the transaction's own BEGIN / settings are not counted
        event.listen(engine, "before_cursor_execute", count)
        try:
            notify_many(db, notices)
        finally:
            event.remove(engine, "before_cursor_execute", count)
    assert statements.count("SELECT") == 1
    assert statements.count("INSERT") == 2  # one executemany per table
    with system_session() as db:
        assert db.scalar(select(func.count()).where(Notification.key.startswith("b:"))) == 400
        assert db.scalar(select(func.count()).where(OutboxMessage.key.startswith("b:"))) == 400  # e-mail each


def test_the_same_notice_twice_is_written_once(demo) -> None:  # type: ignore[no-untyped-def]
    with system_session() as db:
        notify_many(db, [notice("d:1"), notice("d:1")])
    with system_session() as db:
        notify_many(db, [notice("d:1"), notice("d:2")])
    assert [m.key for m in outbox("d:")] == ["d:1:email", "d:2:email"]
    with system_session() as db:
        assert db.scalar(select(func.count()).where(Notification.key.startswith("d:"))) == 2


def test_nothing_is_half_written_when_the_callers_transaction_rolls_back(demo) -> None:  # type: ignore[no-untyped-def]
    db = session_factory()()
    bind_tenant(db, TenantContext.system_context())
    try:
        notify_many(db, [notice("r:1"), notice("r:2", "kailu.principal")])
        db.flush()
        written = select(func.count()).where(OutboxMessage.key.startswith("r:"))
        assert db.scalar(written) == 2  # written, not committed
        db.rollback()
    finally:
        db.close()
    with pytest.raises(IntegrityError), system_session() as db:
        notify_many(db, [notice("r:3")])
        db.add(User(username="horqin.principal", display_name="重名", password_hash="x"))
        db.flush()  # the caller's own write fails: the whole transaction goes
    with system_session() as db:
        assert db.scalar(select(func.count()).where(Notification.key.startswith("r:"))) == 0
        assert db.scalar(select(func.count()).where(OutboxMessage.key.startswith("r:"))) == 0


def test_a_request_session_may_notify_only_in_its_own_workspace(demo) -> None:  # type: ignore[no-untyped-def]
    _, horqin = principal("horqin.principal")
    db = session_factory()()
    bind_tenant(db, TenantContext.for_workspace(horqin, None))
    try:
        notify_many(db, [notice("t:1")])  # its own workspace: fine
        with pytest.raises(TenantViolation):
            notify_many(db, [notice("t:2", "kailu.principal")])
    finally:
        db.rollback()
        db.close()


# --- e-mail: a real SMTP server -------------------------------------------------------------------


def test_mail_arrives_once_in_chinese_with_a_message_id_from_the_key(demo, smtp, worker) -> None:  # type: ignore[no-untyped-def]
    with system_session() as db:
        notify_many(db, [notice("m:1")])
    assert smtp.messages == []  # nothing leaves before the relay
    assert outbox_relay.relay() == 1
    worker()
    assert len(smtp.messages) == 1
    mail = smtp.messages[0]
    assert mail["Subject"] == SUBJECT
    assert mail["To"] == "horqin.principal@tongliao.example"
    assert mail["From"] == get_settings().mail_from
    assert mail["Message-ID"] == message_id("m:1:email")
    assert message_id("m:1:email") == f"<{hashlib.sha256(b'm:1:email').hexdigest()[:32]}@minpan>"
    body = mail.get_content()
    assert TEXT in body and "办理入口：http://127.0.0.1:8000/inbox/12" in body
    (row,) = outbox("m:1")
    assert row.sent_at is not None and row.attempts == 1 and row.last_error == ""

    # Relay and deliver again, now and long after: nothing more is sent.
    assert outbox_relay.relay() == 0
    assert outbox_relay.relay(utcnow() + timedelta(days=1)) == 0
    assert outbox_relay.deliver(row.id) is False
    from tasks.actors import deliver

    deliver.send(row.id)
    deliver.send(row.id)
    worker()
    assert len(smtp.messages) == 1


def test_duplicate_deliver_messages_at_the_same_moment_send_one_mail(demo, smtp, worker) -> None:  # type: ignore[no-untyped-def]
    from tasks.actors import deliver

    with system_session() as db:
        notify_many(db, [notice("dup:1")])
    (row,) = outbox("dup:1")
    for _ in range(4):  # a relay after the lease, a broker redelivery …: all at once on 8 threads
        deliver.send(row.id)
    worker()
    assert len(smtp.with_id("dup:1:email")) == 1
    (row,) = outbox("dup:1")
    assert row.sent_at is not None


def test_an_unreachable_mail_server_loses_nothing(demo, env, worker) -> None:  # type: ignore[no-untyped-def]
    env(smtp_host="127.0.0.1", smtp_port=str(free_port()))  # nobody listens there
    with system_session() as db:
        notify_many(db, [notice("u:1")])
    (row,) = outbox("u:1")
    with pytest.raises(OSError):
        outbox_relay.deliver(row.id)
    (row,) = outbox("u:1")
    assert row.sent_at is None and row.attempts == 1 and "ConnectionRefusedError" in row.last_error
    assert row.next_attempt_at > utcnow() + timedelta(seconds=60)  # backed off
    assert outbox_relay.relay() == 0  # not due yet

    sink = MailSink()
    controller = start_smtp(env, sink)  # the server is back
    try:
        assert outbox_relay.relay(utcnow() + timedelta(hours=2)) == 1
        worker()
        assert len(sink.with_id("u:1:email")) == 1
    finally:
        controller.stop()
    (row,) = outbox("u:1")
    assert row.sent_at is not None and row.last_error == "" and row.attempts == 2


# --- webhook and SMS ------------------------------------------------------------------------------


def test_webhook_gets_signed_json_and_a_failure_is_retried_until_it_is_sent_once(  # type: ignore[no-untyped-def]
    demo, env, webhook, worker
) -> None:
    env(notify_email="false")
    with system_session() as db:
        notify_many(db, [notice("h:1")])
    (row,) = outbox("h:1")
    assert row.channel == "webhook"

    webhook.status = 500
    with pytest.raises(Exception, match="500"):
        outbox_relay.deliver(row.id)
    (row,) = outbox("h:1")
    assert row.sent_at is None and row.attempts == 1 and "500" in row.last_error
    assert outbox_relay.relay() == 0  # backed off

    webhook.status = 200
    assert outbox_relay.relay(utcnow() + timedelta(hours=2)) == 1
    worker()
    assert outbox_relay.relay(utcnow() + timedelta(days=2)) == 0
    assert outbox_relay.deliver(row.id) is False
    assert len(webhook.received) == 2  # the failed attempt and the one that succeeded
    headers, body = webhook.received[-1]
    expected = hmac.new(b"hook-secret-42", body, hashlib.sha256).hexdigest()
    assert headers["x-minpan-signature"] == f"sha256={expected}"
    assert headers["idempotency-key"] == "h:1:webhook"
    assert headers["content-type"].startswith("application/json")
    assert json.loads(body) == {
        "key": "h:1:webhook",
        "channel": "webhook",
        "recipient": "horqin.principal",
        "subject": SUBJECT,
        "body": row.body,
    }
    assert TEXT in row.body
    (row,) = outbox("h:1")
    assert row.sent_at is not None and row.last_error == ""


def test_sms_is_logged_by_default_and_marked_sent(demo, env, caplog) -> None:  # type: ignore[no-untyped-def]
    env(notify_email="false")
    set_user("horqin.principal", mobile="13800000002")
    with system_session() as db:
        notify_many(db, [notice("s:1")])
    (row,) = outbox("s:1")
    assert (row.channel, row.recipient) == ("sms", "13800000002")
    with caplog.at_level(logging.INFO, logger="minpan.notify"):
        assert outbox_relay.deliver(row.id) is True
        assert outbox_relay.deliver(row.id) is False
    logged = [r.getMessage() for r in caplog.records if r.name == "minpan.notify"]
    assert len(logged) == 1 and "13800000002" in logged[0] and TEXT in logged[0]
    (row,) = outbox("s:1")
    assert row.sent_at is not None


def test_sms_through_a_gateway_behind_the_webhook(demo, env, webhook) -> None:  # type: ignore[no-untyped-def]
    env(notify_email="false", sms_channel="webhook")
    set_user("horqin.principal", mobile="13800000003")
    with system_session() as db:
        notify_many(db, [notice("g:1")])
    sms = next(m for m in outbox("g:1") if m.channel == "sms")
    assert outbox_relay.deliver(sms.id) is True
    payload = json.loads(webhook.received[-1][1])
    assert (payload["channel"], payload["recipient"], payload["key"]) == ("sms", "13800000003", "g:1:sms")


# --- the relay in the scheduler: embedded default ---------------------------------------------------


def test_the_scheduler_relays_the_outbox_in_the_embedded_default(demo, smtp) -> None:  # type: ignore[no-untyped-def]
    from tasks.embedded import EmbeddedWorker

    with system_session() as db:
        notify_many(db, [notice("e:1")])
    background = EmbeddedWorker()
    background.start()  # the scheduler thread relays at start-up; the in-process worker sends
    try:
        assert wait_until(lambda: len(smtp.with_id("e:1:email")) == 1, 15)
    finally:
        background.stop()
    (row,) = outbox("e:1")
    assert row.sent_at is not None


# --- real worker processes on Redis -----------------------------------------------------------------

needs_redis = pytest.mark.skipif(
    not REDIS_URL, reason="needs the real Redis (set MINPAN_TEST_REDIS_URL; .ci/run does)"
)


def _start(*args: str, threads: int = 1) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "app.cli", *args]
    if args[0] == "worker":
        command += ["--processes", "1", "--threads", str(threads)]
    return subprocess.Popen(
        command,
        cwd=ROOT,
        env={**os.environ, "MINPAN_BROKER_URL": str(REDIS_URL)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # its own process group: the worker's children die with it
    )


def _stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, sig)
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(5)


@pytest.fixture()
def redis_broker() -> Iterator[Any]:
    import redis
    from dramatiq.brokers.redis import RedisBroker

    redis.Redis.from_url(str(REDIS_URL)).flushdb()
    broker = RedisBroker(url=REDIS_URL)  # type: ignore[no-untyped-call]
    yield broker
    broker.close()
    redis.Redis.from_url(str(REDIS_URL)).flushdb()


def _deliver_message(outbox_id: int) -> dramatiq.Message:  # type: ignore[type-arg]
    return dramatiq.Message(
        queue_name="notify", actor_name="deliver", args=(outbox_id,), kwargs={}, options={}
    )


@needs_redis
def test_scheduler_and_worker_processes_deliver_the_outbox_on_redis(demo, env, smtp, redis_broker) -> None:  # type: ignore[no-untyped-def]
    """Production topology: `minpan scheduler` relays, `minpan worker` sends."""
    env(outbox_relay_seconds="1")
    with system_session() as db:
        notify_many(db, [notice("p:1")])
    procs = [_start("worker", threads=2), _start("scheduler")]
    try:
        assert wait_until(lambda: len(smtp.with_id("p:1:email")) == 1, 40), "the mail never arrived"
        time.sleep(3)  # more relay rounds: nothing more
        assert len(smtp.with_id("p:1:email")) == 1
    finally:
        for proc in procs:
            _stop(proc)


@needs_redis
def test_a_worker_killed_mid_send_and_duplicate_messages_still_give_one_mail(  # type: ignore[no-untyped-def]
    demo, env, redis_broker
) -> None:
    sink = MailSink(block_first=True)
    controller = start_smtp(env, sink)
    env(outbox_lease_seconds="2")

    def enqueue(outbox_id: int) -> None:
        redis_broker.enqueue(_deliver_message(outbox_id))

    first = _start("worker")
    second: subprocess.Popen[bytes] | None = None
    try:
        with system_session() as db:
            notify_many(db, [notice("k:1")])
        (row,) = outbox("k:1")
        assert outbox_relay.relay(enqueue=enqueue) == 1
        assert sink.entered.wait(60), "the worker never reached the SMTP server"
        _stop(first, signal.SIGKILL)  # mid-send: the SMTP transaction never completes
        sink.release.set()
        assert sink.messages == []
        (row,) = outbox("k:1")
        assert row.sent_at is None

        second = _start("worker", threads=2)
        time.sleep(2.5)  # the lease runs out
        assert outbox_relay.relay(enqueue=enqueue) == 1
        assert wait_until(lambda: len(sink.with_id("k:1:email")) == 1, 40), "the mail never arrived"
        assert outbox_relay.relay(utcnow() + timedelta(days=1), enqueue=enqueue) == 0

        # A broker restart or redelivery: the same message twice, and another for the same row.
        message = _deliver_message(row.id)
        redis_broker.enqueue(message)
        redis_broker.enqueue(message)
        enqueue(row.id)
        # A fresh notice whose message arrives three times at once (two worker threads).
        with system_session() as db:
            notify_many(db, [notice("k:2")])
        (fresh,) = outbox("k:2")
        for _ in range(3):
            enqueue(fresh.id)
        assert wait_until(lambda: len(sink.with_id("k:2:email")) == 1, 40)
        time.sleep(3)
        assert len(sink.with_id("k:1:email")) == 1
        assert len(sink.with_id("k:2:email")) == 1
        assert len(sink.messages) == 2
        assert all(m.sent_at is not None for m in outbox("k:"))
    finally:
        sink.release.set()
        for proc in (first, second):
            if proc is not None:
                _stop(proc)
        controller.stop()


# --- what could not be delivered: the cap on attempts, the system admin's page, the purge -----------


def test_a_message_that_keeps_failing_stops_at_the_cap_and_the_system_admin_sends_it_again(  # type: ignore[no-untyped-def]
    demo, env, make_client, worker
) -> None:
    from tests.helpers import post, sign_in

    env(smtp_host="127.0.0.1", smtp_port=str(free_port()), outbox_max_attempts="3")  # nobody listens
    with system_session() as db:
        notify_many(db, [notice("cap:1")])
    (row,) = [r for r in outbox("cap:1") if r.channel == "email"]
    later = utcnow()
    for _ in range(3):
        later += timedelta(hours=2)
        assert outbox_relay.relay(later, enqueue=lambda _id: None) >= 1
        with pytest.raises(OSError):
            outbox_relay.deliver(row.id)
    (row,) = [r for r in outbox("cap:1") if r.channel == "email"]
    assert row.attempts == 3 and row.sent_at is None
    # Past the cap the relay leaves it alone, however late it gets: no hourly retries for ever.
    handed: list[int] = []
    outbox_relay.relay(utcnow() + timedelta(days=30), enqueue=handed.append)
    assert row.id not in handed

    # The system admin sees it — with the address masked — and why it failed.
    admin = make_client()
    sign_in(admin, "sysadmin")
    page = admin.get("/admin/outbox?state=stopped")
    assert page.status_code == 200
    assert f"/admin/outbox/{row.id}/retry" in page.text and "ConnectionRefusedError" in page.text
    address = db_email("horqin.principal")
    assert address and address not in page.text and f"{address[0]}***@{address.split('@')[1]}" in page.text
    # Nobody else may see or touch the outbox.
    for username in ("zx.admin", "zx.clerk", "dc.supervisor", "horqin.admin"):
        other = make_client()
        sign_in(other, username)
        assert other.get("/admin/outbox").status_code in (403, 404), username
        assert post(other, f"/admin/outbox/{row.id}/retry", {}).status_code in (403, 404), username

    # Sent again by hand once the mail server is back: delivered once, audited.
    sink = MailSink()
    controller = start_smtp(env, sink)
    try:
        assert post(admin, f"/admin/outbox/{row.id}/retry", {}).status_code == 303
        handed.clear()
        outbox_relay.relay(enqueue=handed.append)
        assert handed == [row.id]
        assert outbox_relay.deliver(row.id) is True
        assert len(sink.with_id("cap:1:email")) == 1
    finally:
        controller.stop()
    assert post(admin, f"/admin/outbox/{row.id}/retry", {}).status_code == 404  # sent: nothing to retry
    from app.audit.models import AuditEvent

    with system_session() as db:
        assert db.scalar(select(AuditEvent).where(AuditEvent.action == "outbox.retry")) is not None


def test_the_system_admin_may_stop_retrying_a_failing_message(demo, env, make_client) -> None:  # type: ignore[no-untyped-def]
    from tests.helpers import post, sign_in

    env(smtp_host="127.0.0.1", smtp_port=str(free_port()))
    with system_session() as db:
        notify_many(db, [notice("stop:1")])
    (row,) = [r for r in outbox("stop:1") if r.channel == "email"]
    with pytest.raises(OSError):
        outbox_relay.deliver(row.id)
    admin = make_client()
    sign_in(admin, "sysadmin")
    assert f"/admin/outbox/{row.id}/stop" in admin.get("/admin/outbox?state=failing").text
    assert post(admin, f"/admin/outbox/{row.id}/stop", {}).status_code == 303
    handed: list[int] = []
    outbox_relay.relay(utcnow() + timedelta(days=2), enqueue=handed.append)
    assert row.id not in handed
    assert f"/admin/outbox/{row.id}/retry" in admin.get("/admin/outbox?state=stopped").text
    assert post(admin, "/admin/outbox/999999/stop", {}).status_code == 404


def test_sent_messages_are_purged_after_the_keeping_period_and_unsent_ones_never(demo, env) -> None:  # type: ignore[no-untyped-def]
    env(outbox_keep_days="30")
    with system_session() as db:
        notify_many(db, [notice("old:1"), notice("new:1"), notice("unsent:1")])
        db.execute(
            update(OutboxMessage)
            .where(OutboxMessage.key.like("old:1:%"))
            .values(sent_at=utcnow() - timedelta(days=31))
        )
        db.execute(
            update(OutboxMessage)
            .where(OutboxMessage.key.like("new:1:%"))
            .values(sent_at=utcnow() - timedelta(days=29))
        )
        db.execute(
            update(OutboxMessage)
            .where(OutboxMessage.key.like("unsent:1:%"))
            .values(created_at=utcnow() - timedelta(days=400), attempts=99)
        )
    old = len(outbox("old:1"))
    assert old >= 1
    assert outbox_relay.purge_sent() == old
    assert outbox("old:1") == []
    assert outbox("new:1") and outbox("unsent:1")
    assert outbox_relay.purge_sent() == 0


def db_email(username: str) -> str:
    with system_session() as db:
        return db.scalar(select(User.email).where(User.username == username)) or ""
