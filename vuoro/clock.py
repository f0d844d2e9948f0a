"""A hub clock that tests can set and step: midnight, DST nights and clock steps through the real process.

Never on a site. When ``VUORO_TEST_CLOCK`` names a file, ``vuoro hub`` takes
its time from that file instead of the machine's clock. The file holds one
ISO 8601 instant with an offset (``2026-11-23T23:59:58+01:00``) and means
"when this file was written, the time was this"; from there the clock runs
at real speed. Writing the file again steps the clock, forwards or back,
the way NTP or a manual fix steps a Pi's clock while the hub runs.

What follows this clock is the hub's business time: ``Hub.clock`` (days,
numbering, tickets, calls, opening hours, bookings, statistics) and the
``at`` of the state it publishes. Timeouts, TLS and logs keep the machine's
clock. ``toolkit.hub_process.HubProcess(clock=...)`` writes the file and sets the
variable; ``HubProcess.set_clock`` steps it.
"""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ENV = "VUORO_TEST_CLOCK"


def write_clock_file(path: str | Path, when: datetime) -> None:
    """Set (or step) the clock: atomically, so the hub never reads half a line."""
    if when.tzinfo is None:
        raise ValueError("the test clock needs an aware time (with an offset)")
    path = Path(path)
    partial = path.with_name(path.name + ".new")
    partial.write_text(when.isoformat() + "\n")
    os.replace(partial, path)


class FileClock:
    """``clock()`` → an aware UTC datetime: the file's instant plus the real time since it was written."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._seen: tuple[int, int] | None = None
        self._base = datetime.now(UTC)
        self._written = time.time()
        self()  # a missing or unreadable file fails at start, not on the first ticket

    def __call__(self) -> datetime:
        info = os.stat(self.path)
        seen = (info.st_ino, info.st_mtime_ns)
        if seen != self._seen:
            when = datetime.fromisoformat(self.path.read_text().strip())
            if when.tzinfo is None:
                raise ValueError(f"{self.path}: the test clock needs a time with an offset")
            self._base, self._written, self._seen = when.astimezone(UTC), info.st_mtime_ns / 1e9, seen
        return self._base + timedelta(seconds=time.time() - self._written)


def clock_from_env() -> FileClock | None:
    path = os.environ.get(ENV)
    return FileClock(path) if path else None
