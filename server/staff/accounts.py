"""Staff logins: the ``[staff]`` table of the site config, sessions and the login rate limit.

Passwords are stored only as argon2id hashes (``python -m server.staff.hashpw``).
Sessions live in memory on the hub: a random cookie value maps to the user, the
role and the session's CSRF token. A hub restart logs everyone out, which is
acceptable for a desk page (log in again) and means no session secret to keep.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from server.config import ConfigError
from vuoro.protocol import ID_PATTERN

ROLES = ("staff", "admin")
HASHER = PasswordHasher()  # argon2id, argon2-cffi's defaults (64 MiB, t=3): ≈ 0.1 s per try here
# Verified when the user name is unknown, so a wrong name costs as long as a wrong password.
_DUMMY_HASH = HASHER.hash(secrets.token_hex(16))


@dataclass(frozen=True)
class StaffUser:
    name: str
    role: str  # staff | admin
    password_hash: str


@dataclass(frozen=True)
class StaffSettings:
    users: dict[str, StaffUser]
    session_hours: float = 12.0  # a staff shift; idle sessions end after this
    secure_cookie: bool | None = None  # None: Secure exactly when the request came over https
    login_attempts: int = 5  # failures allowed per user name and per address ...
    login_window_s: float = 300.0  # ... within this many seconds


def parse_staff(raw: Any, source: str = "site config") -> StaffSettings:
    """Validate ``[staff]``; raises ConfigError listing every problem with its key path."""
    problems: list[str] = []
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(["staff: expected a table"], source)
    allowed = {"users", "session_hours", "secure_cookie", "login_attempts", "login_window_s"}
    problems += [f"staff.{k}: unknown key (allowed: {', '.join(sorted(allowed))})" for k in sorted(set(raw) - allowed)]

    def number(key: str, default: float, low: float, high: float) -> float:
        value = raw.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
            problems.append(f"staff.{key}: expected a number from {low:g} to {high:g}, got {value!r}")
            return default
        return float(value)

    session_hours = number("session_hours", 12.0, 0.1, 24 * 7)
    attempts = int(number("login_attempts", 5, 1, 100))
    window = number("login_window_s", 300.0, 1, 86400)
    secure = raw.get("secure_cookie")
    if secure is not None and not isinstance(secure, bool):
        problems.append(f"staff.secure_cookie: expected true or false, got {secure!r}")
        secure = None

    users: dict[str, StaffUser] = {}
    table = raw.get("users", {})
    if not isinstance(table, dict):
        problems.append(f"staff.users: expected a table of [staff.users.<name>], got {table!r}")
        table = {}
    for name, item in table.items():
        path = f"staff.users.{name}"
        if not ID_PATTERN.match(name):
            problems.append(f"{path}: expected a user name of lower-case letters, digits, '-' or '_' (at most 40)")
            continue
        if not isinstance(item, dict):
            problems.append(f"{path}: expected a table with role and password_hash")
            continue
        problems += [f"{path}.{k}: unknown key (allowed: password_hash, role)"
                     for k in sorted(set(item) - {"role", "password_hash"})]
        role = item.get("role", "staff")
        if role not in ROLES:
            problems.append(f"{path}.role: expected \"staff\" or \"admin\", got {role!r}")
            continue
        hashed = item.get("password_hash")
        if not isinstance(hashed, str) or not hashed.startswith("$argon2id$"):
            problems.append(f"{path}.password_hash: expected an argon2id hash (\"$argon2id$...\"; make one with "
                            f"`python -m server.staff.hashpw`), got {hashed!r}")
            continue
        try:
            HASHER.check_needs_rehash(hashed)  # parses the parameters: catches a truncated paste
        except (InvalidHashError, ValueError) as exc:
            problems.append(f"{path}.password_hash: not a valid argon2 hash ({exc})")
            continue
        users[name] = StaffUser(name, role, hashed)
    if problems:
        raise ConfigError(problems, source)
    return StaffSettings(users=users, session_hours=session_hours, secure_cookie=secure, login_attempts=attempts,
                         login_window_s=window)


def verify_password(settings: StaffSettings, name: str, password: str) -> StaffUser | None:
    """The user if the password is right; slow on purpose (argon2), the same for unknown names."""
    user = settings.users.get(name)
    try:
        HASHER.verify(user.password_hash if user else _DUMMY_HASH, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return None
    return user


@dataclass
class Session:
    token: str
    user: str
    role: str
    csrf: str
    last_seen: float = field(default_factory=time.monotonic)


class Sessions:
    """Server-side sessions, in memory, ended after ``idle_seconds`` without use."""

    MAX = 2000

    def __init__(self, idle_seconds: float, clock: Any = time.monotonic):
        self.idle = idle_seconds
        self.clock = clock
        self._by_token: dict[str, Session] = {}
        self._lock = threading.Lock()

    def create(self, user: StaffUser) -> Session:
        session = Session(secrets.token_urlsafe(32), user.name, user.role, secrets.token_urlsafe(32), self.clock())
        with self._lock:
            if len(self._by_token) >= self.MAX:
                oldest = min(self._by_token.values(), key=lambda s: s.last_seen)
                self._by_token.pop(oldest.token, None)
            self._by_token[session.token] = session
        return session

    def get(self, token: str | None) -> Session | None:
        if not token:
            return None
        now = self.clock()
        with self._lock:
            session = self._by_token.get(token)
            if session is None:
                return None
            if now - session.last_seen > self.idle:
                del self._by_token[token]
                return None
            session.last_seen = now
            return session

    def end(self, token: str | None) -> None:
        with self._lock:
            self._by_token.pop(token or "", None)


class LoginLimiter:
    """At most ``attempts`` failed logins per key (a user name, an address) within ``window`` seconds."""

    def __init__(self, attempts: int, window: float, clock: Any = time.monotonic):
        self.attempts = attempts
        self.window = window
        self.clock = clock
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, key: str, now: float) -> deque[float]:
        times = self._failures.setdefault(key, deque())
        while times and now - times[0] > self.window:
            times.popleft()
        return times

    def retry_after(self, *keys: str) -> float:
        """Seconds to wait before another try is allowed (0 when allowed)."""
        now = self.clock()
        with self._lock:
            waits = [self.window - (now - times[0]) for key in keys
                     if len(times := self._recent(key, now)) >= self.attempts]
        return max(waits, default=0.0)

    def failed(self, *keys: str) -> None:
        now = self.clock()
        with self._lock:
            if len(self._failures) > 10000:  # never let a flood of names grow memory without bound
                self._failures.clear()
            for key in keys:
                self._recent(key, now).append(now)

    def succeeded(self, key: str) -> None:
        with self._lock:
            self._failures.pop(key, None)
