"""Which check a user name and password go to: a local account, the directory, or the directory's offline copy.

- A name under ``[staff.users]`` is always a local account, checked here alone: local
  accounts stay for small sites and as break-glass accounts when the directory is down
  (a local name shadows the same name in the directory).
- Any other name goes to the directory when ``[staff.ldap]`` is set.
- When the directory cannot be reached, the last good directory login of that name
  within ``offline_days`` lets them in (``OfflineLogins``, server/staff/directory.py).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from server.staff.accounts import StaffSettings, StaffUser, verify_password
from server.staff.directory import DirectoryDown, OfflineLogins, ask_directory

log = logging.getLogger("vuoro.staff")

WRONG, DISABLED, NO_GROUP, DOWN = "wrong", "disabled", "no_group", "down"


@dataclass(frozen=True)
class Outcome:
    user: StaffUser | None
    refusal: str = ""  # wrong (also a disabled account: no hint to a guesser) | no_group | down


class PasswordSignIn:
    def __init__(self, settings: StaffSettings, folder: Path):
        self.settings = settings
        ldap = settings.ldap
        self.offline = OfflineLogins(folder / OfflineLogins.FILE, ldap.offline_days) if ldap else None

    def check(self, name: str, password: str) -> Outcome:
        """Blocking (argon2, LDAP): call from a thread."""
        ldap = self.settings.ldap
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
