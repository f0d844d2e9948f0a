"""A text or an e-mail when the turn nears, and when called — only for a visitor who asked, on this ticket.

The visitor gives a number or an address on the "your place" page for this purpose alone
(``POST /api/v1/track/<token>/notify``). It is kept **in the hub's memory only**, never written to disk, and
forgotten the moment the ticket is no longer waiting or called (served, no-show, left, expired) — so there is
nothing to purge and nothing in a backup. A hub restart forgets it too: the visitor's page still says
everything.

Who gets what is decided on the writer thread after each batch (``watch``: a dictionary walk over the few
tickets that asked, no I/O), once per threshold: "near" (the service's ``near_turn``) and "called". Sending is
done by one thread of its own (``Sender``), never the writer: an SMTP server or SMS gateway that is slow or
down delays only the messages; each is tried again after 2, 4, 8 … s (at most ``MAX_TRIES`` times) and a
failure is logged and shown to staff in ``GET /api/v1/devices`` (``alerts`` of the device ``notify``). A
message for a contact that has been forgotten meanwhile is dropped, not sent.

Channels (``[notify]`` in the site config): an HTTP SMS gateway that takes ``POST {"to", "text"}`` as JSON
(the municipality's own, or a public one such as NemSMS behind a small adapter), with an optional bearer token;
and SMTP (optionally STARTTLS and a login) for e-mail.
"""

from __future__ import annotations

import logging
import queue
import re
import smtplib
import threading
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import requests

from server.config import ConfigError, SiteConfig, check_number, check_unknown_keys
from server.engine import CALLED, WAITING, QueueEngine
from vuoro.i18n import translator

log = logging.getLogger("vuoro.notify")

LOCALE_DIR = Path(__file__).resolve().parent.parent.parent / "display" / "locale"  # the phone page's words
MAX_TRIES = 6
FIRST_RETRY_S = 2.0
PHONE = re.compile(r"^\+?[0-9 ]{6,20}$")
EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]{2,}$")


@dataclass(frozen=True)
class NotifySettings:
    sms_url: str | None = None
    sms_token: str | None = None
    smtp_host: str | None = None
    smtp_port: int = 25
    smtp_from: str = "vuoro@localhost"
    smtp_starttls: bool = False
    smtp_user: str | None = None
    smtp_password: str | None = None
    timeout_s: float = 10.0

    @property
    def channels(self) -> list[str]:
        return [name for name, on in (("sms", self.sms_url), ("email", self.smtp_host)) if on]


def parse_settings(config: SiteConfig) -> NotifySettings:
    raw = config.raw.get("notify", {})
    if not isinstance(raw, dict):
        raise ConfigError([f"notify: expected a table, got {raw!r}"], str(config.path))
    problems: list[str] = []
    allowed = {"sms_url", "sms_token", "smtp_host", "smtp_port", "smtp_from", "smtp_starttls", "smtp_user",
               "smtp_password", "timeout_s",
               # booking confirmations and reminders: checked by server/bookings/notices.py
               "reminder_at", "reminder_hours", "retry_first_s", "reminders"}
    check_unknown_keys(raw, allowed, "notify", problems)
    for key in ("sms_url", "sms_token", "smtp_host", "smtp_from", "smtp_user", "smtp_password"):
        if key in raw and not isinstance(raw[key], str):
            problems.append(f"notify.{key}: expected text, got {raw[key]!r}")
    url = raw.get("sms_url")
    if isinstance(url, str) and not url.startswith(("http://", "https://")):
        problems.append(f"notify.sms_url: expected an http(s) address, got {url!r}")
    if "smtp_starttls" in raw and not isinstance(raw["smtp_starttls"], bool):
        problems.append(f"notify.smtp_starttls: expected true or false, got {raw['smtp_starttls']!r}")
    settings = NotifySettings(
        sms_url=url if isinstance(url, str) else None,
        sms_token=raw.get("sms_token") if isinstance(raw.get("sms_token"), str) else None,
        smtp_host=raw.get("smtp_host") if isinstance(raw.get("smtp_host"), str) else None,
        smtp_port=int(check_number(raw, "smtp_port", "notify", 25, 1, 65535, problems, whole=True)),
        smtp_from=raw.get("smtp_from") if isinstance(raw.get("smtp_from"), str) else "vuoro@localhost",
        smtp_starttls=raw.get("smtp_starttls") is True,
        smtp_user=raw.get("smtp_user") if isinstance(raw.get("smtp_user"), str) else None,
        smtp_password=raw.get("smtp_password") if isinstance(raw.get("smtp_password"), str) else None,
        timeout_s=check_number(raw, "timeout_s", "notify", 10.0, 1.0, 120.0, problems),
    )
    if problems:
        raise ConfigError(problems, str(config.path))
    return settings


@dataclass
class Contact:
    ticket_id: str
    channel: str  # sms | email
    to: str
    sent: set[str] = field(default_factory=set)  # the thresholds already queued: near, called


@dataclass(frozen=True)
class Message:
    ticket_id: str
    channel: str
    to: str
    subject: str
    text: str
    tries: int = 0


class Notifier:
    """The contacts (memory only), the decision after each batch, and the sending thread."""

    def __init__(self, settings: NotifySettings, site_name: str):
        self.settings = settings
        self.site_name = site_name
        self.contacts: dict[str, Contact] = {}  # ticket id → contact; touched only on the writer thread
        self.outbox: queue.Queue[Message | None] = queue.Queue()
        self.failures: deque[dict[str, Any]] = deque(maxlen=20)
        self.sent: list[tuple[str, str]] = []  # (channel, subject) of each message delivered
        self.first_retry_s = FIRST_RETRY_S
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="vuoro-notify", daemon=True)
        self._thread.start()

    # -- on the writer thread ------------------------------------------------------------------------

    @staticmethod
    def check_address(channel: str, to: str) -> str:
        to = " ".join(to.split())
        if channel == "sms" and PHONE.match(to) and sum(ch.isdigit() for ch in to) >= 6:
            return to.replace(" ", "")
        if channel == "email" and EMAIL.match(to) and len(to) <= 254:
            return to
        raise ValueError(channel)

    def remember(self, engine: QueueEngine, ticket_id: str, channel: str, to: str) -> None:
        self.contacts[ticket_id] = Contact(ticket_id, channel, to)
        self.watch(engine)

    def forget(self, ticket_id: str) -> None:
        self.contacts.pop(ticket_id, None)

    def watch(self, engine: QueueEngine) -> None:
        """After each batch: queue each threshold reached once; forget a ticket whose visit is over."""
        for contact in list(self.contacts.values()):
            ticket = engine.tickets.get(contact.ticket_id)
            if ticket is None or ticket.status not in (WAITING, CALLED):
                self.forget(contact.ticket_id)  # deleted with the ticket's visit
                continue
            _ = translator(LOCALE_DIR, ticket.language)
            if ticket.status == CALLED and "called" not in contact.sent:
                counter = engine.config.counters.get(ticket.counter or "")
                words = _("You are called to {counter}").replace("{counter}", counter.name if counter else "")
                contact.sent.update(("called", "near"))
            elif ticket.status == WAITING and engine.near_turn(ticket) and "near" not in contact.sent:
                words = _("Your turn is near. Please come to the waiting area.")
                contact.sent.add("near")
            else:
                continue
            text = f"{ticket.label}: {words} — {self.site_name}"
            self.outbox.put(Message(ticket.id, contact.channel, contact.to, f"{ticket.label}: {words}", text))

    # -- on the sending thread -----------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            message = self.outbox.get()
            if message is None:
                return
            if message.ticket_id not in self.contacts:
                continue  # forgotten meanwhile: never send after deletion
            try:
                self._send(message)
                self.sent.append((message.channel, message.subject))
                log.info("sent a %s for ticket %s", message.channel, message.subject.split(":")[0])
            except Exception as exc:  # a gateway down, a refused address: try again later, never block
                tries = message.tries + 1
                reason = failure_reason(exc)
                what = f"{message.channel} for {message.subject.split(':')[0]}: {reason}"
                if tries >= MAX_TRIES:
                    log.error("gave up sending a %s", what)
                    self.failures.append({"code": "notify_failed", "message": f"Could not send a {what}; gave up.",
                                          "at": datetime.now().astimezone().isoformat(timespec="seconds")})
                    continue
                delay = self.first_retry_s * 2 ** (tries - 1)
                log.warning("could not send a %s; again in %.0f s", what, delay)
                self.failures.append({"code": "notify_retry", "message": f"Could not send a {what}; trying again.",
                                      "at": datetime.now().astimezone().isoformat(timespec="seconds")})
                retry = Message(message.ticket_id, message.channel, message.to, message.subject, message.text, tries)
                timer = threading.Timer(delay, self.outbox.put, (retry,))
                timer.daemon = True
                timer.start()

    def _send(self, message: Message) -> None:
        deliver(self.settings, message.channel, message.to, message.subject, message.text)

    def stop(self) -> None:
        self._stop.set()
        self.outbox.put(None)
        self._thread.join(5)



def deliver(s: NotifySettings, channel: str, to: str, subject: str, text: str, key: str | None = None) -> None:
    """One message through the site's SMS gateway or SMTP server; raises when it was not accepted.

    ``key`` (a message's own id) goes along as the gateway's ``Idempotency-Key`` and the e-mail's Message-ID, so
    a gateway or mail system that knows the key again can drop a copy.
    """
    if channel == "sms":
        headers = {"Authorization": f"Bearer {s.sms_token}"} if s.sms_token else {}
        if key:
            headers["Idempotency-Key"] = key
        answer = requests.post(s.sms_url or "", json={"to": to, "text": text}, headers=headers, timeout=s.timeout_s)
        answer.raise_for_status()
        return
    email = EmailMessage()
    email["From"], email["To"], email["Subject"] = s.smtp_from, to, subject
    if key:
        email["Message-ID"] = f"<{key}@{s.smtp_from.rpartition('@')[2] or 'vuoro'}>"
    email.set_content(text)
    with smtplib.SMTP(s.smtp_host or "", s.smtp_port, timeout=s.timeout_s) as smtp:
        if s.smtp_starttls:
            smtp.starttls()
        if s.smtp_user:
            smtp.login(s.smtp_user, s.smtp_password or "")
        smtp.send_message(email)


def failure_reason(exc: BaseException) -> str:
    """Why a message was not accepted, without the exception's text: an SMTP refusal quotes the address, which
    must not reach a log or the staff page."""
    status = getattr(getattr(exc, "response", None), "status_code", None)
    return f"HTTP {status}" if status else type(exc).__name__
