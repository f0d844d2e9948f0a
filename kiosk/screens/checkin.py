"""Check in: a code from the keypad or a scanner → the hub → a booking's queue ticket and check-in receipt, or
attendance at today's event for a sign-up's code (codes are one code space: the hub knows whose it is)."""

from __future__ import annotations

from typing import Any

from kivy.properties import StringProperty

from server import codes

from .. import model
from ..client import HubAnswer
from .base import KioskScreen


class CheckinScreen(KioskScreen):
    code = StringProperty("")  # as typed so far

    def on_kv_post(self, base_widget: Any) -> None:
        self.ids.keypad.data = [{"text": char, "action": lambda key: self.press(key.text)}
                                for char in codes.ALPHABET]

    def open(self) -> None:
        self.code = ""
        self.show()

    def press(self, char: str) -> None:
        if len(self.code) < codes.MAX_LENGTH:
            self.code += char

    def delete(self) -> None:
        self.code = self.code[:-1]

    def submit(self) -> None:
        self.check_in(self.code)

    def scan(self, raw: str) -> None:
        """A code from a scanner (serial or wedge): check in from whatever screen is showing."""
        code = model.clean_code(raw)
        if code is None:
            return
        self.session.poke()
        self.show()
        self.code = code
        self.check_in(code)

    def check_in(self, code: str) -> None:
        session = self.session
        if session.busy or not code:
            return
        session.busy = True
        session.busy_text = self._("Just a moment…")
        lang, key, ticket = session.lang, session.key("checkin", code), self.screen("ticket")

        def printing(answer: HubAnswer) -> Any:
            body = answer.body if isinstance(answer.body, dict) else {}
            if not answer.ok or not isinstance(body.get("ticket"), dict):
                return None
            return ticket.printing(body["ticket"], lang, body.get("booking") or {}, code)

        session.ask(lambda: session.client.checkin(code, lang, key), lambda answer: self._answered(code, answer),
                    printing)

    def _answered(self, code: str, answer: HubAnswer) -> None:
        session = self.session
        session.busy, session.busy_text = False, ""
        if not answer.broken:
            session.settle("checkin", code)  # after "not reachable" the same code is the same check-in
        body = answer.body if isinstance(answer.body, dict) else {}
        if answer.ok and isinstance(body.get("ticket"), dict):
            self.code = ""
            self.screen("ticket").present(body["ticket"], body.get("booking") or {})
            session.queues_changed()
            return
        if answer.ok and isinstance(body.get("event"), dict):  # a sign-up's code: checked in for the event
            self.code = ""
            self.notice(model.attendance(self._, body))
            return
        if answer.broken:
            session.hub_down()
        self.notice(model.checkin_refusal(self._, answer.code, answer.detail, code, session.now()))
