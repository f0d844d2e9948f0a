"""Home: take a number. One tile per service with its live wait; the language buttons; A+."""

from __future__ import annotations

from typing import Any

from vuoro.i18n import NATIVE_NAMES

from .. import model, theme
from .base import KioskScreen


class HomeScreen(KioskScreen):
    def on_kv_post(self, base_widget: Any) -> None:
        # The tiles follow the hub: its services, each queue's state (MQTT), whether it answers.
        self.session.bind(lang=self.render, site=self.render, queues=self.render, hub_ok=self.render)
        self.session.bind(lang=self.render_languages)
        self.render_languages()
        self.render()

    def detach(self) -> None:
        self.session.unbind(lang=self.render, site=self.render, queues=self.render, hub_ok=self.render)
        self.session.unbind(lang=self.render_languages)

    def render_languages(self, *_args: Any) -> None:
        """One button per language in its own name; the chosen one dark."""
        session = self.session
        chosen = session.lang
        self.ids.langs.data = [
            {"text": NATIVE_NAMES[code], "lang_code": code, "bold": code == chosen, "chosen": code == chosen,
             "bg": theme.LANG_ON_BG if code == chosen else theme.LANG_BG,
             "fg": theme.LANG_ON_FG if code == chosen else theme.LANG_FG,
             "action": lambda button: session.set_language(button.lang_code)}
            for code in session.config.languages]

    def render(self, *_args: Any) -> None:
        """The service tiles, in the site's order, with their live state."""
        session = self.session
        tiles = model.tiles(self._, session.site, session.queues, session.lang, session.now())
        self.ids.tiles.data = [
            {"service": tile.service, "title": tile.title, "line": tile.line, "kind": tile.kind,
             "waiting": tile.waiting, "bg": list(theme.TILE_COLOURS[tile.kind][0]),
             "fg": list(theme.TILE_COLOURS[tile.kind][1]), "disabled": not session.hub_ok,
             "action": self.touch}
            for tile in tiles]

    def touch(self, tile: Any) -> None:
        """A number for a walk-in service; a booking-only one leads straight to booking a time for it (when the
        kiosk may book it: else the notice says where to book, and offers check-in)."""
        if tile.kind == "booking_only":
            self.screen("book").book_service(tile.service)
        else:
            self.screen("ticket").take(tile.service)
