"""Speech mode (EN 301 549 5.1.3): every screen read out in the visitor's language, offline.

A visitor starts it with the keypad's speech key (``*``), or by plugging a
headset into the USB audio adapter (``kiosk/headset.py``). From then on:

- a new screen is read out: what it says (its texts in reading order: the
  heading, the ticket number, the service, the people before you and the
  wait, how printing went), how many choices it has, and the focused one;
- text that changes on a screen (the receipt printed, "not reachable") is
  read out when it changes;
- moving the focus says the control (a language button in its own voice);
- 0 says the screen again; a new utterance always cuts off the old one;
- + and - change the volume in steps; the volume returns to its default
  when speech mode ends (after the visitor, ``app.check_idle``).

What is spoken is what is shown, so every word comes from the kiosk's
catalogs in the chosen language. The voice is ``vuoro.speech.Speaker``,
shared with the signage's announcer.
"""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING, Any

from kivy.event import EventDispatcher
from kivy.properties import BooleanProperty

from vuoro.speech import Speaker, spell_ticket

from .focus import controls, spoken_label, texts

if TYPE_CHECKING:
    from .app import KioskApp

log = logging.getLogger("vuoro.kiosk")

_TICKET = re.compile(r"\b[A-Z]{1,3}-?\d{2,4}\b")
_CODE = re.compile(r"\b[0-9A-Z]{3,4}-[0-9A-Z]{3,4}\b")


def for_voice(text: str) -> str:
    """Numbers and codes as a voice should read them: "K042" → "K 42", "7KQ-3MZ" → "7 K Q, 3 M Z"."""
    text = _CODE.sub(lambda m: ", ".join(" ".join(part) for part in m.group(0).split("-")), text)
    return _TICKET.sub(lambda m: spell_ticket(m.group(0)), text)


class SpeechMode(EventDispatcher):
    on = BooleanProperty(False)

    def __init__(self, app: KioskApp, speaker: Speaker | None) -> None:
        super().__init__()
        self.app = app
        self.speaker = speaker
        self._screen: Any = None  # what was read out last: the screen (or warning) and its texts
        self._texts: list[str] = []
        self._arriving: Any = None  # a screen just shown: read once its layout has settled (next tick)

    # -- on and off -------------------------------------------------------------------------
    def start(self) -> None:
        if self.speaker is None or self.on:
            return
        self.on = True
        self.app.session.poke()
        self._screen = None
        self.say(self._("Speech on. Move with 4 and 6, or 8 and 2. Choose with 5. 0 says it again, "
                        "the dot key goes back, plus and minus set the volume."))
        self.tick(interrupt=False)

    def stop(self) -> None:
        if not self.on or self.speaker is None:
            return
        self.say(self._("Speech off."))
        self.on = False
        self.speaker.reset_volume()

    def toggle(self) -> None:
        self.stop() if self.on else self.start()

    def _(self, msgid: str) -> str:
        return self.app.session.tr(msgid)

    def say(self, text: str, lang: str | None = None, *, interrupt: bool = True) -> None:
        if self.speaker is not None and text.strip():
            self.speaker.say(for_voice(text), lang or self.app.session.lang, interrupt=interrupt)

    # -- what the screen says ------------------------------------------------------------------
    def describe(self) -> str:
        """The whole screen: its texts, its number of choices, and the focused control."""
        root = self.app.focus_root()
        words = list(self._banner()) + texts(root)
        found = controls(root)
        if 0 < len(found) <= 6:  # a few: name them all (a notice's actions, a ticket's Done)
            words.append(self._("Choices: {names}.").format(
                names="; ".join(spoken_label(w, self._).rstrip(".") for w in found)))
        elif found:  # many (the home screen's 13, a keyboard's 35): how many, and the focus names each
            words.append(self._("Choices on this screen: {count}.").format(count=len(found)))
        return ". ".join(w.rstrip(".") for w in words) + "."

    def _banner(self) -> list[str]:
        banner = self.app.root.ids.banner if self.app.root is not None else None
        return [str(banner.text)] if banner is not None and banner.text else []

    def repeat(self) -> None:
        self._remember()
        self.say(self.describe())
        self.say_focus(interrupt=False)

    def tick(self, *, interrupt: bool = True) -> None:
        """(the app's clock, a few times a second) A new screen is read whole; changed text is read alone."""
        if not self.on:
            return
        root = self.app.focus_root()
        now = self._banner() + texts(root)
        if root is not self._screen:
            if root is not self._arriving:  # its grids are laid out by the next frame: read it then
                self._arriving = root
                return
            self._arriving = None
            self._remember()
            self.say(self.describe(), interrupt=interrupt)
            self.say_focus(interrupt=False)
        elif now != self._texts:
            new = [text for text in now if text not in self._texts]
            self._texts = now
            if new and root is not self.app.warning:  # its countdown is not read out every second
                self.say(". ".join(new), interrupt=False)

    def _remember(self) -> None:
        self._screen = self.app.focus_root()
        self._texts = self._banner() + texts(self._screen)

    def say_focus(self, *, interrupt: bool = True) -> None:
        if not self.on:
            return
        widget = self.app.focus.current(self.app.focus_root())
        if widget is None:
            return
        own_voice = getattr(widget, "lang_code", "")  # a language button says its name in its own language
        self.say(spoken_label(widget, self._), own_voice or None, interrupt=interrupt)

    # -- volume -----------------------------------------------------------------------------
    def louder(self) -> None:
        if self.speaker is not None:
            self.speaker.louder()
            self.say(self._("Louder"))

    def softer(self) -> None:
        if self.speaker is not None:
            self.speaker.softer()
            self.say(self._("Softer"))
