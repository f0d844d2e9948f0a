"""The records statistics keeps for itself: its tables, and device status history.

Written by the hub's writer thread inside its own transactions (``store.writers``),
so they are as durable as a ticket. No personal data.

- ``stats_device_status``: a device's status *change* (online ↔ offline, a printer
  state), from the MQTT ``devices/<id>/status`` messages the hub keeps in
  ``hub.devices`` (``DeviceChanges`` is statistics' ``device_status`` hook);
  downtime is worked out from these changes.
- ``stats_feedback``: visitors' ratings (one tap on a face), taken by the feedback
  plugin (``server/feedback/``), which writes its ``FeedbackRecord`` here so a report
  counts it.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from server.hookspecs import hookimpl
from server.store import SQLiteStore

log = logging.getLogger("vuoro.stats")

SCHEMA_NAME = "stats"
SCHEMA_STEPS: list[str] = [
    # 1: feedback taps and device status changes
    """
    CREATE TABLE stats_feedback (
        id      INTEGER PRIMARY KEY,
        site    TEXT NOT NULL,
        at      TEXT NOT NULL,                 -- ISO 8601 UTC
        rating  INTEGER NOT NULL CHECK (rating BETWEEN 1 AND 5),
        faces   INTEGER NOT NULL DEFAULT 5 CHECK (faces IN (3, 5)),
        service TEXT,
        device  TEXT
    );
    CREATE INDEX stats_feedback_at ON stats_feedback (site, at);
    CREATE TABLE stats_device_status (
        id      INTEGER PRIMARY KEY,
        site    TEXT NOT NULL,
        device  TEXT NOT NULL,
        kind    TEXT NOT NULL,
        at      TEXT NOT NULL,                 -- ISO 8601 UTC, the hub's clock when the change arrived
        online  INTEGER NOT NULL,
        printer TEXT,
        detail  TEXT
    );
    CREATE INDEX stats_device_status_at ON stats_device_status (site, device, at);
    """,
    # 2: a rating sent again with its Idempotency-Key (its answer was lost with the connection) counts once
    """
    ALTER TABLE stats_feedback ADD COLUMN request_key TEXT;
    CREATE UNIQUE INDEX stats_feedback_request_key ON stats_feedback (request_key) WHERE request_key IS NOT NULL;
    """,
]


@dataclass(frozen=True)
class DeviceStatusRecord:
    site: str
    device: str
    kind: str
    at: str
    online: bool
    printer: str | None = None
    detail: str | None = None


def write_device_status(db: sqlite3.Connection, r: DeviceStatusRecord) -> None:
    db.execute("INSERT INTO stats_device_status (site, device, kind, at, online, printer, detail) "
               "VALUES (?, ?, ?, ?, ?, ?, ?)", (r.site, r.device, r.kind, r.at, int(r.online), r.printer,
                                                 (r.detail or "")[:200] or None))


def last_device_states(store: SQLiteStore, site: str) -> dict[str, tuple[bool, str | None]]:
    """Each device's last recorded (online, printer), to tell a change from a repeat after a restart."""
    rows = store.rows(
        "SELECT device, online, printer FROM stats_device_status d WHERE site = ? AND id = "
        "(SELECT MAX(id) FROM stats_device_status e WHERE e.site = d.site AND e.device = d.device)", (site,))
    return {device: (bool(online), printer) for device, online, printer in rows}


class DeviceChanges:
    """The ``device_status`` hook of statistics: each status whose online/printer state differs from the last
    recorded one calls ``on_change`` (repeats of the same state are not recorded again).
    """

    def __init__(self, last: dict[str, tuple[bool, str | None]], on_change: Callable[[dict[str, Any]], None]):
        self._last = dict(last)
        self._on_change = on_change
        self._lock = threading.Lock()

    @hookimpl(specname="device_status")
    def __call__(self, status: dict[str, Any]) -> None:
        key = str(status.get("device"))
        try:
            state = (bool(status.get("online")), status.get("printer"))
            with self._lock:
                changed = self._last.get(key) != state
                self._last[key] = state
            if changed:
                self._on_change(status)
        except Exception:  # statistics must never break the MQTT link
            log.exception("could not record the status of device %s", key)
