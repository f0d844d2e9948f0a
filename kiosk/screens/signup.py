"""Signed up for an event: a seat or a place on the waiting list, the code large, the receipt."""

from __future__ import annotations

from typing import Any

from kivy.factory import Factory
from kivy.properties import ObjectProperty

from server import codes

from .. import model
from .code import CodeScreen


class SignupScreen(CodeScreen):
    signup: dict[str, Any] | None = ObjectProperty(None, allownone=True)  # the hub's answer shown

    def on_kv_post(self, base_widget: Any) -> None:
        # Beside "Done", the way back to the programme (CodeScreen's layout has only "Done").
        self.ids.actions.add_widget(Factory.WhatsOnButton(), index=1)

    def present_signup(self, body: dict[str, Any]) -> None:
        self.signup = body
        result = model.signup_result(self._, body, self.session.now())
        self.heading, self.big, self.about = result.title, result.place, result.event
        self.code = str(body.get("code_display") or codes.pretty(str(body.get("code") or "")))
        self.present()
