"""Signing in with the municipality's directory: LDAP or Active Directory (``[staff.ldap]``).

The hub binds *as the staff member* with the password they typed (no service account to
keep), reads their own entry with ``user_filter`` (which can also leave out disabled
accounts), then the groups that name them with ``group_filter``; the first group listed in
``[staff.ldap.groups]`` that they are in gives the role and, optionally, the desks they
may call from. A right password without such a group is refused in plain words.

When the directory cannot be reached (down, or a branch cut off from the town hall), a
staff member who signed in through it within ``offline_days`` still gets in: the hub keeps
an argon2id hash of their last good password with their role (:class:`OfflineLogins`). A
"not in the group" or "account disabled" answer from the directory forgets that copy at once,
and so does "wrong password" for the very password that was kept (it was changed): the copy
never outlives what the directory said last. (A wrong guess by someone else forgets nothing.)
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import ssl
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from server.config import check_number, check_unknown_keys

ROLES = ("staff", "admin")
# Directory names are wider than the hub's ids: "anna.jensen", "aj@kommune.dk".
DIRECTORY_NAME = re.compile(r"^[a-z0-9][a-z0-9._@-]{0,63}$")


@dataclass(frozen=True)
class Grant:
    """What a directory group gives: a role, and the desks its members may call from (empty: every desk)."""

    role: str
    desks: tuple[str, ...] = ()
    branches: tuple[str, ...] | None = None  # at the centre: the branches its members see (None: every branch)


def parse_groups(raw: Any, path: str, problems: list[str], *, lower: bool,
                 branches: set[str] | None = None) -> dict[str, Grant]:
    """``[<path>]``: group → "staff" | "admin" | {role = ..., desks = [...]}, in the order written.

    At the centre (``branches``: the centre's branch ids) a group says which branches its members see instead:
    {role = ..., branches = ["id", ...] or "all"}, always written out (no group sees every branch by default)."""
    if branches is not None:
        return _parse_centre_groups(raw, path, problems, lower=lower, known=branches)
    grants: dict[str, Grant] = {}
    if not isinstance(raw, dict) or not raw:
        problems.append(f"{path}: expected a table of group = \"staff\" or \"admin\" (at least one group), "
                        f"got {raw!r}")
        return grants
    for group, value in raw.items():
        where = f'{path}."{group}"'
        if isinstance(value, str):
            value = {"role": value}
        if not isinstance(value, dict):
            problems.append(f"{where}: expected \"staff\", \"admin\" or a table with role and desks, got {value!r}")
            continue
        check_unknown_keys(value, {"role", "desks"}, where, problems)
        role = value.get("role")
        if role not in ROLES:
            problems.append(f"{where}.role: expected \"staff\" or \"admin\", got {role!r}")
            continue
        desks = value.get("desks", [])
        if not isinstance(desks, list) or not all(isinstance(d, str) and d for d in desks):
            problems.append(f"{where}.desks: expected a list of desk (counter) ids, got {desks!r}")
            continue
        grants[group.lower() if lower else group] = Grant(role, tuple(desks))
    return grants


def _parse_centre_groups(raw: Any, path: str, problems: list[str], *, lower: bool,
                         known: set[str]) -> dict[str, Grant]:
    grants: dict[str, Grant] = {}
    if not isinstance(raw, dict) or not raw:
        problems.append(f"{path}: expected a table of group = {{role = \"staff\" or \"admin\", branches = [...] or "
                        f"\"all\"}} (at least one group), got {raw!r}")
        return grants
    for group, value in raw.items():
        where = f'{path}."{group}"'
        if not isinstance(value, dict):
            problems.append(f"{where}: expected a table with role and branches (a list of branch ids or \"all\"), "
                            f"got {value!r}")
            continue
        check_unknown_keys(value, {"role", "branches"}, where, problems)
        role = value.get("role")
        if role not in ROLES:
            problems.append(f"{where}.role: expected \"staff\" or \"admin\", got {role!r}")
            continue
        seen = value.get("branches")
        if seen == "all":
            grants[group.lower() if lower else group] = Grant(role, branches=None)
            continue
        if not isinstance(seen, list) or not seen or not all(isinstance(b, str) for b in seen):
            problems.append(f"{where}.branches: expected a list of branch ids or \"all\", got {seen!r}")
            continue
        unknown = [b for b in seen if b not in known]
        if unknown:
            problems.append(f"{where}.branches: no branch {', '.join(map(repr, unknown))} "
                            f"(there are: {', '.join(sorted(known)) or 'none'})")
            continue
        grants[group.lower() if lower else group] = Grant(role, branches=tuple(seen))
    return grants


@dataclass(frozen=True)
class LdapSettings:
    url: str  # ldap://host:389 or ldaps://host:636
    bind: str  # what to bind as: a DN template "uid={user},ou=people,dc=..." or AD's "{user}@kommune.dk"
    user_base: str
    user_filter: str  # "(uid={user})"; AD: "(&(sAMAccountName={user})(!(userAccountControl:...:=2)))"
    group_base: str
    group_filter: str  # "(member={dn})"; AD nested groups: "(member:1.2.840.113556.1.4.1941:={dn})"
    groups: dict[str, Grant]  # group DN (lower case) → grant, in the order written
    start_tls: bool = False
    ca_file: str | None = None
    timeout_s: float = 5.0
    offline_days: float = 14.0  # 0: no offline sign-in when the directory is down


def parse_ldap(raw: Any, problems: list[str], *, path: str = "staff.ldap",
               branches: set[str] | None = None) -> LdapSettings | None:
    """A hub's ``[staff.ldap]``; or the centre's (``branches``: its branch ids), whose groups name the branches
    their members see and which keeps no offline copy (the centre's own accounts are its fallback)."""
    if raw is None:
        return None
    if not isinstance(raw, dict):
        problems.append(f"{path}: expected a table")
        return None
    keys = {"url", "bind", "user_base", "user_filter", "group_base", "group_filter", "groups", "start_tls",
            "ca_file", "timeout_s"} | ({"offline_days"} if branches is None else set())
    check_unknown_keys(raw, keys, path, problems)
    before = len(problems)

    def text(key: str, default: str | None = None, needs: str | None = None) -> str:
        value = raw.get(key, default)
        if not isinstance(value, str) or not value.strip():
            problems.append(f"{path}.{key}: expected a text, got {value!r}")
            return ""
        if needs and needs not in value:
            problems.append(f"{path}.{key}: expected {needs} in it (where the user's name goes), "
                            f"got {value!r}")
        return value.strip()

    url = text("url")
    if url and not url.startswith(("ldap://", "ldaps://")):
        problems.append(f"{path}.url: expected ldap://host[:port] or ldaps://host[:port], got {url!r}")
    bind = text("bind", needs="{user}")
    user_base = text("user_base")
    user_filter = text("user_filter", "(uid={user})", needs="{user}")
    group_base = text("group_base", user_base or None)
    group_filter = text("group_filter", "(member={dn})", needs="{dn}")
    groups = parse_groups(raw.get("groups"), f"{path}.groups", problems, lower=True, branches=branches)
    start_tls = raw.get("start_tls", False)
    if not isinstance(start_tls, bool):
        problems.append(f"{path}.start_tls: expected true or false, got {start_tls!r}")
    ca_file = raw.get("ca_file")
    if ca_file is not None and (not isinstance(ca_file, str) or not Path(ca_file).is_file()):
        problems.append(f"{path}.ca_file: expected the path of a CA certificate file, got {ca_file!r}")
    timeout = check_number(raw, "timeout_s", path, 5.0, 0.5, 60, problems)
    offline = check_number(raw, "offline_days", path, 14.0, 0, 365, problems) if branches is None else 0.0
    if len(problems) > before:
        return None
    return LdapSettings(url, bind, user_base, user_filter, group_base, group_filter, groups, bool(start_tls),
                        ca_file, timeout, offline)


class DirectoryDown(Exception):
    """The directory could not be asked (connection refused, time-out, TLS failure)."""


@dataclass(frozen=True)
class DirectoryAnswer:
    """What the directory said: ``grant`` when the password is right and a listed group names the user;
    else ``refusal``: "wrong" (password or unknown user), "disabled" (the directory says so) or "no_group"."""

    grant: Grant | None
    refusal: str = ""


def ask_directory(settings: LdapSettings, name: str, password: str) -> DirectoryAnswer:
    """Bind as ``name`` and read the groups; raises :class:`DirectoryDown` when the directory is not there.

    Blocking (ldap3's synchronous strategy): call it from a thread."""
    import ldap3
    from ldap3.core import exceptions as ldap_errors
    from ldap3.utils.conv import escape_filter_chars
    from ldap3.utils.dn import escape_rdn

    if not password or not DIRECTORY_NAME.match(name):
        # An empty password would be an *unauthenticated* bind, which LDAP servers accept (RFC 4513 §5.1.2).
        return DirectoryAnswer(None, "wrong")
    server = _server(settings)
    bind_as = settings.bind.replace("{user}", escape_rdn(name) if "=" in settings.bind else name)
    connection = ldap3.Connection(server, user=bind_as, password=password, raise_exceptions=False,
                                  receive_timeout=max(1, round(settings.timeout_s)),  # whole seconds (SO_RCVTIMEO)
                                  auto_bind=ldap3.AUTO_BIND_NONE)
    try:
        try:
            connection.open()
            if settings.start_tls:
                connection.start_tls()
        except ldap_errors.LDAPException as exc:
            raise DirectoryDown(str(exc)) from exc
        try:
            bound = connection.bind()
        except ldap_errors.LDAPException as exc:  # the socket broke mid-way
            raise DirectoryDown(str(exc)) from exc
        if not bound:
            if connection.result and connection.result.get("result") == 49:  # invalidCredentials
                # Active Directory says why in the message: 533 disabled, 701 expired, 775 locked out.
                said = str(connection.result.get("message", ""))
                return DirectoryAnswer(None, "disabled" if re.search(r"data (533|701|775)\b", said) else "wrong")
            raise DirectoryDown(f"bind refused: {connection.result}")
        user_filter = settings.user_filter.replace("{user}", escape_filter_chars(name))
        if not connection.search(settings.user_base, user_filter, attributes=[]) or not connection.entries:
            return DirectoryAnswer(None, "disabled")  # the password is right, but user_filter leaves the account out
        dn = connection.entries[0].entry_dn
        group_filter = settings.group_filter.replace("{dn}", escape_filter_chars(dn))
        connection.search(settings.group_base, group_filter, attributes=[])
        member_of = {entry.entry_dn.lower() for entry in connection.entries}
        for group, grant in settings.groups.items():
            if group in member_of:
                return DirectoryAnswer(grant)
        return DirectoryAnswer(None, "no_group")
    except ldap_errors.LDAPException as exc:
        raise DirectoryDown(str(exc)) from exc
    finally:
        with contextlib.suppress(ldap_errors.LDAPException, OSError):  # the socket may be gone (a failed StartTLS)
            connection.unbind()


def _server(settings: LdapSettings) -> Any:
    """The directory's address, with its certificate checked against ``ca_file`` (ldaps:// or StartTLS)."""
    import ldap3

    tls = None
    if settings.url.startswith("ldaps://") or settings.start_tls:
        tls = ldap3.Tls(validate=ssl.CERT_REQUIRED, ca_certs_file=settings.ca_file)
    return ldap3.Server(settings.url, connect_timeout=settings.timeout_s, tls=tls, get_info=ldap3.NONE)


def reach_directory(settings: LdapSettings) -> None:
    """Open a connection (and StartTLS) without binding: raises :class:`DirectoryDown` with the reason if the
    directory cannot be reached or its certificate is not trusted. For ``vuoro doctor``."""
    import ldap3
    from ldap3.core import exceptions as ldap_errors

    server = _server(settings)
    connection = ldap3.Connection(server, receive_timeout=max(1, round(settings.timeout_s)), raise_exceptions=False,
                                  auto_bind=ldap3.AUTO_BIND_NONE)
    try:
        connection.open()
        if settings.start_tls:
            connection.start_tls()
    except ldap_errors.LDAPException as exc:
        raise DirectoryDown(str(exc)) from exc
    finally:
        with contextlib.suppress(ldap_errors.LDAPException, OSError):
            connection.unbind()


@dataclass(frozen=True)
class Remembered:
    name: str
    grant: Grant


class OfflineLogins:
    """The last good directory login of each staff member, as an argon2id hash with the grant and the time.

    Kept in the hub's data folder (``staff-offline.json``, mode 0600), so a restart while the
    directory is down still lets them in. Entries older than ``days`` are never used."""

    FILE = "staff-offline.json"

    def __init__(self, path: Path, days: float, clock: Any = time.time):
        self.path, self.days, self.clock = path, days, clock
        self.hasher = PasswordHasher()
        self._lock = threading.Lock()

    def _read(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def _write(self, data: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_suffix(".tmp")
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as out:
            json.dump(data, out)
        os.replace(temporary, self.path)

    def remember(self, name: str, password: str, grant: Grant) -> None:
        if self.days <= 0:
            return
        entry = {"hash": self.hasher.hash(password), "role": grant.role, "desks": list(grant.desks),
                 "at": self.clock()}
        with self._lock:
            data = self._read()
            data[name] = entry
            self._write(data)

    def forget(self, name: str) -> None:
        with self._lock:
            data = self._read()
            if data.pop(name, None) is not None:
                self._write(data)

    def _entry(self, name: str) -> dict[str, Any] | None:
        entry = self._read().get(name)
        if not isinstance(entry, dict) or self.days <= 0:
            return None
        if not isinstance(entry.get("at"), int | float) or self.clock() - entry["at"] > self.days * 86400:
            return None
        return entry

    def knows(self, name: str) -> bool:
        """Whether ``name`` has a copy young enough to use (then a wrong password is just that)."""
        return self._entry(name) is not None

    def check(self, name: str, password: str) -> Remembered | None:
        entry = self._entry(name)
        if entry is None:
            return None
        try:
            self.hasher.verify(str(entry.get("hash")), password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return None
        return Remembered(name, Grant(str(entry.get("role")), tuple(entry.get("desks") or ())))


__all__ = ["DirectoryAnswer", "DirectoryDown", "Grant", "LdapSettings", "OfflineLogins",
           "ask_directory", "parse_groups", "parse_ldap"]
