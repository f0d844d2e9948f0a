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


# The standard palette, and a high-contrast one (every pair at least 7:1, WCAG AAA) chosen in kiosk.toml
# (``palette = "high_contrast"``). ``use()`` sets the names below before the app builds its widgets.
PALETTES: dict[str, dict[str, str]] = {
    "standard": {
        "BACKGROUND": "#F5F6F8", "TEXT": "#1B1F24", "MUTED_TEXT": "#4A5361", "ACCENT": "#0B57A4",
        "WALK_IN_BG": "#0B57A4", "WALK_IN_FG": "#FFFFFF", "BOOKING_BG": "#5B3C96", "BOOKING_FG": "#FFFFFF",
        "CLOSED_BG": "#DADFE6", "CLOSED_FG": "#22272E", "NAV_BG": "#1F2937", "NAV_FG": "#FFFFFF",
        "KEY_BG": "#FFFFFF", "KEY_FG": "#1B1F24", "PRIMARY_BG": "#136B3A", "PRIMARY_FG": "#FFFFFF",
        "LANG_BG": "#E4E8EE", "LANG_FG": "#1B1F24", "LANG_ON_BG": "#1F2937", "LANG_ON_FG": "#FFFFFF",
        "DISABLED_BG": "#E4E7EB", "DISABLED_FG": "#505862", "ALERT_BG": "#A3141F", "ALERT_FG": "#FFFFFF",
        "WARN_BG": "#FFF1C2", "WARN_FG": "#3A2A00", "PANEL_BG": "#FFFFFF",
        "FOCUS_OUTER": "#000000", "FOCUS_INNER": "#FFD400",
    },
    # Black page, white and yellow text; buttons are light fields with black words, so each stands out
    # from the page by its own area, not by a thin border.
    "high_contrast": {
        "BACKGROUND": "#000000", "TEXT": "#FFFFFF", "MUTED_TEXT": "#E6E6E6", "ACCENT": "#FFE14D",
        "WALK_IN_BG": "#FFE14D", "WALK_IN_FG": "#000000", "BOOKING_BG": "#8FE3FF", "BOOKING_FG": "#000000",
        "CLOSED_BG": "#3D3D3D", "CLOSED_FG": "#FFFFFF", "NAV_BG": "#FFFFFF", "NAV_FG": "#000000",
        "KEY_BG": "#FFFFFF", "KEY_FG": "#000000", "PRIMARY_BG": "#9BF59B", "PRIMARY_FG": "#000000",
        "LANG_BG": "#3D3D3D", "LANG_FG": "#FFFFFF", "LANG_ON_BG": "#FFFFFF", "LANG_ON_FG": "#000000",
        "DISABLED_BG": "#262626", "DISABLED_FG": "#C8C8C8", "ALERT_BG": "#FFB3B3", "ALERT_FG": "#000000",
        "WARN_BG": "#FFE14D", "WARN_FG": "#000000", "PANEL_BG": "#1A1A1A",
        "FOCUS_OUTER": "#FFFFFF", "FOCUS_INNER": "#E0007A",
    },
}
# The smallest text the kiosk draws, in u (kiosk/session.py): docs/kiosk.md shows that at the 2.0 text step
# a capital H of it subtends 0.7° at the stated viewing distance (EN 301 549 5.1.4); tests hold the .kv files to it.
SMALLEST_TEXT_U = 19
CAP_HEIGHT = 1456 / 2048  # Roboto's (Kivy's default font) capital H, as a share of the font size
MIN_CONTRAST = {"standard": 4.5, "high_contrast": 7.0}  # WCAG AA, and AAA for the high-contrast palette


def colours(palette: str) -> dict[str, Colour]:
    return {name: hex_colour(value) for name, value in PALETTES[palette].items()}


def pairs(palette: str) -> list[tuple[str, Colour, Colour]]:
    """(name, foreground, background) for every pair drawn in ``palette``; pressed buttons included."""
    c = colours(palette)
    return [
        ("text on page", c["TEXT"], c["BACKGROUND"]),
        ("secondary text on page", c["MUTED_TEXT"], c["BACKGROUND"]),
        ("ticket number on page", c["ACCENT"], c["BACKGROUND"]),
        ("text on panel", c["TEXT"], c["PANEL_BG"]),
        ("ticket number on panel", c["ACCENT"], c["PANEL_BG"]),
        ("walk-in tile", c["WALK_IN_FG"], c["WALK_IN_BG"]),
        ("walk-in tile pressed", c["WALK_IN_FG"], pressed(c["WALK_IN_BG"])),
        ("booking-only tile", c["BOOKING_FG"], c["BOOKING_BG"]),
        ("closed tile", c["CLOSED_FG"], c["CLOSED_BG"]),
        ("closed tile pressed", c["CLOSED_FG"], pressed(c["CLOSED_BG"])),
        ("navigation button", c["NAV_FG"], c["NAV_BG"]),
        ("navigation button pressed", c["NAV_FG"], pressed(c["NAV_BG"])),
        ("keypad key", c["KEY_FG"], c["KEY_BG"]),
        ("keypad key pressed", c["KEY_FG"], pressed(c["KEY_BG"])),
        ("primary button", c["PRIMARY_FG"], c["PRIMARY_BG"]),
        ("primary button pressed", c["PRIMARY_FG"], pressed(c["PRIMARY_BG"])),
        ("language button", c["LANG_FG"], c["LANG_BG"]),
        ("language button pressed", c["LANG_FG"], pressed(c["LANG_BG"])),
        ("chosen language", c["LANG_ON_FG"], c["LANG_ON_BG"]),
        ("disabled button", c["DISABLED_FG"], c["DISABLED_BG"]),
        ("hub-down banner", c["ALERT_FG"], c["ALERT_BG"]),
        ("cancelled / fully booked on page", c["ALERT_BG"], c["BACKGROUND"]),  # what's on: the alert colour as text
        ("printer warning", c["WARN_FG"], c["WARN_BG"]),
        ("day heading band", c["LANG_ON_FG"], c["LANG_ON_BG"]),
    ]


def focus_pairs(palette: str) -> list[tuple[str, Colour, Colour]]:
    """The focus ring's two lines against every surface it can lie on: one of them must reach 3:1
    (WCAG 1.4.11) wherever it is drawn."""
    c = colours(palette)
    surfaces = ("BACKGROUND", "PANEL_BG", "WALK_IN_BG", "BOOKING_BG", "CLOSED_BG", "NAV_BG", "KEY_BG",
                "PRIMARY_BG", "LANG_BG", "LANG_ON_BG", "DISABLED_BG")
    return [(surface, c["FOCUS_OUTER"], c[surface]) for surface in surfaces] + [
        (surface + " (inner)", c["FOCUS_INNER"], c[surface]) for surface in surfaces]


BACKGROUND = TEXT = MUTED_TEXT = ACCENT = (0.0, 0.0, 0.0, 1.0)
WALK_IN_BG = WALK_IN_FG = BOOKING_BG = BOOKING_FG = CLOSED_BG = CLOSED_FG = NAV_BG = NAV_FG = BACKGROUND
KEY_BG = KEY_FG = PRIMARY_BG = PRIMARY_FG = LANG_BG = LANG_FG = LANG_ON_BG = LANG_ON_FG = BACKGROUND
DISABLED_BG = DISABLED_FG = ALERT_BG = ALERT_FG = WARN_BG = WARN_FG = PANEL_BG = FOCUS_OUTER = FOCUS_INNER = BACKGROUND
TILE_COLOURS: dict[str, tuple[Colour, Colour]] = {}
PAIRS: list[tuple[str, Colour, Colour]] = []
PALETTE = "standard"


def use(palette: str) -> None:
    """Draw with ``palette`` from now on: widgets built afterwards take its colours."""
    global TILE_COLOURS, PAIRS, PALETTE
    globals().update(colours(palette))
    PALETTE = palette
    TILE_COLOURS = {
        "walk_in": (WALK_IN_BG, WALK_IN_FG),
        "booking_only": (BOOKING_BG, BOOKING_FG),
        "closed": (CLOSED_BG, CLOSED_FG),
    }
    PAIRS = pairs(palette)


def pressed(bg: Colour) -> Colour:
    """Light buttons darken a little, dark ones more: both keep their text readable."""
    return darker(bg, 0.9 if luminance(bg) > 0.5 else 0.8)


use("standard")
