"""The kiosk's Kivy app: layout in ``widgets.kv``, behaviour here.

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

from vuoro import sd_notify
from vuoro.i18n import NATIVE_NAMES, translator
from vuoro.protocol import Topics

from . import model, theme
from .client import HubAnswer, HubClient, Worker, new_key
from .config import TEXT_SCALES, KioskConfig
from .printing import KioskPrinter, PrintOutcome
from .scanner import SerialScanner, WedgeBuffer

log = logging.getLogger("vuoro.kiosk")

LOCALE_DIR = Path(__file__).parent / "locale"
KV_FILE = Path(__file__).parent / "widgets.kv"


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


class SlotsScreen(Screen):
    pass


class ConfirmScreen(Screen):
    pass


class CodeScreen(Screen):
    """A booking code or sign-up code, large, with what to do with it (layout in widgets.kv)."""

    heading = StringProperty("")
    about = StringProperty("")
    big = StringProperty("")
    code_label = StringProperty("")
    code = StringProperty("")
    instruction = StringProperty("")


class BookedScreen(CodeScreen):
    pass


class SignupScreen(CodeScreen):
    pass


def _ui_post(fn: Callable[[], None]) -> None:
    Clock.schedule_once(lambda _dt: fn(), 0)  # schedule_once is safe from any thread


def every(seconds: float, fn: Callable[[], object]) -> Any:
    """Call ``fn`` every ``seconds`` on the UI thread; the ClockEvent, to cancel it.

    Kivy unschedules an interval whose callback returns False, so ``fn``'s own answer never reaches
    the clock: ``check_idle()`` answers False while the visitor is still there, and the idle reset
    once stopped after its first second that way.
    """

    def tick(_dt: float) -> None:
        fn()

    return Clock.schedule_interval(tick, seconds)


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
    slot_cols = NumericProperty(5)
    book_hint = StringProperty("")  # the service chooser's line (or "Just a moment…")
    book_title = StringProperty("")  # the chosen service's name
    book_message = StringProperty("")  # "Someone else has just booked that time…" above the refreshed list
    now_text = StringProperty("")  # the here-and-now button's words; empty when not offered
    confirm_when = StringProperty("")
    booked_code = StringProperty("")
    signup_title = StringProperty("")
    signup_event = StringProperty("")
    signup_place = StringProperty("")
    signup_code = StringProperty("")
    receipt_text = StringProperty("")  # "Printing your receipt…", or why it did not print
    receipt_failed = BooleanProperty(False)

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
        self.events_requested = 0  # GET /events answers asked for (tests wait on the count)
        self.bookable: dict[str, dict[str, Any]] = {}  # service → its GET /slots answer
        self.book_service = ""
        self.book_day: Any = None  # the chosen day (a date) on the slots screen
        self.chosen_slot: dict[str, Any] | None = None  # None with a confirm: the here-and-now slot
        self.book_key: tuple[str, str, str] | None = None  # (service, start or "now", key) until answered
        self.signup_keys: dict[str, str] = {}  # event id → key, until the hub has answered
        self.slots_loaded = 0  # GET /slots answers shown (tests wait on the count)
        self.last_booking: dict[str, Any] | None = None
        self.last_signup: dict[str, Any] | None = None
        self.last_receipt: PrintOutcome | None = None
        self._watchdog: Any = None
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
        # Kivy would look for kiosk.kv by the class name; load ours once per process
        # instead, so tests that build several apps do not stack the rules twice.
        if str(KV_FILE) not in Builder.files:
            Builder.load_file(str(KV_FILE))
        return True

    def build(self) -> KioskRoot:
        root = KioskRoot()
        sm: ScreenManager = root.ids.sm
        sm.transition = NoTransition()  # instant: a slide costs frames on a Pi and confuses some visitors
        for screen in (HomeScreen(), TicketScreen(), CheckinScreen(), NoticeScreen(), EventsScreen(), BookScreen(),
                       SlotsScreen(), ConfirmScreen(), BookedScreen(), SignupScreen()):
            sm.add_widget(screen)
        self.sm = sm
        self._build_languages()
        self._build_keypad()
        from kivy.factory import Factory

        events = Factory.KButton(text=self._("What's on"))
        self.bind(lang=lambda *_: setattr(events, "text", self._("What's on")))
        events.bind(on_release=lambda _b: self.open_events())
        self.screen("signup").ids.actions.add_widget(events, index=1)
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
        self.slot_cols = 3 if self.tall else 5

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
        self._idle_event = every(1.0, self.check_idle)
        self._refresh_event = every(self.kiosk.refresh_seconds, self.refresh_site)
        self._printer_event = every(30.0, self.poll_printer)
        self.refresh_site()
        self.poll_printer()
        self._start_watchdog()

    def _start_watchdog(self) -> None:
        """systemd (Type=notify): READY=1 once the first frame is drawn, WATCHDOG=1 from the Kivy clock.

        The clock runs on the UI thread, so a frozen screen stops feeding the watchdog and systemd
        restarts the kiosk. Outside systemd (no $NOTIFY_SOCKET) nothing is scheduled.
        """
        if not sd_notify.enabled():
            return

        def first_frame(*_args: Any) -> None:
            Window.unbind(on_flip=first_frame)
            sd_notify.ready(f"kiosk {self.kiosk.device} showing its screen")

        Window.bind(on_flip=first_frame)
        interval = sd_notify.watchdog_interval()
        if interval:
            self._watchdog = every(interval, sd_notify.watchdog)

    def on_stop(self) -> None:
        self.shutdown()

    def shutdown(self) -> None:
        if getattr(self, "_closed", False):
            return
        self._closed = True
        sd_notify.stopping()
        for name in ("_idle_event", "_refresh_event", "_printer_event", "_watchdog"):
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
                              on_hub=lambda online: _ui_post(lambda: self.on_hub_presence(online)),
                              # a site's broker (deploy/mosquitto) knows each device by its id and token
                              username=self.kiosk.device, password=self.kiosk.token)
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
            self._probe = every(self.kiosk.probe_seconds, self._probe_once)

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
        # The visitor has gone; the next one must not be handed an earlier visitor's lost ticket.
        self.pending_key = None
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
        # A tap after "not reachable" repeats the request whose answer never came: the same key, so
        # the hub answers with the ticket it may already have made instead of making a second one.
        pending = self.pending_key
        key = pending[1] if pending and pending[0] == service else new_key()
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
        if not answer.broken:
            self.pending_key = None  # the hub answered (a ticket or a refusal): the request is settled
        if answer.ok and isinstance(answer.body, dict):
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
            elif action == "events":
                button = Factory.KButton(text=self._("What's on"), bg=theme.PRIMARY_BG)
                button.bind(on_release=lambda _b: self.open_events())
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
        self.reload_events()

    def reload_events(self) -> None:
        """Ask the hub again (after a sign-up or a refusal) without leaving the screen showing."""
        self.worker.run(lambda: self.client.events(7), self._events_done)

    def _events_done(self, answer: HubAnswer | None) -> None:
        self.events_requested += 1
        if answer is not None and answer.ok:
            body = answer.body
            items = body.get("events") if isinstance(body, dict) else body
            self._events = [e for e in items or [] if isinstance(e, dict)]
        else:
            self._events = [None]  # marker: not available (yet)
        self.events_loaded = True
        self.render_events()

    def render_events(self, loading: bool = False) -> None:
        from kivy.factory import Factory

        box = self.screen("events").ids.events
        box.clear_widgets()

        def label(text: str, size: float = 20, bold: bool = False, colour: Any = theme.TEXT) -> Label:
            widget = Label(text=text, color=colour, font_size=self.u * size, bold=bold, halign="left",
                           valign="middle", size_hint_y=None)
            widget.bind(width=lambda lb, w: setattr(lb, "text_size", (w, None)),
                        texture_size=lambda lb, ts: setattr(lb, "height", ts[1]))
            return widget

        if loading:
            box.add_widget(label(self._("Just a moment…")))
        elif self._events == [None]:
            box.add_widget(label(self._("The programme of events will be shown here soon. "
                                        "Ask at the desk what's on today.")))
        elif not self._events:
            box.add_widget(label(self._("Nothing more on today.")))
        else:
            now = datetime.now().astimezone()
            for event in self._events[:12]:
                span, title, extra = model.event_line(self._, event, now)
                row = BoxLayout(orientation="horizontal", size_hint_y=None, spacing=self.u * 8)
                text = BoxLayout(orientation="vertical", size_hint_y=None, spacing=self.u * 2)
                head = label(f"{span}  {title}", 21, True,
                             theme.MUTED_TEXT if event.get("state") == "cancelled" else theme.TEXT)
                text.add_widget(head)
                parts = [head]
                if extra:
                    state = event.get("state")
                    strong = state in ("cancelled", "sold_out")
                    more = label(extra, 19, strong, theme.ALERT_BG if strong else theme.MUTED_TEXT)
                    text.add_widget(more)
                    parts.append(more)

                def fit(*_a: Any, t: BoxLayout = text, r: BoxLayout = row, p: list[Label] = parts) -> None:
                    t.height = sum(w.height for w in p) + self.u * 2 * (len(p) - 1)
                    r.height = max(t.height, self.u * 56 if len(r.children) > 1 else 0)

                for part in parts:
                    part.bind(height=fit)
                row.add_widget(text)
                kind = model.signup_kind(event)
                if kind is not None:
                    button = Factory.KButton(
                        text=self._("Sign up") if kind == "seat" else self._("Join the waiting list"),
                        bg=theme.PRIMARY_BG, bold=True, size_hint=(None, None), width=self.u * 170,
                        height=self.u * 56, pos_hint={"center_y": 0.5}, disabled=not self.hub_ok)
                    button.event_id = str(event["id"])
                    button.bind(on_release=lambda b, e=event: self.sign_up(e))
                    row.add_widget(button)
                fit()
                box.add_widget(row)

    def sign_up(self, event: dict[str, Any]) -> None:
        if self.busy or not self.hub_ok:
            return
        self.busy = True
        event_id, lang = str(event.get("id") or ""), self.lang
        # A retry after "not reachable" reuses the key: one visitor, one seat.
        key = self.signup_keys.setdefault(event_id, new_key())
        self.signup_title = self._("Just a moment…")

        def job() -> None:
            answer = self.client.signup(event_id, lang, key)
            _ui_post(lambda: self._signup_answer(event_id, answer))
            if answer.ok and isinstance(answer.body, dict):
                outcome = self._print_receipt(lambda p: p.print_signup(answer.body, self._site_name(), lang))
                _ui_post(lambda: self._receipt_printed(outcome, str(answer.body.get("code") or "")))

        self.worker.run(job)

    def _signup_answer(self, event_id: str, answer: HubAnswer) -> None:
        self.busy = False
        if answer.ok and isinstance(answer.body, dict):
            self.signup_keys.pop(event_id, None)
            self.last_signup = answer.body
            result = model.signup_result(self._, answer.body, datetime.now().astimezone())
            self.signup_title, self.signup_place, self.signup_event = result.title, result.place, result.event
            self.signup_code = str(answer.body.get("code") or "")
            self._receipt_started()
            self.sm.current = "signup"
            return
        if answer.broken:
            self.hub_down()
        else:
            self.signup_keys.pop(event_id, None)
            self.reload_events()  # the list was stale: show what is true now
        self.show_notice(model.signup_refusal(self._, answer.code))

    # -- receipts for bookings and sign-ups ---------------------------------------------------
    def _site_name(self) -> str:
        return str(self.site.get("name") or "")

    def _print_receipt(self, make: Callable[[KioskPrinter], PrintOutcome]) -> PrintOutcome:
        printer = self.printer
        if printer is None:
            return PrintOutcome(False, None, "no printer")
        return make(printer)

    def _receipt_started(self) -> None:
        self.last_receipt = None
        self.receipt_failed = False
        self.receipt_text = self._("Printing your receipt…") if self.printer and self.printer.present else ""

    def _receipt_printed(self, outcome: PrintOutcome, code: str) -> None:
        self.last_receipt = outcome
        if outcome.printed:
            self.receipt_failed = False
            self.receipt_text = self._("Take your receipt.")
        elif outcome.state is None:
            self.receipt_failed = False
            self.receipt_text = self._("Please write down your code.")
        else:
            self.receipt_failed = True
            self.receipt_text = (model.print_problem(self._, outcome.state) + " "
                                 + self._("Please write down your code: {code}").format(code=code))

    # -- book a time ---------------------------------------------------------------------------
    def open_booking(self) -> None:
        """Ask the hub which services take bookings here (GET /slots answers for those that do)."""
        self.book_message = ""
        self.book_hint = self._("Just a moment…")
        self.screen("book").ids.book_services.clear_widgets()
        self.sm.current = "book"
        services = [str(s["id"]) for s in self.site.get("services") or [] if isinstance(s, dict) and s.get("id")]
        self.worker.run(lambda: [(sid, self.client.slots(sid, 7)) for sid in services], self._bookable_done)

    def _bookable_done(self, answers: list[tuple[str, HubAnswer]] | None) -> None:
        answers = answers or []
        if answers and all(answer.broken for _sid, answer in answers):
            self.hub_down()
            self.show_notice(model.hub_down(self._))
            return
        self.bookable = {sid: answer.body for sid, answer in answers
                         if answer.ok and isinstance(answer.body, dict)}
        if self.sm.current != "book":
            return  # the visitor has gone elsewhere meanwhile
        if len(self.bookable) == 1:
            self.choose_service(next(iter(self.bookable)))
            return
        self.render_book_services()

    def _service_title(self, service: str) -> str:
        names = self.queues.get(service, {}).get("names")
        if names is None:
            names = next((s.get("names") for s in self.site.get("services") or []
                          if isinstance(s, dict) and s.get("id") == service), None)
        return model.service_name(names, self.lang, service)

    def render_book_services(self) -> None:
        grid = self.screen("book").ids.book_services
        grid.clear_widgets()
        if not self.bookable:
            self.book_hint = self._("Times cannot be booked here right now. You can book at the desk, "
                                    "on the web or by phone.")
            return
        self.book_hint = self._("What do you want to book a time for?")
        today = datetime.now().astimezone().date()
        for sid, body in self.bookable.items():
            if body.get("here_and_now"):
                line = self._("Free right away")
            else:
                days = model.slot_days(body.get("slots"))
                if days:
                    start = model.parse_time(days[0][1][0].get("start"))
                    line = self._("Next free time: {when}").format(
                        when=model.booking_when(self._, start, None, today)) if start else ""
                else:
                    line = self._("No free times in the next days")
            tile = ServiceTile(service=sid, title=self._service_title(sid), line=line,
                               bg=list(theme.BOOKING_BG), fg=list(theme.BOOKING_FG))
            tile.bind(on_release=lambda t: self.choose_service(t.service))
            grid.add_widget(tile)

    def choose_service(self, service: str) -> None:
        self.book_service = service
        self.book_title = self._service_title(service)
        self.book_day = None
        self.book_message = ""
        self.show_slots(self.bookable.get(service) or {})

    def slots_back(self) -> None:
        if len(self.bookable) > 1:
            self.book_message = ""
            self.render_book_services()
            self.sm.current = "book"
        else:
            self.go("home")

    def show_slots(self, body: dict[str, Any]) -> None:
        from kivy.factory import Factory

        self.bookable[self.book_service] = body
        today = datetime.now().astimezone().date()
        days = model.slot_days(body.get("slots"))[:7]
        if self.book_day not in [d for d, _s in days]:
            self.book_day = days[0][0] if days else today
        strip = self.screen("slots").ids.days
        strip.clear_widgets()
        for day, _slots in days:
            chosen = day == self.book_day
            label = model.day_label(self._, day, today, short=True)
            dated = "/" in label  # "tor 26/11" on two lines; "I dag" stays on one
            button = Factory.KButton(text="\n".join(label.rsplit(" ", 1)) if dated else label,
                                     bg=theme.LANG_ON_BG if chosen else theme.LANG_BG,
                                     fg=theme.LANG_ON_FG if chosen else theme.LANG_FG, bold=chosen,
                                     font_size=self.u * 16)
            button.day = day
            button.bind(on_release=lambda b: self.choose_day(b.day))
            strip.add_widget(button)
        now = body.get("here_and_now")
        start = model.parse_time(now.get("start")) if isinstance(now, dict) else None
        end = model.parse_time(now.get("end")) if isinstance(now, dict) else None
        self.now_text = (self._("Now – free right away ({span})").format(
            span=start.strftime("%H:%M") + "–" + end.strftime("%H:%M"))
            if start and end and self.book_day == today else "")
        grid = self.screen("slots").ids.slots
        grid.clear_widgets()
        for slot in dict(days).get(self.book_day, []):
            slot_start = model.parse_time(slot.get("start"))
            if slot_start is None:
                continue
            button = Factory.KButton(text=slot_start.strftime("%H:%M"), bg=theme.KEY_BG, fg=theme.KEY_FG,
                                     bold=True, font_size=self.u * 24, disabled=not self.hub_ok)
            button.slot = slot
            button.bind(on_release=lambda b: self.pick_slot(b.slot))
            grid.add_widget(button)
        if not days and not self.now_text:
            self.book_message = self.book_message or self._("There are no free times in the next days. "
                                                            "Please ask at the desk.")
        self.slots_loaded += 1
        self.sm.current = "slots"

    def choose_day(self, day: Any) -> None:
        self.book_day = day
        self.book_message = ""
        self.show_slots(self.bookable.get(self.book_service) or {})
        self.screen("slots").ids.slot_scroll.scroll_y = 1  # back to the top

    def refresh_slots(self) -> None:
        service = self.book_service
        self.worker.run(lambda: self.client.slots(service, 7), lambda a: self._slots_refreshed(service, a))

    def _slots_refreshed(self, service: str, answer: HubAnswer | None) -> None:
        if answer is None or answer.broken:
            self.hub_down()
            self.show_notice(model.hub_down(self._))
            return
        if service != self.book_service or self.sm.current not in ("slots", "confirm", "notice", "book"):
            return
        if answer.ok and isinstance(answer.body, dict):
            self.show_slots(answer.body)
        else:
            self.show_notice(model.booking_refusal(self._, answer.code))

    def pick_slot(self, slot: dict[str, Any] | None) -> None:
        """A time (or None: the here-and-now slot) chosen: ask the visitor to confirm it."""
        if not self.hub_ok:
            return
        body = self.bookable.get(self.book_service) or {}
        chosen = slot if slot is not None else body.get("here_and_now")
        if not isinstance(chosen, dict):
            return
        start, end = model.parse_time(chosen.get("start")), model.parse_time(chosen.get("end"))
        if start is None:
            return
        self.chosen_slot = slot
        today = datetime.now().astimezone().date()
        self.confirm_when = (self._("Now, {span}").format(span=start.strftime("%H:%M") + "–" + end.strftime("%H:%M"))
                             if slot is None and end is not None else model.booking_when(self._, start, end, today))
        wanted = "now" if slot is None else str(slot.get("start"))
        if self.book_key is None or self.book_key[:2] != (self.book_service, wanted):
            self.book_key = (self.book_service, wanted, new_key())
        self.sm.current = "confirm"

    def confirm_booking(self) -> None:
        if self.busy or not self.hub_ok or self.book_key is None:
            return
        self.busy = True
        self.busy_text = self._("Just a moment…")
        service, wanted, key = self.book_key
        lang, site_name = self.lang, self._site_name()
        start = None if wanted == "now" else wanted

        def job() -> None:
            answer = self.client.book(service, start, lang, key)
            _ui_post(lambda: self._booking_answer(answer))
            body = answer.body if isinstance(answer.body, dict) else {}
            booking = body.get("booking") if isinstance(body.get("booking"), dict) else None
            if not answer.ok or booking is None:
                return
            if isinstance(body.get("ticket"), dict):  # here-and-now: checked in at once, a queue ticket
                outcome = self._print(body["ticket"], lang, booking, str(booking.get("code") or ""))
                _ui_post(lambda: self._printed(outcome))
            else:
                outcome = self._print_receipt(lambda p: p.print_booking(booking, site_name, lang))
                _ui_post(lambda: self._receipt_printed(outcome, str(booking.get("code_display")
                                                                     or booking.get("code") or "")))

        self.worker.run(job)

    def _booking_answer(self, answer: HubAnswer) -> None:
        self.busy = False
        self.busy_text = ""
        body = answer.body if isinstance(answer.body, dict) else {}
        booking = body.get("booking") if isinstance(body.get("booking"), dict) else None
        if answer.ok and booking is not None:
            self.book_key = None
            self.last_booking = booking
            if isinstance(body.get("ticket"), dict):
                self.show_ticket(body["ticket"], booking)
                self.refresh_site()
                return
            start, end = model.parse_time(booking.get("start")), model.parse_time(booking.get("end"))
            if start is not None:
                self.confirm_when = model.booking_when(self._, start, end, datetime.now().astimezone().date())
            self.booked_code = str(booking.get("code_display") or booking.get("code") or "")
            self._receipt_started()
            self.sm.current = "booked"
            return
        if answer.broken:  # the key is kept: "Book this time" again is the same booking
            self.hub_down()
            self.show_notice(model.booking_refusal(self._, answer.code))
            return
        self.book_key = None
        notice = model.booking_refusal(self._, answer.code)
        if answer.code in model.TAKEN:
            self.book_message = notice.body  # said above the refreshed list
            self.sm.current = "slots"
            self.refresh_slots()
        else:
            self.show_notice(notice)
