"""Per-screen settings: command line, optionally on top of a TOML file.

A screen's file (e.g. ``/etc/vuoro/display.toml``) holds a ``[display]``
table with the same names as the options; options given on the command line
win, so a kiosk image can carry one file and a systemd unit can still
override one value.
"""

from __future__ import annotations

import argparse
import tomllib
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from vuoro.config_checks import number_problem, unknown_keys
from vuoro.i18n import LANGUAGES
from vuoro.mqtt import BrokerSettings, broker_settings
from vuoro.protocol import DEFAULT_ROOT, ID_PATTERN

from .state import ANNOUNCE_MAX_AGE_S

ORIENTATIONS = {"landscape": (1920, 1080), "portrait": (1080, 1920)}


@dataclass
class DisplayConfig:
    broker: str = "mqtt://127.0.0.1:1883"
    site: str = ""
    root: str = DEFAULT_ROOT
    services: tuple[str, ...] = ()  # empty: every service of the site
    counters: tuple[str, ...] = ()  # empty: calls to every counter
    lang: str = "da"
    orientation: str = "landscape"
    sound: bool = True
    player: str = "auto"  # auto, aplay, paplay, play, none
    device: str | None = None
    fullscreen: bool = True
    window: tuple[int, int] | None = None  # a window of this size instead of full screen
    rotation: int = 0  # turn the picture on a panel mounted the other way (0, 90, 180, 270)
    recent: int = 6
    highlight_seconds: float = 8.0
    alternate: float = 12.0  # seconds each of the site's languages shows the fixed texts (0: only --lang)
    announce_max_age: float = ANNOUNCE_MAX_AGE_S  # seconds: an older call is shown but not spoken
    username: str | None = None
    password: str | None = None
    broker_ca: str | None = None  # an mqtts:// broker: its CA, and a client certificate if it asks for one
    broker_cert: str | None = None
    broker_key: str | None = None
    door: bool = False  # a screen by the entrance: the QR for a ticket on the phone (needs the hub's public_url)
    smoke: bool = False  # start, draw the full state once, print timings (JSON) and exit

    def check(self) -> DisplayConfig:
        if not ID_PATTERN.match(self.site or ""):
            raise ValueError("--site must be a site id such as 'sonderbro'")
        for name in (*self.services, *self.counters, *([self.device] if self.device else [])):
            if not ID_PATTERN.match(name):
                raise ValueError(f"{name!r} is not a valid id")
        if self.lang not in LANGUAGES:
            raise ValueError(f"--lang must be one of {', '.join(LANGUAGES)}")
        if self.orientation not in ORIENTATIONS:
            raise ValueError("--orientation must be landscape or portrait")
        if self.rotation not in (0, 90, 180, 270):
            raise ValueError("--rotation must be 0, 90, 180 or 270")
        problems = [problem for problem in (
            number_problem("announce_max_age", self.announce_max_age, 0.1, 3600, why="seconds"),
            number_problem("recent", self.recent, 1, 20, whole=True, why="calls on screen"),
            number_problem("alternate", self.alternate, 0, 3600, why="seconds per language (0: never)"),
            number_problem("highlight_seconds", self.highlight_seconds, 0, 60),
        ) if problem]
        problems += self.mqtt_settings().problems({"url": "broker", "ca_file": "broker_ca", "cert_file": "broker_cert",
                                                   "key_file": "broker_key"})
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def mqtt_settings(self) -> BrokerSettings:
        return broker_settings(self.broker, username=self.username, password=self.password, ca_file=self.broker_ca,
                               cert_file=self.broker_cert, key_file=self.broker_key)

    @property
    def size(self) -> tuple[int, int]:
        return self.window or ORIENTATIONS[self.orientation]


def _ids(text: str | list[str] | None) -> tuple[str, ...]:
    if not text:
        return ()
    items = text.split(",") if isinstance(text, str) else text
    return tuple(i.strip() for i in items if i.strip())


def _size(text: str) -> tuple[int, int]:
    width, _, height = text.lower().partition("x")
    return int(width), int(height)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="vuoro display", description="Run a signage screen.")
    p.add_argument("--config", type=Path, help="TOML file with a [display] table (options below override it)")
    p.add_argument("--broker", help="mqtt://host:port or mqtts://host:port (default mqtt://127.0.0.1:1883)")
    p.add_argument("--broker-ca", help="CA file for an mqtts:// broker (default: the system's CAs)")
    p.add_argument("--site", help="site id, e.g. sonderbro")
    p.add_argument("--root", help=f"topic root (default {DEFAULT_ROOT})")
    p.add_argument("--services", help="comma-separated service ids to show (default: all)")
    p.add_argument("--counters", help="comma-separated counter ids whose calls to show (default: all)")
    p.add_argument("--lang", choices=LANGUAGES)
    p.add_argument("--orientation", choices=tuple(ORIENTATIONS))
    p.add_argument("--sound", action=argparse.BooleanOptionalAction, default=None, help="announce calls")
    p.add_argument("--player", choices=("auto", "aplay", "paplay", "play", "none"))
    p.add_argument("--device", help="this screen's device id, for its presence topic (e.g. screen1)")
    p.add_argument("--window", type=_size, help="run in a WxH window instead of full screen")
    p.add_argument("--rotation", type=int, choices=(0, 90, 180, 270))
    p.add_argument("--recent", type=int, help="how many calls to keep on screen")
    p.add_argument("--alternate", type=float, metavar="SECONDS",
                   help="headings take turns in the site's languages, this long each (default 12; 0: --lang only)")
    p.add_argument("--announce-max-age", type=float, metavar="SECONDS",
                   help=f"speak only calls this fresh; older ones are only shown (default {ANNOUNCE_MAX_AGE_S:g})")
    p.add_argument("--door", action="store_true", default=None,
                   help="a screen by the entrance: show the QR for a ticket on the phone (docs/phone.md)")
    p.add_argument("--username")
    p.add_argument("--password")
    p.add_argument("--smoke", action="store_true", default=None,
                   help="draw until the full state is shown, print start-up timings as JSON, exit (benchmarks)")
    return p


def load(argv: list[str]) -> DisplayConfig:
    args = parser().parse_args(argv)
    values: dict[str, Any] = {}
    if args.config:
        table = tomllib.loads(args.config.read_text(encoding="utf-8")).get("display", {})
        unknown = unknown_keys(table, (f.name for f in fields(DisplayConfig)), "display.")
        if unknown:
            raise ValueError(f"{args.config}: " + "; ".join(unknown))
        values.update(table)
    for name, value in vars(args).items():
        if name != "config" and value is not None:
            values[name] = value
    values["services"] = _ids(values.get("services"))
    values["counters"] = _ids(values.get("counters"))
    if isinstance(values.get("window"), str):
        values["window"] = _size(values["window"])
    if values.get("window"):
        values["fullscreen"] = False
    return DisplayConfig(**values).check()
