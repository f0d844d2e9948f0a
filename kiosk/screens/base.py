"""What every kiosk screen has: the shared session, its words, and the way to the other screens."""

from __future__ import annotations

from typing import Any

from kivy.properties import ObjectProperty
from kivy.uix.screenmanager import Screen

from .. import model
from ..session import Session


class KioskScreen(Screen):
    """A screen that owns its flow. ``open()`` is how the app (and a button) goes to it; screens that
    need fresh data from the hub override it. ``show()`` only brings the screen forward."""

    session: Session = ObjectProperty(None)

    def _(self, msgid: str) -> str:
        return self.session.tr(msgid)

    def screen(self, name: str) -> Any:
        return self.manager.get_screen(name)

    def show(self) -> None:
        self.manager.current = self.name

    def open(self) -> None:
        self.show()

    def detach(self) -> None:
        """The screen is being replaced (another palette): let go of the session's events."""

    def notice(self, notice: model.Notice) -> None:
        """A refusal or a problem in plain words, with what the visitor can do next."""
        self.screen("notice").tell(notice)
