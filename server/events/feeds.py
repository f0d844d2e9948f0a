"""Events from iCalendar feeds and the DPL CMS events API: parsing, and the thread that fetches them.

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
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time as _time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from server.events.records import CANCELLED, SCHEDULED, SOLD_OUT, Event
from server.events.settings import EventSettings, Feed

log = logging.getLogger("vuoro.events")

DPL_STATES = {"TicketSaleNotOpen": SCHEDULED, "Active": SCHEDULED, "Occurred": SCHEDULED, "SoldOut": SOLD_OUT,
              "Cancelled": CANCELLED}


class FeedError(Exception):
    """A feed that could not be read or parsed, in words for staff."""



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
