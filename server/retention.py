"""How long the visit history is kept: ONE rule for tickets and feedback ratings (``[hub] history_days``).

Tickets and ratings are anonymous (a number, times, a language; a face tapped), kept for statistics. A site
that must not keep them for ever sets ``history_days``: rows of local days older than that are deleted, the
tickets with their log, calls and retry keys, and the ratings given before that day. 0 (the default) keeps
everything. Personal data has rules of its own and shorter ones (``[bookings] retention_days``).

A hub plugin (its hooks: ``server/hookspecs.py``): a tick job, at most every ``PURGE_EVERY``, sends one
``ForgetHistory`` record; the writer deletes everything it names in one transaction. Tickets still waiting or
called are never deleted, and 31 days is the least a site may set, so today's queue is never touched.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any

from server.engine import Outcome, QueueEngine
from server.hookspecs import hookimpl
from server.store import ts

if TYPE_CHECKING:
    from fastapi import FastAPI

    from server.config import SiteConfig
    from server.hub import Hub

PURGE_EVERY = timedelta(minutes=10)
MIN_HISTORY_DAYS = 31  # a month's statistics are always there to report


def cutoff(config: SiteConfig, today: date) -> date | None:
    """The first local day still kept, or None when the site keeps everything: the one rule."""
    return today - timedelta(days=config.history_days) if config.history_days else None


@dataclass(frozen=True)
class ForgetHistory:
    site: str
    before_day: str  # tickets of local days before this go
    before_at: str  # that day's local midnight, in UTC as the store keeps times: ratings given before go


def _has_table(db: sqlite3.Connection, name: str) -> bool:
    return db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)).fetchone() is not None


def write_forget(db: sqlite3.Connection, record: ForgetHistory) -> None:
    old = "SELECT id FROM tickets WHERE site = ? AND day < ? AND status NOT IN ('waiting', 'called')"
    args = (record.site, record.before_day)
    if _has_table(db, "bookings"):  # a checked-in booking keeps its row (its personal data went long ago)
        db.execute(f"UPDATE bookings SET ticket_id = NULL WHERE ticket_id IN ({old})", args)
    for table in ("ticket_log", "calls", "idempotency"):
        db.execute(f"DELETE FROM {table} WHERE ticket_id IN ({old})", args)
    db.execute(f"UPDATE counters SET ticket_id = NULL WHERE ticket_id IN ({old})", args)
    db.execute(f"DELETE FROM tickets WHERE id IN ({old})", args)
    if _has_table(db, "stats_feedback"):
        db.execute("DELETE FROM stats_feedback WHERE site = ? AND at < ?", (record.site, record.before_at))


@hookimpl
def record_writers() -> dict[type, Any]:
    return {ForgetHistory: write_forget}


@hookimpl
def install(app: FastAPI, hub: Hub) -> None:
    hub.plugins.register(Retention(hub.config, hub))


class Retention:
    """The tick job: at most every ``PURGE_EVERY``, and only when there is something to forget."""

    def __init__(self, config: SiteConfig, hub: Hub):
        self.config = config
        self.store = hub.store  # read on the writer thread only (ticks run there)
        self.last: datetime | None = None

    @hookimpl
    def tick(self, engine: QueueEngine, now: datetime) -> Outcome | None:
        day = cutoff(self.config, engine.local(now).date())
        if day is None or (self.last is not None and now - self.last < PURGE_EVERY):
            return None
        self.last = now
        site = self.config.site_id
        before_at = ts(datetime.combine(day, time.min, self.config.timezone))
        tickets = self.store.row("SELECT 1 FROM tickets WHERE site = ? AND day < ? AND status NOT IN "
                                 "('waiting', 'called') LIMIT 1", (site, day.isoformat()))
        ratings = self.store.row("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'stats_feedback'") and \
            self.store.row("SELECT 1 FROM stats_feedback WHERE site = ? AND at < ? LIMIT 1", (site, before_at))
        if not tickets and not ratings:
            return None
        return Outcome(records=[ForgetHistory(site, day.isoformat(), before_at)])
