"""Your time is booked: the time, the booking code large, and the confirmation receipt."""

from __future__ import annotations

from typing import Any

from kivy.properties import ObjectProperty

from server import codes

from .code import CodeScreen


class BookedScreen(CodeScreen):
    booking: dict[str, Any] | None = ObjectProperty(None, allownone=True)  # the hub's answer shown

    def present_booking(self, booking: dict[str, Any], service_title: str, when: str) -> None:
        self.booking = booking
        self.about, self.big = service_title, when
        self.code = str(booking.get("code_display") or codes.pretty(str(booking.get("code") or "")))
        self.present()
