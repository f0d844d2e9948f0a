"""The programme: feed events, staff events and sign-ups, owned by the hub's writer thread.

Sign-ups (first come, first served) are for events with seats: staff events
with ``seats``, and feed events carrying ``X-VUORO-SEATS``. DPL events sell
their tickets on the library's web site, so the kiosk only shows their state.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, time, timedelta
from typing import Any

from server import codes
from server.config import SiteConfig
from server.engine import Outcome, QueueEngine
from server.errors import ApiError
from server.events import records
from server.events.records import (
    CANCELLED,
    SCHEDULED,
    SOLD_OUT,
    AttendanceRow,
    Event,
    ForgetSignupNames,
    LocalEventRow,
    Signup,
    SignupCancelRow,
    SignupRow,
)
from server.events.settings import EventSettings
from server.store import SQLiteStore
from vuoro import payloads, refusals

NAMES_KEPT = timedelta(days=1)  # a name written with a sign-up is kept this long after the event ends
UNKNOWN_EVENT_KEPT = timedelta(days=62)  # ... or after the sign-up, when its event left the programme


@dataclass
class Signups:
    """One event's sign-ups as they are now, this batch's changes included (the writer's picture: a cancel and
    its move-up are decided here, so two cancels one after the other never give one seat twice)."""

    seats: set[int] = field(default_factory=set)
    waiting: set[int] = field(default_factory=set)
    people: dict[str, Signup] = field(default_factory=dict)  # sign-up id → the sign-up

    def add(self, signup: Signup) -> None:
        self.people[signup.id] = signup
        if signup.seat is not None:
            self.seats.add(signup.seat)
        else:
            self.waiting.add(signup.waiting_place)  # type: ignore[arg-type]

    def remove(self, signup: Signup) -> None:
        del self.people[signup.id]
        self.seats.discard(signup.seat)  # type: ignore[arg-type]
        self.waiting.discard(signup.waiting_place)  # type: ignore[arg-type]

    def first_waiting(self) -> Signup | None:
        waiting = [p for p in self.people.values() if p.seat is None]
        return min(waiting, key=lambda p: p.waiting_place or 0) if waiting else None


class Programme:
    """Feed events, staff events and sign-up counts, owned by the writer thread."""

    def __init__(self, config: SiteConfig, settings: EventSettings, store: SQLiteStore,
                 code_in_use: Callable[[str], bool] | None = None):
        self.config = config
        self.settings = settings
        self.site = config.site_id
        self.tz = config.timezone
        self.store = store  # read on the writer thread only, like every command here
        # Sign-up codes and booking codes are one code space: is a code anyone's? (default: ours)
        self.code_in_use = code_in_use or self.has_code
        self.feeds: dict[str, list[Event]] = {}
        self.local: dict[str, Event] = {}
        self.signups: dict[str, Signups] = {}
        self.by_idem: dict[str, dict[str, Any]] = {}
        self.issued_codes: set[str] = set()
        self.by_code: dict[str, str] = {}  # sign-up code → its event's id
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
        self.by_code.clear()
        self.local.update((event.id, event) for event in records.local_events(self.store, self.site, self.tz))
        for signup in records.signups_of_site(self.store, self.site):
            self.signups.setdefault(signup.event_id, Signups()).add(signup)
            self.by_code[signup.code] = signup.event_id
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

    def event_json(self, event: Event, *, detail: bool = False, signup: bool = False) -> dict[str, Any]:
        """An event as screens and kiosks read it; ``signup`` adds whether and how it takes sign-ups (the
        retained ``events/today`` carries that, so an open kiosk list follows it), ``detail`` everything."""
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
                                "room": event.room, "state": state, "seats_left": seats_left,
                                "tentative": event.tentative}
        if detail or signup:
            waiting_left = max(0, event.waiting_list - len(taken.waiting)) if event.seats is not None else None
            body.update({"waiting_list_left": waiting_left,
                         "signup": event.seats is not None and state != CANCELLED and (
                             bool(seats_left) or bool(waiting_left))})
        if detail:
            body.update({"all_day": event.all_day, "source": event.source, "url": event.url, "seats": event.seats})
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
        payload = payloads.EventsToday(day=today.isoformat(), events=[
            payloads.Event(**self.event_json(e, signup=True)) for e in todays + later[: self.settings.upcoming]
        ]).to_json()
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
        self.sync(engine)
        event = self.local.get(event_id)
        if event is None:
            other = self.find(event_id)
            raise ApiError(409 if other else 404, refusals.NOT_LOCAL if other else "unknown_event",
                           "This event comes from a feed: cancel it there." if other else "There is no such event.",
                           field="id")
        event.state = CANCELLED
        self.version += 1
        return Outcome(records=[LocalEventRow(self.site, replace(event), now)]), self.event_json(event, detail=True)

    def has_code(self, code: str) -> bool:
        """Whether a sign-up of this site has the code (or is about to: made in this batch)."""
        return code in self.issued_codes or records.code_in_use(self.store, self.site, code)

    def signup(self, engine: QueueEngine, now: datetime, event_id: str, language: str,
               key: str, name: str | None = None) -> tuple[Outcome, dict[str, Any]]:
        """First come, first served: a seat, else a place on the waiting list, else full. ``name``: staff only
        (a caller signed up at the desk)."""
        self.sync(engine)
        if key in self.by_idem:
            return Outcome(replay=True), {**self.by_idem[key], "replay": True}
        row = records.signup_by_key(self.store, self.site, key)
        if row is not None:
            event = self.find(row[0])
            answer = {"code": row[1], "code_display": codes.pretty(row[1]), "seat": row[2], "waiting_place": row[3],
                      "event": self.event_json(event) if event else None}
            self.by_idem[key] = answer
            return Outcome(replay=True), {**answer, "replay": True}
        event = self.find(event_id)
        if event is None:
            raise ApiError(404, refusals.UNKNOWN_EVENT, "There is no such event.", field="id")
        if event.state == CANCELLED:
            raise ApiError(409, refusals.CANCELLED, "This event is cancelled.")
        if event.seats is None:
            raise ApiError(409, refusals.NO_SIGNUP, "This event needs no sign-up here" + (
                f"; tickets: {event.url}" if event.url else "") + ".", url=event.url)
        if now >= event.start:
            raise ApiError(409, refusals.STARTED, "This event has already begun.")
        taken = self.signups.setdefault(event.id, Signups())
        seat = place = None
        if len(taken.seats) < event.seats and not taken.waiting:  # never ahead of someone waiting
            seat = next(n for n in range(1, event.seats + 1) if n not in taken.seats)
        elif len(taken.waiting) < event.waiting_list:
            place = max(taken.waiting, default=0) + 1
        else:
            raise ApiError(409, refusals.FULL, "This event is full, and so is its waiting list.",
                           event=self.event_json(event))
        code = codes.new_code(self.code_in_use)
        self.issued_codes.add(code)
        name = (" ".join(name.split()) or None) if name else None  # spaces tidied; blank is no name
        record = SignupRow(uuid.uuid4().hex, self.site, event.id, code, seat, place, language, key, now, name)
        taken.add(Signup(record.id, event.id, code, seat, place, None, name, now))
        self.by_code[code] = event.id
        self.version += 1
        answer = {"code": code, "code_display": codes.pretty(code), "seat": seat, "waiting_place": place,
                  "event": self.event_json(event)}
        self.by_idem[key] = answer
        return Outcome(records=[record]), {**answer, "replay": False}

    def cancel_signup(self, engine: QueueEngine, now: datetime, event_id: str,
                      code: str) -> tuple[Outcome, dict[str, Any]]:
        """Staff give up a sign-up. A seat given up goes to the first on the waiting list, in the same command
        and so the same transaction: the writer runs one command after the other on this picture, so two
        cancels at once seat two different visitors and lose no seat."""
        self.sync(engine)
        entry = self.signups.get(event_id)
        signup = next((p for p in entry.people.values() if p.code == code), None) if entry else None
        if entry is None or signup is None:
            raise ApiError(404, refusals.UNKNOWN_SIGNUP, "This event has no sign-up with this code (it may have been "
                           "cancelled already).", field="code")
        entry.remove(signup)
        self.by_code.pop(signup.code, None)
        event = self.find(event_id)
        moved = None
        if signup.seat is not None and (event is None or event.state != CANCELLED):
            first = entry.first_waiting()
            if first is not None:
                entry.remove(first)
                moved = replace(first, seat=signup.seat, waiting_place=None)
                entry.add(moved)
        self.version += 1  # events/today's seat and waiting-list counts follow
        answer = {"cancelled": self.signup_json(signup), "moved_up": self.signup_json(moved) if moved else None,
                  "event": self.event_json(event, detail=True) if event else None}
        return (Outcome(records=[SignupCancelRow(signup.id, moved.id if moved else None, signup.seat, now)]),
                answer)

    def forget_names(self, engine: QueueEngine, now: datetime) -> Outcome:
        """A name staff wrote with a sign-up is needed until the event: it is forgotten a day after the event
        ended (``NAMES_KEPT``), or ``UNKNOWN_EVENT_KEPT`` after the sign-up for an event no longer in any programme."""
        self.sync(engine)
        ids: list[str] = []
        for event_id, entry in self.signups.items():
            named = [p for p in entry.people.values() if p.name]
            if not named:
                continue
            event = self.find(event_id)
            for person in named:
                over = event.end + NAMES_KEPT if event is not None else (person.created_at or now) + UNKNOWN_EVENT_KEPT
                if now >= over:
                    entry.add(replace(person, name=None))
                    ids.append(person.id)
        return Outcome(records=[ForgetSignupNames(tuple(ids))]) if ids else Outcome()

    def signups_of(self, engine: QueueEngine, event_id: str) -> dict[str, Any]:
        """An event's sign-ups for staff: seated first (by seat), then the waiting list in its order."""
        self.sync(engine)
        event = self.find(event_id)
        entry = self.signups.get(event_id, Signups())
        if event is None and not entry.people:
            raise ApiError(404, refusals.UNKNOWN_EVENT, "There is no such event.", field="id")
        seated = sorted((p for p in entry.people.values() if p.seat is not None), key=lambda p: p.seat or 0)
        waiting = sorted((p for p in entry.people.values() if p.seat is None), key=lambda p: p.waiting_place or 0)
        rows = [{**self.signup_json(p), "name": p.name, "position": None} for p in seated]
        rows += [{**self.signup_json(p), "name": p.name, "position": n} for n, p in enumerate(waiting, start=1)]
        for row, p in zip(rows, seated + waiting, strict=True):
            row["attended_at"] = p.attended_at.astimezone(self.tz).isoformat(timespec="seconds") \
                if p.attended_at else None
            row["created_at"] = p.created_at.astimezone(self.tz).isoformat(timespec="seconds") \
                if p.created_at else None
        return {"event": self.event_json(event, detail=True) if event else None, "signups": rows}

    # -- attendance ------------------------------------------------------------------------------

    def check_in(self, engine: QueueEngine, now: datetime, code: str) -> tuple[Outcome, dict[str, Any]] | None:
        """A visitor with a sign-up code at the kiosk: checked in for today's event (attendance recorded), or
        told why not. None when no sign-up has the code (it may be a booking's).

        The sign-up is read as it is now, not as its receipt was printed: a visitor who moved up from the
        waiting list checks in with a seat.
        """
        self.sync(engine)
        event_id = self.by_code.get(code)
        entry = self.signups.get(event_id or "")
        signup = next((p for p in entry.people.values() if p.code == code), None) if entry else None
        if signup is None:
            return None
        event = self.find(signup.event_id)
        if event is None:
            raise ApiError(409, refusals.CANCELLED, "This event is no longer in the programme. Please ask at the desk.",
                           signup=self.signup_json(signup))
        about = {"event": self.event_json(event), "signup": self.signup_json(signup)}
        if event.state == CANCELLED:
            raise ApiError(409, refusals.CANCELLED, "This event has been cancelled.", **about)
        day = event.start.astimezone(self.tz).date()
        if day != now.astimezone(self.tz).date():
            raise ApiError(409, refusals.OTHER_DAY, f"This sign-up is for an event on {day.isoformat()}.",
                           date=day.isoformat(), **about)
        if now >= event.end:
            raise ApiError(409, refusals.TOO_LATE, "This event is over.", **about)
        if signup.seat is None:
            raise ApiError(409, refusals.WAITING_LIST, "This sign-up is on the waiting list: there is no seat for "
                           "it yet. Please ask at the desk.", waiting_place=signup.waiting_place, **about)
        if signup.attended_at is not None:
            return Outcome(replay=True), {**about, "replay": True, "already": True, "checked_in_at":
                                          signup.attended_at.astimezone(self.tz).isoformat(timespec="seconds")}
        entry.add(replace(signup, attended_at=now))  # type: ignore[union-attr]
        return (Outcome(records=[AttendanceRow(signup.id, now)]),
                {**about, "replay": False, "already": False,
                 "checked_in_at": now.astimezone(self.tz).isoformat(timespec="seconds")})

    @staticmethod
    def signup_json(signup: Signup) -> dict[str, Any]:
        """A sign-up as the visitor may see it: its code, and its seat or place on the waiting list now."""
        return {"code": signup.code, "code_display": codes.pretty(signup.code), "seat": signup.seat,
                "waiting_place": signup.waiting_place, "status": "seated" if signup.seat is not None else "waiting"}
