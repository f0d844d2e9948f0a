"""Slowing down guessers: failed tries counted per key (a device, an address, a user name).

Two shapes, for two kinds of guessing (docs/bookings.md and docs/staff.md say why each):

- :class:`Backoff` for passwords: a few failures are free, then each further one
  waits twice as long as the one before, up to a longest wait; failures are
  forgiven slowly over quiet time, and at once by a success.
- :class:`Bucket` for booking codes: a token bucket, so a key may fail ``burst``
  times at once and then ``per_hour`` times an hour, whatever it does. That
  gives a hard number of guesses a day, which is what the chance of guessing a
  code rests on. A try is taken before it is made and given back if it was not a
  failure, so tries sent all at once cannot slip through together.

Both are plain objects with an injectable clock; the caller serialises access (the
hub's event loop) or they lock themselves (both take a lock, which costs nothing
here). Memory is bounded: at most ``max_keys`` keys, the least useful dropped first.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

Clock = Callable[[], float]


class Backoff:
    """``free`` failures per key, then waits of ``first``, 2×, 4×… seconds, at most ``longest``.

    One failure is forgiven for every ``forgive`` seconds without a new one."""

    def __init__(self, free: int, *, first: float = 1.0, longest: float = 300.0, forgive: float = 600.0,
                 clock: Clock = time.monotonic, max_keys: int = 10_000):
        self.free, self.first, self.longest, self.forgive = free, first, longest, forgive
        self.clock = clock
        self.max_keys = max_keys
        self._failures: dict[str, tuple[int, float]] = {}  # key → (failures, time of the last)
        self._lock = threading.Lock()

    def _count(self, key: str, now: float) -> tuple[int, float]:
        count, last = self._failures.get(key, (0, now))
        return max(0, count - int(max(0.0, now - last) // self.forgive)), last

    def failures(self, key: str) -> int:
        with self._lock:
            return self._count(key, self.clock())[0]

    def wait(self, *keys: str) -> float:
        """Seconds until another try is allowed for all of these keys (0: now)."""
        now = self.clock()
        longest = 0.0
        with self._lock:
            for key in keys:
                count, last = self._count(key, now)
                if count >= self.free:
                    delay = min(self.first * 2 ** min(count - self.free, 30), self.longest)
                    longest = max(longest, last + delay - now)
        return max(0.0, longest)

    def failed(self, *keys: str) -> None:
        now = self.clock()
        with self._lock:
            for key in keys:
                count, _ = self._count(key, now)
                self._failures[key] = (count + 1, now)
            if len(self._failures) > self.max_keys:  # a flood of names or addresses: keep the worst ones
                keep = sorted(self._failures.items(), key=lambda item: self._count(item[0], now)[0])
                self._failures = dict(keep[len(keep) - self.max_keys // 2:])

    def forget(self, *keys: str) -> None:
        with self._lock:
            for key in keys:
                self._failures.pop(key, None)


class Bucket:
    """A token bucket per key: ``burst`` tries at once, then ``per_hour`` an hour; at most
    ``burst + 24 × per_hour`` in any day."""

    def __init__(self, burst: int, per_hour: float, *, clock: Clock = time.monotonic, max_keys: int = 10_000):
        self.burst, self.rate = float(burst), per_hour / 3600.0
        self.clock = clock
        self.max_keys = max_keys
        self._tokens: dict[str, tuple[float, float]] = {}  # key → (tokens, as of)
        self._lock = threading.Lock()

    @property
    def per_day(self) -> int:
        """The most tries a key gets in 24 hours: a full bucket plus a day of refill."""
        return int(self.burst + self.rate * 86400)

    def _level(self, key: str, now: float) -> float:
        tokens, at = self._tokens.get(key, (self.burst, now))
        return min(self.burst, tokens + max(0.0, now - at) * self.rate)

    def level(self, key: str) -> float:
        with self._lock:
            return self._level(key, self.clock())

    def wait(self, *keys: str) -> float:
        """Seconds until every key has a whole try left (0: now)."""
        now = self.clock()
        with self._lock:
            missing = max((1.0 - self._level(key, now) for key in keys), default=0.0)
        return max(0.0, missing / self.rate) if missing > 0 else 0.0

    def take(self, *keys: str) -> float:
        """Take a try from every key at once if each has one (0.0), else take nothing and return the wait.

        Taking before the try (and ``give_back`` after one that was not a failure) is what keeps many
        tries sent at the same moment from all slipping through an empty bucket."""
        now = self.clock()
        with self._lock:
            missing = max((1.0 - self._level(key, now) for key in keys), default=0.0)
            if missing > 1e-9:
                return missing / self.rate
            self._spend(keys, now, -1.0)
        return 0.0

    def give_back(self, *keys: str) -> None:
        with self._lock:
            self._spend(keys, self.clock(), +1.0)

    def _spend(self, keys: tuple[str, ...], now: float, change: float) -> None:
        for key in keys:
            self._tokens[key] = (min(self.burst, self._level(key, now) + change), now)
        if len(self._tokens) > self.max_keys:  # full buckets carry no memory: drop those first
            self._tokens = {k: v for k, v in self._tokens.items() if self._level(k, now) < self.burst}
            if len(self._tokens) > self.max_keys:
                self._tokens = dict(sorted(self._tokens.items(), key=lambda kv: kv[1][1])[-self.max_keys // 2:])

    # -- persistence (the caller picks a wall clock for a bucket that must outlive the process) --

    def state(self) -> dict[str, list[float]]:
        with self._lock:
            return {key: [tokens, at] for key, (tokens, at) in self._tokens.items()}

    def restore(self, state: dict[str, list[float]]) -> None:
        now = self.clock()
        with self._lock:
            for key, (tokens, at) in state.items():
                # A clock that went back must not refill anything: count from now.
                self._tokens[key] = (min(self.burst, float(tokens)), min(float(at), now))
