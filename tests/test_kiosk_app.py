"""The kiosk app driven by touches on its real widgets, through a real hub, broker and virtual printer.

Every wait is for a condition with a generous timeout, never a sleep that
a slow machine could lose.
"""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import paho.mqtt.client as mqtt
import pytest
import requests

from hardware.virtual import VirtualPrinter
from kiosk.app import KioskApp  # noqa: E402
from kiosk.config import KioskConfig  # noqa: E402
from kiosk.driver import Driver  # noqa: E402
from toolkit.broker import Broker
from toolkit.hub_process import HubProcess as Hub
from vuoro.clock import FileClock

REPO = Path(__file__).resolve().parent.parent
TEST_SITE = REPO / "tests" / "sites" / "always_open.toml"
TOKEN = "demo-kiosk1-token-change-me"
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
CPH = ZoneInfo("Europe/Copenhagen")
# A weekday morning on the site's clock: a whole day of times left today and a week of them ahead, whatever
# the machine's clock says (late in the evening the day's last time is gone and a week holds one day less).
DAYTIME = datetime(2026, 11, 24, 10, 0, tzinfo=CPH)  # Tuesday


def site_file(tmp: Path, today: date | None = None) -> Path:
    """The always-open test site, with IT help closed today and opening tomorrow at 10:00."""
    text = (REPO / "tests" / "sites" / "always_open.toml").read_text(encoding="utf-8")
    tomorrow = ((today or datetime.now(CPH).date()) + timedelta(days=1)).weekday()
    head, sep, tail = text.partition("[services.it]")
    lines = tail.splitlines()
    lines = [f'hours = {{ {WEEKDAYS[tomorrow]} = ["10:00-13:00"] }}' if ln.startswith("hours") else ln
             for ln in lines]
    path = tmp / "site.toml"
    path.write_text(head + sep + "\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def hub(broker: Broker, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    tmp = tmp_path_factory.mktemp("kiosk-hub")
    running = Hub(site_file(tmp), tmp, broker.url).start()
    yield running
    running.stop()


@pytest.fixture()
def daytime_hub(broker: Broker, tmp_path: Path) -> Iterator[Hub]:
    """A real hub (its process in UTC) whose clock says ``DAYTIME`` in Copenhagen, on MQTT topics of its own."""
    running = Hub(site_file(tmp_path, DAYTIME.date()), tmp_path, broker.url, clock=DAYTIME, tz="UTC",
                  topic_root="t" + uuid.uuid4().hex[:8]).start()
    yield running
    running.stop()


def hub_clock(hub: Hub) -> Callable[[], datetime]:
    """The hub's own test clock, for the kiosk too: both say the same "today"."""
    assert hub.clock_file is not None, "this hub runs on the machine's clock"
    return FileClock(hub.clock_file)


@pytest.fixture()
def printer() -> Iterator[VirtualPrinter]:
    with VirtualPrinter() as virtual:
        yield virtual


class Watcher:
    """A test's own MQTT client: the kiosk's retained device status as staff would see it."""

    def __init__(self, broker: Broker, topic: str) -> None:
        self.messages: list[dict[str, Any]] = []
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
        self.client.on_connect = lambda c, *_: c.subscribe(topic, 1)
        self.client.on_message = lambda _c, _u, m: self.messages.append(json.loads(m.payload))
        self.client.connect("127.0.0.1", broker.port)
        self.client.loop_start()

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def make_kiosk(hub_url: str, broker: Broker | None, printer_url: str | None, *, speaker: Any = None,
               size: tuple[int, int] = (800, 480), clock: Callable[[], datetime] | None = None,
               **extra: Any) -> Driver:
    config = KioskConfig(hub=hub_url, token=TOKEN, device="kiosk1", broker=broker.url if broker else None,
                         printer=printer_url, language="da", http_timeout=2.0, retries=1, probe_seconds=0.3,
                         **extra)
    driver = Driver(KioskApp(config, speaker=speaker, clock=clock), size)
    driver.wait(lambda: driver.app.screen("home").ids.tiles.children, 15, "service tiles")
    return driver


@pytest.fixture()
def kiosk(hub: Hub, live_broker: Broker, printer: VirtualPrinter) -> Iterator[Driver]:
    driver = make_kiosk(hub.url, live_broker, printer.url)
    yield driver
    driver.stop()


@pytest.fixture()
def daytime_kiosk(daytime_hub: Hub, live_broker: Broker, printer: VirtualPrinter) -> Iterator[Driver]:
    """The kiosk on ``daytime_hub``'s clock and topics."""
    driver = make_kiosk(daytime_hub.url, live_broker, printer.url, clock=hub_clock(daytime_hub),
                        root=daytime_hub.topic_root)
    yield driver
    driver.stop()


def tile(driver: Driver, service: str) -> Any:
    return next(t for t in driver.app.screen("home").ids.tiles.children if t.service == service)


def button(driver: Driver, screen: str, text: str) -> Any:
    def walk(widget: Any) -> Iterator[Any]:
        yield widget
        for child in widget.children:
            yield from walk(child)

    return next(w for w in walk(driver.app.screen(screen)) if getattr(w, "text", None) == text
                and hasattr(w, "on_release"))


# -- the happy path -------------------------------------------------------------------------------


def test_touch_a_service_prints_a_ticket_and_publishes_the_printer(kiosk: Driver, printer: VirtualPrinter,
                                                                   live_broker: Broker) -> None:
    app, ticket = kiosk.app, kiosk.app.screen("ticket")
    watcher = Watcher(live_broker, "vuoro/sonderbro/devices/kiosk1/status")
    try:
        kiosk.tap(tile(kiosk, "kvik"))
        kiosk.wait(lambda: app.sm.current == "ticket", 10, "ticket screen")
        number = ticket.number
        assert number.startswith("K") and len(number) >= 4
        assert ticket.service == "KVIK – hurtig hjælp"
        receipt = printer.wait_for(1, timeout=10)[0]
        assert number in receipt.text and receipt.complete
        kiosk.wait(lambda: ticket.instruction == "Tag din billet, og hold øje med skærmen.", 10)
        kiosk.wait(lambda: any(m.get("online") and m.get("printer") == "ok" for m in watcher.messages), 10,
                   "kiosk status with printer ok")
        assert all(m["device"] == "kiosk1" and m["kind"] == "kiosk" for m in watcher.messages)
        # The home screen follows the queue live (the hub's retained queue state over MQTT).
        kiosk.tap(button(kiosk, "ticket", "Færdig"))
        assert app.sm.current == "home"
        kiosk.wait(lambda: tile(kiosk, "kvik").waiting >= 1, 10, "the new waiting count on the tile")
    finally:
        watcher.stop()


def test_language_text_size_and_idle_reset(kiosk: Driver) -> None:
    app, session = kiosk.app, kiosk.app.session
    kiosk.tap(button(kiosk, "home", "Svenska"))
    assert session.lang == "sv" and tile(kiosk, "kvik").title == "KVIK – snabb hjälp"
    assert button(kiosk, "home", "Jag har en bokad tid")
    before = tile(kiosk, "kvik").font_size
    kiosk.tap(button(kiosk, "home", "A+"))
    kiosk.pump(2)
    assert tile(kiosk, "kvik").font_size > before
    kiosk.tap(button(kiosk, "home", "Jag har en bokad tid"))
    assert app.sm.current == "checkin"
    assert not app.check_idle(now=time.monotonic() + 1)  # not idle yet
    # First the home screen, with the visitor's language and text size: they may still be there, reading.
    assert app.check_idle(now=time.monotonic() + session.config.idle_timeout + 1)
    assert (app.sm.current, session.lang, session.scale) == ("home", "sv", 1.25)
    # Another period untouched: the visitor has gone, and the next one starts with the kiosk's own.
    assert app.check_idle(now=time.monotonic() + 2 * session.config.idle_timeout + 2)
    assert (app.sm.current, session.lang, session.scale) == ("home", "da", 1.0)


def test_the_idle_reset_warns_offers_more_time_and_runs_on_the_real_clock(hub: Hub) -> None:
    """Nobody calls check_idle here: the kiosk's own Kivy clock has to, while the loop runs."""
    # A 3 s warning after 5 s untouched (ticks are 1 s); 8 s, not less: on a loaded machine three taps and their
    # frames once took longer than a 4 s period, and the kiosk had gone home before the first look.
    driver = make_kiosk(hub.url, None, None, idle_timeout=8.0, idle_warning=3.0)
    app, session = driver.app, driver.app.session
    try:
        driver.tap(button(driver, "home", "Svenska"))
        driver.tap(button(driver, "home", "A+"))
        driver.tap(button(driver, "home", "Jag har en bokad tid"))
        assert (app.sm.current, session.lang, session.scale) == ("checkin", "sv", 1.25)
        # The warning comes first, in the visitor's language, and "More time" starts the countdown again.
        driver.wait(lambda: app.warning_seconds > 0, 30, "the idle warning")
        warning = app.warning
        assert warning.parent is not None and app.sm.current == "checkin"
        assert warning.ids.message.text.startswith("Är du kvar? Kiosken börjar om om "), warning.ids.message.text
        assert warning.ids.more.text == "Mer tid"
        driver.tap(warning.ids.more)
        assert app.warning_seconds == 0 and warning.parent is None and app.sm.current == "checkin"
        # Left alone: the warning again, then the home screen with the visitor's choices still there...
        driver.wait(lambda: app.sm.current == "home", 30, "the idle timer to go home")
        assert (session.lang, session.scale) == ("sv", 1.25) and app.warning_seconds == 0
        # ...and after another quiet period, the kiosk's own language and text size for the next visitor.
        driver.wait(lambda: session.lang == "da", 30, "the idle timer to restore the defaults")
        assert session.scale == 1.0 and warning.parent is None
    finally:
        driver.stop()


# -- queue state over MQTT; GET /site only while MQTT is down ---------------------------------------


def test_no_site_request_follows_a_ticket_while_mqtt_is_up(hub: Hub, relay: Relay, live_broker: Broker,
                                                            printer: VirtualPrinter) -> None:
    """Counted at a real HTTP hop in front of the real hub: the new wait reaches the tile over MQTT alone."""
    driver = make_kiosk(relay.url, live_broker, printer.url)
    app, ticket = driver.app, driver.app.screen("ticket")
    try:
        driver.wait(app.mqtt_up, 10, "the kiosk's MQTT link")
        asked = relay.count("GET", "/api/v1/site")
        assert asked == 1  # once, at start: the services and the site's id for the topics
        waiting = tile(driver, "kvik").waiting
        driver.tap(tile(driver, "kvik"))
        driver.wait(lambda: app.sm.current == "ticket" and ticket.printed is not None, 10, "the ticket")
        driver.tap(button(driver, "ticket", "Færdig"))
        driver.wait(lambda: tile(driver, "kvik").waiting > waiting, 10, "the new wait, over MQTT")
        # What's on asks the hub after the ticket: anything the kiosk meant to ask before has been asked.
        driver.tap(button(driver, "home", "Arrangementer"))
        driver.wait(lambda: relay.count("GET", "/api/v1/events") and app.screen("events").loaded, 10, "what's on")
        assert relay.count("GET", "/api/v1/site") == asked
        # The broker goes away: until the link is back, a ticket is followed by GET /site again.
        live_broker.stop()
        driver.wait(lambda: not app.mqtt_up(), 20, "the kiosk to notice MQTT is gone")
        app.go("home")
        driver.tap(tile(driver, "kvik"))
        driver.wait(lambda: relay.count("GET", "/api/v1/site") > asked, 10, "GET /site after the ticket")
    finally:
        live_broker.start()
        driver.stop()


# -- refusals --------------------------------------------------------------------------------------


def test_booking_only_and_closed_services_say_why(kiosk: Driver, printer: VirtualPrinter) -> None:
    app = kiosk.app
    assert tile(kiosk, "borgerservice").line == "Kun med tid – bestil en tid"
    assert tile(kiosk, "it").line.startswith("Lukket – åbner ") and tile(kiosk, "it").line.endswith("10:00")
    notice = app.screen("notice")
    kiosk.tap(tile(kiosk, "it"))
    kiosk.wait(lambda: app.sm.current == "notice", 10, "closed notice")
    assert notice.body.startswith("Der er lukket lige nu. Vi åbner ") and notice.body.endswith("10:00.")
    assert printer.receipts == []


def test_paper_out_shows_the_number_tells_staff_and_recovers(kiosk: Driver, printer: VirtualPrinter,
                                                             live_broker: Broker) -> None:
    app, ticket = kiosk.app, kiosk.app.screen("ticket")
    watcher = Watcher(live_broker, "vuoro/sonderbro/devices/kiosk1/status")
    try:
        printer.set_paper("out")
        kiosk.tap(tile(kiosk, "bibliotekar"))
        kiosk.wait(lambda: ticket.print_failed, 10, "the printer failure on the ticket screen")
        number = ticket.number
        assert app.sm.current == "ticket" and number.startswith("L")
        assert "Printeren er løbet tør for papir." in ticket.instruction and number in ticket.instruction
        kiosk.wait(lambda: any(m.get("printer") == "paper_out" for m in watcher.messages), 10, "paper_out status")
        assert printer.receipts == []
        printer.set_paper("ok")
        kiosk.tap(button(kiosk, "ticket", "Færdig"))
        kiosk.tap(tile(kiosk, "bibliotekar"))
        receipts = printer.wait_for(1, timeout=10)
        kiosk.wait(lambda: ticket.number != number and not ticket.print_failed and ticket.printed is not None, 10)
        assert len(receipts) == 1 and ticket.number in receipts[0].text
        kiosk.wait(lambda: watcher.messages and watcher.messages[-1].get("printer") == "ok", 10, "status ok again")
    finally:
        watcher.stop()


PLAIN = "Køsystemet kan ikke nås lige nu. Spørg venligst i skranken."


def test_hub_down_is_said_plainly_and_the_kiosk_recovers(hub: Hub, kiosk: Driver, printer: VirtualPrinter) -> None:
    app, session = kiosk.app, kiosk.app.session
    hub.stop()
    try:
        # The hub's offline status (MQTT) or the next request tells the kiosk; no visitor has to find out.
        kiosk.wait(lambda: not session.hub_ok, 20, "the kiosk to notice the hub is gone")
        assert app.root.ids.banner.text == PLAIN and app.root.ids.banner.height > 40
        assert tile(kiosk, "kvik").disabled and button(kiosk, "home", "Jeg har en tid").disabled
        kiosk.tap(tile(kiosk, "kvik"))  # a disabled tile does nothing
        assert app.sm.current == "home" and not session.busy
    finally:
        hub.start()
    kiosk.wait(lambda: session.hub_ok, 20, "the probe to find the hub again")
    assert app.root.ids.banner.height == 0 and not tile(kiosk, "kvik").disabled
    kiosk.tap(tile(kiosk, "kvik"))
    ticket = app.screen("ticket")
    kiosk.wait(lambda: app.sm.current == "ticket" and ticket.printed is not None, 15, "a ticket after recovery")
    assert len(printer.wait_for(1, timeout=10)) == 1 and ticket.number in printer.receipts[0].text


def test_a_touch_that_finds_the_hub_gone_says_so(hub: Hub, printer: VirtualPrinter) -> None:
    driver = make_kiosk(hub.url, None, printer.url)  # no MQTT: the touch itself finds out
    app = driver.app
    try:
        hub.stop()
        driver.tap(tile(driver, "kvik"))
        driver.wait(lambda: app.sm.current == "notice", 20, "the hub-down notice")
        assert app.screen("notice").body == PLAIN and not app.session.hub_ok and app.root.ids.banner.text == PLAIN
        driver.tap(button(driver, "notice", "Til forsiden"))
        assert tile(driver, "kvik").disabled
        hub.start()
        driver.wait(lambda: app.session.hub_ok, 20, "recovery")
        assert printer.receipts == []
    finally:
        if hub.process is None:
            hub.start()
        driver.stop()


def test_checkin_keypad_through_the_real_hub(kiosk: Driver) -> None:
    app = kiosk.app
    kiosk.tap(button(kiosk, "home", "Jeg har en tid"))
    submit = button(kiosk, "checkin", "Tjek ind")
    assert submit.disabled
    for char in "7KQ3MZ":
        kiosk.tap(button(kiosk, "checkin", char))
    kiosk.tap(button(kiosk, "checkin", "Slet"))
    kiosk.tap(button(kiosk, "checkin", "Z"))
    assert app.screen("checkin").code == "7KQ3MZ" and not submit.disabled
    assert app.screen("checkin").ids.code.text == "7KQ-3MZ"  # grouped as receipts print it
    kiosk.tap(submit)
    kiosk.wait(lambda: app.sm.current == "notice", 10, "check-in answer")
    # the hub's not_found, the code as it is printed
    assert app.screen("notice").body.startswith("Vi kunne ikke finde en tid eller tilmelding med koden 7KQ-3MZ.")


# -- check-in answers from the real hub, at a chosen time --------------------------------------------

MONDAY_1020 = datetime(2026, 11, 23, 10, 20, tzinfo=ZoneInfo("Europe/Copenhagen"))


class Relay:
    """A real HTTP hop between a kiosk and the real hub. It keeps what the kiosk asked (method, path,
    Idempotency-Key); it can answer like a hub that lacks an address (an older hub: the request goes to an
    address this hub does not have, so the answer is the hub's own 404); it can hold requests for an
    address until ``release`` is set (a slow answer); and it can lose the hub's answer to a ticket on the
    way back: the hub commits the ticket, the kiosk never hears of it (a cable pulled at the wrong moment)."""

    def __init__(self, hub_url: str) -> None:
        self.hub_url = hub_url
        self.seen: list[tuple[str, str, str]] = []
        self.hidden: set[str] = set()
        self.held: set[str] = set()
        self.release = threading.Event()
        self.lose_ticket_answers = threading.Event()
        self.lost: list[dict[str, Any]] = []
        relay = self

        class Handler(BaseHTTPRequestHandler):
            def _relay(self) -> None:
                relay.forward(self)

            do_GET = do_POST = _relay

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def count(self, method: str, path: str) -> int:
        return sum(1 for m, p, _k in self.seen if (m, p) == (method, path))

    def keys(self, path: str) -> list[str]:
        return [k for _m, p, k in self.seen if p == path]

    def forward(self, handler: BaseHTTPRequestHandler) -> None:
        path = handler.path.split("?")[0]
        self.seen.append((handler.command, path, handler.headers.get("Idempotency-Key", "")))
        if path in self.held:
            self.release.wait(10)
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else None
        headers = {k: v for k, v in handler.headers.items() if k.lower() not in ("host", "content-length")}
        target = "/api/v1/not-on-this-hub" if path in self.hidden else handler.path
        answer = requests.request(handler.command, self.hub_url + target, data=body, headers=headers, timeout=5)
        if path == "/api/v1/tickets" and self.lose_ticket_answers.is_set():
            self.lost.append(answer.json())
            handler.close_connection = True  # hang up without a word
            return
        handler.send_response(answer.status_code)
        handler.send_header("Content-Type", answer.headers.get("Content-Type", "application/json"))
        handler.send_header("Content-Length", str(len(answer.content)))
        handler.end_headers()
        handler.wfile.write(answer.content)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture()
def relay(hub: Hub) -> Iterator[Relay]:
    running = Relay(hub.url)
    yield running
    running.close()


@pytest.fixture()
def monday_hub(broker: Broker, tmp_path: Path) -> Iterator[Hub]:
    """A real hub whose clock starts on Monday 23 November 2026 at 10:20 (TZ=UTC, the site in Copenhagen),
    with borgerservice bookings made through its own CSV import, each with a known code."""
    running = Hub(TEST_SITE, tmp_path, broker.url, clock=MONDAY_1020, tz="UTC",
                  topic_root="t" + uuid.uuid4().hex[:8]).start()
    rows = ["external_id;service;start;site;code",
            "early;borgerservice;2026-11-23 12:00;;EARLY2",  # check-in opens 11:45
            "late;borgerservice;2026-11-23 09:30;;LATE23",  # closed at 09:40
            "tomorrow;borgerservice;2026-11-24 10:00;;DAYX23",
            "vestby;borgerservice;2026-11-23 10:30;vestby;VESTBY",  # another branch's visitor
            "twice;borgerservice;2026-11-23 10:30;;TWCE23",
            "good;borgerservice;2026-11-23 10:30;;GREAT2"]
    imported = requests.post(running.url + "/api/v1/bookings/import?format=csv", timeout=10,
                             data="\n".join(rows).encode(), headers={**STAFF, "Content-Type": "text/csv"})
    assert imported.status_code == 200 and imported.json()["created"] == 6, imported.text
    first = requests.post(running.url + "/api/v1/checkins", json={"code": "TWCE23"}, timeout=5,
                          headers={**OTHER_KIOSK, "Idempotency-Key": f"first-{uuid.uuid4().hex}"})
    assert first.status_code == 201 and first.json()["ticket"]["ticket"] == "B001", first.text
    yield running
    running.stop()


def test_checkin_answers_in_plain_words(monday_hub: Hub, printer: VirtualPrinter) -> None:
    relay = Relay(monday_hub.url)
    master, slave = os.openpty()
    driver = make_kiosk(relay.url, None, printer.url, scanner=os.ttyname(slave))
    app, notice, ticket = driver.app, driver.app.screen("notice"), driver.app.screen("ticket")
    try:
        expected = {
            "NFND23": "Vi kunne ikke finde en tid eller tilmelding med koden NFN-D23.",
            "EARLY2": "Du er kommet tidligt. Kom igen ",
            "LATE23": "Din tid er overskredet.",
            "DAYX23": "Din tid er en anden dag.",
            "VESTBY": "Din tid er på et andet bibliotek",
            "TWCE23": "Du har allerede tjekket ind.",
        }
        for code, words in expected.items():
            driver.app.go("home")
            app.screen("checkin").scan(code)
            driver.wait(lambda: app.sm.current == "notice", 10, f"answer to {code}")
            assert notice.body.startswith(words), (code, notice.body)
        # A hub without check-in (an older hub): its own 404 for the address.
        relay.hidden.add("/api/v1/checkins")
        driver.app.go("home")
        app.screen("checkin").scan("GREAT2")
        driver.wait(lambda: app.sm.current == "notice", 10, "the answer of a hub without check-in")
        assert notice.body.startswith("Du kan ikke tjekke ind her endnu. Spørg venligst i skranken."), notice.body
        relay.hidden.clear()
        # A keyboard-wedge scanner: fast keystrokes and Enter, no touch.
        from kivy.core.window import Window

        app.go("home")
        for char in "LATE23":
            Window.dispatch("on_textinput", char)
        Window.dispatch("on_key_down", 13, 40, "\r", [])
        driver.wait(lambda: app.sm.current == "notice" and notice.title == "Din tid er gået", 10, "wedge scan")
        assert button(driver, "notice", "Tag et nummer i stedet")
        # A serial scanner on a pty: the happy path checks in and prints a check-in receipt.
        app.go("home")
        driver.wait(lambda: app.scanner is not None and app.scanner.port is not None, 10, "scanner port open")
        os.write(master, b"GREAT2\r\n")
        driver.wait(lambda: app.sm.current == "ticket" and ticket.printed is not None, 10, "checked in")
        assert ticket.number == "B002" and "Din tid: 10:30" in ticket.place  # TWCE23 had B001
        receipt = printer.wait_for(1, timeout=10)[0]
        assert "B002" in receipt.text and "GREAT2" in receipt.barcodes + receipt.qr and "GRE-AT2" in receipt.lines
        keys = relay.keys("/api/v1/checkins")
        assert all(8 <= len(k) <= 64 for k in keys) and len(set(keys)) == len(keys) == len(expected) + 3
    finally:
        driver.stop()
        relay.close()
        os.close(master)
        os.close(slave)


# -- what's on, and touch targets -------------------------------------------------------------------


def test_whats_on_from_the_hub(kiosk: Driver) -> None:
    app = kiosk.app
    kiosk.tap(button(kiosk, "home", "Arrangementer"))
    assert app.sm.current == "events"
    kiosk.wait(lambda: app.screen("events").loaded and shown_events(kiosk), 10, "events")
    texts = [c.text for c in shown_events(kiosk)]
    assert texts and "Et øjeblik …" not in texts


def test_whats_on_placeholder_when_the_hub_has_no_events(relay: Relay) -> None:
    relay.hidden.add("/api/v1/events")  # an older hub, without the programme: its own 404
    driver = make_kiosk(relay.url, None, None)
    try:
        driver.tap(button(driver, "home", "Arrangementer"))
        driver.wait(lambda: any("Snart kan du se arrangementerne her" in c.text for c in shown_events(driver)), 10,
                    "placeholder")
    finally:
        driver.stop()


def test_each_kv_file_is_loaded_once_however_many_apps_were_built(kiosk: Driver, hub: Hub) -> None:
    """A .kv file loaded twice applies its rules twice: every widget drawn twice, one over the other."""
    from kivy.lang import Builder

    from kiosk.app import KV_FILES

    make_kiosk(hub.url, None, None).stop()  # one more app in this process
    assert len(KV_FILES) == 13 and all(Builder.files.count(str(path)) == 1 for path in KV_FILES)
    for screen in kiosk.app.sm.screens:
        assert len(screen.children) == 1, screen.name  # its one layout, not one per load
    assert len(kiosk.app.screen("home").ids.langs.children) == len(kiosk.app.session.config.languages)


def test_touch_targets_are_at_least_9_mm(kiosk: Driver) -> None:
    app = kiosk.app
    min_px = 9 * app.session.config.mm  # 9 mm at the 7" panel's 133 dpi ≈ 47 px
    from kivy.uix.button import Button

    def buttons(widget: Any) -> Iterator[Any]:
        if isinstance(widget, Button):
            yield widget
        for child in widget.children:
            yield from buttons(child)

    open_slots(kiosk, "borgerservice")  # fills "book" and "slots" with the hub's services and times
    for name in ("home", "checkin", "ticket", "book", "events", "slots", "confirm", "booked", "signup"):
        app.sm.current = name
        kiosk.pump(3)
        found = [b for b in buttons(app.screen(name)) if b.opacity > 0]  # a hidden "Now" button is no target
        assert found, name
        small = [(b.text, b.size) for b in found if min(b.size) < min_px]
        assert not small, (name, small)


# -- book a time, and sign up for events, through the real hub ---------------------------------------

STAFF = {"Authorization": "Bearer demo-staff-token-change-me"}
OTHER_KIOSK = {"Authorization": "Bearer demo-kiosk2-token-change-me"}


def walk(widget: Any) -> Iterator[Any]:
    yield widget
    for child in widget.children:
        yield from walk(child)


def shown(recycle_view: Any) -> list[Any]:
    """A RecycleView's views on screen, in the order of its data."""
    placed = recycle_view.layout_manager.view_indices
    return sorted(placed, key=placed.get)


def shown_events(driver: Driver) -> list[Any]:
    return shown(driver.app.screen("events").ids.events)


def slot_buttons(driver: Driver) -> list[Any]:
    """The time buttons on screen, earliest first (not the gaps a taken time leaves in its hour's row)."""
    return [view for view in shown(driver.app.screen("slots").ids.slots) if getattr(view, "slot", None)]


def slot_starts(driver: Driver) -> list[str]:
    """Every time the list holds for the chosen day, on screen or scrolled away."""
    return [item["slot"]["start"] for item in driver.app.screen("slots").ids.slots.data if item.get("slot")]


def open_slots(driver: Driver, service: str) -> None:
    app, slots = driver.app, driver.app.screen("slots")
    before = slots.shown
    driver.tap(button(driver, "home", app.session.tr("Book a time")))
    driver.wait(lambda: app.screen("book").ids.services.children, 10, "the bookable services")
    tiles = {t.service: t for t in app.screen("book").ids.services.children}
    assert set(tiles) == {"borgerservice", "bibliotekar"}  # the services with booking rules, from GET /slots
    driver.tap(tiles[service])
    driver.wait(lambda: app.sm.current == "slots" and slots.shown > before and slot_buttons(driver), 10,
                "the free times")


def test_book_a_time_by_touches_prints_the_code_and_checks_in_with_it(daytime_kiosk: Driver,
                                                                       printer: VirtualPrinter) -> None:
    kiosk = daytime_kiosk  # a weekday morning: today's times and six more days of them
    app, booked, ticket = kiosk.app, kiosk.app.screen("booked"), kiosk.app.screen("ticket")
    open_slots(kiosk, "bibliotekar")
    days = [b.text for b in reversed(app.screen("slots").ids.days.children)]
    assert days[0] in ("I dag", "I morgen") and len(days) == 7  # grouped by day, a week ahead
    first = slot_buttons(kiosk)[0]
    first_start = first.slot["start"]  # the button may show another time once the list is redrawn
    start = datetime.fromisoformat(first_start)
    kiosk.tap(first)
    span = f"{start:%H:%M}–{start + timedelta(minutes=15):%H:%M}"
    assert app.sm.current == "confirm" and app.screen("confirm").when.endswith(span)
    kiosk.tap(app.screen("confirm").ids.confirm_button)
    kiosk.wait(lambda: app.sm.current == "booked" and booked.receipt is not None, 10, "the booking and its receipt")
    booking = booked.booking
    assert booking is not None and booking["status"] == "booked" and datetime.fromisoformat(booking["start"]) == start
    code = booking["code"]
    assert booked.code == booking["code_display"] and booked.receipt_text == "Tag din kvittering."
    assert "Vis denne kode, når du kommer igen" in booked.ids.instruction.text
    receipt = printer.wait_for(1, timeout=10)[0]
    assert code in receipt.barcodes + receipt.qr and booking["code_display"] in receipt.lines
    assert "Tidsbestilling" in receipt.lines and "Book en bibliotekar" in receipt.lines
    kiosk.tap(button(kiosk, "booked", "Færdig"))
    # The booked time is gone from the list for the next visitor.
    open_slots(kiosk, "bibliotekar")
    assert first_start not in slot_starts(kiosk)
    app.go("home")
    assert start.date() == DAYTIME.date()  # check-in is for the booking's own day: today
    # Back at the kiosk with the code: check in on the keypad → a queue ticket and a check-in receipt.
    kiosk.tap(button(kiosk, "home", "Jeg har en tid"))
    for char in code:
        kiosk.tap(button(kiosk, "checkin", char))
    kiosk.tap(button(kiosk, "checkin", "Tjek ind"))
    kiosk.wait(lambda: app.sm.current == "ticket" and ticket.printed is not None, 10, "checked in")
    assert ticket.number.startswith("L") and f"Din tid: {start:%H:%M}" in ticket.place
    checkin = printer.wait_for(2, timeout=10)[1]
    assert ticket.number in checkin.text and code in checkin.barcodes + checkin.qr


def test_a_time_taken_meanwhile_is_said_plainly_with_the_refreshed_list(kiosk: Driver, hub: Hub,
                                                                        printer: VirtualPrinter) -> None:
    app, slots = kiosk.app, kiosk.app.screen("slots")
    open_slots(kiosk, "borgerservice")
    kiosk.tap(list(reversed(slots.ids.days.children))[2])  # the day after tomorrow
    kiosk.wait(lambda: slot_buttons(kiosk) and slot_buttons(kiosk)[0].slot["start"] == slot_starts(kiosk)[0], 10,
               "that day's times")
    chosen = slot_buttons(kiosk)[0]
    chosen_start = chosen.slot["start"]  # the button may show another time once the list is redrawn
    assert datetime.fromisoformat(chosen_start).date() == slots.day
    kiosk.tap(chosen)
    assert app.sm.current == "confirm"
    for n in range(2):  # two desks, two places: someone else takes both while the visitor reads
        taken = requests.post(hub.url + "/api/v1/bookings/self", timeout=5,
                              json={"service": "borgerservice", "start": chosen_start},
                              headers={**OTHER_KIOSK, "Idempotency-Key": f"other-visitor-{n}-{time.time_ns()}"})
        assert taken.status_code == 201, taken.text
    loaded = slots.shown
    kiosk.tap(app.screen("confirm").ids.confirm_button)
    kiosk.wait(lambda: app.sm.current == "slots" and slots.shown > loaded, 10, "the refreshed list")
    assert slots.message == "En anden har lige bestilt den tid. Vælg venligst en anden tid."
    assert slots.ids.message.height > 20
    assert chosen_start not in slot_starts(kiosk) and slot_buttons(kiosk)
    assert printer.receipts == [] and not app.session.in_flight("booking")


def add_event(hub: Hub, title: str, seats: int, waiting_list: int = 0) -> str:
    start = (datetime.now(ZoneInfo("Europe/Copenhagen")) + timedelta(hours=2)).replace(second=0, microsecond=0)
    made = requests.post(hub.url + "/api/v1/events", headers=STAFF, timeout=5,
                         json={"title": title, "start": start.isoformat(), "room": "Salen", "seats": seats,
                               "waiting_list": waiting_list,
                               "end": (start + timedelta(hours=1)).isoformat()})
    assert made.status_code == 201, made.text
    return str(made.json()["id"])


def programme_shown(driver: Driver) -> bool:
    """The hub's events are on screen (not "Just a moment…", not the placeholder)."""
    screen, views = driver.app.screen("events"), shown_events(driver)
    return screen.loaded and screen.available and bool(views) and all(hasattr(v, "head") for v in views)


def signup_button(driver: Driver, event_id: str) -> Any:
    return next(w for w in walk(driver.app.screen("events")) if getattr(w, "event_id", None) == event_id)


def test_sign_up_for_an_event_prints_the_code_and_a_full_event_says_so(kiosk: Driver, hub: Hub,
                                                                       printer: VirtualPrinter) -> None:
    app, events, signup = kiosk.app, kiosk.app.screen("events"), kiosk.app.screen("signup")
    cafe = add_event(hub, f"Sprogcafé {time.time_ns() % 10000}", seats=5)
    last = add_event(hub, "IT-café for seniorer", seats=1)
    kiosk.tap(button(kiosk, "home", "Arrangementer"))
    kiosk.wait(lambda: programme_shown(kiosk), 10, "events")
    texts = [w.text for w in walk(app.screen("events")) if isinstance(getattr(w, "text", None), str)]
    assert "Salen · 5 pladser tilbage" in texts and any("1 plads tilbage" in t for t in texts)
    kiosk.tap(signup_button(kiosk, cafe))
    kiosk.wait(lambda: app.sm.current == "signup" and signup.receipt is not None, 10, "the sign-up")
    body = signup.signup
    assert body is not None and body["seat"] == 1 and signup.heading == "Du har en plads"
    assert signup.big == "Plads 1" and signup.code == body["code_display"] == f"{body['code'][:3]}-{body['code'][3:]}"
    receipt = printer.wait_for(1, timeout=10)[0]
    assert receipt.qr == [body["code"]] and "Tilmelding" in receipt.text and body["code_display"] in receipt.lines
    # The last seat of the other event goes to someone else before this visitor's touch, and before the
    # news reaches this kiosk: its live programme (events/today over MQTT) would otherwise take the button
    # away first, and the tap would race the update.
    kiosk.tap(button(kiosk, "signup", "Arrangementer"))
    kiosk.wait(lambda: programme_shown(kiosk), 10, "events again")
    if app.link is not None:
        app.link.client.loop_stop()  # the update is still on its way: nothing reaches this kiosk meanwhile
    other = requests.post(hub.url + f"/api/v1/events/{last}/signups", json={}, timeout=5,
                          headers={**OTHER_KIOSK, "Idempotency-Key": f"other-{time.time_ns()}"})
    assert other.status_code == 201, other.text
    requested = events.answers
    kiosk.tap(signup_button(kiosk, last))
    kiosk.wait(lambda: app.sm.current == "notice", 10, "the refusal")
    notice = app.screen("notice")
    assert notice.title == "Udsolgt" and notice.body.startswith("Desværre, arrangementet er fuldt")
    kiosk.tap(button(kiosk, "notice", "Arrangementer"))
    kiosk.wait(lambda: events.answers > requested + 1 and programme_shown(kiosk), 10, "the refreshed programme")
    with pytest.raises(StopIteration):  # sold out, no waiting list: no button
        signup_button(kiosk, last)
    assert len(printer.receipts) == 1


def test_the_kiosk_tells_systemd_it_is_ready_and_alive(hub: Hub, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    address = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(address)
    sock.setblocking(False)
    monkeypatch.setenv("NOTIFY_SOCKET", address)
    monkeypatch.setenv("WATCHDOG_USEC", "200000")  # WatchdogSec=0.2s → feed every 0.1 s
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    seen: list[str] = []

    def received() -> list[str]:
        try:
            while True:
                seen.extend(sock.recv(4096).decode().splitlines())
        except BlockingIOError:
            return seen

    driver = make_kiosk(hub.url, None, None)
    try:
        # Frames are drawn by pumping the Kivy loop: the watchdog is fed from its clock, nowhere else.
        driver.wait(lambda: "READY=1" in received() and seen.count("WATCHDOG=1") >= 2, 20, "READY and WATCHDOG")
        assert seen.count("READY=1") == 1 and set(seen) <= {"READY=1", "WATCHDOG=1"} | {
            line for line in seen if line.startswith("STATUS=")}
        # No ping before READY=1: systemd arms the watchdog at the first one, even while the unit starts,
        # and a slow first frame then failed the start (the emulated arm64 board, deploy/arm/).
        assert seen[0] == "READY=1", seen[:4]
        # A frozen UI (no frames, no clock) feeds nothing: here, the loop simply is not pumped.
        fed = received().count("WATCHDOG=1")  # what the last frames sent too, before the loop stops
        time.sleep(0.5)
        assert received().count("WATCHDOG=1") == fed
        driver.pump(1)
        driver.wait(lambda: received().count("WATCHDOG=1") > fed, 10, "feeding again once the loop runs")
    finally:
        driver.stop()
    received()
    sock.close()
    assert seen[-1] == "STOPPING=1"  # said on a clean stop, so systemd does not count it as a crash


def test_a_ticket_whose_answer_was_lost_is_not_issued_twice(hub: Hub, relay: Relay, printer: VirtualPrinter) -> None:
    """The visitor sees "not reachable", taps again once the hub is back: the same ticket, not a second."""
    driver = make_kiosk(relay.url, None, printer.url)
    app = driver.app

    def waiting() -> int:
        queues = requests.get(hub.url + "/api/v1/queues", timeout=5).json()
        return next(q["waiting"] for q in queues if q["service"] == "kvik")

    try:
        before = waiting()
        relay.lose_ticket_answers.set()
        driver.tap(tile(driver, "kvik"))
        driver.wait(lambda: app.sm.current == "notice", 20, "the not-reachable notice")
        assert app.screen("notice").body == PLAIN and relay.lost
        relay.lose_ticket_answers.clear()
        driver.tap(button(driver, "notice", "Til forsiden"))
        driver.wait(lambda: app.session.hub_ok and not tile(driver, "kvik").disabled, 20, "recovery")
        driver.tap(tile(driver, "kvik"))
        driver.wait(lambda: app.sm.current == "ticket", 20, "the ticket screen")
        assert app.screen("ticket").number == relay.lost[0]["ticket"]  # the ticket the hub made the first time
        assert waiting() == before + 1
    finally:
        relay.lose_ticket_answers.clear()
        driver.stop()


def test_an_answer_that_arrives_after_the_kiosk_stopped_starts_nothing(relay: Relay, printer: VirtualPrinter) -> None:
    """The kiosk stops (a restart, the end of a test) while a ticket request is out. Its answer still
    comes back to the UI thread, but nothing new may start on a stopped kiosk: before, the answer's
    GET /site refresh went to a worker pool already shut down and raised in the next app's event loop."""
    relay.held.add("/api/v1/tickets")
    driver = make_kiosk(relay.url, None, printer.url)
    ticket = driver.app.screen("ticket")
    driver.tap(tile(driver, "kvik"))
    driver.stop()
    relay.release.set()
    driver.wait(lambda: ticket.ticket is not None, 10, "the late answer on the UI thread")
    driver.wait(lambda: ticket.printed is not None, 10, "the printing that followed it")
    assert relay.count("GET", "/api/v1/site") == 1  # the one at start; none after the stop
