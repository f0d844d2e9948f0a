"""Staff button boxes: a press calls the next visitor, a long press calls again.

Two hardware faces produce the same events, so the rest does not care which
box is on the desk (like gpiozero: the device reads like a sentence, the pins
are behind a swappable face):

- :class:`GpioButtonBox`: buttons and LEDs on a Raspberry Pi's pins (gpiozero,
  debounced with ``bounce_time``, a hold of ``long_press`` seconds = recall);
- :class:`SerialButtonBox`: a USB-serial box speaking a line protocol
  (``P1`` press button 1, ``L1`` long press; the hub's answer goes back as
  ``OK 1 K013`` / ``EMPTY 1`` / ``ERR 1``), reopened every second while it is
  unplugged.

:class:`ButtonBox` joins a face to the hub over MQTT. Each press becomes a
``ButtonPress`` with a unique id, published with QoS 1. A press is kept at most
``PRESS_TTL_SECONDS``: if the broker is away longer, it is dropped, never sent
late, and the button's failure LED blinks; the same happens when no result
comes back in time. So staff press again, or use the staff page. The box also
keeps its presence (``devices/<id>/status``, retained, with a last will).

Typical use::

    box = ButtonBox(GpioButtonBox({"1": GpioPins(button=17, failed_led=24)}),
                    broker="mqtt://hub.local:1883", site="sonderbro", device="buttons1",
                    counters={"1": "kvik1"})
    box.start()
"""

from __future__ import annotations

import json
import logging
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import paho.mqtt.client as mqtt

from vuoro import protocol
from vuoro.mqtt import BrokerSettings, Will, make_client, settings_for
from vuoro.protocol import PRESS_TTL_SECONDS, ButtonPress, DeviceStatus, Topics

from .serial_lines import SerialLines

log = logging.getLogger("vuoro.buttons")

LONG_PRESS_SECONDS = 1.5
BOUNCE_SECONDS = 0.04
RESULT_GRACE_SECONDS = 1.0  # after the last moment a press may be sent, how long to wait for its result
REOPEN_SECONDS = 1.0

# What a button's LEDs show.
IDLE = "idle"  # nothing to say
PENDING = "pending"  # pressed, waiting for the hub
SERVING = "serving"  # the hub called someone: they are on their way
EMPTY = "empty"  # the hub answered, but no one is waiting
FAILED = "failed"  # no answer in time, or the hub refused: press again or use the staff page
FEEDBACK = (IDLE, PENDING, SERVING, EMPTY, FAILED)


@dataclass(frozen=True)
class ButtonEvent:
    """A button on the box was pressed (``long``: held for ``long_press`` seconds or more)."""

    button: str
    long: bool = False

    @property
    def action(self) -> str:
        return "recall" if self.long else "next"


class ButtonFace(Protocol):
    """The hardware side of a box: reports presses, shows feedback."""

    def start(self, on_event: Callable[[ButtonEvent], None]) -> None: ...

    def show(self, button: str, feedback: str, ticket: str | None = None) -> None: ...

    def close(self) -> None: ...


# -- GPIO ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class GpioPins:
    """One button on a Pi, with its optional LEDs (gpiozero pin names: 17, "GPIO17", "BOARD11")."""

    button: int | str
    serving_led: int | str | None = None
    empty_led: int | str | None = None
    failed_led: int | str | None = None


class GpioButtonBox:
    """Buttons wired between a GPIO pin and ground (internal pull-up), LEDs on other pins."""

    def __init__(self, buttons: dict[str, GpioPins], *, long_press: float = LONG_PRESS_SECONDS,
                 bounce_time: float = BOUNCE_SECONDS, pin_factory: Any = None):
        from gpiozero import LED, Button

        self.pins = buttons
        self.shown: dict[str, str] = {name: IDLE for name in buttons}
        self.buttons: dict[str, Any] = {}
        self.leds: dict[str, dict[str, Any]] = {}
        self._held: set[str] = set()
        self._on_event: Callable[[ButtonEvent], None] | None = None
        for name, pins in buttons.items():
            button = Button(pins.button, pull_up=True, bounce_time=bounce_time, hold_time=long_press,
                            pin_factory=pin_factory)
            button.when_pressed = lambda n=name: self._held.discard(n)
            button.when_held = lambda n=name: self._hold(n)
            button.when_released = lambda n=name: self._release(n)
            self.buttons[name] = button
            self.leds[name] = {kind: LED(pin, pin_factory=pin_factory) for kind, pin in (
                (SERVING, pins.serving_led), (EMPTY, pins.empty_led), (FAILED, pins.failed_led)) if pin is not None}

    def start(self, on_event: Callable[[ButtonEvent], None]) -> None:
        self._on_event = on_event

    def _emit(self, event: ButtonEvent) -> None:
        if self._on_event is not None:
            self._on_event(event)

    def _hold(self, name: str) -> None:
        # Recall as soon as the hold is long enough: staff feel the answer while still holding.
        self._held.add(name)
        self._emit(ButtonEvent(name, long=True))

    def _release(self, name: str) -> None:
        if name in self._held:
            self._held.discard(name)
            return
        self._emit(ButtonEvent(name, long=False))

    def show(self, button: str, feedback: str, ticket: str | None = None) -> None:
        leds = self.leds.get(button)
        if leds is None:
            return
        self.shown[button] = feedback
        for kind, led in leds.items():
            if kind == feedback == FAILED:
                led.blink(on_time=0.25, off_time=0.25)
            elif kind == feedback:
                led.on()
            else:
                led.off()
        if feedback == PENDING and SERVING in leds:
            leds[SERVING].blink(on_time=0.1, off_time=0.1)  # a quick flicker: heard, asking the hub

    def close(self) -> None:
        for leds in self.leds.values():
            for led in leds.values():
                led.close()
        for button in self.buttons.values():
            button.close()


# -- USB serial --------------------------------------------------------------------------------

SERIAL_FEEDBACK = {IDLE: "IDLE", PENDING: "WAIT", SERVING: "OK", EMPTY: "EMPTY", FAILED: "ERR"}


def parse_box_line(line: str) -> ButtonEvent | None:
    """``P1`` → press of button 1; ``L2`` → long press of button 2; blank or ``#…`` → None.

    Raises ValueError for anything else.
    """
    text = line.strip()
    if not text or text.startswith("#"):
        return None
    kind, number = text[0].upper(), text[1:].strip()
    if kind not in ("P", "L") or not number.isdigit() or not 0 < int(number) < 100:
        raise ValueError(f"not a box message: {text[:40]!r} (expected P<n> or L<n>)")
    return ButtonEvent(str(int(number)), long=kind == "L")


def box_command(button: str, feedback: str, ticket: str | None = None) -> bytes:
    """The line the hub's answer becomes for the box, e.g. ``OK 1 K013``."""
    words = [SERIAL_FEEDBACK[feedback], button] + ([ticket] if ticket and feedback == SERVING else [])
    return (" ".join(words) + "\n").encode("ascii", "replace")


class SerialButtonBox:
    """A box on a serial port (``/dev/ttyACM0``, a udev name, or any pyserial URL such as ``loop://``).

    Reads ``P<n>`` / ``L<n>`` lines; writes ``OK <n> [ticket]``, ``EMPTY <n>``, ``ERR <n>``,
    ``WAIT <n>``, ``IDLE <n>``. When the port fails (unplugged), it is closed and reopened
    every ``reopen_every`` seconds until it is back (``hardware/serial_lines.py``).
    """

    def __init__(self, port: str, *, baudrate: int = 9600, reopen_every: float = REOPEN_SECONDS):
        self.port = port
        self._on_event: Callable[[ButtonEvent], None] | None = None
        self.lines = SerialLines(port, self._line, what="button box", baudrate=baudrate, reopen_every=reopen_every,
                                 max_line=256, write_timeout=1)
        self.connected = self.lines.connected

    @property
    def opened(self) -> int:
        """How many times the port was opened: a reconnect shows as 2."""
        return self.lines.opened

    def start(self, on_event: Callable[[ButtonEvent], None]) -> None:
        self._on_event = on_event
        self.lines.start()

    def _line(self, raw: bytes) -> None:
        try:
            event = parse_box_line(raw.decode("ascii", "replace"))
        except ValueError as exc:
            log.warning("button box %s: %s", self.port, exc)
            self.lines.write(b"?\n")
            return
        if event is not None and self._on_event is not None:
            self._on_event(event)

    def show(self, button: str, feedback: str, ticket: str | None = None) -> None:
        self.lines.write(box_command(button, feedback, ticket))

    def close(self) -> None:
        self.lines.stop()


# -- the box: presses over MQTT ------------------------------------------------------------------


@dataclass
class _Pending:
    press: ButtonPress
    button: str
    created: float  # monotonic
    sent: bool = False


class ButtonBox:
    """Turns a face's presses into ``ButtonPress`` messages and the hub's results into LEDs."""

    def __init__(self, face: ButtonFace, *, broker: str | BrokerSettings, site: str, device: str,
                 counters: dict[str, str],
                 root: str = protocol.DEFAULT_ROOT, username: str | None = None, password: str | None = None,
                 ttl: float = PRESS_TTL_SECONDS, result_grace: float = RESULT_GRACE_SECONDS,
                 client_id: str | None = None):
        if not counters:
            raise ValueError("a button box needs at least one button mapped to a counter")
        self.face = face
        self.site = site
        self.device = device
        self.counters = dict(counters)  # button → counter
        self.topics = Topics(site, root)
        self.ttl = ttl
        self.result_grace = result_grace
        self.connected = threading.Event()
        self.results: list[dict[str, Any]] = []  # every result for this box, newest last (for tests and logs)
        self._pending: dict[str, _Pending] = {}
        self._latest: dict[str, str] = {}  # button → its latest press id: only that one drives the LEDs
        self._expired: dict[str, tuple[str, float]] = {}  # press id → (button, when): a late answer still shows
        self._lock = threading.RLock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._seq = 0
        self._prefix = f"{device}-{secrets.token_hex(3)}"
        self._watchdog: threading.Thread | None = None
        client = make_client(settings_for(broker, username, password), client_id=client_id or f"vuoro-button-{device}",
                             name=f"button box {device}", keepalive=10, reconnect=(1, 2),
                             will=Will(self.topics.device_status(device), protocol.offline_will(device, "button")))
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        self.client = client

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> ButtonBox:
        self.client.start()
        self._watchdog = threading.Thread(target=self._watch, name="button-watchdog", daemon=True)
        self._watchdog.start()
        self.face.start(self.on_event)
        return self

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        self.face.close()
        if self.connected.is_set():
            self.client.publish(self.topics.device_status(self.device), self._status(False), qos=1,
                                retain=True).wait_for_publish(2)
        self.client.disconnect()
        self.client.loop_stop()
        if self._watchdog:
            self._watchdog.join(2)

    def _status(self, online: bool) -> bytes:
        return DeviceStatus(self.device, "button", online, detail=None if online else "stopped",
                            at=time.time()).to_payload()

    # -- presses -------------------------------------------------------------------------------

    def on_event(self, event: ButtonEvent) -> str | None:
        """A face reports a press; returns the press id (None for a button with no counter)."""
        counter = self.counters.get(event.button)
        if counter is None:
            log.warning("button %s is not mapped to a counter", event.button)
            return None
        with self._lock:
            self._seq += 1
            press = ButtonPress(f"{self._prefix}-{self._seq:06d}", counter, event.action, self.device, time.time())
            pending = _Pending(press, event.button, time.monotonic())
            self._pending[press.press_id] = pending
            self._latest[event.button] = press.press_id
            self.face.show(event.button, PENDING)
            self._send(pending)
        self._wake.set()
        return press.press_id

    def press(self, button: str, *, long: bool = False) -> str | None:
        """Press a button in software (the CLI's --press, tests)."""
        return self.on_event(ButtonEvent(button, long))

    def _send(self, pending: _Pending) -> None:
        # Only hand a press to paho while connected: paho would otherwise queue it and
        # deliver it whenever the broker is back, however late.
        if pending.sent or not self.client.is_connected():
            return
        info = self.client.publish(self.topics.button_press(pending.press.counter), pending.press.to_payload(), qos=1)
        if info.rc == mqtt.MQTT_ERR_SUCCESS:
            pending.sent = True

    def _watch(self) -> None:
        while not self._stop.is_set():
            now = time.monotonic()
            failed: list[_Pending] = []
            with self._lock:
                for press_id, pending in list(self._pending.items()):
                    age = now - pending.created
                    if (not pending.sent and age >= self.ttl) or age >= self.ttl + self.result_grace:
                        del self._pending[press_id]
                        self._expired[press_id] = (pending.button, now)
                        failed.append(pending)
                for press_id, (_, when) in list(self._expired.items()):
                    if now - when > 60:
                        del self._expired[press_id]
                for pending in failed:
                    log.warning("press %s (%s at %s) got no answer in %.0f s%s", pending.press.press_id,
                                pending.press.action, pending.press.counter, self.ttl,
                                "" if pending.sent else "; the broker was away, so it was never sent")
                    if self._latest.get(pending.button) == pending.press.press_id:
                        self.face.show(pending.button, FAILED)
                deadlines = [p.created + (self.ttl if not p.sent else self.ttl + self.result_grace)
                             for p in self._pending.values()]
            self._wake.clear()
            wait = max(0.01, min(deadlines) - time.monotonic()) if deadlines else 1.0
            self._wake.wait(wait)

    # -- MQTT callbacks (paho's thread) ------------------------------------------------------------

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        if reason.is_failure:
            log.warning("broker refused button box %s: %s", self.device, reason)
            return
        client.subscribe([(self.topics.button_result(c), 1) for c in sorted(set(self.counters.values()))])
        client.publish(self.topics.device_status(self.device), self._status(True), qos=1, retain=True)
        self.connected.set()
        log.info("button box %s connected to %s", self.device, self.client.address)
        with self._lock:
            now = time.monotonic()
            for pending in self._pending.values():
                if not pending.sent and now - pending.created < self.ttl:
                    self._send(pending)  # held while the broker was away, still fresh: send now
        self._wake.set()

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        self.connected.clear()
        log.warning("button box %s lost the broker (%s); reconnecting", self.device, reason)

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        try:
            body = protocol.decode(message.payload)
        except protocol.PayloadError as exc:
            log.warning("dropped a result on %s: %s", message.topic, exc)
            return
        press_id = body.get("press_id")
        if not isinstance(press_id, str):
            return
        with self._lock:
            pending = self._pending.pop(press_id, None)
            if pending is not None:
                button = pending.button
            elif press_id in self._expired:
                button = self._expired.pop(press_id)[0]  # late, but the truth: show it
            else:
                return  # another box's press, or long forgotten
            self.results.append(body)
            ok = bool(body.get("ok"))
            reason = body.get("reason") or ""
            feedback = SERVING if ok else (EMPTY if reason == "No one is waiting" else FAILED)
            if self._latest.get(button) == press_id:
                ticket = body.get("ticket") if isinstance(body.get("ticket"), str) else None
                self.face.show(button, feedback, ticket)
        log.info("press %s: %s", press_id, json.dumps(body, ensure_ascii=False))

