"""Book a time, step three: "Book this time?" → POST /bookings/self → the code and its receipt.

The Idempotency-Key is the session's for (service, time) until the hub has
answered, so "Book this time" again after "not reachable" cannot book twice.
A here-and-now booking answers with a queue ticket: the ticket screen shows it.
"""

from __future__ import annotations

from typing import Any

from kivy.properties import NumericProperty, StringProperty

from .. import model
from ..client import HubAnswer
from .base import KioskScreen


class ConfirmScreen(KioskScreen):
    title = StringProperty("")  # the service's name
    when = StringProperty("")  # "Today 14:30–14:45", or "Now, 14:35–14:50"
    service = StringProperty("")
    wanted = StringProperty("")  # the slot's start, or "now" for the here-and-now slot
    slots = NumericProperty(1)  # 2: a double slot

    def ask(self, service: str, title: str, slot: dict[str, Any], *, now: bool = False) -> None:
        start, end = model.parse_time(slot.get("start")), model.parse_time(slot.get("end"))
        if start is None:
            return
        today = self.session.now().date()
        self.service, self.title = service, title
        self.wanted = "now" if now else str(slot.get("start"))
        self.slots = 1 if now else int(slot.get("slots") or 1)
        self.when = (self._("Now, {span}").format(span=start.strftime("%H:%M") + "–" + end.strftime("%H:%M"))
                     if now and end is not None else model.booking_when(self._, start, end, today))
        self.show()

    def book(self) -> None:
        session = self.session
        if session.busy or not session.hub_ok or not self.service:
            return
        session.busy = True
        session.busy_text = self._("Just a moment…")
        service, wanted, slots, lang, site_name = (self.service, self.wanted, int(self.slots), session.lang,
                                                   session.site_name)
        key, ticket, booked = (session.key("booking", service, wanted, slots), self.screen("ticket"),
                               self.screen("booked"))

        def printing(answer: HubAnswer) -> Any:
            body = answer.body if isinstance(answer.body, dict) else {}
            booking = body.get("booking") if isinstance(body.get("booking"), dict) else None
            if not answer.ok or booking is None:
                return None
            code = str(booking.get("code") or "")
            if isinstance(body.get("ticket"), dict):  # here-and-now: checked in at once, a queue ticket
                return ticket.printing(body["ticket"], lang, booking, code)
            return booked.printing(lambda p: p.print_booking(booking, site_name, lang, session.now()),
                                   str(booking.get("code_display") or code))

        session.ask(lambda: session.client.book(service, None if wanted == "now" else wanted, lang, key, slots),
                    lambda answer: self._answered(service, wanted, slots, answer), printing)

    def _answered(self, service: str, wanted: str, slots: int, answer: HubAnswer) -> None:
        session = self.session
        session.busy, session.busy_text = False, ""
        body = answer.body if isinstance(answer.body, dict) else {}
        booking = body.get("booking") if isinstance(body.get("booking"), dict) else None
        if answer.broken:  # the key is kept: "Book this time" again is the same booking
            session.hub_down()
            self.notice(model.booking_refusal(self._, answer.code))
            return
        session.settle("booking", service, wanted, slots)
        if answer.ok and booking is not None:
            if isinstance(body.get("ticket"), dict):
                self.screen("ticket").present(body["ticket"], booking)
                session.queues_changed()
                return
            start, end = model.parse_time(booking.get("start")), model.parse_time(booking.get("end"))
            when = (model.booking_when(self._, start, end, self.session.now().date())
                    if start is not None else self.when)
            self.screen("booked").present_booking(booking, self.title, when)
            return
        notice = model.booking_refusal(self._, answer.code)
        slots = self.screen("slots")
        if answer.code in model.TAKEN:
            slots.message = notice.body  # said above the refreshed list
            slots.show()
            slots.refresh()
        else:
            self.notice(notice)
