"""The kiosk's Kivy app: builds the screens, navigates, resets for the next visitor, wires MQTT and scanners.

The screens own their flows (``kiosk/screens/``), over one shared
``Session``; the picture of the hub is ``HubWatch``'s. Layout is in the
``.kv`` files, each loaded once per process.

Threads: the Kivy main thread only draws and reacts. HTTP and printing run
on ``Worker`` threads and come back with ``Clock.schedule_once``; MQTT
messages arrive on paho's thread and come back the same way; the serial
scanner has its own reader thread. Nothing blocking ever runs on the main
thread, so a slow hub never freezes the screen.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from kivy.app import App
from kivy.core.window import Window
from kivy.lang import Builder
from kivy.properties import ObjectProperty
from kivy.uix.boxlayout import BoxLayout
from kivy.uix.screenmanager import NoTransition, ScreenManager

from vuoro import sd_notify
from vuoro.protocol import Topics

from . import widgets  # noqa: F401 - registers the widgets the .kv files use
from .config import KioskConfig
from .hub_watch import HubWatch
from .printing import KioskPrinter
from .scanner import SerialScanner, WedgeBuffer
from .screens import SCREENS, KioskScreen
from .session import Session, every, post

log = logging.getLogger("vuoro.kiosk")

HERE = Path(__file__).parent
# Shared widgets first: the screens' rules use them. A file loaded twice would draw every widget twice.
KV_FILES = (HERE / "widgets.kv", HERE / "app.kv", *sorted((HERE / "screens").glob("*.kv")))


class KioskRoot(BoxLayout):
    """The banner ("not reachable") above the screens."""

    def on_touch_down(self, touch: Any) -> bool:
        App.get_running_app().session.poke()  # any touch restarts the idle countdown
        return super().on_touch_down(touch)


class KioskApp(App):
    session: Session = ObjectProperty(None)

    def __init__(self, config: KioskConfig, *, printer: KioskPrinter | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.title = "Vuoro kiosk"
        self.session = Session(config, printer=printer)
        self.watch = HubWatch(self.session, mqtt_up=self.mqtt_up, on_site=self._start_link)
        self.link: Any = None
        self.scanner: SerialScanner | None = None
        self.wedge = WedgeBuffer()
        self._timers: list[Any] = []

    # -- building -------------------------------------------------------------------
    def load_kv(self, filename: Any = None) -> bool:
        # Kivy would also look for a kv file named after the app; load ours once per process instead,
        # so tests that build several apps do not stack the rules twice.
        for path in KV_FILES:
            if str(path) not in Builder.files:
                Builder.load_file(str(path))
        return True

    def build(self) -> KioskRoot:
        root = KioskRoot()
        sm: ScreenManager = root.ids.sm
        sm.transition = NoTransition()  # instant: a slide costs frames on a Pi and confuses some visitors
        for screen in SCREENS:
            sm.add_widget(screen(session=self.session))
        self.sm = sm
        Window.bind(size=lambda _w, size: self.session.fit(*size), on_key_down=self._on_key_down,
                    on_textinput=self._on_textinput)
        self.session.fit(*Window.size)
        return root

    # -- navigation -------------------------------------------------------------------
    def screen(self, name: str) -> KioskScreen:
        return self.sm.get_screen(name)

    def go(self, name: str) -> None:
        """To a screen as a button would go there: screens that show the hub's data ask for it fresh."""
        self.screen(name).open()

    # -- lifecycle --------------------------------------------------------------------
    def on_start(self) -> None:
        session, config = self.session, self.session.config
        if session.printer is None:
            session.printer = KioskPrinter(config.printer, on_health=self._printer_health,
                                           languages=config.languages)
        if config.scanner:
            self.scanner = SerialScanner(config.scanner, lambda code: post(lambda: self.screen("checkin").scan(code)),
                                         baudrate=config.scanner_baudrate).start()
        self._timers += [every(1.0, self.check_idle), every(30.0, self.poll_printer)]
        self.watch.start()
        self.poll_printer()
        self._start_watchdog()

    def _start_watchdog(self) -> None:
        """systemd (Type=notify): READY=1 once the first frame is drawn, WATCHDOG=1 from the Kivy clock.

        The clock runs on the UI thread, so a frozen screen stops feeding the watchdog and systemd
        restarts the kiosk. Outside systemd (no $NOTIFY_SOCKET) nothing is scheduled.
        """
        if not sd_notify.enabled():
            return
        device = self.session.config.device

        def first_frame(*_args: Any) -> None:
            Window.unbind(on_flip=first_frame)
            sd_notify.ready(f"kiosk {device} showing its screen")

        Window.bind(on_flip=first_frame)
        interval = sd_notify.watchdog_interval()
        if interval:
            self._timers.append(every(interval, sd_notify.watchdog))

    def on_stop(self) -> None:
        self.shutdown()

    def shutdown(self) -> None:
        if getattr(self, "_closed", False):
            return
        self._closed = True
        sd_notify.stopping()
        for event in self._timers:
            event.cancel()
        self.watch.stop()
        if self.scanner is not None:
            self.scanner.stop()
        if self.link is not None:
            self.link.stop()
            self.link = None
        self.session.close()

    # -- MQTT: queue states in, presence and printer health out --------------------------------
    def mqtt_up(self) -> bool:
        return self.link is not None and self.link.connected

    def _start_link(self) -> None:
        config = self.session.config
        if self.link is not None or not config.broker:
            return
        site = config.site or str(self.session.site.get("site") or "")
        if not site:
            return
        from .link import KioskLink

        self.link = KioskLink(config.mqtt_settings(), Topics(site, config.root), config.device,
                              on_queue=lambda body: post(lambda: self.on_queue(body)),
                              on_hub=lambda online: post(lambda: self.on_hub_presence(online)),
                              on_events=lambda body: post(lambda: self.screen("events").follow(body)))
        printer = self.session.printer
        if printer is not None and printer.present and printer.printer is not None:
            self.link.printer_health = printer.printer.health
        self.link.start()

    def on_queue(self, body: dict[str, Any]) -> None:
        self.session.queues[body["service"]] = body

    def on_hub_presence(self, online: bool) -> None:
        if not online:  # the hub's last will: probe now rather than wait for a visitor to find out
            self.session.hub_down()

    def _printer_health(self, health: Any) -> None:
        """From the printer (worker thread), after every status reading: tell staff over MQTT."""
        if self.link is not None:
            self.link.printer(health)

    def poll_printer(self) -> None:
        """A status reading now and then, so staff hear about paper-low before a visitor meets it."""
        printer = self.session.printer
        if printer is not None and printer.present:
            self.session.run(printer.status)

    # -- the next visitor ----------------------------------------------------------------
    def check_idle(self, now: float | None = None) -> bool:
        """Back to the start for the next visitor: home screen, default language, normal text."""
        session, config = self.session, self.session.config
        moment = time.monotonic() if now is None else now
        if moment - session.last_touch < config.idle_timeout or session.busy:
            return False
        # The visitor has gone; the next one must not be handed an earlier visitor's lost ticket,
        # booking or seat: requests still unanswered are forgotten with their keys.
        session.keys.clear()
        changed = (self.sm.current != "home" or session.lang != config.language
                   or session.scale != config.text_scale)
        if changed:
            self.screen("home").show()
            session.scale = config.text_scale
            session.set_language(config.language)
        session.last_touch = moment
        return changed

    # -- keyboard-wedge scanners --------------------------------------------------------------
    def _on_textinput(self, _window: Any, text: str) -> None:
        self.wedge.feed(text)

    def _on_key_down(self, _window: Any, key: int, *_args: Any) -> bool:
        if key in (13, 271):  # Enter, keypad Enter
            code = self.wedge.enter()
            if code:
                self.screen("checkin").scan(code)
                return True
        return False
