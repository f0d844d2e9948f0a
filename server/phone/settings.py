"""The ``[phone]`` section: tickets from a visitor's phone (docs/phone.md).

Every key is checked with its key path, as the core config does; ``vuoro hub --check`` runs it first.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from server.config import ConfigError, SiteConfig, check_number, check_unknown_keys

POSTER_KINDS = ("screen", "daily")


@dataclass(frozen=True)
class PhoneSettings:
    enabled: bool = True
    code_every_s: int = 60  # how often the door code on the screens changes
    poster: str = "screen"  # screen: the poster sends people to the code on a screen; daily: it carries today's
    tickets_burst: int = 3  # tickets one address may take at once ...
    tickets_per_hour: int = 12  # ... and then this many an hour


def parse_settings(config: SiteConfig) -> PhoneSettings:
    raw = config.raw.get("phone", {})
    problems: list[str] = []
    if not isinstance(raw, dict):
        raise ConfigError([f"phone: expected a table, got {raw!r}"], str(config.path))
    check_unknown_keys(raw, {"enabled", "code_every_s", "poster", "tickets_burst", "tickets_per_hour"}, "phone",
                       problems)
    enabled: Any = raw.get("enabled", True)
    if not isinstance(enabled, bool):
        problems.append(f"phone.enabled: expected true or false, got {enabled!r}")
        enabled = True
    poster = raw.get("poster", "screen")
    if poster not in POSTER_KINDS:
        problems.append(f"phone.poster: expected {' or '.join(repr(k) for k in POSTER_KINDS)}, got {poster!r}")
        poster = "screen"
    settings = PhoneSettings(
        enabled=enabled,
        code_every_s=int(check_number(raw, "code_every_s", "phone", 60, 15, 3600, problems, whole=True)),
        poster=poster,
        tickets_burst=int(check_number(raw, "tickets_burst", "phone", 3, 1, 100, problems, whole=True)),
        tickets_per_hour=int(check_number(raw, "tickets_per_hour", "phone", 12, 1, 3600, problems, whole=True)),
    )
    if problems:
        raise ConfigError(problems, str(config.path))
    return settings
