"""Short codes people type or scan: booking codes and event sign-up codes, in one style.

Standard library only: the kiosk imports this module too, so the code a visitor reads on the
screen, on the receipt and on the keypad is grouped by the same rule as on the staff page
(``pretty``: ``7KQ-3MZ``, for booking and sign-up codes alike).

The alphabet leaves out the characters people mix up — 0 and O, 1 and I — so
every code printed on a receipt can be read back unambiguously. Six of its 32
characters give about a billion codes, so random codes rarely collide; the
store's UNIQUE (site, code) constraints catch the rest.

Normalising what a visitor typed (``normalise``):
- case, spaces, dashes, dots and underscores are ignored: ``7kq-3mz`` is ``7KQ3MZ``;
- a QR code holding an address (``https://…/b/7KQ3MZ``) gives its last part;
- 0, O, 1 and I are never guessed: no code contains them, so a code typed
  with one of them is answered "not found" with a hint, instead of being
  silently turned into somebody else's booking.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable

ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
LENGTH = 6
CENTRE_LENGTH = 7  # the centre's booking calendar mints 7: a code space apart from every branch's (docs/bookings.md)
MIN_LENGTH, MAX_LENGTH = 4, 12  # imported bookings keep their own system's codes
AMBIGUOUS = frozenset("01IO")
_SEPARATORS = re.compile(r"[\s\-_.·]+")
_TAIL = re.compile(r"[/=#?]")


def new_code(taken: Callable[[str], bool], length: int = LENGTH) -> str:
    """A random code for which ``taken(code)`` is false."""
    for _ in range(1000):
        code = "".join(secrets.choice(ALPHABET) for _ in range(length))
        if not taken(code):
            return code
    raise RuntimeError("could not find a free code: the code space is exhausted")


def normalise(typed: str) -> str:
    """Upper case, without separators; the last part of a scanned address."""
    text = (typed or "").strip()
    if _TAIL.search(text):
        text = _TAIL.split(text.rstrip("/"))[-1]
    return _SEPARATORS.sub("", text).upper()


def problem(code: str) -> str | None:
    """Why this (normalised) code cannot be a code, in words; None if it could be one."""
    if not code:
        return "Type the code from your booking."
    if set(code) & AMBIGUOUS:
        return "Booking codes never contain 0, O, 1 or I. Please check the code and try again."
    if any(ch not in ALPHABET for ch in code):
        return "A booking code has only letters and the digits 2–9."
    if not MIN_LENGTH <= len(code) <= MAX_LENGTH:
        return f"A booking code has {LENGTH} characters."
    return None


def pretty(code: str) -> str:
    """How people see a code, everywhere (screen, receipt, staff page): ``7KQ-3MZ``, a centre's ``7KQ-3MZA``. A
    code of another length (an imported booking's) as its own system wrote it."""
    return as_typed(code) if len(code) in (LENGTH, CENTRE_LENGTH) else code


def as_typed(code: str) -> str:
    """A code being typed on the kiosk's keypad, grouped as it will read: ``7KQ``, ``7KQ-3``, ``7KQ-3MZ``."""
    return f"{code[:3]}-{code[3:]}" if 3 < len(code) <= CENTRE_LENGTH else code
