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
import math
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from kivy.app import App
from kivy.clock import Clock
from kivy.core.window import Window
from kivy.graphics import Color, InstructionGroup, Line, Rectangle
from kivy.lang import Builder
from kivy.properties import BooleanProperty, NumericProperty, ObjectProperty, StringProperty
from kivy.uix.boxlayout import BoxLayout
from kivy.uix.screenmanager import NoTransition, ScreenManager
from kivy.uix.scrollview import ScrollView

from vuoro import sd_notify
from vuoro.protocol import Topics
from vuoro.speech import Speaker, player_for

from . import keypad, theme, widgets
from .config import KioskConfig
from .focus import Focus, controls, visible, window_box
from .headset import HeadsetWatch
from .hub_watch import HubWatch
from .printing import KioskPrinter
from .scanner import SerialScanner, WedgeBuffer
from .screens import SCREENS, KioskScreen
from .session import Session, every, post
from .voice import SpeechMode

log = logging.getLogger("vuoro.kiosk")

HERE = Path(__file__).parent
# Shared widgets first: the screens' rules use them. A file loaded twice would draw every widget twice.
KV_FILES = (HERE / "widgets.kv", HERE / "app.kv", *sorted((HERE / "screens").glob("*.kv")))


def scroll_into_view(view: ScrollView, widget: Any, padding: float) -> None:
    """Scroll ``view`` so ``widget`` is inside it with ``padding`` to spare (RecycleViews included, whose
    ``scroll_to`` does not work): the padding brings the next row into view, so the keypad can go on to it."""
    content = view.children[0] if view.children else None
    spare = (content.height - view.height) if content is not None else 0
    if spare <= 0:
        return
    _x, top_y = view.to_window(view.x, view.y)
    _wx, wy = widget.to_window(widget.x, widget.y)
    low, high = top_y + padding, top_y + view.height - padding
    if wy < low:
        view.scroll_y = max(0.0, view.scroll_y - (low - wy) / spare)
    elif wy + widget.height > high:
        view.scroll_y = min(1.0, view.scroll_y + (wy + widget.height - high) / spare)


class KioskRoot(BoxLayout):
    """The banner ("not reachable"), the low layout's upper half, and the screens (in a ScrollView that
    scrolls only at the 2.0 text step)."""

    def on_touch_down(self, touch: Any) -> bool:
        App.get_running_app().session.poke()  # any touch restarts the idle countdown
        return super().on_touch_down(touch)


class KioskApp(App):
    session: Session = ObjectProperty(None)
    keypad_used = BooleanProperty(False)  # the keypad has been used: the focus ring shows
    blanked = BooleanProperty(False)  # speech mode's privacy: the screen is black
    warning_seconds = NumericProperty(0)  # "Are you still there?": seconds left (0: no warning)
    upper_text = StringProperty("")  # the low layout's upper half: the site's name and the time

    def __init__(self, config: KioskConfig, *, printer: KioskPrinter | None = None,
                 speaker: Speaker | None = None, clock: Callable[[], datetime] | None = None,
                 **kwargs: Any) -> None:
        """``clock``: tests only, the hub's test clock (``vuoro.clock.FileClock``) in place of the machine's."""
        super().__init__(**kwargs)
        self.title = "Vuoro kiosk"
        theme.use(config.palette)  # before any widget is built: the .kv rules read the palette's colours
        self.session = Session(config, printer=printer, clock=clock)
        self.focus = Focus()
        self.voice = SpeechMode(self, speaker)
        self.headset: HeadsetWatch | None = None
        self.warning: widgets.IdleWarning | None = None
        self._overlay = InstructionGroup()  # the focus ring and the privacy blank, above everything
        self._keypad_text = False
        self._drawn: Any = None  # what the overlay shows now
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
        root = self._make_root()
        Window.bind(size=lambda _w, size: self.session.fit(*size), on_key_down=self._on_key_down,
                    on_textinput=self._on_textinput)
        self.session.fit(*Window.size)
        Window.canvas.after.add(self._overlay)
        return root

    def _make_root(self) -> KioskRoot:
        root = KioskRoot()
        sm: ScreenManager = root.ids.sm
        sm.transition = NoTransition()  # instant: a slide costs frames on a Pi and confuses some visitors
        for screen in SCREENS:
            sm.add_widget(screen(session=self.session))
        self.sm = sm
        sm.bind(current=lambda *_: setattr(root.ids.scroller, "scroll_y", 1))  # a new screen from its top
        self.warning = widgets.IdleWarning()
        return root

    def use_palette(self, palette: str) -> None:
        """The visitor's own contrast (keypad 9, EN 301 549 5.2): the screens are built again in ``palette``
        (the .kv rules read colours when a widget is made) and the visit goes on from the home screen."""
        if palette == theme.PALETTE or self.root is None:
            return
        theme.use(palette)
        old = self.root
        for screen in self.sm.screens:
            screen.detach()
        if self.warning is not None:
            self.warning.dismiss(animation=False)
        self.warning_seconds = 0
        self.root = self._make_root()
        Window.remove_widget(old)
        Window.add_widget(self.root)
        self.session.fit(*Window.size)
        self.focus.clear()
        self._drawn = None

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
        if self.voice.speaker is None and config.speech != "none":
            self.voice.speaker = Speaker(player_for(config.speech, config.speech_device))
        if config.headset_card:
            self.headset = HeadsetWatch(config.headset_card, config.sound_cards)
            if self.headset.present:
                post(self.voice.start)
        self._timers += [every(1.0, self.check_idle), every(30.0, self.poll_printer), every(0.15, self._follow)]
        self.watch.start()
        self.poll_printer()
        self._start_watchdog()

    def _start_watchdog(self) -> None:
        """systemd (Type=notify): READY=1 once the first frame is drawn, then WATCHDOG=1 from the Kivy clock.

        The clock runs on the UI thread, so a frozen screen stops feeding the watchdog and systemd
        restarts the kiosk. The pings start with READY=1, not before: systemd arms the watchdog at the
        first WATCHDOG=1 even while the unit is still starting, so a ping from the clock before a slow
        first frame (fonts, shaders, textures: seen on the emulated arm64 board, deploy/arm/) started
        the 30 s countdown early and the start failed with "failed to send watchdog ping". Start-up
        is TimeoutStartSec='s to limit. Outside systemd (no $NOTIFY_SOCKET) nothing is scheduled.
        """
        if not sd_notify.enabled():
            return
        device = self.session.config.device
        interval = sd_notify.watchdog_interval()

        def first_frame(*_args: Any) -> None:
            Window.unbind(on_flip=first_frame)
            sd_notify.ready(f"kiosk {device} showing its screen")
            if interval and not getattr(self, "_closed", False):
                self._timers.append(every(interval, sd_notify.watchdog))

        Window.bind(on_flip=first_frame)

    def on_stop(self) -> None:
        self.shutdown()

    def shutdown(self) -> None:
        if getattr(self, "_closed", False):
            return
        self._closed = True
        sd_notify.stopping()
        for event in self._timers:
            event.cancel()
        if self.warning is not None:
            self.warning.dismiss(animation=False)
        Window.canvas.after.remove(self._overlay)
        Window.unbind(on_key_down=self._on_key_down, on_textinput=self._on_textinput)
        if self.voice.speaker is not None:
            self.voice.speaker.close()
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
    def idle_limit(self) -> float:
        """Seconds without a touch or key before the kiosk moves on; longer in speech mode (EN 301 549 11.2.2.1)."""
        config = self.session.config
        return config.idle_timeout * (config.speech_time_factor if self.voice.on else 1.0)

    def _visitor_settings(self) -> bool:
        """The visitor has changed something the next visitor should not inherit."""
        session, config = self.session, self.session.config
        return (session.lang != config.language or session.scale != config.text_scale or self.voice.on
                or self.blanked or config.palette != theme.PALETTE)

    def check_idle(self, now: float | None = None) -> bool:
        """(every second, on the Kivy clock) Warn, then move on for the next visitor, in two steps.

        Away from the home screen, after ``idle_timeout`` without a touch or key: the home screen, with the
        visitor's language, text size and speech kept (they may still be there, reading). Another period
        untouched on the home screen: the visitor has gone, and the next one starts with the kiosk's own
        language, normal text, speech off and the volume reset. Before either step, for ``idle_warning``
        seconds, "Are you still there?" with "More time" (spoken too in speech mode). True when it moved on.
        """
        session, config = self.session, self.session.config
        moment = time.monotonic() if now is None else now
        away = self.sm.current != "home"
        if session.busy or not (away or self._visitor_settings()):
            self._warn(0)
            return False
        left = self.idle_limit() - (moment - session.last_touch)
        if left > 0:
            self._warn(math.ceil(left) if left <= min(config.idle_warning, self.idle_limit() / 2) else 0)
            return False
        self._warn(0)
        # The visitor has gone; the next one must not be handed an earlier visitor's lost ticket,
        # booking or seat: requests still unanswered are forgotten with their keys.
        session.keys.clear()
        if away:
            self.screen("home").show()
        else:
            self.voice.stop()
            self.blanked = False
            if self.voice.speaker is not None:
                self.voice.speaker.reset_volume()
            session.scale = config.text_scale
            session.set_language(config.language)
            self.use_palette(config.palette)
            self.keypad_used = False
        session.last_touch = moment
        return True

    def _warn(self, seconds: int) -> None:
        warning = self.warning
        if warning is None:
            return
        if seconds and not self.warning_seconds:
            warning.open(animation=False)  # speech mode reads it out as it reads any new screen
        elif not seconds and self.warning_seconds:
            warning.dismiss(animation=False)
        self.warning_seconds = seconds

    def more_time(self) -> None:
        """The warning's "More time": the countdown starts again from the full time."""
        self.session.poke()
        self._warn(0)

    # -- the keypad and the focus ------------------------------------------------------------
    def focus_root(self) -> Any:
        """What the keypad works on: the warning while it is open, else the current screen."""
        if self.warning is not None and self.warning.parent is not None:
            return self.warning
        return self.sm.current_screen

    def press(self, action: str) -> None:
        """One key of the tactile keypad (kiosk/keypad.py)."""
        voice = self.voice
        self.session.poke()
        if self.warning_seconds:
            self.more_time()  # any key is a sign of life: the warning goes, "More time" is given (5 as well:
            return  # it must not also choose whatever the focus was on under the warning)
        if action == keypad.SPEECH:
            voice.toggle()
            self.blanked = voice.on and self.session.config.speech_blank
            return
        if action == keypad.CONTRAST:
            self.use_palette("standard" if theme.PALETTE == "high_contrast" else "high_contrast")
            if voice.on:
                voice.say(self.session.tr("High contrast.") if theme.PALETTE == "high_contrast"
                          else self.session.tr("Normal colours."))
            return
        if action in (keypad.LOUDER, keypad.SOFTER, keypad.PRIVACY, keypad.REPEAT) and not voice.on:
            return
        if action == keypad.LOUDER:
            voice.louder()
        elif action == keypad.SOFTER:
            voice.softer()
        elif action == keypad.PRIVACY:
            self.blanked = not self.blanked
            voice.say(self.session.tr("Screen off.") if self.blanked else self.session.tr("Screen on."))
        elif action == keypad.REPEAT:
            voice.repeat()
        elif action in (keypad.UP, keypad.DOWN, keypad.PREVIOUS, keypad.NEXT):
            self.keypad_used = True
            self.show_focused(self.focus.move(self.focus_root(), action))
            voice.say_focus()
        elif action == keypad.CHOOSE:
            self.keypad_used = True
            root = self.focus_root()
            widget = self.focus.current(root)
            if widget is not None and not widget.disabled:
                widget.trigger_action(0)
                if voice.on:  # a choice within the screen (a day, a length): say it is now the chosen one
                    Clock.schedule_once(lambda _dt: self._say_chosen(root), 0.1)
        elif action == keypad.BACK:
            self.keypad_used = True
            self.back()
        self._follow()

    def show_focused(self, widget: Any) -> None:
        """Scroll the focused control into view (a list of free times, a screen at the 2.0 text step): the
        next row comes into view with it, so the keypad reaches every row, not only those shown."""
        if widget is None:
            return
        node = widget.parent
        while node is not None and node is not node.parent:
            if isinstance(node, ScrollView) and node.do_scroll_y:
                scroll_into_view(node, widget, widget.height / 2)
            node = node.parent

    def _say_chosen(self, root: Any) -> None:
        widget = self.focus.widget
        if self.focus_root() is root and widget is not None and getattr(widget, "chosen", False):
            self.voice.say_focus(interrupt=False)

    def back(self) -> None:
        """The keypad's back key: the screen's own "Back" (or "Done"), else the home screen."""
        words = {self.session.tr(msgid) for msgid in ("Back", "Done", "Back to start")}
        root = self.focus_root()
        for widget in controls(root):
            if widget.text in words and not widget.disabled:
                widget.trigger_action(0)
                return
        if self.sm.current != "home":
            self.go("home")
        elif self.voice.on:
            self.voice.repeat()

    def _follow(self) -> None:
        """(the clock, several times a second) The focus ring on the focused control; speech follows the screen."""
        self.voice.tick()
        if self.headset is not None:
            plugged = self.headset.poll()
            if plugged is True:
                self.voice.start()
            elif plugged is False:
                self.voice.stop()
                self.blanked = False
        widget = self.focus.current(self.focus_root()) if self.keypad_used else None
        ring = window_box(widget) if widget is not None and visible(widget) else None
        blank = self.blanked and self.voice.on
        if (ring, blank, self.session.u, tuple(Window.size)) != self._drawn:  # redraw only on a change
            self._drawn = (ring, blank, self.session.u, tuple(Window.size))
            self._draw_overlay(ring, blank)
        session = self.session
        if session.low:
            self.upper_text = "\n".join(t for t in (session.site_name, session.now().strftime("%H:%M")) if t)

    def _draw_overlay(self, ring: tuple[float, float, float, float] | None, blank: bool) -> None:
        self._overlay.clear()
        if ring is not None:
            x, y, w, h = ring
            u = self.session.u
            self._overlay.add(Color(*theme.FOCUS_OUTER))
            self._overlay.add(Line(rectangle=(x + 2 * u, y + 2 * u, w - 4 * u, h - 4 * u), width=max(3.0, 3 * u)))
            self._overlay.add(Color(*theme.FOCUS_INNER))
            self._overlay.add(Line(rectangle=(x + 5 * u, y + 5 * u, w - 10 * u, h - 10 * u),
                                   width=max(1.5, 1.5 * u)))
        if blank:
            self._overlay.add(Color(0, 0, 0, 1))
            self._overlay.add(Rectangle(pos=(0, 0), size=Window.size))

    # -- keyboard-wedge scanners and the keypad ------------------------------------------------------
    def _on_textinput(self, _window: Any, text: str) -> None:
        if self._keypad_text:  # the keypad's own digit (NumLock on): not a scanner's character
            self._keypad_text = False
            return
        self.wedge.feed(text)

    def _on_key_down(self, _window: Any, key: int, *_args: Any) -> bool:
        self._keypad_text = key in keypad.KEYPAD_TEXT
        if key in (keypad.ENTER, 271):  # Enter, keypad Enter: the end of a scan, or a person's "choose"
            code = self.wedge.enter()
            if code:
                self.screen("checkin").scan(code)
                return True
        action = keypad.CHOOSE if key == keypad.ENTER else keypad.action(key)
        if action is None:
            return False
        self.press(action)
        return True
