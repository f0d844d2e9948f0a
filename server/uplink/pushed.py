"""The site config and staff accounts a branch received from its centre, kept in its data folder.

The site file the hub is started with (``--config``, ``/etc/vuoro/site.toml``) stays the branch's own: its
``site.id`` and ``[central]`` link say which centre to ask, and it is what the hub runs on when the centre has
published nothing. A version from the centre is written beside the store (``central-site.toml``, with
``central-site.json``: its version and checksum), because the hub's systemd unit may write only its state folder
(``ProtectSystem=strict``). At start the hub runs on that version when it passes the same checks as on arrival,
else on its own file (and says why in its log and to the centre).

The checks are the hub's own loader and plugin checks, with three rules of the centre's own: the version is
this site's (``site.id``), keeps ``[central]`` (without it the branch would never hear from the centre again),
and keeps ``hub.database`` (the centre does not move a branch's store). Relative paths in it are taken beside
the hub's own site file, as if it were that file.

Files are written atomically (a temporary file, fsync, rename, fsync of the folder): a power cut leaves the old
version or the new, never half of one.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from server.config import ConfigError, SiteConfig, parse_config

log = logging.getLogger("vuoro.uplink")

SITE_FILE = "central-site.toml"
META_FILE = "central-site.json"
STAFF_FILE = "central-staff.json"


def checksum(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass
class Running:
    """The config this process runs on: the centre's ``version`` (0: the hub's own file) and a version refused at
    start (with its problems), to be reported."""

    config: SiteConfig
    version: int = 0
    checksum: str | None = None
    refused: dict[str, Any] | None = field(default=None)


def check(text: str, own: SiteConfig) -> SiteConfig:
    """A version from the centre, checked as the hub checks its own file; raises ConfigError with every problem."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"not valid TOML: {exc}"], "the centre's version") from None
    config = parse_config(data, own.path)  # relative files beside the hub's own site file
    from server.main import check_plugin_sections

    check_plugin_sections(config)
    problems = []
    if config.site_id != own.site_id:
        problems.append(f"site.id: expected {own.site_id!r}, this branch's id, got {config.site_id!r}")
    if config.central is None:
        problems.append("central: expected the section: without it this branch would no longer hear from the centre")
    if config.database != own.database:
        problems.append(f"hub.database: expected {own.database!r}: the centre does not move a branch's store")
    if problems:
        raise ConfigError(problems, "the centre's version")
    return config


def write_atomically(path: Path, content: str, mode: int = 0o640) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    descriptor = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(descriptor, "w", encoding="utf-8") as out:
        out.write(content)
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, path)
    with contextlib.suppress(OSError):  # the rename itself survives a power cut
        folder = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)


def save(folder: Path, text: str, version: int, digest: str) -> None:
    """Keep a version that passed the checks: the text first, then the note of its version (read together)."""
    folder.mkdir(parents=True, exist_ok=True)
    write_atomically(folder / SITE_FILE, text)
    write_atomically(folder / META_FILE, json.dumps({"version": version, "checksum": digest}))


def running(own: SiteConfig, folder: Path) -> Running:
    """What to run on at start: the centre's kept version if it still passes the checks, else the hub's own file."""
    try:
        text = (folder / SITE_FILE).read_text(encoding="utf-8")
        meta = json.loads((folder / META_FILE).read_text(encoding="utf-8"))
        version, digest = int(meta["version"]), str(meta["checksum"])
    except (OSError, ValueError, KeyError, TypeError):
        return Running(own)  # nothing from the centre yet
    if checksum(text) != digest:
        log.error("%s does not match its checksum: running on the hub's own site file", folder / SITE_FILE)
        return Running(own, refused={"version": version, "checksum": digest,
                                     "problems": ["the kept copy does not match its checksum"]})
    try:
        config = check(text, own)
    except ConfigError as exc:
        log.error("the centre's version %d no longer passes this hub's checks; running on the hub's own site "
                  "file:\n%s", version, exc)
        return Running(own, refused={"version": version, "checksum": digest, "problems": list(exc.problems)})
    log.warning("running on the centre's version %d of the site config (%s)", version, folder / SITE_FILE)
    return Running(config, version, digest)


def staff_revision(folder: Path) -> int | None:
    try:
        return int(json.loads((folder / STAFF_FILE).read_text(encoding="utf-8"))["revision"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def save_staff(folder: Path, body: dict[str, Any]) -> None:
    """The centre's accounts for this branch (hashes: mode 0600), read by the staff sign-in at each try."""
    folder.mkdir(parents=True, exist_ok=True)
    write_atomically(folder / STAFF_FILE, json.dumps(body), mode=0o600)
