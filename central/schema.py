"""The centre's PostgreSQL schema: versioned migrations, applied in order at start, each in one transaction.

The version is kept in ``central_schema``; a transaction-level advisory lock lets two centres started at
once migrate one after the other. A database newer than this code is refused, as the hub refuses a
newer SQLite file.
"""

from __future__ import annotations

import psycopg

# Each entry moves the schema one version up.
MIGRATIONS: list[str] = [
    # 1: branches, their outbox streams and how far each has shipped; tickets, their history, calls
    """
    CREATE TABLE branches (
        id         text PRIMARY KEY,
        name       text NOT NULL,
        stream     text,                            -- the outbox stream the branch ships now
        last_seen  timestamptz,                     -- its last batch (an empty one is a heartbeat)
        backlog    bigint NOT NULL DEFAULT 0,       -- rows still in its outbox after that batch
        lag_ms     double precision                 -- that batch: stored here − committed there (its oldest row)
    );
    CREATE TABLE streams (
        branch     text NOT NULL REFERENCES branches (id),
        stream     text NOT NULL,
        shipped    bigint NOT NULL DEFAULT 0,       -- every outbox seq up to here is stored
        last_digest text,                           -- of the row at that seq: a different one there = diverged
        first_seen timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (branch, stream)
    );
    CREATE TABLE tickets (
        branch       text NOT NULL REFERENCES branches (id),
        id           text NOT NULL,
        stream       text NOT NULL,
        revision     bigint NOT NULL,               -- the outbox seq of this state: only a newer one replaces it
        service      text NOT NULL,
        letter       text NOT NULL,
        number       integer NOT NULL,
        day          date NOT NULL,                 -- the branch's local service day
        label        text NOT NULL,
        language     text NOT NULL,
        status       text NOT NULL,
        origin       text NOT NULL,
        queued_at    timestamptz NOT NULL,
        issued_at    timestamptz NOT NULL,
        due_at       timestamptz,
        counter      text,
        called_at    timestamptz,
        finished_at  timestamptz,
        recalls      integer NOT NULL,
        transfers    integer NOT NULL,
        committed_at timestamptz NOT NULL,          -- when the branch committed this state
        stored_at    timestamptz NOT NULL DEFAULT clock_timestamp(),
        PRIMARY KEY (branch, id)
    );
    CREATE INDEX tickets_branch_day ON tickets (branch, day);
    CREATE TABLE ticket_events (
        branch       text NOT NULL REFERENCES branches (id),
        key          text NOT NULL,                 -- <ticket id>/<the branch's history line id>
        ticket_id    text NOT NULL,
        kind         text NOT NULL,
        at           timestamptz NOT NULL,
        service      text NOT NULL,
        counter      text,
        detail       text,
        committed_at timestamptz NOT NULL,
        stored_at    timestamptz NOT NULL DEFAULT clock_timestamp(),
        PRIMARY KEY (branch, key)
    );
    CREATE INDEX ticket_events_ticket ON ticket_events (branch, ticket_id);
    CREATE TABLE calls (
        branch       text NOT NULL REFERENCES branches (id),
        id           text NOT NULL,
        ticket_id    text NOT NULL,
        ticket       text NOT NULL,
        service      text NOT NULL,
        counter      text NOT NULL,
        at           timestamptz NOT NULL,
        recall       boolean NOT NULL,
        committed_at timestamptz NOT NULL,
        stored_at    timestamptz NOT NULL DEFAULT clock_timestamp(),
        PRIMARY KEY (branch, id)
    );
    CREATE INDEX calls_branch_at ON calls (branch, at);
    """,
    # 2: visitors' feedback taps and devices' status changes (statistics' rows at the branch)
    """
    CREATE TABLE feedback (
        branch       text NOT NULL REFERENCES branches (id),
        key          text NOT NULL,                 -- <the branch's outbox stream>/<its row id>
        at           timestamptz NOT NULL,
        rating       integer NOT NULL CHECK (rating BETWEEN 1 AND 5),
        faces        integer NOT NULL,
        service      text,
        device       text,
        committed_at timestamptz NOT NULL,
        stored_at    timestamptz NOT NULL DEFAULT clock_timestamp(),
        PRIMARY KEY (branch, key)
    );
    CREATE INDEX feedback_branch_at ON feedback (branch, at);
    CREATE TABLE device_status (
        branch       text NOT NULL REFERENCES branches (id),
        key          text NOT NULL,
        device       text NOT NULL,
        kind         text NOT NULL,
        at           timestamptz NOT NULL,
        online       boolean NOT NULL,
        printer      text,
        detail       text,
        committed_at timestamptz NOT NULL,
        stored_at    timestamptz NOT NULL DEFAULT clock_timestamp(),
        PRIMARY KEY (branch, key)
    );
    CREATE INDEX device_status_branch_at ON device_status (branch, device, at);
    """,
    # how a ticket was taken (kiosk, phone, staff, booking), as the branch's statistics count it; NULL for rows
    # shipped before (read as a kiosk's or a check-in's, like the branch's own older rows)
    """
    ALTER TABLE tickets ADD COLUMN channel text;
    """,
]

_LOCK = 0x7675_6F72  # "vuor": the advisory lock migrations hold


def schema_version(db: psycopg.Connection) -> int:
    db.execute("CREATE TABLE IF NOT EXISTS central_schema (version integer NOT NULL, "
               "applied_at timestamptz NOT NULL DEFAULT now())")
    row = db.execute("SELECT COALESCE(MAX(version), 0) FROM central_schema").fetchone()
    return int(row[0]) if row else 0


def migrate(dsn: str) -> int:
    """Bring the database up to this code's schema; the version it is at."""
    with psycopg.connect(dsn) as db:
        with db.transaction():
            db.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK,))
            current = schema_version(db)
        if current > len(MIGRATIONS):
            raise RuntimeError(f"the centre's database has schema version {current}, newer than this centre "
                               f"knows ({len(MIGRATIONS)}): upgrade the centre, do not start an older one on it")
        for version in range(current + 1, len(MIGRATIONS) + 1):
            with db.transaction():
                db.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK,))
                if schema_version(db) >= version:  # another centre did it while we waited
                    continue
                db.execute(MIGRATIONS[version - 1].encode())
                db.execute("INSERT INTO central_schema (version) VALUES (%s)", (version,))
        return max(current, len(MIGRATIONS))
