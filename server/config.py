"""The site config: one TOML file, validated completely before the hub starts.

A mistake is reported with its key path and what was expected
(``services.kvik.letter: expected one capital letter A–Z, got 'kv'``), and all
mistakes are reported at once, so an IT person fixes the file in one go. The
hub refuses to start on any of them rather than run half-configured.

One module of ~600 lines on purpose: the core's sections and their checks read
together; plugins validate their own sections (``check_config`` hook).
"""

from __future__ import annotations

import contextlib
import os
import re
import ssl
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from vuoro.i18n import LANGUAGES
from vuoro.mqtt import BrokerSettings, broker_settings, parse_broker_url
from vuoro.protocol import DEFAULT_ROOT, ID_PATTERN

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
SERVICE_MODES = ("walk_in", "booking_only")
DEVICE_KINDS = ("kiosk", "display", "button")
TOKEN_ROLES = ("staff", "admin")
_SPAN = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-4]):([0-5]\d)$")


class ConfigError(Exception):
    """Every problem found in a config file, each with its key path."""

    def __init__(self, problems: list[str], source: str = "site config"):
        self.problems = problems
        self.source = source
        super().__init__(f"{source} has {len(problems)} problem(s):\n" + "\n".join(f"  - {p}" for p in problems))


@dataclass(frozen=True)
class Span:
    """A stretch of local time within one day, e.g. 10:00–18:00."""

    start: time
    end: time  # 24:00 is stored as time.max

    def __str__(self) -> str:
        end = "24:00" if self.end == time.max else self.end.strftime("%H:%M")
        return f"{self.start.strftime('%H:%M')}-{end}"


@dataclass(frozen=True)
class Hours:
    """Weekly hours plus dated exceptions (holidays, short days)."""

    weekly: dict[int, tuple[Span, ...]]  # 0 = Monday
    exceptions: dict[date, tuple[Span, ...]] = field(default_factory=dict)

    def spans_on(self, day: date) -> tuple[Span, ...]:
        if day in self.exceptions:
            return self.exceptions[day]
        return self.weekly.get(day.weekday(), ())

    def is_open(self, local: datetime) -> bool:
        now = local.time()
        return any(span.start <= now < span.end for span in self.spans_on(local.date()))

    def current_close(self, local: datetime) -> datetime | None:
        now = local.time()
        for span in self.spans_on(local.date()):
            if span.start <= now < span.end:
                if span.end == time.max:
                    return datetime.combine(local.date() + timedelta(days=1), time.min, local.tzinfo)
                return datetime.combine(local.date(), span.end, local.tzinfo)
        return None

    def next_open(self, local: datetime, horizon_days: int = 14) -> datetime | None:
        """The next moment these hours begin after ``local`` (None if not within the horizon)."""
        for offset in range(horizon_days + 1):
            day = local.date() + timedelta(days=offset)
            for span in sorted(self.spans_on(day), key=lambda s: s.start):
                start = datetime.combine(day, span.start, local.tzinfo)
                if start > local:
                    return start
        return None


@dataclass(frozen=True)
class Service:
    id: str
    letter: str
    names: dict[str, str]
    mode: str  # walk_in | booking_only
    priority: float
    typical_service_min: float
    target_wait_min: float
    hours: Hours
    near_turn: int = 0  # the phone page says "your turn is near" with at most this many before; 0: never

    def name(self, language: str, fallback: str = "en") -> str:
        return self.names.get(language) or self.names.get(fallback) or next(iter(self.names.values()))


@dataclass(frozen=True)
class Counter:
    id: str
    name: str
    services: tuple[str, ...]  # in order of preference


@dataclass(frozen=True)
class Device:
    id: str
    kind: str
    token: str
    counters: tuple[str, ...] = ()


@dataclass(frozen=True)
class ApiToken:
    name: str
    role: str
    token: str


@dataclass(frozen=True)
class CentralLink:
    """``[central]``: the municipality's centre this branch ships its rows to (docs/central.md).

    Absent: the site runs alone, as it always has; nothing is written to the outbox."""

    url: str  # the centre's base address; the uplink posts to <url>/api/v1/ingest
    token: str  # this branch's secret at the centre (the centre's [branches.<site id>].token)
    ca_file: str | None = None  # https: the CA of the centre's certificate, if not a public one
    batch_rows: int = 500  # outbox rows per request
    heartbeat_s: float = 10.0  # an empty batch this often when idle, so the centre sees the branch is alive
    start_wait_s: float = 20.0  # a hub on a new store waits this long for the centre's numbers (numbering.py)
    # The centre's MQTT broker (one address, or every node of a cluster): the branch's Mosquitto bridges its live
    # state there (deploy/mosquitto_bridge.py). Always mqtts://; empty: no bridge.
    brokers: tuple[str, ...] = ()


@dataclass(frozen=True)
class SiteConfig:
    path: Path
    site_id: str
    name: str
    timezone: ZoneInfo
    languages: tuple[str, ...]
    public_url: str | None
    listen_host: str
    listen_port: int
    database: str
    broker: str
    topic_root: str
    recent_calls: int
    building: Hours
    services: dict[str, Service]
    counters: dict[str, Counter]
    devices: dict[str, Device]
    api_tokens: dict[str, ApiToken]
    raw: dict[str, Any] = field(repr=False, default_factory=dict)
    streams_per_address: int = 100  # open GET /api/v1/stream per client address (server/stream.py)
    streams_total: int = 2000  # ... and in all
    history_days: int = 0  # tickets and feedback ratings older than this are deleted; 0 keeps them (retention.py)
    tls_cert: str | None = None  # HTTPS: the hub's certificate (PEM, with any intermediates) and its key
    tls_key: str | None = None
    broker_ca: str | None = None  # mqtts://: the CA of the broker's certificate; a client certificate, if asked
    broker_cert: str | None = None
    broker_key: str | None = None
    central: CentralLink | None = None  # [central]: ship rows to the centre (server/uplink/)

    @property
    def http_scheme(self) -> str:
        return "https" if self.tls_cert else "http"

    def mqtt_settings(self, env: Mapping[str, str] | None = None) -> BrokerSettings:
        """How the hub reaches the broker; its login comes from VUORO_MQTT_USERNAME/PASSWORD (hub.env)."""
        return broker_settings(self.broker, ca_file=self.broker_ca, cert_file=self.broker_cert,
                               key_file=self.broker_key, env=env)

    @property
    def default_language(self) -> str:
        return self.languages[0]

    def database_path(self, data_dir: Path) -> Path:
        """The SQLite file named by ``hub.database``; a relative path is taken inside ``data_dir``.

        (``sqlite:////var/lib/vuoro/hub.sqlite3`` is absolute; ``sqlite:///hub.sqlite3`` is relative.)
        """
        url = self.database
        if not url.startswith("sqlite:///"):
            raise ValueError(f"not a SQLite URL: {url}")
        path = Path(url[len("sqlite:///") :])
        return path if path.is_absolute() else (Path(data_dir) / path).resolve()

    def local_now(self, now: datetime) -> datetime:
        return now.astimezone(self.timezone)


# -- loading --------------------------------------------------------------------

# The checks every section shares (the core's and the plugins': [bookings], [events], [staff]): a
# problem is appended with its key path, and the default stands in, so every problem is found in one go.


def check_number(table: dict[str, Any], key: str, path: str, default: float, low: float, high: float,
                 problems: list[str], *, whole: bool = False) -> float:
    """``table[key]`` if it is a number from ``low`` to ``high`` (a whole one if ``whole``), else ``default``."""
    value = table.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int if whole else int | float) or not low <= value <= high:
        problems.append(f"{path}.{key}: expected {'a whole number' if whole else 'a number'} from {low:g} to "
                        f"{high:g}, got {value!r}")
        return default
    return value if whole else float(value)


def check_unknown_keys(table: dict[str, Any], allowed: set[str], path: str, problems: list[str]) -> None:
    for key in sorted(set(table) - allowed):
        problems.append(f"{path}.{key}: unknown key (allowed: {', '.join(sorted(allowed))})")


def check_tables(value: Any, path: str, allowed: set[str], problems: list[str], *, listed: str,
                 one: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """The tables of a list such as ``[[events.feeds]]``, each with its key path (``events.feeds[0]``); a list
    that is not one, an entry that is not a table, and unknown keys are problems (``listed`` and ``one`` say in
    words what the list and an entry should be)."""
    if not isinstance(value, list):
        problems.append(f"{path}: expected a list of {listed}, got {value!r}")
        return
    for i, entry in enumerate(value):
        entry_path = f"{path}[{i}]"
        if not isinstance(entry, dict):
            problems.append(f"{entry_path}: expected a table {one}, got {entry!r}")
            continue
        check_unknown_keys(entry, allowed, entry_path, problems)
        yield entry_path, entry


class _Checker:
    """Collects problems with their key paths instead of stopping at the first."""

    def __init__(self) -> None:
        self.problems: list[str] = []

    def problem(self, path: str, expected: str, got: Any = ...) -> None:
        self.problems.append(f"{path}: expected {expected}" + ("" if got is ... else f", got {got!r}"))

    def table(self, data: Any, path: str, *, required: bool = True) -> dict[str, Any]:
        if data is None and not required:
            return {}
        if not isinstance(data, dict):
            self.problem(path, "a table", data if data is not None else ...)
            return {}
        return data

    def string(self, data: dict[str, Any], key: str, path: str, *, default: str | None = None) -> str:
        value = data.get(key, default)
        if not isinstance(value, str) or not value.strip():
            self.problem(f"{path}.{key}", "a non-empty string", value if key in data else ...)
            return default or ""
        return value

    def number(self, data: dict[str, Any], key: str, path: str, default: float, low: float, high: float) -> float:
        return check_number(data, key, path, default, low, high, self.problems)

    def entries(self, data: Any, path: str, allowed: set[str], *,
                required: bool = True) -> Iterator[tuple[str, str, dict[str, Any]]]:
        """Each ``[<path>.<id>]`` table whose id is valid: (id, its key path, the table); unknown keys reported."""
        for ident, item in self.table(data, path, required=required).items():
            item_path = f"{path}.{ident}"
            if not self.ident(ident, item_path):
                continue
            item = self.table(item, item_path)
            self.unknown_keys(item, allowed, item_path)
            yield ident, item_path, item

    def ident(self, value: Any, path: str) -> bool:
        if not isinstance(value, str) or not ID_PATTERN.match(value):
            self.problem(path, "an id of lower-case letters, digits, '-' or '_' (at most 40)", value)
            return False
        return True

    def unknown_keys(self, data: dict[str, Any], allowed: set[str], path: str) -> None:
        check_unknown_keys(data, allowed, path, self.problems)

    def spans(self, value: Any, path: str) -> tuple[Span, ...]:
        if not isinstance(value, list):
            self.problem(path, 'a list of "HH:MM-HH:MM" strings', value)
            return ()
        spans = []
        for i, item in enumerate(value):
            match = _SPAN.match(item) if isinstance(item, str) else None
            if not match:
                self.problem(f"{path}[{i}]", 'a time span like "10:00-18:00"', item)
                continue
            h1, m1, h2, m2 = (int(g) for g in match.groups())
            start = time(h1, m1)
            end = time.max if (h2, m2) == (24, 0) else time(h2 % 24, m2)
            if (h2, m2) > (24, 0) or end <= start:
                self.problem(f"{path}[{i}]", "an end after the start, at most 24:00", item)
                continue
            spans.append(Span(start, end))
        return tuple(sorted(spans, key=lambda s: s.start))

    def hours(self, data: Any, exceptions: Any, path: str) -> Hours:
        table = self.table(data, f"{path}.hours", required=False)
        self.unknown_keys(table, set(WEEKDAYS), f"{path}.hours")
        weekly = {i: self.spans(table[d], f"{path}.hours.{d}") for i, d in enumerate(WEEKDAYS) if d in table}
        dated: dict[date, tuple[Span, ...]] = {}
        if exceptions is not None:
            if not isinstance(exceptions, list):
                self.problem(f"{path}.exceptions", "a list of {date, hours} tables", exceptions)
            else:
                for i, item in enumerate(exceptions):
                    epath = f"{path}.exceptions[{i}]"
                    item = self.table(item, epath)
                    day = item.get("date")
                    if isinstance(day, str):
                        with contextlib.suppress(ValueError):
                            day = date.fromisoformat(day)
                    if not isinstance(day, date) or isinstance(day, datetime):
                        self.problem(f"{epath}.date", "a date like 2026-12-24", item.get("date"))
                        continue
                    self.unknown_keys(item, {"date", "hours", "note"}, epath)
                    dated[day] = self.spans(item.get("hours", []), f"{epath}.hours")
        return Hours(weekly=weekly, exceptions=dated)


def _parse_host_port(value: str) -> tuple[str, int] | None:
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        return None
    return host.strip("[]"), int(port)


HUB_FILE_KEYS = ("tls_cert", "tls_key", "broker_ca", "broker_cert", "broker_key")


def _hub_files(c: _Checker, hub: dict[str, Any], path: Path) -> dict[str, str | None]:
    """The certificate and key files in [hub] (a relative path is taken beside the config file),
    checked on this machine: a hub that cannot read its key must not start and fail later."""
    files: dict[str, str | None] = {}
    for key in HUB_FILE_KEYS:
        value = hub.get(key)
        if value is None:
            files[key] = None
        elif not isinstance(value, str) or not value.strip():
            c.problem(f"hub.{key}", "the path of a PEM file", value)
            files[key] = None
        else:
            files[key] = str((Path(path).parent / value).resolve())
            if not os.access(files[key], os.R_OK):
                why = "a file that exists" if not os.path.exists(files[key]) else "a file this user may read"
                c.problem(f"hub.{key}", why, files[key])
                files[key] = None
    for cert, key in (("tls_cert", "tls_key"), ("broker_cert", "broker_key")):
        if (cert in hub) != (key in hub):
            missing = key if cert in hub else cert
            c.problem(f"hub.{missing}", f"a file too: hub.{cert} and hub.{key} go together")
    if files["tls_cert"] and files["tls_key"]:
        try:
            ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(files["tls_cert"], files["tls_key"])
        except (ssl.SSLError, OSError) as exc:
            c.problem("hub.tls_key", "the private key of hub.tls_cert, both PEM", getattr(exc, "reason", None) or
                      str(exc))
    if any(files[k] for k in ("broker_ca", "broker_cert", "broker_key")):
        broker = str(hub.get("broker", ""))
        settings = BrokerSettings(broker, ca_file=files["broker_ca"], cert_file=files["broker_cert"],
                                  key_file=files["broker_key"])
        for problem in settings.problems({"url": "hub.broker", "ca_file": "hub.broker_ca",
                                          "cert_file": "hub.broker_cert", "key_file": "hub.broker_key"}):
            c.problems.append(problem)
    return files


def _central(c: _Checker, data: Any, path: Path) -> CentralLink | None:
    """``[central]``, checked like every other section: each mistake with its key path."""
    if data is None:
        return None
    table = c.table(data, "central")
    c.unknown_keys(table, {"url", "token", "ca_file", "batch_rows", "heartbeat_s", "start_wait_s", "broker"}, "central")
    url = table.get("url")
    if not isinstance(url, str) or not re.fullmatch(r"https?://[^\s/]+(/\S*)?", url):
        c.problem("central.url", "the centre's address, such as https://centre.example.dk", url if "url" in table
                  else ...)
        url = ""
    token = table.get("token")
    if not isinstance(token, str) or len(token) < 16:
        c.problem("central.token", "this branch's secret at the centre, at least 16 characters",
                  "…" if isinstance(token, str) else token if "token" in table else ...)
        token = ""
    ca_file = table.get("ca_file")
    if ca_file is not None:
        if not isinstance(ca_file, str) or not ca_file.strip():
            c.problem("central.ca_file", "the path of a PEM file", ca_file)
            ca_file = None
        else:
            ca_file = str((Path(path).parent / ca_file).resolve())
            if not os.access(ca_file, os.R_OK):
                c.problem("central.ca_file", "a file that exists and this user may read", ca_file)
                ca_file = None
    batch_rows = int(check_number(table, "batch_rows", "central", 500, 1, 10_000, c.problems, whole=True))
    heartbeat_s = c.number(table, "heartbeat_s", "central", 10.0, 0.5, 3600.0)
    start_wait_s = c.number(table, "start_wait_s", "central", 20.0, 0.0, 300.0)
    return CentralLink(url=str(url).rstrip("/"), token=token, ca_file=ca_file, batch_rows=batch_rows,
                       heartbeat_s=heartbeat_s, start_wait_s=start_wait_s,
                       brokers=_central_brokers(c, table.get("broker")))


def _central_brokers(c: _Checker, value: Any) -> tuple[str, ...]:
    """``[central] broker``: one mqtts:// address or a list of them (a cluster's nodes). TLS only: the bridge
    crosses the WAN with the branch's token as its password."""
    if value is None:
        return ()
    urls = [value] if isinstance(value, str) else value
    expected = "mqtts://host:port, or a list of them (the nodes of a clustered broker)"
    if not isinstance(urls, list) or not urls:
        c.problem("central.broker", expected, value)
        return ()
    for i, url in enumerate(urls):
        try:
            if not isinstance(url, str) or not parse_broker_url(url).tls or not url.startswith("mqtts://"):
                raise ValueError
        except ValueError:
            c.problem(f"central.broker[{i}]" if isinstance(value, list) else "central.broker", expected, url)
            return ()
    return tuple(urls)


def sample_secrets(config: SiteConfig) -> list[str]:
    """Tokens and passwords still as the sample files have them (``…change-me``), by key path: a
    warning for ``vuoro hub --check``, not an error, so the demo and the tests run on the sample."""
    found = [f"devices.{d.id}.token" for d in config.devices.values() if "change-me" in d.token.lower()]
    found += [f"api_tokens.{t.name}.token" for t in config.api_tokens.values() if "change-me" in t.token.lower()]
    if config.central and "change-me" in config.central.token.lower():
        found.append("central.token")
    sample_hashes = _sample_password_hashes()
    users = config.raw.get("staff", {}).get("users", {}) if isinstance(config.raw.get("staff"), dict) else {}
    for name, user in users.items() if isinstance(users, dict) else ():
        if isinstance(user, dict) and user.get("password_hash") in sample_hashes:
            found.append(f"staff.users.{name}.password_hash")
    return found


def _sample_password_hashes() -> set[str]:
    with contextlib.suppress(OSError, tomllib.TOMLDecodeError, AttributeError, KeyError, TypeError):
        users = tomllib.loads(SAMPLE_SITE.read_text(encoding="utf-8"))["staff"]["users"]
        return {u["password_hash"] for u in users.values() if isinstance(u, dict) and "password_hash" in u}
    return set()


def parse_config(data: dict[str, Any], path: Path) -> SiteConfig:
    """Validate a parsed TOML document. Raises ConfigError listing every problem."""
    c = _Checker()
    c.unknown_keys(data, {"site", "hub", "building", "services", "counters", "devices", "api_tokens", "printer",
                          "bookings", "events", "kiosk", "staff", "central", "phone", "notify"}, "")
    site = c.table(data.get("site"), "site")
    c.unknown_keys(site, {"id", "name", "timezone", "languages", "public_url"}, "site")
    site_id = site.get("id", "")
    c.ident(site_id, "site.id")
    name = c.string(site, "name", "site")
    tz_name = c.string(site, "timezone", "site", default="Europe/Copenhagen")
    try:
        timezone = ZoneInfo(tz_name)
    except (ZoneInfoNotFoundError, ValueError):
        c.problem("site.timezone", "an IANA time zone such as Europe/Copenhagen", tz_name)
        timezone = ZoneInfo("UTC")
    languages = site.get("languages", ["en"])
    if not isinstance(languages, list) or not languages or any(lang not in LANGUAGES for lang in languages):
        c.problem("site.languages", f"a non-empty list of {', '.join(LANGUAGES)}", languages)
        languages = ["en"]
    public_url = site.get("public_url")
    if public_url is not None and (not isinstance(public_url, str) or not public_url.startswith(("http://",
                                                                                                 "https://"))):
        c.problem("site.public_url", "an http(s) address", public_url)
        public_url = None

    hub = c.table(data.get("hub"), "hub", required=False)
    c.unknown_keys(hub, {"listen", "database", "broker", "topic_root", "recent_calls", "streams_per_address",
                         "streams_total", "history_days", *HUB_FILE_KEYS}, "hub")
    listen = _parse_host_port(str(hub.get("listen", "127.0.0.1:8080")))
    if listen is None:
        c.problem("hub.listen", 'host:port such as "0.0.0.0:8080"', hub.get("listen"))
        listen = ("127.0.0.1", 8080)
    database = str(hub.get("database", "sqlite:///hub.sqlite3"))
    if not database.startswith("sqlite:///"):
        c.problem("hub.database", "a sqlite:///path URL (PostgreSQL is planned)", database)
    broker = str(hub.get("broker", "mqtt://127.0.0.1:1883"))
    try:
        parse_broker_url(broker)
    except ValueError:
        c.problem("hub.broker", "mqtt://host:port or mqtts://host:port", broker)
    files = _hub_files(c, hub, path)
    topic_root = str(hub.get("topic_root", DEFAULT_ROOT))
    c.ident(topic_root, "hub.topic_root")
    recent = int(c.number(hub, "recent_calls", "hub", 8, 1, 50))
    streams_total = int(c.number(hub, "streams_total", "hub", 2000, 1, 100_000))
    streams_per_address = int(c.number(hub, "streams_per_address", "hub", 100, 1, 100_000))
    history_days = int(c.number(hub, "history_days", "hub", 0, 0, 36_500))  # server/retention.py: 0 keeps all
    if 0 < history_days < 31:
        c.problem("hub.history_days", "0 (keep the visit history) or at least 31 days", history_days)

    building_table = c.table(data.get("building"), "building", required=False)
    c.unknown_keys(building_table, {"hours", "exceptions"}, "building")
    building = c.hours(building_table.get("hours"), building_table.get("exceptions"), "building")

    services: dict[str, Service] = {}
    letters: dict[str, str] = {}
    for sid, spath, item in c.entries(data.get("services"), "services", {
            "letter", "mode", "priority", "typical_service_min", "target_wait_min", "names", "hours", "exceptions",
            "booking", "near_turn"}):
        letter = item.get("letter")
        if not isinstance(letter, str) or not re.fullmatch(r"[A-Z]", letter):
            c.problem(f"{spath}.letter", "one capital letter A–Z", letter)
            letter = "?"
        elif letter in letters:
            # Two services on one letter would share a number series: A001 twice a day.
            c.problem(f"{spath}.letter", f"a letter no other service uses (services.{letters[letter]} has it)",
                      letter)
        else:
            letters[letter] = sid
        mode = item.get("mode", "walk_in")
        if mode not in SERVICE_MODES:
            c.problem(f"{spath}.mode", " or ".join(SERVICE_MODES), mode)
            mode = "walk_in"
        names = c.table(item.get("names"), f"{spath}.names")
        for lang in languages:
            if not isinstance(names.get(lang), str) or not names.get(lang, "").strip():
                c.problem(f"{spath}.names.{lang}", f"the service's name in {lang}", names.get(lang, ...))
        services[sid] = Service(
            id=sid,
            letter=letter,
            names={k: v for k, v in names.items() if isinstance(v, str)},
            mode=mode,
            priority=c.number(item, "priority", spath, 1.0, 0.1, 10.0),
            typical_service_min=c.number(item, "typical_service_min", spath, 5.0, 0.5, 240.0),
            target_wait_min=c.number(item, "target_wait_min", spath, 15.0, 0.0, 600.0),
            hours=c.hours(item.get("hours"), item.get("exceptions"), spath),
            near_turn=int(check_number(item, "near_turn", spath, 0, 0, 50, c.problems, whole=True)),
        )
    if not services and "services" in data:
        c.problem("services", "at least one service")

    counters: dict[str, Counter] = {}
    for cid, cpath, item in c.entries(data.get("counters"), "counters", {"name", "services"}):
        served = item.get("services")
        if not isinstance(served, list) or not served:
            c.problem(f"{cpath}.services", "a non-empty list of service ids", served)
            served = []
        for i, sid in enumerate(served):
            if sid not in services:
                c.problem(f"{cpath}.services[{i}]", f"one of the services ({', '.join(services)})", sid)
        counters[cid] = Counter(id=cid, name=c.string(item, "name", cpath), services=tuple(served))

    devices: dict[str, Device] = {}
    tokens_seen: dict[str, str] = {}

    def check_token(token: Any, path: str) -> str:
        if not isinstance(token, str) or len(token) < 16:
            c.problem(path, "a secret of at least 16 characters", "…" if isinstance(token, str) else token)
            return ""
        if token in tokens_seen:
            c.problem(path, f"a token of its own (the same as {tokens_seen[token]})")
        tokens_seen[token] = path
        return token

    for did, dpath, item in c.entries(data.get("devices"), "devices", {"kind", "token", "counters", "printer",
                                                                       "services", "language"}, required=False):
        kind = item.get("kind")
        if kind not in DEVICE_KINDS:
            c.problem(f"{dpath}.kind", " or ".join(DEVICE_KINDS), kind)
        own = item.get("counters", [])
        if not isinstance(own, list) or any(x not in counters for x in own):
            c.problem(f"{dpath}.counters", f"a list of counters ({', '.join(counters)})", own)
            own = []
        devices[did] = Device(id=did, kind=str(kind), token=check_token(item.get("token"), f"{dpath}.token"),
                              counters=tuple(own))

    api_tokens: dict[str, ApiToken] = {}
    for tname, item in c.table(data.get("api_tokens"), "api_tokens", required=False).items():
        tpath = f"api_tokens.{tname}"
        item = c.table(item, tpath)
        c.unknown_keys(item, {"role", "token"}, tpath)
        role = item.get("role")
        if role not in TOKEN_ROLES:
            c.problem(f"{tpath}.role", " or ".join(TOKEN_ROLES), role)
        api_tokens[tname] = ApiToken(name=tname, role=str(role), token=check_token(item.get("token"),
                                                                                   f"{tpath}.token"))

    central = _central(c, data.get("central"), path)

    if c.problems:
        raise ConfigError(c.problems, str(path))
    return SiteConfig(
        path=path,
        site_id=site_id,
        name=name,
        timezone=timezone,
        languages=tuple(languages),
        public_url=public_url.rstrip("/") if public_url else None,
        listen_host=listen[0],
        listen_port=listen[1],
        database=database,
        broker=broker,
        topic_root=topic_root,
        recent_calls=recent,
        building=building,
        services=services,
        counters=counters,
        devices=devices,
        api_tokens=api_tokens,
        raw=data,
        streams_per_address=streams_per_address,
        streams_total=streams_total,
        history_days=history_days,
        central=central,
        **files,
    )


def load_config(path: str | Path) -> SiteConfig:
    path = Path(path).resolve()
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([f"cannot read the file: {exc.strerror}"], str(path)) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"not valid TOML: {exc}"], str(path)) from None
    return parse_config(data, path)


SAMPLE_SITE = Path(__file__).parent / "sites" / "sample.toml"
