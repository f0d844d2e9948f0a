"""The uplink thread: ships the outbox to the centre in order, never on the writer, never holding it up.

Each round reads the next rows after the shipped position on a read-only connection of its own
(``store.reader()``: WAL lets it read the last commit while the writer goes on), posts them as one
batch to ``<centre>/api/v1/ingest`` with the branch's token, and when the centre answers with the
position it has stored (``shipped``), hands the writer a ``ShippedMark`` to record it and trim the
rows below it. The centre stores a batch in one PostgreSQL transaction; so:

- a crash before the centre's COMMIT: nothing is stored there, the rows are still here: re-sent;
- a crash after it, before the mark is committed here: re-sent; the centre skips rows at or below
  its position and upserts a ticket only with a newer revision, so the re-send changes nothing;
- the centre lost rows it had acknowledged (409: its database restored from an older backup), or the
  branch's own file went back to a backup and numbered rows the centre has again (409): the writer
  begins a new stream and puts the whole store in the outbox again (one transaction, which holds the
  writer for the time it takes: a rare repair); keys are stable, so nothing is doubled;
- the centre down or unreachable: the outbox grows (it is not bounded: a branch never refuses a
  visitor because the centre is away; a day of a busy branch is a few thousand rows, a few MB) and
  the uplink tries again, from 0.2 s backing off to 10 s; the writer does not notice.

The writer nudges the uplink after every commit that wrote outbox rows (``store.outbox_committed``),
and once before it, as the COMMIT goes to the disk (``store.outbox_writing``: the uplink wakes while the writer
waits for the disk, not while it finishes a kiosk's answer), so a committed row usually leaves within
milliseconds; when there is nothing to ship, an empty batch
every ``heartbeat_s`` tells the centre the branch is alive.

``VUORO_UPLINK_KILL_AFTER`` (tests only, as ``VUORO_TEST_CLOCK``): the hub process SIGKILLs itself after
that many batches of rows the centre acknowledged, between the centre's COMMIT and the local mark: the one
moment a crash could duplicate rows, made to happen on purpose.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import logging
import os
import re
import signal
import sqlite3
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from server.engine import Outcome
from server.uplink.centre_client import CentreClient, Unreachable
from server.uplink.outbox import (
    Backfill,
    Pending,
    Resnapshot,
    ShippedMark,
    SnapshotChunk,
    batch_json,
    read_pending,
    snapshot_left,
)

if TYPE_CHECKING:
    from server.config import CentralLink
    from server.hub import Hub

log = logging.getLogger("vuoro.uplink")

KILL_ENV = "VUORO_UPLINK_KILL_AFTER"
BACKOFF_FIRST_S = 0.2
BACKOFF_MAX_S = 10.0
# Nothing reached the centre (refused, no route, no answer to the connect): trying again costs it nothing, so the
# uplink tries at least this often, and a WAN back after an outage is noticed within seconds, not ten
# (bench/bench_branches.py: the backlog of a 10-minute cut is to be shipped within 10 s of the link's return).
CONNECT_BACKOFF_MAX_S = 2.0
CONNECT_TIMEOUT_S = 3.0
# A request over a connection the WAN left half-open (the link went down with no FIN or RST, bench_branches.py
# scenario 2) waits for an answer that never comes: this long. The centre stores a batch in well under a second;
# a batch it stored after we gave up is re-sent and skipped there, so a short wait loses nothing.
READ_TIMEOUT_S = 10.0
# An error naming an object (``<… at 0x7fd5…>``, as urllib3's did) would read as a new kind of trouble each try
ADDRESS = re.compile(r" at 0x[0-9a-f]+")
# The local mark is a write of the writer's: made at most this often, so a busy uplink costs the writer one
# small commit a second, not one per batch. A mark that lags only means a re-send after a crash, which the
# centre skips.
MARK_EVERY_S = 1.0
# After a nudge the uplink waits this long before it reads, so that under load (8 kiosks, hundreds of tickets a
# second) one request carries many commits instead of one request each; a few ms of the lag target (200 ms).
COALESCE_S = 0.02


class CentreRefused(Exception):
    """The centre answered, and said no: a wrong token (401/403), a malformed batch (422). Retried slowly, logged
    loudly."""


class CentreFailed(Exception):
    """The centre answered with an error that may pass (503: its database away; a proxy's 502): tried again,
    backing off."""


class CentreLostRows(Exception):
    """The centre cannot go on with this stream (409): it has fewer rows than it acknowledged (its database
    restored from an older backup), or this branch's file went back (restored) and numbered rows again. The
    branch ships its whole store again in a new stream (``Resnapshot``)."""


class Uplink:
    def __init__(self, hub: Hub, link: CentralLink):
        self.hub = hub
        self.link = link
        self.site = hub.config.site_id
        self.centre = CentreClient(link.url, link.token, link.ca_file, connect_timeout=CONNECT_TIMEOUT_S,
                                   read_timeout=READ_TIMEOUT_S)
        self.acknowledged = 0  # the centre's position for this stream, as far as this process has heard
        self.batches = 0  # batches the centre acknowledged since start
        self.state = "starting"
        self.backlog = 0
        self.oldest_at: str | None = None
        self.last_contact: str | None = None
        self.last_error: str | None = None
        self._kill_after = int(os.environ.get(KILL_ENV, "0") or 0)
        self._db: sqlite3.Connection | None = None  # the uplink thread's own read-only connection to the store
        self._marked_at = float("-inf")
        self._sending_since: float | None = None  # a request waits for the centre's answer since (monotonic)
        self.failures = 0  # tries in a row that did not reach the centre or were refused
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        # Told every answer of the centre's (its JSON): the follower learns there which config version and staff
        # accounts the branch should have (server/uplink/follow.py). Called on this thread: must not block.
        self.answered: list[Callable[[dict[str, Any]], None]] = []
        hub.store.outbox_writing.append(self._wake.set)  # wakes it while the writer syncs (see store.py)
        hub.store.outbox_committed.append(self._wake.set)  # rows visible: read again if it read too early

    # -- lifecycle ------------------------------------------------------------------

    def start(self) -> Uplink:
        self._thread = threading.Thread(target=self._run, name="vuoro-uplink", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()
        if self._thread:  # a request hanging on a half-open connection is not waited for: the thread is a daemon
            self._thread.join(5)
        self.centre.close()
        try:  # the last position the centre gave, marked while the writer still runs (hub.stop comes after)
            with self.hub.store.reader() as db:
                pending = read_pending(db, self.site, 0, 1)
            if pending is not None:
                self._mark(pending.shipped, pending.stream, force=True)
        except Exception:  # a stop must not fail: an unmarked position only means a re-send the centre skips
            log.warning("could not mark the centre's last position on stopping", exc_info=True)

    def status(self) -> dict[str, Any]:
        """For the hub's health answer: how far the centre is behind, in words a technician reads."""
        since = self._sending_since
        return {"centre": self.link.url, "state": self.state, "backlog": self.backlog, "oldest": self.oldest_at,
                "shipped": self.acknowledged, "last_contact": self.last_contact, "last_error": self.last_error,
                "waiting_s": None if since is None else round(time.monotonic() - since, 1), "failures": self.failures}

    # -- the loop -------------------------------------------------------------------

    def _run(self) -> None:
        try:
            self._rounds()
        finally:
            self._close_reader()

    def _rounds(self) -> None:
        backoff = BACKOFF_FIRST_S
        last_sent = float("-inf")
        try:  # rows of kinds this stream began without (an upgrade): into the outbox once, before shipping
            self.hub.call(lambda engine, now, site=self.site: Outcome(records=[Backfill(site)]), timeout=60)
        except Exception:  # the next start tries again; everything else ships meanwhile
            log.warning("could not put the rows of newer kinds in the outbox", exc_info=True)
        while not self._stopping.is_set():
            self._wake.clear()  # before reading: a commit after this read nudges the next round
            try:
                copying = snapshot_left(self._reader(), self.site)
                if copying:  # a re-snapshot in progress: one more chunk, then ship what is there, and again
                    self.state = "resending"
                    self.hub.call(lambda engine, now, site=self.site: Outcome(records=[SnapshotChunk(site)]),
                                  timeout=60)
                pending = self._read_pending()
                if pending is None:  # the store's outbox has not begun (cannot happen once the hub runs)
                    self._wake.wait(1.0)
                    continue
                self.backlog, self.oldest_at = pending.backlog, pending.oldest_at
                if not pending.rows and copying:
                    continue
                if not pending.rows and time.monotonic() - last_sent < self.link.heartbeat_s:
                    self.state = "idle"
                    if self.acknowledged > pending.shipped:  # a mark put off: make it once all is quiet
                        if not self._wake.wait(max(0.0, MARK_EVERY_S - (time.monotonic() - self._marked_at))):
                            self._mark(pending.shipped, pending.stream, force=True)
                            continue
                    elif not self._wake.wait(max(0.0, self.link.heartbeat_s - (time.monotonic() - last_sent))):
                        continue
                    self._stopping.wait(COALESCE_S)  # nudged: let the next few commits join this batch
                    continue
                after = max(self.acknowledged, pending.shipped)
                stored = self._send(batch_json(self.site, pending.stream, after, pending.rows, pending.backlog))
                last_sent = time.monotonic()
                self._acknowledge(stored, pending.shipped, pending.stream, bool(pending.rows))
                self.state = "shipping" if len(pending.rows) == self.link.batch_rows else "idle"
                self.backlog = max(0, pending.backlog - len(pending.rows))
                self.last_error = None
                self.failures = 0
                backoff = BACKOFF_FIRST_S
            except CentreLostRows as lost:
                log.error("%s; shipping this branch's whole store again, in a new stream", lost)
                self.last_error = str(lost)
                self.state = "resending"
                try:
                    self.hub.call(lambda engine, now, site=self.site: Outcome(records=[Resnapshot(site)]), timeout=300)
                    self.acknowledged = 0
                except Exception as exc:  # the store cannot commit now: the next round meets the 409 again
                    self._failed(f"could not begin the new stream: {exc}", BACKOFF_MAX_S, error=True)
            except CentreRefused as refused:
                self._failed(str(refused), BACKOFF_MAX_S, error=True)
            except Unreachable as exc:  # nothing reached the centre: try again soon (CONNECT_BACKOFF…)
                # ... unless it was a TLS handshake the branch refused (a wrong CA): that is not over in seconds
                soon = not exc.tls
                self._failed(f"the centre cannot be reached: {exc}", min(backoff, CONNECT_BACKOFF_MAX_S) if soon
                             else backoff)
                backoff = min(BACKOFF_MAX_S, backoff * 2)
            except CentreFailed as exc:
                self._failed(str(exc), backoff)
                backoff = min(BACKOFF_MAX_S, backoff * 2)
            except (http.client.HTTPException, ValueError, OSError) as exc:  # sent; no answer, or not one to read
                self._failed(f"the centre cannot be reached: {exc or type(exc).__name__}", backoff)
                backoff = min(BACKOFF_MAX_S, backoff * 2)
            except Exception as exc:  # never let the uplink die: a branch must ship again when it can
                log.exception("uplink round failed")
                self._close_reader()  # a store error: the next round opens a new connection
                self._failed(f"uplink error: {exc}", backoff)
                backoff = min(BACKOFF_MAX_S, backoff * 2)

    def _reader(self) -> sqlite3.Connection:
        if self._db is None:
            self._db = self.hub.store.open_reader()
        return self._db

    def _read_pending(self) -> Pending | None:
        """The next rows, read in one transaction on the uplink's own connection, ended at once: a read left open
        would keep the writer's WAL from being checkpointed past it."""
        db = self._reader()
        try:
            return read_pending(db, self.site, self.acknowledged, self.link.batch_rows)
        finally:
            if db.in_transaction:
                db.rollback()

    def _close_reader(self) -> None:
        if self._db is not None:
            with contextlib.suppress(sqlite3.Error):
                self._db.close()
            self._db = None

    def _failed(self, why: str, wait: float, *, error: bool = False) -> None:
        why = ADDRESS.sub("", why)  # else every try reads as a new kind of trouble (a 10-minute cut: 120 lines)
        if why != self.last_error:  # once per kind of trouble, not every 10 s all night
            (log.error if error else log.warning)("%s; the branch goes on, rows wait in the outbox", why)
        self.state = "refused" if error else "unreachable"
        self.last_error = why
        self.failures += 1
        self._stopping.wait(wait)

    def _send(self, body: str) -> int:
        # Rows wait while the centre does not answer: say so (health), not "idle" with a stale backlog.
        if self.state in ("starting", "idle", "shipping"):
            self.state = "sending"
        self._sending_since = time.monotonic()
        try:
            status, data = self.centre.post("/api/v1/ingest", body.encode())
        finally:
            self._sending_since = None
        self.last_contact = datetime.now(UTC).isoformat()
        if status == 200:
            answer = json.loads(data)
            for listener in self.answered:
                try:
                    listener(answer)
                except Exception:  # a listener's trouble is not the uplink's: rows go on shipping
                    log.exception("a listener of the centre's answers failed")
            return int(answer["shipped"])
        detail = data.decode("utf-8", "replace")
        with contextlib.suppress(ValueError, AttributeError):
            detail = json.loads(data).get("message") or detail
        if status == 409:
            raise CentreLostRows(f"the centre cannot go on with this stream: {detail}")
        if status in (401, 403, 422):
            raise CentreRefused(f"the centre refused the batch ({status}): {detail}")
        raise CentreFailed(f"the centre could not store the batch ({status}): {detail[:200]}")

    def _acknowledge(self, stored: int, marked: int, stream: str, had_rows: bool) -> None:
        """The centre has everything up to ``stored``: remember it, and have the writer mark and trim."""
        self.batches += had_rows
        if self._kill_after and had_rows and self.batches >= self._kill_after:
            log.warning("%s=%d: killing the hub between the centre's commit and the local mark", KILL_ENV,
                        self._kill_after)
            os.kill(os.getpid(), signal.SIGKILL)
        self.acknowledged = max(self.acknowledged, stored)
        self._mark(marked, stream)

    def _mark(self, marked: int, stream: str, *, force: bool = False) -> None:
        """Have the writer record the centre's position and trim the outbox below it: handed to the store, at most
        every ``MARK_EVERY_S``, for its next commit to record with the kiosks' own changes; ``force`` (all is
        quiet, or the hub stops: no commit may come) in a transaction of its own, now. So is the first mark after
        the hub starts: what it sent again at start (a backlog, rows a crash left unmarked) is trimmed at once,
        as before the marks rode on commits, whether or not a kiosk commits soon."""
        stored = self.acknowledged
        if stored <= marked:
            return
        mark = ShippedMark(self.site, stored, self.hub.clock().isoformat(), stream)
        if force or self._marked_at == float("-inf"):
            self.hub.call(lambda engine, now: Outcome(records=[mark]))
        elif time.monotonic() - self._marked_at >= MARK_EVERY_S:
            self.hub.store.mark_due = mark
        else:
            return
        self._marked_at = time.monotonic()
