"""The kiosk's side of printing: hub ticket JSON → a ``hardware`` receipt → the printer.

A thin adapter over ``hardware.printer.Printer`` (which never raises and
reads the printer's status before and after), so the app only sees
"printed" or "not printed, because <state>". A kiosk without a printer URL
shows every number on screen instead.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from server import codes

from .model import parse_time, service_name

log = logging.getLogger("vuoro.kiosk.printing")


@dataclass(frozen=True)
class PrintOutcome:
    printed: bool
    state: str | None  # vuoro.protocol.PRINTER_STATES, or None without a printer
    detail: str = ""


NO_PRINTER = PrintOutcome(False, None, "no printer configured")


class KioskPrinter:
    def __init__(self, url: str | None, on_health: Callable[[Any], None] | None = None,
                 languages: tuple[str, ...] | None = None) -> None:
        self.url = url
        self.printer: Any = None
        if url:
            from hardware.printer import Printer

            # the kiosk's languages: its code page must print them (refused here, not printed as "?")
            self.printer = Printer.from_url(url, **({"languages": languages} if languages else {}))
            if on_health is not None:
                self.printer.on_health(on_health)

    @property
    def present(self) -> bool:
        return self.printer is not None

    def status(self) -> Any:
        """A fresh ``hardware.health.Health`` reading (publishes through on_health), or None."""
        return self.printer.status() if self.printer is not None else None

    def print_ticket(self, ticket: dict[str, Any], site_name: str, language: str,
                     booking: dict[str, Any] | None = None, code: str | None = None,
                     now: datetime | None = None) -> PrintOutcome:
        """A queue ticket, or a check-in receipt; issued at the hub's ``issued_at`` (else ``now``, on the site's
        clock)."""
        if self.printer is None:
            return NO_PRINTER
        try:
            receipt = self._receipt(ticket, site_name, language, booking, code, now)
        except Exception as exc:  # bad data from the hub must not stop the number being shown
            log.exception("could not build the receipt")
            return PrintOutcome(False, "error", str(exc))
        result = self.printer.print_receipt(receipt)
        return PrintOutcome(bool(result.printed), result.state, result.reason or result.detail)

    @staticmethod
    def _receipt(ticket: dict[str, Any], site_name: str, language: str, booking: dict[str, Any] | None,
                 code: str | None, now: datetime | None) -> Any:
        from hardware.receipts import BookingCheckIn, QueueTicket

        issued = parse_time(ticket.get("issued_at")) or now or datetime.now().astimezone()
        name = service_name(ticket.get("service_names"), language, str(ticket.get("service", "")))
        number = str(ticket.get("ticket", ""))
        booked = parse_time((booking or {}).get("start"))
        if booking is not None and booked is not None and code:
            return BookingCheckIn(site_name=site_name, service_name=name, number=number, booked_at=booked,
                                  booking_code=code, issued_at=issued, language=language,
                                  code_display=codes.pretty(code))
        wait = ticket.get("estimated_wait_min")
        return QueueTicket(site_name=site_name, service_name=name, number=number,
                           people_before=int(ticket.get("position") or 0), issued_at=issued, language=language,
                           wait_minutes=int(wait) if isinstance(wait, int | float) and wait > 0 else None,
                           place_url=ticket.get("track_url") or None)

    def print_booking(self, booking: dict[str, Any], site_name: str, language: str, now: datetime) -> PrintOutcome:
        """The confirmation of a time booked at the kiosk (``POST /bookings/self``'s booking), issued ``now``: on
        the site's clock (``Session.now``), as every time on a receipt, never the machine's zone."""

        def build() -> Any:
            from hardware.receipts import BookingConfirmation

            start, end = parse_time(booking.get("start")), parse_time(booking.get("end"))
            if start is None or end is None or not booking.get("code"):
                raise ValueError("the booking has no start, end or code")
            name = service_name(booking.get("service_names"), language, str(booking.get("service", "")))
            return BookingConfirmation(site_name=site_name, service_name=name, starts_at=start, ends_at=end,
                                       booking_code=str(booking["code"]), issued_at=now,
                                       language=language, code_display=booking.get("code_display") or None)

        return self._print_built(build)

    def print_signup(self, signup: dict[str, Any], site_name: str, language: str, now: datetime) -> PrintOutcome:
        """The ``EventSignup`` receipt for ``POST /events/{id}/signups``'s answer, issued ``now`` (the site's
        clock)."""

        def build() -> Any:
            from hardware.receipts import EventSignup

            event = signup.get("event") if isinstance(signup.get("event"), dict) else {}
            start = parse_time(event.get("start"))
            if start is None or not signup.get("code"):
                raise ValueError("the sign-up has no event start or code")
            seat = signup.get("seat")
            return EventSignup(site_name=site_name, event_title=str(event.get("title") or ""), starts_at=start,
                               room=str(event.get("room") or ""), code=str(signup["code"]),
                               issued_at=now, language=language,
                               seat=None if seat is None else str(seat),
                               waiting_place=signup.get("waiting_place") if seat is None else None,
                               code_display=signup.get("code_display") or codes.pretty(str(signup["code"])))

        return self._print_built(build)

    def _print_built(self, build: Callable[[], Any]) -> PrintOutcome:
        if self.printer is None:
            return NO_PRINTER
        try:
            receipt = build()
        except Exception as exc:  # bad data from the hub must not stop the code being shown
            log.exception("could not build the receipt")
            return PrintOutcome(False, "error", str(exc))
        result = self.printer.print_receipt(receipt)
        return PrintOutcome(bool(result.printed), result.state, result.reason or result.detail)

    def close(self) -> None:
        if self.printer is not None:
            self.printer.close()
