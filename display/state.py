"""What a signage screen shows, folded from the hub's MQTT messages.

Pure Python (no Kivy, no paho): the MQTT client feeds every message into
``SignageState.apply`` and the screen draws from the result. Keeping the fold
apart from the UI is what lets the tests prove "cold start from retained
state", "a malformed payload is dropped" and "a recall is announced again"
without a window.

A payload is checked before anything is changed, so a bad message never
leaves the state half-updated. Bad messages are logged and counted, never
raised: a screen in a hall has no one to read a traceback.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from vuoro import payloads
from vuoro.payloads import parse_time
from vuoro.protocol import (
    HUB_STATUS_SUFFIX,
    PayloadError,
    Topics,
    counter_state_suffix,
    decode,
    queue_state_suffix,
)

log = logging.getLogger(__name__)
# How many call ids we remember to recognise a duplicate QoS 1 delivery. A
# redelivery comes within seconds, so a few hundred is plenty.
SEEN_CALLS = 512
# A call older than this (on the hub's clock) is shown but not spoken: the visitor has already walked up.
ANNOUNCE_MAX_AGE_S = 5.0


class HubTime:
    """The hub's clock as this screen last saw it, carried forward by the screen's own monotonic clock.

    Every hub message carries an ``at`` from the hub's clock. A message can arrive late but never early,
    so ``at`` plus the time since it arrived is a lower bound of the hub's time now, and the largest such
    bound is the best one. A call's age is judged against that: no agreement between the screen's wall
    clock and the hub's is needed (a Pi without an RTC may boot hours off), and a call that sat in a
    queue during an outage looks exactly as old as it is. Bounds are forgotten after ``memory`` seconds,
    so a hub whose clock was stepped back is believed again after that long.
    """

    def __init__(self, memory: float = 600.0):
        self.memory = memory
        # (monotonic time received, hub time − monotonic time), offsets strictly falling: a sliding maximum
        self._bounds: deque[tuple[float, float]] = deque()

    def saw(self, at: datetime, now: float) -> None:
        offset = at.timestamp() - now
        while self._bounds and self._bounds[-1][1] <= offset:
            self._bounds.pop()
        self._bounds.append((now, offset))

    def now(self, now: float) -> float | None:
        """The hub's time now (Unix seconds), or None before any message."""
        while self._bounds and self._bounds[0][0] < now - self.memory:
            self._bounds.popleft()
        return self._bounds[0][1] + now if self._bounds else None


@dataclass(frozen=True)
class Update:
    """What one message changed. ``announce`` is set for a new call event."""

    kind: str  # site, queue, counter, recent, call, events, message, hub
    call: dict[str, Any] | None = None
    announce: bool = False


def _need(body: dict[str, Any], name: str, kind: type | tuple[type, ...], *, optional: bool = False) -> Any:
    value = body.get(name)
    if value is None and optional:
        return None
    # bool is an int in Python; a count of `true` people waiting is a bug upstream.
    if value is None or (isinstance(value, bool) and kind is not bool) or not isinstance(value, kind):
        raise PayloadError(f"field {name!r} is missing or has the wrong type")
    return value


@dataclass
class SignageState:
    """Everything one screen shows, for the services and counters it is set up for.

    ``services``/``counters`` empty means "all". Times given as ``now`` are
    ``time.monotonic()`` values, passed in so tests need not sleep.
    """

    topics: Topics
    services: tuple[str, ...] = ()
    counters: tuple[str, ...] = ()
    recent_limit: int = 6
    highlight_seconds: float = 8.0
    announce_max_age: float = ANNOUNCE_MAX_AGE_S
    door: bool = False  # a screen by the entrance: it shows the QR for a ticket on the phone (phone/door)

    site: dict[str, Any] | None = None
    queues: dict[str, dict[str, Any]] = field(default_factory=dict)
    counter_states: dict[str, dict[str, Any]] = field(default_factory=dict)
    recent: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    message: str = ""
    phone_door: dict[str, Any] | None = None  # the hub's door code payload (only kept by a door screen)
    hub_online: bool | None = None  # None: the hub has not said
    link_online: bool = False  # our own connection to the broker
    highlight_call_id: str | None = None
    highlight_until: float = 0.0
    rejected: int = 0
    late_calls: int = 0  # shown, not spoken: older than announce_max_age when they arrived
    hub_time: HubTime = field(default_factory=HubTime)
    _seen: OrderedDict[str, None] = field(default_factory=OrderedDict)
    _board_states: dict[str, Any] = field(default_factory=dict)  # the states of the last board, as folded

    # -- filters -------------------------------------------------------------
    def wants_service(self, service: str) -> bool:
        return not self.services or service in self.services

    def wants_call(self, call: dict[str, Any]) -> bool:
        return self.wants_service(call["service"]) and (not self.counters or call["counter"] in self.counters)

    # -- the fold ------------------------------------------------------------
    def apply(self, topic: str, raw: bytes | str, now: float | None = None) -> Update | None:
        """Fold one MQTT message in. Returns what changed, or None when ignored or dropped."""
        now = time.monotonic() if now is None else now
        prefix = self.topics.base + "/"
        if not topic.startswith(prefix):
            return None
        suffix = topic[len(prefix) :]
        parts = suffix.split("/")
        # Topics a screen does not draw (button presses, device presence) are
        # skipped before parsing: they are not ours to judge.
        if parts[0] in ("buttons", "devices"):
            return None
        try:
            if not raw:
                # An empty retained message clears the topic (MQTT's way to delete).
                return self._clear(parts)
            return self._apply(parts, decode(raw), now)
        except PayloadError as exc:
            self.rejected += 1
            log.warning("dropped a malformed message on %s: %s", topic, exc)
            return None

    def apply_payload(self, suffix: str, payload: dict[str, Any], now: float | None = None) -> Update | None:
        """The same fold for an already-parsed payload (the SSE stream's shape)."""
        return self.apply(f"{self.topics.base}/{suffix}", json.dumps(payload), now)

    def _clear(self, parts: list[str]) -> Update | None:
        if len(parts) == 3 and parts[0] == "queue":
            return Update("queue") if self.queues.pop(parts[1], None) else None
        if parts == ["message"]:
            self.message = ""
            return Update("message")
        return None

    def _apply(self, parts: list[str], body: dict[str, Any], now: float) -> Update | None:
        at = body.get("at")
        if isinstance(at, str):
            # A state with a strange time is still a state; it just tells us nothing of the hub's clock.
            with contextlib.suppress(PayloadError):
                self.hub_time.saw(parse_time(at), now)
        suffix = "/".join(parts)
        if suffix == HUB_STATUS_SUFFIX:  # only "online" matters here (the hub's presence, vuoro/protocol.py)
            self.hub_online = bool(_need(body, "online", bool))
            return Update("hub")
        # The contract checks the payload (and routes it); the state keeps the body as the hub sent it,
        # so what a screen draws is what the hub said.
        match payloads.read(suffix, body):
            case payloads.Call():
                return self._call_event(body, now)
            case payloads.RecentCalls():
                self.recent = [c for c in body["calls"] if self.wants_call(c)][: self.recent_limit]
                return Update("recent")
            case payloads.QueueState(service=service):
                if not self.wants_service(service):
                    return None
                self.queues[service] = body
                return Update("queue")
            case payloads.CounterState(counter=counter):
                self.counter_states[counter] = body
                return Update("counter")
            case payloads.SiteInfo():
                self.site = body
                return Update("site")
            case payloads.EventsToday():
                self.events = body["events"]
                return Update("events")
            case payloads.Message(text=text):
                self.message = text.strip()
                return Update("message")
            case payloads.PhoneDoor():
                if not self.door:
                    return None
                self.phone_door = body
                return Update("door")
            case payloads.Board():
                return self._board(body, now)
        return None

    def _board(self, body: dict[str, Any], now: float) -> Update | None:
        """A board: each state it carries folded as if it came on its own topic (a bad one is dropped
        alone); the ones as the last board had them are skipped (a call changes three, not all)."""
        states = body["states"]
        folded = self._board_states  # the states of the last board, as folded
        if folded.keys() != states.keys():
            # The board lists every queue and counter: one it no longer lists is gone (taken out of the site).
            for service in [s for s in self.queues if queue_state_suffix(s) not in states]:
                del self.queues[service]
            for counter in [c for c in self.counter_states if counter_state_suffix(c) not in states]:
                del self.counter_states[counter]
            for gone in [suffix for suffix in folded if suffix not in states]:
                del folded[gone]
        for suffix, state in states.items():
            if folded.get(suffix) == state:
                continue
            try:
                self._apply(suffix.split("/"), state, now)
            except PayloadError as exc:
                self.rejected += 1
                log.warning("dropped a malformed %s in a board: %s", suffix, exc)
            else:
                folded[suffix] = state
        return Update("board")

    def _call_event(self, call: dict[str, Any], now: float) -> Update | None:
        call_id = call["call_id"]
        if call_id in self._seen:
            return None  # a QoS 1 redelivery: announced once already
        self._seen[call_id] = None
        while len(self._seen) > SEEN_CALLS:
            self._seen.popitem(last=False)
        if not self.wants_call(call):
            return None
        # The call goes on top; an older line for the same ticket (the first
        # call before a recall) would only repeat it.
        self.recent = [call] + [
            c for c in self.recent if c["call_id"] != call_id and c["ticket"] != call["ticket"]
        ][: self.recent_limit - 1]
        age = self.call_age(call, now)
        if age is not None and age > self.announce_max_age:
            # Late (it waited out a broker outage somewhere): on the list, but not spoken or flashed.
            self.late_calls += 1
            log.info("not announcing %s: %.1f s old", call["ticket"], age)
            return Update("call", call=call, announce=False)
        self.highlight_call_id = call_id
        self.highlight_until = now + self.highlight_seconds
        return Update("call", call=call, announce=True)

    def call_age(self, call: dict[str, Any], now: float) -> float | None:
        """Seconds since the hub made this call, on the hub's clock; None for a call without a time."""
        hub_now = self.hub_time.now(now)
        if hub_now is None or not isinstance(call.get("at"), str):
            return None
        try:
            return hub_now - parse_time(call["at"]).timestamp()
        except PayloadError:
            return None  # no telling: speak it, as before there were times on calls

    # -- what to draw ----------------------------------------------------------
    @property
    def current_call(self) -> dict[str, Any] | None:
        return self.recent[0] if self.recent else None

    def highlighted(self, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        current = self.current_call
        return bool(current and current["call_id"] == self.highlight_call_id and now < self.highlight_until)

    @property
    def offline(self) -> bool:
        """Show the offline mark: our link is down, or the hub said it went away."""
        return not self.link_online or self.hub_online is False

    def service_order(self) -> list[str]:
        """Services in the screen's order, else the site's, else as they came."""
        if self.services:
            return [s for s in self.services if s in self.queues]
        site_order = [s["id"] for s in (self.site or {}).get("services", [])]
        known = [s for s in site_order if s in self.queues]
        return known + sorted(s for s in self.queues if s not in known)

    def upcoming_events(self, at: datetime | None = None, limit: int = 6) -> list[dict[str, Any]]:
        """Events not yet over, soonest first (cancelled ones too: people need to know)."""
        at = at or datetime.now(UTC)
        keep = []
        for event in self.events:
            ends = parse_time(event.get("end") or event["start"])
            if ends >= at:
                keep.append(event)
        keep.sort(key=lambda e: parse_time(e["start"]))
        return keep[:limit]

    @property
    def complete(self) -> bool:
        """The hub's retained picture has arrived (site, and a queue for each wanted service)."""
        if self.site is None:
            return False
        wanted = self.services or tuple(s["id"] for s in self.site.get("services", []))
        return all(s in self.queues for s in wanted)
