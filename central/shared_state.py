"""What every worker process of the centre must see alike, kept in PostgreSQL (schema version 8).

- ``Sessions``: the pages' sign-in sessions (a cookie's token, hashed): a person signed in through one worker is
  signed in at every other, and stays signed in across a restart of the centre. Ended after ``IDLE_S`` without
  use; at most ``MAX_SESSIONS`` (the least recently used go first), as ``server.staff.accounts.SessionStore``;
- ``SharedBucket`` and ``SharedBackoff``: ``server.throttle.Bucket`` and ``Backoff`` with their counts in the
  database (the SQL functions ``centre_bucket`` and ``centre_backoff`` are the same arithmetic, one statement
  each), so a limit per address, per device, per user name or for the whole site holds across the workers: the
  online bookings per address, the booking-code guesses (``server/code_guard.py``), the password guesses;
- ``SharedOidc``: the sign-ins on their way through the OpenID provider: the callback may reach another worker;
- ``tidy``: the rows that say nothing any more, removed by the worker that owns the background work.

The throttles' clock is the centre's wall clock (``time.time``): the same in every worker, and across a restart.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool

from central.staff import Account
from server.staff.oidc import PENDING_S, OidcClient, OidcSettings, Pending

log = logging.getLogger("vuoro.central")

IDLE_S = 12 * 3600.0  # a session unused this long is ended (the cookie lives as long)
MAX_SESSIONS = 2000
TOUCH_S = 60.0  # a session's last use is written at most this often (a page view is a read, not a write)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _one(pool: ConnectionPool, sql: str, args: tuple[Any, ...]) -> Any:
    """One statement in a transaction of its own (one round trip), its first row."""
    with pool.connection() as db:
        db.autocommit = True
        try:
            return db.execute(sql, args).fetchone()
        finally:
            with contextlib.suppress(psycopg.Error):  # a broken connection: the pool drops it, the error stands
                db.autocommit = False


# -- sessions ------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Session:
    token: str
    account: Account
    csrf: str


class Sessions:
    """The centre's sign-in sessions in PostgreSQL (blocking: call from a worker thread)."""

    def __init__(self, pool: ConnectionPool, idle_s: float = IDLE_S):
        self.pool, self.idle_s = pool, idle_s

    def create(self, account: Account) -> Session:
        session = Session(secrets.token_urlsafe(32), account, secrets.token_urlsafe(32))
        with self.pool.connection() as db, db.transaction():
            db.execute("INSERT INTO centre_sessions (token_hash, name, role, branches, desks, csrf) "
                       "VALUES (%s, %s, %s, %s, %s, %s)", (_digest(session.token), account.name, account.role,
                                                           list(account.branches), list(account.desks), session.csrf))
            db.execute("DELETE FROM centre_sessions WHERE last_seen < clock_timestamp() - make_interval(secs => %s) "
                       "OR token_hash IN (SELECT token_hash FROM centre_sessions ORDER BY last_seen DESC OFFSET %s)",
                       (self.idle_s, MAX_SESSIONS))
        return session

    def get(self, token: str | None) -> Session | None:
        """The session of this cookie, if it is open; its use noted (at most every ``TOUCH_S``)."""
        if not token or len(token) > 200:
            return None
        row = _one(self.pool,
                   "WITH s AS (SELECT token_hash, name, role, branches, desks, csrf, last_seen FROM centre_sessions "
                   "WHERE token_hash = %s AND last_seen > clock_timestamp() - make_interval(secs => %s)), "
                   "touched AS (UPDATE centre_sessions c SET last_seen = clock_timestamp() FROM s "
                   "WHERE c.token_hash = s.token_hash AND s.last_seen < clock_timestamp() - make_interval(secs => %s)) "
                   "SELECT name, role, branches, desks, csrf FROM s", (_digest(token), self.idle_s, TOUCH_S))
        if row is None:
            return None
        name, role, branches, desks, csrf = row
        return Session(token, Account(name, role, tuple(branches), tuple(desks)), csrf)

    def end(self, token: str | None) -> None:
        if token:
            _one(self.pool, "DELETE FROM centre_sessions WHERE token_hash = %s RETURNING 1", (_digest(token),))

    def end_for(self, name: str, keep: str | None = None) -> None:
        """Every session of the account ``name`` (but the one of the token ``keep``): an account changed or gone
        signs in again, as it now is, at whichever worker."""
        with self.pool.connection() as db, db.transaction():
            db.execute("DELETE FROM centre_sessions WHERE name = %s AND token_hash <> %s",
                       (name, _digest(keep) if keep else ""))


# -- throttles -----------------------------------------------------------------------------------------------------

class SharedBucket:
    """``server.throttle.Bucket`` (``burst`` tries at once, then ``per_hour``) counted in PostgreSQL. Blocking."""

    def __init__(self, pool: ConnectionPool, counter: str, burst: int, per_hour: float,
                 clock: Callable[[], float] = time.time):
        self.pool, self.counter, self.clock = pool, counter, clock
        self.burst, self.rate = float(burst), per_hour / 3600.0

    @property
    def per_day(self) -> int:
        return int(self.burst + self.rate * 86400)

    def _call(self, keys: tuple[str, ...], change: float) -> float:
        row = _one(self.pool, "SELECT centre_bucket(%s, %s, %s, %s, %s, %s)",
                   (self.counter, list(keys), self.burst, self.rate, change, self.clock()))
        return float(row[0] or 0.0)

    def take(self, *keys: str) -> float:
        """As ``Bucket.take``: 0.0 when a try was taken from every key, else the seconds to wait (nothing taken)."""
        return self._call(keys, -1.0)

    def give_back(self, *keys: str) -> None:
        self._call(keys, 1.0)

    def wait(self, *keys: str) -> float:
        return self._call(keys, 0.0)


class SharedBackoff:
    """``server.throttle.Backoff`` (``free`` failures, then doubling waits) counted in PostgreSQL. Blocking."""

    def __init__(self, pool: ConnectionPool, counter: str, free: int, *, first: float = 1.0, longest: float = 300.0,
                 forgive: float = 600.0, clock: Callable[[], float] = time.time):
        self.pool, self.counter, self.clock = pool, counter, clock
        self.free, self.first, self.longest, self.forgive = free, first, longest, forgive

    def _call(self, keys: tuple[str, ...], failed: bool) -> float:
        row = _one(self.pool, "SELECT centre_backoff(%s, %s, %s, %s, %s, %s, %s, %s)",
                   (self.counter, list(keys), self.free, self.first, self.longest, self.forgive, failed, self.clock()))
        return float(row[0] or 0.0)

    def wait(self, *keys: str) -> float:
        return self._call(keys, False)

    def failed(self, *keys: str) -> None:
        self._call(keys, True)

    def forget(self, *keys: str) -> None:
        _one(self.pool, "DELETE FROM centre_throttle WHERE counter = %s AND key = ANY(%s) RETURNING 1",
             (self.counter, list(keys)))


# -- OpenID sign-ins on their way ----------------------------------------------------------------------------------

class SharedOidc(OidcClient):
    """The provider's client with its started sign-ins in PostgreSQL: the callback may reach any worker."""

    def __init__(self, settings: OidcSettings, pool: ConnectionPool):
        super().__init__(settings)
        self.pool = pool

    def keep(self, pending: Pending) -> None:
        with self.pool.connection() as db, db.transaction():
            db.execute("INSERT INTO centre_oidc_pending (state_hash, nonce, verifier, redirect_uri) "
                       "VALUES (%s, %s, %s, %s)", (_digest(pending.state), pending.nonce, pending.verifier,
                                                   pending.redirect_uri))

    def take(self, state: str) -> Pending | None:
        """Once: a replayed callback finds nothing. Blocking."""
        row = _one(self.pool, "DELETE FROM centre_oidc_pending WHERE state_hash = %s AND "
                              "started > clock_timestamp() - make_interval(secs => %s) "
                              "RETURNING nonce, verifier, redirect_uri", (_digest(state), PENDING_S))
        return Pending(state, row[0], row[1], row[2]) if row else None


# -- clean-up (the owner of the background work) -------------------------------------------------------------------

def tidy(db: psycopg.Connection, idle_s: float = IDLE_S) -> int:
    """Expired sessions, sign-ins never finished, throttle rows that say nothing any more; how many rows."""
    with db.transaction():
        gone = db.execute("DELETE FROM centre_sessions WHERE last_seen < clock_timestamp() - "
                          "make_interval(secs => %s)", (idle_s,)).rowcount
        gone += db.execute("DELETE FROM centre_oidc_pending WHERE started < clock_timestamp() - "
                           "make_interval(secs => %s)", (PENDING_S,)).rowcount
        gone += db.execute("DELETE FROM centre_throttle WHERE expires < %s", (time.time(),)).rowcount
    return gone


TIDY_EVERY_S = 600.0


def keep_tidying(pool: ConnectionPool, every_s: float = TIDY_EVERY_S) -> threading.Event:
    """``tidy`` at start and every ``every_s`` on a thread of its own; set the event to stop it."""
    stop = threading.Event()

    def run() -> None:
        while not stop.is_set():
            try:
                with pool.connection() as db:
                    tidy(db)
            except Exception as exc:  # the database away: next time
                log.warning("the shared state's clean-up failed (%s); trying again later", exc)
            stop.wait(every_s)

    threading.Thread(target=run, name="vuoro-centre-tidy", daemon=True).start()
    return stop
