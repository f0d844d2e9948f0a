"""The centre publishes each branch's ``config/nudge`` on its own MQTT broker (``[broker]``, central/broker_link.py).

A nudge (``vuoro.protocol.ConfigNudge``, retained at ``branches/<id>/config/nudge``) says which config version
(and checksum) the branch should run and the staff accounts' revision; the branch's bridge carries it down and
its follower looks sooner. Only a hint: the branch's long poll and uplink answers over HTTPS stay the truth.

**One publisher per centre: the worker that owns the background work** (``central/coordination.py``, started
from its ``owner_jobs``), not every worker:

- the central Mosquitto gives the user ``centre`` one connection (``use_username_as_clientid``): a client in
  each worker would keep throwing the others off; and several publishers could race an older nudge over a newer;
- every worker hears every change through ``NOTIFY`` (``changed``), the owner included, so it misses none
  while it owns the work;
- what it publishes is state read from PostgreSQL, never the event itself. On every connection to the broker it
  publishes every branch's current nudge, and a new owner starts a new client, so a change made while ownership
  moved, or while the broker was away, is published then. Retained and idempotent: once more costs a message.

The broker being away never touches the centre: paho reconnects in its own thread, nothing is queued while it is
away (the newest state is published when it is back), a failure is logged once per kind, and the link's state is
a row (``broker_link``) that any worker's ``/api/v1/health`` reads.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Iterable
from typing import Any

import paho.mqtt.client as mqtt
import psycopg
from psycopg_pool import ConnectionPool

from central import configs as site_configs
from central import staff as staff_accounts
from central.broker_link import BrokerLink
from central.coordination import RECONNECTED, STAFF_CHANGED
from vuoro.mqtt import BrokerClient, make_client
from vuoro.protocol import CONFIG_NUDGE_SUFFIX, ConfigNudge, centre_topic

log = logging.getLogger("vuoro.central.nudges")

CLIENT_ID = "vuoro-centre"  # one publisher per centre: a second connection with it takes over from the first
RETRY_S = 2.0  # a database that failed a read is asked again this often (the broker: paho's own back-off)
RECONNECT_S = (1.0, 30.0)


def nudge_for(db: psycopg.Connection, branch: str, staff: int) -> ConfigNudge:
    """What the branch's long poll would answer now (``configs.wanted``), as a nudge; version 0 and an empty
    checksum when nothing was published for it."""
    wanted = site_configs.wanted(db, branch) or {"version": 0, "checksum": ""}
    return ConfigNudge(version=wanted["version"], checksum=wanted["checksum"], staff=staff)


def read_state(db: psycopg.Connection) -> dict[str, Any] | None:
    """The link as its publisher last wrote it (None before any worker published)."""
    row = db.execute("SELECT worker, connected, detail, since FROM broker_link").fetchone()
    if row is None:
        return None
    return {"connected": row[1], "detail": row[2], "worker": row[0], "since": row[3].isoformat()}


class NudgePublisher:
    def __init__(self, link: BrokerLink, pool: ConnectionPool, branches: Iterable[str]):
        self.link, self.pool, self.branches = link, pool, tuple(branches)
        self.worker = f"{socket.gethostname()}:{os.getpid()}"
        self.client: BrokerClient | None = None
        self._lock = threading.Lock()
        self._due: set[str] = set()
        self._connected = False
        self._detail: str | None = "connecting"
        self._written: tuple[bool, str | None] | None = None
        self._logged: dict[str, str] = {}  # the failures logged, by kind: each once until that kind works again
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="vuoro-centre-nudges", daemon=True)

    def start(self) -> NudgePublisher:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()
        self._thread.join(10)
        if self.client is not None:
            self.client.disconnect()
            self.client.loop_stop()

    def changed(self, what: str) -> None:
        """A change every worker heard (``central.coordination``'s payload): mark whose nudge to publish."""
        if what.startswith("config:"):
            branches: Iterable[str] = [what.split(":", 1)[1]]
        elif what in (STAFF_CHANGED, RECONNECTED):  # payloads that concern every branch
            branches = self.branches
        else:
            return
        with self._lock:
            self._due.update(b for b in branches if b in self.branches)
        self._wake.set()

    # -- paho's thread: only note and wake -------------------------------------------------------

    def _on_connect(self, _client: mqtt.Client, _userdata: Any, _flags: Any, reason: Any, _props: Any) -> None:
        with self._lock:
            if reason.is_failure:
                self._connected, self._detail = False, f"the broker refused the login: {reason}"
            else:
                self._connected, self._detail = True, None
                self._due.update(self.branches)  # whatever changed while away (or before we owned the work)
        self._wake.set()

    def _on_disconnect(self, _client: mqtt.Client, _userdata: Any, _flags: Any, reason: Any, _props: Any) -> None:
        with self._lock:
            self._connected = False
            self._detail = f"lost the broker: {reason}"
        self._wake.set()

    # -- the publisher's own thread -------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                if self.client is None:
                    self._open()
                self._write_state()
                self._publish_due()
            except Exception as exc:  # never let the publisher die: the next change must still go out
                self._once("publisher", f"the centre's nudges failed ({exc}); trying again")
            self._wake.wait(RETRY_S)
            self._wake.clear()

    def _open(self) -> None:
        try:
            settings = self.link.settings()
        except OSError as exc:
            with self._lock:
                self._detail = f"cannot read {self.link.password_file}: {exc.strerror or exc}"
            self._once("password", f"the centre publishes no nudges: {self._detail}")
            return
        self.client = make_client(settings, client_id=CLIENT_ID, name="the centre's nudge publisher",
                                  reconnect=RECONNECT_S, max_queued=len(self.branches) + 10)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.start()
        self._logged.pop("password", None)

    def _write_state(self) -> None:
        """The link's state into ``broker_link`` when it changed (the health of every worker reads it)."""
        with self._lock:
            connected, detail = self._connected, self._detail
        if not connected and self.client is not None and self.client.last_failure:
            detail = self.client.last_failure  # why paho's attempts fail, in words (vuoro.mqtt logs it once)
        state = (connected, detail)
        if state == self._written:
            return
        if connected:
            if self._logged.pop("broker", None):
                log.info("the centre's nudge publisher is connected to %s again", self.link.url)
        elif detail != "connecting":
            self._once("broker", f"the centre cannot publish its nudges at {self.link.url} ({detail}); it goes on "
                                 "without them (branches follow over HTTPS) and publishes them when the broker is back")
        try:
            with self.pool.connection() as db:
                db.execute("INSERT INTO broker_link (one, worker, connected, detail, since) "
                           "VALUES (true, %s, %s, %s, now()) ON CONFLICT (one) DO UPDATE SET worker = excluded.worker, "
                           "connected = excluded.connected, detail = excluded.detail, since = excluded.since",
                           (self.worker, connected, detail))
        except psycopg.Error as exc:
            self._once("database", f"the nudge publisher cannot reach the database ({exc}); trying again")
            return
        self._logged.pop("database", None)
        self._written = state

    def _publish_due(self) -> None:
        with self._lock:
            if not self._connected or not self._due or self.client is None:
                return
            due, self._due = sorted(self._due), set()
        try:
            with self.pool.connection() as db:
                staff = staff_accounts.revision(db)
                nudges = {bid: nudge_for(db, bid, staff) for bid in due}
        except psycopg.Error as exc:
            with self._lock:
                self._due.update(due)  # read again at the next round
            self._once("database", f"the nudge publisher cannot reach the database ({exc}); trying again")
            return
        self._logged.pop("database", None)
        self._logged.pop("publisher", None)
        now = time.time()
        for bid, nudge in nudges.items():
            info = self.client.publish(centre_topic(bid, CONFIG_NUDGE_SUFFIX),
                                       ConfigNudge(nudge.version, nudge.checksum, nudge.staff, now).to_payload(),
                                       qos=1, retain=True)
            if info.rc != mqtt.MQTT_ERR_SUCCESS:  # the connection went meanwhile: its return publishes them all
                log.debug("nudge for %s not sent (%s)", bid, info.rc)
        log.info("published the config nudge of %d branch(es): %s", len(nudges),
                 ", ".join(f"{b} v{n.version} staff {n.staff}" for b, n in nudges.items()))

    def _once(self, kind: str, message: str) -> None:
        """A failure logged once per kind until that kind works again (a broker away for an hour: one line)."""
        if kind not in self._logged:
            self._logged[kind] = message
            log.warning("%s", message)
