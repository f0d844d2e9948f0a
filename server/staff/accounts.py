"""Staff logins: the ``[staff]`` table of the site config, sessions, known devices and the login back-off.

Passwords are stored only as argon2id hashes (``python -m server.staff.hashpw``).
Sessions live in memory on the hub: a random cookie value maps to the user, the
role and the session's CSRF token. A hub restart logs everyone out, which is
acceptable for a desk page (log in again) and means no session secret to keep.

Wrong passwords slow down whoever sends them, never the staff member at their own
desk (:class:`LoginGuard`): a browser where a user has logged in before carries a
signed cookie (:class:`KnownDevices`), and its tries are counted apart from
everyone else's.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import os
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from server.config import ConfigError, check_number, check_unknown_keys
from server.staff.directory import DIRECTORY_NAME, LdapSettings, parse_ldap
from server.staff.oidc import OidcSettings, parse_oidc
from server.throttle import Backoff
from vuoro.protocol import ID_PATTERN

ROLES = ("staff", "admin")
HASHER = PasswordHasher()  # argon2id, argon2-cffi's defaults (64 MiB, t=3): ≈ 0.1 s per try here
# Verified when the user name is unknown, so a wrong name costs as long as a wrong password: a hash, with HASHER's
# parameters, of a random secret that was thrown away (tests/test_hub_lean.py checks the parameters still match).
# Not hashed at import: that cost every hub start 0.1-0.9 s of argon2 (64 MiB, 4 lanes) on a 2-core machine.
_DUMMY_HASH = "$argon2id$v=19$m=65536,t=3,p=4$8nCZ3asXSSr9dY+fzHkAlQ$ha3vAxG/f8Sb7/TOxHAH/3zFSAOrV3iUsXQdLUKTVDo"


@dataclass(frozen=True)
class StaffUser:
    name: str
    role: str  # staff | admin
    password_hash: str  # "" for a user from the directory or the OpenID provider
    desks: tuple[str, ...] = ()  # the desks this user may call from; empty: every desk
    via: str = "local"  # local | ldap | offline | oidc: how they signed in (the hub's log says it)


@dataclass(frozen=True)
class StaffSettings:
    users: dict[str, StaffUser]
    session_hours: float = 12.0  # a staff shift; idle sessions end after this
    secure_cookie: bool | None = None  # None: Secure exactly when the request came over https
    login_attempts: int = 5  # failed logins that cost nothing, per user name and address (see LoginGuard) ...
    login_max_wait_s: float = 300.0  # ... then waits that double each time, up to this long
    ldap: LdapSettings | None = None  # [staff.ldap]: the municipality's directory (server/staff/directory.py)
    oidc: OidcSettings | None = None  # [staff.oidc]: an OpenID Connect provider (server/staff/oidc.py)


def parse_staff(raw: Any, source: str = "site config") -> StaffSettings:
    """Validate ``[staff]``; raises ConfigError listing every problem with its key path."""
    problems: list[str] = []
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(["staff: expected a table"], source)
    allowed = {"users", "ldap", "oidc", "session_hours", "secure_cookie", "login_attempts", "login_max_wait_s",
               "login_window_s"}  # the older name of login_max_wait_s
    check_unknown_keys(raw, allowed, "staff", problems)

    def number(key: str, default: float, low: float, high: float) -> float:
        return check_number(raw, key, "staff", default, low, high, problems)

    session_hours = number("session_hours", 12.0, 0.1, 24 * 7)
    attempts = int(number("login_attempts", 5, 1, 100))
    longest = number("login_max_wait_s" if "login_max_wait_s" in raw else "login_window_s", 300.0, 1, 86400)
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
        check_unknown_keys(item, {"role", "password_hash"}, path, problems)
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
    ldap = parse_ldap(raw.get("ldap"), problems)
    oidc = parse_oidc(raw.get("oidc"), problems)
    if problems:
        raise ConfigError(problems, source)
    return StaffSettings(users=users, session_hours=session_hours, secure_cookie=secure, login_attempts=attempts,
                         login_max_wait_s=longest, ldap=ldap, oidc=oidc)


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
    desks: tuple[str, ...] = ()
    last_seen: float = field(default_factory=time.monotonic)


_S = TypeVar("_S")  # a session: anything with ``token`` and ``last_seen``


class SessionStore(Generic[_S]):
    """Server-side sessions (anything with ``token`` and ``last_seen``), in memory, ended after ``idle_seconds``
    without use; the least recently used goes when ``MAX`` are open. The hub's staff page keeps its sessions here;
    the centre's pages keep theirs in PostgreSQL, for all its worker processes (central/shared_state.py)."""

    MAX = 2000

    def __init__(self, idle_seconds: float, clock: Any = time.monotonic):
        self.idle = idle_seconds
        self.clock = clock
        self._by_token: dict[str, _S] = {}
        self._lock = threading.Lock()

    def keep(self, session: _S) -> _S:
        with self._lock:
            if len(self._by_token) >= self.MAX:
                oldest = min(self._by_token.values(), key=lambda s: s.last_seen)
                self._by_token.pop(oldest.token, None)
            self._by_token[session.token] = session
        return session

    def get(self, token: str | None) -> _S | None:
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

    def end_where(self, ended: Callable[[_S], bool]) -> int:
        """End every session ``ended`` picks (an account disabled or changed); how many."""
        with self._lock:
            gone = [token for token, session in self._by_token.items() if ended(session)]
            for token in gone:
                del self._by_token[token]
        return len(gone)


class Sessions(SessionStore[Session]):
    """The staff page's sessions."""

    def create(self, user: StaffUser) -> Session:
        return self.keep(Session(secrets.token_urlsafe(32), user.name, user.role, secrets.token_urlsafe(32),
                                 user.desks, self.clock()))

    # A hub that restarts itself in place on the centre's new config (server/main.py) hands its open sessions to
    # the process that follows, so staff at their desks stay signed in. The file lives for the restart's seconds
    # only: mode 0600, taken and deleted at once, ignored when older than HANDOVER_S.
    HANDOVER = "staff-sessions.handover.json"
    HANDOVER_S = 120.0

    def hand_over(self, folder: Path) -> int:
        with self._lock:
            open_now = [{"token": s.token, "user": s.user, "role": s.role, "csrf": s.csrf, "desks": list(s.desks)}
                        for s in self._by_token.values() if self.clock() - s.last_seen <= self.idle]
        tmp = folder / f".{self.HANDOVER}.tmp"
        descriptor = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as out:
            out.write(json.dumps({"at": time.time(), "sessions": open_now}))
        os.replace(tmp, folder / self.HANDOVER)
        return len(open_now)

    def take_over(self, folder: Path) -> int:
        path = folder / self.HANDOVER
        try:
            body = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return 0
        finally:
            with contextlib.suppress(OSError):
                path.unlink()
        if not isinstance(body, dict) or not 0 <= time.time() - float(body.get("at", 0)) <= self.HANDOVER_S:
            return 0
        now = self.clock()
        with self._lock:
            for s in body.get("sessions", []):
                self._by_token[s["token"]] = Session(s["token"], s["user"], s["role"], s["csrf"],
                                                     tuple(s["desks"]), now)
        return len(body.get("sessions", []))


class LoginGuard:
    """Who may try a password now: brute force is slowed, nobody is locked out by someone else.

    From a device the user has logged in on before (its cookie, :class:`KnownDevices`),
    only that device's own failures count. From anywhere else three counts apply, each
    with free failures and then waits that double (server.throttle.Backoff):
    the user name from this address (``attempts`` free), this address with any name
    (4 × ``attempts``: a desk PC several people use), and the user name from every
    unknown device together (4 × ``attempts``: guessing one password from many
    addresses). The right password forgets the counts of the user name; an address's
    count is only forgiven with time (one failure per 10 minutes)."""

    def __init__(self, attempts: int, longest: float, clock: Any = time.monotonic,
                 make: Callable[..., Any] | None = None):
        """``make(kind, free, first=, longest=, forgive=)``: a counter of its own instead of an in-memory
        ``Backoff`` (the centre's workers share theirs: ``central.shared_state.SharedBackoff``)."""
        def backoff(kind: str, free: int) -> Backoff:
            if make is not None:
                return make(kind, free, first=1.0, longest=longest, forgive=600.0)  # type: ignore[no-any-return]
            return Backoff(free, first=1.0, longest=longest, forgive=600.0, clock=clock)

        self.pair, self.address, self.elsewhere, self.device = (
            backoff("pair", attempts), backoff("address", 4 * attempts), backoff("elsewhere", 4 * attempts),
            backoff("device", attempts))

    def _keys(self, user: str, address: str, device: str | None) -> list[tuple[Backoff, str]]:
        if device:
            return [(self.device, device)]
        return [(self.pair, f"{user}|{address}"), (self.address, address), (self.elsewhere, user)]

    def wait(self, user: str, address: str, device: str | None) -> float:
        return max(counter.wait(key) for counter, key in self._keys(user, address, device))

    def failed(self, user: str, address: str, device: str | None) -> None:
        for counter, key in self._keys(user, address, device):
            counter.failed(key)

    def succeeded(self, user: str, address: str, device: str | None) -> None:
        self.pair.forget(f"{user}|{address}")
        self.elsewhere.forget(user)
        if device:
            self.device.forget(device)


class KnownDevices:
    """Signed cookies that mark a browser where a user has logged in (``<device id>.<signature>``).

    The signature is an HMAC-SHA256 of the user name and the device id under a secret kept
    in the hub's data folder (``staff-devices.key``, made at first start, mode 0600): it
    survives restarts, and deleting it forgets every device."""

    DAYS = 365
    FILE = "staff-devices.key"

    def __init__(self, secret: bytes):
        self.secret = secret

    @classmethod
    def in_folder(cls, folder: Path) -> KnownDevices:
        path = folder / cls.FILE
        try:
            secret = bytes.fromhex(path.read_text().strip())
        except (OSError, ValueError):
            secret = b""
        if len(secret) < 32:
            secret = secrets.token_bytes(32)
            folder.mkdir(parents=True, exist_ok=True)
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(descriptor, "w") as out:
                out.write(secret.hex() + "\n")
        return cls(secret)

    @staticmethod
    def cookie_name(user: str) -> str | None:
        """One cookie per user name (several people may share a desk PC); None for a name no user can have.

        A directory name with '.' or '@' ("anna.jensen", "aj@kommune.dk") is not a valid cookie name:
        it is named by a digest of the name instead."""
        if ID_PATTERN.match(user):
            return f"vuoro_device_{user}"
        if DIRECTORY_NAME.match(user):
            return f"vuoro_device_{hashlib.sha256(user.encode()).hexdigest()[:20]}"
        return None

    def _sign(self, user: str, device: str) -> str:
        mac = hmac.new(self.secret, f"{user}\n{device}".encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac).decode().rstrip("=")

    def issue(self, user: str) -> str:
        device = secrets.token_urlsafe(12)
        return f"{device}.{self._sign(user, device)}"

    def device(self, user: str, value: str | None) -> str | None:
        """The device id if ``value`` is this user's known-device cookie, else None."""
        device, _, signature = (value or "").partition(".")
        if not device or len(value or "") > 200:
            return None
        return device if hmac.compare_digest(signature.encode(), self._sign(user, device).encode()) else None
