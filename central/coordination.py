"""What the centre's worker processes share through PostgreSQL: wake-ups, and one owner of the background work.

Each worker keeps one connection of its own beside its pool (``Coordinator``, a thread):

- it ``LISTEN``\\ s on ``CHANNEL``. A config version published or a staff account changed sends ``NOTIFY`` inside its
  own transaction (``notify_changed``), so every worker hears of it when, and only if, it commits, and wakes its
  branches' long polls (``/api/v1/branch/changes``). A connection that drops (PostgreSQL restarted, a network cut)
  is opened again, with a growing pause; once back, every long poll of the worker is woken once: it reads again
  whatever it may have missed meanwhile;
- it competes for ``OWNER_LOCK``, a session-level advisory lock: the worker that holds it runs the background work
  (the statistics refresher, the calendar's retention purge, the clean-up of expired sessions and throttle rows).
  The lock goes with its connection: when that worker dies or loses the database, another takes it within
  ``RETRY_S``. Two centres on one database (two hosts) share it the same way.

A branch's config report sends ``branch:<id>`` on the same channel (``branch_changed``): it wakes the overview's live
streams (central/live.py), never the long polls. (Not the ingest: its new rows are read by the streams' own watch.)
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable

import psycopg

log = logging.getLogger("vuoro.central.coordination")

CHANNEL = "vuoro_central_changes"
OWNER_LOCK = 0x7675_6F77  # "vuow": held by the worker that runs the background work (migrations hold "vuor")
RETRY_S = 1.0  # how often a worker that does not own the work asks for it (and checks its connection)
WAIT_S = 0.2  # notifications are waited for this long at a time: a worker's stop never waits longer
RECONNECT_S = (0.5, 10.0)  # the pause before opening a lost connection again: first, longest (doubling)
RECONNECTED = "reconnected"  # the payload passed on after a lost connection is back: read everything again


STAFF_CHANGED = "staff"  # the payload of a staff account changed (central/staff.py): every branch's concern


def notify_changed(db: psycopg.Connection, what: str) -> None:
    """Inside the transaction that changes something a branch's long poll waits for (a config version, the staff
    accounts): every worker's long polls wake when it commits."""
    db.execute("SELECT pg_notify(%s, %s)", (CHANNEL, what))


BRANCH_PREFIX = "branch:"  # a branch's section changed: the overview's live streams, not the long polls


def branch_changed(branch: str) -> str:
    """The payload that says ``branch``'s section of the overview changed: it reported the config it runs or
    refused (central/configs.py)."""
    return BRANCH_PREFIX + branch


def changed_branch(payload: str) -> str | None:
    """The branch a payload names as changed, or None (a config, the staff accounts, a reconnection)."""
    return payload[len(BRANCH_PREFIX):] if payload.startswith(BRANCH_PREFIX) else None


def owner_pid(db: psycopg.Connection) -> int | None:
    """The pid of the worker that runs the background work on this database now (from its connection's name)."""
    row = db.execute(
        "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
        "WHERE l.locktype = 'advisory' AND l.granted AND l.classid = 0 AND l.objid = %s AND l.objsubid = 1 "
        "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())",
        (OWNER_LOCK,)).fetchone()
    if row is None or not str(row[0]).startswith("vuoro-central worker "):
        return None
    return int(str(row[0]).rsplit(" ", 1)[1])


Jobs = Callable[[], Callable[[], None]]  # starts the owner's work; returns what stops it


class Coordinator:
    """One worker's connection for ``LISTEN`` and the owner's lock (see the module's doc)."""

    def __init__(self, dsn: str, on_change: Callable[[str], None], owner_jobs: Jobs):
        self.dsn, self.on_change, self.owner_jobs = dsn, on_change, owner_jobs
        self.owner = False
        self.connected = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="vuoro-coordinator", daemon=True)

    def start(self) -> Coordinator:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(WAIT_S + 5)

    def _connect(self) -> psycopg.Connection:
        # Keepalives: a database host that vanishes (no FIN) is noticed in ≈ 25 s and its lock is given up.
        return psycopg.connect(self.dsn, autocommit=True, application_name=f"vuoro-central worker {os.getpid()}",
                               connect_timeout=5, keepalives=1, keepalives_idle=10, keepalives_interval=5,
                               keepalives_count=3)

    def _changed(self, payload: str) -> None:
        try:
            self.on_change(payload)
        except Exception:  # the worker is stopping (its loop closed): nothing waits any more
            log.debug("a change could not be passed on", exc_info=True)

    def _run(self) -> None:
        pause, lost = RECONNECT_S[0], False
        while not self._stop.is_set():
            stop_jobs: Callable[[], None] | None = None
            try:
                with self._connect() as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    self.connected.set()
                    if lost:
                        log.info("the coordination connection is back: waking every long poll to read again")
                        self._changed(RECONNECTED)
                    pause, lost = RECONNECT_S[0], False
                    asked = 0.0
                    while not self._stop.is_set():
                        if time.monotonic() - asked >= RETRY_S:
                            asked = time.monotonic()
                            if stop_jobs is None:
                                if _true(conn.execute("SELECT pg_try_advisory_lock(%s)", (OWNER_LOCK,))):
                                    log.info("worker %d runs the background work now", os.getpid())
                                    self.owner = True
                                    stop_jobs = self.owner_jobs()
                            else:
                                conn.execute("SELECT 1")  # still connected (and so still the owner)
                        for note in conn.notifies(timeout=WAIT_S):
                            self._changed(note.payload)
                    if stop_jobs is not None:  # stopping: the work ends before the lock goes with the connection
                        self.owner = False
                        stop_jobs()
                        stop_jobs = None
            except psycopg.Error as exc:
                if not self._stop.is_set():
                    log.warning("the coordination connection failed (%s); opening it again in %.1f s", exc, pause)
                lost = True
            finally:
                self.connected.clear()
                if stop_jobs is not None:
                    self.owner = False
                    stop_jobs()
            if self._stop.wait(pause):
                break
            pause = min(pause * 2, RECONNECT_S[1])


def _true(cursor: psycopg.Cursor) -> bool:  # type: ignore[type-arg]
    row = cursor.fetchone()
    return bool(row and row[0])
