"""The ``[events]`` section: the feeds to read and how often, the horizon, waiting lists.

``parse_settings`` reports every problem with its key path, as the core config does
(``server/config.py``); ``vuoro hub --check`` runs it before the hub starts.
"""

from __future__ import annotations

from dataclasses import dataclass

from server.config import ConfigError, SiteConfig, check_number, check_tables, check_unknown_keys

FEED_KINDS = ("ics", "dpl")


@dataclass(frozen=True)
class Feed:
    name: str
    url: str
    kind: str  # ics | dpl
    room: str | None = None  # for events without a location


@dataclass(frozen=True)
class EventSettings:
    feeds: tuple[Feed, ...] = ()
    refresh_min: float = 30.0
    timeout_s: float = 10.0
    horizon_days: int = 31
    waiting_list: int = 10  # default waiting-list length of a staff event with seats
    upcoming: int = 12  # events after today published with today's


def parse_settings(config: SiteConfig) -> EventSettings:
    raw = config.raw.get("events", {})
    problems: list[str] = []
    if not isinstance(raw, dict):
        raise ConfigError([f"events: expected a table, got {raw!r}"], str(config.path))
    check_unknown_keys(raw, {"feeds", "refresh_min", "timeout_s", "horizon_days", "waiting_list", "upcoming"},
                       "events", problems)

    def number(key: str, default: float, low: float, high: float) -> float:
        return check_number(raw, key, "events", default, low, high, problems)

    feeds: list[Feed] = []
    names: set[str] = set()
    for path, item in check_tables(raw.get("feeds", []), "events.feeds", {"name", "url", "kind", "room"}, problems,
                                   listed="feed tables", one="{name, url, kind}"):
        name, url, kind = item.get("name"), item.get("url"), item.get("kind", "ics")
        if not isinstance(name, str) or not name.replace("-", "").replace("_", "").isalnum() or name in names:
            problems.append(f"{path}.name: expected a unique name of letters, digits, '-' or '_', got {name!r}")
            continue
        names.add(name)
        if not isinstance(url, str) or not url.startswith(("http://", "https://", "file://")):
            problems.append(f"{path}.url: expected an http(s) address, got {url!r}")
            continue
        if kind not in FEED_KINDS:
            problems.append(f"{path}.kind: expected ics or dpl, got {kind!r}")
            continue
        room = item.get("room")
        if room is not None and not isinstance(room, str):
            problems.append(f"{path}.room: expected a string, got {room!r}")
            room = None
        feeds.append(Feed(name, url, kind, room))
    settings = EventSettings(
        feeds=tuple(feeds),
        refresh_min=number("refresh_min", 30, 1, 1440),
        timeout_s=number("timeout_s", 10, 0.1, 120),
        horizon_days=int(number("horizon_days", 31, 1, 366)),
        waiting_list=int(number("waiting_list", 10, 0, 1000)),
        upcoming=int(number("upcoming", 12, 0, 100)),
    )
    if problems:
        raise ConfigError(problems, str(config.path))
    return settings
