"""``vuoro button --config button.toml``: run a staff button box on a Pi.

The config (every key is checked; all mistakes are listed at once)::

    device = "buttons1"                 # the box's id in the site config ([devices.buttons1], kind "button")
    site = "sonderbro"
    root = "vuoro"                      # optional, the topic root
    broker = "mqtt://hub.local:1883"
    username = "buttons1"               # optional, default: the device id (deploy/mosquitto_acl.py)
    password_file = "/etc/vuoro/button.token"   # or password = "...", or $VUORO_MQTT_PASSWORD
    broker_ca = "/etc/vuoro/vuoro-ca.crt"       # optional: an mqtts:// broker's CA (broker_cert, broker_key: a
                                                # client certificate, if the broker asks for one)
    kind = "gpio"                       # or "serial"
    long_press_s = 1.5                  # hold this long to call again
    bounce_ms = 40                      # GPIO debounce

    [serial]                            # kind = "serial"
    port = "/dev/vuoro-buttons"         # a udev name survives unplugging; pyserial URLs work too
    baudrate = 9600

    [buttons.1]
    counter = "kvik1"
    pin = 17                            # kind = "gpio": the button, wired to ground
    serving_led = 22                    # optional LEDs
    empty_led = 23
    failed_led = 24

``--check`` only checks the file; ``--press 1`` (or ``--long-press 1``) sends one
press and prints the hub's answer, to test a box's setup without touching it.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vuoro import sd_notify
from vuoro.cli import configure_logging
from vuoro.config_checks import number_problem, unknown_keys
from vuoro.mqtt import BrokerSettings, broker_settings
from vuoro.protocol import ID_PATTERN, PRESS_TTL_SECONDS

KINDS = ("gpio", "serial")


class ButtonConfigError(Exception):
    def __init__(self, problems: list[str], source: str):
        self.problems = problems
        super().__init__(f"{source} has {len(problems)} problem(s):\n" + "\n".join(f"  - {p}" for p in problems))


@dataclass(frozen=True)
class ButtonSpec:
    counter: str
    pin: int | str | None = None
    serving_led: int | str | None = None
    empty_led: int | str | None = None
    failed_led: int | str | None = None


@dataclass(frozen=True)
class ButtonConfig:
    device: str
    site: str
    broker: str
    kind: str
    buttons: dict[str, ButtonSpec]
    root: str = "vuoro"
    username: str | None = None
    password: str | None = None
    long_press_s: float = 1.5
    bounce_ms: float = 40
    serial_port: str | None = None
    baudrate: int = 9600
    broker_ca: str | None = None
    broker_cert: str | None = None
    broker_key: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def mqtt_settings(self) -> BrokerSettings:
        return broker_settings(self.broker, username=self.username, password=self.password, ca_file=self.broker_ca,
                               cert_file=self.broker_cert, key_file=self.broker_key)


def parse_button_config(data: dict[str, Any], source: str = "button config") -> ButtonConfig:
    problems: list[str] = []
    allowed = {"device", "site", "root", "broker", "username", "password", "password_file", "kind",
               "long_press_s", "bounce_ms", "serial", "buttons", "broker_ca", "broker_cert", "broker_key"}
    problems += unknown_keys(data, allowed)

    def ident(key: str, default: str | None = None) -> str:
        value = data.get(key, default)
        if not isinstance(value, str) or not ID_PATTERN.match(value):
            problems.append(f"{key}: expected an id of lower-case letters, digits, '-' or '_', got {value!r}")
            return default or ""
        return value

    device = ident("device")
    site = ident("site")
    root = ident("root", "vuoro")
    broker = data.get("broker", "mqtt://127.0.0.1:1883")
    tls_files = {key: data.get(key) for key in ("broker_ca", "broker_cert", "broker_key")}
    for key, value in tls_files.items():
        if value is not None and (not isinstance(value, str) or not value):
            problems.append(f"{key}: expected the path of a PEM file, got {value!r}")
            tls_files[key] = None
    if not isinstance(broker, str):
        problems.append(f"broker: expected mqtt://host:port, got {broker!r}")
        broker = ""
    else:
        problems += BrokerSettings(broker, ca_file=tls_files["broker_ca"], cert_file=tls_files["broker_cert"],
                                   key_file=tls_files["broker_key"]).problems(
            {"url": "broker", "ca_file": "broker_ca", "cert_file": "broker_cert", "key_file": "broker_key"})
    kind = data.get("kind", "gpio")
    if kind not in KINDS:
        problems.append(f"kind: expected \"gpio\" or \"serial\", got {kind!r}")

    def number(key: str, default: float, low: float, high: float) -> float:
        value = data.get(key, default)
        problem = number_problem(key, value, low, high)
        if problem:
            problems.append(problem)
            return default
        return float(value)

    long_press = number("long_press_s", 1.5, 0.3, 10)
    bounce = number("bounce_ms", 40, 0, 500)
    password = data.get("password")
    if "password_file" in data:
        try:
            password = Path(str(data["password_file"])).read_text(encoding="utf-8").strip()
        except OSError as exc:
            problems.append(f"password_file: cannot read {data['password_file']!r} ({exc.strerror})")
    password = password or os.environ.get("VUORO_MQTT_PASSWORD") or None
    username = data.get("username", device if password else None)

    serial = data.get("serial", {})
    port, baudrate = None, 9600
    if not isinstance(serial, dict):
        problems.append("serial: expected a table with port and baudrate")
        serial = {}
    problems += unknown_keys(serial, ("baudrate", "port"), "serial.")
    if kind == "serial":
        port = serial.get("port")
        if not isinstance(port, str) or not port:
            problems.append(f"serial.port: expected a device such as \"/dev/ttyACM0\", got {port!r}")
        baudrate = serial.get("baudrate", 9600)
        problem = number_problem("serial.baudrate", baudrate, 300, 1_000_000, whole=True, why="such as 9600")
        if problem:
            problems.append(problem)
            baudrate = 9600

    buttons: dict[str, ButtonSpec] = {}
    table = data.get("buttons")
    if not isinstance(table, dict) or not table:
        problems.append("buttons: expected at least one [buttons.<n>] table with a counter")
        table = {}
    pin_keys = ("pin", "serving_led", "empty_led", "failed_led")
    for name, item in table.items():
        path = f"buttons.{name}"
        if kind == "serial" and not (name.isdigit() and 0 < int(name) < 100):
            problems.append(f"{path}: a serial box numbers its buttons 1–99")
            continue
        if not isinstance(item, dict):
            problems.append(f"{path}: expected a table with counter (and pin for GPIO)")
            continue
        problems += unknown_keys(item, ("counter", *pin_keys), f"{path}.")
        counter = item.get("counter")
        if not isinstance(counter, str) or not ID_PATTERN.match(counter):
            problems.append(f"{path}.counter: expected a counter id such as \"kvik1\", got {counter!r}")
            continue
        pins = {}
        for key in pin_keys:
            value = item.get(key)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int | str)):
                problems.append(f"{path}.{key}: expected a GPIO number or pin name, got {value!r}")
            pins[key] = value
        if kind == "gpio" and pins["pin"] is None:
            problems.append(f"{path}.pin: a GPIO button needs its pin (e.g. 17)")
        buttons[str(int(name)) if name.isdigit() else name] = ButtonSpec(counter, **pins)
    if problems:
        raise ButtonConfigError(problems, source)
    return ButtonConfig(device=device, site=site, broker=broker, kind=kind, buttons=buttons, root=root,
                        username=username, password=password, long_press_s=long_press, bounce_ms=bounce,
                        serial_port=port, baudrate=baudrate, **tls_files)


def load_button_config(path: str | Path) -> ButtonConfig:
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ButtonConfigError([f"cannot read the file: {exc.strerror}"], str(path)) from None
    except tomllib.TOMLDecodeError as exc:
        raise ButtonConfigError([f"not valid TOML: {exc}"], str(path)) from None
    return parse_button_config(data, str(path))


def build_face(config: ButtonConfig) -> Any:
    from hardware.buttons import GpioButtonBox, GpioPins, SerialButtonBox

    if config.kind == "serial":
        assert config.serial_port is not None
        return SerialButtonBox(config.serial_port, baudrate=config.baudrate)
    pins = {name: GpioPins(spec.pin, spec.serving_led, spec.empty_led, spec.failed_led)  # type: ignore[arg-type]
            for name, spec in config.buttons.items()}
    return GpioButtonBox(pins, long_press=config.long_press_s, bounce_time=config.bounce_ms / 1000)


def build_box(config: ButtonConfig, face: Any | None = None, **options: Any) -> Any:
    from hardware.buttons import ButtonBox

    return ButtonBox(face if face is not None else build_face(config), broker=config.mqtt_settings(),
                     site=config.site, device=config.device, counters={n: s.counter for n, s in config.buttons.items()},
                     root=config.root, **options)


class _NoFace:
    """For --press: no hardware, just print what the LEDs would show."""

    def __init__(self) -> None:
        self.done = threading.Event()
        self.last: tuple[str, str | None] | None = None

    def start(self, on_event: Any) -> None:
        pass

    def show(self, button: str, feedback: str, ticket: str | None = None) -> None:
        if feedback != "pending":
            self.last = (feedback, ticket)
            self.done.set()

    def close(self) -> None:
        pass


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="vuoro button", description="Run a staff button box (GPIO or USB serial).")
    parser.add_argument("--config", required=True, help="the box's TOML file")
    parser.add_argument("--check", action="store_true", help="only check the config and exit")
    parser.add_argument("--press", metavar="N", help="send one press of button N, print the answer, exit")
    parser.add_argument("--long-press", metavar="N", help="send one long press (call again) of button N, exit")
    parser.add_argument("--log-level", default="info")
    args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    configure_logging(args.log_level)
    try:
        config = load_button_config(args.config)
    except ButtonConfigError as exc:
        print(f"vuoro button: refusing to start.\n{exc}", file=sys.stderr)
        return 2
    if args.check:
        print(f"{args.config}: ok ({config.kind}, {len(config.buttons)} button(s) for "
              f"{', '.join(sorted({b.counter for b in config.buttons.values()}))})")
        return 0

    button = args.press or args.long_press
    if button:
        face = _NoFace()
        box = build_box(config, face, client_id=f"vuoro-button-{config.device}-cli")
        box.start()
        box.connected.wait(PRESS_TTL_SECONDS)
        box.press(button, long=bool(args.long_press))
        face.done.wait(PRESS_TTL_SECONDS + 2)
        box.stop()
        feedback, ticket = face.last or ("failed", None)
        print(f"button {button}: {feedback}" + (f" ({ticket})" if ticket else ""))
        return 0 if feedback in ("serving", "empty") else 1

    try:
        box = build_box(config)
    except Exception as exc:  # gpiozero without pins (BadPinFactory), a pin in use, ...
        print(f"vuoro button: cannot open the box's hardware: {exc}", file=sys.stderr)
        return 3
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    box.start()
    print(f"button box {config.device} ({config.kind}) for site {config.site} on {config.broker}", flush=True)
    run_until(stop, box)
    sd_notify.stopping()
    box.stop()
    return 0


def run_until(stop: threading.Event, box: Any) -> None:
    """The box's main loop: READY=1 to systemd once connected to the broker, WATCHDOG=1 every interval.

    The pings come from this loop (the main thread), not a helper thread, so a hung main loop stops
    them and systemd restarts the box. Outside systemd both are no-ops.
    """
    interval = sd_notify.watchdog_interval() or 10.0
    ready = False
    next_ping = 0.0
    while not stop.is_set():
        if not ready and box.connected.is_set():
            ready = sd_notify.ready(f"button box {box.device} connected") or True
        now = time.monotonic()
        if now >= next_ping:
            sd_notify.watchdog()
            next_ping = now + interval
        # Until connected, look often (READY=1 soon after the broker answers); then sleep to the next ping.
        stop.wait(min(0.1 if not ready else interval, max(0.0, next_ping - time.monotonic())))


if __name__ == "__main__":
    sys.exit(main())
