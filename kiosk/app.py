"""The kiosk's Kivy app: layout in ``kiosk.kv``, behaviour here.

Threads: the Kivy main thread only draws and reacts. HTTP and printing run
on ``Worker`` threads and come back with ``Clock.schedule_once``; MQTT
messages arrive on paho's thread and come back the same way; the serial
scanner has its own reader thread. Nothing blocking ever runs on the main
thread, so a slow hub never freezes the screen.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from kivy.app import App
from kivy.clock import Clock
from kivy.core.window import Window
from kivy.lang import Builder
from kivy.properties import BooleanProperty, ListProperty, NumericProperty, StringProperty
from kivy.uix.boxlayout import BoxLayout
from kivy.uix.button import Button
from kivy.uix.label import Label
from kivy.uix.screenmanager import NoTransition, Screen, ScreenManager

from vuoro.i18n import NATIVE_NAMES, translator
from vuoro.protocol import Topics

from . import model, theme
from .client import HubAnswer, HubClient, Worker, new_key
from .config import TEXT_SCALES, KioskConfig
from .printing import KioskPrinter, PrintOutcome
from .scanner import SerialScanner, WedgeBuffer

log = logging.getLogger("vuoro.kiosk")

LOCALE_DIR = Path(__file__).parent / "locale"
KV_FILE = Path(__file__).parent / "kiosk.kv"


class ServiceTile(Button):
    title = StringProperty("")
    line = StringProperty("")
    service = StringProperty("")
    kind = StringProperty("walk_in")
    waiting = NumericProperty(0)
    bg = ListProperty(list(theme.WALK_IN_BG))
    fg = ListProperty(list(theme.WALK_IN_FG))


class KioskRoot(BoxLayout):
    def on_touch_down(self, touch: Any) -> bool:
        App.get_running_app().poke()  # any touch restarts the idle countdown
        return super().on_touch_down(touch)


class HomeScreen(Screen):
    pass


class TicketScreen(Screen):
    pass


class CheckinScreen(Screen):
    pass


class NoticeScreen(Screen):
    pass


class EventsScreen(Screen):
    pass


class BookScreen(Screen):
    pass


def _ui_post(fn: Callable[[], None]) -> None:
    Clock.schedule_once(lambda _dt: fn(), 0)  # schedule_once is safe from any thread


class KioskApp(App):
    lang = StringProperty("da")
    scale = NumericProperty(1.0)
    u = NumericProperty(1.0)
    tall = BooleanProperty(False)
    tile_cols = NumericProperty(2)
    key_cols = NumericProperty(8)
    hub_ok = BooleanProperty(True)
    busy_text = StringProperty("")
    ticket_number = StringProperty("")
    ticket_service = StringProperty("")
    ticket_place = StringProperty("")
    ticket_instruction = StringProperty("")
    print_failed = BooleanProperty(False)
    code_text = StringProperty("")
    notice_title = StringProperty("")
    notice_body = StringProperty("")

    def __init__(self, config: KioskConfig, *, printer: KioskPrinter | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.kiosk = config
        self.title = "Vuoro kiosk"
        self.lang = config.language
        self.scale = config.text_scale
        self.client = HubClient(config.hub, config.token, config.http_timeout, config.retries)
        self.worker = Worker(_ui_post)
        self.link: Any = None
        self.printer = printer if printer is not None else None
        self.scanner: SerialScanner | None = None
        self.wedge = WedgeBuffer()
        self.site: dict[str, Any] = {}
        self.queues: dict[str, dict[str, Any]] = {}
        self.busy = False
        self.last_touch = time.monotonic()
        self.last_ticket: dict[str, Any] | None = None
        self.last_print: PrintOutcome | None = None
        self.pending_key: tuple[str, str] | None = None  # (service, key): a retry after "unreachable" reuses it
        self._probe: Any = None
        self._events: list[Any] = []
        self.events_loaded = False
        self._tr_cache: dict[str, Callable[[str], str]] = {}

    # -- words ----------------------------------------------------------------------
    def tr(self, msgid: str, lang: str | None = None) -> str:
        language = lang or self.lang
        if language not in self._tr_cache:
            self._tr_cache[language] = translator(LOCALE_DIR, language)
        return self._tr_cache[language](msgid)

    def _(self, msgid: str) -> str:
        return self.tr(msgid)

    # -- building -------------------------------------------------------------------
    def load_kv(self, filename: Any = None) -> bool:
        # Kivy would also find kiosk.kv by the class name; load it once per process
        # instead, so tests that build several apps do not stack the rules twice.
        if str(KV_FILE) not in Builder.files:
            Builder.load_file(str(KV_FILE))
        return True

    def build(self) -> KioskRoot:
        root = KioskRoot()
        sm: ScreenManager = root.ids.sm
        sm.transition = NoTransition()  # instant: a slide costs frames on a Pi and confuses some visitors
        for screen in (HomeScreen(), TicketScreen(), CheckinScreen(), NoticeScreen(), EventsScreen(), BookScreen()):
            sm.add_widget(screen)
        self.sm = sm
        self._build_languages()
        self._build_keypad()
        Window.bind(size=lambda *_: self._layout(), on_key_down=self._on_key_down, on_textinput=self._on_textinput)
        self._layout()
        return root

    def screen(self, name: str) -> Screen:
        return self.sm.get_screen(name)

    def _layout(self) -> None:
        width, height = Window.size
        # One u is a pixel on the 7" 800x480 panel. Portrait screens are scaled by a 600 px wide
        # design so rows of four or five buttons still fit their words without breaking them.
        self.u = min(width / (600 if height > width else 800), height / 480) * self.scale
        self.tall = height > width
        count = max(1, len(self.site.get("services") or []))
        self.tile_cols = 1 if self.tall or count == 1 else 2
        self.key_cols = 6 if self.tall else 8

    def _build_languages(self) -> None:
        box = self.screen("home").ids.langs
        box.clear_widgets()
        from kivy.factory import Factory

        for code in self.kiosk.languages:
            button = Factory.KButton(text=NATIVE_NAMES[code])
            button.font_size = self.u * 17
            self.bind(u=lambda _app, u, b=button: setattr(b, "font_size", u * 17))
            button.lang_code = code
            button.bind(on_release=lambda b: self.set_language(b.lang_code))
            box.add_widget(button)
        self._paint_languages()

    def _paint_languages(self) -> None:
        for button in self.screen("home").ids.langs.children:
            chosen = button.lang_code == self.lang
            button.bg = theme.LANG_ON_BG if chosen else theme.LANG_BG
            button.fg = theme.LANG_ON_FG if chosen else theme.LANG_FG
            button.bold = chosen

    def _build_keypad(self) -> None:
        from kivy.factory import Factory

        pad = self.screen("checkin").ids.keypad
        for char in model.CODE_ALPHABET:
            key = Factory.Key(text=char)
            key.bind(on_release=lambda b: self.key_press(b.text))
            pad.add_widget(key)

    # -- lifecycle --------------------------------------------------------------------
    def on_start(self) -> None:
        if self.printer is None:
            self.printer = KioskPrinter(self.kiosk.printer, on_health=self._printer_health)
        if self.kiosk.scanner:
            self.scanner = SerialScanner(self.kiosk.scanner, lambda code: _ui_post(lambda: self.scanned(code)),
                                         baudrate=self.kiosk.scanner_baudrate).start()
        self._idle_event = Clock.schedule_interval(lambda _dt: self.check_idle(), 1.0)
        self._refresh_event = Clock.schedule_interval(lambda _dt: self.refresh_site(), self.kiosk.refresh_seconds)
        self._printer_event = Clock.schedule_interval(lambda _dt: self.poll_printer(), 30.0)
        self.refresh_site()
        self.poll_printer()

    def on_stop(self) -> None:
        self.shutdown()

    def shutdown(self) -> None:
        if getattr(self, "_closed", False):
            return
        self._closed = True
        for name in ("_idle_event", "_refresh_event", "_printer_event"):
            event = getattr(self, name, None)
            if event is not None:
                event.cancel()
        if self._probe is not None:
            self._probe.cancel()
        if self.scanner is not None:
            self.scanner.stop()
        if self.link is not None:
            self.link.stop()
            self.link = None
        self.worker.shutdown()
        if self.printer is not None:
            self.printer.close()
        self.client.close()

    def _start_link(self) -> None:
        if self.link is not None or not self.kiosk.broker:
            return
        site = self.kiosk.site or str(self.site.get("site") or "")
        if not site:
            return
        from .link import KioskLink

        self.link = KioskLink(self.kiosk.broker, Topics(site, self.kiosk.root), self.kiosk.device,
                              on_queue=lambda body: _ui_post(lambda: self.on_queue(body)),
                              on_hub=lambda online: _ui_post(lambda: self.on_hub_presence(online)))
        printer = self.printer
        if printer is not None and printer.present and printer.printer is not None:
            self.link.printer_health = printer.printer.health
        self.link.start()

    def _printer_health(self, health: Any) -> None:
        """From the printer (worker thread), after every status reading: tell staff over MQTT."""
        if self.link is not None:
            self.link.printer(health)

    def poll_printer(self) -> None:
        """A status reading now and then, so staff hear about paper-low before a visitor meets it."""
        if self.printer is not None and self.printer.present:
            self.worker.run(self.printer.status)

    # -- hub state --------------------------------------------------------------------
    def refresh_site(self) -> None:
        self.worker.run(self.client.site, self._site_done)

    def _site_done(self, answer: HubAnswer | None) -> None:
        if answer is None or answer.broken or not isinstance(answer.body, dict):
            self.hub_down()
            return
        self.site = answer.body
        for queue in answer.body.get("queues") or []:
            if isinstance(queue, dict) and isinstance(queue.get("service"), str):
                self.queues[queue["service"]] = queue
        self.hub_up()
        self._layout()
        self.render_tiles()
        self._start_link()

    def on_queue(self, body: dict[str, Any]) -> None:
        self.queues[body["service"]] = body
        self.render_tiles()

    def on_hub_presence(self, online: bool) -> None:
        if not online:  # the hub's last will: probe now rather than wait for a visitor to find out
            self.hub_down()

    def hub_down(self) -> None:
        if self.hub_ok:
            log.warning("hub %s not reachable; probing every %.0f s", self.kiosk.hub, self.kiosk.probe_seconds)
        self.hub_ok = False
        self.render_tiles()
        if self._probe is None:
            self._probe = Clock.schedule_interval(lambda _dt: self._probe_once(), self.kiosk.probe_seconds)

    def _probe_once(self) -> None:
        self.worker.run(self.client.health, self._probe_done)

    def _probe_done(self, answer: HubAnswer | None) -> None:
        if answer is not None and not answer.unreachable and answer.status is not None and answer.status < 500:
            self.refresh_site()  # hub_up() happens once /site has answered

    def hub_up(self) -> None:
        if not self.hub_ok:
            log.info("hub reachable again")
        self.hub_ok = True
        if self._probe is not None:
            self._probe.cancel()
            self._probe = None
        self.render_tiles()

    def render_tiles(self) -> None:
        grid = self.screen("home").ids.tiles
        items = model.tiles(self._, self.site, self.queues, self.lang, datetime.now().astimezone())
        widgets = list(reversed(grid.children))
        if [w.service for w in widgets] != [t.service for t in items]:
            grid.clear_widgets()
            widgets = []
            for item in items:
                tile = ServiceTile(service=item.service)
                tile.bind(on_release=lambda t: self.take_ticket(t.service))
                grid.add_widget(tile)
                widgets.append(tile)
        for tile, item in zip(widgets, items, strict=True):
            tile.title, tile.line, tile.kind, tile.waiting = item.title, item.line, item.kind, item.waiting
            bg, fg = theme.TILE_COLOURS[item.kind]
            tile.bg, tile.fg = list(bg), list(fg)
            tile.disabled = not self.hub_ok

    # -- navigation, language, size, idle ------------------------------------------------
    def go(self, name: str) -> None:
        if name == "checkin":
            self.code_text = ""
        self.sm.current = name

    def set_language(self, lang: str) -> None:
        self.lang = lang
        self._paint_languages()
        self.render_tiles()
        if self.sm.current == "events":
            self.render_events()

    def bigger_text(self) -> None:
        steps = list(TEXT_SCALES)
        index = min(range(len(steps)), key=lambda i: abs(steps[i] - self.scale))
        self.scale = steps[(index + 1) % len(steps)]
        self._layout()

    def poke(self) -> None:
        self.last_touch = time.monotonic()

    def check_idle(self, now: float | None = None) -> bool:
        """Back to the start for the next visitor: home screen, default language, normal text."""
        moment = time.monotonic() if now is None else now
        if moment - self.last_touch < self.kiosk.idle_timeout or self.busy:
            return False
        changed = self.sm.current != "home" or self.lang != self.kiosk.language or self.scale != self.kiosk.text_scale
        if changed:
            self.code_text = ""
            self.sm.current = "home"
            self.scale = self.kiosk.text_scale
            self._layout()
            self.set_language(self.kiosk.language)
        self.last_touch = moment
        return changed

    # -- tickets -------------------------------------------------------------------------
    def take_ticket(self, service: str) -> None:
        if self.busy or not self.hub_ok:
            return  # a second tap while the first is on its way must not make a second ticket
        self.busy = True
        self.busy_text = self._("Just a moment…")
        lang = self.lang
        key = new_key()
        self.pending_key = (service, key)
        self.worker.run(lambda: self._issue_and_print(service, lang, key), lambda _r: None)

    def _issue_and_print(self, service: str, lang: str, key: str) -> None:
        """Worker thread: ask the hub, show the number at once, then print it (the number never waits)."""
        answer = self.client.issue(service, lang, key)
        _ui_post(lambda: self._ticket_answer(service, answer))
        if answer.ok and isinstance(answer.body, dict):
            outcome = self._print(answer.body, lang)
            _ui_post(lambda: self._printed(outcome))

    def _print(self, ticket: dict[str, Any], lang: str, booking: dict[str, Any] | None = None,
               code: str | None = None) -> PrintOutcome:
        printer = self.printer
        if printer is None:
            return PrintOutcome(False, None, "no printer")
        return printer.print_ticket(ticket, str(self.site.get("name") or ""), lang, booking, code)

    def _ticket_answer(self, service: str, answer: HubAnswer) -> None:
        self.busy = False
        self.busy_text = ""
        if answer.ok and isinstance(answer.body, dict):
            self.pending_key = None
            self.show_ticket(answer.body)
            self.refresh_site()
            return
        if answer.broken:
            self.hub_down()
        title = model.service_name(self.queues.get(service, {}).get("names"), self.lang, service)
        self.show_notice(model.ticket_refusal(self._, answer.code, answer.detail, title))
        if not answer.broken:
            self.refresh_site()  # a refusal means our picture of the service was stale

    def show_ticket(self, ticket: dict[str, Any], booking: dict[str, Any] | None = None) -> None:
        self.last_ticket, self.last_print = ticket, None
        self.ticket_number = str(ticket.get("ticket") or "")
        self.ticket_service = model.service_name(ticket.get("service_names"), self.lang,
                                                 str(ticket.get("service") or ""))
        place = model.position_text(self._, ticket.get("position"))
        wait = ticket.get("estimated_wait_min")
        if isinstance(wait, int | float) and wait > 0:
            place += " · " + model.wait_text(self._, wait)
        if booking is not None:
            start = model.parse_time(booking.get("start"))
            if start is not None:
                place = self._("Booked for {time}").format(time=start.strftime("%H:%M")) + " · " + place
        self.ticket_place = place
        self.print_failed = False
        self.ticket_instruction = self._("Printing your ticket…") if self.printer and self.printer.present else (
            self._("Please remember your number and watch the screen."))
        self.sm.current = "ticket"

    def _printed(self, outcome: PrintOutcome) -> None:
        self.last_print = outcome
        if outcome.printed:
            self.print_failed = False
            self.ticket_instruction = self._("Take your ticket and watch the screen.")
        elif outcome.state is None:
            self.print_failed = False
            self.ticket_instruction = self._("Please remember your number and watch the screen.")
        else:
            self.print_failed = True
            self.ticket_instruction = (model.print_problem(self._, outcome.state) + " "
                                       + self._("Please remember your number: {number}").format(
                                           number=self.ticket_number) + "\n"
                                       + self._("Watch the screen; staff have been told."))

    # -- notices ---------------------------------------------------------------------------
    def show_notice(self, notice: model.Notice) -> None:
        from kivy.factory import Factory

        self.notice_title, self.notice_body = notice.title, notice.body
        box = self.screen("notice").ids.actions
        box.clear_widgets()
        for action in notice.actions:
            if action == "checkin":
                button = Factory.KButton(text=self._("I have a booking"), bg=theme.PRIMARY_BG)
                button.bind(on_release=lambda _b: self.go("checkin"))
            elif action == "walk_in" and notice.service:
                button = Factory.KButton(text=self._("Take a ticket instead"), bg=theme.PRIMARY_BG)
                button.bind(on_release=lambda _b, s=notice.service: self.take_ticket(s))
            elif action == "walk_in":
                button = Factory.KButton(text=self._("Take a ticket instead"), bg=theme.PRIMARY_BG)
                button.bind(on_release=lambda _b: self.go("home"))
            else:
                continue
            box.add_widget(button)
        home = Factory.KButton(text=self._("Back to start"))
        home.bind(on_release=lambda _b: self.go("home"))
        box.add_widget(home)
        self.sm.current = "notice"

    # -- check-in ----------------------------------------------------------------------------
    def key_press(self, char: str) -> None:
        if len(self.code_text) < model.CODE_MAX:
            self.code_text += char

    def key_delete(self) -> None:
        self.code_text = self.code_text[:-1]

    def submit_code(self) -> None:
        self.checkin(self.code_text)

    def scanned(self, raw: str) -> None:
        """A code from a scanner (serial or wedge): check in from whatever screen is showing."""
        code = model.clean_code(raw)
        if code is None:
            return
        self.poke()
        self.code_text = code[: model.CODE_MAX] if len(code) <= model.CODE_MAX else code
        self.sm.current = "checkin"
        self.checkin(code)

    def checkin(self, code: str) -> None:
        if self.busy or not code:
            return
        self.busy = True
        self.busy_text = self._("Just a moment…")
        lang, key = self.lang, new_key()
        self.worker.run(lambda: self._checkin_and_print(code, lang, key), lambda _r: None)

    def _checkin_and_print(self, code: str, lang: str, key: str) -> None:
        answer = self.client.checkin(code, lang, key)
        _ui_post(lambda: self._checkin_answer(code, answer))
        body = answer.body if isinstance(answer.body, dict) else {}
        if answer.ok and isinstance(body.get("ticket"), dict):
            outcome = self._print(body["ticket"], lang, body.get("booking") or {}, code)
            _ui_post(lambda: self._printed(outcome))

    def _checkin_answer(self, code: str, answer: HubAnswer) -> None:
        self.busy = False
        self.busy_text = ""
        body = answer.body if isinstance(answer.body, dict) else {}
        if answer.ok and isinstance(body.get("ticket"), dict):
            self.code_text = ""
            self.show_ticket(body["ticket"], body.get("booking") or {})
            self.refresh_site()
            return
        if answer.broken:
            self.hub_down()
        self.show_notice(model.checkin_refusal(self._, answer.code, answer.detail, code))

    # -- keyboard-wedge scanners --------------------------------------------------------------
    def _on_textinput(self, _window: Any, text: str) -> None:
        self.wedge.feed(text)

    def _on_key_down(self, _window: Any, key: int, *_args: Any) -> bool:
        if key in (13, 271):  # Enter, keypad Enter
            code = self.wedge.enter()
            if code:
                self.scanned(code)
                return True
        return False

    # -- what's on --------------------------------------------------------------------------
    def open_events(self) -> None:
        self._events = []
        self.events_loaded = False
        self.render_events(loading=True)
        self.sm.current = "events"
        self.worker.run(self.client.events, self._events_done)

    def _events_done(self, answer: HubAnswer | None) -> None:
        if answer is not None and answer.ok:
            body = answer.body
            items = body.get("events") if isinstance(body, dict) else body
            self._events = [e for e in items or [] if isinstance(e, dict)]
        else:
            self._events = [None]  # marker: not available (yet)
        self.events_loaded = True
        self.render_events()

    def render_events(self, loading: bool = False) -> None:
        box = self.screen("events").ids.events
        box.clear_widgets()

        def line(text: str, size: float = 20, bold: bool = False, colour: Any = theme.TEXT) -> None:
            label = Label(text=text, color=colour, font_size=self.u * size, bold=bold, halign="left",
                          size_hint_y=None)
            label.bind(width=lambda lb, w: setattr(lb, "text_size", (w, None)),
                       texture_size=lambda lb, ts: setattr(lb, "height", ts[1]))
            box.add_widget(label)

        if loading:
            line(self._("Just a moment…"))
        elif self._events == [None]:
            line(self._("The programme of events will be shown here soon. Ask at the desk what's on today."))
        elif not self._events:
            line(self._("Nothing more on today."))
        else:
            now = datetime.now().astimezone()
            for event in self._events[:12]:
                span, title, extra = model.event_line(self._, event, now)
                line(f"{span}  {title}", 22, True)
                if extra:
                    line(extra, 19, colour=theme.MUTED_TEXT)
