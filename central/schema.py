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
    # 3: the municipality's booking calendar (central/calendar.py).
    # Bookings the centre sold (side 'centre', codes of 7 characters, unique here) and the branches' own bookings
    # as their uplink ships them (side 'branch', 6 characters, unique per branch); the places the centre's
    # bookings hold (the last line of defence, as booking_claims is at a branch); the days handed over to a
    # branch (from then on the branch owns the day's places: the centre sells none of them).
    """
    CREATE TABLE calendar_bookings (
        id            text PRIMARY KEY,
        branch        text NOT NULL REFERENCES branches (id),
        side          text NOT NULL CHECK (side IN ('centre', 'branch')),
        code          text NOT NULL,
        service       text NOT NULL,
        start_at      timestamptz NOT NULL,
        end_at        timestamptz NOT NULL,
        day           date NOT NULL,                 -- the branch's local date of start_at
        slots         integer NOT NULL,
        status        text NOT NULL CHECK (status IN ('booked', 'checked_in', 'no_show', 'cancelled')),
        origin        text NOT NULL,
        name          text,                          -- personal data: staff only
        phone         text,
        email         text,
        note          text,
        language      text,
        ticket_id     text,
        checked_in_at timestamptz,
        created_at    timestamptz NOT NULL,
        cancelled_at  timestamptz,
        idem_key      text UNIQUE,
        updated_at    timestamptz NOT NULL DEFAULT clock_timestamp()
    );
    CREATE UNIQUE INDEX calendar_centre_codes ON calendar_bookings (code) WHERE side = 'centre';
    CREATE INDEX calendar_bookings_day ON calendar_bookings (branch, day);
    CREATE TABLE calendar_claims (
        branch      text NOT NULL,
        service     text NOT NULL,
        slot_start  timestamptz NOT NULL,
        place       integer NOT NULL CHECK (place >= 1),
        booking_id  text NOT NULL REFERENCES calendar_bookings (id) ON DELETE CASCADE,
        PRIMARY KEY (branch, service, slot_start, place)
    );
    CREATE INDEX calendar_claims_booking ON calendar_claims (booking_id);
    CREATE TABLE calendar_handovers (
        branch     text NOT NULL REFERENCES branches (id),
        day        date NOT NULL,
        handed_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
        PRIMARY KEY (branch, day)
    );
    ALTER TABLE branches ADD COLUMN calendar_seen timestamptz;
    """,
    # 4: central configuration and staff accounts (central/configs.py, central/staff.py): each branch's site file
    # in published versions, what each branch reported back, and the staff accounts every branch receives
    """
    CREATE TABLE site_configs (
        branch       text NOT NULL REFERENCES branches (id),
        version      integer NOT NULL,               -- 1, 2, 3 … per branch: the newest is the one wanted
        checksum     text NOT NULL,                  -- SHA-256 of the text (UTF-8), checked by the branch
        text         text NOT NULL,                  -- the site file, TOML, as the branch will write it
        published_at timestamptz NOT NULL DEFAULT now(),
        published_by text NOT NULL,
        PRIMARY KEY (branch, version)
    );
    CREATE TABLE config_reports (
        branch           text PRIMARY KEY REFERENCES branches (id),
        applied_version  integer,                    -- the version the branch runs on (0: its own file)
        applied_checksum text,
        applied_at       timestamptz,
        refused_version  integer,                    -- the last version it refused, and why (key paths)
        refused_problems jsonb,
        refused_at       timestamptz,
        reported_at      timestamptz NOT NULL
    );
    CREATE SEQUENCE staff_revision;                  -- moves on every change of an account: branches fetch then
    CREATE TABLE staff_accounts (
        name          text PRIMARY KEY,
        role          text NOT NULL CHECK (role IN ('staff', 'admin')),
        password_hash text NOT NULL,                 -- argon2id, as [staff.users] at a branch: never a password
        branches      text[] NOT NULL DEFAULT '{}',  -- where the login works (and what the centre shows); {} all
        desks         text[] NOT NULL DEFAULT '{}',  -- the desks it may call from; {} every desk
        disabled      boolean NOT NULL DEFAULT false,
        revision      bigint NOT NULL,
        updated_at    timestamptz NOT NULL DEFAULT now()
    );
    """,
    # 5: the branch's zone (the ingest marks the local days a batch touched); per-day aggregates of the
    # figures and histograms of waits, service times and ratings, per day and per month; the days to refresh
    """
    ALTER TABLE branches ADD COLUMN zone text;      -- the branch's IANA zone, from its site file
    CREATE TABLE stats_dirty (                      -- local days whose aggregates are older than their rows
        branch  text NOT NULL REFERENCES branches (id),
        day     date NOT NULL,
        version bigint NOT NULL DEFAULT 1,          -- bumped by each ingest: a refresh removes only what it saw
        PRIMARY KEY (branch, day)
    );
    CREATE TABLE stats_basis (                      -- the zone and targets the aggregates were computed with
        branch  text PRIMARY KEY REFERENCES branches (id),
        zone    text NOT NULL,
        targets jsonb NOT NULL                      -- service id -> target wait in seconds
    );
    -- The aggregates are derived rows, written a year at a time: no foreign keys (their checks were a fifth of
    -- the time of aggregating a branch's year).
    CREATE TABLE stats_day (                        -- every count of docs/statistics.md, per local day and service
        branch text NOT NULL,
        day date NOT NULL,
        service text NOT NULL,
        issued integer NOT NULL, served integer NOT NULL, no_show integer NOT NULL, expired integer NOT NULL,
        left_queue integer NOT NULL, open integer NOT NULL, transferred integer NOT NULL, transfers integer NOT NULL,
        walk_in integer NOT NULL, booking integer NOT NULL, booking_kept integer NOT NULL,
        booking_no_show integer NOT NULL,
        called integer NOT NULL,                    -- tickets with a wait
        wait_sum numeric NOT NULL,                  -- exact seconds (microseconds kept): the mean
        wait_max numeric,
        within integer NOT NULL, sl_base integer NOT NULL,  -- the service level's numerator and denominator
        PRIMARY KEY (branch, day, service)
    );
    CREATE TABLE stats_day_hist (                   -- kind w: waits, s: service times (bucket = upper bound in s,
        branch text NOT NULL,                       -- central/rollup.py); r: ratings (bucket = 1..5)
        day date NOT NULL,
        kind "char" NOT NULL,
        bucket integer NOT NULL,
        n integer NOT NULL,
        PRIMARY KEY (branch, day, kind, bucket)
    );
    CREATE TABLE stats_month_hist (                 -- the same summed per calendar month: a year reads 12, not 365
        branch text NOT NULL,
        month date NOT NULL,                        -- its first day
        kind "char" NOT NULL,
        bucket integer NOT NULL,
        n bigint NOT NULL,
        PRIMARY KEY (branch, month, kind, bucket)
    );
    """,
    # 6: how a ticket was taken (kiosk, phone, staff, booking), as the branch's statistics count it; NULL for rows
    # shipped before (read as a kiosk's or a check-in's, like the branch's own older rows)
    """
    ALTER TABLE tickets ADD COLUMN channel text;
    """,
    # 7: the day aggregates count tickets by how they were taken too (the branches' from_kiosk … from_booking);
    # every day already aggregated is counted again by the refresher
    """
    ALTER TABLE stats_day ADD COLUMN from_kiosk integer NOT NULL DEFAULT 0,
                          ADD COLUMN from_phone integer NOT NULL DEFAULT 0,
                          ADD COLUMN from_staff integer NOT NULL DEFAULT 0,
                          ADD COLUMN from_booking integer NOT NULL DEFAULT 0;
    INSERT INTO stats_dirty (branch, day) SELECT DISTINCT branch, day FROM stats_day
        ON CONFLICT (branch, day) DO UPDATE SET version = stats_dirty.version + 1;
    """,
    # 8: what's on at the branches (server/events): the events staff entered and the sign-ups with their check-ins,
    # as the branches' statistics count them. Nothing personal: a sign-up comes without its code and its name. A
    # sign-up given up at the branch is deleted here too. Each row at its newest revision, as tickets are.
    """
    CREATE TABLE staff_events (
        branch       text NOT NULL REFERENCES branches (id),
        id           text NOT NULL,
        stream       text NOT NULL,
        revision     bigint NOT NULL,
        title        text NOT NULL,
        start_at     timestamptz NOT NULL,
        end_at       timestamptz NOT NULL,
        room         text,
        state        text NOT NULL,                 -- scheduled | sold_out | cancelled
        seats        integer,
        waiting_list integer NOT NULL,
        created_at   timestamptz NOT NULL,
        committed_at timestamptz NOT NULL,
        stored_at    timestamptz NOT NULL DEFAULT clock_timestamp(),
        PRIMARY KEY (branch, id)
    );
    CREATE INDEX staff_events_start ON staff_events (branch, start_at);
    CREATE TABLE event_signups (
        branch        text NOT NULL REFERENCES branches (id),
        id            text NOT NULL,
        stream        text NOT NULL,
        revision      bigint NOT NULL,
        event_id      text NOT NULL,                -- a staff event's id, or a feed occurrence's at the branch
        seat          integer,                      -- NULL: on the waiting list (waiting_place)
        waiting_place integer,
        language      text,
        created_at    timestamptz NOT NULL,
        attended_at   timestamptz,                  -- checked in at the kiosk
        committed_at  timestamptz NOT NULL,
        stored_at     timestamptz NOT NULL DEFAULT clock_timestamp(),
        PRIMARY KEY (branch, id)
    );
    CREATE INDEX event_signups_created ON event_signups (branch, created_at);
    CREATE INDEX event_signups_attended ON event_signups (branch, attended_at) WHERE attended_at IS NOT NULL;
    """,
    # 9: what the centre's worker processes share (docs/central.md "Workers"): the pages' sign-in sessions, sign-ins
    # through the OpenID provider on their way, and the throttles' counts (central/shared_state.py)
    """
    CREATE TABLE centre_sessions (
        token_hash text PRIMARY KEY,                 -- sha256 of the cookie's token: the table alone signs nobody in
        name       text NOT NULL,
        role       text NOT NULL,
        branches   text[] NOT NULL,                  -- empty: every branch
        desks      text[] NOT NULL,
        csrf       text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
        last_seen  timestamptz NOT NULL DEFAULT clock_timestamp()
    );
    CREATE INDEX centre_sessions_last_seen ON centre_sessions (last_seen);
    CREATE TABLE centre_oidc_pending (
        state_hash   text PRIMARY KEY,               -- sha256 of the state the browser brings back
        nonce        text NOT NULL,
        verifier     text NOT NULL,                  -- PKCE
        redirect_uri text NOT NULL,
        started      timestamptz NOT NULL DEFAULT clock_timestamp()
    );
    CREATE TABLE centre_throttle (
        counter text NOT NULL,                       -- which count: 'booking/address', 'codes/site', 'login/pair' …
        key     text NOT NULL,                       -- whose: an address, a device, a user name
        level   double precision NOT NULL,           -- a bucket's tries left; a backoff's failures
        at      double precision NOT NULL,           -- seconds since 1970: as of (bucket) / the last failure (backoff)
        expires double precision NOT NULL,           -- from then on the row says nothing (full again, all forgiven)
        PRIMARY KEY (counter, key)
    );
    CREATE INDEX centre_throttle_expires ON centre_throttle (expires);

    -- server.throttle.Bucket's rule for every worker at once. p_change -1: take a try from every key if each has
    -- a whole one (0), else take nothing and return the seconds until each would; +1: give one back (0); 0: only
    -- the wait. Rows locked in key order; the commit does not wait for the disk (a crash of PostgreSQL forgets at
    -- most its last fraction of a second of tries).
    CREATE FUNCTION centre_bucket(p_counter text, p_keys text[], p_burst float8, p_per_s float8, p_change float8,
                                  p_now float8) RETURNS float8 LANGUAGE plpgsql AS $$
    DECLARE
        missing float8;
    BEGIN
        PERFORM set_config('synchronous_commit', 'off', true);
        INSERT INTO centre_throttle (counter, key, level, at, expires)
            SELECT p_counter, k, p_burst, p_now, p_now FROM unnest(p_keys) AS k ORDER BY k ON CONFLICT DO NOTHING;
        SELECT max(1.0 - LEAST(p_burst, t.level + GREATEST(0.0, p_now - t.at) * p_per_s)) INTO missing
            FROM (SELECT level, at FROM centre_throttle WHERE counter = p_counter AND key = ANY(p_keys)
                  ORDER BY key FOR UPDATE) AS t;
        IF p_change = 0 THEN
            RETURN GREATEST(0.0, missing) / p_per_s;
        END IF;
        IF p_change < 0 AND missing > 1e-9 THEN
            RETURN missing / p_per_s;
        END IF;
        UPDATE centre_throttle AS t SET level = n.level, at = p_now, expires = p_now + (p_burst - n.level) / p_per_s
            FROM (SELECT key, LEAST(p_burst, LEAST(p_burst, level + GREATEST(0.0, p_now - at) * p_per_s) + p_change)
                  AS level FROM centre_throttle WHERE counter = p_counter AND key = ANY(p_keys)) AS n
            WHERE t.counter = p_counter AND t.key = n.key;
        RETURN 0.0;
    END $$;

    -- server.throttle.Backoff's rule for every worker at once: p_free failures per key, then waits of p_first,
    -- twice, four times … at most p_longest; one failure forgiven per p_forgive seconds without a new one.
    -- p_failed: one more failure for every key (0); else the seconds until every key may try again.
    CREATE FUNCTION centre_backoff(p_counter text, p_keys text[], p_free integer, p_first float8, p_longest float8,
                                   p_forgive float8, p_failed boolean, p_now float8) RETURNS float8
    LANGUAGE plpgsql AS $$
    DECLARE
        longest float8;
    BEGIN
        IF p_failed THEN
            PERFORM set_config('synchronous_commit', 'off', true);
            INSERT INTO centre_throttle AS t (counter, key, level, at, expires)
                SELECT p_counter, k, 1, p_now, p_now + p_forgive FROM unnest(p_keys) AS k ORDER BY k
                ON CONFLICT (counter, key) DO UPDATE SET
                    level = GREATEST(0, t.level - floor(GREATEST(0.0, p_now - t.at) / p_forgive)) + 1, at = p_now,
                    expires = p_now + (GREATEST(0, t.level - floor(GREATEST(0.0, p_now - t.at) / p_forgive)) + 1)
                              * p_forgive;
            RETURN 0.0;
        END IF;
        SELECT max(c.at + LEAST(p_first * 2 ^ LEAST(c.n - p_free, 30), p_longest) - p_now) INTO longest
            FROM (SELECT at, GREATEST(0, level - floor(GREATEST(0.0, p_now - at) / p_forgive)) AS n
                  FROM centre_throttle WHERE counter = p_counter AND key = ANY(p_keys)) AS c
            WHERE c.n >= p_free;
        RETURN GREATEST(0.0, COALESCE(longest, 0.0));
    END $$;
    """,
    # 10: the contact a centre booking counts against in the per-day limit, as server.bookings.online.same_contact
    # keeps it: a sale reads only that citizen's bookings of the day (NULL for rows from before: read too)
    """
    ALTER TABLE calendar_bookings ADD COLUMN contact_key text;
    CREATE INDEX calendar_bookings_contact ON calendar_bookings (branch, service, day, contact_key)
        WHERE side = 'centre';
    """,
    # 11: the centre's link to its MQTT broker as the worker that publishes the nudges sees it (central/nudges.py):
    # any worker answers /api/v1/health, only that one holds the connection
    """
    CREATE TABLE broker_link (
        one        boolean PRIMARY KEY DEFAULT true CHECK (one),   -- one row: one publisher per centre
        worker     text NOT NULL,                                  -- host:pid of the worker that publishes
        connected  boolean NOT NULL,
        detail     text,                                           -- why not, in words
        since      timestamptz NOT NULL DEFAULT now()
    );
    """,
    # 12: confirmations and reminders of the centre's bookings (central/notice_plan.py, notice_sender.py), as a
    # branch's hub keeps them (server/bookings/notice_store.py): the citizen's contact in a table of its own, deleted
    # as soon as nothing is left to send, and one row per message with its due_at, written in the booking change's
    # own transaction
    """
    CREATE TABLE calendar_contacts (
        booking_id text PRIMARY KEY REFERENCES calendar_bookings (id) ON DELETE CASCADE,
        channel    text NOT NULL CHECK (channel IN ('sms', 'email')),
        address    text NOT NULL,                    -- personal data: deleted when nothing is left to send
        language   text NOT NULL
    );
    CREATE TABLE calendar_notices (
        id         text PRIMARY KEY,                 -- also the gateway's Idempotency-Key and the Message-ID
        booking_id text NOT NULL REFERENCES calendar_bookings (id) ON DELETE CASCADE,
        kind       text NOT NULL CHECK (kind IN ('booked', 'moved', 'cancelled', 'reminder')),
        due_at     timestamptz NOT NULL,             -- when it may go (again, after a refusal)
        for_start  timestamptz NOT NULL,             -- the booking's start it was planned for (a moved time re-plans)
        state      text NOT NULL CHECK (state IN ('due', 'sending', 'sent', 'failed', 'dropped', 'unknown')),
        tries      integer NOT NULL DEFAULT 0,
        done_at    timestamptz
    );
    CREATE INDEX calendar_notices_due ON calendar_notices (due_at) WHERE state = 'due';
    CREATE INDEX calendar_notices_booking ON calendar_notices (booking_id);
    """,
]

_LOCK = 0x7675_6F72  # "vuor": the advisory lock migrations hold


def schema_version(db: psycopg.Connection) -> int:
    # Looked up before it is created: the centre's own role (DML only, docs/central.md "Deploy") may read the
    # version but not create a table, and CREATE ... IF NOT EXISTS asks for that right even when the table exists.
    exists = db.execute("SELECT to_regclass('central_schema') IS NOT NULL").fetchone()
    if not (exists and exists[0]):
        db.execute("CREATE TABLE central_schema (version integer NOT NULL, "
                   "applied_at timestamptz NOT NULL DEFAULT now())")
    row = db.execute("SELECT COALESCE(MAX(version), 0) FROM central_schema").fetchone()
    return int(row[0]) if row else 0


class MigrationRefused(RuntimeError):
    """The database is behind this code and the role connected may not change its schema."""


def migrate(dsn: str) -> int:
    """Bring the database up to this code's schema; the version it is at.

    A role without the right to change the schema (the centre's app role) passes when the schema is already
    current, and is refused with what to run when it is not (the owner role migrates: ``vuoro central
    --migrate --database <owner's URL>``)."""
    with psycopg.connect(dsn) as db:
        try:
            with db.transaction():
                db.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK,))
                current = schema_version(db)
        except psycopg.errors.InsufficientPrivilege as exc:
            raise MigrationRefused(_behind_message(0, exc)) from None
        if current > len(MIGRATIONS):
            raise RuntimeError(f"the centre's database has schema version {current}, newer than this centre "
                               f"knows ({len(MIGRATIONS)}): upgrade the centre, do not start an older one on it")
        for version in range(current + 1, len(MIGRATIONS) + 1):
            try:
                with db.transaction():
                    db.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK,))
                    if schema_version(db) >= version:  # another centre did it while we waited
                        continue
                    db.execute(MIGRATIONS[version - 1].encode())
                    db.execute("INSERT INTO central_schema (version) VALUES (%s)", (version,))
            except psycopg.errors.InsufficientPrivilege as exc:
                raise MigrationRefused(_behind_message(version - 1, exc)) from None
        return max(current, len(MIGRATIONS))


def _behind_message(version: int, exc: Exception) -> str:
    return (f"the centre's database is at schema version {version}, this centre needs {len(MIGRATIONS)}, and "
            f"its role may not change the schema ({str(exc).strip()}): migrate as the owner role first: "
            "vuoro central --config <centre.toml> --migrate --database <the owner's postgresql:// URL>")
