"""The queue rules: pure Python, no I/O, no clock, no randomness of its own.

The engine holds one site's queue for the current service day in memory and
changes it through commands (issue, call next, recall, no-show, transfer,
finish, pause, resume). Each command returns an ``Outcome``: what changed,
for the store to write in one transaction and for the publisher to announce
afterwards. A command that cannot be done raises ``Refusal`` with a reason a
visitor or staff member can read, and changes nothing.

Time comes in as an argument (an aware datetime), ids and tokens from
injected factories, so every rule is tested without a clock or a database.

One module of ~600 lines on purpose: every queue rule in one file, so a rule
is found in one place and its neighbours are read with it.

Rules (docs/architecture.md explains the why):
- numbers run per service letter per local day, K001 upwards; after K999
  comes K1000, so a busy day never runs into another letter's range;
- "call next" takes, among the counter's services, first a checked-in
  booking that is due, then the walk-in with the longest wait weighted by
  service priority; the counter's order of preference breaks ties;
- calling next finishes the visitor the counter was serving;
- a transfer keeps the visitor's place: the original queue time moves along;
- the business day only moves forward: at the first moment the site's local
  date is later than the current day, leftovers expire, desks close and
  numbering restarts; a clock that steps back (even across midnight) keeps
  the day and its numbering, and a new visitor still queues behind everyone
  already waiting.
"""

from __future__ import annotations

import bisect
import math
import secrets
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from server import forecast
from server.config import SiteConfig
from vuoro import refusals

# How early a checked-in booking counts as due: staff may take it a little early.
BOOKING_DUE_MARGIN = timedelta(minutes=5)
# Service times remembered per service for the wait estimate.
SERVICE_TIME_WINDOW = 20
# Idempotency keys are honoured this long (a kiosk retries within seconds).
IDEMPOTENCY_TTL = timedelta(hours=24)

WAITING, CALLED, DONE, NO_SHOW, EXPIRED, LEFT = "waiting", "called", "done", "no_show", "expired", "left"
TICKET_STATUSES = (WAITING, CALLED, DONE, NO_SHOW, EXPIRED, LEFT)
OPEN, PAUSED, CLOSED = "open", "paused", "closed"


class Refusal(Exception):
    """A command the rules do not allow, with words for a person and a code for a program."""

    def __init__(self, code: str, message: str, **details: Any):
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details


@dataclass
class Ticket:
    id: str
    service: str
    letter: str
    number: int
    day: date
    language: str
    status: str
    queued_at: datetime  # the visitor's place in line; kept on transfer
    issued_at: datetime
    track_token: str
    origin: str = "walk_in"  # walk_in | booking
    due_at: datetime | None = None  # a booking's time
    counter: str | None = None
    called_at: datetime | None = None
    finished_at: datetime | None = None
    recalls: int = 0
    transfers: int = 0
    channel: str = "kiosk"  # how it was taken: kiosk | phone | staff | booking (statistics)

    @property
    def label(self) -> str:
        return f"{self.letter}{self.number:03d}"


@dataclass
class CounterState:
    id: str
    status: str = CLOSED
    ticket_id: str | None = None  # the ticket being served


@dataclass(frozen=True)
class Call:
    call_id: str
    ticket_id: str
    ticket: str
    service: str
    counter: str
    at: datetime
    recall: bool = False


@dataclass(frozen=True)
class LogEntry:
    """One line of a ticket's history, kept for statistics."""

    ticket_id: str
    kind: str  # issued | called | recalled | finished | no_show | transferred | expired | left
    at: datetime
    service: str
    counter: str | None = None
    detail: str | None = None


@dataclass
class Outcome:
    """What one command changed. Empty for a replay of an earlier request."""

    created: list[Ticket] = field(default_factory=list)  # new tickets: INSERTed, never upserted
    tickets: list[Ticket] = field(default_factory=list)  # changed tickets
    counters: list[CounterState] = field(default_factory=list)
    calls: list[Call] = field(default_factory=list)
    log: list[LogEntry] = field(default_factory=list)
    idempotency: list[tuple[str, str, datetime, str | None]] = field(default_factory=list)  # key, ticket id, at, digest
    action_keys: list[tuple[str, dict[str, Any], datetime]] = field(default_factory=list)
    records: list[Any] = field(default_factory=list)  # a plugin's rows (bookings, feedback): see store.writers
    day: tuple[date, datetime] | None = None  # a new business day began: (the day, when)
    ticket: Ticket | None = None  # the ticket the command was about
    call: Call | None = None
    replay: bool = False
    result: dict[str, Any] | None = None  # for replayed actions: the first answer

    @property
    def changed(self) -> bool:
        return bool(self.created or self.tickets or self.counters or self.calls or self.idempotency
                    or self.action_keys or self.records or self.day)


@dataclass(frozen=True)
class Snapshot:
    """What the store hands the engine at start: today's tickets and the counters."""

    day: date
    tickets: list[Ticket]
    counters: dict[str, CounterState]
    next_numbers: dict[str, int]  # letter → next number today
    service_times: dict[str, list[float]]  # service → recent durations in seconds
    idempotency: dict[str, tuple[str, datetime, str | None]]  # key → (ticket id, at, the request's digest)
    action_keys: dict[str, dict[str, Any]]
    recent_calls: list[Call]


def _new_id() -> str:
    return uuid.uuid4().hex


def _new_token() -> str:
    return secrets.token_urlsafe(16)


class QueueEngine:
    def __init__(
        self,
        config: SiteConfig,
        snapshot: Snapshot,
        *,
        new_id: Callable[[], str] = _new_id,
        new_token: Callable[[], str] = _new_token,
    ):
        self.config = config
        self.new_id = new_id
        self.new_token = new_token
        self.day = snapshot.day
        self.tickets: dict[str, Ticket] = {}
        self.active: dict[str, Ticket] = {}  # waiting or called, any day not yet expired
        # Waiting tickets per service, kept up to date by _remember, so counts and positions
        # cost the length of one line, not a scan of the whole day.
        self.lines: dict[str, dict[str, Ticket]] = {sid: {} for sid in config.services}
        self._line_order: dict[str, list[tuple[datetime, str]]] = {sid: [] for sid in config.services}
        self._line_of: dict[str, tuple[str, datetime]] = {}
        for ticket in snapshot.tickets:
            self._remember(ticket)
        self.counters = {cid: CounterState(cid) for cid in config.counters}
        self.counters.update({cid: c for cid, c in snapshot.counters.items() if cid in config.counters})
        self.next_numbers = dict(snapshot.next_numbers)
        self.service_times = {
            sid: deque(snapshot.service_times.get(sid, ()), maxlen=SERVICE_TIME_WINDOW) for sid in config.services
        }
        self.idempotency = dict(snapshot.idempotency)
        self.action_keys = dict(snapshot.action_keys)
        self.recent_calls: deque[Call] = deque(snapshot.recent_calls, maxlen=config.recent_calls)
        self.by_token = {t.track_token: t.id for t in self.tickets.values()}
        self._forecast: tuple[tuple[Any, ...], dict[str, forecast.LineForecast]] | None = None

    # -- helpers ------------------------------------------------------------------

    def _remember(self, ticket: Ticket) -> None:
        """Record a ticket's new state in every index. Call after each change to a ticket."""
        self.tickets[ticket.id] = ticket
        if ticket.status in (WAITING, CALLED):
            self.active[ticket.id] = ticket
        else:
            self.active.pop(ticket.id, None)
        previous = self._line_of.pop(ticket.id, None)
        if previous is not None:
            service, queued_at = previous
            self.lines[service].pop(ticket.id, None)
            order = self._line_order[service]
            del order[bisect.bisect_left(order, (queued_at, ticket.id))]
        if ticket.status == WAITING and ticket.service in self.lines:
            self.lines[ticket.service][ticket.id] = ticket
            bisect.insort(self._line_order[ticket.service], (ticket.queued_at, ticket.id))
            self._line_of[ticket.id] = (ticket.service, ticket.queued_at)

    def local(self, now: datetime) -> datetime:
        return now.astimezone(self.config.timezone)

    def _counter(self, counter_id: str) -> CounterState:
        try:
            return self.counters[counter_id]
        except KeyError:
            raise Refusal(refusals.UNKNOWN_COUNTER, f"There is no counter {counter_id!r}.", field="counter") from None

    def _service(self, service_id: str) -> Any:
        try:
            return self.config.services[service_id]
        except KeyError:
            raise Refusal(refusals.UNKNOWN_SERVICE, f"There is no service {service_id!r}.", field="service") from None

    def waiting(self, service_id: str) -> list[Ticket]:
        """A service's waiting tickets by place in line."""
        return sorted(self.lines[service_id].values(), key=lambda t: t.queued_at)

    def waiting_count(self, service_id: str) -> int:
        return len(self.lines[service_id])

    def roll_day(self, now: datetime) -> Outcome:
        """At the site's local midnight: expire yesterday's leftovers and restart numbering.

        Rolls once however many days were missed (a hub off over a weekend). Never back: a clock that
        says an earlier date than the current business day leaves the day, and its numbering, as they are.
        """
        today = self.local(now).date()
        outcome = Outcome()
        if today <= self.day:
            return outcome
        self.day = today
        outcome.day = (today, now)
        self.next_numbers = {}
        for ticket in list(self.active.values()):
            if ticket.day < today:
                ticket.status = EXPIRED
                ticket.finished_at = now
                self._remember(ticket)
                outcome.tickets.append(ticket)
                outcome.log.append(LogEntry(ticket.id, "expired", now, ticket.service, ticket.counter))
        for counter in self.counters.values():
            if counter.ticket_id or counter.status != CLOSED:
                counter.ticket_id = None
                counter.status = CLOSED
                outcome.counters.append(counter)
        cutoff = now - IDEMPOTENCY_TTL
        self.idempotency = {k: v for k, v in self.idempotency.items() if v[1] >= cutoff}
        self.action_keys = {}
        self.by_token = {t.track_token: t.id for t in self.active.values()}
        self.tickets = dict(self.active)
        return outcome

    # -- estimates ------------------------------------------------------------------

    def average_service_seconds(self, service_id: str) -> float:
        times = self.service_times.get(service_id)
        if times:
            return sum(times) / len(times)
        return self.config.services[service_id].typical_service_min * 60

    def counters_open_for(self, service_id: str) -> int:
        return sum(
            1
            for c in self.counters.values()
            if c.status == OPEN and service_id in self.config.counters[c.id].services
        )

    def estimate_minutes(self, service_id: str, people_ahead: int) -> int:
        """Minutes until a visitor with ``people_ahead`` before them in the service's line is called
        (``people_ahead`` = the whole line: someone who takes a ticket now), by ``server/forecast.py``.

        The first version divided people ahead × time by every open desk that could serve the service, so
        a desk shared with a long line counted as free for each of its services, and a visitor first in
        line was told "0 min" while every desk was busy.
        """
        line = self._forecast_now().get(service_id)
        if line is None:
            return 0
        return math.ceil(line.seconds(min(max(0, people_ahead), len(self._line_order[service_id]))) / 60)

    def _forecast_now(self) -> dict[str, forecast.LineForecast]:
        """The forecast of the current state, played once per state (a state's queue states and the ticket
        just issued ask for it together). The key is cheap: the lines' ends, the desks, the service times."""
        key = (tuple((len(o), o[0][1], o[-1][1]) if o else () for o in self._line_order.values()),
               tuple((c.status, c.ticket_id) for c in self.counters.values()),
               tuple((len(t), sum(t)) for t in self.service_times.values()))
        if self._forecast is not None and self._forecast[0] == key:
            return self._forecast[1]
        counters, lines = self.config.counters, self._line_order
        average = {sid: self.average_service_seconds(sid) for sid in lines}
        serving = {cid: t for cid, c in self.counters.items() if c.status == OPEN
                   and (t := self.tickets.get(c.ticket_id or "")) is not None and t.status == CALLED and t.called_at}
        known = [line[-1][0] for line in lines.values() if line] + [t.called_at for t in serving.values()]
        now = max(known).timestamp() if known else 0.0  # as near as the engine knows it: it keeps no clock
        desks: dict[str, tuple[list[str], float]] = {}
        for cid, counter in self.counters.items():
            if counter.status == OPEN:
                current = serving.get(cid)
                left = max(0.0, average[current.service] - (now - current.called_at.timestamp())) \
                    if current is not None and current.called_at is not None else 0.0
                desks[cid] = (list(counters[cid].services), left)
        for sid in lines:  # with no desk open for a service, its first counter is assumed to open for it
            if not any(sid in services for services, _ in desks.values()):
                first = next((cid for cid, c in counters.items() if sid in c.services), None)
                if first is not None:
                    desks[f"{first}\0{sid}"] = ([sid], 0.0)
        result = forecast.play(lines, desks, average,
                               {sid: self.config.services[sid].priority for sid in lines}, now)
        self._forecast = (key, result)
        return result

    def position(self, ticket: Ticket) -> int:
        """How many people are before this ticket in its service's line."""
        if ticket.status != WAITING:
            return 0
        return bisect.bisect_left(self._line_order[ticket.service], (ticket.queued_at, ""))

    # -- opening hours --------------------------------------------------------------

    def is_open(self, service_id: str, now: datetime) -> bool:
        service = self.config.services[service_id]
        return service.hours.is_open(self.local(now))

    # -- commands ---------------------------------------------------------------------

    def issue(self, service_id: str, language: str, now: datetime, *, idempotency_key: str | None = None,
              origin: str = "walk_in", due_at: datetime | None = None, request_digest: str | None = None,
              channel: str | None = None) -> Outcome:
        """Give a visitor a number. A repeated idempotency key returns the first ticket.

        ``request_digest`` stands for what was asked (the API's ``request_digest``): the same key
        with a different request is refused rather than answered with a ticket for something else."""
        if idempotency_key and idempotency_key in self.idempotency:
            ticket_id, _, digest = self.idempotency[idempotency_key]
            if request_digest and digest and digest != request_digest:
                raise Refusal(refusals.IDEMPOTENCY_KEY_REUSED, "This Idempotency-Key was already used for a different "
                              "request. Send a new key with each new request.", field="Idempotency-Key")
            ticket = self.tickets.get(ticket_id)
            if ticket is not None:
                return Outcome(ticket=ticket, replay=True)
        outcome = self.roll_day(now)
        service = self._service(service_id)
        if language not in self.config.languages:
            language = self.config.default_language
        local = self.local(now)
        if origin == "walk_in":
            if service.mode == "booking_only":
                nxt = service.hours.next_open(local) if not service.hours.is_open(local) else None
                raise Refusal(
                    refusals.BOOKING_ONLY,
                    f"{service.name('en')} is by appointment only. Book a time at the kiosk, on the web or by phone.",
                    service=service_id,
                    next_open=nxt.isoformat() if nxt else None,
                )
            if not service.hours.is_open(local):
                opens = service.hours.next_open(local)
                when = opens.strftime("%H:%M") if opens and opens.date() == local.date() else (
                    opens.strftime("%A %H:%M") if opens else None)
                raise Refusal(
                    refusals.CLOSED,
                    f"{service.name('en')} is closed now" + (f"; it opens {when}." if when else "."),
                    service=service_id,
                    opens_at=opens.isoformat() if opens else None,
                )
        number = self.next_numbers.get(service.letter, 1)
        self.next_numbers[service.letter] = number + 1
        line = self._line_order[service_id]
        # After a clock step back, "now" can be earlier than people already waiting: queue behind them.
        queued_at = now if not line or line[-1][0] < now else line[-1][0] + timedelta(microseconds=1)
        ticket = Ticket(
            id=self.new_id(),
            service=service_id,
            letter=service.letter,
            number=number,
            day=self.day,
            language=language,
            status=WAITING,
            queued_at=queued_at,
            issued_at=now,
            track_token=self.new_token(),
            origin=origin,
            due_at=due_at,
            channel=channel or ("booking" if origin == "booking" else "kiosk"),
        )
        self._remember(ticket)
        self.by_token[ticket.track_token] = ticket.id
        outcome.created.append(ticket)
        outcome.log.append(LogEntry(ticket.id, "issued", now, service_id, detail=origin))
        if idempotency_key:
            self.idempotency[idempotency_key] = (ticket.id, now, request_digest)
            outcome.idempotency.append((idempotency_key, ticket.id, now, request_digest))
        outcome.ticket = ticket
        return outcome

    def _pick_next(self, counter_id: str, now: datetime) -> Ticket | None:
        served = self.config.counters[counter_id].services
        candidates = [t for sid in served for t in self.lines[sid].values()]
        if not candidates:
            return None
        due = [t for t in candidates if t.origin == "booking" and t.due_at and t.due_at <= now + BOOKING_DUE_MARGIN]
        if due:
            return min(due, key=lambda t: (t.due_at, t.queued_at))

        def weight(t: Ticket) -> tuple[float, int, datetime]:
            waited = max(0.0, (now - t.queued_at).total_seconds())
            # Negate so that min() picks the longest weighted wait; preference breaks ties.
            return (-(waited + 1.0) * self.config.services[t.service].priority, served.index(t.service), t.queued_at)

        walk_ins = [t for t in candidates if not (t.origin == "booking" and t.due_at and t.due_at > now)]
        return min(walk_ins or candidates, key=weight)

    def _finish_current(self, counter: CounterState, now: datetime, status: str, outcome: Outcome) -> None:
        if not counter.ticket_id:
            return
        ticket = self.tickets.get(counter.ticket_id)
        counter.ticket_id = None
        if ticket is None or ticket.status != CALLED:
            return
        ticket.status = status
        ticket.finished_at = now
        self._remember(ticket)
        if status == DONE and ticket.called_at:
            self.service_times[ticket.service].append((now - ticket.called_at).total_seconds())
        outcome.tickets.append(ticket)
        outcome.log.append(LogEntry(ticket.id, "finished" if status == DONE else status, now, ticket.service,
                                    counter.id))

    def _make_call(self, ticket: Ticket, counter: CounterState, now: datetime, recall: bool) -> Call:
        call = Call(self.new_id(), ticket.id, ticket.label, ticket.service, counter.id, now, recall)
        self.recent_calls.appendleft(call)
        return call

    def call_next(self, counter_id: str, now: datetime) -> Outcome:
        outcome = self.roll_day(now)
        counter = self._counter(counter_id)
        self._finish_current(counter, now, DONE, outcome)
        if counter.status != OPEN:
            counter.status = OPEN  # pressing "next" means someone is at the desk
        outcome.counters.append(counter)
        ticket = self._pick_next(counter_id, now)
        if ticket is None:
            return outcome
        ticket.status = CALLED
        ticket.counter = counter_id
        ticket.called_at = now
        self._remember(ticket)
        counter.ticket_id = ticket.id
        call = self._make_call(ticket, counter, now, recall=False)
        outcome.tickets.append(ticket)
        outcome.calls.append(call)
        outcome.log.append(LogEntry(ticket.id, "called", now, ticket.service, counter_id))
        outcome.ticket, outcome.call = ticket, call
        return outcome

    def _current(self, counter: CounterState, action: str) -> Ticket:
        ticket = self.tickets.get(counter.ticket_id or "")
        if ticket is None or ticket.status != CALLED:
            raise Refusal(refusals.NO_CURRENT_VISITOR, f"No visitor is being served at this counter to {action}.")
        return ticket

    def recall(self, counter_id: str, now: datetime) -> Outcome:
        counter = self._counter(counter_id)
        ticket = self._current(counter, "call again")
        ticket.recalls += 1
        call = self._make_call(ticket, counter, now, recall=True)
        outcome = Outcome(tickets=[ticket], calls=[call], ticket=ticket, call=call)
        outcome.log.append(LogEntry(ticket.id, "recalled", now, ticket.service, counter_id))
        return outcome

    def no_show(self, counter_id: str, now: datetime) -> Outcome:
        return self._end_visit(counter_id, now, NO_SHOW, "mark as not shown up")

    def finish(self, counter_id: str, now: datetime) -> Outcome:
        return self._end_visit(counter_id, now, DONE, "finish")

    def _end_visit(self, counter_id: str, now: datetime, status: str, action: str) -> Outcome:
        counter = self._counter(counter_id)
        outcome = Outcome(ticket=self._current(counter, action))
        self._finish_current(counter, now, status, outcome)
        outcome.counters.append(counter)
        return outcome

    def transfer(self, counter_id: str, service_id: str, now: datetime) -> Outcome:
        """Send the current visitor to another service's line, keeping their place."""
        counter = self._counter(counter_id)
        ticket = self._current(counter, "transfer")
        self._service(service_id)
        if service_id == ticket.service:
            raise Refusal(refusals.SAME_SERVICE, "The visitor is already in that service's line.", field="service")
        previous = ticket.service
        ticket.service = service_id
        ticket.status = WAITING
        ticket.counter = None
        ticket.called_at = None
        ticket.transfers += 1
        self._remember(ticket)
        counter.ticket_id = None
        outcome = Outcome(tickets=[ticket], counters=[counter], ticket=ticket)
        outcome.log.append(LogEntry(ticket.id, "transferred", now, service_id, counter_id, detail=previous))
        return outcome

    def pause(self, counter_id: str, now: datetime) -> Outcome:
        counter = self._counter(counter_id)
        outcome = Outcome()
        self._finish_current(counter, now, DONE, outcome)
        counter.status = PAUSED
        outcome.counters.append(counter)
        return outcome

    def resume(self, counter_id: str, now: datetime) -> Outcome:
        counter = self._counter(counter_id)
        counter.status = OPEN
        return Outcome(counters=[counter])

    def leave(self, token: str, now: datetime) -> Outcome:
        """The visitor gives up their place from the phone page ("I no longer need help").

        Only a waiting ticket can be left: once called, the desk is expecting the visitor and ends the visit
        itself (finish or no-show). Leaving twice changes nothing the second time (a double tap)."""
        ticket = self.ticket_by_token(token)
        if ticket is None:
            raise Refusal(refusals.UNKNOWN_TICKET, "This ticket is not in today's queue.", field="token")
        if ticket.status == LEFT:
            return Outcome(ticket=ticket, replay=True)
        if ticket.status != WAITING:
            raise Refusal(refusals.NOT_WAITING, "This ticket is no longer waiting: "
                          + ("you are being called — please go to the desk." if ticket.status == CALLED
                             else "its visit has ended."), ticket_status=ticket.status)
        ticket.status = LEFT
        ticket.finished_at = now
        self._remember(ticket)
        outcome = Outcome(tickets=[ticket], ticket=ticket)
        outcome.log.append(LogEntry(ticket.id, "left", now, ticket.service))
        return outcome

    def near_turn(self, ticket: Ticket) -> bool:
        """Whether a waiting visitor is close enough to be told to come back (the service's ``near_turn``:
        at most that many people before them; 0 turns the word off)."""
        limit = self.config.services[ticket.service].near_turn if ticket.service in self.config.services else 0
        return ticket.status == WAITING and limit > 0 and self.position(ticket) <= limit

    def act_once(self, key: str, action: Callable[[], Outcome], describe: Callable[[Outcome], dict[str, Any]],
                 now: datetime) -> Outcome:
        """Run a counter action once per key (a button's press id, a page's request id).

        A duplicate delivery gets the first answer back and changes nothing.
        """
        if key in self.action_keys:
            return Outcome(replay=True, result=self.action_keys[key])
        outcome = action()
        result = describe(outcome)
        self.action_keys[key] = result
        outcome.action_keys.append((key, result, now))
        outcome.result = result
        return outcome

    # -- reading --------------------------------------------------------------------

    def ticket_by_token(self, token: str) -> Ticket | None:
        ticket_id = self.by_token.get(token)
        return self.tickets.get(ticket_id) if ticket_id else None
