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

One module of ~530 lines: both feed formats and their one fetcher share the problem reporting and the
cache rule (a degraded feed never replaces a good copy).
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time as _time
from collections.abc import Callable
from dataclasses import dataclass, field
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


def _aware(value: datetime | date, tz: ZoneInfo) -> tuple[datetime, bool]:
    """(the instant, in UTC, and whether it was a whole day).

    A local time that does not exist (in the hour the clocks skip in spring) is read with the offset
    before the gap (RFC 5545 §3.3.5): Python's ``fold=0`` does exactly that, and going through UTC
    writes it as the real local time after the gap (02:30 → 03:30+02:00), never as 02:30+01:00.
    """
    if isinstance(value, datetime):
        return (value.replace(tzinfo=tz) if value.tzinfo is None else value).astimezone(UTC), False
    return datetime.combine(value, time.min, tz).astimezone(UTC), True


def _wall(value: datetime | date) -> datetime:
    """The local wall-clock time as written in the feed (no zone): for nominal lengths."""
    return value.replace(tzinfo=None) if isinstance(value, datetime) else datetime.combine(value, time.min)


# Why an event could not be read, by code: the English words (the staff page has them in its languages,
# server/staff/strings.py, and fills in {value}).
PROBLEMS = {
    "bad_start": "Its start {value} is not a real date or time.",
    "bad_end": "Its end {value} is not a real date or time.",
    "bad_time": "Its {value} cannot be read.",
    "no_start": "It has no start.",
    "no_date": "It has no title or no date and time.",
}


@dataclass(frozen=True)
class FeedProblem:
    """An event of a feed that could not be read: which, and why (a code of PROBLEMS, and its value)."""

    event: str  # its title, or its UID when it has none
    code: str
    value: str = ""
    uid: str = ""

    @property
    def reason(self) -> str:
        return PROBLEMS[self.code].format(value=self.value)

    def json(self) -> dict[str, str]:
        return {"event": self.event, "reason": self.reason, "code": self.code, "value": self.value}


# The properties that say when an event is; one that cannot be read drops the event.
_TIME_PROPERTIES = ("DTSTART", "DTEND", "DURATION", "RRULE", "RDATE", "EXDATE", "RECURRENCE-ID")


def _unreadable(component: Any) -> tuple[str, str] | None:
    """(code, value) when an event's time cannot be read (icalendar keeps a bad value as vBroken and lists it)."""
    for name, _message in getattr(component, "errors", None) or []:
        if name in _TIME_PROPERTIES:
            value = component.get(name)
            raw = value.to_ical() if hasattr(value, "to_ical") else value or ""
            raw = raw.decode(errors="replace") if isinstance(raw, bytes) else str(raw)
            code = {"DTSTART": "bad_start", "DTEND": "bad_end"}.get(name, "bad_time")
            return code, raw if code != "bad_time" else f"{name} {raw}".strip()
    if component.get("DTSTART") is None:
        return "no_start", ""
    return None


def _event_adapter() -> Any:
    """recurring-ical-events' event adapter, but an occurrence keeps its DURATION.

    The library writes every occurrence with a DTEND of start + DURATION on the wall clock; RFC 5545
    §3.3.6 says a DURATION in hours and minutes is exact time, so across the night the clocks change the
    wall-clock end is an hour off. With DURATION kept, parse_ics computes the exact end itself.
    """
    from recurring_ical_events import EventAdapter

    class DurationKeepingEventAdapter(EventAdapter):  # type: ignore[misc]
        def as_component(self, start: Any = None, stop: Any = None, keep_recurrence_attributes: bool = True) -> Any:
            copied = super().as_component(start, stop, keep_recurrence_attributes)
            duration = self._component.get("DURATION")
            if duration is not None and self._component.get("DTEND") is None:
                copied.pop("DTEND", None)
                copied["DURATION"] = duration
            return copied

    return DurationKeepingEventAdapter


def parse_ics(text: str | bytes, tz: ZoneInfo, start: datetime, end: datetime, source: str,
              room: str | None = None, problems: list[FeedProblem] | None = None) -> list[Event]:
    """Every occurrence between ``start`` and ``end`` of an iCalendar feed. Raises FeedError on a broken feed.

    An event whose dates cannot be read (31 November) is left out and described in ``problems``; the
    others are read as usual.
    """
    import recurring_ical_events
    from icalendar import Calendar
    from recurring_ical_events import ComponentsWithName

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
    found = problems if problems is not None else []
    for component in list(calendar.subcomponents):
        if component.name != "VEVENT":
            continue
        why = _unreadable(component)
        if why:
            uid = str(component.get("UID", ""))
            found.append(FeedProblem(str(component.get("SUMMARY", "")).strip() or uid or "—", *why, uid=uid))
            calendar.subcomponents.remove(component)
    try:
        occurrences = recurring_ical_events.of(
            calendar, skip_bad_series=True, components=[ComponentsWithName("VEVENT", _event_adapter())],
        ).between(start, end)
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
            # RFC 5545 §3.3.6: days (and weeks) are nominal, on the wall clock; hours and minutes are exact
            # (4 h from 23:00 the night the clocks go forward ends at 04:00, not 03:00)
            exact = timedelta(seconds=length.seconds, microseconds=length.microseconds)
            ends = (begins.astimezone(tz) + timedelta(days=length.days)).astimezone(UTC) + exact
        else:
            ends = begins + (timedelta(days=1) if all_day else timedelta(0))
        if ends < begins:
            # A start in the spring-forward gap moves an hour later (RFC 5545 §3.3.5) and can pass its own end
            # (02:30–03:15 is 03:30–03:15): keep the length the feed wrote on the wall clock instead.
            ends = begins + max(timedelta(0), _wall(dtend.dt) - _wall(dtstart.dt) if dtend is not None
                                else timedelta(0))
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
            tentative=status == "TENTATIVE",
            uid=uid,
        ))
    events.sort(key=lambda e: (e.start, e.title))
    return events


def parse_dpl(text: str | bytes, tz: ZoneInfo, start: datetime, end: datetime, source: str,
              room: str | None = None, problems: list[FeedProblem] | None = None) -> list[Event]:
    """Events of the DPL CMS events API (a JSON list). Raises FeedError when it is not such a list.

    An event without a title or a readable date_time is left out and described in ``problems``."""
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
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            skipped += 1
            if problems is not None:
                known = isinstance(item, dict)
                name = (item.get("title") or item.get("uuid")) if known else None
                why = ("bad_start", str((item.get("date_time") or {}).get("start", ""))) \
                    if isinstance(exc, ValueError) and known and isinstance(item.get("date_time"), dict) \
                    else ("no_date", "")
                problems.append(FeedProblem(str(name or "—"), *why, uid=str(item.get("uuid") or "") if known else ""))
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
            uid=str(item.get("uuid") or ""),
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
    problems: list[FeedProblem] = field(default_factory=list)  # events of the last read that could not be read

    def json(self) -> dict[str, Any]:
        return {**self.__dict__, "problems": [p.json() for p in self.problems]}


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

    def _parse(self, feed: Feed, body: bytes, problems: list[FeedProblem] | None = None) -> list[Event]:
        start, end = self.window()
        return PARSERS[feed.kind](body, self.tz, start, end, feed.name, feed.room, problems=problems)

    def _last_good(self, feed: Feed, problems: list[FeedProblem]) -> list[Event]:
        """The events the cached copy had for the UIDs the new feed could not read."""
        body_path, _ = self._paths(feed)
        uids = {p.uid for p in problems if p.uid}
        if not uids or not body_path.exists():
            return []
        try:
            return [e for e in self._parse(feed, body_path.read_bytes(), []) if e.uid in uids]
        except FeedError:
            return []

    @staticmethod
    def _degraded(status: FeedStatus, problems: list[FeedProblem], kept: int, *, good_copy: bool = True) -> None:
        n = len(problems)
        status.problems = list(problems)
        status.ok = False
        status.error = (f"{n} event{'s' if n != 1 else ''} in the feed could not be read (listed); the other events "
                        "are shown" + (f", and {kept} as the last good copy had them." if kept else ".")
                        + (" The last good copy of the feed is kept." if good_copy else ""))

    def load_cache(self) -> None:
        """Yesterday's programme at once, before any network."""
        for feed in self.settings.feeds:
            body_path, _ = self._paths(feed)
            if not body_path.exists():
                continue
            problems: list[FeedProblem] = []
            try:
                events = self._parse(feed, body_path.read_bytes(), problems)
            except FeedError as exc:
                log.warning("feed %s: the cached copy does not parse: %s", feed.name, exc)
                continue
            status = self.status[feed.name]
            status.ok, status.events, status.from_cache, status.problems = True, len(events), True, []
            if problems:
                self._degraded(status, problems, 0, good_copy=False)
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
                    events = self._parse(feed, body_path.read_bytes(), [])
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
        problems: list[FeedProblem] = []
        try:
            events = self._parse(feed, body, problems)
        except FeedError as exc:
            self._fail(status, f"{exc} The last good programme is kept.")
            return
        if problems and body_path.exists():
            # Partly unreadable: the readable events are shown, an unreadable one as the last good copy had it,
            # and that copy stays on disk (and its ETag, so the next round fetches and reports it again).
            kept = self._last_good(feed, problems)
            events = sorted(events + kept, key=lambda e: (e.start, e.title))
            log.warning("feed %s: %d events could not be read: %s", feed.name, len(problems),
                        "; ".join(f"{p.event}: {p.reason}" for p in problems))
            self._degraded(status, problems, len(kept))
            status.events, status.from_cache = len(events), False
            status.last_success = now.isoformat(timespec="seconds")
            self._parsed_day[feed.name] = now.astimezone(self.tz).date()
            self.deliver(feed.name, events)
            return
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        tmp = body_path.with_suffix(".tmp")
        tmp.write_bytes(body)
        tmp.replace(body_path)
        meta_path.write_text(json.dumps({"url": feed.url, "etag": response_headers.get("ETag"),
                                         "last_modified": response_headers.get("Last-Modified")}))
        self._parsed_day[feed.name] = now.astimezone(self.tz).date()
        status.ok, status.error, status.events, status.from_cache = True, None, len(events), False
        status.problems = []
        if problems:  # the first copy ever, partly unreadable: better than nothing, and staff are told
            self._degraded(status, problems, 0, good_copy=False)
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
