"""Keeps the statistics' per-day aggregates fresh in the background (central/rollup.py), once a minute.

A summary refreshes the days of its own period before it reads, so this is not needed for the figures
to be right; it keeps that refresh small (a day or two rather than everything since the last summary)
and builds the aggregates of a database migrated from a version without them. Its own thread, one
pooled connection at a time; a database away is logged and tried again next round.
"""

from __future__ import annotations

import logging
import threading

from psycopg_pool import ConnectionPool

from central import rollup
from central.config import CentreConfig

log = logging.getLogger("vuoro.central.refresher")


class StatsRefresher:
    def __init__(self, config: CentreConfig, pool: ConnectionPool, interval_s: float = 60.0):
        self.config, self.pool, self.interval_s = config, pool, interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="vuoro-stats-refresher", daemon=True)

    def start(self) -> StatsRefresher:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        delay = 5.0  # soon after the start: a freshly migrated database gets its aggregates built
        while not self._stop.wait(delay):
            self.refresh_all()
            delay = self.interval_s

    def refresh_all(self) -> int:
        done = 0
        for branch in self.config.branches.values():
            if self._stop.is_set():
                break
            try:
                with self.pool.connection() as db:
                    done += rollup.refresh(db, branch)
            except Exception as exc:  # the database away, a restart: the next round tries again
                log.warning("statistics of %s not refreshed: %s", branch.id, exc)
        return done
