"""What the kiosk hands to the printer: plain data, no printer knowledge.

Datetimes must be timezone-aware and are printed as given (the kiosk passes
them in the site's timezone). ``language`` is one of vuoro.i18n.LANGUAGES.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from vuoro.i18n import LANGUAGES


def _check(language: str, *stamps: datetime) -> None:
    if language not in LANGUAGES:
        raise ValueError(f"language {language!r} is not one of {', '.join(LANGUAGES)}")
    for stamp in stamps:
        if stamp.tzinfo is None or stamp.utcoffset() is None:
            raise ValueError("receipt datetimes must be timezone-aware")


@dataclass(frozen=True)
class QueueTicket:
    """A walk-in queue ticket: the number, printed large."""

    site_name: str
    service_name: str  # already in the visitor's language
    number: str  # e.g. "K042"
    people_before: int
    issued_at: datetime
    language: str = "da"
    wait_minutes: int | None = None  # estimated wait; None prints no estimate
    place_url: str | None = None  # "your place" page; printed as a native QR when given

    def __post_init__(self) -> None:
        _check(self.language, self.issued_at)


@dataclass(frozen=True)
class BookingCheckIn:
    """Printed when a visitor with a booking checks in at the kiosk."""

    site_name: str
    service_name: str
    number: str
    booked_at: datetime  # the booked time
    booking_code: str  # printed as a native CODE128 barcode (a QR if not plain ASCII)
    issued_at: datetime
    language: str = "da"
    code_display: str | None = None  # the code as people read it ("7KQ-3MZ"); the code itself when None

    def __post_init__(self) -> None:
        _check(self.language, self.booked_at, self.issued_at)


@dataclass(frozen=True)
class EventSignup:
    """Confirmation of a sign-up for an event (a seat or a waiting-list place)."""

    site_name: str
    event_title: str
    starts_at: datetime
    room: str
    code: str  # printed as a native QR
    issued_at: datetime
    language: str = "da"
    seat: str | None = None  # None: on the waiting list
    waiting_place: int | None = None  # place on the waiting list when there is no seat
    code_display: str | None = None  # the code as people read it ("9WQ-3XW"); the code itself when None

    def __post_init__(self) -> None:
        _check(self.language, self.starts_at, self.issued_at)


@dataclass(frozen=True)
class BookingConfirmation:
    """Printed when a visitor books a time at the kiosk: when, what, and the code to check in with."""

    site_name: str
    service_name: str
    starts_at: datetime  # the booked time
    ends_at: datetime
    booking_code: str  # printed as a native CODE128 barcode (a QR if not plain ASCII)
    issued_at: datetime
    language: str = "da"
    code_display: str | None = None  # the code as people read it ("7KQ-3MZ"); the code itself when None

    def __post_init__(self) -> None:
        _check(self.language, self.starts_at, self.ends_at, self.issued_at)


Receipt = QueueTicket | BookingCheckIn | EventSignup | BookingConfirmation
