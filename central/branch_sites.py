"""Each branch's site as the centre uses it: the version the branch reported it RUNS, else the file in centre.toml.

The centre sells a branch's calendar (its services, hours, places and online rules), names its services on its
pages and counts its tickets by that branch's site config. Which one? Not the newest *published* version: the
branch is the judge of a version (its loader, its files and plugins) and may refuse it; a refused version never
runs there, so the centre selling by it would offer citizens times the branch does not keep. The branch's report
of what it runs (``config_reports``: ``applied_version`` with its checksum) is what it really keeps, so that is
what the centre uses — and when it goes back (a version that kept it from starting, or its own file: version 0),
the centre goes back with it. No report, or version 0: the site file named in centre.toml.

``BranchSites`` is the one mutable part of the otherwise frozen ``CentreConfig`` (its ``branches``): a read-only
mapping whose contents are swapped whole. A request reads one ``Branch`` (frozen, with its frozen ``SiteConfig``)
and keeps it; a reload builds a new ``Branch`` and a new mapping and replaces the reference, so nothing a request
in flight holds ever changes under it. Reloads hold a lock from their read to their swap, so two of them (a
report heard while the start-up read runs) land in the order they read.

Every worker process has its own copy (central/workers.py forks them); each reloads a branch when its coordinator
hears ``applied:<branch>`` (``configs.store_report`` sends it in the transaction that records a new version run),
and every branch at its start and after its coordinator's connection was lost (``RECONNECTED``).
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import tomllib
from collections.abc import ItemsView, Iterator, Mapping, ValuesView
from types import MappingProxyType
from typing import TYPE_CHECKING

from server.config import ConfigError, SiteConfig, parse_config

if TYPE_CHECKING:
    import psycopg
    from psycopg_pool import ConnectionPool

    from central.config import Branch

log = logging.getLogger("vuoro.central.sites")

APPLIED = "applied:"  # a NOTIFY payload's prefix: the branch after it reported a new version it runs


class BranchSites(Mapping[str, "Branch"]):
    """The centre's branches (id → ``Branch``), each on the version it runs (see the module's doc)."""

    def __init__(self, from_file: Mapping[str, Branch]):
        self.from_file: Mapping[str, Branch] = MappingProxyType(dict(from_file))
        self._now: Mapping[str, Branch] = self.from_file
        self._versions: Mapping[str, int] = MappingProxyType(dict.fromkeys(from_file, 0))
        self._lock = threading.Lock()

    # -- reading: one snapshot per call, never a mix of two --------------------------------------------------------

    def __getitem__(self, branch: str) -> Branch:
        return self._now[branch]

    def __iter__(self) -> Iterator[str]:
        return iter(self._now)

    def __len__(self) -> int:
        return len(self._now)

    def items(self) -> ItemsView[str, Branch]:
        return self._now.items()

    def values(self) -> ValuesView[Branch]:
        return self._now.values()

    def version(self, branch: str) -> int:
        """The centre's version this branch is used on here (0: the file named in centre.toml)."""
        return self._versions.get(branch, 0)

    # -- following the branches ------------------------------------------------------------------------------------

    def heard(self, pool: ConnectionPool, what: str) -> None:
        """A coordinator's payload (central/coordination.py): reload the branch it names, or every branch after
        ``RECONNECTED`` (a report may have been missed). A failed read keeps what is used now (logged)."""
        from central.coordination import RECONNECTED

        if what == RECONNECTED:
            branches = list(self.from_file)
        elif what.startswith(APPLIED) and what[len(APPLIED):] in self.from_file:
            branches = [what[len(APPLIED):]]
        else:
            return
        try:
            with pool.connection(timeout=5) as db:
                self.reload(db, branches)
        except Exception as exc:  # the database away: the next report or reconnection reads again
            log.warning("could not read the versions branches %s run (%s); keeping what is used now", branches, exc)

    def reload(self, db: psycopg.Connection, branches: list[str]) -> list[str]:
        """Read which version each of ``branches`` runs and swap in those that changed; the ones swapped."""
        from central import configs

        with self._lock:
            running = configs.running_texts(db, branches)
            now, versions = dict(self._now), dict(self._versions)
            for bid in branches:
                version, text = running.get(bid, (0, ""))
                if version == versions.get(bid, 0):
                    continue
                site = self._parse(bid, version, text) if version else None
                now[bid] = (dataclasses.replace(self.from_file[bid], site=site) if site is not None
                            else self.from_file[bid])
                versions[bid] = version if site is not None else 0
            swapped = [bid for bid in branches if now[bid] is not self._now[bid]]
            if swapped:
                self._now, self._versions = MappingProxyType(now), MappingProxyType(versions)
                for bid in swapped:
                    log.info("branch %s: the centre uses %s now", bid,
                             f"version {versions[bid]}" if versions[bid] else "the site file in centre.toml")
            return swapped

    def _parse(self, branch: str, version: int, text: str) -> SiteConfig | None:
        """The hub's loader and plugin checks, with paths beside the centre.toml's site file (as
        ``configs.centre_check``); None (the file is used) when the centre cannot use the version."""
        from server.main import check_plugin_sections

        own = self.from_file[branch].site
        try:
            site = parse_config(tomllib.loads(text), own.path)
            check_plugin_sections(site)
        except (ConfigError, tomllib.TOMLDecodeError) as exc:
            log.warning("branch %s runs version %d, which the centre's loader refuses (%s): the centre uses the "
                        "site file in centre.toml for it", branch, version, exc)
            return None
        if site.site_id != branch:  # never published so (configs.centre_check): not this branch's
            return None
        return site
