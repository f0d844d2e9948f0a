"""The kiosk's settings: a ``kiosk.toml`` file, with command-line overrides.

The file has one ``[kiosk]`` table whose keys have the same names as the
options (``hub``, ``device``, ``token``, ``broker``, ``site``, ``printer``,
``language``, ``idle_timeout``, ``text_scale``, ``size``, ``fullscreen``,
``scanner``, ``events``), plus the TLS files: ``hub_ca`` (the CA of an
``https://`` hub's certificate) and ``broker_ca``, ``broker_cert``,
``broker_key`` (for an ``mqtts://`` broker). Options on the command line win, so one image can
carry one file and a systemd unit can still change one value.
"""

from __future__ import annotations

import argparse
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from vuoro.config_checks import number_problem
from vuoro.i18n import LANGUAGES
from vuoro.mqtt import BrokerSettings, broker_settings
from vuoro.protocol import DEFAULT_ROOT, ID_PATTERN

TEXT_SCALES = (1.0, 1.25, 1.5, 2.0)  # what the A+ button cycles through
LAYOUTS = ("standard", "low")  # low: every control in the lower half of a portrait panel (EN 301 549 8.3.2)
PALETTES = ("standard", "high_contrast")


@dataclass(frozen=True)
class KioskConfig:
    hub: str = "http://127.0.0.1:8080"
    device: str = "kiosk1"
    token: str = ""
    broker: str | None = "mqtt://127.0.0.1:1883"  # None or "": no MQTT (the kiosk still works over HTTP)
    site: str = ""  # empty: taken from the hub's GET /site
    root: str = DEFAULT_ROOT
    printer: str | None = None  # a hardware printer URL (tcp://, serial://, usb://, file://, cups://, memory://)
    language: str = "da"
    languages: tuple[str, ...] = LANGUAGES  # the buttons shown, in this order
    idle_timeout: float = 45.0  # seconds without a touch → home screen; another period → default language
    idle_warning: float = 15.0  # seconds before that, "Are you still there?" with "More time"
    text_scale: float = 1.0
    size: tuple[int, int] | None = None  # a window of this size; None: the screen's own
    fullscreen: bool = True
    scanner: str | None = None  # a pyserial URL: /dev/ttyACM0, loop://, ...; keyboard-wedge scanners need none
    scanner_baudrate: int = 9600
    http_timeout: float = 3.0
    retries: int = 2  # extra attempts after a timeout, with the same Idempotency-Key
    refresh_seconds: float = 30.0  # GET /site while MQTT is not delivering queue states
    probe_seconds: float = 3.0  # health probe while the hub is down
    dpi: float = 133.0  # the panel's: 7" 800x480 ≈ 133 dpi; touch targets are sized in mm from it
    hub_ca: str | None = None  # an https:// hub: the CA that signed its certificate (default: the system's CAs)
    broker_ca: str | None = None  # an mqtts:// broker: its CA, and a client certificate if it asks for one
    broker_cert: str | None = None
    broker_key: str | None = None
    # Speech mode (kiosk/voice.py): the player ("auto", "aplay", "paplay", "play", "none") and ALSA device,
    # how much longer a speech-mode visitor may take, and whether the screen starts blanked (privacy).
    speech: str = "auto"
    speech_device: str | None = None  # e.g. "plughw:CARD=Headphones" (Pi 4 jack), "plughw:CARD=Device" (USB)
    speech_time_factor: float = 3.0
    speech_blank: bool = False
    headset_card: str | None = None  # a sound card's name: when it appears (USB headset plugged in), speech starts
    sound_cards: str = "/proc/asound/cards"
    layout: str = "standard"
    palette: str = "standard"
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    def mqtt_settings(self) -> BrokerSettings:
        """The broker knows a kiosk by its device id and token (deploy/mosquitto_acl.py)."""
        return broker_settings(self.broker or "", username=self.device, password=self.token, ca_file=self.broker_ca,
                               cert_file=self.broker_cert, key_file=self.broker_key)

    def check(self) -> KioskConfig:
        problems = []
        if not self.hub.startswith(("http://", "https://")):
            problems.append(f"hub: expected http://HOST:PORT or https://HOST:PORT, got {self.hub!r}")
        if self.hub_ca and not Path(self.hub_ca).is_file():
            problems.append(f"hub_ca: {self.hub_ca} is not a file")
        if self.broker:
            problems += self.mqtt_settings().problems({"url": "broker", "ca_file": "broker_ca",
                                                       "cert_file": "broker_cert", "key_file": "broker_key"})
        if not ID_PATTERN.match(self.device):
            problems.append(f"device: {self.device!r} is not a valid id (a-z, 0-9, - and _)")
        if self.site and not ID_PATTERN.match(self.site):
            problems.append(f"site: {self.site!r} is not a valid id")
        if self.language not in LANGUAGES:
            problems.append(f"language: expected one of {', '.join(LANGUAGES)}, got {self.language!r}")
        if self.layout not in LAYOUTS:
            problems.append(f"layout: expected one of {', '.join(LAYOUTS)}, got {self.layout!r}")
        if self.palette not in PALETTES:
            problems.append(f"palette: expected one of {', '.join(PALETTES)}, got {self.palette!r}")
        if self.speech not in ("auto", "aplay", "paplay", "play", "none"):
            problems.append(f"speech: expected auto, aplay, paplay, play or none, got {self.speech!r}")
        bad = [lang for lang in self.languages if lang not in LANGUAGES]
        if bad or not self.languages:
            problems.append(f"languages: expected some of {', '.join(LANGUAGES)}, got {list(self.languages)}")
        problems += [problem for problem in (
            number_problem("idle_timeout", self.idle_timeout, 5, 3600,
                           why="seconds; less and visitors lose their screen while reading"),
            number_problem("text_scale", self.text_scale, 0.5, 3),
            number_problem("idle_warning", self.idle_warning, 0, 120, why="seconds of warning before the reset"),
            number_problem("speech_time_factor", self.speech_time_factor, 1, 10),
            number_problem("http_timeout", self.http_timeout, 0.1, 60, why="seconds"),
            number_problem("refresh_seconds", self.refresh_seconds, 1, 3600),
            number_problem("probe_seconds", self.probe_seconds, 0.5, 600),
            number_problem("dpi", self.dpi, 50, 600, why="the panel's dots per inch"),
        ) if problem]
        if self.printer:
            problems += printer_problems(self.printer, self.languages)
        if problems:
            raise ValueError("kiosk config has problems:\n" + "\n".join(f"  - {p}" for p in problems))
        return self

    @property
    def mm(self) -> float:
        """Pixels per millimetre on this panel."""
        return self.dpi / 25.4


def printer_problems(url: str, languages: tuple[str, ...]) -> list[str]:
    """The printer URL's code page must print the kiosk's languages: said when the kiosk starts, not as "?"
    on the first Danish receipt."""
    from hardware.connections import split_url
    from hardware.layout import DEFAULT_CODEPAGE, codepage_problem

    try:
        _, query = split_url(url)
    except ValueError as exc:
        return [f"printer: {exc}"]
    problem = codepage_problem(query.get("codepage", DEFAULT_CODEPAGE).upper(), languages)
    return [f"printer: {problem}"] if problem else []


def parse_size(text: str) -> tuple[int, int]:
    width, _, height = text.lower().partition("x")
    try:
        size = int(width), int(height)
    except ValueError:
        raise ValueError(f"size: expected WIDTHxHEIGHT such as 800x480, got {text!r}") from None
    if min(size) < 200:
        raise ValueError(f"size: {text!r} is too small for a kiosk")
    return size


def from_mapping(values: dict[str, Any], base: KioskConfig | None = None) -> KioskConfig:
    known = {f.name for f in fields(KioskConfig)} - {"extra"}
    clean: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    for key, value in values.items():
        if key not in known:
            extra[key] = value  # unknown keys are kept, not fatal: a newer file on an older kiosk
            continue
        if key == "size" and isinstance(value, str):
            value = parse_size(value)
        elif key in ("languages",) and isinstance(value, list):
            value = tuple(value)
        elif key in ("idle_timeout", "idle_warning", "speech_time_factor", "text_scale", "http_timeout",
                     "refresh_seconds", "probe_seconds", "dpi") \
                and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)  # anything else is left for check() to name
        clean[key] = value
    config = replace(base or KioskConfig(), **clean)
    return replace(config, extra=extra) if extra else config


def load_file(path: Path) -> KioskConfig:
    with open(path, "rb") as fh:
        data = tomllib.load(fh)
    table = data.get("kiosk", data)
    if not isinstance(table, dict):
        raise ValueError(f"{path}: expected a [kiosk] table")
    return from_mapping(table)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="vuoro kiosk", description="Run the touchscreen kiosk.")
    p.add_argument("--config", help="kiosk.toml with a [kiosk] table")
    p.add_argument("--hub", help="the hub's URL, e.g. http://10.0.0.2:8080")
    p.add_argument("--device", help="this kiosk's device id (as in the site config)")
    p.add_argument("--token", help="this kiosk's bearer token")
    p.add_argument("--broker", help="mqtt://HOST:PORT or mqtts://HOST:PORT, or 'none'")
    p.add_argument("--hub-ca", help="CA file for an https:// hub")
    p.add_argument("--broker-ca", help="CA file for an mqtts:// broker")
    p.add_argument("--site", help="the site id (default: asked from the hub)")
    p.add_argument("--printer", help="printer URL, e.g. tcp://10.0.0.40:9100 or usb://04b8:0e15, or 'none'")
    p.add_argument("--scanner", help="serial barcode scanner, e.g. /dev/ttyACM0 (a pyserial URL)")
    p.add_argument("--language", choices=LANGUAGES, help="the default language")
    p.add_argument("--idle-timeout", type=float, help="seconds before returning to the home screen")
    p.add_argument("--text-scale", type=float, help="1.0 normal; 1.25 or 1.5 larger")
    p.add_argument("--size", help="window size WIDTHxHEIGHT, e.g. 800x480 or 1080x1920")
    p.add_argument("--fullscreen", action=argparse.BooleanOptionalAction, default=None)
    p.add_argument("--dpi", type=float, help="the panel's dots per inch (touch targets are sized in mm)")
    p.add_argument("--layout", choices=LAYOUTS, help="low: every control in the lower half of a portrait panel")
    p.add_argument("--palette", choices=PALETTES, help="high_contrast: black page, every text pair at least 7:1")
    p.add_argument("--speech-device", help="ALSA device for speech mode, e.g. vuoro_speech (deploy/alsa)")
    return p


def load(argv: list[str]) -> KioskConfig:
    args = parser().parse_args(argv)
    config = load_file(Path(args.config)) if args.config else KioskConfig()
    overrides: dict[str, Any] = {}
    for name in ("hub", "device", "token", "site", "language", "idle_timeout", "text_scale", "fullscreen", "dpi",
                 "scanner", "hub_ca", "broker_ca", "layout", "palette", "speech_device"):
        value = getattr(args, name)
        if value is not None:
            overrides[name] = value
    for name in ("broker", "printer"):
        value = getattr(args, name)
        if value is not None:
            overrides[name] = None if value.lower() == "none" else value
    if args.size:
        overrides["size"] = parse_size(args.size)
        if args.fullscreen is None:
            overrides["fullscreen"] = False  # asking for a size means a window of that size
    return from_mapping(overrides, config).check()
