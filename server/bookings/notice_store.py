"""The durable part of booking confirmations and reminders: their tables and how the writer writes them.

``booking_contacts`` holds the phone number or e-mail address a citizen gave *for these messages only*
(opt-in on the booking page), one per booking; it is deleted (``ForgetContact``) as soon as no message of
the booking is still to go — after the reminder, or after the cancellation's confirmation, or when the time
has passed. ``booking_notices`` is the schedule: one row per message with its ``due_at`` (UTC), so a hub
restart loses none and sends none twice (``state``: due → sending → sent; see notices.py for the rule).

Neither table is copied to the centre (server/uplink/outbox.py ships named tables only).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

SCHEMA: list[str] = [
    """
    CREATE TABLE booking_contacts (
        booking_id TEXT PRIMARY KEY,
        channel    TEXT NOT NULL CHECK (channel IN ('sms', 'email')),
        address    TEXT NOT NULL,                 -- personal data: deleted when nothing is left to send
        language   TEXT NOT NULL
    );
    CREATE TABLE booking_notices (
        id         TEXT PRIMARY KEY,              -- also the gateway's Idempotency-Key and the Message-ID
        booking_id TEXT NOT NULL,
        kind       TEXT NOT NULL CHECK (kind IN ('booked', 'moved', 'cancelled', 'reminder')),
        due_at     TEXT NOT NULL,                 -- ISO 8601 UTC: when it may go (again, after a failure)
        for_start  TEXT NOT NULL,                 -- the booking's start it was planned for (a moved time re-plans)
        state      TEXT NOT NULL CHECK (state IN ('due', 'sending', 'sent', 'failed', 'dropped', 'unknown')),
        tries      INTEGER NOT NULL DEFAULT 0,
        done_at    TEXT
    );
    CREATE INDEX booking_notices_due ON booking_notices (state, due_at);
    CREATE INDEX booking_notices_booking ON booking_notices (booking_id);
    """,
]

PENDING = ("due", "sending")


@dataclass(frozen=True)
class ContactRow:
    booking_id: str
    channel: str
    address: str
    language: str


@dataclass(frozen=True)
class NoticeRow:
    """A message planned, or its new state (insert or update by id)."""

    id: str
    booking_id: str
    kind: str
    due_at: str
    for_start: str
    state: str = "due"
    tries: int = 0
    done_at: str | None = None


@dataclass(frozen=True)
class DropPending:
    """The booking's messages still due (of ``kind``, or all) will not go."""

    booking_id: str
    kind: str | None
    at: str


@dataclass(frozen=True)
class ForgetContact:
    """Delete the booking's contact if no message of it is still to go (checked in SQL, after this batch's
    other writes)."""

    booking_id: str


@dataclass(frozen=True)
class InterruptedSends:
    """At start: messages that were being sent when the hub stopped. They may have gone: at most once, so they
    are never tried again (state 'unknown', shown to staff)."""

    at: str


def write_contact(db: sqlite3.Connection, r: ContactRow) -> None:
    db.execute("INSERT INTO booking_contacts (booking_id, channel, address, language) VALUES (?, ?, ?, ?) "
               "ON CONFLICT (booking_id) DO UPDATE SET channel = excluded.channel, address = excluded.address, "
               "language = excluded.language", (r.booking_id, r.channel, r.address, r.language))


def write_notice(db: sqlite3.Connection, r: NoticeRow) -> None:
    db.execute("INSERT INTO booking_notices (id, booking_id, kind, due_at, for_start, state, tries, done_at) "
               "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET due_at = excluded.due_at, "
               "for_start = excluded.for_start, state = excluded.state, tries = excluded.tries, "
               "done_at = excluded.done_at",
               (r.id, r.booking_id, r.kind, r.due_at, r.for_start, r.state, r.tries, r.done_at))


def write_drop(db: sqlite3.Connection, r: DropPending) -> None:
    db.execute("UPDATE booking_notices SET state = 'dropped', done_at = ? WHERE booking_id = ? AND state = 'due' "
               "AND (? IS NULL OR kind = ?)", (r.at, r.booking_id, r.kind, r.kind))


def write_forget(db: sqlite3.Connection, r: ForgetContact) -> None:
    db.execute("DELETE FROM booking_contacts WHERE booking_id = ? AND NOT EXISTS (SELECT 1 FROM booking_notices "
               "WHERE booking_id = ? AND state IN ('due', 'sending'))", (r.booking_id, r.booking_id))


def write_interrupted(db: sqlite3.Connection, r: InterruptedSends) -> None:
    db.execute("UPDATE booking_notices SET state = 'unknown', done_at = ? WHERE state = 'sending'", (r.at,))


WRITERS = {ContactRow: write_contact, NoticeRow: write_notice, DropPending: write_drop,
           ForgetContact: write_forget, InterruptedSends: write_interrupted}
