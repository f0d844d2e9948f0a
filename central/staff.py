"""Staff accounts held by the centre: one login for every branch and for the centre's own pages.

An account is a name, a role (``staff`` or ``admin``, as at a branch), an argon2id password hash (the same format
as ``[staff.users]`` in a site file, ``python -m server.staff.hashpw``; the centre never keeps a password), the
branches it works at (empty: every branch) and the desks it may call from (empty: every desk). Every change moves
the ``staff_revision`` sequence; each ingest answer carries it, so a branch fetches its accounts when they changed
and keeps them in a local file: the login works at the branch with the centre down (docs/staff.md).

At the centre an account sees the branches it works at: one with no branches listed sees them all (the
municipality's own people), a branch's staff only their branch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from central.coordination import STAFF_CHANGED, notify_changed
from server.staff.accounts import _DUMMY_HASH, HASHER, ROLES
from vuoro.protocol import ID_PATTERN


@dataclass(frozen=True)
class Account:
    name: str
    role: str
    branches: tuple[str, ...] = ()
    desks: tuple[str, ...] = ()

    def sees(self, branch: str) -> bool:
        return not self.branches or branch in self.branches


def parse_account(name: str, body: Any, known_branches: set[str]) -> dict[str, Any]:
    """A PUT body, checked by key path: {role, password_hash | password, branches, desks, disabled}."""
    problems: list[str] = []
    if not ID_PATTERN.match(name):
        problems.append("name: expected lower-case letters, digits, '-' or '_' (at most 40)")
    if not isinstance(body, dict):
        raise ValueError("expected a JSON object with role and password_hash (or password)")
    unknown = set(body) - {"role", "password_hash", "password", "branches", "desks", "disabled"}
    problems += [f"{key}: unknown key" for key in sorted(unknown)]
    role = body.get("role", "staff")
    if role not in ROLES:
        problems.append(f"role: expected \"staff\" or \"admin\", got {role!r}")
    hashed = body.get("password_hash")
    password = body.get("password")
    if hashed is None and isinstance(password, str) and len(password) >= 10:
        hashed = HASHER.hash(password)  # made here, once; the password itself is not kept
    elif hashed is None:
        problems.append("password_hash: expected an argon2id hash (or password: at least 10 characters)")
    elif not isinstance(hashed, str) or not hashed.startswith("$argon2id$"):
        problems.append("password_hash: expected an argon2id hash (\"$argon2id$…\", python -m server.staff.hashpw)")
    else:
        try:
            HASHER.check_needs_rehash(hashed)
        except (InvalidHashError, ValueError) as exc:
            problems.append(f"password_hash: not a valid argon2 hash ({exc})")
    lists: dict[str, list[str]] = {}
    for key in ("branches", "desks"):
        value = body.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) and ID_PATTERN.match(v) for v in value):
            problems.append(f"{key}: expected a list of ids")
            value = []
        lists[key] = value
    for i, bid in enumerate(lists["branches"]):
        if bid not in known_branches:
            problems.append(f"branches[{i}]: no branch {bid!r} (there are: {', '.join(sorted(known_branches))})")
    disabled = body.get("disabled", False)
    if not isinstance(disabled, bool):
        problems.append("disabled: expected true or false")
    if problems:
        raise ValueError("; ".join(problems))
    return {"name": name, "role": role, "password_hash": hashed, "branches": lists["branches"],
            "desks": lists["desks"], "disabled": disabled}


def put(db: psycopg.Connection, account: dict[str, Any]) -> int:
    """Create or replace an account; the new staff revision."""
    with db.transaction():
        row = db.execute(
            "INSERT INTO staff_accounts (name, role, password_hash, branches, desks, disabled, revision) "
            "VALUES (%(name)s, %(role)s, %(password_hash)s, %(branches)s, %(desks)s, %(disabled)s, "
            "nextval('staff_revision')) ON CONFLICT (name) DO UPDATE SET role = excluded.role, "
            "password_hash = excluded.password_hash, branches = excluded.branches, desks = excluded.desks, "
            "disabled = excluded.disabled, revision = excluded.revision, updated_at = now() RETURNING revision",
            account).fetchone()
        notify_changed(db, STAFF_CHANGED)  # every worker's long polls, at the commit
    return int(row[0]) if row else 0


def delete(db: psycopg.Connection, name: str) -> bool:
    with db.transaction():
        gone = db.execute("DELETE FROM staff_accounts WHERE name = %s", (name,)).rowcount
        if gone:
            db.execute("SELECT nextval('staff_revision')")
            notify_changed(db, STAFF_CHANGED)
    return bool(gone)


def revision(db: psycopg.Connection) -> int:
    row = db.execute("SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM staff_revision").fetchone()
    return int(row[0]) if row else 0


def for_branch(db: psycopg.Connection, branch: str) -> dict[str, Any]:
    """The accounts that work at ``branch`` (hashes included: the branch checks passwords itself, offline too)."""
    rev = revision(db)
    rows = db.execute("SELECT name, role, password_hash, desks FROM staff_accounts WHERE NOT disabled AND "
                      "(branches = '{}' OR %s = ANY(branches)) ORDER BY name", (branch,)).fetchall()
    return {"revision": rev, "accounts": [{"name": n, "role": r, "password_hash": h, "desks": list(d)}
                                          for n, r, h, d in rows]}


def listing(db: psycopg.Connection) -> list[dict[str, Any]]:
    """Every account without its hash, for the admin API."""
    return [{"name": n, "role": r, "branches": list(b), "desks": list(d), "disabled": x,
             "updated_at": u.isoformat()} for n, r, b, d, x, u in db.execute(
        "SELECT name, role, branches, desks, disabled, updated_at FROM staff_accounts ORDER BY name")]


def get(db: psycopg.Connection, name: str) -> dict[str, Any] | None:
    """One account as ``put`` takes it (hash included), or None."""
    row = db.execute("SELECT role, password_hash, branches, desks, disabled FROM staff_accounts WHERE name = %s",
                     (name,)).fetchone()
    if row is None:
        return None
    return {"name": name, "role": row[0], "password_hash": row[1], "branches": list(row[2]), "desks": list(row[3]),
            "disabled": row[4]}


def verify(db: psycopg.Connection, name: str, password: str) -> Account | None:
    """The account if the password is right and it is not disabled (slow on purpose, also for unknown names)."""
    row = db.execute("SELECT role, password_hash, branches, desks, disabled FROM staff_accounts WHERE name = %s",
                     (name,)).fetchone()
    try:
        HASHER.verify(row[1] if row else _DUMMY_HASH, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return None
    if row is None or row[4]:
        return None
    return Account(name, row[0], tuple(row[2]), tuple(row[3]))
