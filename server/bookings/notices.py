"""Booking confirmations and reminders by text or e-mail, for a citizen who asks for them (docs/bookings.md).

A hub plugin of its own (tables: ``notice_store.py``). Opt-in only: the booking page's box "Send me a
confirmation and a reminder" with a mobile number or an e-mail address given *for this purpose*; staff booking
for a caller may ask for the same. The contact is kept on disk (a reminder may be days away, across restarts)
and deleted as soon as nothing is left to send: after the reminder, after a cancellation's confirmation, or when
the time has passed (a tick job). The store overwrites deleted rows (``PRAGMA secure_delete``).

The schedule is durable: every message is a row with a ``due_at``. The writer thread only plans (rows in the
same transaction as the booking) and hands out due rows when asked; the ``Sender`` thread asks (``claim``), sends
through the site's ``[notify]`` gateway or SMTP server (``server/phone/notify.py``'s ``deliver``), and reports
(``settle``). A gateway that is down gets the message again after 2, 4, 8 … s (``retry_first_s``), at most
``MAX_TRIES`` times; the writer never waits for it. The settings, the words, the opt-in box and the retry rule are
``notice_parts.py``'s, which the centre's planner and sender (``central/notice_plan.py``,
``central/notice_sender.py``) use too.

**At most once.** A claimed message is ``sending`` on disk *before* it goes. If the hub stops between that and
the answer, nobody knows whether it went; it is then marked ``unknown`` and never sent again (staff see it in
``GET /api/v1/devices``, device ``booking-notices``). A gateway or mail system that honours the message's id
(``Idempotency-Key`` header, Message-ID) lets a site go further; a lost reminder beats two.

When: ``[notify] reminder_at = "18:00"`` (the day before, the site's time; the default) or ``reminder_hours = 24``
(that long before the time), and per service ``[notify.reminders.<service>]`` with either key. A booking made
after its reminder moment gets the confirmation only. A moved booking is re-planned; a reminder is checked
against the booking as it is when due (cancelled, checked in, moved by staff).
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import uuid
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from server.bookings import records
from server.bookings.notice_parts import (  # noqa: F401 - LOCALE_DIR, MSGIDS, words: the catalog's users import them here
    KINDS,
    LOCALE_DIR,
    MSGIDS,
    NoticeSettings,
    compose,
    parse_settings,
    words,
)
from server.bookings.notice_store import (
    SCHEMA,
    WRITERS,
    ContactRow,
    DropPending,
    ForgetContact,
    InterruptedSends,
    NoticeRow,
)
from server.config import SiteConfig
from server.engine import Outcome, QueueEngine
from server.hookspecs import hookimpl
from server.phone import notify
from server.store import SQLiteStore, ts

if TYPE_CHECKING:
    from fastapi import FastAPI

    from server.hub import Hub

log = logging.getLogger("vuoro.booking_notices")

POLL_S = 1.0  # how often the sender looks for due messages (a read of its own; the writer is asked only then)
CLAIM_MAX = 20
WRITER_WAIT_S = 120.0  # the sender waits this long for the writer: a claim it gave up on would be lost
NOT_SENT = "not sent: the hub stopped"  # handed back as due, not counted as a try


# -- the rules, on the writer thread ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Outgoing:
    """A claimed message, ready for the sender."""

    id: str
    booking_id: str
    kind: str
    for_start: str
    tries: int
    channel: str
    to: str
    subject: str
    text: str


class Notices:
    """Plans, hands out and settles a site's booking messages. Every method but ``wake`` and ``alerts`` runs on
    the hub's writer thread (inside a command)."""

    def __init__(self, config: SiteConfig, store: SQLiteStore, settings: NoticeSettings):
        self.config = config
        self.store = store
        self.settings = settings
        self.woken = threading.Event()
        self.failures: deque[dict[str, Any]] = deque(maxlen=20)

    @property
    def channels(self) -> list[str]:
        return self.settings.channels

    def follow(self, outcome: Outcome, now: datetime, kind: str, contact: tuple[str, str] | None = None,
               language: str | None = None) -> Outcome:
        """Plan the messages of the booking that ``outcome`` wrote: ``kind`` booked (with the citizen's
        ``contact``: otherwise nothing), moved or cancelled (for a booking that has a contact)."""
        rows = [r.booking for r in outcome.records if isinstance(r, records.BookingRow)]
        if not rows or kind not in KINDS:
            return outcome
        booking = rows[-1]
        if kind == "booked":
            if contact is None:
                return outcome
            outcome.records.append(ContactRow(booking.id, contact[0], contact[1],
                                              language or booking.language or self.config.default_language))
        elif self.store.row("SELECT 1 FROM booking_contacts WHERE booking_id = ?", (booking.id,)) is None:
            return outcome
        else:
            outcome.records.append(DropPending(booking.id, "reminder", ts(now)))
        start = ts(booking.start)
        outcome.records.append(NoticeRow(uuid.uuid4().hex, booking.id, kind, ts(now), start))
        due = self.settings.rule_for(booking.service).due(booking.start, self.config)
        if kind != "cancelled" and due > now:
            outcome.records.append(NoticeRow(uuid.uuid4().hex, booking.id, "reminder", ts(due), start))
        self.woken.set()
        return outcome

    def claim(self, engine: QueueEngine, now: datetime) -> tuple[Outcome, list[Outgoing]]:
        """The messages due now, marked ``sending`` (on disk before they go: at most once)."""
        outcome, outgoing = Outcome(), []
        due = self.store.rows(
            "SELECT n.id, n.booking_id, n.kind, n.for_start, n.tries, c.channel, c.address, c.language "
            "FROM booking_notices n LEFT JOIN booking_contacts c ON c.booking_id = n.booking_id "
            "WHERE n.state = 'due' AND n.due_at <= ? ORDER BY n.due_at LIMIT ?", (ts(now), CLAIM_MAX))
        for notice_id, booking_id, kind, for_start, tries, channel, address, language in due:
            booking = records.find(self.store, "id = ?", booking_id)
            row = NoticeRow(notice_id, booking_id, kind, ts(now), for_start, tries=tries)
            if booking is None or address is None:
                outcome.records += [NoticeRow(**{**row.__dict__, "state": "dropped", "done_at": ts(now)}),
                                    ForgetContact(booking_id)]
                continue
            if kind == "reminder":
                if booking.status != records.BOOKED or booking.start <= now:
                    outcome.records += [NoticeRow(**{**row.__dict__, "state": "dropped", "done_at": ts(now)}),
                                        ForgetContact(booking_id)]
                    continue
                if ts(booking.start) != for_start:  # moved by staff since: remind for the new time
                    again = self.settings.rule_for(booking.service).due(booking.start, self.config)
                    outcome.records.append(NoticeRow(notice_id, booking_id, kind, ts(max(again, now)),
                                                     ts(booking.start), tries=tries))
                    continue
            outcome.records.append(NoticeRow(**{**row.__dict__, "state": "sending"}))
            reminding = kind == "booked" and self.store.row(
                "SELECT 1 FROM booking_notices WHERE booking_id = ? AND kind = 'reminder' AND state = 'due'",
                (booking_id,)) is not None
            subject, text = self.compose(kind, booking, language, reminding)
            outgoing.append(Outgoing(notice_id, booking_id, kind, for_start, tries, channel, address, subject, text))
        return outcome, outgoing

    def compose(self, kind: str, booking: records.Booking, language: str, reminding: bool = False) -> tuple[str, str]:
        return compose(self.config, self.config.public_url, kind, booking, language, reminding)

    def settle(self, engine: QueueEngine, now: datetime, results: list[tuple[Outgoing, str | None]]) -> Outcome:
        """What became of the claimed messages: sent, or to be tried again later (``reason``: why not)."""
        outcome = Outcome()
        for message, reason in results:
            row = NoticeRow(message.id, message.booking_id, message.kind, ts(now), message.for_start,
                            tries=message.tries + 1)
            if reason is None:
                outcome.records.append(NoticeRow(**{**row.__dict__, "state": "sent", "done_at": ts(now)}))
            elif reason == NOT_SENT:
                outcome.records.append(NoticeRow(**{**row.__dict__, "tries": message.tries}))
            elif self.settings.retry_after_s(row.tries) is None:
                outcome.records.append(NoticeRow(**{**row.__dict__, "state": "failed", "done_at": ts(now)}))
                self.alert("notice_failed", f"Could not send a {message.channel} ({message.kind}): {reason}; gave "
                           "up.")
            else:
                delay = self.settings.retry_after_s(row.tries) or 0.0
                outcome.records.append(NoticeRow(**{**row.__dict__, "due_at": ts(now + timedelta(seconds=delay))}))
                self.alert("notice_retry", f"Could not send a {message.channel} ({message.kind}): {reason}; trying "
                           "again.")
            outcome.records.append(ForgetContact(message.booking_id))
        return outcome

    def start_up(self, engine: QueueEngine, now: datetime) -> Outcome:
        """At start: a message the hub was sending when it stopped is not sent again (at most once)."""
        interrupted = self.store.rows("SELECT kind, booking_id FROM booking_notices WHERE state = 'sending'")
        for kind, _ in interrupted:
            self.alert("notice_unknown", f"A {kind} message was being sent when the hub stopped; it is not sent "
                       "again (it may not have arrived).")
        outcome = Outcome(records=[InterruptedSends(ts(now))] if interrupted else [])
        outcome.records += [ForgetContact(booking_id) for _, booking_id in interrupted]
        outcome.records += self.sweep(engine, now).records
        return outcome

    def sweep(self, engine: QueueEngine, now: datetime) -> Outcome:
        """A tick job: reminders of bookings that were cancelled, checked in or passed do not go; contacts with
        nothing left to send are deleted."""
        stale = self.store.rows(
            "SELECT n.booking_id FROM booking_notices n LEFT JOIN bookings b ON b.id = n.booking_id "
            "WHERE n.state = 'due' AND n.kind = 'reminder' AND (b.id IS NULL OR b.status != 'booked' "
            "OR b.start <= ?)", (ts(now),))
        done = self.store.rows(
            "SELECT c.booking_id FROM booking_contacts c WHERE NOT EXISTS (SELECT 1 FROM booking_notices n "
            "WHERE n.booking_id = c.booking_id AND n.state IN ('due', 'sending'))")
        outcome = Outcome()
        for (booking_id,) in stale:
            outcome.records += [DropPending(booking_id, "reminder", ts(now)), ForgetContact(booking_id)]
        outcome.records += [ForgetContact(booking_id) for (booking_id,) in done]
        return outcome

    # -- any thread ---------------------------------------------------------------------------------------------

    def alert(self, code: str, message: str) -> None:
        self.failures.append({"code": code, "message": message,
                              "at": datetime.now().astimezone().isoformat(timespec="seconds")})


class Sender:
    """The thread that sends: looks for due messages on a read connection of its own, asks the writer for them
    (``claim``), sends them one by one, and tells the writer how it went (``settle``)."""

    def __init__(self, hub: Hub, notices: Notices):
        self.hub = hub
        self.notices = notices
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="vuoro-booking-notices", daemon=True)

    def start(self) -> Sender:
        self._thread.start()
        return self

    def _anything_due(self, db: sqlite3.Connection) -> bool:
        now = ts(self.hub.clock())
        return db.execute("SELECT 1 FROM booking_notices WHERE state = 'due' AND due_at <= ? LIMIT 1",
                          (now,)).fetchone() is not None

    def _run(self) -> None:
        with self.hub.store.reader() as db:  # its own read-only connection: looking costs the writer nothing
            self._loop(db)

    def _loop(self, db: sqlite3.Connection) -> None:
        contacts = -1
        while not self._stop.is_set():
            try:
                if self._anything_due(db):
                    self._send_due()
                # A contact deleted (sent, cancelled, passed): its old page images leave the log too.
                kept = db.execute("SELECT count(*) FROM booking_contacts").fetchone()[0]
                if kept < contacts and not self.hub.call(lambda engine, now: self.hub.store.scrub_log()):
                    kept = contacts  # a reader was busy: again at the next look
                contacts = kept
            except Exception:  # a hub shutting down, a store that is away: look again later
                log.exception("could not send booking messages")
            self.notices.woken.wait(POLL_S)
            self.notices.woken.clear()

    def _send_due(self) -> None:
        _, outgoing = self.hub.submit(self.notices.claim).result(WRITER_WAIT_S)
        results: list[tuple[Outgoing, str | None]] = []
        for message in outgoing:
            if self._stop.is_set():  # the hub is stopping: the rest go back to 'due', untried
                results.append((message, NOT_SENT))
                continue
            try:
                notify.deliver(self.notices.settings.notify, message.channel, message.to, message.subject,
                               message.text, key=f"vuoro-{message.id}")
                results.append((message, None))
                log.info("sent a %s (%s)", message.channel, message.kind)
            except Exception as exc:  # the gateway down or refusing: again later, never blocking anyone
                reason = notify.failure_reason(exc)
                log.warning("could not send a %s (%s): %s", message.channel, message.kind, reason)
                results.append((message, reason))
        if results:
            self.hub.submit(lambda engine, now: self.notices.settle(engine, now, results)).result(WRITER_WAIT_S)

    def stop(self) -> None:
        self._stop.set()
        self.notices.woken.set()
        self._thread.join(10)


# -- the plugin's hooks -----------------------------------------------------------------------------------------


@hookimpl
def check_config(config: SiteConfig) -> None:
    parse_settings(config)


@hookimpl
def store_schema() -> tuple[str, list[str]]:
    return "booking_notices", SCHEMA


@hookimpl
def record_writers() -> dict[type, Any]:
    return dict(WRITERS)


@hookimpl
def install(app: FastAPI, hub: Hub) -> None:
    settings = parse_settings(hub.config)
    if not settings.notify.channels:  # the site sends nothing: the page offers nothing
        app.state.booking_notices = None
        return
    notices = Notices(hub.config, hub.store, settings)
    app.state.booking_notices = notices
    hub.call(notices.start_up)
    hub.plugins.register(NoticeHooks(notices, Sender(hub, notices).start()))


class NoticeHooks:
    def __init__(self, notices: Notices, sender: Sender):
        self.notices = notices
        self.sender = sender

    @hookimpl
    def tick(self, engine: QueueEngine, now: datetime) -> Outcome:
        return self.notices.sweep(engine, now)

    @hookimpl
    def device_alerts(self) -> dict[str, list[dict[str, Any]]]:
        failures = list(self.notices.failures)
        return {"booking-notices": failures} if failures else {}

    @hookimpl
    def stop(self) -> None:
        self.sender.stop()
