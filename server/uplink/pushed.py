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
REFUSED_FILE = "central-site.refused.json"  # the last version refused here, and why: not tried again after a restart


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


PREVIOUS = ".previous"  # central-site.previous.toml / .json: the version before, while the new one is on trial
NOT_STARTED = ("the hub did not start on this version: it stopped before it served (its log says why); it runs on "
               "the version before")


def _files(folder: Path, suffix: str = "") -> tuple[Path, Path]:
    site, meta = folder / SITE_FILE, folder / META_FILE
    return site.with_name(site.stem + suffix + site.suffix), meta.with_name(meta.stem + suffix + meta.suffix)


def save(folder: Path, text: str, version: int, digest: str) -> None:
    """Keep a version that passed the checks, on trial until the hub serves on it (``started``); the version it
    replaces is kept as the previous one. The text first, then the note of its version (read together)."""
    folder.mkdir(parents=True, exist_ok=True)
    site, meta = _files(folder)
    old_site, old_meta = _files(folder, PREVIOUS)
    with contextlib.suppress(OSError):
        kept = json.loads(meta.read_text(encoding="utf-8"))
        if not kept.get("trial"):  # only a version the hub served on is worth going back to
            write_atomically(old_site, site.read_text(encoding="utf-8"))
            write_atomically(old_meta, json.dumps({"version": kept["version"], "checksum": kept["checksum"]}))
    write_atomically(site, text)
    write_atomically(meta, json.dumps({"version": version, "checksum": digest, "trial": True, "starts": 0}))
    with contextlib.suppress(OSError):  # a newer version passed: an older refusal is past
        (folder / REFUSED_FILE).unlink()


def started(folder: Path, version: int) -> None:
    """The hub serves on the kept ``version``: it is no longer on trial (a newer one kept meanwhile stays on trial)."""
    with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
        meta = json.loads((folder / META_FILE).read_text(encoding="utf-8"))
        if meta.get("trial") and int(meta["version"]) == version:
            write_atomically(folder / META_FILE, json.dumps({"version": meta["version"],
                                                             "checksum": meta["checksum"]}))


def remember_refused(folder: Path, refused: dict[str, Any]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    write_atomically(folder / REFUSED_FILE, json.dumps(refused))


def running(own: SiteConfig, folder: Path) -> Running:
    """What to run on at start (below), with the last version refused here, kept across restarts."""
    found = _running(own, folder)
    if found.refused:
        remember_refused(folder, found.refused)
    else:
        with contextlib.suppress(OSError, ValueError):
            kept = json.loads((folder / REFUSED_FILE).read_text(encoding="utf-8"))
            if isinstance(kept, dict) and isinstance(kept.get("version"), int) and kept["version"] > found.version:
                found.refused = kept
    return found


def _running(own: SiteConfig, folder: Path) -> Running:
    """What to run on at start: the centre's kept version if it still passes the checks, else the hub's own file.

    A version on trial (written, the hub not yet serving on it) gets one start: if the hub is started again before
    it served (it crashed on it, and systemd started it again), the version is refused and the one before it —
    or the hub's own file — is run, so a version that passes the checks but keeps the hub from starting never
    leaves a branch restarting in a loop."""
    try:
        text = (folder / SITE_FILE).read_text(encoding="utf-8")
        meta = json.loads((folder / META_FILE).read_text(encoding="utf-8"))
        version, digest = int(meta["version"]), str(meta["checksum"])
    except (OSError, ValueError, KeyError, TypeError):
        return Running(own)  # nothing from the centre yet
    if meta.get("trial"):
        if int(meta.get("starts", 0)) >= 1:
            log.error("the centre's version %d was tried and the hub stopped before serving on it: going back to "
                      "the version before", version)
            refused = {"version": version, "checksum": digest, "problems": [NOT_STARTED]}
            site, kept = _files(folder)
            old_site, old_meta = _files(folder, PREVIOUS)
            try:
                os.replace(old_site, site)
                os.replace(old_meta, kept)
            except OSError:  # no version before: the hub's own file
                with contextlib.suppress(OSError):
                    kept.unlink()
                return Running(own, refused=refused)
            before = _running(own, folder)
            return Running(before.config, before.version, before.checksum, refused=before.refused or refused)
        write_atomically(folder / META_FILE, json.dumps({**meta, "starts": int(meta.get("starts", 0)) + 1}))
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
