"""The outbox: every row the centre needs, written by the writer in the SAME transaction as the change.

A site with ``[central]`` opens its store with ``outbox=True``; from then on ``SQLiteStore.save``
adds one outbox row per changed ticket, per ticket history entry and per call, inside the batch's
transaction: the change and its outbox row are committed together or not at all. The uplink
(``server/uplink/shipper.py``) reads the outbox on a read-only connection of its own and ships it in
``seq`` order; the centre's acknowledgement comes back to the writer as a ``ShippedMark`` record,
which moves the shipped position and trims the rows below it, again in one transaction.

``seq`` is the revision: SQLite's AUTOINCREMENT never hands out a number twice in one store file,
even after rows are trimmed, so a later row of the same ticket always has a larger ``seq``. A store
file's outbox is a *stream* with an id of its own (``uplink_state.stream``): a wiped or replaced hub
starts a new stream at 1, which the centre keeps apart from the old one instead of taking it for
rows it already has. When the centre has lost rows it had acknowledged (409), the branch begins a new
stream of the same store and ships everything again (``Resnapshot``).

Each row names what it is (``kind``) and a key that is stable across re-sends (a ticket's, a call's, a booking's,
a staff event's or a sign-up's id, ``<ticket id>/<history line id>/<at>``, ``<origin>/<row id>/<at>`` for feedback
and device status,
the origin being the store file's own id, kept across streams: a wiped hub's new file, or one restored
from a backup, numbers its rows again, never at the same microsecond),
so the centre upserts a ticket only with a newer ``seq`` and inserts any other row at most once.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from server.engine import Call, Outcome, Ticket

TICKET, EVENT, CALL, FEEDBACK, DEVICE_STATUS = "ticket", "event", "call", "feedback", "device_status"
BOOKING = "booking"  # a booking's current state (a branch of the centre's calendar; key: the booking's id)
# What's on (server/events): an event staff entered, and a sign-up's current state (or that it was given up), each
# keyed by its id. ``event`` is a ticket's history line, older than these.
STAFF_EVENT, SIGNUP = "staff_event", "signup"
ROW_KINDS = (TICKET, EVENT, CALL, FEEDBACK, DEVICE_STATUS, BOOKING, STAFF_EVENT, SIGNUP)

# Rows that plugins write (statistics' tables, server/stats/records.py) and the centre needs: copied into the
# outbox by one INSERT … SELECT per table, like the history lines. A table that is not there (its plugin is not
# installed) ships nothing.
_PLUGIN_ROWS = {
    FEEDBACK: ("stats_feedback", "json_object('at', at, 'rating', rating, 'faces', faces, 'service', service, "
                                 "'device', device)"),
    DEVICE_STATUS: ("stats_device_status", "json_object('device', device, 'kind', kind, 'at', at, 'online', "
                                           "json(CASE online WHEN 0 THEN 'false' ELSE 'true' END), 'printer', "
                                           "printer, 'detail', detail)"),
}


def _ts(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat() if value else None


def ticket_body(t: Ticket) -> dict[str, Any]:
    """A ticket as the centre keeps it: everything but its tracking token (the visitor's phone link)."""
    return {"id": t.id, "service": t.service, "letter": t.letter, "number": t.number, "day": t.day.isoformat(),
            "label": t.label, "language": t.language, "status": t.status, "origin": t.origin,
            "queued_at": _ts(t.queued_at), "issued_at": _ts(t.issued_at), "due_at": _ts(t.due_at),
            "counter": t.counter, "called_at": _ts(t.called_at), "finished_at": _ts(t.finished_at),
            "recalls": t.recalls, "transfers": t.transfers, "channel": t.channel}


def call_body(c: Call) -> dict[str, Any]:
    return {"id": c.call_id, "ticket_id": c.ticket_id, "ticket": c.ticket, "service": c.service,
            "counter": c.counter, "at": _ts(c.at), "recall": c.recall}


# Keys of copied rows: a file restored from a backup, or a wiped hub's new one, numbers its rows again, but never
# at the same microsecond; the origin is the store file's own id (uplink_state.origin), kept across its streams.
_EVENT_KEY = "ticket_id || '/' || id || '/' || at"
_ROW_KEY = "? || '/' || id || '/' || at"

_BOOKING_JSON = ("json_object('id', id, 'site', site, 'code', code, 'service', service, 'start', start, "
                 "'end', \"end\", 'day', day, 'slots', slots, 'status', status, 'origin', origin, 'name', name, "
                 "'phone', phone, 'email', email, "
                 "'note', note, 'language', language, 'ticket_id', ticket_id, 'checked_in_at', "
                 "checked_in_at, 'created_at', created_at, 'cancelled_at', cancelled_at)")

# A history line as SQLite builds it, from the row the store has just written (its id is the key's half).
_EVENT_JSON = ("json_object('ticket_id', ticket_id, 'kind', kind, 'at', at, 'service', service, "
               "'counter', counter, 'detail', detail)")

# What's on, as the centre keeps it (server/events/records.py's tables): what its statistics count, nothing
# personal. A sign-up goes without its code (the visitor's check-in, of no use elsewhere) and without the name staff
# may write with it (kept at the branch until a day after the event): the centre counts, it shows nobody.
_STAFF_EVENT_JSON = ("json_object('id', id, 'title', title, 'start', start, 'end', \"end\", 'room', room, "
                     "'state', state, 'seats', seats, 'waiting_list', waiting_list, 'created_at', created_at)")
_SIGNUP_JSON = ("json_object('id', id, 'event_id', event_id, 'seat', seat, 'waiting_place', waiting_place, "
                "'language', language, 'created_at', created_at, 'attended_at', attended_at)")
_SIGNUP_GONE_JSON = ("json_object('id', id, 'event_id', event_id, 'cancelled_at', cancelled_at, "
                     "'cancelled', json('true'))")

# Rows a record names by kind and key (``outbox_keys()``: what's on), read back as the writer left them in this
# transaction: from the first of these tables that has the key (a sign-up given up: its tombstone).
_READ_BACK: dict[str, tuple[tuple[str, str], ...]] = {
    STAFF_EVENT: (("events_local", _STAFF_EVENT_JSON),),
    SIGNUP: (("event_signups", _SIGNUP_JSON), ("event_signups_cancelled", _SIGNUP_GONE_JSON)),
}


def positions(db: sqlite3.Connection, seen: dict[int, list[str]] | None = None) -> dict[str, int]:
    """The largest row id of each table whose new rows are copied into the outbox (``ticket_log`` and the
    plugins' tables that exist), taken in the batch's transaction before it writes. Which tables exist is
    looked up again only when the schema changed (a plugin's migration): ``seen`` is the store's own memory
    of it (schema version → tables)."""
    version = db.execute("PRAGMA schema_version").fetchone()[0]
    tables = seen.get(version) if seen is not None else None
    if tables is None:
        tables = ["ticket_log"] + [name for name, in db.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name IN (?, ?)",
            tuple(table for table, _ in _PLUGIN_ROWS.values()))]
        if seen is not None:
            seen.clear()
            seen[version] = tables
    return {table: db.execute(f"SELECT COALESCE(MAX(id), 0) FROM {table}").fetchone()[0] for table in tables}


def write(db: sqlite3.Connection, outcomes: Sequence[Outcome], before: dict[str, int], origin: str) -> int:
    """Add the outbox rows of this batch (on the writer, inside its transaction); how many were added.

    ``before`` is ``positions`` before the batch wrote: the history lines and plugin rows above it are this
    batch's, each table's copied by one INSERT … SELECT. ``origin``: the store file's, for the plugin rows' keys.
    """
    at = datetime.now(UTC).isoformat()  # the wall clock, not the hub's: the centre measures lag by it
    tickets = {t.id: t for o in outcomes for t in (*o.created, *o.tickets)}  # the last state of each
    rows = [(TICKET, t.id, json.dumps(ticket_body(t)), at) for t in tickets.values()]
    rows += [(CALL, c.call_id, json.dumps(call_body(c)), at) for o in outcomes for c in o.calls]
    # Records that say what the centre needs of them (a booking row: ``outbox()``), in the batch's order; a booking
    # changed twice in one batch ships twice, the later row last, and the centre merges both. Records that name
    # rows (``outbox_keys()``: events and sign-ups) have them read back once each, as this batch left them.
    named: dict[tuple[str, str], None] = {}
    for o in outcomes:
        for record in o.records:
            shipped = getattr(record, "outbox", None)
            if shipped is not None:
                kind, key, body = shipped()
                rows.append((kind, key, json.dumps(body), at))
            keys = getattr(record, "outbox_keys", None)
            if keys is not None:
                named.update(dict.fromkeys(keys()))
    rows += [(kind, key, body, at) for kind, key in named for body in (read_back(db, kind, key),) if body]
    if rows:
        db.executemany("INSERT INTO outbox (kind, key, body, at) VALUES (?, ?, ?, ?)", rows)
    copied = db.execute(f"INSERT INTO outbox (kind, key, body, at) SELECT '{EVENT}', {_EVENT_KEY}, "
                        f"{_EVENT_JSON}, ? FROM ticket_log WHERE id > ? ORDER BY id",
                        (at, before.get("ticket_log", 0))).rowcount
    for kind, (table, body) in _PLUGIN_ROWS.items():
        if table in before:
            copied += db.execute(f"INSERT INTO outbox (kind, key, body, at) SELECT '{kind}', {_ROW_KEY}, {body}, "
                                 f"? FROM {table} WHERE id > ? ORDER BY id", (origin, at, before[table])).rowcount
    return len(rows) + max(0, copied)


def read_back(db: sqlite3.Connection, kind: str, key: str) -> str | None:
    """The JSON body of the row of ``kind`` with this id, as the store holds it now (None: nowhere)."""
    for table, body in _READ_BACK[kind]:
        found = db.execute(f"SELECT {body} FROM {table} WHERE id = ?", (key,)).fetchone()
        if found:
            return str(found[0])
    return None


def start_stream(db: sqlite3.Connection, site: str) -> str:
    """The store file's origin (the first half of its plugin rows' keys), begun on first use with a stream and
    everything already in the store put in the outbox (a site that joins a centre ships its history). In one
    transaction, before the writer runs."""
    row = db.execute("SELECT origin FROM uplink_state WHERE site = ?", (site,)).fetchone()
    if row:
        return str(row[0])
    origin = uuid.uuid4().hex
    db.execute("BEGIN IMMEDIATE")
    try:
        db.execute("INSERT INTO uplink_state (site, origin, stream, shipped) VALUES (?, ?, ?, 0)",
                   (site, origin, uuid.uuid4().hex))
        snapshot(db, site, origin)
        mark_sources(db, site, [table for table, *_ in _SNAPSHOT_SOURCES])
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    return origin


def snapshot(db: sqlite3.Connection, site: str, origin: str) -> int:
    """Put every ticket (its current state), history line, call, feedback tap, device status change, booking, staff
    event and sign-up of the store in the outbox, inside the caller's transaction; how many rows. Keys are the same
    as when they were first written, so the centre stores nothing twice. (A re-snapshot copies the same sources in
    chunks.)"""
    at = datetime.now(UTC).isoformat()
    existing = {name for name, in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    count = 0
    for table, kind, key, body, mine in _SNAPSHOT_SOURCES:
        if table in existing:
            count += db.execute(f"INSERT INTO outbox (kind, key, body, at) SELECT '{kind}', {key}, {body}, :at "
                                f"FROM {table} WHERE {mine} ORDER BY rowid",
                                {"at": at, "site": site, "origin": origin}).rowcount
    return count


@dataclass(frozen=True)
class Resnapshot:
    """The centre cannot go on with this stream (409: it lost rows it had acknowledged, or this store went back to
    a backup): begin a new stream and ship the whole store again."""

    site: str


# A re-snapshot is copied in chunks of this many source rows, each in a transaction of its own, so the writer is
# never held for long: a year of a busy branch in one transaction held every kiosk for 4.85 s (bench/RESULTS.md).
SNAPSHOT_CHUNK_ROWS = 250

# What a snapshot copies, in the order it ships them (tickets before what refers to them): the source table, the
# outbox kind, key and body as SQL over that table's row, and which of its rows are this site's.
_SNAPSHOT_SOURCES: tuple[tuple[str, str, str, str, str], ...] = (
    ("tickets", TICKET, "id", "json_object('id', id, 'service', service, 'letter', letter, 'number', number, 'day', "
     "day, 'label', label, 'language', language, 'status', status, 'origin', origin, 'queued_at', queued_at, "
     "'issued_at', issued_at, 'due_at', due_at, 'counter', counter, 'called_at', called_at, 'finished_at', "
     "finished_at, 'recalls', recalls, 'transfers', transfers)", "site = :site"),
    ("calls", CALL, "id", "json_object('id', id, 'ticket_id', ticket_id, 'ticket', ticket, 'service', service, "
     "'counter', counter, 'at', at, 'recall', json(CASE recall WHEN 0 THEN 'false' ELSE 'true' END))",
     "site = :site"),
    ("ticket_log", EVENT, _EVENT_KEY, _EVENT_JSON,
     "EXISTS (SELECT 1 FROM tickets WHERE tickets.id = ticket_log.ticket_id AND tickets.site = :site)"),
    *((table, kind, ":origin || '/' || id || '/' || at", body, "site = :site")
      for kind, (table, body) in _PLUGIN_ROWS.items()),
    # Bookings in their current state (the shape of ``records.booking_body``): the centre's calendar merges them
    ("bookings", BOOKING, "id", _BOOKING_JSON, "site = :site"),
    # What's on: staff events, sign-ups as they are, and those given up (the centre forgets them). Added last: a
    # re-snapshot's plan names sources by their place here.
    ("events_local", STAFF_EVENT, "id", _STAFF_EVENT_JSON, "site = :site"),
    ("event_signups", SIGNUP, "id", _SIGNUP_JSON, "site = :site"),
    ("event_signups_cancelled", SIGNUP, "id", _SIGNUP_GONE_JSON, "site = :site"),
)


# The sources a stream begun before ``uplink_sources`` was kept had shipped from its start (the rest came later:
# what's on, added in an upgrade, is copied once by ``write_backfill``).
_SHIPPED_FROM_THE_START = ("tickets", "calls", "ticket_log", "stats_feedback", "stats_device_status", "bookings")


def mark_sources(db: sqlite3.Connection, site: str, tables: Iterable[str]) -> None:
    """Note that this stream has these sources: their rows are in it (a snapshot) or go in with each change."""
    db.execute("CREATE TABLE IF NOT EXISTS uplink_sources (site TEXT NOT NULL, source TEXT NOT NULL, "
               "PRIMARY KEY (site, source))")
    db.executemany("INSERT OR IGNORE INTO uplink_sources (site, source) VALUES (?, ?)", [(site, t) for t in tables])


@dataclass(frozen=True)
class Backfill:
    """Put in the outbox, once, the rows of snapshot sources this stream began without (a kind of row that a newer
    hub ships: what a branch had of it before the upgrade reaches the centre too). Asked by the uplink at start,
    when every plugin's tables are there."""

    site: str


def write_backfill(db: sqlite3.Connection, record: Backfill) -> None:
    mark_sources(db, record.site, [])
    done = {name for name, in db.execute("SELECT source FROM uplink_sources WHERE site = ?", (record.site,))}
    if not done:  # a stream from before the sources were noted
        done = set(_SHIPPED_FROM_THE_START)
        mark_sources(db, record.site, done)
    state = db.execute("SELECT origin FROM uplink_state WHERE site = ?", (record.site,)).fetchone()
    if state is None:
        return
    existing = {name for name, in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    at = datetime.now(UTC).isoformat()
    for table, kind, key, body, mine in _SNAPSHOT_SOURCES:
        if table in done:
            continue
        if table in existing:
            db.execute(f"INSERT INTO outbox (kind, key, body, at) SELECT '{kind}', {key}, {body}, :at FROM {table} "
                       f"WHERE {mine} ORDER BY rowid", {"at": at, "site": record.site, "origin": state[0]})
        mark_sources(db, record.site, [table])


@dataclass(frozen=True)
class SnapshotChunk:
    """Copy the next chunk of a re-snapshot in progress into the outbox (the uplink asks for one after another)."""

    site: str


def write_resnapshot(db: sqlite3.Connection, record: Resnapshot) -> None:
    """Begin the new stream and plan its snapshot: for each source, the rows that exist now (rowid up to here).

    The rows are copied by ``write_snapshot_chunk``, a chunk per transaction, while kiosks go on: a row changed
    meanwhile is in the outbox again with its change at a later ``seq``, so the centre ends with its newest
    state; a row made meanwhile is in the outbox from its own commit. The plan is in the store, so a hub
    stopped half-way carries on where it was."""
    db.execute("DELETE FROM outbox")
    db.execute("UPDATE uplink_state SET stream = ?, shipped = 0, shipped_at = NULL WHERE site = ?",
               (uuid.uuid4().hex, record.site))
    db.execute("CREATE TABLE IF NOT EXISTS uplink_snapshot (site TEXT NOT NULL, step INTEGER NOT NULL, "
               "source TEXT NOT NULL, after INTEGER NOT NULL, upto INTEGER NOT NULL, PRIMARY KEY (site, source))")
    db.execute("DELETE FROM uplink_snapshot WHERE site = ?", (record.site,))
    mark_sources(db, record.site, [table for table, *_ in _SNAPSHOT_SOURCES])  # the new stream has every source
    existing = {name for name, in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    for step, (table, *_) in enumerate(_SNAPSHOT_SOURCES):
        if table in existing:
            db.execute(f"INSERT INTO uplink_snapshot (site, step, source, after, upto) SELECT ?, ?, ?, 0, "
                       f"COALESCE(MAX(rowid), 0) FROM {table}", (record.site, step, table))
    write_snapshot_chunk(db, SnapshotChunk(record.site))


def write_snapshot_chunk(db: sqlite3.Connection, record: SnapshotChunk) -> None:
    """The next ``SNAPSHOT_CHUNK_ROWS`` source rows of the re-snapshot in progress into the outbox, through as many
    sources as they reach (a small store is copied whole by the first chunk); none left: nothing."""
    if not snapshot_left(db, record.site):
        return
    origin = db.execute("SELECT origin FROM uplink_state WHERE site = ?", (record.site,)).fetchone()[0]
    budget = SNAPSHOT_CHUNK_ROWS
    while budget > 0:
        planned = db.execute("SELECT step, after, upto FROM uplink_snapshot WHERE site = ? ORDER BY step LIMIT 1",
                             (record.site,)).fetchone()
        if planned is None:
            return
        step, after, upto = planned
        table, kind, key, body, mine = _SNAPSHOT_SOURCES[step]
        found = db.execute(f"SELECT rowid FROM {table} WHERE rowid > ? AND rowid <= ? ORDER BY rowid LIMIT 1 "
                           f"OFFSET {budget - 1}", (after, upto)).fetchone()
        if found:
            until, budget = found[0], 0
        else:
            until = upto
            budget -= db.execute(f"SELECT COUNT(*) FROM {table} WHERE rowid > ? AND rowid <= ?",
                                 (after, upto)).fetchone()[0]
        db.execute(f"INSERT INTO outbox (kind, key, body, at) SELECT '{kind}', {key}, {body}, :at FROM {table} "
                   f"WHERE rowid > :after AND rowid <= :until AND {mine} ORDER BY rowid",
                   {"at": datetime.now(UTC).isoformat(), "after": after, "until": until, "site": record.site,
                    "origin": origin})
        if until >= upto:
            db.execute("DELETE FROM uplink_snapshot WHERE site = ? AND step = ?", (record.site, step))
        else:
            db.execute("UPDATE uplink_snapshot SET after = ? WHERE site = ? AND step = ?", (until, record.site, step))


def snapshot_left(db: sqlite3.Connection, site: str) -> bool:
    """Whether a re-snapshot of this site is still being copied (on any connection)."""
    try:
        return db.execute("SELECT 1 FROM uplink_snapshot WHERE site = ? LIMIT 1", (site,)).fetchone() is not None
    except sqlite3.OperationalError:  # no re-snapshot ever began in this store
        return False


@dataclass(frozen=True)
class ShippedMark:
    """The centre acknowledged every outbox row up to ``seq``: move the shipped position, trim those rows.

    ``stream``: the stream the centre acknowledged; a mark of an older stream (one that waited for the writer's
    next commit while a re-snapshot began a new one) changes nothing. None: whatever stream is current."""

    site: str
    seq: int
    at: str
    stream: str | None = None


def write_shipped(db: sqlite3.Connection, mark: ShippedMark) -> None:
    moved = db.execute("UPDATE uplink_state SET shipped = MAX(shipped, ?), shipped_at = ? WHERE site = ? AND "
                       "(? IS NULL OR stream = ?)", (mark.seq, mark.at, mark.site, mark.stream, mark.stream)).rowcount
    if moved:
        db.execute("DELETE FROM outbox WHERE seq <= ?", (mark.seq,))


@dataclass(frozen=True)
class Pending:
    """What the uplink reads: the stream, the shipped position and the next rows after it."""

    stream: str
    shipped: int
    rows: list[tuple[int, str, str, str, str]]  # seq, kind, key, body (JSON text), at
    backlog: int  # rows waiting in all, these included
    oldest_at: str | None  # when the oldest of them was committed


def read_pending(db: sqlite3.Connection, site: str, after: int, limit: int) -> Pending | None:
    """On a read-only connection: rows after ``after`` (or after the stored shipped position, if later), all read
    in one transaction, so the stream, the position and the rows are of the same commit."""
    if not db.in_transaction:
        db.execute("BEGIN")
    state = db.execute("SELECT stream, shipped FROM uplink_state WHERE site = ?", (site,)).fetchone()
    if state is None:
        return None
    stream, shipped = str(state[0]), int(state[1])
    start = max(after, shipped)
    rows = db.execute("SELECT seq, kind, key, body, at FROM outbox WHERE seq > ? ORDER BY seq LIMIT ?",
                      (start, limit)).fetchall()
    # The rows above any position are contiguous (AUTOINCREMENT, rolled-back numbers are not used, only rows at or
    # below a mark are trimmed, a new stream empties the table): count them from the ends, not row by row, which a
    # backlog of a million rows (a new stream of a year's store) would pay on every batch.
    low, high = db.execute("SELECT MIN(seq), MAX(seq) FROM outbox").fetchone()
    backlog = high - max(start, low - 1) if rows and high is not None else 0
    return Pending(stream, shipped, rows, max(0, backlog), rows[0][4] if rows else None)


def batch_json(branch: str, stream: str, after: int, rows: Iterable[tuple[int, str, str, str, str]],
               backlog: int) -> str:
    """The ingest request's body: the rows' JSON text goes in as it is stored, not parsed and dumped again."""
    parts = [f'{{"seq":{seq},"kind":{json.dumps(kind)},"key":{json.dumps(key)},"at":{json.dumps(at)},"body":{body}}}'
             for seq, kind, key, body, at in rows]
    return (f'{{"branch":{json.dumps(branch)},"stream":{json.dumps(stream)},"after":{after},'
            f'"backlog":{backlog},"rows":[{",".join(parts)}]}}')
