"""A notice: a refusal or a problem in plain words, and buttons for what the visitor can do next."""

from __future__ import annotations

from kivy.properties import StringProperty

from .. import model, theme
from .base import KioskScreen


class NoticeScreen(KioskScreen):
    title = StringProperty("")
    body = StringProperty("")

    def tell(self, notice: model.Notice) -> None:
        self.title, self.body = notice.title, notice.body
        actions = []
        for action in notice.actions:
            if action == "checkin":
                actions.append((self._("I have a booking"), lambda _b: self.screen("checkin").open()))
            elif action == "walk_in" and notice.service:
                actions.append((self._("Take a ticket instead"),
                                lambda _b, s=notice.service: self.screen("ticket").take(s)))
            elif action == "walk_in":
                actions.append((self._("Take a ticket instead"), lambda _b: self.screen("home").open()))
            elif action == "events":
                actions.append((self._("What's on"), lambda _b: self.screen("events").open()))
        self.ids.actions.data = [{"text": text, "bg": theme.PRIMARY_BG, "action": act} for text, act in actions] + [
            {"text": self._("Back to start"), "bg": theme.NAV_BG, "action": lambda _b: self.screen("home").open()}]
        self.show()
