"""External channels: each sends one outbox message or raises.

A channel may be asked to send the same message again after a crash between the send and the
commit that records it, so each gives the receiver a way to drop the duplicate: a Message-ID
derived from the outbox key (e-mail) or an ``Idempotency-Key`` header (webhook).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import smtplib
import ssl
import urllib.request
from email.message import EmailMessage
from email.utils import formatdate
from typing import Protocol

from app.notify.models import OutboxMessage
from app.settings import Settings, get_settings

log = logging.getLogger("minpan.notify")

TIMEOUT_SECONDS = 30  # per network operation; keep well under MINPAN_OUTBOX_LEASE_SECONDS


class Channel(Protocol):
    def send(self, message: OutboxMessage) -> None:
        """Deliver ``message`` or raise."""


class ChannelUnavailable(RuntimeError):
    """The settings do not allow this channel (e.g. SMS through a webhook with no URL)."""


def message_id(key: str) -> str:
    """The same outbox key always gives the same Message-ID, so a receiving server (or a mail
    client) can drop a copy sent twice."""
    return f"<{hashlib.sha256(key.encode()).hexdigest()[:32]}@minpan>"


class SmtpChannel:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def compose(self, message: OutboxMessage) -> EmailMessage:
        mail = EmailMessage()
        mail["Subject"] = message.subject
        mail["From"] = self.settings.mail_from
        mail["To"] = message.recipient
        mail["Date"] = formatdate(localtime=True)
        mail["Message-ID"] = message_id(message.key)
        mail.set_content(message.body, charset="utf-8")
        return mail

    def send(self, message: OutboxMessage) -> None:
        s = self.settings
        with smtplib.SMTP(s.smtp_host, s.smtp_port, timeout=TIMEOUT_SECONDS) as smtp:
            if s.smtp_starttls:
                smtp.starttls(context=ssl.create_default_context())
            if s.smtp_user:
                smtp.login(s.smtp_user, s.smtp_password)
            smtp.send_message(self.compose(message))


class WebhookChannel:
    """POST ``{key, channel, recipient, subject, body}`` as JSON to MINPAN_WEBHOOK_URL, signed with
    ``X-Minpan-Signature: sha256=<hex HMAC of the body with MINPAN_WEBHOOK_SECRET>``. Any answer
    other than 2xx is a failure (retried)."""

    def __init__(self, settings: Settings) -> None:
        if not settings.webhook_url.startswith(("http://", "https://")):
            raise ChannelUnavailable("MINPAN_WEBHOOK_URL must be an http:// or https:// URL")
        self.settings = settings

    def payload(self, message: OutboxMessage) -> bytes:
        return json.dumps(
            {
                "key": message.key,
                "channel": message.channel,
                "recipient": message.recipient,
                "subject": message.subject,
                "body": message.body,
            },
            ensure_ascii=False,
        ).encode("utf-8")

    def send(self, message: OutboxMessage) -> None:
        body = self.payload(message)
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "Idempotency-Key": message.key,
            "User-Agent": "minpan-notify",
        }
        if self.settings.webhook_secret:
            digest = hmac.new(self.settings.webhook_secret.encode(), body, hashlib.sha256).hexdigest()
            headers["X-Minpan-Signature"] = f"sha256={digest}"
        request = urllib.request.Request(self.settings.webhook_url, data=body, headers=headers, method="POST")  # noqa: S310  (scheme checked above)
        with _opener.open(request, timeout=TIMEOUT_SECONDS) as response:
            status = response.status
        if not 200 <= status < 300:
            raise RuntimeError(f"webhook answered HTTP {status}")


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect is an answer other than 2xx: fail (urllib would re-send a POST as a bodiless GET)."""

    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


_opener = urllib.request.build_opener(_NoRedirect)


class LogChannel:
    """Writes the message to the log (logger ``minpan.notify``) and succeeds: the SMS default until
    a gateway is configured, and e-mail's while no MINPAN_SMTP_HOST is set (the embedded default)."""

    def send(self, message: OutboxMessage) -> None:
        log.info("%s to %s [%s]: %s", message.channel, message.recipient, message.key, message.body)


class JobChannel:
    """Not a message to a person: a background job (app/jobs) handed out through the outbox, so
    it gets the outbox's guarantees (committed with the request, relayed, run once)."""

    def send(self, message: OutboxMessage) -> None:
        from app.jobs.services import run

        run(int(message.recipient))


class DocumentChannel:
    """A document to render and store (app/documents/queue.py), handed out through the outbox."""

    def send(self, message: OutboxMessage) -> None:
        from app.documents.queue import issue

        issue(message.recipient)


class FanOutChannel:
    """The rungs a deadline sweep issued to one unit: their timeline entries, notices, audit event
    and documents (app/escalation/services.py ``fan_out``), written by a worker after the sweep."""

    def send(self, message: OutboxMessage) -> None:
        from app.escalation.services import fan_out

        fan_out(int(message.recipient))


def channel_for(name: str, settings: Settings | None = None) -> Channel:
    settings = settings or get_settings()
    if name == "email":
        return SmtpChannel(settings) if settings.smtp_host else LogChannel()
    if name == "job":
        return JobChannel()
    if name == "document":
        return DocumentChannel()
    if name == "fanout":
        return FanOutChannel()
    if name == "webhook":
        if not settings.webhook_url:
            raise ChannelUnavailable("MINPAN_WEBHOOK_URL is not set")
        return WebhookChannel(settings)
    if name == "sms":
        if settings.sms_channel == "log":
            return LogChannel()
        if settings.sms_channel == "webhook":
            if not settings.webhook_url:
                raise ChannelUnavailable("MINPAN_SMS_CHANNEL=webhook needs MINPAN_WEBHOOK_URL")
            return WebhookChannel(settings)
        raise ChannelUnavailable(f"unknown MINPAN_SMS_CHANNEL {settings.sms_channel!r} (log | webhook)")
    raise ChannelUnavailable(f"unknown channel {name!r}")
