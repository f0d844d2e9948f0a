"""Book a time, step one: which services take bookings here (GET /slots answers), with their next free time."""

from __future__ import annotations

from typing import Any

from kivy.properties import DictProperty, StringProperty

from vuoro import refusals

from .. import model, theme
from ..client import HubAnswer
from .base import KioskScreen


class BookScreen(KioskScreen):
    hint = StringProperty("")  # the chooser's line, or "Just a moment…"
    bookable = DictProperty()  # service → its GET /slots answer, for the services that take kiosk bookings

    def open(self) -> None:
        session = self.session
        self.hint = self._("Just a moment…")
        self.bookable, self.ids.services.data = {}, []
        self.show()
        client = session.client
        services = [str(s["id"]) for s in session.site.get("services") or [] if isinstance(s, dict) and s.get("id")]
        session.run(lambda: [(sid, client.slots(sid, 7)) for sid in services], self._answered)

    def _answered(self, answers: list[tuple[str, HubAnswer]] | None) -> None:
        answers = answers or []
        if answers and all(answer.broken for _sid, answer in answers):
            self.session.hub_down()
            self.notice(model.hub_down(self._))
            return
        self.bookable = {sid: answer.body for sid, answer in answers if answer.ok and isinstance(answer.body, dict)}
        if self.manager.current != self.name:
            return  # the visitor has gone elsewhere meanwhile
        if len(self.bookable) == 1:
            self.choose(next(iter(self.bookable)))
            return
        self.render()

    def render(self) -> None:
        if not self.bookable:
            self.hint = self._("Times cannot be booked here right now. You can book at the desk, "
                               "on the web or by phone.")
            self.ids.services.data = []
            return
        self.hint = self._("What do you want to book a time for?")
        today = self.session.now().date()
        self.ids.services.data = [
            {"service": sid, "title": self.session.service_title(sid), "line": self._next_free(body, today),
             "kind": "booking", "waiting": 0, "bg": list(theme.BOOKING_BG), "fg": list(theme.BOOKING_FG),
             "disabled": False, "action": lambda tile: self.choose(tile.service)}
            for sid, body in self.bookable.items()]

    def _next_free(self, body: dict[str, Any], today: Any) -> str:
        if body.get("here_and_now"):
            return self._("Free right away")
        days = model.slot_days(body.get("slots"))
        if not days:
            return self._("No free times in the next days")
        start = model.parse_time(days[0][1][0].get("start"))
        return self._("Next free time: {when}").format(when=model.booking_when(self._, start, None, today)) \
            if start else ""

    def choose(self, service: str) -> None:
        self.screen("slots").choose(service, self.bookable.get(service) or {})

    def book_service(self, service: str) -> None:
        """Straight to the free times of one service (its tile on the home screen): "Back" goes home."""
        session, client = self.session, self.session.client
        if session.busy:
            return
        session.busy, session.busy_text = True, self._("Just a moment…")
        session.run(lambda: client.slots(service, 7), lambda answer: self._service_answered(service, answer))

    def _service_answered(self, service: str, answer: HubAnswer | None) -> None:
        session = self.session
        session.busy, session.busy_text = False, ""
        if answer is None or answer.broken:
            session.hub_down()
            self.notice(model.hub_down(self._))
        elif answer.ok and isinstance(answer.body, dict):
            self.bookable = {service: answer.body}
            self.screen("slots").choose(service, answer.body, back_to="home")
        else:  # times of this service are not booked here: say where they are, and offer check-in
            self.notice(model.ticket_refusal(self._, refusals.BOOKING_ONLY, answer.detail,
                                             session.service_title(service)))

    def back(self) -> None:
        """From the free times: back to the choice of service, or home when there was no choice."""
        if len(self.bookable) > 1:
            self.render()
            self.show()
        else:
            self.screen("home").open()
