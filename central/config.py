"""The centre's config: one TOML file, checked completely before the centre starts (as a site's is).

::

    [centre]
    name = "Sønderbro Kommune"
    listen = "127.0.0.1:8700"
    workers = 4                         # worker processes (default: the CPUs, at least 2; docs/central.md)
    database = "postgresql://vuoro_central@127.0.0.1:5432/vuoro_central"
    languages = ["da", "en"]            # the pages' languages, the first is the default
    admin_token = "…"                   # the API and automation: every branch, publishing configs, accounts
    public_url = "https://book.kommune.dk"  # optional: how citizens reach /book/ (the manage link in confirmations)
    tls_cert = "centre.crt"             # optional: serve HTTPS (the branches' [central].ca_file trusts its CA)
    tls_key = "centre.key"

    [staff.ldap]                        # optional: staff sign in with the municipality's directory (docs/central.md)
    url = "ldaps://dc.kommune.dk"
    bind = "{user}@kommune.dk"
    user_base = "ou=Users,dc=kommune,dc=dk"
    [staff.ldap.groups]                 # the first group listed that names the person: role and branches they see
    "cn=vuoro-admins,ou=Groups,dc=kommune,dc=dk" = {role = "admin", branches = "all"}
    "cn=sonderbro-staff,ou=Groups,dc=kommune,dc=dk" = {role = "staff", branches = ["sonderbro"]}

    [broker]                            # optional: publish each branch's config/nudge (central/broker_link.py)
    url = "mqtt://127.0.0.1:1883"
    password_file = "/etc/vuoro/centre-mqtt.password"

    [branches.sonderbro]                # the branch's site id (its site.id)
    token = "…"                         # the branch's [central].token: at least 16 characters
    site = "sites/sonderbro.toml"       # the branch's site file: its zone, services and targets

Each branch's site file is checked with the hub's own loader (``server.config.load_config``): the
centre counts a branch's tickets by the same services, zone and targets as the branch does. Every
mistake is reported with its key path, all at once. Once a branch reports that it runs a version the
centre published, the centre uses that version instead (``central/branch_sites.py``).
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from central.branch_sites import BranchSites
from central.broker_link import BrokerLink, parse_broker
from server.bookings import notice_parts
from server.config import ConfigError, SiteConfig, check_unknown_keys, load_config
from server.staff.directory import LdapSettings, parse_ldap
from server.staff.oidc import OidcSettings, parse_oidc
from vuoro.i18n import LANGUAGES
from vuoro.protocol import ID_PATTERN

OIDC_CALLBACK = "/login/oidc/callback"  # where the provider sends a person back to the centre
MAX_WORKERS = 64  # each holds up to 9 connections to PostgreSQL (docs/central.md "Workers")


@dataclass(frozen=True)
class Branch:
    id: str
    token: str
    site: SiteConfig

    @property
    def name(self) -> str:
        return self.site.name


@dataclass(frozen=True)
class CentreConfig:
    path: Path
    name: str
    listen_host: str
    listen_port: int
    database: str
    languages: tuple[str, ...]
    admin_token: str
    # The one part that changes while the centre runs: each branch on the version it reports it runs (swapped
    # whole, never edited: central/branch_sites.py), starting from the site files named here
    branches: BranchSites = field(default_factory=lambda: BranchSites({}))
    tls_cert: str | None = None  # HTTPS: the centre's certificate (PEM, with intermediates) and its key
    tls_key: str | None = None
    calendar_away_s: float = 60.0  # [calendar] away_s: a branch not heard from this long is unreachable
    ldap: LdapSettings | None = None  # [staff.ldap]: sign in with the municipality's directory
    oidc: OidcSettings | None = None  # [staff.oidc]: or with its OpenID Connect provider
    workers: int | None = None  # [centre] workers: worker processes (None: central.workers.default_workers())
    broker: BrokerLink | None = None  # [broker]: publish the branches' config/nudge there (None: no MQTT at all)
    public_url: str | None = None  # [centre] public_url: the citizens' address of /book/ (None: no manage link)

    def branch_by_token(self, token: str) -> Branch | None:
        import hmac

        for branch in self.branches.values():
            if hmac.compare_digest(branch.token.encode(), token.encode()):
                return branch
        return None


def _tls_files(centre: dict[str, Any], path: Path, problems: list[str]) -> dict[str, str | None]:
    """``tls_cert`` and ``tls_key`` (beside the config file when relative), readable and a pair: a centre that
    cannot read its key must not start and fail later."""
    import os
    import ssl

    files: dict[str, str | None] = {"tls_cert": None, "tls_key": None}
    for key in files:
        value = centre.get(key)
        if value is None:
            continue
        if not isinstance(value, str) or not value.strip():
            problems.append(f"centre.{key}: expected the path of a PEM file, got {value!r}")
            continue
        full = str((Path(path).parent / value).resolve())
        if not os.access(full, os.R_OK):
            problems.append(f"centre.{key}: expected a file that exists and this user may read, got {full!r}")
            continue
        files[key] = full
    if ("tls_cert" in centre) != ("tls_key" in centre):
        problems.append("centre.tls_cert: expected centre.tls_key too: they go together")
    elif files["tls_cert"] and files["tls_key"]:
        try:
            ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(files["tls_cert"], files["tls_key"])
        except (ssl.SSLError, OSError) as exc:
            problems.append(f"centre.tls_key: expected the private key of centre.tls_cert, both PEM ({exc})")
    return files


def _database_protected(url: str) -> bool:
    """A database on this host (loopback or a socket directory) may go without TLS; any other needs it verified."""
    from urllib.parse import parse_qs, urlsplit

    parts = urlsplit(url)
    query = parse_qs(parts.query)
    host = query.get("host", [parts.hostname or ""])[0]
    local = host in ("", "localhost", "127.0.0.1", "::1") or host.startswith("/")
    return local or query.get("sslmode", [""])[0] in ("verify-full", "verify-ca")


def parse_centre(data: dict[str, Any], path: Path) -> CentreConfig:
    problems: list[str] = []
    check_unknown_keys(data, {"centre", "branches", "calendar", "staff", "broker"}, "", problems)
    calendar = data.get("calendar", {})
    away_s = calendar.get("away_s", 60) if isinstance(calendar, dict) else None
    if not isinstance(away_s, int | float) or isinstance(away_s, bool) or not 1 <= away_s <= 3600:
        problems.append(f"calendar.away_s: expected seconds from 1 to 3600, got {away_s!r}")
        away_s = 60
    centre = data.get("centre")
    if not isinstance(centre, dict):
        problems.append("centre: expected a table [centre]")
        centre = {}
    check_unknown_keys(centre, {"name", "listen", "database", "languages", "admin_token", "tls_cert", "tls_key",
                                "workers", "public_url"}, "centre", problems)
    workers = centre.get("workers")
    if workers is not None and (not isinstance(workers, int) or isinstance(workers, bool)
                                or not 1 <= workers <= MAX_WORKERS):
        problems.append(f"centre.workers: expected a number of processes from 1 to {MAX_WORKERS}, got {workers!r}")
        workers = None
    tls = _tls_files(centre, path, problems)
    public_url = centre.get("public_url")
    if public_url is not None and (not isinstance(public_url, str)
                                   or not re.match(r"^https?://[^/\s]+(/\S*)?$", public_url)):
        problems.append(f"centre.public_url: expected an http(s) address like \"https://book.kommune.dk\", "
                        f"got {public_url!r}")
        public_url = None
    name = centre.get("name")
    if not isinstance(name, str) or not name.strip():
        problems.append(f"centre.name: expected a non-empty string, got {name!r}")
        name = ""
    listen = str(centre.get("listen", "127.0.0.1:8700"))
    host, _, port = listen.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        problems.append(f"centre.listen: expected host:port such as \"0.0.0.0:8700\", got {listen!r}")
        host, port = "127.0.0.1", "8700"
    database = centre.get("database")
    if not isinstance(database, str) or not re.match(r"^postgres(ql)?://", database):
        problems.append(f"centre.database: expected a postgresql:// connection URL, got {database!r}")
        database = ""
    elif not _database_protected(database):
        problems.append("centre.database: expected sslmode=verify-full (and sslrootcert=<the database's CA>) for a "
                        "database on another host: the branches' rows and the passwords cross the network")
    languages = centre.get("languages", ["en"])
    if not isinstance(languages, list) or not languages or any(lang not in LANGUAGES for lang in languages):
        problems.append(f"centre.languages: expected a non-empty list of {', '.join(LANGUAGES)}, got {languages!r}")
        languages = ["en"]

    admin_token = centre.get("admin_token")
    if not isinstance(admin_token, str) or len(admin_token) < 16:
        problems.append("centre.admin_token: expected a secret of at least 16 characters")
        admin_token = ""

    branches: dict[str, Branch] = {}
    tokens: dict[str, str] = {str(admin_token): "centre.admin_token"} if admin_token else {}
    table = data.get("branches", {})
    if not isinstance(table, dict):
        problems.append(f"branches: expected tables [branches.<site id>], got {table!r}")
        table = {}
    for bid, item in table.items():
        bpath = f"branches.{bid}"
        if not ID_PATTERN.match(bid):
            problems.append(f"{bpath}: expected an id of lower-case letters, digits, '-' or '_' (at most 40)")
            continue
        if not isinstance(item, dict):
            problems.append(f"{bpath}: expected a table, got {item!r}")
            continue
        check_unknown_keys(item, {"token", "site"}, bpath, problems)
        token = item.get("token")
        if not isinstance(token, str) or len(token) < 16:
            problems.append(f"{bpath}.token: expected the branch's secret, at least 16 characters")
            continue
        if token in tokens:
            problems.append(f"{bpath}.token: expected a token of its own (the same as {tokens[token]})")
        tokens[token] = bpath
        site_file = item.get("site")
        if not isinstance(site_file, str) or not site_file.strip():
            problems.append(f"{bpath}.site: expected the path of the branch's site file, got {site_file!r}")
            continue
        try:
            site = load_config(Path(path).parent / site_file)
        except ConfigError as exc:
            problems += [f"{bpath}.site ({site_file}): {p}" for p in exc.problems]
            continue
        if site.site_id != bid:
            problems.append(f"{bpath}.site: expected the site file of {bid!r}, got one with site.id {site.site_id!r}")
            continue
        try:  # the centre sends the branch's booking confirmations by its [notify] (central/notice_plan.py)
            notice_parts.parse_settings(site)
        except ConfigError as exc:
            problems += [f"{bpath}.site ({site_file}): {p}" for p in exc.problems]
            continue
        branches[bid] = Branch(id=bid, token=token, site=site)
    ldap, oidc = _staff_directory(data.get("staff"), set(table) if isinstance(table, dict) else set(), problems)
    broker = parse_broker(data.get("broker"), Path(path).parent, problems)
    if problems:
        raise ConfigError(problems, str(path))
    return CentreConfig(path=path, name=str(name), listen_host=host.strip("[]"), listen_port=int(port),
                        database=str(database), languages=tuple(languages), admin_token=str(admin_token),
                        branches=BranchSites(branches), calendar_away_s=float(away_s), ldap=ldap, oidc=oidc,
                        workers=workers, broker=broker, public_url=public_url.rstrip("/") if public_url else None,
                        **tls)


def _staff_directory(staff: Any, branch_ids: set[str],
                     problems: list[str]) -> tuple[LdapSettings | None, OidcSettings | None]:
    """``[staff.ldap]`` and ``[staff.oidc]``: the hubs' settings (server/staff/directory.py, oidc.py), with groups
    naming the branches their members see."""
    if staff is None:
        return None, None
    if not isinstance(staff, dict):
        problems.append(f"staff: expected a table [staff.ldap] or [staff.oidc], got {staff!r}")
        return None, None
    check_unknown_keys(staff, {"ldap", "oidc"}, "staff", problems)
    return (parse_ldap(staff.get("ldap"), problems, path="staff.ldap", branches=branch_ids),
            parse_oidc(staff.get("oidc"), problems, path="staff.oidc", branches=branch_ids, callback=OIDC_CALLBACK))


def load_centre(path: str | Path) -> CentreConfig:
    path = Path(path).resolve()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError([f"cannot read the file: {exc.strerror}"], str(path)) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"not valid TOML: {exc}"], str(path)) from None
    return parse_centre(data, path)
