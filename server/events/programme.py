"""What's on: events from iCalendar feeds, the DPL CMS events API and staff; sign-ups with a waiting list.

Feeds are fetched by a background thread (never the writer): ``requests``
with a timeout, conditional GET (ETag / Last-Modified) and a copy on disk
of the last feed that parsed, so a lost network or a broken feed keeps the
last good programme. Parsed events are handed to the writer thread with a
hub command, which also republishes ``events/today``.

Recurrences are expanded with ``recurring-ical-events`` (RRULE, EXDATE,
moved occurrences by RECURRENCE-ID) in the feed's own time zones; every time
leaves in the site's zone, so a weekly 10:00 stays 10:00 across the change
to and from summer time. All-day events run from local midnight to midnight.

DPL CMS (the CMS of Danish public libraries) states map to what screens show:
``TicketSaleNotOpen``/``Active``/``Occurred`` → ``scheduled``, ``SoldOut`` →
``sold_out``, ``Cancelled`` → ``cancelled``.

Sign-ups (first come, first served) are for events with seats: staff events
with ``seats``, and feed events carrying ``X-VUORO-SEATS``. DPL events sell
their tickets on the library's web site, so the kiosk only shows their state.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sqlite3
import threading
import time as _time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from server import codes
from server.config import ConfigError, SiteConfig
from server.engine import Outcome, QueueEngine

log = logging.getLogger("vuoro.events")

SCHEDULED, SOLD_OUT, CANCELLED = "scheduled", "sold_out", "cancelled"
EVENT_STATES = (SCHEDULED, SOLD_OUT, CANCELLED)
DPL_STATES = {"TicketSaleNotOpen": SCHEDULED, "Active": SCHEDULED, "Occurred": SCHEDULED, "SoldOut": SOLD_OUT,
              "Cancelled": CANCELLED}
FEED_KINDS = ("ics", "dpl")

SCHEMA: list[str] = [
    """
    CREATE TABLE events_local (
        id           TEXT PRIMARY KEY,
        site         TEXT NOT NULL,
        title        TEXT NOT NULL,
        start        TEXT NOT NULL,                 -- ISO 8601 UTC
        "end"        TEXT NOT NULL,
        room         TEXT,
        state        TEXT NOT NULL CHECK (state IN ('scheduled','sold_out','cancelled')),
        seats        INTEGER CHECK (seats IS NULL OR seats >= 0),
        waiting_list INTEGER NOT NULL DEFAULT 0 CHECK (waiting_list >= 0),
        description  TEXT,
        created_at   TEXT NOT NULL
    );
    CREATE TABLE event_signups (
        id            TEXT PRIMARY KEY,
        site          TEXT NOT NULL,
        event_id      TEXT NOT NULL,                -- a staff event's id, or a feed occurrence's stable id
        code          TEXT NOT NULL,
        seat          INTEGER CHECK (seat IS NULL OR seat >= 1),
        waiting_place INTEGER CHECK (waiting_place IS NULL OR waiting_place >= 1),
        language      TEXT,
        idem_key      TEXT,
        created_at    TEXT NOT NULL,
        CHECK ((seat IS NULL) <> (waiting_place IS NULL)),
        UNIQUE (site, code),
        UNIQUE (site, event_id, seat),
        UNIQUE (site, event_id, waiting_place),
        UNIQUE (site, idem_key)
    );
    CREATE INDEX event_signups_event ON event_signups (site, event_id);
    """,
]


class FeedError(Exception):
    """A feed that could not be read or parsed, in words for staff."""


# -- settings ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Feed:
    name: str
    url: str
    kind: str  # ics | dpl
    room: str | None = None  # for events without a location


@dataclass(frozen=True)
class EventSettings:
    feeds: tuple[Feed, ...] = ()
    refresh_min: float = 30.0
    timeout_s: float = 10.0
    horizon_days: int = 31
    waiting_list: int = 10  # default waiting-list length of a staff event with seats
    upcoming: int = 12  # events after today published with today's


def parse_settings(config: SiteConfig) -> EventSettings:
    raw = config.raw.get("events", {})
    problems: list[str] = []
    if not isinstance(raw, dict):
        raise ConfigError([f"events: expected a table, got {raw!r}"], str(config.path))
    allowed = {"feeds", "refresh_min", "timeout_s", "horizon_days", "waiting_list", "upcoming"}
    for key in sorted(set(raw) - allowed):
        problems.append(f"events.{key}: unknown key (allowed: {', '.join(sorted(allowed))})")

    def number(key: str, default: float, low: float, high: float) -> float:
        value = raw.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
            problems.append(f"events.{key}: expected a number from {low:g} to {high:g}, got {value!r}")
            return default
        return float(value)

    feeds: list[Feed] = []
    items = raw.get("feeds", [])
    if not isinstance(items, list):
        problems.append(f"events.feeds: expected a list of feed tables, got {items!r}")
        items = []
    names: set[str] = set()
    for i, item in enumerate(items):
        path = f"events.feeds[{i}]"
        if not isinstance(item, dict):
            problems.append(f"{path}: expected a table {{name, url, kind}}, got {item!r}")
            continue
        for key in sorted(set(item) - {"name", "url", "kind", "room"}):
            problems.append(f"{path}.{key}: unknown key (allowed: kind, name, room, url)")
        name, url, kind = item.get("name"), item.get("url"), item.get("kind", "ics")
        if not isinstance(name, str) or not name.replace("-", "").replace("_", "").isalnum() or name in names:
            problems.append(f"{path}.name: expected a unique name of letters, digits, '-' or '_', got {name!r}")
            continue
        names.add(name)
        if not isinstance(url, str) or not url.startswith(("http://", "https://", "file://")):
            problems.append(f"{path}.url: expected an http(s) address, got {url!r}")
            continue
        if kind not in FEED_KINDS:
            problems.append(f"{path}.kind: expected ics or dpl, got {kind!r}")
            continue
        room = item.get("room")
        if room is not None and not isinstance(room, str):
            problems.append(f"{path}.room: expected a string, got {room!r}")
            room = None
        feeds.append(Feed(name, url, kind, room))
    settings = EventSettings(
        feeds=tuple(feeds),
        refresh_min=number("refresh_min", 30, 1, 1440),
        timeout_s=number("timeout_s", 10, 0.1, 120),
        horizon_days=int(number("horizon_days", 31, 1, 366)),
        waiting_list=int(number("waiting_list", 10, 0, 1000)),
        upcoming=int(number("upcoming", 12, 0, 100)),
    )
    if problems:
        raise ConfigError(problems, str(config.path))
    return settings


# -- events ----------------------------------------------------------------------------------


@dataclass
class Event:
    id: str
    source: str  # a feed's name, or "staff"
    title: str
    start: datetime  # aware
    end: datetime
    room: str | None = None
    state: str = SCHEDULED
    all_day: bool = False
    seats: int | None = None  # sign-ups at the kiosk when set
    waiting_list: int = 0
    url: str | None = None
    description: str | None = None


def _stable_id(source: str, uid: str, when: datetime | date) -> str:
    key = f"{source}|{uid}|{when.isoformat()}"
    return hashlib.sha1(key.encode()).hexdigest()[:16]


def _aware(value: datetime | date, tz: ZoneInfo, *, end: bool = False) -> tuple[datetime, bool]:
    """(an aware datetime, whether it was a whole day)."""
    if isinstance(value, datetime):
        return (value.replace(tzinfo=tz) if value.tzinfo is None else value), False
    return datetime.combine(value, time.min, tz), True


def parse_ics(text: str | bytes, tz: ZoneInfo, start: datetime, end: datetime, source: str,
              room: str | None = None) -> list[Event]:
    """Every occurrence between ``start`` and ``end`` of an iCalendar feed. Raises FeedError on a broken feed."""
    import recurring_ical_events
    from icalendar import Calendar

    raw = text.encode() if isinstance(text, str) else text
    if b"BEGIN:VCALENDAR" not in raw[:2048].upper():
        raise FeedError("This is not an iCalendar feed (no BEGIN:VCALENDAR at the top).")
    try:
        calendar = Calendar.from_ical(raw)
    except (ValueError, IndexError, KeyError) as exc:
        raise FeedError(f"The iCalendar feed is broken: {exc}") from None
    if calendar.get("X-WR-TIMEZONE"):
        import x_wr_timezone

        calendar = x_wr_timezone.to_standard(calendar)
    try:
        occurrences = recurring_ical_events.of(calendar, skip_bad_series=True).between(start, end)
    except Exception as exc:  # the library raises its own errors for broken rules
        raise FeedError(f"The iCalendar feed has an event that cannot be expanded: {exc}") from None
    events: list[Event] = []
    for component in occurrences:
        if component.name != "VEVENT":
            continue
        dtstart = component.get("DTSTART")
        if dtstart is None:
            continue
        begins, all_day = _aware(dtstart.dt, tz)
        dtend = component.get("DTEND")
        if dtend is not None:
            ends, _ = _aware(dtend.dt, tz)
        elif component.get("DURATION") is not None:
            length = component.get("DURATION").dt
            # RFC 5545: hours and minutes are exact time (7 h is 7 h on the night the clocks change), days nominal
            exact = timedelta(seconds=length.seconds, microseconds=length.microseconds)
            ends = (begins + timedelta(days=length.days)).astimezone(UTC) + exact
        else:
            ends = begins + (timedelta(days=1) if all_day else timedelta(0))
        uid = str(component.get("UID", "")) or str(component.get("SUMMARY", ""))
        rid = component.get("RECURRENCE-ID")
        occurrence_key = rid.dt if rid is not None else dtstart.dt
        status = str(component.get("STATUS", "")).upper()
        seats = component.get("X-VUORO-SEATS")
        try:
            seats_n = int(str(seats)) if seats is not None else None
        except ValueError:
            seats_n = None
        location = str(component.get("LOCATION", "")).strip() or room
        events.append(Event(
            id=_stable_id(source, uid, occurrence_key),
            source=source,
            title=str(component.get("SUMMARY", "")).strip() or "—",
            start=begins.astimezone(tz),
            end=ends.astimezone(tz),
            room=location,
            state=CANCELLED if status == "CANCELLED" else SCHEDULED,
            all_day=all_day,
            seats=seats_n if seats_n is not None and seats_n >= 0 else None,
            url=str(component.get("URL")) if component.get("URL") else None,
        ))
    events.sort(key=lambda e: (e.start, e.title))
    return events


def parse_dpl(text: str | bytes, tz: ZoneInfo, start: datetime, end: datetime, source: str,
              room: str | None = None) -> list[Event]:
    """Events of the DPL CMS events API (a JSON list). Raises FeedError when it is not such a list."""
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise FeedError(f"The DPL CMS answer is not JSON: {exc}") from None
    if isinstance(data, dict):  # some versions wrap the list
        data = data.get("events", data.get("data"))
    if not isinstance(data, list):
        raise FeedError("The DPL CMS answer is not a list of events.")
    events: list[Event] = []
    skipped = 0
    for item in data:
        try:
            when = item["date_time"]
            begins = datetime.fromisoformat(when["start"].replace("Z", "+00:00"))
            ends = datetime.fromisoformat((when.get("end") or when["start"]).replace("Z", "+00:00"))
            title = str(item["title"]).strip()
        except (KeyError, TypeError, ValueError, AttributeError):
            skipped += 1
            continue
        begins = begins.replace(tzinfo=tz) if begins.tzinfo is None else begins
        ends = ends.replace(tzinfo=tz) if ends.tzinfo is None else ends
        if ends < start or begins > end:
            continue
        address = item.get("address") or {}
        location = (address.get("location") if isinstance(address, dict) else None) or room
        state = item.get("state")
        if state not in DPL_STATES:
            log.info("DPL event %s has an unknown state %r; shown as scheduled", item.get("uuid"), state)
        capacity = item.get("ticket_capacity")
        events.append(Event(
            id=_stable_id(source, str(item.get("uuid") or title), begins),
            source=source,
            title=title,
            start=begins.astimezone(tz),
            end=ends.astimezone(tz),
            room=str(location).strip() if location else None,
            state=DPL_STATES.get(str(state), SCHEDULED),
            url=item.get("url") if isinstance(item.get("url"), str) else None,
            description=None,
            seats=None,  # DPL sells its tickets on the web site; capacity is informative
            waiting_list=0,
        ))
        if isinstance(capacity, int):
            events[-1].description = f"capacity {capacity}"
    if skipped:
        log.warning("feed %s: %d DPL events without a title or a date_time were skipped", source, skipped)
    events.sort(key=lambda e: (e.start, e.title))
    return events


PARSERS: dict[str, Callable[..., list[Event]]] = {"ics": parse_ics, "dpl": parse_dpl}


# -- fetching ----------------------------------------------------------------------------------


@dataclass
class FeedStatus:
    name: str
    url: str
    ok: bool = False
    error: str | None = None
    events: int = 0
    last_attempt: str | None = None
    last_success: str | None = None
    from_cache: bool = False
    not_modified: int = 0

    def json(self) -> dict[str, Any]:
        return dict(self.__dict__)


class FeedFetcher:
    """A background thread that keeps every feed fresh and hands parsed events to ``deliver``.

    ``deliver(feed_name, events)`` is called from this thread; the plugin turns it into a hub command.
    """

    def __init__(self, settings: EventSettings, tz: ZoneInfo, cache_dir: Path,
                 deliver: Callable[[str, list[Event]], None], clock: Callable[[], datetime] | None = None):
        self.settings = settings
        self.tz = tz
        self.cache_dir = Path(cache_dir)
        self.deliver = deliver
        self.clock = clock or (lambda: datetime.now(UTC))
        self.status = {f.name: FeedStatus(f.name, f.url) for f in settings.feeds}
        self._session: Any = None  # a requests.Session, made on the first fetch (see fetch)
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._parsed_day: dict[str, date] = {}
        self.rounds = 0
        self.round_done = threading.Condition()

    # files: <name>.body holds the last feed that parsed; <name>.json its ETag/Last-Modified
    def _paths(self, feed: Feed) -> tuple[Path, Path]:
        return self.cache_dir / f"{feed.name}.body", self.cache_dir / f"{feed.name}.json"

    def window(self) -> tuple[datetime, datetime]:
        today = self.clock().astimezone(self.tz).date()
        start = datetime.combine(today - timedelta(days=1), time.min, self.tz)
        return start, start + timedelta(days=self.settings.horizon_days + 1)

    def _parse(self, feed: Feed, body: bytes) -> list[Event]:
        start, end = self.window()
        return PARSERS[feed.kind](body, self.tz, start, end, feed.name, feed.room)

    def load_cache(self) -> None:
        """Yesterday's programme at once, before any network."""
        for feed in self.settings.feeds:
            body_path, _ = self._paths(feed)
            if not body_path.exists():
                continue
            try:
                events = self._parse(feed, body_path.read_bytes())
            except FeedError as exc:
                log.warning("feed %s: the cached copy does not parse: %s", feed.name, exc)
                continue
            status = self.status[feed.name]
            status.ok, status.events, status.from_cache = True, len(events), True
            self._parsed_day[feed.name] = self.clock().astimezone(self.tz).date()
            self.deliver(feed.name, events)

    @property
    def session(self) -> Any:
        # requests (with urllib3, ssl and friends) costs the hub ~10 MB; only a site with feeds pays it.
        if self._session is None:
            import requests

            self._session = requests.Session()
            self._session.headers["User-Agent"] = "vuoro-hub (library signage)"
        return self._session

    def fetch(self, feed: Feed) -> None:
        """One conditional GET; parse, cache and deliver on success; keep the last good programme otherwise."""
        status = self.status[feed.name]
        now = self.clock()
        status.last_attempt = now.isoformat(timespec="seconds")
        body_path, meta_path = self._paths(feed)
        meta: dict[str, Any] = {}
        if meta_path.exists() and body_path.exists():
            try:
                meta = json.loads(meta_path.read_text())
            except ValueError:
                meta = {}
        headers = {}
        if meta.get("url") == feed.url:
            if meta.get("etag"):
                headers["If-None-Match"] = meta["etag"]
            if meta.get("last_modified"):
                headers["If-Modified-Since"] = meta["last_modified"]
        import requests

        try:
            if feed.url.startswith("file://"):
                body, code, response_headers = Path(feed.url[7:]).read_bytes(), 200, {}
            else:
                response = self.session.get(feed.url, headers=headers, timeout=self.settings.timeout_s)
                body, code, response_headers = response.content, response.status_code, response.headers
        except requests.Timeout:
            self._fail(status, f"The feed did not answer within {self.settings.timeout_s:g} s; "
                               "the last good programme is kept.")
            return
        except (requests.RequestException, OSError) as exc:
            self._fail(status, f"The feed could not be fetched ({type(exc).__name__}); the last good programme "
                               "is kept.")
            return
        if code == 304:
            status.not_modified += 1
            status.ok, status.error, status.last_success = True, None, now.isoformat(timespec="seconds")
            today = now.astimezone(self.tz).date()
            if self._parsed_day.get(feed.name) != today:  # the window moved: expand the cached copy again
                try:
                    events = self._parse(feed, body_path.read_bytes())
                except (FeedError, OSError) as exc:
                    self._fail(status, f"The cached copy does not parse: {exc}")
                    return
                self._parsed_day[feed.name] = today
                status.events = len(events)
                self.deliver(feed.name, events)
            return
        if code != 200:
            self._fail(status, f"The feed answered HTTP {code}; the last good programme is kept.")
            return
        try:
            events = self._parse(feed, body)
        except FeedError as exc:
            self._fail(status, f"{exc} The last good programme is kept.")
            return
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        tmp = body_path.with_suffix(".tmp")
        tmp.write_bytes(body)
        tmp.replace(body_path)
        meta_path.write_text(json.dumps({"url": feed.url, "etag": response_headers.get("ETag"),
                                         "last_modified": response_headers.get("Last-Modified")}))
        self._parsed_day[feed.name] = now.astimezone(self.tz).date()
        status.ok, status.error, status.events, status.from_cache = True, None, len(events), False
        status.last_success = now.isoformat(timespec="seconds")
        self.deliver(feed.name, events)

    def _fail(self, status: FeedStatus, message: str) -> None:
        log.warning("feed %s: %s", status.name, message)
        status.ok, status.error = False, message

    def refresh_all(self) -> None:
        for feed in self.settings.feeds:
            try:
                self.fetch(feed)
            except Exception:  # a bug in one feed must not stop the others or the thread
                log.exception("feed %s failed", feed.name)
        with self.round_done:
            self.rounds += 1
            self.round_done.notify_all()

    def wait_rounds(self, n: int, timeout: float = 30.0) -> bool:
        deadline = _time.monotonic() + timeout
        with self.round_done:
            while self.rounds < n:
                left = deadline - _time.monotonic()
                if left <= 0:
                    return False
                self.round_done.wait(left)
        return True

    def wake(self) -> None:
        self._wake.set()

    def _run(self) -> None:
        try:
            self.load_cache()
        except Exception:
            log.exception("loading the cached feeds failed")
        while not self._stop.is_set():
            self.refresh_all()
            self._wake.wait(self.settings.refresh_min * 60)
            self._wake.clear()

    def start(self) -> FeedFetcher:
        if self.settings.feeds:
            self._thread = threading.Thread(target=self._run, name="vuoro-feeds", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread:
            self._thread.join(self.settings.timeout_s + 5)
        if self._session is not None:  # never made when no feed was fetched: nothing to close
            self._session.close()


# -- the writer thread's programme ------------------------------------------------------------


@dataclass(frozen=True)
class LocalEventRow:
    site: str
    event: Event
    created_at: datetime


@dataclass(frozen=True)
class SignupRow:
    id: str
    site: str
    event_id: str
    code: str
    seat: int | None
    waiting_place: int | None
    language: str
    idem_key: str | None
    created_at: datetime


def _ts(value: datetime) -> str:
    return value.astimezone(UTC).isoformat()


def write_local_event(db: sqlite3.Connection, record: LocalEventRow) -> None:
    e = record.event
    db.execute('INSERT INTO events_local (id, site, title, start, "end", room, state, seats, waiting_list, '
               "description, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET "
               'title = excluded.title, start = excluded.start, "end" = excluded."end", room = excluded.room, '
               "state = excluded.state, seats = excluded.seats, waiting_list = excluded.waiting_list, "
               "description = excluded.description",
               (e.id, record.site, e.title, _ts(e.start), _ts(e.end), e.room, e.state, e.seats, e.waiting_list,
                e.description, _ts(record.created_at)))


def write_signup(db: sqlite3.Connection, record: SignupRow) -> None:
    db.execute("INSERT INTO event_signups (id, site, event_id, code, seat, waiting_place, language, idem_key, "
               "created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
               (record.id, record.site, record.event_id, record.code, record.seat, record.waiting_place,
                record.language, record.idem_key, _ts(record.created_at)))


@dataclass
class Signups:
    seats: set[int] = field(default_factory=set)
    waiting: set[int] = field(default_factory=set)


class Programme:
    """Feed events, staff events and sign-up counts, owned by the writer thread."""

    def __init__(self, config: SiteConfig, settings: EventSettings, db: sqlite3.Connection,
                 code_taken: Callable[[str], bool] | None = None):
        self.config = config
        self.settings = settings
        self.site = config.site_id
        self.tz = config.timezone
        self.db = db
        self.code_taken = code_taken
        self.feeds: dict[str, list[Event]] = {}
        self.local: dict[str, Event] = {}
        self.signups: dict[str, Signups] = {}
        self.by_idem: dict[str, dict[str, Any]] = {}
        self.issued_codes: set[str] = set()
        self.engine: QueueEngine | None = None
        self.version = 0
        self._cache: tuple[Any, dict[str, Any]] | None = None

    def sync(self, engine: QueueEngine) -> None:
        if engine is not self.engine:
            self.load()
            self.engine = engine

    def load(self) -> None:
        self.local.clear()
        self.signups.clear()
        self.by_idem.clear()
        for row in self.db.execute('SELECT id, title, start, "end", room, state, seats, waiting_list, description '
                                   "FROM events_local WHERE site = ?", (self.site,)):
            eid, title, start, end, room, state, seats, waiting, description = row
            self.local[eid] = Event(eid, "staff", title, datetime.fromisoformat(start).astimezone(self.tz),
                                    datetime.fromisoformat(end).astimezone(self.tz), room, state, False, seats,
                                    waiting, None, description)
        for event_id, seat, place in self.db.execute(
                "SELECT event_id, seat, waiting_place FROM event_signups WHERE site = ?", (self.site,)):
            entry = self.signups.setdefault(event_id, Signups())
            if seat is not None:
                entry.seats.add(seat)
            else:
                entry.waiting.add(place)
        self.version += 1

    def set_feed(self, name: str, events: list[Event]) -> None:
        self.feeds[name] = events
        self.version += 1

    def all_events(self) -> list[Event]:
        items = [e for events in self.feeds.values() for e in events] + list(self.local.values())
        items.sort(key=lambda e: (e.start, e.title))
        return items

    def find(self, event_id: str) -> Event | None:
        if event_id in self.local:
            return self.local[event_id]
        for events in self.feeds.values():
            for event in events:
                if event.id == event_id:
                    return event
        return None

    def event_json(self, event: Event, *, detail: bool = False) -> dict[str, Any]:
        taken = self.signups.get(event.id, Signups())
        state = event.state
        seats_left = None
        if event.seats is not None:
            seats_left = max(0, event.seats - len(taken.seats))
            if state == SCHEDULED and seats_left == 0:
                state = SOLD_OUT
        body: dict[str, Any] = {"id": event.id, "title": event.title,
                                "start": event.start.astimezone(self.tz).isoformat(timespec="seconds"),
                                "end": event.end.astimezone(self.tz).isoformat(timespec="seconds"),
                                "room": event.room, "state": state, "seats_left": seats_left}
        if detail:
            waiting_left = max(0, event.waiting_list - len(taken.waiting)) if event.seats is not None else None
            body.update({"all_day": event.all_day, "source": event.source, "url": event.url, "seats": event.seats,
                         "waiting_list_left": waiting_left,
                         "signup": event.seats is not None and state != CANCELLED and (
                             bool(seats_left) or bool(waiting_left))})
        return body

    def between(self, start: datetime, end: datetime) -> list[Event]:
        return [e for e in self.all_events() if e.end > start and e.start < end
                or (e.start == e.end and start <= e.start < end)]

    def listing(self, engine: QueueEngine, now: datetime, days: int) -> dict[str, Any]:
        self.sync(engine)
        today = now.astimezone(self.tz).date()
        start = datetime.combine(today, time.min, self.tz)
        end = datetime.combine(today + timedelta(days=days), time.min, self.tz)
        events = [e for e in self.between(start, end) if e.end >= now or e.all_day]
        return {"day": today.isoformat(), "days": days,
                "events": [self.event_json(e, detail=True) for e in events]}

    def today(self, engine: QueueEngine, now: datetime) -> dict[str, Any]:
        """The retained ``events/today`` payload: today's events and the next few (cached per version and day)."""
        self.sync(engine)
        today = now.astimezone(self.tz).date()
        key = (self.version, today)
        if self._cache and self._cache[0] == key:
            return self._cache[1]
        start = datetime.combine(today, time.min, self.tz)
        tomorrow = datetime.combine(today + timedelta(days=1), time.min, self.tz)
        todays = self.between(start, tomorrow)
        later = [e for e in self.between(tomorrow, tomorrow + timedelta(days=7)) if e.start >= tomorrow]
        payload = {"day": today.isoformat(),
                   "events": [self.event_json(e) for e in todays + later[: self.settings.upcoming]]}
        self._cache = (key, payload)
        return payload

    # -- commands ----------------------------------------------------------------------------------

    def add(self, engine: QueueEngine, now: datetime, event: Event) -> tuple[Outcome, dict[str, Any]]:
        self.sync(engine)
        self.local[event.id] = event
        self.version += 1
        return (Outcome(records=[LocalEventRow(self.site, replace(event), now)]),
                self.event_json(event, detail=True))

    def cancel(self, engine: QueueEngine, now: datetime, event_id: str) -> tuple[Outcome, dict[str, Any]]:
        from server.bookings.book import Refused

        self.sync(engine)
        event = self.local.get(event_id)
        if event is None:
            other = self.find(event_id)
            raise Refused(409 if other else 404, "not_local" if other else "unknown_event",
                          "This event comes from a feed: cancel it there." if other else "There is no such event.",
                          field="id")
        event.state = CANCELLED
        self.version += 1
        return Outcome(records=[LocalEventRow(self.site, replace(event), now)]), self.event_json(event, detail=True)

    def _code_taken(self, code: str) -> bool:
        if code in self.issued_codes:
            return True
        if self.code_taken is not None and self.code_taken(code):
            return True
        return bool(self.db.execute("SELECT 1 FROM event_signups WHERE site = ? AND code = ?",
                                    (self.site, code)).fetchone())

    def signup(self, engine: QueueEngine, now: datetime, event_id: str, language: str,
               key: str) -> tuple[Outcome, dict[str, Any]]:
        """First come, first served: a seat, else a place on the waiting list, else full."""
        from server.bookings.book import Refused

        self.sync(engine)
        if key in self.by_idem:
            return Outcome(replay=True), {**self.by_idem[key], "replay": True}
        row = self.db.execute("SELECT event_id, code, seat, waiting_place FROM event_signups WHERE site = ? AND "
                              "idem_key = ?", (self.site, key)).fetchone()
        if row is not None:
            event = self.find(row[0])
            answer = {"code": row[1], "seat": row[2], "waiting_place": row[3],
                      "event": self.event_json(event) if event else None}
            self.by_idem[key] = answer
            return Outcome(replay=True), {**answer, "replay": True}
        event = self.find(event_id)
        if event is None:
            raise Refused(404, "unknown_event", "There is no such event.", field="id")
        if event.state == CANCELLED:
            raise Refused(409, "cancelled", "This event is cancelled.")
        if event.seats is None:
            raise Refused(409, "no_signup", "This event needs no sign-up here" + (
                f"; tickets: {event.url}" if event.url else "") + ".", url=event.url)
        if now >= event.start:
            raise Refused(409, "started", "This event has already begun.")
        taken = self.signups.setdefault(event.id, Signups())
        seat = place = None
        if len(taken.seats) < event.seats:
            seat = next(n for n in range(1, event.seats + 1) if n not in taken.seats)
            taken.seats.add(seat)
        elif len(taken.waiting) < event.waiting_list:
            place = max(taken.waiting, default=0) + 1
            taken.waiting.add(place)
        else:
            raise Refused(409, "full", "This event is full, and so is its waiting list.",
                          event=self.event_json(event))
        code = codes.new_code(self._code_taken)
        self.issued_codes.add(code)
        self.version += 1
        answer = {"code": code, "seat": seat, "waiting_place": place, "event": self.event_json(event)}
        self.by_idem[key] = answer
        record = SignupRow(uuid.uuid4().hex, self.site, event.id, code, seat, place, language, key, now)
        return Outcome(records=[record]), {**answer, "replay": False}
