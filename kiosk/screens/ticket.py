"""Your number: ask the hub for a ticket, show the number at once, then print it and say how that went."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kivy.properties import BooleanProperty, ObjectProperty, StringProperty

from .. import model
from ..client import HubAnswer
from ..printing import PrintOutcome
from .base import KioskScreen


class TicketScreen(KioskScreen):
    number = StringProperty("")
    service = StringProperty("")
    place = StringProperty("")  # people before you, the wait, the booked time
    instruction = StringProperty("")  # "Take your ticket…", or why it did not print
    print_failed = BooleanProperty(False)
    ticket: dict[str, Any] | None = ObjectProperty(None, allownone=True)  # the hub's answer shown
    printed: PrintOutcome | None = ObjectProperty(None, allownone=True)  # None until the printer has answered

    def take(self, service: str) -> None:
        """A walk-in ticket for ``service`` (a tile, or "Take a ticket instead")."""
        session = self.session
        if session.busy or not session.hub_ok:
            return  # a second tap while the first is on its way must not make a second ticket
        session.busy = True
        session.busy_text = self._("Just a moment…")
        lang, key = session.lang, session.key("ticket", service)
        session.ask(lambda: session.client.issue(service, lang, key), lambda answer: self._answered(service, answer),
                    lambda answer: self.printing(answer.body, lang) if answer.ok and isinstance(answer.body, dict)
                    else None)

    def _answered(self, service: str, answer: HubAnswer) -> None:
        session = self.session
        session.busy, session.busy_text = False, ""
        if not answer.broken:
            session.settle("ticket", service)  # a ticket or a refusal: the request is settled
        if answer.ok and isinstance(answer.body, dict):
            self.present(answer.body)
            session.queues_changed()
            return
        if answer.broken:
            session.hub_down()
        self.notice(model.ticket_refusal(self._, answer.code, answer.detail, session.service_title(service),
                                         session.now()))
        if not answer.broken:
            session.queues_changed()  # a refusal means our picture of the service was stale

    def present(self, ticket: dict[str, Any], booking: dict[str, Any] | None = None) -> None:
        """Show the number (a walk-in ticket, or a booking's after check-in) before it is printed."""
        self.ticket, self.printed = ticket, None
        self.number = str(ticket.get("ticket") or "")
        self.service = model.service_name(ticket.get("service_names"), self.session.lang,
                                          str(ticket.get("service") or ""))
        place = model.position_text(self._, ticket.get("position"))
        wait = ticket.get("estimated_wait_min")
        if isinstance(wait, int | float) and wait > 0:
            place += " · " + model.wait_text(self._, wait)
        if booking is not None:
            start = model.parse_time(booking.get("start"))
            if start is not None:
                place = self._("Booked for {time}").format(time=start.strftime("%H:%M")) + " · " + place
        self.place = place
        self.print_failed = False
        self.instruction = (self._("Printing your ticket…") if self.session.prints
                            else self._("Please remember your number and watch the screen."))
        self.show()

    def printing(self, ticket: dict[str, Any], lang: str, booking: dict[str, Any] | None = None,
                 code: str | None = None) -> Callable[[], None]:
        """(worker thread) Print the ticket; what the screen says afterwards."""
        outcome = self.session.print_ticket(ticket, lang, booking, code)
        return lambda: self._printed(outcome)

    def _printed(self, outcome: PrintOutcome) -> None:
        self.printed = outcome
        self.instruction, self.print_failed = model.after_printing(
            self._, outcome.printed, outcome.state, done=self._("Take your ticket and watch the screen."),
            no_printer=self._("Please remember your number and watch the screen."),
            keep=self._("Please remember your number: {number}").format(number=self.number) + "\n"
            + self._("Watch the screen; staff have been told."))
