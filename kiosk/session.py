"""What every screen of the kiosk shares: one small object, handed to each screen.

The visitor's choices (language, text size), the size of things on this
panel, whether the hub answers, the hub client, the printer, the
idempotency keys of requests still in flight, and the moment of the last
touch. Screens own their flows and read or change only this; the app wires
it to the window, the clock and MQTT.

``ask`` is the one shape of every flow: ask the hub on a worker thread,
hand the answer to the UI thread, then print (the answer is shown first;
paper never delays it).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Hashable
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from kivy.clock import Clock
from kivy.event import EventDispatcher
from kivy.properties import BooleanProperty, DictProperty, NumericProperty, StringProperty

from vuoro.i18n import translator

from . import model
from .client import HubAnswer, HubClient, Worker, new_key
from .config import TEXT_SCALES, KioskConfig
from .printing import NO_PRINTER, KioskPrinter, PrintOutcome

log = logging.getLogger("vuoro.kiosk")

LOCALE_DIR = Path(__file__).parent / "locale"


def post(fn: Callable[[], None]) -> None:
    """Run ``fn`` on the UI thread (``Clock.schedule_once`` is safe to call from any thread)."""
    Clock.schedule_once(lambda _dt: fn(), 0)


def every(seconds: float, fn: Callable[[], object]) -> Any:
    """Call ``fn`` every ``seconds`` on the UI thread; the ClockEvent, to cancel it.

    Kivy unschedules an interval whose callback returns False, so ``fn``'s own answer never reaches
    the clock: ``check_idle()`` answers False while the visitor is still there, and the idle reset
    once stopped after its first second that way.
    """

    def tick(_dt: float) -> None:
        fn()

    return Clock.schedule_interval(tick, seconds)


class Session(EventDispatcher):
    """The shared state of the kiosk's screens. Event ``on_queues_changed``: a ticket was made or a
    refusal showed our picture was stale (the app fetches GET /site then, unless MQTT delivers it)."""

    __events__ = ("on_queues_changed",)

    lang = StringProperty("da")
    scale = NumericProperty(1.0)  # the A+ button's text size
    u = NumericProperty(1.0)  # one u is a pixel on the 800x480 panel at normal text size
    tall = BooleanProperty(False)  # a portrait panel
    low = BooleanProperty(False)  # the low layout on a portrait panel: the screens in its lower half
    tile_cols = NumericProperty(2)
    key_cols = NumericProperty(8)
    lang_cols = NumericProperty(5)  # the language buttons: fewer a row when large text leaves no room
    action_cols = NumericProperty(4)  # the home screen's bottom row
    hub_ok = BooleanProperty(True)
    busy = BooleanProperty(False)  # a request is on its way: a second tap must not make a second one
    busy_text = StringProperty("")  # "Just a moment…" where the screen says what it is waiting for
    site = DictProperty()  # GET /site's answer: services, names, the site's name
    queues = DictProperty()  # service → its latest queue state (MQTT, or GET /site while MQTT is down)

    def __init__(self, config: KioskConfig, *, printer: KioskPrinter | None = None,
                 clock: Callable[[], datetime] | None = None) -> None:
        super().__init__()
        self.config = config
        # Tests only: the hub's test clock (vuoro/clock.py), so kiosk and hub agree on "today" at a chosen time.
        self._clock = clock
        self._window = (800, 480)  # before the scale: a kiosk.toml text_scale other than 1.0 fits at once
        self.lang, self.scale = config.language, config.text_scale
        self.client = HubClient(config.hub, config.token, config.http_timeout, config.retries, ca_file=config.hub_ca)
        self.worker = Worker(post)
        self.printer = printer
        self.keys: dict[tuple[Hashable, ...], str] = {}  # a request's subject → its key, until the hub answers
        self.last_touch = time.monotonic()
        self.closed = False
        self._tr_cache: dict[str, Callable[[str], str]] = {}

    def on_queues_changed(self) -> None:
        pass

    # -- words ----------------------------------------------------------------------------
    def tr(self, msgid: str, lang: str | None = None) -> str:
        language = lang or self.lang
        if language not in self._tr_cache:
            self._tr_cache[language] = translator(LOCALE_DIR, language)
        return self._tr_cache[language](msgid)

    def _(self, msgid: str) -> str:
        return self.tr(msgid)

    def service_title(self, service: str) -> str:
        names = self.queues.get(service, {}).get("names")
        if names is None:
            names = next((s.get("names") for s in self.site.get("services") or []
                          if isinstance(s, dict) and s.get("id") == service), None)
        return model.service_name(names, self.lang, service)

    @property
    def site_name(self) -> str:
        return str(self.site.get("name") or "")

    # -- the site's clock ------------------------------------------------------------------
    @property
    def zone(self) -> tzinfo | None:
        """The site's zone (GET /site's ``timezone``): every time a visitor reads is in it, never the machine's
        (a fresh Pi runs on UTC). None until the hub has told us, and then the machine's zone stands in."""
        name = self.site.get("timezone")
        if not isinstance(name, str) or not name:
            return None
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            log.warning("unknown site timezone %r: using the machine's", name)
            return None

    def now(self) -> datetime:
        """Now on the site's wall clock (aware): "today", and the time a receipt is issued."""
        zone = self.zone
        moment = self._clock() if self._clock is not None else datetime.now(UTC)
        return moment.astimezone(zone) if zone is not None else moment.astimezone()

    # -- the panel and the visitor's choices ------------------------------------------------
    def fit(self, width: float, height: float) -> None:
        """Sizes for this window. Portrait screens are scaled by a 600 px wide design so rows of four
        or five buttons still fit their words without breaking them."""
        self._window = (width, height)
        self.low = self.config.layout == "low" and height > width
        if self.low:
            height = height / 2  # the screens have the lower half; the upper half only shows
        self.u = min(width / (600 if height > width else 800), height / 480) * self.scale
        self.tall = height > width
        count = max(1, len(self.site.get("services") or []))
        wide = width / self.u  # the width in u: 800 on the 7" panel at normal text, 400 there at 2.0
        self.tile_cols = 1 if self.tall or count == 1 or wide < 560 else 2
        self.key_cols = 6 if self.tall else 8
        self.lang_cols = 5 if wide >= 560 else 3
        self.action_cols = 4 if wide >= 560 else 2

    def on_scale(self, _session: Session, _scale: float) -> None:
        self.fit(*self._window)

    def on_site(self, _session: Session, _site: dict[str, Any]) -> None:
        self.fit(*self._window)  # one service fills the width; more share it

    def set_language(self, lang: str) -> None:
        self.lang = lang

    def bigger_text(self) -> None:
        steps = list(TEXT_SCALES)
        index = min(range(len(steps)), key=lambda i: abs(steps[i] - self.scale))
        self.scale = steps[(index + 1) % len(steps)]

    def poke(self) -> None:
        self.last_touch = time.monotonic()

    # -- the hub ---------------------------------------------------------------------------
    def hub_down(self) -> None:
        if self.hub_ok:
            log.warning("hub %s not reachable", self.config.hub)
        self.hub_ok = False

    def hub_up(self) -> None:
        if not self.hub_ok:
            log.info("hub reachable again")
        self.hub_ok = True

    def queues_changed(self) -> None:
        self.dispatch("on_queues_changed")

    def key(self, *subject: Hashable) -> str:
        """The Idempotency-Key for this request (e.g. ``("ticket", "kvik")``): the same until the hub has
        answered, so a tap after "not reachable" repeats the request whose answer never came."""
        return self.keys.setdefault(subject, new_key())

    def settle(self, *subject: Hashable) -> None:
        """The hub answered (a result or a refusal): the next request for this is a new one."""
        self.keys.pop(subject, None)

    def in_flight(self, kind: str) -> list[tuple[Hashable, ...]]:
        return [subject for subject in self.keys if subject[0] == kind]

    def run(self, job: Callable[[], Any], done: Callable[[Any], None] | None = None) -> None:
        """``job`` on a worker thread, ``done(result)`` back on the UI thread. Once the kiosk has
        stopped nothing new starts: an answer that arrives late must not start another request."""
        if not self.closed:
            self.worker.run(job, done)

    def close(self) -> None:
        self.closed = True
        self.worker.shutdown()
        if self.printer is not None:
            self.printer.close()
        self.client.close()

    def ask(self, request: Callable[[], HubAnswer], answered: Callable[[HubAnswer], None],
            then: Callable[[HubAnswer], Callable[[], None] | None] | None = None) -> None:
        """``request`` on a worker; ``answered(answer)`` on the UI thread; then ``then(answer)`` on the
        worker (printing), whose result, if any, runs on the UI thread."""

        def job() -> None:
            answer = request()
            post(lambda: answered(answer))
            if then is not None:
                done = then(answer)
                if done is not None:
                    post(done)

        self.run(job)

    def print_ticket(self, ticket: dict[str, Any], lang: str, booking: dict[str, Any] | None = None,
                     code: str | None = None) -> PrintOutcome:
        """(worker thread) A queue ticket, or a check-in receipt when a booking and its code come with it."""
        printer = self.printer
        if printer is None:
            return NO_PRINTER
        return printer.print_ticket(ticket, self.site_name, lang, booking, code, self.now())

    def print_receipt(self, make: Callable[[KioskPrinter], PrintOutcome]) -> PrintOutcome:
        """(worker thread) A booking or sign-up receipt."""
        printer = self.printer
        return NO_PRINTER if printer is None else make(printer)

    @property
    def prints(self) -> bool:
        return self.printer is not None and self.printer.present
