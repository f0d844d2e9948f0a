"""Reading the rows statistics need, on a read-only connection the store hands out (``store.reader()``).

A year's report reads ~300,000 tickets: it runs in a worker thread on a connection of its own,
never on the writer thread, so it never holds up a ticket. The bookings', events' and
feedback's tables are read where their plugins made them; a table that is not there (its
plugin is not installed) gives nothing to count.
"""

from __future__ import annotations

import sqlite3
from datetime import date, datetime, timedelta
from typing import Any

from server.stats.figures import TICKET_FIELDS, DeviceChange, Feedback


def table_exists(db: sqlite3.Connection, name: str) -> bool:
    return db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)).fetchone() is not None


def read_tickets(db: sqlite3.Connection, site: str, start: date, end: date, *,
                 lean: bool = False) -> list[tuple[Any, ...]]:
    """Tickets whose service day is within [start − 1, end + 1]; ``summarize`` trims by local issue day.

    ``lean`` reads only what ``summarize`` needs (no label, language or recalls; the id only for a
    transferred ticket) in store order: half the time of the full rows in issue order, for the CSV.
    """
    if lean:
        cols = ", ".join({"id": "CASE WHEN transfers > 0 THEN id END", "label": "NULL", "day": "NULL",
                          "language": "NULL", "recalls": "NULL"}.get(f, f) for f in TICKET_FIELDS)
    else:
        cols = ", ".join("letter || printf('%03d', number)" if f == "label" else f for f in TICKET_FIELDS)
    return db.execute(
        f"SELECT {cols} FROM tickets WHERE site = ? AND day BETWEEN ? AND ?{'' if lean else ' ORDER BY issued_at'}",
        (site, (start - timedelta(days=1)).isoformat(), (end + timedelta(days=1)).isoformat()),
    ).fetchall()


def read_first_calls(db: sqlite3.Connection, site: str, start: date, end: date) -> dict[str, str]:
    """For tickets that were transferred: the time of their FIRST call (the ticket row keeps the last).

    Looks only between each ticket's place in line and its last call on the ``ticket_log (at)`` index
    (UTC ISO text sorts in time order), so a year costs a fraction of a second.
    """
    rows = db.execute(
        "SELECT t.id, (SELECT MIN(l.at) FROM ticket_log l WHERE l.at >= t.queued_at AND l.at <= t.called_at "
        "AND l.ticket_id = t.id AND l.kind = 'called') FROM tickets t "
        "WHERE t.site = ? AND t.day BETWEEN ? AND ? AND t.transfers > 0 AND t.called_at IS NOT NULL",
        (site, (start - timedelta(days=1)).isoformat(), (end + timedelta(days=1)).isoformat()),
    )
    return {tid: at for tid, at in rows if at}


def read_feedback(db: sqlite3.Connection, site: str, lo: datetime, hi: datetime) -> list[Feedback]:
    if not table_exists(db, "stats_feedback"):
        return []
    rows = db.execute("SELECT at, rating, service, device FROM stats_feedback WHERE site = ? AND at >= ? AND at < ? "
                      "ORDER BY at", (site, lo.isoformat(), hi.isoformat()))
    return [Feedback(*row) for row in rows]


def read_device_changes(db: sqlite3.Connection, site: str, lo: datetime, hi: datetime) -> list[DeviceChange]:
    if not table_exists(db, "stats_device_status"):
        return []
    rows = db.execute(
        "SELECT device, kind, at, online, printer FROM stats_device_status d WHERE site = ? AND at < ? AND "
        "(at >= ? OR at = (SELECT MAX(at) FROM stats_device_status e WHERE e.site = d.site AND e.device = d.device "
        "AND e.at < ?)) ORDER BY at",
        (site, hi.isoformat(), lo.isoformat(), lo.isoformat()),
    )
    return [DeviceChange(device, kind, at, bool(online), printer) for device, kind, at, online, printer in rows]


def read_bookings(db: sqlite3.Connection, site: str, lo: datetime, hi: datetime) -> dict[str, Any] | None:
    """Bookings whose time falls in [lo, hi), counted by status (booked, checked_in = kept, no_show,
    cancelled), from the bookings plugin's table (server/bookings/records.py); None where it is not installed."""
    if not table_exists(db, "bookings"):
        return None
    counts = dict(db.execute(
        "SELECT status, COUNT(*) FROM bookings WHERE site = ? AND start >= ? AND start < ? GROUP BY status",
        (site, lo.isoformat(), hi.isoformat())).fetchall())
    return {"by_status": counts, "total": sum(counts.values()), "kept": counts.get("checked_in", 0),
            "no_show": counts.get("no_show", 0)}


def read_events(db: sqlite3.Connection, site: str, lo: datetime, hi: datetime) -> dict[str, Any] | None:
    """Events entered by staff that start in [lo, hi) (not cancelled), sign-ups made in [lo, hi) — a seat or a
    waiting-list place — and attendance: visitors who checked in at the kiosk with their sign-up code in
    [lo, hi), from the events plugin's tables (server/events/records.py).

    Feed events live in the feeds, not the store, so only sign-ups count them. ``attended`` is None where
    the events tables predate attendance (no ``attended_at``).
    """
    if not table_exists(db, "event_signups") or not table_exists(db, "events_local"):
        return None
    span = (site, lo.isoformat(), hi.isoformat())
    events = db.execute("SELECT COUNT(*) FROM events_local WHERE site = ? AND start >= ? AND start < ? "
                        "AND state != 'cancelled'", span).fetchone()[0]
    signups, seated = db.execute(
        "SELECT COUNT(*), COALESCE(SUM(seat IS NOT NULL), 0) FROM event_signups "
        "WHERE site = ? AND created_at >= ? AND created_at < ?", span).fetchone()
    attended = None
    if any(column[1] == "attended_at" for column in db.execute("PRAGMA table_info(event_signups)")):
        attended = db.execute("SELECT COUNT(*) FROM event_signups WHERE site = ? AND attended_at >= ? "
                              "AND attended_at < ?", span).fetchone()[0]
    return {"events": events, "signups": signups, "seated": seated, "waiting_list": signups - seated,
            "attended": attended}
