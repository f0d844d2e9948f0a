"""Central configuration: each branch's site file published in versions, and what each branch did with them.

The centre stores every published version of a branch's site file (TOML text) with its SHA-256. The newest
version is the one the branch should run on. The branch learns that there is one from every ingest answer
(``wanted``: version and checksum, so a nudge over MQTT can only make it ask sooner, never tell it something
else), fetches the text with its own token, checks it with its own loader (``server/config.py``) and reports
back: applied, or refused with the key-path problems its loader found. The branch is the judge: the centre's
own check of a version (its files and plugins may differ from the branch's) is only advice when publishing.
"""

from __future__ import annotations

import hashlib
import json
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from central.branch_sites import APPLIED
from central.coordination import branch_changed, notify_changed
from server.config import ConfigError, parse_config

MAX_CONFIG_BYTES = 256 * 1024  # a site file is a few kB; a big one is a mistake, not a config


def checksum(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Published:
    branch: str
    version: int
    checksum: str
    advice: list[str]  # what the centre's own loader found (the branch decides)


class NotPublishable(Exception):
    """Text that can never be any branch's site file: not TOML, too long, another site's id."""

    def __init__(self, problems: list[str]):
        super().__init__("; ".join(problems))
        self.problems = problems


def centre_check(text: str, branch: str, base: Path) -> list[str]:
    """The hub's own loader and plugin checks, run here: the problems it names (empty: none). Raises
    NotPublishable for text no branch could take."""
    if len(text.encode("utf-8")) > MAX_CONFIG_BYTES:
        raise NotPublishable([f"the site file is larger than {MAX_CONFIG_BYTES // 1024} kB"])
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise NotPublishable([f"not valid TOML: {exc}"]) from None
    site = data.get("site")
    site_id = site.get("id") if isinstance(site, dict) else None
    if site_id != branch:
        raise NotPublishable([f"site.id: expected {branch!r} (this branch's id), got {site_id!r}"])
    try:
        config = parse_config(data, base)
        from server.main import check_plugin_sections

        check_plugin_sections(config)
    except ConfigError as exc:
        return list(exc.problems)
    return []


def publish(db: psycopg.Connection, branch: str, text: str, by: str, advice: list[str]) -> Published:
    """Store ``text`` as the branch's next version (one transaction; two publishers get two versions)."""
    with db.transaction():
        db.execute("SELECT id FROM branches WHERE id = %s FOR UPDATE", (branch,))
        row = db.execute("SELECT COALESCE(MAX(version), 0) + 1 FROM site_configs WHERE branch = %s",
                         (branch,)).fetchone()
        version = int(row[0]) if row else 1
        digest = checksum(text)
        db.execute("INSERT INTO site_configs (branch, version, checksum, text, published_by) "
                   "VALUES (%s, %s, %s, %s, %s)", (branch, version, digest, text, by))
        notify_changed(db, f"config:{branch}")  # every worker's long polls, at the commit
    return Published(branch, version, digest, advice)


def wanted(db: psycopg.Connection, branch: str) -> dict[str, Any] | None:
    """The newest version for the branch ({version, checksum}), or None when none was ever published."""
    row = db.execute("SELECT version, checksum FROM site_configs WHERE branch = %s ORDER BY version DESC LIMIT 1",
                     (branch,)).fetchone()
    return {"version": int(row[0]), "checksum": row[1]} if row else None


def newest(db: psycopg.Connection, branch: str, version: int | None = None) -> dict[str, Any] | None:
    """A version's text (the newest without ``version``)."""
    sql = "SELECT version, checksum, text, published_at FROM site_configs WHERE branch = %s"
    args: tuple[Any, ...] = (branch,)
    if version is not None:
        sql, args = sql + " AND version = %s", (branch, version)
    row = db.execute(sql + " ORDER BY version DESC LIMIT 1", args).fetchone()
    if row is None:
        return None
    return {"version": int(row[0]), "checksum": row[1], "text": row[2], "published_at": row[3].isoformat()}


def running_texts(db: psycopg.Connection, branches: list[str]) -> dict[str, tuple[int, str]]:
    """Per branch that reported running a version of the centre's: (that version, its text). The checksum it
    reported must be the version's: a report that does not match is not used."""
    return {b: (int(v), t) for b, v, t in db.execute(
        "SELECT r.branch, r.applied_version, s.text FROM config_reports r JOIN site_configs s ON s.branch = r.branch "
        "AND s.version = r.applied_version AND (r.applied_checksum IS NULL OR s.checksum = r.applied_checksum) "
        "WHERE r.branch = ANY(%s) AND r.applied_version > 0", (branches,))}


def versions(db: psycopg.Connection, branch: str) -> list[dict[str, Any]]:
    """Every published version of the branch, newest first (without the texts)."""
    return [{"version": int(v), "checksum": c, "published_at": at, "published_by": by} for v, c, at, by in db.execute(
        "SELECT version, checksum, published_at, published_by FROM site_configs WHERE branch = %s "
        "ORDER BY version DESC", (branch,))]


def parse_report(body: Any) -> dict[str, Any]:
    """A branch's report: {"running": {"version", "checksum"}, "refused": {"version", "checksum", "problems"}|null}.
    ValueError for anything else."""
    if not isinstance(body, dict) or not isinstance(body.get("running"), dict):
        raise ValueError("expected {\"running\": {\"version\": n, \"checksum\": …}, \"refused\": … or null}")
    running = body["running"]
    if not isinstance(running.get("version"), int) or running["version"] < 0:
        raise ValueError("running.version: expected a whole number ≥ 0")
    refused = body.get("refused")
    if refused is not None:
        if not isinstance(refused, dict) or not isinstance(refused.get("version"), int):
            raise ValueError("refused: expected {\"version\": n, \"problems\": [...]} or null")
        problems = refused.get("problems")
        if not isinstance(problems, list) or not all(isinstance(p, str) for p in problems):
            raise ValueError("refused.problems: expected a list of strings")
    return {"running": running, "refused": refused}


def store_report(db: psycopg.Connection, branch: str, report: dict[str, Any]) -> None:
    running, refused = report["running"], report["refused"]
    with db.transaction():
        before = db.execute("SELECT applied_version, applied_checksum FROM config_reports WHERE branch = %s "
                            "FOR UPDATE", (branch,)).fetchone()
        if tuple(before or (0, None)) != (running["version"], running.get("checksum")):
            # The branch runs another version now: every worker uses it from the commit (central/branch_sites.py)
            notify_changed(db, f"{APPLIED}{branch}")
        db.execute(
            "INSERT INTO config_reports (branch, applied_version, applied_checksum, applied_at, reported_at) "
            "VALUES (%s, %s, %s, now(), now()) ON CONFLICT (branch) DO UPDATE SET "
            "applied_at = CASE WHEN config_reports.applied_version IS DISTINCT FROM excluded.applied_version "
            "THEN now() ELSE config_reports.applied_at END, "
            "applied_version = excluded.applied_version, applied_checksum = excluded.applied_checksum, "
            "reported_at = now()", (branch, running["version"], running.get("checksum")))
        if refused is not None:
            db.execute("UPDATE config_reports SET refused_version = %s, refused_problems = %s, refused_at = now() "
                       "WHERE branch = %s", (refused["version"], json.dumps(refused["problems"][:100]), branch))
        notify_changed(db, branch_changed(branch))  # the overview's live pages show what the branch runs or refused


def status(db: psycopg.Connection, branches: list[str]) -> list[dict[str, Any]]:
    """Per branch: the version wanted, the version it runs on, and the newest refusal with its reasons (a refusal
    older than the version applied is past and left out)."""
    rows = {r[0]: r for r in db.execute(
        "SELECT b.id, w.version, w.checksum, w.published_at, r.applied_version, r.applied_at, r.refused_version, "
        "r.refused_problems, r.refused_at, r.reported_at FROM branches b "
        "LEFT JOIN LATERAL (SELECT version, checksum, published_at FROM site_configs s WHERE s.branch = b.id "
        "                   ORDER BY version DESC LIMIT 1) w ON true "
        "LEFT JOIN config_reports r ON r.branch = b.id WHERE b.id = ANY(%s)", (branches,))}
    out = []
    for bid in branches:
        r = rows.get(bid)
        if r is None:
            continue
        _, version, digest, published, applied, applied_at, refused, problems, refused_at, reported = r
        current = refused is not None and refused > (applied or 0)
        out.append({
            "branch": bid, "wanted": version or 0, "checksum": digest,
            "published_at": published.isoformat() if published else None,
            "applied": applied, "applied_at": applied_at.isoformat() if applied_at else None,
            "refused": refused if current else None, "problems": (problems or []) if current else [],
            "refused_at": refused_at.isoformat() if current and refused_at else None,
            "reported_at": reported.isoformat() if reported else None,
            "in_step": bool(version) and applied == version,
        })
    return out
