"""The MQTT contract: every topic name, the wire format, and the devices' payloads.

Standard library only, so a kiosk, a screen or a button box can import it
without the hub's dependencies. The queue's payloads (site, queue and
counter state, calls, events, message) are classes in ``vuoro/payloads.py``,
which also says which topic carries which. `docs/protocol.md` describes the
same contract for people; keep them in step.

Every payload is a JSON object carrying ``"v": SCHEMA_VERSION``. A reader
that meets a newer major version logs it and ignores the message rather
than guessing. Only MQTT 3.1.1 features are used (retained messages, QoS 1,
last will), so any broker serves.

Topic tree (``<root>`` defaults to ``vuoro``)::

    <root>/<site>/hub/status                      retained  hub presence (last will: online=false)
    <root>/<site>/hub/alive                       QoS 0     the hub's heartbeat, every HUB_ALIVE_SECONDS
    <root>/<site>/site                            retained  site name, languages, services, counters
    <root>/<site>/queue/<service>/state           retained  waiting count, estimated wait, open/closed
    <root>/<site>/counters/<counter>/state        retained  open/paused/closed and who is being served
    <root>/<site>/calls/recent                    retained  the last calls, newest first
    <root>/<site>/calls                           QoS 1     one message per call or recall (event, not retained)
    <root>/<site>/board                           retained  a screen's digest: every queue and counter state
                                                            and the recent calls in one message, at most every
                                                            0.2 s (a screen takes it instead of those topics)
    <root>/<site>/events/today                    retained  what's on today and next (issue 7)
    <root>/<site>/message                         retained  an optional line of text set by staff
    <root>/<site>/phone/door                      retained  the door code for a ticket from a phone (issue 21)
    <root>/<site>/devices/<device>/status         retained  a device's presence and health (last will)
    <root>/<site>/buttons/<counter>/press         QoS 1     a staff button press (from a button box)
    <root>/<site>/buttons/<counter>/result        QoS 1     the hub's answer to that press
    <root>/<site>/config/nudge                    retained  from the centre, over the bridge: a new config
                                                            or staff revision is waiting (fetch it over HTTP)

At the centre's broker each branch's bridge maps BRIDGE_UP from ``<root>/<site>/`` to
``branches/<site>/`` and BRIDGE_DOWN back (``centre_topic``; deploy/mosquitto_bridge.py)::

    branches/<site>/<suffix>                      what the branch's bridge carries up (BRIDGE_UP)
    branches/<site>/bridge/state                  retained  "1" / "0": the bridge's own presence (last will)
    branches/<site>/config/nudge                  retained  published by the centre, carried down
"""

from __future__ import annotations

import json
import math
import re
import time
from dataclasses import dataclass
from typing import Any

SCHEMA_VERSION = 1
DEFAULT_ROOT = "vuoro"

# Ids used in topics: lower-case letters, digits, '-' and '_'. MQTT wildcards
# ('+', '#') and '/' can therefore never sneak into a topic from config.
ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")

# A press older than this is refused by the hub: a call must not arrive
# minutes later when the desk has moved on. The box lights its error LED.
PRESS_TTL_SECONDS = 5.0

# Nothing in the contract comes near this; a bigger payload is refused before it is parsed.
MAX_PAYLOAD_BYTES = 64 * 1024

DEVICE_KINDS = ("kiosk", "display", "button", "printer", "hub")
PRINTER_STATES = ("ok", "paper_low", "paper_out", "cover_open", "offline", "error", "unknown")
BUTTON_ACTIONS = ("next", "recall")


class PayloadError(ValueError):
    """A message that does not follow the contract. Log it, drop it, go on."""


# The hub's retained state, by topic suffix under <root>/<site>/. The hub keys its state by these
# (the web signage stream sends the same suffixes); Topics builds the full names from them.
SITE_SUFFIX = "site"
RECENT_CALLS_SUFFIX = "calls/recent"
MESSAGE_SUFFIX = "message"
EVENTS_TODAY_SUFFIX = "events/today"
PHONE_DOOR_SUFFIX = "phone/door"
CALLS_SUFFIX = "calls"
HUB_STATUS_SUFFIX = "hub/status"
BOARD_SUFFIX = "board"
# "+" stands for one id (as in an MQTT subscription): vuoro.payloads.ROUTES routes by these patterns.
QUEUE_STATE_PATTERN = "queue/+/state"
COUNTER_STATE_PATTERN = "counters/+/state"
DEVICE_STATUS_PATTERN = "devices/+/status"
CONFIG_NUDGE_SUFFIX = "config/nudge"

# -- across branches: the bridge from each branch's Mosquitto to the centre's broker (docs/central.md) --------
# Every branch's topics at the centre are under CENTRE_ROOT/<site id>/, whatever the branch's own <root>, so
# the centre reads and the ACLs name one tree. The branch id is the site id (the centre's [branches.<id>]).
CENTRE_ROOT = "branches"
# What a branch's bridge carries up: live state only, all of it retained except the calls event, which is
# sent at QoS 0 like everything on the bridge. The board is the queue, counter and recent-call states in one
# coalesced message, so those single topics stay at home (three times the WAN messages, nothing new). Never
# up: hub/alive (a heartbeat every 4 s per branch: the bridge's own state says whether a branch is there),
# buttons (local control), phone/door (the door code lets whoever reads it take a ticket from afar), events
# and message. Nothing that must not be lost travels here: a bridge drops what it cannot send (docs/central.md);
# rows go by the uplink's outbox over HTTP.
BRIDGE_UP = (HUB_STATUS_SUFFIX, SITE_SUFFIX, BOARD_SUFFIX, CALLS_SUFFIX, DEVICE_STATUS_PATTERN)
# What comes down: the centre says a new config or staff revision is waiting.
BRIDGE_DOWN = (CONFIG_NUDGE_SUFFIX,)
# The bridge's presence at the centre: Mosquitto's bridge notification ("1" on connect, "0" as its last will).
BRIDGE_STATE_SUFFIX = "bridge/state"


def centre_topic(site: str, suffix: str) -> str:
    """A branch's topic at the centre's broker: ``branches/<site>/<suffix>``."""
    return f"{CENTRE_ROOT}/{site}/{suffix}"


# What a signage screen subscribes to: only what it draws. A call comes as the one small calls event, and
# the states it changes follow in one board (vuoro.payloads.Board); the rest changes a few times a day.
# Not the single queue, counter and recent topics, devices, buttons or the heartbeat: fifty screens
# parsing five messages per call is what made a hall slow (issue 19).
SCREEN_SUFFIXES = (CALLS_SUFFIX, BOARD_SUFFIX, SITE_SUFFIX, EVENTS_TODAY_SUFFIX, MESSAGE_SUFFIX, HUB_STATUS_SUFFIX,
                   PHONE_DOOR_SUFFIX)  # the door QR changes once a minute: only door screens draw it


def queue_state_suffix(service: str) -> str:
    return QUEUE_STATE_PATTERN.replace("+", service)


def counter_state_suffix(counter: str) -> str:
    return COUNTER_STATE_PATTERN.replace("+", counter)


@dataclass(frozen=True)
class Topics:
    """Builds and parses topic names for one site."""

    site: str
    root: str = DEFAULT_ROOT

    @property
    def base(self) -> str:
        return f"{self.root}/{self.site}"

    def under(self, suffix: str) -> str:
        """The full topic of a suffix such as ``queue/kvik/state``."""
        return f"{self.base}/{suffix}"

    # -- hub-owned, retained ------------------------------------------------
    @property
    def hub_status(self) -> str:
        return self.under(HUB_STATUS_SUFFIX)

    @property
    def hub_alive(self) -> str:
        return f"{self.base}/hub/alive"

    @property
    def site_info(self) -> str:
        return self.under(SITE_SUFFIX)

    def queue_state(self, service: str) -> str:
        return self.under(queue_state_suffix(service))

    def counter_state(self, counter: str) -> str:
        return self.under(counter_state_suffix(counter))

    @property
    def recent_calls(self) -> str:
        return self.under(RECENT_CALLS_SUFFIX)

    @property
    def calls(self) -> str:
        return self.under(CALLS_SUFFIX)

    @property
    def board(self) -> str:
        return self.under(BOARD_SUFFIX)

    @property
    def screen(self) -> list[str]:
        """What a signage screen subscribes to (SCREEN_SUFFIXES)."""
        return [self.under(suffix) for suffix in SCREEN_SUFFIXES]

    @property
    def events_today(self) -> str:
        return self.under(EVENTS_TODAY_SUFFIX)

    @property
    def message(self) -> str:
        return self.under(MESSAGE_SUFFIX)

    @property
    def phone_door(self) -> str:
        return self.under(PHONE_DOOR_SUFFIX)

    # -- device-owned -------------------------------------------------------
    def device_status(self, device: str) -> str:
        return self.under(DEVICE_STATUS_PATTERN.replace("+", device))

    @property
    def all_device_status(self) -> str:
        return self.under(DEVICE_STATUS_PATTERN)

    def button_press(self, counter: str) -> str:
        return f"{self.base}/buttons/{counter}/press"

    @property
    def all_button_presses(self) -> str:
        return f"{self.base}/buttons/+/press"

    def button_result(self, counter: str) -> str:
        return f"{self.base}/buttons/{counter}/result"

    @property
    def config_nudge(self) -> str:
        return self.under(CONFIG_NUDGE_SUFFIX)

    @property
    def everything(self) -> str:
        """The whole site (a watcher's or a test's subscription; a screen takes only ``screen``)."""
        return f"{self.base}/#"

    def segment(self, topic: str, index: int) -> str:
        """The path segment ``index`` after ``<root>/<site>/`` (e.g. the counter id)."""
        prefix = self.base + "/"
        if not topic.startswith(prefix):
            raise PayloadError(f"topic {topic!r} is not under {prefix!r}")
        parts = topic[len(prefix) :].split("/")
        if index >= len(parts):
            raise PayloadError(f"topic {topic!r} is too short")
        return parts[index]


# -- encoding ---------------------------------------------------------------


def encode(payload: dict[str, Any]) -> bytes:
    """JSON with the schema version stamped in; compact, UTF-8, stable key order."""
    body = {"v": SCHEMA_VERSION, **payload}
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode()


def decode(raw: bytes | str) -> dict[str, Any]:
    """Parse a payload and check its version. Raises PayloadError, never anything else."""
    if len(raw) > MAX_PAYLOAD_BYTES:
        raise PayloadError(f"payload of {len(raw)} bytes is larger than {MAX_PAYLOAD_BYTES}")
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:  # RecursionError: "[[[[…" nested too deep
        raise PayloadError(f"not JSON: {str(exc)[:80]}") from None
    if not isinstance(body, dict):
        raise PayloadError("payload must be a JSON object")
    version = body.get("v")
    if not isinstance(version, int) or isinstance(version, bool):
        raise PayloadError("payload has no integer schema version 'v'")
    if version > SCHEMA_VERSION:
        raise PayloadError(f"schema version {version} is newer than {SCHEMA_VERSION}")
    return body


def _time(body: dict[str, Any], name: str, *, required: bool = True) -> float:
    """A Unix time in seconds: a finite number (NaN or Infinity would make a press never expire)."""
    value = _field(body, name, (int, float), required=required)
    if value is None:
        return 0.0
    try:
        seconds = float(value)
    except OverflowError:
        raise PayloadError(f"field {name!r} is not a time") from None
    if not math.isfinite(seconds) or not 0 <= seconds < 1e11:
        raise PayloadError(f"field {name!r} is not a time")
    return seconds


def _field(body: dict[str, Any], name: str, kind: type | tuple[type, ...], *, required: bool = True) -> Any:
    value = body.get(name)
    if value is None:
        if required:
            raise PayloadError(f"field {name!r} is missing")
        return None
    if isinstance(value, bool) and kind is not bool and bool not in (kind if isinstance(kind, tuple) else (kind,)):
        raise PayloadError(f"field {name!r} must not be true/false")
    if not isinstance(value, kind):
        raise PayloadError(f"field {name!r} has the wrong type")
    return value


# -- button presses -----------------------------------------------------------


@dataclass(frozen=True)
class ButtonPress:
    press_id: str
    counter: str
    action: str  # one of BUTTON_ACTIONS
    device: str
    sent_at: float  # Unix time at the box; presses older than PRESS_TTL_SECONDS are refused

    def to_payload(self) -> bytes:
        return encode(
            {
                "press_id": self.press_id,
                "counter": self.counter,
                "action": self.action,
                "device": self.device,
                "sent_at": self.sent_at,
            }
        )

    def age(self, now: float | None = None) -> float:
        return (time.time() if now is None else now) - self.sent_at


def parse_button_press(raw: bytes | str) -> ButtonPress:
    body = decode(raw)
    press_id = _field(body, "press_id", str)
    if not 1 <= len(press_id) <= 64:
        raise PayloadError("field 'press_id' must be 1–64 characters")
    counter = _field(body, "counter", str)
    if not ID_PATTERN.match(counter):
        raise PayloadError("field 'counter' is not a valid id")
    action = _field(body, "action", str)
    if action not in BUTTON_ACTIONS:
        raise PayloadError(f"field 'action' must be one of {', '.join(BUTTON_ACTIONS)}")
    device = _field(body, "device", str)
    sent_at = _time(body, "sent_at")
    return ButtonPress(press_id=press_id, counter=counter, action=action, device=device, sent_at=sent_at)


def button_result(press_id: str, ok: bool, *, ticket: str | None = None, reason: str | None = None) -> bytes:
    """The hub's answer to a press: ok with the ticket called, or the reason it failed."""
    return encode({"press_id": press_id, "ok": ok, "ticket": ticket, "reason": reason})


# -- hub presence -----------------------------------------------------------------

# How often a running hub says it is alive (hub/alive). A hub starting up that finds another
# hub's "online" on the broker waits HUB_ALIVE_WAIT_SECONDS for this: silence means that status is
# left over from a hub that died while the broker was down, so it may take over.
HUB_ALIVE_SECONDS = 4.0
HUB_ALIVE_WAIT_SECONDS = 2.5 * HUB_ALIVE_SECONDS


@dataclass(frozen=True)
class HubStatus:
    """hub/status (retained, and the hub's last will) and hub/alive: which hub, since when."""

    online: bool
    instance: str  # "<host>:<database file>": two hubs for one site never have the same
    started: float  # when that hub process started (Unix time): of two hubs, the earlier keeps running
    version: str = ""
    at: float = 0.0

    def to_payload(self) -> bytes:
        return encode({"online": self.online, "instance": self.instance, "started": self.started,
                       "version": self.version, "at": self.at or time.time()})

    def precedes(self, other: HubStatus) -> bool:
        """Of two hubs for one site, the one that keeps running (the same answer on both sides)."""
        return (self.started, self.instance) < (other.started, other.instance)


def parse_hub_status(raw: bytes | str) -> HubStatus:
    body = decode(raw)
    instance = _field(body, "instance", str)
    if not 1 <= len(instance) <= 300:
        raise PayloadError("field 'instance' must be 1–300 characters")
    version = _field(body, "version", str, required=False) or ""
    return HubStatus(online=_field(body, "online", bool), instance=instance, started=_time(body, "started"),
                     version=version, at=_time(body, "at", required=False))


# -- device status --------------------------------------------------------------


@dataclass(frozen=True)
class DeviceStatus:
    device: str
    kind: str  # one of DEVICE_KINDS
    online: bool
    printer: str | None = None  # one of PRINTER_STATES, for devices with a printer
    detail: str | None = None  # plain words for staff, e.g. "paper low"
    at: float = 0.0

    def to_payload(self) -> bytes:
        return encode(
            {
                "device": self.device,
                "kind": self.kind,
                "online": self.online,
                "printer": self.printer,
                "detail": self.detail,
                "at": self.at or time.time(),
            }
        )


def parse_device_status(raw: bytes | str) -> DeviceStatus:
    body = decode(raw)
    device = _field(body, "device", str)
    if not ID_PATTERN.match(device):
        raise PayloadError("field 'device' is not a valid id")
    kind = _field(body, "kind", str)
    if kind not in DEVICE_KINDS:
        raise PayloadError(f"field 'kind' must be one of {', '.join(DEVICE_KINDS)}")
    online = _field(body, "online", bool)
    printer = _field(body, "printer", str, required=False)
    if printer is not None and printer not in PRINTER_STATES:
        raise PayloadError(f"field 'printer' must be one of {', '.join(PRINTER_STATES)}")
    detail = _field(body, "detail", str, required=False)
    at = _time(body, "at", required=False)
    return DeviceStatus(device=device, kind=kind, online=online, printer=printer, detail=detail, at=at)


def offline_will(device: str, kind: str) -> bytes:
    """The last-will payload a device registers when it connects."""
    return DeviceStatus(device=device, kind=kind, online=False, detail="connection lost", at=0.0).to_payload()


# -- the centre's nudge (config/nudge, down the bridge) -------------------------------------------------------


@dataclass(frozen=True)
class ConfigNudge:
    """``config/nudge``: the newest site config (and staff accounts revision) the centre holds for a branch.

    Only a hint to look sooner: the branch fetches and checks the config over HTTPS with its own token, as
    every uplink answer already tells it (a nudge lost on the bridge costs at most one heartbeat). Retained
    at the centre, so a bridge that reconnects is told again. ``version`` 0 with an empty ``checksum``: the centre
    has published no config for the branch (the nudge is then about the staff revision)."""

    version: int
    checksum: str
    staff: int | None = None
    at: float = 0.0

    def to_payload(self) -> bytes:
        return encode({"version": self.version, "checksum": self.checksum, "staff": self.staff,
                       "at": self.at or time.time()})


def parse_config_nudge(raw: bytes | str) -> ConfigNudge:
    body = decode(raw)
    version = _field(body, "version", int)
    if version < 0:
        raise PayloadError("field 'version' must not be negative")
    checksum = _field(body, "checksum", str)
    if not (1 if version else 0) <= len(checksum) <= 200:
        raise PayloadError("field 'checksum' must be 1–200 characters (empty only with version 0)")
    staff = _field(body, "staff", int, required=False)
    return ConfigNudge(version=version, checksum=checksum, staff=staff, at=_time(body, "at", required=False))
