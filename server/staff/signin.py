"""Which check a user name and password go to: a local account, the centre's accounts, the directory, or the
directory's offline copy.

- A name under ``[staff.users]`` is always a local account, checked here alone: local
  accounts stay for small sites and as break-glass accounts when the directory is down
  (a local name shadows the same name at the centre and in the directory).
- Next, the accounts the centre sent this branch (``central-staff.json`` beside the store,
  server/uplink/follow.py): checked here, from the local copy, so they work with the centre down.
  A centre account shadows the same name in the directory.
- Any other name goes to the directory when ``[staff.ldap]`` is set.
- When the directory cannot be reached, the last good directory login of that name
  within ``offline_days`` lets them in (``OfflineLogins``, server/staff/directory.py).
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from server.staff.accounts import HASHER, StaffSettings, StaffUser, verify_password
from server.staff.directory import DirectoryDown, OfflineLogins, ask_directory

log = logging.getLogger("vuoro.staff")

WRONG, DISABLED, NO_GROUP, DOWN = "wrong", "disabled", "no_group", "down"


@dataclass(frozen=True)
class Outcome:
    user: StaffUser | None
    refusal: str = ""  # wrong (also a disabled account: no hint to a guesser) | no_group | down


class CentreAccounts:
    """The accounts the centre sent (``central-staff.json``), read again whenever the file changed: a change at
    the centre works here at the next sign-in, without a restart."""

    FILE = "central-staff.json"  # the same name as server/uplink/pushed.STAFF_FILE

    def __init__(self, path: Path):
        self.path = path
        self._seen: tuple[int, int] | None = None
        self._accounts: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()

    def get(self, name: str) -> dict[str, Any] | None:
        try:
            stat = self.path.stat()
            seen = (stat.st_mtime_ns, stat.st_size)
        except OSError:
            return None
        with self._lock:
            if seen != self._seen:
                try:
                    body = json.loads(self.path.read_text(encoding="utf-8"))
                    self._accounts = {a["name"]: a for a in body["accounts"] if isinstance(a, dict) and "name" in a}
                except (OSError, ValueError, KeyError, TypeError):
                    log.exception("the centre's staff accounts in %s cannot be read; they are not used", self.path)
                    self._accounts = {}
                self._seen = seen
            return self._accounts.get(name)

    def check(self, name: str, password: str) -> Outcome | None:
        """The outcome for a name the centre sent, or None for a name it did not."""
        account = self.get(name)
        if account is None:
            return None
        try:
            HASHER.verify(str(account.get("password_hash", "")), password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return Outcome(None, WRONG)
        role = account.get("role") if account.get("role") in ("staff", "admin") else "staff"
        return Outcome(StaffUser(name, str(role), "", tuple(account.get("desks") or ()), "centre"))


class PasswordSignIn:
    def __init__(self, settings: StaffSettings, folder: Path):
        self.settings = settings
        ldap = settings.ldap
        self.offline = OfflineLogins(folder / OfflineLogins.FILE, ldap.offline_days) if ldap else None
        self.centre = CentreAccounts(folder / CentreAccounts.FILE)

    def check(self, name: str, password: str) -> Outcome:
        """Blocking (argon2, LDAP): call from a thread."""
        ldap = self.settings.ldap
        if name not in self.settings.users and (from_centre := self.centre.check(name, password)) is not None:
            return from_centre
        if ldap is None or name in self.settings.users:
            user = verify_password(self.settings, name, password)
            return Outcome(user, "" if user else WRONG)
        assert self.offline is not None
        try:
            answer = ask_directory(ldap, name, password)
        except DirectoryDown as exc:
            remembered = self.offline.check(name, password)
            log.warning("staff login %r: the directory %s cannot be reached (%s); %s", name, ldap.url, exc,
                        "let in from the offline copy of the last good login" if remembered else "refused")
            if remembered is None:
                return Outcome(None, WRONG if self.offline.knows(name) else DOWN)
            return Outcome(StaffUser(name, remembered.grant.role, "", remembered.grant.desks, "offline"))
        if answer.grant is None:
            # What the directory says now wins over the offline copy: a changed password, a disabled account,
            # a group taken away. Someone else's wrong guess leaves the copy alone.
            if answer.refusal != WRONG or self.offline.check(name, password) is not None:
                self.offline.forget(name)
            if answer.refusal in (NO_GROUP, DISABLED):
                log.info("staff login %r refused by the directory: %s", name, answer.refusal)
            return Outcome(None, NO_GROUP if answer.refusal == NO_GROUP else WRONG)
        self.offline.remember(name, password, answer.grant)
        return Outcome(StaffUser(name, answer.grant.role, "", answer.grant.desks, "ldap"))
