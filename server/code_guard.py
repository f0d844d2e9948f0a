"""How many wrong booking codes the hub lets anyone try: the arithmetic and the limiter (issue 13, item 6).

A code is ``codes.LENGTH`` characters from ``codes.ALPHABET``: 32⁶ = 1,073,741,824
codes. A guess that finds nothing tells the guesser one code is not in use, so
the chance of hitting one given active booking within a day is at most
(wrong codes tried that day + 1) / 32⁶. To keep that below one in a million,
fewer than 1,073 wrong codes may be tried in a day at the whole site, whoever
tries them. Three token buckets (``server.throttle.Bucket``) count them:

- per device (the token's name) and per client address: ``PER_KEY`` — 6 at
  once, then 12 an hour (one per 5 minutes): 294 a day at most. A visitor who
  mistypes once or twice never meets it; a kiosk whose token was stolen is
  slowed within seconds, and staff see it (``alerts``).
- for the whole site: ``SITE`` — 20 at once, then 36 an hour: 884 a day at most,
  however many devices or addresses guess together. 884 / 32⁶ = 8.2 × 10⁻⁷.

The site bucket is what the bound rests on, so it is kept on disk and survives a
restart (a restart would otherwise hand out another 20, and restarts are not
something the hub can count on being rare: power cuts, the watchdog, updates).
The per-device and per-address buckets only decide who is slowed first; they
start full after a restart, which costs the bound nothing.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import time
from collections import deque
from pathlib import Path
from typing import Any

from server import codes
from server.throttle import Bucket

log = logging.getLogger("vuoro.codes")

CODE_SPACE = len(codes.ALPHABET) ** codes.LENGTH
CHANCE_PER_DAY = 1e-6  # the most a guesser may have of hitting a given booking in a day (shared/targets.md)
PER_KEY = {"burst": 6, "per_hour": 12.0}
SITE = {"burst": 20, "per_hour": 36.0}
ALERT_FAILURES = PER_KEY["burst"]  # wrong codes in an hour from one device that staff are told about
STATE_FILE = "checkin-guard.json"


def chance_per_day(wrong_codes_per_day: int) -> float:
    """The chance of hitting one given booking in a day with this many wrong codes tried (and one more)."""
    return (wrong_codes_per_day + 1) / CODE_SPACE


class CodeGuard:
    """Who may try a booking code now; what staff should know about devices that try too many."""

    def __init__(self, folder: Path | None, *, clock: Any = time.monotonic, wall_clock: Any = time.time,
                 make: Any = None):
        """``folder``: where the site bucket is kept. ``make(kind, burst, per_hour)``: buckets of their own
        instead (the centre's workers share theirs in PostgreSQL, ``central.shared_state.SharedBucket``; then
        nothing is kept on disk)."""
        if make is not None:
            self.keys, self.site = (make("keys", int(PER_KEY["burst"]), PER_KEY["per_hour"]),
                                    make("site", int(SITE["burst"]), SITE["per_hour"]))
        else:
            self.keys = Bucket(int(PER_KEY["burst"]), PER_KEY["per_hour"], clock=clock)
            self.site = Bucket(int(SITE["burst"]), SITE["per_hour"], clock=wall_clock)
        self.clock = clock
        self.path = folder / STATE_FILE if folder is not None and make is None else None
        self._failures: dict[str, deque[float]] = {}  # device → times of its wrong codes in the last hour
        self._slowed: dict[str, float] = {}  # device → when it was last told to wait
        self._load()

    def _load(self) -> None:
        if self.path is None:
            return
        try:
            state = json.loads(self.path.read_text())
        except FileNotFoundError:
            return  # a new site: a full bucket
        except (OSError, ValueError):
            log.warning("%s is unreadable: booking codes start slowed down for safety", self.path)
            state = {"site": [0.0, self.site.clock()]}
        try:
            self.site.restore({"site": state["site"]})
        except (KeyError, TypeError, ValueError):
            self.site.restore({"site": [0.0, self.site.clock()]})

    def _save(self) -> None:
        if self.path is None:
            return
        temporary = self.path.with_suffix(".tmp")
        try:
            temporary.write_text(json.dumps(self.site.state()))
            os.replace(temporary, self.path)
        except OSError as exc:  # a full disk must not stop check-ins; the bucket in memory still counts
            log.warning("could not save %s: %s", self.path, exc)

    def _keys(self, device: str, address: str) -> tuple[str, str]:
        return f"device:{device}", f"address:{address}"

    def take(self, device: str, address: str) -> int:
        """0 when this device may look a code up now (a try is taken); else the seconds to wait."""
        wait = self.keys.take(*self._keys(device, address))
        if wait == 0:
            wait = self.site.take("site")
            if wait:
                self.keys.give_back(*self._keys(device, address))
        if wait:
            self._slowed[device] = self.clock()
            return max(1, math.ceil(wait))
        return 0

    def settle(self, device: str, address: str, *, wrong_code: bool) -> None:
        """After the look-up: a wrong code keeps its try; anything else (found, a typo that cannot be a
        code, a replay, an error) gives it back."""
        if not wrong_code:
            self.keys.give_back(*self._keys(device, address))
            self.site.give_back("site")
            return
        self._save()
        recent = self._failures.setdefault(device, deque(maxlen=1000))
        recent.append(self.clock())

    def alerts(self) -> dict[str, list[dict[str, Any]]]:
        """Devices that tried many wrong codes in the last hour, or were told to wait in the last 15 minutes."""
        now = self.clock()
        found: dict[str, list[dict[str, Any]]] = {}
        for device in set(self._failures) | set(self._slowed):
            recent = self._failures.get(device, deque())
            while recent and now - recent[0] > 3600:
                recent.popleft()
            slowed = now - self._slowed.get(device, -math.inf) < 900
            if len(recent) >= ALERT_FAILURES or slowed:
                found[device] = [{"code": "booking_codes_guessed", "wrong_codes_last_hour": len(recent),
                                  "slowed": slowed,
                                  "message": f"{len(recent)} wrong booking codes in the last hour"
                                             + ("; slowed down" if slowed else "")}]
            elif not recent:
                self._failures.pop(device, None)
                with contextlib.suppress(KeyError):
                    del self._slowed[device]
        return found
