"""The door code: a short code that changes every minute, shown as a QR on the screens by the door.

Only someone who sees a screen in the house (or its live stream) has a current code, so a photo of a code
taken yesterday, or shared online, takes no ticket. A code is an HMAC of the time window with the site's
secret (kept in the hub's store, made once at random): nothing to remember per code, and every hub process
of the site agrees. The current and the previous window are accepted, so a code scanned just before it
changes still works while the visitor chooses a service.

A visitor who scanned a live code gets a pass (``pass_for``): the same HMAC over when it ends, good for
``PASS_MINUTES``, so reading the list of services calmly never makes the code go stale under their thumb.

A daily code (for a site that prints its poster each morning, ``[phone] poster = "daily"``) is the same
HMAC over the site's local date, good for that date only.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

CODE_CHARS = 10  # 50 bits: guessing one of the two live codes by chance is out of reach at any rate limit
PASS_MINUTES = 15


@dataclass(frozen=True)
class DoorCodes:
    secret: bytes
    site: str
    every_s: int = 60

    def _mac(self, what: str) -> str:
        digest = hmac.new(self.secret, f"{self.site}:{what}".encode(), hashlib.sha256).digest()
        return base64.b32encode(digest).decode()[:CODE_CHARS].lower()

    def window(self, now: datetime) -> int:
        return int(now.timestamp() // self.every_s)

    def current(self, now: datetime) -> str:
        return self._mac(f"m{self.window(now)}")

    def changes_at(self, now: datetime) -> datetime:
        return datetime.fromtimestamp((self.window(now) + 1) * self.every_s, UTC)

    def daily(self, day: date) -> str:
        return "d" + self._mac(f"d{day.isoformat()}")[1:]

    def pass_for(self, now: datetime) -> str:
        until = int((now + timedelta(minutes=PASS_MINUTES)).timestamp())
        return f"p{until}-{self._mac(f'p{until}')}"

    def accepts(self, code: str, now: datetime, *, local_day: date | None = None) -> bool:
        """Whether ``code`` is the current or the previous window's (or, with ``local_day``, that day's), or a
        pass that has not run out."""
        if not code:
            return False
        if code.startswith("p") and "-" in code:
            until, _, mac = code[1:].partition("-")
            return (until.isascii() and until.isdigit() and len(until) <= 12 and now.timestamp() < int(until)
                    and hmac.compare_digest(mac.encode(), self._mac(f"p{until}").encode()))
        live = [self.current(now), self.current(now - timedelta(seconds=self.every_s))]
        if local_day is not None:
            live.append(self.daily(local_day))
        # As bytes: compare_digest refuses str with non-ASCII letters, and anyone may send anything here.
        return any(hmac.compare_digest(code.encode(), c.encode()) for c in live)
