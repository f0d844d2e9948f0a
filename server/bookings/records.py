"""The bookings' rows: their shapes, their tables, and how the store's writer writes them.

A change to a booking travels as a record in ``Outcome.records`` and is written by the
hub's writer thread in the same transaction as the tickets of that batch (``store.writers``).
The store's UNIQUE (site, service, slot_start, place) on ``booking_claims`` is the last line
of defence against two visitors in one place, as UNIQUE (site, letter, day, number) is for
tickets.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from server.store import SQLiteStore, dt, ts

BOOKED, CHECKED_IN, NO_SHOW, CANCELLED = "booked", "checked_in", "no_show", "cancelled"
BOOKING_STATUSES = (BOOKED, CHECKED_IN, NO_SHOW, CANCELLED)
ORIGINS = ("staff", "kiosk", "here_and_now", "import", "web")

SCHEMA: list[str] = [
    """
    CREATE TABLE bookings (
        id            TEXT PRIMARY KEY,
        site          TEXT NOT NULL,                -- another branch's id for rows of a shared import
        code          TEXT NOT NULL CHECK (length(code) BETWEEN 4 AND 12),
        service       TEXT NOT NULL,
        start         TEXT NOT NULL,                -- ISO 8601 UTC
        "end"         TEXT NOT NULL,
        day           TEXT NOT NULL,                -- the site's local date of start
        slots         INTEGER NOT NULL DEFAULT 1 CHECK (slots >= 1),
        status        TEXT NOT NULL CHECK (status IN ('booked','checked_in','no_show','cancelled')),
        origin        TEXT NOT NULL CHECK (origin IN ('staff','kiosk','here_and_now','import')),
        external_id   TEXT,
        name          TEXT,                         -- personal data: staff only, purged after retention
        phone         TEXT,
        note          TEXT,
        language      TEXT,
        ticket_id     TEXT REFERENCES tickets (id),
        checked_in_at TEXT,
        created_at    TEXT NOT NULL,
        cancelled_at  TEXT,
        idem_key      TEXT,
        UNIQUE (site, code),
        UNIQUE (site, external_id),
        UNIQUE (site, idem_key)
    );
    CREATE INDEX bookings_day ON bookings (site, day);
    CREATE INDEX bookings_ticket ON bookings (ticket_id);
    CREATE TABLE booking_claims (
        site       TEXT NOT NULL,
        service    TEXT NOT NULL,
        slot_start TEXT NOT NULL,                   -- ISO 8601 UTC of the grid slot
        place      INTEGER NOT NULL CHECK (place >= 1),
        booking_id TEXT NOT NULL REFERENCES bookings (id) ON DELETE CASCADE,
        PRIMARY KEY (site, service, slot_start, place)
    );
    CREATE INDEX booking_claims_booking ON booking_claims (booking_id);
    """,
    # 2: bookings made by citizens on the public page (origin 'web') and their e-mail address, where a
    # service asks for one. SQLite cannot change a CHECK in place: the table is rebuilt. The claims go first
    # (dropping bookings would cascade into them) and come back unchanged.
    """
    CREATE TEMP TABLE claims_kept AS SELECT * FROM booking_claims;
    DROP TABLE booking_claims;
    CREATE TABLE bookings_v2 (
        id            TEXT PRIMARY KEY,
        site          TEXT NOT NULL,
        code          TEXT NOT NULL CHECK (length(code) BETWEEN 4 AND 12),
        service       TEXT NOT NULL,
        start         TEXT NOT NULL,
        "end"         TEXT NOT NULL,
        day           TEXT NOT NULL,
        slots         INTEGER NOT NULL DEFAULT 1 CHECK (slots >= 1),
        status        TEXT NOT NULL CHECK (status IN ('booked','checked_in','no_show','cancelled')),
        origin        TEXT NOT NULL CHECK (origin IN ('staff','kiosk','here_and_now','import','web')),
        external_id   TEXT,
        name          TEXT,
        phone         TEXT,
        note          TEXT,
        language      TEXT,
        ticket_id     TEXT REFERENCES tickets (id),
        checked_in_at TEXT,
        created_at    TEXT NOT NULL,
        cancelled_at  TEXT,
        idem_key      TEXT,
        email         TEXT,                         -- personal data, like name and phone
        UNIQUE (site, code),
        UNIQUE (site, external_id),
        UNIQUE (site, idem_key)
    );
    INSERT INTO bookings_v2 SELECT *, NULL FROM bookings;
    DROP TABLE bookings;
    ALTER TABLE bookings_v2 RENAME TO bookings;
    CREATE INDEX bookings_day ON bookings (site, day);
    CREATE INDEX bookings_ticket ON bookings (ticket_id);
    CREATE INDEX bookings_contact ON bookings (site, service, day, phone, email);
    CREATE TABLE booking_claims (
        site       TEXT NOT NULL,
        service    TEXT NOT NULL,
        slot_start TEXT NOT NULL,
        place      INTEGER NOT NULL CHECK (place >= 1),
        booking_id TEXT NOT NULL REFERENCES bookings (id) ON DELETE CASCADE,
        PRIMARY KEY (site, service, slot_start, place)
    );
    CREATE INDEX booking_claims_booking ON booking_claims (booking_id);
    INSERT INTO booking_claims SELECT * FROM claims_kept;
    DROP TABLE claims_kept;
    """,
    # 3: the days the centre handed over to this branch (docs/bookings.md "One calendar"), written in the same
    # transaction as the bookings the handover brought: a branch restarted while cut off from the centre still
    # sells its own day instead of only its reserve.
    """
    CREATE TABLE booking_owned_days (
        site     TEXT NOT NULL,
        day      TEXT NOT NULL,                     -- the site's local date
        taken_at TEXT NOT NULL,
        PRIMARY KEY (site, day)
    );
    """,
    # 4: the centre's bookings of this branch on days it has not taken over yet, as the centre last answered
    # (personal fields included: the staff page shows them beside the branch's own). A copy, replaced whole at
    # every answer that differs; read while the centre cannot be reached.
    """
    CREATE TABLE centre_bookings_ahead (
        id   TEXT PRIMARY KEY,
        day  TEXT NOT NULL,
        body TEXT NOT NULL                          -- the centre's JSON of the booking
    );
    CREATE TABLE centre_ahead_fetched (
        site TEXT PRIMARY KEY,
        at   TEXT NOT NULL                          -- when the centre last answered
    );
    """,
]

COLUMNS = ("id", "site", "code", "service", "start", "end", "day", "slots", "status", "origin", "external_id",
           "name", "phone", "note", "language", "ticket_id", "checked_in_at", "created_at", "cancelled_at",
           "idem_key", "email")
_QUOTED = ", ".join(f'"{c}"' for c in COLUMNS)  # "end" is a keyword in SQL
_SELECT = f"SELECT {_QUOTED} FROM bookings"


@dataclass
class Booking:
    id: str
    site: str
    code: str
    service: str
    start: datetime  # aware, UTC
    end: datetime
    day: date  # the site's local date of start
    slots: int
    status: str
    origin: str
    created_at: datetime
    external_id: str | None = None
    name: str | None = None
    phone: str | None = None
    note: str | None = None
    language: str | None = None
    ticket_id: str | None = None
    checked_in_at: datetime | None = None
    cancelled_at: datetime | None = None
    idem_key: str | None = None
    email: str | None = None
    claims: list[tuple[str, int]] = field(default_factory=list)  # (slot_start ISO UTC, place)


@dataclass(frozen=True)
class BookingRow:
    """Write one booking (insert or update); ``claims`` replaces its slot places when not None."""

    booking: Booking
    claims: tuple[tuple[str, int], ...] | None = None

    def outbox(self) -> tuple[str, str, dict[str, Any]]:
        """The row the uplink ships to the centre (a branch of a centre's calendar): kind, key, body."""
        return "booking", self.booking.id, booking_body(self.booking)


def booking_body(b: Booking) -> dict[str, Any]:
    """A booking as the centre's calendar keeps it (``central/calendar.py``), personal fields included: staff see
    the same calendar from every branch."""
    return {"id": b.id, "site": b.site, "code": b.code, "service": b.service, "start": ts(b.start), "end": ts(b.end),
            "day": b.day.isoformat(), "slots": b.slots, "status": b.status, "origin": b.origin, "name": b.name,
            "phone": b.phone, "email": b.email, "note": b.note, "language": b.language, "ticket_id": b.ticket_id,
            "checked_in_at": ts(b.checked_in_at), "created_at": ts(b.created_at), "cancelled_at": ts(b.cancelled_at)}


@dataclass(frozen=True)
class PurgePersonalData:
    site: str
    before_day: str  # bookings on days before this lose name, phone and note


def write_booking(db: sqlite3.Connection, record: BookingRow) -> None:
    b = record.booking
    row = (b.id, b.site, b.code, b.service, ts(b.start), ts(b.end), b.day.isoformat(), b.slots, b.status,
           b.origin, b.external_id, b.name, b.phone, b.note, b.language, b.ticket_id, ts(b.checked_in_at),
           ts(b.created_at), ts(b.cancelled_at), b.idem_key, b.email)
    updates = ", ".join(f'"{c}" = excluded."{c}"' for c in COLUMNS[1:])
    db.execute(f"INSERT INTO bookings ({_QUOTED}) VALUES ({', '.join('?' for _ in COLUMNS)}) "
               f"ON CONFLICT (id) DO UPDATE SET {updates}", row)
    if record.claims is not None:
        db.execute("DELETE FROM booking_claims WHERE booking_id = ?", (b.id,))
        db.executemany("INSERT INTO booking_claims (site, service, slot_start, place, booking_id) "
                       "VALUES (?, ?, ?, ?, ?)", [(b.site, b.service, s, p, b.id) for s, p in record.claims])


@dataclass(frozen=True)
class OwnedDay:
    """The centre handed ``day`` over: from now on all its places are this branch's (kept across restarts)."""

    site: str
    day: date
    at: datetime


def write_owned_day(db: sqlite3.Connection, record: OwnedDay) -> None:
    db.execute("INSERT INTO booking_owned_days (site, day, taken_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
               (record.site, record.day.isoformat(), ts(record.at)))


@dataclass(frozen=True)
class CentreAhead:
    """The centre's bookings of this branch on days not taken over, as it answered at ``at`` (replaces all)."""

    site: str
    rows: tuple[dict[str, Any], ...]
    at: datetime


def write_centre_ahead(db: sqlite3.Connection, record: CentreAhead) -> None:
    db.execute("DELETE FROM centre_bookings_ahead")
    db.executemany("INSERT INTO centre_bookings_ahead (id, day, body) VALUES (?, ?, ?)",
                   [(r["id"], r["day"], json.dumps(r)) for r in record.rows])
    db.execute("INSERT INTO centre_ahead_fetched (site, at) VALUES (?, ?) ON CONFLICT (site) DO UPDATE SET "
               "at = excluded.at", (record.site, ts(record.at)))


def owned_days_since(store: SQLiteStore, site: str, since: date) -> set[date]:
    return {date.fromisoformat(d) for d, in store.rows("SELECT day FROM booking_owned_days WHERE site = ? AND "
                                                       "day >= ?", (site, since.isoformat()))}


def centre_ahead(store: SQLiteStore, site: str) -> tuple[list[dict[str, Any]], datetime | None]:
    """The centre's bookings of later days as last answered, and when (None: never)."""
    rows = [json.loads(body) for body, in store.rows("SELECT body FROM centre_bookings_ahead ORDER BY day, id", ())]
    at = store.row("SELECT at FROM centre_ahead_fetched WHERE site = ?", (site,))
    return rows, dt(at[0]) if at else None


@dataclass(frozen=True)
class OldNoShows:
    """Bookings of days before ``before_day`` that nobody checked in for (the hub may have been off)."""

    site: str
    before_day: str


def write_old_no_shows(db: sqlite3.Connection, record: OldNoShows) -> None:
    db.execute("UPDATE bookings SET status = 'no_show' WHERE site = ? AND day < ? AND status = 'booked'",
               (record.site, record.before_day))


def write_purge(db: sqlite3.Connection, record: PurgePersonalData) -> None:
    db.execute("DELETE FROM booking_owned_days WHERE site = ? AND day < ?", (record.site, record.before_day))
    db.execute("DELETE FROM centre_bookings_ahead WHERE day < ?", (record.before_day,))
    db.execute("UPDATE bookings SET name = NULL, phone = NULL, note = NULL, email = NULL WHERE site = ? AND day < ? "
               "AND (name IS NOT NULL OR phone IS NOT NULL OR note IS NOT NULL OR email IS NOT NULL)",
               (record.site, record.before_day))


def from_row(row: tuple[Any, ...]) -> Booking:
    r = dict(zip(COLUMNS, row, strict=True))
    return Booking(
        id=r["id"], site=r["site"], code=r["code"], service=r["service"], start=dt(r["start"]),  # type: ignore
        end=dt(r["end"]), day=date.fromisoformat(r["day"]), slots=r["slots"], status=r["status"],  # type: ignore
        origin=r["origin"], created_at=dt(r["created_at"]), external_id=r["external_id"],  # type: ignore
        name=r["name"], phone=r["phone"], note=r["note"], language=r["language"], ticket_id=r["ticket_id"],
        checked_in_at=dt(r["checked_in_at"]), cancelled_at=dt(r["cancelled_at"]), idem_key=r["idem_key"],
        email=r["email"],
    )


# -- reading, on the writer thread (the book's commands run there) ------------------------------------------


def bookings_since(store: SQLiteStore, since: date) -> list[Booking]:
    """Every site's bookings from ``since`` on (a shared import may hold another branch's)."""
    return [from_row(r) for r in store.rows(f"{_SELECT} WHERE day >= ?", (since.isoformat(),))]


def claims_since(store: SQLiteStore, site: str, since: datetime) -> list[tuple[str, str, int, str]]:
    """(service, slot start, place, booking id) of this site's slot places from ``since`` on."""
    return store.rows("SELECT service, slot_start, place, booking_id FROM booking_claims WHERE site = ? AND "
                      "slot_start >= ?", (site, ts(since)))  # type: ignore[return-value]


def find(store: SQLiteStore, where: str, *args: Any) -> Booking | None:
    """The first booking ``where`` holds (an SQL condition on the bookings table, with ? for ``args``)."""
    row = store.row(f"{_SELECT} WHERE {where} LIMIT 1", args)
    return from_row(row) if row else None


def bookings_on(store: SQLiteStore, site: str, day: date) -> list[Booking]:
    return [from_row(r) for r in store.rows(f"{_SELECT} WHERE site = ? AND day = ?", (site, day.isoformat()))]


def code_in_use(store: SQLiteStore, site: str, code: str) -> bool:
    return store.row("SELECT 1 FROM bookings WHERE site = ? AND code = ?", (site, code)) is not None


def booked_before(store: SQLiteStore, site: str, day: str) -> bool:
    """Whether a booking of a day before ``day`` is still waiting for a check-in that can no longer come."""
    return store.row("SELECT 1 FROM bookings WHERE site = ? AND day < ? AND status = 'booked' LIMIT 1",
                     (site, day)) is not None


def personal_data_before(store: SQLiteStore, site: str, day: str) -> bool:
    """Whether a booking of a day before ``day`` still holds a name, a phone number or a note."""
    return store.row("SELECT 1 FROM bookings WHERE site = ? AND day < ? AND (name IS NOT NULL OR phone IS NOT NULL "
                     "OR note IS NOT NULL OR email IS NOT NULL) LIMIT 1", (site, day)) is not None
