"""Colours and sizes. Every text/background pair here is checked for WCAG AA in the tests.

Colours are RGBA tuples in 0–1 (what Kivy wants). ``PAIRS`` lists every
foreground on every background the kiosk draws, so the contrast test
covers what a visitor actually sees, not a palette in the abstract.
"""

from __future__ import annotations

Colour = tuple[float, float, float, float]


def hex_colour(text: str) -> Colour:
    text = text.lstrip("#")
    r, g, b = (int(text[i : i + 2], 16) / 255 for i in (0, 2, 4))
    return (r, g, b, 1.0)


def darker(colour: Colour, factor: float = 0.8) -> Colour:
    """The pressed look of a button: the same hue, darker (white text only gains contrast)."""
    r, g, b, a = colour
    return (r * factor, g * factor, b * factor, a)


def luminance(colour: Colour) -> float:
    """WCAG 2.x relative luminance."""

    def channel(c: float) -> float:
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(c) for c in colour[:3])
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a: Colour, b: Colour) -> float:
    la, lb = sorted((luminance(a), luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


BACKGROUND = hex_colour("#F5F6F8")
TEXT = hex_colour("#1B1F24")
MUTED_TEXT = hex_colour("#4A5361")  # secondary lines on the page background
ACCENT = hex_colour("#0B57A4")  # the ticket number

WALK_IN_BG, WALK_IN_FG = hex_colour("#0B57A4"), hex_colour("#FFFFFF")
BOOKING_BG, BOOKING_FG = hex_colour("#5B3C96"), hex_colour("#FFFFFF")
CLOSED_BG, CLOSED_FG = hex_colour("#DADFE6"), hex_colour("#22272E")
NAV_BG, NAV_FG = hex_colour("#1F2937"), hex_colour("#FFFFFF")
KEY_BG, KEY_FG = hex_colour("#FFFFFF"), hex_colour("#1B1F24")
PRIMARY_BG, PRIMARY_FG = hex_colour("#136B3A"), hex_colour("#FFFFFF")  # "Check in", "OK"
LANG_BG, LANG_FG = hex_colour("#E4E8EE"), hex_colour("#1B1F24")
LANG_ON_BG, LANG_ON_FG = hex_colour("#1F2937"), hex_colour("#FFFFFF")
DISABLED_BG, DISABLED_FG = hex_colour("#E4E7EB"), hex_colour("#505862")
ALERT_BG, ALERT_FG = hex_colour("#A3141F"), hex_colour("#FFFFFF")  # hub not reachable
WARN_BG, WARN_FG = hex_colour("#FFF1C2"), hex_colour("#3A2A00")  # printer problem
PANEL_BG = hex_colour("#FFFFFF")

TILE_COLOURS = {
    "walk_in": (WALK_IN_BG, WALK_IN_FG),
    "booking_only": (BOOKING_BG, BOOKING_FG),
    "closed": (CLOSED_BG, CLOSED_FG),
}

# (name, foreground, background) for every pair drawn; pressed buttons included.
PAIRS: list[tuple[str, Colour, Colour]] = [
    ("text on page", TEXT, BACKGROUND),
    ("secondary text on page", MUTED_TEXT, BACKGROUND),
    ("ticket number on page", ACCENT, BACKGROUND),
    ("text on panel", TEXT, PANEL_BG),
    ("ticket number on panel", ACCENT, PANEL_BG),
    ("walk-in tile", WALK_IN_FG, WALK_IN_BG),
    ("booking-only tile", BOOKING_FG, BOOKING_BG),
    ("closed tile", CLOSED_FG, CLOSED_BG),
    ("closed tile pressed", CLOSED_FG, darker(CLOSED_BG, 0.9)),
    ("navigation button", NAV_FG, NAV_BG),
    ("keypad key", KEY_FG, KEY_BG),
    ("keypad key pressed", KEY_FG, darker(KEY_BG, 0.85)),
    ("primary button", PRIMARY_FG, PRIMARY_BG),
    ("language button", LANG_FG, LANG_BG),
    ("language button pressed", LANG_FG, darker(LANG_BG, 0.9)),
    ("chosen language", LANG_ON_FG, LANG_ON_BG),
    ("disabled button", DISABLED_FG, DISABLED_BG),
    ("hub-down banner", ALERT_FG, ALERT_BG),
    ("printer warning", WARN_FG, WARN_BG),
]


def pressed(bg: Colour) -> Colour:
    """Light buttons darken a little, dark ones more: both keep their text readable."""
    return darker(bg, 0.9 if luminance(bg) > 0.5 else 0.8)
