"""Events and sign-ups as rows: their shapes, their tables, and how the store's writer writes them.

Staff events and sign-ups are stored; feed events live in the feeds (and their copies on disk,
``feeds.FeedFetcher``), so a feed event has a stable id made from its feed, UID and occurrence.
A sign-up travels as a record in ``Outcome.records`` and is committed with its batch.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from server.store import SQLiteStore, ts
from server.uplink.outbox import SIGNUP, STAFF_EVENT

SCHEDULED, SOLD_OUT, CANCELLED = "scheduled", "sold_out", "cancelled"
EVENT_STATES = (SCHEDULED, SOLD_OUT, CANCELLED)

SCHEMA: list[str] = [
    """
    CREATE TABLE events_local (
        id           TEXT PRIMARY KEY,
        site         TEXT NOT NULL,
        title        TEXT NOT NULL,
        start        TEXT NOT NULL,                 -- ISO 8601 UTC
        "end"        TEXT NOT NULL,
        room         TEXT,
        state        TEXT NOT NULL CHECK (state IN ('scheduled','sold_out','cancelled')),
        seats        INTEGER CHECK (seats IS NULL OR seats >= 0),
        waiting_list INTEGER NOT NULL DEFAULT 0 CHECK (waiting_list >= 0),
        description  TEXT,
        created_at   TEXT NOT NULL
    );
    CREATE TABLE event_signups (
        id            TEXT PRIMARY KEY,
        site          TEXT NOT NULL,
        event_id      TEXT NOT NULL,                -- a staff event's id, or a feed occurrence's stable id
        code          TEXT NOT NULL,
        seat          INTEGER CHECK (seat IS NULL OR seat >= 1),
        waiting_place INTEGER CHECK (waiting_place IS NULL OR waiting_place >= 1),
        language      TEXT,
        idem_key      TEXT,
        created_at    TEXT NOT NULL,
        CHECK ((seat IS NULL) <> (waiting_place IS NULL)),
        UNIQUE (site, code),
        UNIQUE (site, event_id, seat),
        UNIQUE (site, event_id, waiting_place),
        UNIQUE (site, idem_key)
    );
    CREATE INDEX event_signups_event ON event_signups (site, event_id);
    """,
    # 2: attendance. A visitor checks in at the kiosk with the sign-up's code on the event's day.
    """
    ALTER TABLE event_signups ADD COLUMN attended_at TEXT;    -- ISO 8601 UTC; NULL: not (yet) checked in
    CREATE INDEX event_signups_attended ON event_signups (site, attended_at);
    """,
    # 3: a name staff may write down with a sign-up they make for a caller (staff only: never on a screen,
    # a receipt or MQTT).
    """
    ALTER TABLE event_signups ADD COLUMN name TEXT;
    """,
    # 4: sign-ups given up (their row is deleted, its seat goes on): what the centre is told, again in every
    # re-snapshot, so it forgets them too (server/uplink/outbox.py). No code, no name: only that it is gone.
    """
    CREATE TABLE event_signups_cancelled (
        id           TEXT PRIMARY KEY,
        site         TEXT NOT NULL,
        event_id     TEXT NOT NULL,
        cancelled_at TEXT NOT NULL                  -- ISO 8601 UTC
    );
    """,
]



@dataclass
class Event:
    id: str
    source: str  # a feed's name, or "staff"
    title: str
    start: datetime  # aware
    end: datetime
    room: str | None = None
    state: str = SCHEDULED
    all_day: bool = False
    seats: int | None = None  # sign-ups at the kiosk when set
    waiting_list: int = 0
    url: str | None = None
    description: str | None = None
    tentative: bool = False  # STATUS:TENTATIVE in a feed: shown as "to be confirmed"
    uid: str = ""  # a feed event's UID (the same for every occurrence of a series)



@dataclass(frozen=True)
class LocalEventRow:
    site: str
    event: Event
    created_at: datetime

    def outbox_keys(self) -> tuple[tuple[str, str], ...]:
        """What the centre is sent of it (server/uplink/outbox.py reads the row back as written)."""
        return ((STAFF_EVENT, self.event.id),)


@dataclass(frozen=True)
class SignupRow:
    id: str
    site: str
    event_id: str
    code: str
    seat: int | None
    waiting_place: int | None
    language: str
    idem_key: str | None
    created_at: datetime
    name: str | None = None

    def outbox_keys(self) -> tuple[tuple[str, str], ...]:
        return ((SIGNUP, self.id),)


@dataclass(frozen=True)
class SignupCancelRow:
    """A sign-up given up (staff cancelled it), and the first on the waiting list moved up to its seat: one
    record, so both are written in the same transaction."""

    signup_id: str
    moved_id: str | None = None  # the sign-up that takes the seat
    seat: int | None = None
    at: datetime | None = None  # when it was given up

    def outbox_keys(self) -> tuple[tuple[str, str], ...]:
        return ((SIGNUP, self.signup_id),) + (((SIGNUP, self.moved_id),) if self.moved_id else ())


@dataclass(frozen=True)
class ForgetSignupNames:
    """Names staff wrote with sign-ups whose event is over: set to NULL (``Programme.forget_names``)."""

    signup_ids: tuple[str, ...]


@dataclass(frozen=True)
class AttendanceRow:
    """A visitor checked in at the kiosk for the event they signed up for."""

    signup_id: str
    at: datetime

    def outbox_keys(self) -> tuple[tuple[str, str], ...]:
        return ((SIGNUP, self.signup_id),)


@dataclass(frozen=True)
class Signup:
    """One sign-up as the check-in and the staff page read it."""

    id: str
    event_id: str
    code: str
    seat: int | None
    waiting_place: int | None
    attended_at: datetime | None
    name: str | None = None
    created_at: datetime | None = None


def write_local_event(db: sqlite3.Connection, record: LocalEventRow) -> None:
    e = record.event
    db.execute('INSERT INTO events_local (id, site, title, start, "end", room, state, seats, waiting_list, '
               "description, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET "
               'title = excluded.title, start = excluded.start, "end" = excluded."end", room = excluded.room, '
               "state = excluded.state, seats = excluded.seats, waiting_list = excluded.waiting_list, "
               "description = excluded.description",
               (e.id, record.site, e.title, ts(e.start), ts(e.end), e.room, e.state, e.seats, e.waiting_list,
                e.description, ts(record.created_at)))


def write_signup(db: sqlite3.Connection, record: SignupRow) -> None:
    db.execute("INSERT INTO event_signups (id, site, event_id, code, seat, waiting_place, language, idem_key, "
               "created_at, name) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
               (record.id, record.site, record.event_id, record.code, record.seat, record.waiting_place,
                record.language, record.idem_key, ts(record.created_at), record.name))


def write_signup_cancel(db: sqlite3.Connection, record: SignupCancelRow) -> None:
    # Kept as given up (for the centre: server/uplink/outbox.py), then the seat is freed before it is given on:
    # UNIQUE (site, event_id, seat) holds at every step.
    db.execute("INSERT OR IGNORE INTO event_signups_cancelled (id, site, event_id, cancelled_at) SELECT id, site, "
               "event_id, ? FROM event_signups WHERE id = ?", (ts(record.at) or ts(datetime.now(UTC)),
                                                                 record.signup_id))
    db.execute("DELETE FROM event_signups WHERE id = ?", (record.signup_id,))
    if record.moved_id is not None:
        moved = db.execute("UPDATE event_signups SET seat = ?, waiting_place = NULL WHERE id = ? AND seat IS NULL",
                           (record.seat, record.moved_id))
        if moved.rowcount != 1:  # memory and disk disagree: fail the batch, the hub reloads from the store
            raise sqlite3.IntegrityError(f"sign-up {record.moved_id} could not move up to seat {record.seat}")


def write_forget_names(db: sqlite3.Connection, record: ForgetSignupNames) -> None:
    db.executemany("UPDATE event_signups SET name = NULL WHERE id = ?", [(i,) for i in record.signup_ids])


def write_attendance(db: sqlite3.Connection, record: AttendanceRow) -> None:
    # The first check-in counts: a second scan of the same code changes nothing.
    db.execute("UPDATE event_signups SET attended_at = ? WHERE id = ? AND attended_at IS NULL",
               (ts(record.at), record.signup_id))


# -- reading, on the writer thread (the programme's commands run there) -------------------------------------


def local_events(store: SQLiteStore, site: str, tz: ZoneInfo) -> list[Event]:
    """The events staff entered (cancelled ones too: they are shown as cancelled), in the site's zone."""
    return [Event(eid, "staff", title, datetime.fromisoformat(start).astimezone(tz),
                  datetime.fromisoformat(end).astimezone(tz), room, state, False, seats, waiting, None, description)
            for eid, title, start, end, room, state, seats, waiting, description in store.rows(
                'SELECT id, title, start, "end", room, state, seats, waiting_list, description FROM events_local '
                "WHERE site = ?", (site,))]


def signups_of_site(store: SQLiteStore, site: str) -> list[Signup]:
    """Every sign-up of this site as it is now, oldest first."""
    return [_signup(row) for row in store.rows(
        "SELECT id, event_id, code, seat, waiting_place, attended_at, name, created_at FROM event_signups "
        "WHERE site = ? ORDER BY created_at, id", (site,))]


def _signup(row: tuple[Any, ...]) -> Signup:
    return Signup(row[0], row[1], row[2], row[3], row[4], datetime.fromisoformat(row[5]) if row[5] else None,
                  row[6], datetime.fromisoformat(row[7]) if row[7] else None)


def signup_by_key(store: SQLiteStore, site: str, key: str) -> tuple[Any, ...] | None:
    """(event id, code, seat, waiting-list place) of the sign-up made with this Idempotency-Key, if any."""
    return store.row("SELECT event_id, code, seat, waiting_place FROM event_signups WHERE site = ? AND idem_key = ?",
                     (site, key))


def code_in_use(store: SQLiteStore, site: str, code: str) -> bool:
    return store.row("SELECT 1 FROM event_signups WHERE site = ? AND code = ?", (site, code)) is not None
