"""The durable store: a SQLite file (WAL, synchronous FULL, foreign keys on).

Only the hub's writer thread writes, one transaction per batch of commands,
so a crash loses nothing that was answered: a reply leaves only after its
COMMIT. The engine decides; the store only records (``save``) and reloads
(``load``). The SQL is plain enough for a PostgreSQL store to follow with
the same two methods.

Only this module opens the database, and only the writer thread uses the
store's connection (as Datasette's ``_execute_writes``: the thread that writes
owns the connection, everyone else hands it work). A plugin hands the writer
its records in ``Outcome.records`` and how to write them (``writers``), and
reads on the writer thread with ``rows``/``row``, so it sees exactly what was
committed; the store refuses any other thread once the hub's writer has
claimed it (``serve_from_this_thread``). A long read that must not hold up a
ticket (a year of statistics) takes a read-only connection of its own from
``reader()``: WAL lets it read the last commit while the writer goes on.

The unique constraint on (site, letter, day, number) is the last line of
defence against a number handed out twice: it holds even if a bug or a
second writer ever got past the engine.

One module of ~520 lines on purpose: the only place that opens the database, migrations included.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, overload

from server.engine import (
    CALLED,
    IDEMPOTENCY_TTL,
    SERVICE_TIME_WINDOW,
    WAITING,
    Call,
    CounterState,
    Outcome,
    Snapshot,
    Ticket,
)
from server.uplink import outbox as uplink_outbox

# Each entry moves the schema one version up; applied in order at start.
MIGRATIONS: list[str] = [
    # 1: tickets, their history, counters, idempotency, calls
    """
    CREATE TABLE tickets (
        id            TEXT PRIMARY KEY,
        site          TEXT NOT NULL,
        service       TEXT NOT NULL,
        letter        TEXT NOT NULL CHECK (length(letter) = 1),
        day           TEXT NOT NULL,                -- the site's local service day, YYYY-MM-DD
        number        INTEGER NOT NULL CHECK (number > 0),
        label         TEXT NOT NULL,
        language      TEXT NOT NULL,
        status        TEXT NOT NULL CHECK (status IN ('waiting','called','done','no_show','expired')),
        origin        TEXT NOT NULL DEFAULT 'walk_in',
        queued_at     TEXT NOT NULL,                -- ISO 8601 UTC; a visitor's place in line
        issued_at     TEXT NOT NULL,
        due_at        TEXT,
        counter       TEXT,
        called_at     TEXT,
        finished_at   TEXT,
        recalls       INTEGER NOT NULL DEFAULT 0,
        transfers     INTEGER NOT NULL DEFAULT 0,
        track_token   TEXT NOT NULL UNIQUE,
        UNIQUE (site, letter, day, number)
    );
    CREATE INDEX tickets_active ON tickets (site, status) WHERE status IN ('waiting', 'called');
    CREATE INDEX tickets_day ON tickets (site, day);
    CREATE TABLE ticket_log (
        id        INTEGER PRIMARY KEY,
        ticket_id TEXT NOT NULL REFERENCES tickets (id),
        kind      TEXT NOT NULL,
        at        TEXT NOT NULL,
        service   TEXT NOT NULL,
        counter   TEXT,
        detail    TEXT
    );
    CREATE INDEX ticket_log_at ON ticket_log (at);
    CREATE TABLE counters (
        site      TEXT NOT NULL,
        id        TEXT NOT NULL,
        status    TEXT NOT NULL CHECK (status IN ('open','paused','closed')),
        ticket_id TEXT REFERENCES tickets (id),
        PRIMARY KEY (site, id)
    );
    CREATE TABLE idempotency (
        site       TEXT NOT NULL,
        key        TEXT NOT NULL,
        ticket_id  TEXT NOT NULL REFERENCES tickets (id),
        created_at TEXT NOT NULL,
        PRIMARY KEY (site, key)
    );
    CREATE TABLE action_keys (
        site       TEXT NOT NULL,
        key        TEXT NOT NULL,
        result     TEXT NOT NULL,
        created_at TEXT NOT NULL,
        PRIMARY KEY (site, key)
    );
    CREATE TABLE calls (
        id        TEXT PRIMARY KEY,
        site      TEXT NOT NULL,
        ticket_id TEXT NOT NULL REFERENCES tickets (id),
        ticket    TEXT NOT NULL,
        service   TEXT NOT NULL,
        counter   TEXT NOT NULL,
        at        TEXT NOT NULL,
        recall    INTEGER NOT NULL
    );
    CREATE INDEX calls_at ON calls (site, at);
    """,
    # 2: the store's own record of the business day, so a restart, a restored backup or a clock step rolls
    # from the day the store was left on, not from whatever the wall clock says (issue 13); and a row the
    # health check writes to prove the store can still commit.
    """
    CREATE TABLE business_day (
        site      TEXT PRIMARY KEY,
        day       TEXT NOT NULL,                   -- the site's local service day, YYYY-MM-DD; never goes back
        opened_at TEXT NOT NULL                    -- when the hub began it, ISO 8601 UTC
    );
    CREATE TABLE store_probe (
        site TEXT PRIMARY KEY,
        at   TEXT NOT NULL
    );
    """,
    # 3: what an Idempotency-Key was first used for, so its reuse for another request is refused (409)
    """
    ALTER TABLE idempotency ADD COLUMN request_digest TEXT;
    """,
    # 4: the outbox for the centre (server/uplink/outbox.py), written only by a site with [central]. seq is the
    # revision the centre upserts by: AUTOINCREMENT never reuses a number, even after shipped rows are trimmed.
    """
    CREATE TABLE outbox (
        seq  INTEGER PRIMARY KEY AUTOINCREMENT,
        kind TEXT NOT NULL,                          -- ticket | event | call
        key  TEXT NOT NULL,                          -- stable across re-sends: the centre's key for the row
        body TEXT NOT NULL,                          -- JSON
        at   TEXT NOT NULL                           -- when it was committed (wall clock, UTC ISO 8601)
    );
    CREATE TABLE uplink_state (
        site       TEXT PRIMARY KEY,
        origin     TEXT NOT NULL,                    -- this store file's id: half of its plugin rows' keys
        stream     TEXT NOT NULL,                    -- this store's outbox, as the centre knows it now
        shipped    INTEGER NOT NULL DEFAULT 0,       -- every seq up to here is stored at the centre
        shipped_at TEXT
    );
    """,
    # 5: a ticket may be 'left': the visitor gave up their place from the phone page (issue 21). SQLite cannot
    # change a CHECK in place, so the table is rebuilt (its rows, indexes and the other tables' references kept:
    # foreign keys are off during the migrations, see migrate()).
    """
    CREATE TABLE tickets_new (
        id            TEXT PRIMARY KEY,
        site          TEXT NOT NULL,
        service       TEXT NOT NULL,
        letter        TEXT NOT NULL CHECK (length(letter) = 1),
        day           TEXT NOT NULL,
        number        INTEGER NOT NULL CHECK (number > 0),
        label         TEXT NOT NULL,
        language      TEXT NOT NULL,
        status        TEXT NOT NULL CHECK (status IN ('waiting','called','done','no_show','expired','left')),
        origin        TEXT NOT NULL DEFAULT 'walk_in',
        queued_at     TEXT NOT NULL,
        issued_at     TEXT NOT NULL,
        due_at        TEXT,
        counter       TEXT,
        called_at     TEXT,
        finished_at   TEXT,
        recalls       INTEGER NOT NULL DEFAULT 0,
        transfers     INTEGER NOT NULL DEFAULT 0,
        track_token   TEXT NOT NULL UNIQUE,
        UNIQUE (site, letter, day, number)
    );
    INSERT INTO tickets_new SELECT id, site, service, letter, day, number, label, language, status, origin,
        queued_at, issued_at, due_at, counter, called_at, finished_at, recalls, transfers, track_token FROM tickets;
    DROP TABLE tickets;
    ALTER TABLE tickets_new RENAME TO tickets;
    CREATE INDEX tickets_active ON tickets (site, status) WHERE status IN ('waiting', 'called');
    CREATE INDEX tickets_day ON tickets (site, day);
    """,
    # 6: how a ticket was taken (statistics tell them apart): 'kiosk', 'phone' (the door QR), 'staff' (at the desk)
    # or 'booking' (a check-in). Older rows stay NULL: a booking's ticket or a kiosk's (statistics read them so).
    """
    ALTER TABLE tickets ADD COLUMN channel TEXT CHECK (channel IN ('kiosk', 'phone', 'staff', 'booking'));
    """,
]

# Health reports the last commit's outcome; when nothing was committed for this long it probes with a write.
PROBE_AFTER_S = 1.0

_TICKET_COLUMNS = (
    "id", "site", "service", "letter", "day", "number", "label", "language", "status", "origin", "queued_at",
    "issued_at", "due_at", "counter", "called_at", "finished_at", "recalls", "transfers", "track_token", "channel",
)


@overload
def ts(value: datetime) -> str: ...
@overload
def ts(value: datetime | None) -> str | None: ...
def ts(value: datetime | None) -> str | None:
    """A moment as the store keeps it: ISO 8601 in UTC, so text order is time order (None stays None)."""
    return value.astimezone(UTC).isoformat() if value else None


def dt(value: str | None) -> datetime | None:
    """A stored moment back as an aware datetime (None stays None)."""
    return datetime.fromisoformat(value) if value else None


class WrongThread(RuntimeError):
    """The store's connection was used off the hub's writer thread: a bug, never a visitor's doing."""


class SQLiteStore:
    def __init__(self, path: str | Path, site: str, *, outbox: bool = False):
        self.path = Path(path)
        self.site = site
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # The writer thread owns this connection; check_same_thread is off because it is created on the
        # main thread and handed over before any use (serve_from_this_thread). Nothing outside this module
        # uses ``db`` but tests, on the writer thread; plugins hand the writer work (see the module's top).
        self.db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.execute("PRAGMA foreign_keys=ON")
        self.db.execute("PRAGMA busy_timeout=5000")
        # Deleted rows are overwritten, not just unlinked: personal data (a booking's reminder contact, purged
        # names) must be gone from the file, not left in a free page.
        self.db.execute("PRAGMA secure_delete=ON")
        # A plugin (bookings, statistics) registers how its records are written, by type.
        self.writers: dict[type, Callable[[sqlite3.Connection, Any], None]] = {}
        self._owner: int | None = None  # the writer thread's ident, once it has claimed the connection
        # When the last commit was tried (monotonic) and why it failed (None: it did). Health reads it.
        self.last_commit: tuple[float, str | None] = (float("-inf"), None)
        self.migrate()
        # [central]: every batch also writes its outbox rows, and the uplink is told after the COMMIT.
        self.outbox = outbox
        self.outbox_committed: list[Callable[[], None]] = []
        # ... and before the COMMIT too, once the rows are written: the uplink wakes (and takes the GIL) while this
        # thread waits for the disk with the GIL released, not when it has the kiosk's answer to finish; the nudge
        # after the COMMIT then finds it awake (lingering) and costs no thread switch.
        self.outbox_writing: list[Callable[[], None]] = []
        self._outbox_tables: dict[int, list[str]] = {}  # schema version → the tables whose new rows go out
        # The centre's acknowledged position, handed over by the uplink thread (a plain attribute: one reference
        # replaced whole) and recorded by the next commit, inside the kiosks' own transaction: a mark of its own
        # would be one more synced commit a second that a ticket could queue behind (bench/bench_branches.py).
        self.mark_due: uplink_outbox.ShippedMark | None = None
        self._mark_written: uplink_outbox.ShippedMark | None = None
        self.writers[uplink_outbox.ShippedMark] = uplink_outbox.write_shipped
        self.writers[uplink_outbox.Resnapshot] = uplink_outbox.write_resnapshot
        self.writers[uplink_outbox.SnapshotChunk] = uplink_outbox.write_snapshot_chunk
        self.writers[uplink_outbox.Backfill] = uplink_outbox.write_backfill
        self.origin = uplink_outbox.start_stream(self.db, site) if outbox else None

    # -- who may use the connection ----------------------------------------------------

    def serve_from_this_thread(self) -> None:
        """The hub's writer thread claims the connection as it starts; any other thread is refused from now on."""
        self._owner = threading.get_ident()

    def _writer_only(self) -> None:
        if self._owner is not None and threading.get_ident() != self._owner:
            raise WrongThread("only the hub's writer thread uses the store's connection: hand it a command "
                              "(hub.call), or read on store.reader()")

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """A plugin's read on the writer thread: every row of one SELECT, as committed (or written in this batch)."""
        self._writer_only()
        return self.db.execute(sql, params).fetchall()

    def row(self, sql: str, params: Sequence[Any] = ()) -> tuple[Any, ...] | None:
        """The first row of one SELECT, or None; on the writer thread like ``rows``."""
        self._writer_only()
        return self.db.execute(sql, params).fetchone()  # type: ignore[no-any-return]

    @contextlib.contextmanager
    def reader(self) -> Iterator[sqlite3.Connection]:
        """A read-only connection of its own, for a long read off the writer thread; closed on leaving."""
        db = self.open_reader()
        try:
            yield db
        finally:
            db.close()

    def open_reader(self) -> sqlite3.Connection:
        """A read-only connection for a thread that reads often (the uplink, several times a second): opening one
        and reading the schema costs more than the reads. Its owner closes it, and ends each read transaction it
        begins, so the WAL can be checkpointed past it."""
        db = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, check_same_thread=False)
        db.execute("PRAGMA busy_timeout=5000")
        return db

    # -- schema ---------------------------------------------------------------------

    @property
    def schema_version(self) -> int:
        return int(self.db.execute("PRAGMA user_version").fetchone()[0])

    def migrate(self) -> None:
        current = self.schema_version
        if current > len(MIGRATIONS):
            raise RuntimeError(f"{self.path} has schema version {current}, newer than this hub knows "
                               f"({len(MIGRATIONS)}): upgrade the hub, do not start an older one on it")
        if current == len(MIGRATIONS):
            return
        # A step may rebuild a table others refer to (5: tickets); SQLite's way is with foreign keys off
        # (a pragma that only takes effect outside a transaction), checked before each COMMIT.
        self.db.execute("PRAGMA foreign_keys=OFF")
        try:
            for version in range(current + 1, len(MIGRATIONS) + 1):
                # executescript commits first, so run the whole step inside one explicit transaction.
                self.db.executescript(f"BEGIN IMMEDIATE;\n{MIGRATIONS[version - 1]}\n"
                                      f"PRAGMA user_version = {version};\n")
                broken = self.db.execute("PRAGMA foreign_key_check").fetchall()
                if broken:
                    self.db.execute("ROLLBACK")
                    raise RuntimeError(f"{self.path}: schema step {version} would break references: {broken[:3]}")
                self.db.execute("COMMIT")
        finally:
            self.db.execute("PRAGMA foreign_keys=ON")

    def migrate_plugin(self, name: str, steps: list[str]) -> None:
        """A plugin's own schema steps, versioned apart from the core's so parts evolve independently.

        Call it on the writer thread (``hub.call``), like every other write.
        """
        self._writer_only()
        self.db.execute("CREATE TABLE IF NOT EXISTS plugin_schema (name TEXT PRIMARY KEY, version INTEGER NOT NULL)")
        row = self.db.execute("SELECT version FROM plugin_schema WHERE name = ?", (name,)).fetchone()
        current = row[0] if row else 0
        if current > len(steps):
            raise RuntimeError(f"{self.path}: the {name} schema is version {current}, newer than this hub knows")
        for version in range(current + 1, len(steps) + 1):
            self.db.executescript(
                f"BEGIN IMMEDIATE;\n{steps[version - 1]}\n"
                f"INSERT INTO plugin_schema (name, version) VALUES ('{name}', {version}) "
                f"ON CONFLICT (name) DO UPDATE SET version = excluded.version;\nCOMMIT;"
            )

    def scrub_log(self) -> bool:
        """After personal data was deleted: copy the write-ahead log into the file and empty it, so the old page
        images of the deleted rows do not linger in ``-wal``. On the writer thread, between transactions; never
        waits for a reader (False: one was busy, try again later)."""
        self._writer_only()
        self.db.execute("PRAGMA busy_timeout=0")
        try:
            busy = self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
        finally:
            self.db.execute("PRAGMA busy_timeout=5000")
        return not busy

    def check(self, now: datetime) -> str:
        """'ok' when the file answers and can commit; otherwise what is wrong. Used by the health endpoint."""
        self._writer_only()
        integrity = str(self.db.execute("PRAGMA quick_check").fetchone()[0])
        if integrity != "ok":
            return integrity
        at, error = self.last_commit
        if time.monotonic() - at > PROBE_AFTER_S:  # nothing committed lately: try a write of our own
            with contextlib.suppress(sqlite3.Error, OSError):
                self.probe(now)
            at, error = self.last_commit
        return "ok" if error is None else f"cannot commit: {error}"

    def probe(self, now: datetime) -> None:
        """Commit one tiny write, as a ticket would: raises if the store cannot commit (disk full, read-only)."""
        with self._transaction() as db:
            db.execute("INSERT INTO store_probe (site, at) VALUES (?, ?) ON CONFLICT (site) DO UPDATE SET "
                       "at = excluded.at", (self.site, ts(now)))

    def business_day(self) -> date | None:
        """The day the store was left on: its record, or for a store from before the record, its latest
        ticket's day; None for an empty store. Whichever is later, so the day never goes back."""
        self._writer_only()
        days = [row[0] for row in self.db.execute(
            "SELECT day FROM business_day WHERE site = ? UNION ALL SELECT MAX(day) FROM tickets WHERE site = ?",
            (self.site, self.site)) if row[0]]
        return date.fromisoformat(max(days)) if days else None

    def close(self) -> None:
        self.db.close()

    # -- writing --------------------------------------------------------------------

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        self._writer_only()
        db = self.db
        try:
            db.execute("BEGIN IMMEDIATE")
            yield db
            db.execute("COMMIT")
        except BaseException as exc:
            if db.in_transaction:  # SQLite may already have rolled back (an I/O error, a full disk)
                db.execute("ROLLBACK")
            if isinstance(exc, sqlite3.Error | OSError) and not isinstance(exc, sqlite3.IntegrityError):
                self.last_commit = (time.monotonic(), str(exc))  # the store failed, not the change
            raise
        self.last_commit = (time.monotonic(), None)

    def save(self, outcomes: Iterable[Outcome]) -> None:
        """Write every change of these outcomes in ONE transaction (with their outbox rows, for a centre)."""
        outcomes = list(outcomes)
        shipped = 0
        mark = self.mark_due
        with self._transaction() as db:
            before = uplink_outbox.positions(db, self._outbox_tables) if self.origin else {}
            for outcome in outcomes:
                self._write(outcome)
            if self.origin:
                shipped = uplink_outbox.write(db, outcomes, before, self.origin)
                if mark is not None and mark is not self._mark_written:
                    uplink_outbox.write_shipped(db, mark)
                if shipped:
                    for nudge in self.outbox_writing:
                        nudge()
        self._mark_written = mark
        if shipped:
            for nudge in self.outbox_committed:
                nudge()

    def _write(self, outcome: Outcome) -> None:
        db, site = self.db, self.site
        if outcome.created:
            # A plain INSERT: a new ticket that collides with anything (id, number, token) must fail loudly.
            db.executemany(f"INSERT INTO tickets ({', '.join(_TICKET_COLUMNS)}) VALUES "
                           f"({', '.join('?' for _ in _TICKET_COLUMNS)})",
                           [self._ticket_row(t) for t in outcome.created])
        if outcome.tickets:
            rows = [self._ticket_row(t) for t in {id(t): t for t in outcome.tickets}.values()]
            columns = ", ".join(_TICKET_COLUMNS)
            marks = ", ".join("?" for _ in _TICKET_COLUMNS)
            updates = ", ".join(f"{c} = excluded.{c}" for c in _TICKET_COLUMNS[2:] if c not in ("letter", "day",
                                                                                               "number"))
            db.executemany(
                f"INSERT INTO tickets ({columns}) VALUES ({marks}) ON CONFLICT (id) DO UPDATE SET {updates}", rows
            )
        if outcome.log:
            db.executemany(
                "INSERT INTO ticket_log (ticket_id, kind, at, service, counter, detail) VALUES (?, ?, ?, ?, ?, ?)",
                [(e.ticket_id, e.kind, ts(e.at), e.service, e.counter, e.detail) for e in outcome.log],
            )
        for counter in outcome.counters:
            db.execute(
                "INSERT INTO counters (site, id, status, ticket_id) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (site, id) DO UPDATE SET status = excluded.status, ticket_id = excluded.ticket_id",
                (site, counter.id, counter.status, counter.ticket_id),
            )
        for call in outcome.calls:
            db.execute(
                "INSERT INTO calls (id, site, ticket_id, ticket, service, counter, at, recall) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (call.call_id, site, call.ticket_id, call.ticket, call.service, call.counter, ts(call.at),
                 int(call.recall)),
            )
        for key, ticket_id, at, digest in outcome.idempotency:
            db.execute("INSERT INTO idempotency (site, key, ticket_id, created_at, request_digest) "
                       "VALUES (?, ?, ?, ?, ?)", (site, key, ticket_id, ts(at), digest))
        for record in outcome.records:
            self.writers[type(record)](db, record)
        if outcome.day is not None:
            day, opened_at = outcome.day
            db.execute("INSERT INTO business_day (site, day, opened_at) VALUES (?, ?, ?) ON CONFLICT (site) DO UPDATE "
                       "SET day = excluded.day, opened_at = excluded.opened_at WHERE excluded.day > business_day.day",
                       (site, day.isoformat(), ts(opened_at)))
        for key, result, at in outcome.action_keys:
            db.execute("INSERT INTO action_keys (site, key, result, created_at) VALUES (?, ?, ?, ?)",
                       (site, key, json.dumps(result), ts(at)))

    def _ticket_row(self, t: Ticket) -> tuple[Any, ...]:
        return (
            t.id, self.site, t.service, t.letter, t.day.isoformat(), t.number, t.label, t.language, t.status,
            t.origin, ts(t.queued_at), ts(t.issued_at), ts(t.due_at), t.counter, ts(t.called_at),
            ts(t.finished_at), t.recalls, t.transfers, t.track_token, t.channel,
        )

    # -- reading --------------------------------------------------------------------

    @staticmethod
    def _ticket(row: sqlite3.Row | tuple[Any, ...]) -> Ticket:
        r = dict(zip(_TICKET_COLUMNS, row, strict=True))
        return Ticket(
            id=r["id"], service=r["service"], letter=r["letter"], number=r["number"],
            day=date.fromisoformat(r["day"]), language=r["language"], status=r["status"],
            queued_at=dt(r["queued_at"]), issued_at=dt(r["issued_at"]),  # type: ignore[arg-type]
            track_token=r["track_token"], origin=r["origin"], due_at=dt(r["due_at"]), counter=r["counter"],
            called_at=dt(r["called_at"]), finished_at=dt(r["finished_at"]), recalls=r["recalls"],
            transfers=r["transfers"], channel=r["channel"] or ("booking" if r["origin"] == "booking" else "kiosk"),
        )

    def load(self, day: date, now: datetime, recent_calls: int = 8) -> Snapshot:
        """Everything the engine needs to carry on where it stopped."""
        self._writer_only()
        db, site = self.db, self.site
        columns = ", ".join(_TICKET_COLUMNS)
        rows = db.execute(
            f"SELECT {columns} FROM tickets WHERE site = ? AND (day = ? OR status IN (?, ?))",
            (site, day.isoformat(), WAITING, CALLED),
        ).fetchall()
        tickets = [self._ticket(r) for r in rows]
        next_numbers = {
            letter: top + 1
            for letter, top in db.execute(
                "SELECT letter, MAX(number) FROM tickets WHERE site = ? AND day = ? GROUP BY letter",
                (site, day.isoformat()),
            )
        }
        counters = {
            cid: CounterState(cid, status, ticket_id)
            for cid, status, ticket_id in db.execute("SELECT id, status, ticket_id FROM counters WHERE site = ?",
                                                     (site,))
        }
        service_times: dict[str, list[float]] = {}
        for service, called_at, finished_at in db.execute(
            "SELECT service, called_at, finished_at FROM tickets WHERE site = ? AND day = ? AND status = 'done' "
            "AND called_at IS NOT NULL ORDER BY finished_at",
            (site, day.isoformat()),
        ):
            seconds = (dt(finished_at) - dt(called_at)).total_seconds()  # type: ignore[operator]
            service_times.setdefault(service, []).append(seconds)
        service_times = {k: v[-SERVICE_TIME_WINDOW:] for k, v in service_times.items()}
        since = ts(now - IDEMPOTENCY_TTL)
        idempotency = {
            key: (ticket_id, dt(at), digest)
            for key, ticket_id, at, digest in db.execute(
                "SELECT key, ticket_id, created_at, request_digest FROM idempotency WHERE site = ? AND created_at >= ?",
                (site, since),
            )
        }
        action_keys = {
            key: json.loads(result)
            for key, result in db.execute(
                "SELECT key, result FROM action_keys WHERE site = ? AND created_at >= ?",
                (site, ts(now - timedelta(hours=1))),
            )
        }
        calls = [
            Call(cid, ticket_id, label, service, counter, dt(at), bool(recall))  # type: ignore[arg-type]
            for cid, ticket_id, label, service, counter, at, recall in db.execute(
                "SELECT id, ticket_id, ticket, service, counter, at, recall FROM calls WHERE site = ? "
                "ORDER BY at DESC LIMIT ?",
                (site, recent_calls),
            )
        ]
        return Snapshot(
            day=day, tickets=tickets, counters=counters, next_numbers=next_numbers, service_times=service_times,
            idempotency=idempotency, action_keys=action_keys, recent_calls=calls,  # type: ignore[arg-type]
        )

    def tickets_of_day(self, day: date) -> list[Ticket]:
        self._writer_only()
        columns = ", ".join(_TICKET_COLUMNS)
        rows = self.db.execute(f"SELECT {columns} FROM tickets WHERE site = ? AND day = ? ORDER BY issued_at",
                               (self.site, day.isoformat()))
        return [self._ticket(r) for r in rows]
