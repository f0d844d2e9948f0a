"""The Kivy signage app: layout in ``signage.kv``, behaviour here.

The screen is redrawn from ``display.present.present`` whenever the MQTT
client reports a change, plus once a second for the clock and for the end
of a call's highlight. MQTT callbacks arrive on paho's thread; they only
set a flag and schedule a redraw on Kivy's thread (``Clock.schedule_once``
is safe to call from another thread), so the UI never touches the state
without the client's lock.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import qrcode
from kivy.app import App
from kivy.clock import Clock
from kivy.core.text import Label as CoreLabel
from kivy.event import EventDispatcher
from kivy.graphics import Color, InstructionGroup, Rectangle, RoundedRectangle
from kivy.lang import Builder
from kivy.properties import BooleanProperty, ListProperty, NumericProperty, StringProperty
from kivy.uix.boxlayout import BoxLayout
from kivy.uix.label import Label
from kivy.uix.layout import Layout

from vuoro import sd_notify

from .present import ScreenText, fixed_languages, present
from .state import SignageState, Update


def _rgba(hex_colour: str) -> tuple[float, float, float, float]:
    value = hex_colour.lstrip("#")
    return (int(value[0:2], 16) / 255, int(value[2:4], 16) / 255, int(value[4:6], 16) / 255, 1.0)


# High contrast for a hall (WCAG AA with a wide margin): white on deep navy is
# ≈ 16:1, the yellow accent on navy ≈ 12:1, navy on the yellow highlight the same,
# the muted grey ≈ 9:1, the warning/bad colours ≥ 7:1 on the panels.
COLORS = SimpleNamespace(
    BG=_rgba("#0B1524"),
    BAR=_rgba("#060D18"),
    PANEL=_rgba("#15233A"),
    TEXT=_rgba("#FFFFFF"),
    MUTED=_rgba("#C3CEDD"),
    ACCENT=_rgba("#FFD23F"),
    HILITE=_rgba("#FFD23F"),
    GOOD=_rgba("#8EEBA0"),
    WARN=_rgba("#FFB454"),
    BAD=_rgba("#FF9A90"),
)


class Scale(EventDispatcher):
    """1 u = one pixel on a 1080-pixel short side (of the screen as it is, see ``SignageScreen.on_size``)."""

    u = NumericProperty(1.0)


SCALE = Scale()
SMALLEST_FIT_PX = 8  # a text that must be whole is drawn smaller than its floor rather than cut
WRAP_GAIN = 1.1  # a FitLabel wraps only if that makes its text at least this much larger


def fit_font(text: str, font_name: str, largest: float, room: tuple[float, float], max_lines: int = 1,
             halign: str = "center", lead_em: float = 0.0) -> tuple[int, float]:
    """The largest font size (whole pixels, at most ``largest``) at which ``text`` fits ``room`` (width,
    height; a height of 0: any) on at most ``max_lines`` lines broken between words, never inside one,
    after ``lead_em`` font sizes of the width (a sign before it that grows with it); and the width of its
    widest line then. Below ``SMALLEST_FIT_PX`` it gives up (and says that size)."""
    room_width, height = room
    words = text.split()

    def fits(size: int) -> float | None:
        width = room_width - lead_em * size
        core = CoreLabel(text=text, font_name=font_name, font_size=size, halign=halign,
                         text_size=(width if max_lines > 1 else None, None))
        core.resolve_font_name()
        if max_lines > 1 and any(core.get_extents(word)[0] > width for word in words):
            return None  # Kivy would break the word itself ("Kansalais/palvelupiste")
        core.render()  # the layout only (no texture): _cached_lines and _internal_size are Kivy's own result
        text_w, text_h = core._internal_size
        if text_w > width or (height and text_h > height) or len(core._cached_lines) > max_lines:
            return None
        return float(text_w)

    high = int(largest)
    if (line := fits(high)) is not None:
        return high, line
    low = SMALLEST_FIT_PX  # fits, or nothing does: a binary search between the two
    while high - low > 1:
        middle = (low + high) // 2
        if fits(middle) is None:
            high = middle
        else:
            low = middle
    return low, fits(low) or room_width - lead_em * low


class FitLabel(Label):
    """A text as large as its room allows, up to ``max_font_size``, on at most ``max_lines`` lines broken
    between words. ``room_width``/``room_height`` (0: any height) say the room; the kv rule places the label.

    The ticket and the desk are read whole from across the hall: they have no ``min_font_size`` and are
    never shortened. A heading or the site's name stops shrinking at its ``min_font_size`` (the type floor)
    and is shortened with an ellipsis there instead."""

    max_font_size = NumericProperty(40.0)
    min_font_size = NumericProperty(0.0)  # 0: whole, however small (else: shortened below this size)
    max_lines = NumericProperty(1)
    room_width = NumericProperty(0.0)
    room_height = NumericProperty(0.0)
    one_line_min = NumericProperty(0.0)  # on one line if it fits at this size (else wrapped, if larger)
    lead_em = NumericProperty(0.0)  # room kept before the text, in font sizes (the desk's arrow)

    def __init__(self, **kwargs: Any):
        self._refit = Clock.create_trigger(lambda dt: self.fit(), -1)  # once, before the next frame
        super().__init__(**kwargs)
        for name in ("text", "font_name", "max_font_size", "min_font_size", "max_lines", "room_width",
                     "room_height", "halign", "one_line_min", "lead_em", "width"):
            self.fbind(name, self._refit)
        self._refit()

    def fit(self) -> None:
        if not self.text.strip() or self.room_width < 1:
            return
        room = (self.room_width, self.room_height)
        size, line_width = fit_font(self.text, self.font_name, self.max_font_size, room, 1, self.halign, self.lead_em)
        if self.max_lines > 1 and size < self.one_line_min:
            # More lines only below one_line_min and for a clear gain: "Skranke 3" on one line at 49 u reads
            # better than "Skranke / 3" at 68 u.
            wrapped, wrapped_width = fit_font(self.text, self.font_name, self.max_font_size, room,
                                              int(self.max_lines), self.halign, self.lead_em)
            if wrapped >= size * WRAP_GAIN:
                size, line_width = wrapped, wrapped_width
        self.shorten = size < self.min_font_size
        self.font_size = max(size, self.min_font_size)
        # A label sized by its text is as wide as its widest line; one with its own width aligns the text in it.
        self.text_size = (line_width + 1 if self.size_hint_x is None else self.width, None)
        self.texture_update()


class TopBar(BoxLayout):
    site_name = StringProperty("")
    clock = StringProperty("")
    offline = BooleanProperty(False)
    offline_text = StringProperty("")


class CallPanel(BoxLayout):
    heading = StringProperty("")
    ticket = StringProperty("")
    counter = StringProperty("")
    highlight = BooleanProperty(False)


class RecentRow(BoxLayout):
    ticket = StringProperty("")
    counter = StringProperty("")


class NoneRow(BoxLayout):
    text = StringProperty("")


class QueueRowW(BoxLayout):
    service = StringProperty("")
    name = StringProperty("")
    waiting = StringProperty("")
    wait = StringProperty("")
    open = BooleanProperty(True)
    show_waiting = BooleanProperty(True)  # a closed or booking-only service says only that
    stacked = BooleanProperty(False)  # "4 waiting" above "about 8 min": side by side they would not fit
    gap = NumericProperty(0.0)  # between the two side by side (the kv rule's)

    def on_kv_post(self, base_widget: Any) -> None:
        for name in ("width", "waiting", "wait", "show_waiting", "gap"):
            self.fbind(name, self._restack)
        self._restack()

    def _restack(self, *_: Any) -> None:
        self.stacked = self.show_waiting and not side_by_side(
            (self.ids.count, self.waiting), (self.ids.wait, self.wait), self.gap, self.width)


class EventRowW(BoxLayout):
    time = StringProperty("")
    title = StringProperty("")
    room = StringProperty("")
    status = StringProperty("")
    kind = StringProperty("scheduled")
    tentative = BooleanProperty(False)


def side_by_side(first: tuple[Label, str], second: tuple[Label, str], gap: float, width: float) -> bool:
    """Whether two texts fit on one line of ``width``, ``gap`` apart, each in its label's font. (The texts
    are given: a kv binding may set the labels' own after this runs.)"""
    (one, one_text), (two, two_text) = first, second
    return one._label.get_extents(one_text)[0] + gap + two._label.get_extents(two_text)[0] <= width


class HoursBar(BoxLayout):
    hours = StringProperty("")
    building = StringProperty("")
    staffed = BooleanProperty(True)
    portrait = BooleanProperty(False)
    stacked = BooleanProperty(False)  # the building's hours under who is here: side by side they would not fit
    gap = NumericProperty(0.0)  # between the two side by side (the kv rule's)

    def on_kv_post(self, base_widget: Any) -> None:
        for name in ("hours", "building", "gap"):
            self.fbind(name, self._restack)
        self.ids.room.fbind("width", self._restack)

    def _restack(self, *_: Any) -> None:
        self.stacked = bool(self.hours and self.building) and not side_by_side(
            (self.ids.hours, self.hours), (self.ids.building, self.building), self.gap, self.ids.room.width)


class MessageBar(BoxLayout):
    text = StringProperty("")


class SignageScreen(BoxLayout):
    """Either layout: the same ids, arranged for landscape or portrait."""

    heading_recent = StringProperty("")
    heading_queues = StringProperty("")
    heading_events = StringProperty("")
    queues_height = NumericProperty(0)  # the queue rows' own height (portrait sizes its middle band by it)
    recent_rows = ListProperty([])
    queue_rows = ListProperty([])
    event_rows = ListProperty([])
    shown: ScreenText | None = None

    def __init__(self, **kwargs: Any):
        self._filled: dict[str, tuple[Any, float]] = {}
        super().__init__(**kwargs)

    def on_size(self, screen: Any, size: Any) -> None:
        # The scale follows the screen as it is: a full-screen app whose panel is not the size it was
        # configured for (the ARM guest's 1280x720 at a 1080p scale cut the ticket to "K...").
        if min(size) > 100:  # (not the 100x100 every widget starts as)
            SCALE.u = min(size) / 1080.0

    def on_kv_post(self, base_widget: Any) -> None:
        # A panel's height is known only after layout: refit its rows then.
        for box_id in ("recent", "queues", "events"):
            self.ids[box_id].bind(size=lambda *_: self.shown is not None and self.show(self.shown))

    def show(self, text: ScreenText) -> None:
        """Copy the presented text into the widgets; rebuild a list only if it changed."""
        ids = self.ids
        top = ids.top
        top.site_name, top.clock, top.offline, top.offline_text = (
            text.site_name, text.clock, text.offline, text.offline_text)
        call = ids.call
        call.heading, call.ticket, call.counter, call.highlight = (
            text.heading_call, text.call_ticket, text.call_counter, text.highlight)
        self.heading_recent, self.heading_queues, self.heading_events = (
            text.heading_recent, text.heading_queues, text.heading_events)
        ids.hours.hours, ids.hours.building, ids.hours.staffed = text.hours, text.building, text.staffed
        ids.message.text = text.message
        self.recent_rows = list(text.recent)
        self.queue_rows = list(text.queues)
        self.event_rows = list(text.events)
        self._fill("recent", (text.recent, text.no_recent), lambda: [
            RecentRow(ticket=t, counter=c) for t, c in text.recent
        ] or ([NoneRow(text=text.no_recent)] if text.no_recent else []))
        self._fill("queues", text.queues, lambda: [
            QueueRowW(service=q.service, name=q.name, waiting=q.waiting, wait=q.wait, open=q.open,
                      show_waiting=q.open and q.mode != "booking_only")
            for q in text.queues
        ])
        self._fill("events", (text.events, text.no_events), lambda: [
            EventRowW(time=e.time, title=e.title, room=e.room, status=e.status, kind=e.kind, tentative=e.tentative)
            for e in text.events
        ] or [NoneRow(text=text.no_events)])
        self._draw_door(text)
        self.shown = text

    def _draw_door(self, text: ScreenText) -> None:
        """A door screen's QR, drawn over the lower right corner (canvas.after): white box, the code's modules,
        and "Scan to take a number" under it. Redrawn only when the address, words or size change."""
        key = (text.door_url, text.door_text, tuple(self.size))
        if getattr(self, "_door_key", None) == key:
            return
        self._door_key = key
        group = getattr(self, "_door_group", None)
        if group is None:
            group = self._door_group = InstructionGroup()
            self.canvas.after.add(group)
        group.clear()
        if not text.door_url:
            return
        qr = qrcode.QRCode(border=2, error_correction=qrcode.constants.ERROR_CORRECT_M)
        qr.add_data(text.door_url)
        matrix = qr.get_matrix()
        u = SCALE.u
        side, pad = 250 * u, 14 * u
        label = CoreLabel(text=text.door_text, font_name="Roboto-Bold", font_size=40 * u, halign="center",
                          text_size=(side, None))
        label.refresh()
        words = label.texture
        width, height = side + 2 * pad, side + words.height + 3 * pad
        x, y = self.right - width - 24 * u, self.y + 96 * u
        group.add(Color(*COLORS.ACCENT))
        group.add(RoundedRectangle(pos=(x - 6 * u, y - 6 * u), size=(width + 12 * u, height + 12 * u),
                                   radius=[24 * u]))
        group.add(Color(1, 1, 1, 1))
        group.add(RoundedRectangle(pos=(x, y), size=(width, height), radius=[18 * u]))
        group.add(Color(*COLORS.BG))
        cell = side / len(matrix)
        top = y + height - pad
        for r, row in enumerate(matrix):
            for c, dark in enumerate(row):
                if dark:
                    group.add(Rectangle(pos=(x + pad + c * cell, top - (r + 1) * cell), size=(cell + 0.5, cell + 0.5)))
        group.add(Rectangle(texture=words, pos=(x + pad + (side - words.width) / 2, y + pad), size=words.size))

    def _fill(self, box_id: str, key: Any, make: Callable[[], list[Any]]) -> None:
        """Rebuild a list's rows when its content or its panel's size changed."""
        box = self.ids[box_id]
        if self._filled.get(box_id) == (key, tuple(box.size)):
            return
        self._filled[box_id] = (key, tuple(box.size))
        box.clear_widgets()
        rows = [_measured(row, box.width) for row in make()]
        if box_id == "queues":
            self.queues_height = sum(row.height for row in rows)
        # Only as many whole rows as fit: a long list must not run over the panel below (nor out of its own).
        used = 0.0
        for row in rows:
            used += row.height
            if used > box.height + 1:
                break
            box.add_widget(row)


def _measured(row: Any, width: float) -> Any:
    """A row laid out at the list's width, so a row whose texts wrap knows its height before it is placed."""
    row.width = width
    for _ in range(2):  # the widths reach the labels, then the labels' heights reach the row
        for widget in row.walk(restrict=True):
            if isinstance(widget, Layout):
                widget.do_layout()
            elif isinstance(widget, Label):
                widget.texture_update()
    return row


class Landscape(SignageScreen):
    pass


class Portrait(SignageScreen):
    pass


_loaded = False


def load_kv() -> None:
    global _loaded
    if not _loaded:
        Builder.load_file(str(Path(__file__).with_name("signage.kv")))
        _loaded = True


def build_screen(orientation: str, size: tuple[int, int]) -> SignageScreen:
    """A screen widget for the orientation, scaled for ``size`` (width, height)."""
    SCALE.u = min(size) / 1080.0
    load_kv()
    return Portrait() if orientation == "portrait" else Landscape()


ALTERNATE_S = 12.0  # how long the fixed texts stay in one language before the next one's turn


class ScreenDriver:
    """Redraws a SignageScreen from the state: after each change, and every second.

    The fixed texts (headings, the words of an empty box) take turns in the site's languages, the screen's
    own first, each for ``alternate_s`` seconds of the Kivy clock (0: only the screen's language).
    """

    def __init__(self, screen: SignageScreen, state: SignageState, lang: str, lock: threading.RLock | None = None,
                 alternate_s: float = ALTERNATE_S):
        self.screen = screen
        self.state = state
        self.lang = lang
        self.lock = lock or threading.RLock()
        self.redraws = 0
        self.turn = 0
        self._pending = False
        self.tick = Clock.schedule_interval(lambda dt: self.redraw(), 1.0)
        self.alternation = Clock.schedule_interval(self._next_language, alternate_s) if alternate_s > 0 else None
        # The rows are cut to the panels' height: draw again once the layout knows it.
        screen.bind(size=lambda *_: self.request())

    def on_update(self, update: Update | None = None) -> None:
        """From any thread: ask for a redraw on the UI thread (coalesced)."""
        self.request()

    def request(self) -> None:
        if not self._pending:
            self._pending = True
            Clock.schedule_once(lambda dt: self.redraw(), 0)

    def _next_language(self, dt: float) -> None:
        self.turn += 1
        self.request()

    def redraw(self) -> ScreenText:
        self._pending = False
        with self.lock:
            languages = fixed_languages(self.state, self.lang)
            text = present(self.state, self.lang, fixed_lang=languages[self.turn % len(languages)])
        self.screen.show(text)
        self.redraws += 1
        return text

    def stop(self) -> None:
        self.tick.cancel()
        if self.alternation is not None:
            self.alternation.cancel()


def rss_kb() -> int:
    """Resident memory of this process (VmRSS), in kB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


class SignageApp(App):
    """The full-screen app, wired to an MQTT client and an announcer by ``display.main``."""

    title = "Vuoro signage"

    def __init__(self, orientation: str, size: tuple[int, int], state: SignageState, lang: str,
                 lock: threading.RLock, *, smoke: bool = False, alternate_s: float = ALTERNATE_S,
                 fit_window: bool = False, **kwargs: Any):
        super().__init__(**kwargs)
        self.alternate_s = alternate_s
        self.smoke = smoke  # draw until the full state is on screen, print timings, exit
        self.orientation = orientation
        self.size = size
        # Full screen: lay out for the pixels the panel has, which are not always 1920x1080 (a 720p
        # screen showed the layout at 1.5x, the called ticket as "K..." and the counter cut off).
        self.fit_window = fit_window
        self.state = state
        self.lang = lang
        self.lock = lock
        self.driver: ScreenDriver | None = None
        self.first_frame = threading.Event()
        self.timings: dict[str, float] = {}
        self._watchdog: Any = None  # the Kivy clock's WATCHDOG=1 event, from the first frame on

    def load_kv(self, filename: Any = None) -> bool:
        # Kivy would also find signage.kv by the class name (SignageApp) and apply every rule a
        # second time: each widget drawn twice over itself. build_screen() loads it once.
        load_kv()
        return True

    def build(self) -> SignageScreen:
        from kivy.core.window import Window

        if self.fit_window and min(Window.size) > 0:  # later changes: SignageScreen.on_size follows them
            self.size = (int(Window.width), int(Window.height))
        screen = build_screen(self.orientation, self.size)
        self.driver = ScreenDriver(screen, self.state, self.lang, self.lock, self.alternate_s)
        self.driver.redraw()

        Window.bind(on_flip=self._flipped)
        return screen

    def _flipped(self, window: Any) -> None:
        """After each frame: the benchmark's "start → first frame" and "→ full state drawn"."""
        now = time.monotonic()
        if not self.first_frame.is_set():
            self.timings["first_frame"] = now
            self.first_frame.set()
            sd_notify.ready(f"signage {self.orientation} drawn")  # Type=notify: started once it shows something
            self._start_watchdog()
        shown = self.driver.screen.shown if self.driver else None
        if "full_state" not in self.timings and shown is not None and shown.queues and self.state.complete:
            self.timings["full_state"] = now
            if self.smoke:
                print(json.dumps({**self.timings, "rss_kb": rss_kb()}), flush=True)
                self.stop()

    def _start_watchdog(self) -> None:
        """WATCHDOG=1 from the Kivy clock (the UI thread): a frozen screen stops feeding it and systemd
        restarts the display. From READY=1 on, not before: systemd arms the watchdog at the first ping
        even while the unit is starting, so a ping before a slow first frame started the countdown
        early (the kiosk's start failed that way on the emulated arm64 board, deploy/arm/); start-up is
        TimeoutStartSec='s to limit. Nothing is scheduled outside systemd."""
        interval = sd_notify.watchdog_interval() if sd_notify.enabled() else None
        if interval and self._watchdog is None:
            self._watchdog = Clock.schedule_interval(lambda dt: sd_notify.watchdog(), interval)

    def on_stop(self) -> None:
        if self._watchdog is not None:
            self._watchdog.cancel()
        sd_notify.stopping()

    def on_update(self, update: Update | None = None) -> None:
        if self.driver:
            self.driver.on_update(update)
