"""Checks shared by the devices' own config files (kiosk, screen, button box): one wording for each rule.

A device's file is checked when it starts and every problem is listed at once, in words that name
the key to fix. The hub's site config has its own checker (``server/config.py``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


def unknown_keys(table: Iterable[str], allowed: Iterable[str], prefix: str = "") -> list[str]:
    """One problem per key that is not allowed (a typo, or a key of a newer version), naming the allowed ones."""
    allowed = sorted(allowed)
    return [f"{prefix}{key}: unknown key (allowed: {', '.join(allowed)})" for key in sorted(set(table) - set(allowed))]


def number_problem(key: str, value: Any, low: float, high: float, *, whole: bool = False,
                   why: str = "") -> str | None:
    """What is wrong with a number from a config (None when nothing is): it must be a number, not
    true/false or text (a whole one where ``whole``), from ``low`` to ``high``. ``why`` says what a
    value out of range would do, for the person who set it."""
    kind = "a whole number" if whole else "a number"
    is_number = isinstance(value, int) if whole else isinstance(value, int | float)
    if isinstance(value, bool) or not is_number or not low <= value <= high:
        return f"{key}: expected {kind} from {low:.12g} to {high:.12g}, got {value!r}" + (f" ({why})" if why else "")
    return None
