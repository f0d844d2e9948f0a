"""The queue's payloads: built by the hub and parsed by every reader through the classes here.

``site``, ``queue/<service>/state``, ``counters/<counter>/state``,
``calls/recent``, ``calls``, ``events/today``, ``message``, ``phone/door`` and ``board`` (see
``vuoro/protocol.py`` for the topic tree, ``docs/protocol.md`` for people).
Each payload is a dataclass whose fields are its JSON fields, in the
order they go out:

- the hub builds one and sends ``to_json()`` (``server/views.py``);
  ``protocol.encode`` stamps the schema version ``v`` on it, and the hub adds
  ``at`` (its clock) to every retained state it publishes;
- a reader calls ``Kind.from_json(body)`` (or ``Kind.parse(raw)``), which
  checks every field the contract defines and raises ``PayloadError``, never
  anything else; fields it does not know are left alone, so a newer hub may
  add some;
- ``ROUTES`` says which topic carries which payload, so every reader routes a
  message the way the hub sent it (``display/state.py``); the web signage,
  which cannot import Python, reads ``display/web/contract.json``, written
  from these classes by ``python -m vuoro.payloads`` (a test fails when it is
  stale, another when the page reads a field that is not in it).

A field without a default is one a reader may count on; one with a default
may be missing or null. To change a payload or the topic a payload travels
on, change it here: the hub, the screens, the web page's description and the
contract tests follow.

One module of ~530 lines on purpose: the contract is read in one file (every payload and its route).
"""

from __future__ import annotations

import json
import re
import sys
import types
from collections.abc import Callable
from dataclasses import MISSING, dataclass, fields, is_dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar, Self, Union, get_args, get_origin, get_type_hints

from vuoro.protocol import (
    BOARD_SUFFIX,
    CALLS_SUFFIX,
    CONFIG_NUDGE_SUFFIX,
    COUNTER_STATE_PATTERN,
    EVENTS_TODAY_SUFFIX,
    HUB_STATUS_SUFFIX,
    ID_PATTERN,
    MESSAGE_SUFFIX,
    PHONE_DOOR_SUFFIX,
    QUEUE_STATE_PATTERN,
    RECENT_CALLS_SUFFIX,
    SCHEMA_VERSION,
    SITE_SUFFIX,
    ConfigNudge,
    HubStatus,
    PayloadError,
    decode,
)

CONTRACT_JSON = Path(__file__).resolve().parent.parent / "display" / "web" / "contract.json"
EVENT_STATES = ("scheduled", "sold_out", "cancelled")

# JSON types, and how a value of each is recognised (true/false is never a number).
_IS = {
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
}
_SCALARS = {str: "string", int: "integer", float: "number", bool: "boolean"}


@dataclass(frozen=True)
class Field:
    """One field of a payload, as its type hint says: its JSON type, and what an array or object holds."""

    name: str
    type: str  # a key of _IS
    required: bool
    default: Any = None
    payload: type[Payload] | None = None  # an object that is itself a payload (parsed into its class)
    items: Field | None = None  # an array's items

    def read(self, value: Any) -> Any:
        if not _IS[self.type](value):
            raise PayloadError(f"field {self.name!r} has the wrong type")
        if self.payload is not None:
            return self.payload.from_json(value)
        if self.items is not None:
            return [self.items.read(item) for item in value]
        return value

    def write(self, value: Any) -> Any:
        if value is None:
            return None
        if self.payload is not None:
            return value.to_json()
        if self.items is not None:
            return [self.items.write(item) for item in value]
        return value

    def describe(self) -> dict[str, Any]:
        described: dict[str, Any] = {"type": self.type, "required": self.required}
        if self.payload is not None:
            described["fields"] = describe(self.payload)
        if self.items is not None:
            described["items"] = {k: v for k, v in self.items.describe().items() if k != "required"}
        return described


def _field(name: str, hint: Any, required: bool, default: Any = None) -> Field:
    if get_origin(hint) in (Union, types.UnionType):  # X | None: may be null
        (hint,) = [arg for arg in get_args(hint) if arg is not type(None)]
        return _field(name, hint, False, default)
    if hint in _SCALARS:
        return Field(name, _SCALARS[hint], required, default)
    if get_origin(hint) is list:
        return Field(name, "array", required, default, items=_field(name, get_args(hint)[0], True))
    if hint is dict or get_origin(hint) is dict:  # a map (names by language, hours by service): keys are data
        return Field(name, "object", required, default)
    if isinstance(hint, type) and issubclass(hint, Payload):
        return Field(name, "object", required, default, payload=hint)
    raise TypeError(f"{name}: the contract has no JSON type for {hint!r}")


def fields_of(cls: type) -> tuple[Field, ...]:
    """A dataclass's fields as the contract sees them (cached on the class)."""
    cached = cls.__dict__.get("_contract_fields")
    if cached is None:
        hints = get_type_hints(cls, vars(sys.modules[cls.__module__]))
        cached = tuple(_field(f.name, hints[f.name], f.default is MISSING, None if f.default is MISSING else f.default)
                       for f in fields(cls))
        cls._contract_fields = cached  # type: ignore[attr-defined]
    return cached


def describe(cls: type) -> dict[str, Any]:
    """The fields of a payload (any dataclass of the contract) for the web page: name → type, required."""
    assert is_dataclass(cls)
    return {f.name: f.describe() for f in fields_of(cls)}


class Payload:
    """Base of the payload dataclasses: reading, writing and describing them from their type hints.

    Values, to be made and not changed; not frozen only because the hub makes a dozen per commit
    and a frozen dataclass takes twice as long to make.
    """

    KIND: ClassVar[str]  # its name in contract.json
    KEY: ClassVar[str | None] = None  # the field that names the topic's "+" segment (a service, a counter)

    @classmethod
    def from_json(cls, body: Any) -> Self:
        """Check a parsed JSON object against this payload; PayloadError says what is wrong."""
        # Every screen checks every payload it gets (fifty screens per call): each class gets a reader of
        # its own on first use, generated from its fields like the writer below, not a loop over them.
        reader = cls.__dict__.get("_reader")
        if reader is None:
            reader = cls._reader = _reader(cls)  # type: ignore[attr-defined]
        return reader(body)

    @classmethod
    def parse(cls, raw: bytes | str) -> Self:
        """Decode a message (size, JSON, schema version) and check it."""
        return cls.from_json(decode(raw))

    def check(self) -> None:
        """Rules beyond the types (a count that is not negative); raise PayloadError."""

    def to_json(self) -> dict[str, Any]:
        """The JSON object, fields in their order (``protocol.encode`` adds the schema version)."""
        # The hub writes a dozen payloads per commit: on first use each class gets a writer of its own,
        # generated from its fields as dataclasses generate __init__, instead of a loop over them.
        cls = type(self)
        cls.to_json = _writer(cls)  # type: ignore[method-assign]
        return cls.to_json(self)


# How the generated reader tells each JSON type (the same tests as _IS: true/false is never a number).
_WRONG = {
    "string": "not isinstance(v, str)",
    "integer": "not isinstance(v, int) or isinstance(v, bool)",
    "number": "not isinstance(v, int | float) or isinstance(v, bool)",
    "boolean": "not isinstance(v, bool)",
    "object": "not isinstance(v, dict)",
    "array": "not isinstance(v, list)",
}


def _reader(cls: type[Payload]) -> Callable[[Any], Payload]:
    """``from_json`` for one class, as straight-line code: the checks and messages of ``Field.read``."""
    namespace: dict[str, Any] = {"cls": cls, "PayloadError": PayloadError}
    lines = ["def from_json(body):", "    if not isinstance(body, dict):",
             f"        raise PayloadError({cls.KIND + ' must be an object'!r})", "    get = body.get"]
    args = []
    for n, spec in enumerate(fields_of(cls)):
        namespace[f"default{n}"] = spec.default
        namespace[f"field{n}"] = spec
        lines += [f"    v = get({spec.name!r})", "    if v is None:",
                  f"        raise PayloadError({f'field {spec.name!r} is missing'!r})" if spec.required
                  else f"        v = default{n}",
                  f"    elif {_WRONG[spec.type]}:",
                  f"        raise PayloadError({f'field {spec.name!r} has the wrong type'!r})"]
        if spec.payload is not None or spec.items is not None:
            lines += ["    else:", f"        v = field{n}.read(v)"]  # nested: the generic path (its own reader)
        lines.append(f"    a{n} = v")
        args.append(f"{spec.name}=a{n}")  # field names are Python identifiers: safe in generated code
    lines.append(f"    payload = cls({', '.join(args)})")
    if cls.check is not Payload.check:
        lines.append("    payload.check()")
    lines.append("    return payload")
    exec("\n".join(lines) + "\n", namespace)  # noqa: S102 - our own field names
    return namespace["from_json"]


def _writer(cls: type[Payload]) -> Callable[[Payload], dict[str, Any]]:
    items = []
    for spec in fields_of(cls):
        value = f"self.{spec.name}"  # field names are Python identifiers: safe in generated code
        if spec.payload is not None:
            value = f"(None if {value} is None else {value}.to_json())"
        elif spec.items is not None and spec.items.payload is not None:
            value = f"(None if {value} is None else [item.to_json() for item in {value}])"
        items.append(f"{spec.name!r}: {value}")
    namespace: dict[str, Any] = {}
    exec(f"def to_json(self):\n    return {{{', '.join(items)}}}\n", namespace)  # noqa: S102 - our own field names
    return namespace["to_json"]


def parse_time(text: str) -> datetime:
    """Times in payloads are ISO 8601 with an offset (the site's zone)."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise PayloadError(f"not an ISO 8601 time: {text!r}") from None
    if moment.tzinfo is None:
        raise PayloadError(f"time without an offset: {text!r}")
    return moment


# -- the payloads ----------------------------------------------------------------------------------


@dataclass(kw_only=True)
class Call(Payload):
    """``calls`` (one message per call or recall) and each line of ``calls/recent``."""

    KIND = "call"
    call_id: str
    ticket: str
    service: str
    counter: str
    counter_name: str | None = None
    recall: bool = False
    at: str | None = None  # when the hub made the call, to the millisecond: screens judge its age


@dataclass(kw_only=True)
class RecentCalls(Payload):
    KIND = "recent_calls"
    calls: list[Call]


@dataclass(kw_only=True)
class QueueState(Payload):
    """``queue/<service>/state``: how many wait, how long, open or closed."""

    KIND = "queue_state"
    KEY = "service"
    service: str
    letter: str | None = None
    mode: str | None = None  # walk_in, booking_only
    names: dict[str, str] | None = None  # by language
    open: bool
    opens_at: str | None = None  # closed: when it opens next
    closes_at: str | None = None
    waiting: int
    estimated_wait_min: float | None = None
    last_called: str | None = None
    counters_open: int | None = None

    def check(self) -> None:
        if self.waiting < 0:
            raise PayloadError("field 'waiting' is negative")


@dataclass(kw_only=True)
class Serving(Payload):
    KIND = "serving"
    ticket: str
    service: str
    called_at: str | None = None


@dataclass(kw_only=True)
class CounterState(Payload):
    """``counters/<counter>/state``: open, paused or closed, and whom it serves."""

    KIND = "counter_state"
    KEY = "counter"
    counter: str
    name: str | None = None
    services: list[str] | None = None
    status: str  # open, paused, closed
    serving: Serving | None = None


@dataclass(kw_only=True)
class ServiceInfo(Payload):
    KIND = "service"
    id: str
    letter: str | None = None
    mode: str | None = None
    names: dict[str, str] | None = None


@dataclass(kw_only=True)
class CounterInfo(Payload):
    KIND = "counter"
    id: str
    name: str | None = None
    services: list[str] | None = None


@dataclass(kw_only=True)
class Hours(Payload):
    """Today's hours and whether staff are in (the screen's footer)."""

    KIND = "hours"
    day: str | None = None
    building_open: bool | None = None
    staffed_now: bool | None = None
    next_staffed_at: str | None = None
    today: dict[str, list[str]] | None = None  # "building" and each service id → "HH:MM-HH:MM" spans


@dataclass(kw_only=True)
class SiteInfo(Payload):
    """``site``: the site's name, zone, languages, services, counters and hours."""

    KIND = "site"
    site: str | None = None
    name: str
    timezone: str | None = None
    languages: list[str] | None = None
    services: list[ServiceInfo] | None = None
    counters: list[CounterInfo] | None = None
    hours: Hours | None = None


@dataclass(kw_only=True)
class Event(Payload):
    KIND = "event"
    id: str | None = None
    title: str
    start: str
    end: str | None = None
    room: str | None = None
    state: str = "scheduled"  # one of EVENT_STATES
    seats_left: int | None = None
    waiting_list_left: int | None = None  # places left on the waiting list, for an event that takes sign-ups
    signup: bool | None = None  # whether a visitor can sign up (or join the waiting list) now
    tentative: bool | None = None  # true: the feed marks it TENTATIVE; screens say "to be confirmed"

    def check(self) -> None:
        parse_time(self.start)
        if self.end is not None:
            parse_time(self.end)
        if self.state not in EVENT_STATES:
            raise PayloadError(f"event state {self.state!r} is not one of {', '.join(EVENT_STATES)}")


@dataclass(kw_only=True)
class EventsToday(Payload):
    """``events/today``: what's on today and next."""

    KIND = "events_today"
    day: str | None = None
    events: list[Event]


@dataclass(kw_only=True)
class Message(Payload):
    """``message``: a line of text set by staff ("" for none)."""

    KIND = "message"
    text: str = ""


@dataclass(kw_only=True)
class PhoneDoor(Payload):
    """``phone/door``: the QR by the door that opens the phone page with a code that changes (docs/phone.md).

    ``url`` is the whole address when the site has a ``public_url``; otherwise a screen puts ``path`` after
    the address it reaches the hub by. ``qr`` is where the hub serves the QR of it as SVG. An empty ``code``:
    the site hands out no tickets to phones, and a screen shows no QR."""

    KIND = "phone_door"
    code: str
    path: str
    url: str | None = None
    qr: str | None = None
    changes_at: str | None = None

    def check(self) -> None:
        if self.changes_at is not None:
            parse_time(self.changes_at)


# The retained states a board carries (by topic pattern): what a ticket or a call changes on a screen.
BOARD_STATES = (QUEUE_STATE_PATTERN, COUNTER_STATE_PATTERN, RECENT_CALLS_SUFFIX)
# A board waits this long after a change, gathering the changes that follow: the calls' fan-out to a hall
# of screens goes first, and a rush of tickets costs each screen a few boards a second, not one per commit.
BOARD_SECONDS = 0.2


@dataclass(kw_only=True)
class Board(Payload):
    """``board`` (retained): a screen's digest of what tickets and calls change (issue 19).

    ``states`` holds the current payload of every topic of ``BOARD_STATES`` by its suffix (each queue
    state, each counter state and ``calls/recent``), as those topics carry them; a reader checks each
    through its route, so one bad state is dropped alone. The hub sends it at most every
    ``BOARD_SECONDS`` and always after the last change: a call reaches fifty screens as the one small
    ``calls`` event, and the waiting counts follow a moment later in one message for many changes.
    """

    KIND = "board"
    states: dict[str, dict]

    def check(self) -> None:
        for suffix in self.states:
            if not in_board(suffix):
                raise PayloadError(f"a board does not carry {suffix!r}")


def in_board(suffix: str) -> bool:
    """Whether a retained state's topic suffix is one a board carries."""
    return _IN_BOARD.match(suffix) is not None


# BOARD_STATES as one pattern ("+" is one id): a screen asks this for every state of every board.
_IN_BOARD = re.compile("(?:" + "|".join(re.escape(p).replace(r"\+", "[^/]+") for p in BOARD_STATES) + r")\Z")


# Which payload each topic carries, by suffix under <root>/<site>/ ("+" is one id: a service, a counter).
ROUTES: tuple[tuple[str, type[Payload]], ...] = (
    (SITE_SUFFIX, SiteInfo),
    (QUEUE_STATE_PATTERN, QueueState),
    (COUNTER_STATE_PATTERN, CounterState),
    (RECENT_CALLS_SUFFIX, RecentCalls),
    (CALLS_SUFFIX, Call),
    (EVENTS_TODAY_SUFFIX, EventsToday),
    (MESSAGE_SUFFIX, Message),
    (PHONE_DOOR_SUFFIX, PhoneDoor),


    (BOARD_SUFFIX, Board),
)
_ROUTES = [(pattern.split("/"), kind) for pattern, kind in ROUTES]


def route(suffix: str) -> tuple[type[Payload], str | None] | None:
    """The payload class a topic suffix carries and the id in its "+" segment; None for other topics."""
    routed = _ROUTED.get(suffix)
    if routed is None:
        routed = _route(suffix)
        if len(_ROUTED) > 4096:  # a site has a few dozen topics; whoever publishes thousands gets no memory
            _ROUTED.clear()
        _ROUTED[suffix] = routed
    return routed or None


_ROUTED: dict[str, tuple[type[Payload], str | None] | tuple[()]] = {}  # route by suffix, found once


def _route(suffix: str) -> tuple[type[Payload], str | None] | tuple[()]:
    parts = suffix.split("/")
    for pattern, kind in _ROUTES:
        if len(pattern) == len(parts) and all(p in ("+", s) for p, s in zip(pattern, parts, strict=True)):
            segment = next((s for p, s in zip(pattern, parts, strict=True) if p == "+"), None)
            if segment is not None and not ID_PATTERN.match(segment):
                raise PayloadError(f"bad id {segment!r} in topic {suffix!r}")
            return kind, segment
    return ()


def read(suffix: str, body: dict[str, Any]) -> Payload | None:
    """Route and check one message's body: its payload, or None for a topic that carries none of these.
    A keyed payload must name the id its topic names (a queue state for kvik under queue/kvik/state)."""
    routed = route(suffix)
    if routed is None:
        return None
    kind, segment = routed
    payload = kind.from_json(body)
    if kind.KEY and getattr(payload, kind.KEY) != segment:
        raise PayloadError(f"{kind.KIND} for {getattr(payload, kind.KEY)!r} published under {segment!r}")
    return payload


def contract() -> dict[str, Any]:
    """The contract for the web page (display/web/contract.json): routes and every payload's fields."""
    routes = [{"topic": pattern, "kind": kind.KIND, **({"key": kind.KEY} if kind.KEY else {})}
              for pattern, kind in ROUTES]
    kinds = {kind.KIND: describe(kind) for _, kind in ROUTES}
    routes.append({"topic": HUB_STATUS_SUFFIX, "kind": "hub_status"})
    kinds["hub_status"] = describe(HubStatus)
    routes.append({"topic": CONFIG_NUDGE_SUFFIX, "kind": "config_nudge"})  # the hub's, from the centre
    kinds["config_nudge"] = describe(ConfigNudge)
    return {"about": "Written by 'python -m vuoro.payloads' from vuoro/payloads.py: do not edit by hand.",
            "schema_version": SCHEMA_VERSION, "routes": routes, "kinds": kinds}


def contract_text() -> str:
    return json.dumps(contract(), ensure_ascii=False, indent=1) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Write display/web/contract.json (``--check``: only say whether it is up to date)."""
    args = sys.argv[1:] if argv is None else argv
    current = CONTRACT_JSON.read_text(encoding="utf-8") if CONTRACT_JSON.exists() else ""
    if "--check" in args:
        print("up to date" if current == contract_text() else "stale: run python -m vuoro.payloads")
        return 0 if current == contract_text() else 1
    CONTRACT_JSON.write_text(contract_text(), encoding="utf-8")
    print(CONTRACT_JSON)
    return 0


if __name__ == "__main__":
    sys.exit(main())
