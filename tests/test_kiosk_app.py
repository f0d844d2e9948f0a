"""The kiosk app driven by touches on its real widgets, through a real hub, broker and virtual printer.

Every wait is for a condition with a generous timeout, never a sleep that
a slow machine could lose.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
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

REPO = Path(__file__).resolve().parent.parent
TOKEN = "demo-kiosk1-token-change-me"
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def site_file(tmp: Path) -> Path:
    """The always-open test site, with IT help closed today and opening tomorrow at 10:00."""
    text = (REPO / "tests" / "sites" / "always_open.toml").read_text(encoding="utf-8")
    tomorrow = (datetime.now(ZoneInfo("Europe/Copenhagen")) + timedelta(days=1)).weekday()
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


def make_kiosk(hub_url: str, broker: Broker | None, printer_url: str | None, **extra: Any) -> Driver:
    config = KioskConfig(hub=hub_url, token=TOKEN, device="kiosk1", broker=broker.url if broker else None,
                         printer=printer_url, language="da", http_timeout=2.0, retries=1, probe_seconds=0.3,
                         **extra)
    driver = Driver(KioskApp(config), (800, 480))
    driver.wait(lambda: driver.app.screen("home").ids.tiles.children, 15, "service tiles")
    return driver


@pytest.fixture()
def kiosk(hub: Hub, live_broker: Broker, printer: VirtualPrinter) -> Iterator[Driver]:
    driver = make_kiosk(hub.url, live_broker, printer.url)
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
    app = kiosk.app
    watcher = Watcher(live_broker, "vuoro/sonderbro/devices/kiosk1/status")
    try:
        kiosk.tap(tile(kiosk, "kvik"))
        kiosk.wait(lambda: app.sm.current == "ticket", 10, "ticket screen")
        number = app.ticket_number
        assert number.startswith("K") and len(number) >= 4
        assert app.ticket_service == "KVIK – hurtig hjælp"
        receipt = printer.wait_for(1, timeout=10)[0]
        assert number in receipt.text and receipt.complete
        kiosk.wait(lambda: app.ticket_instruction == "Tag din billet, og hold øje med skærmen.", 10)
        kiosk.wait(lambda: any(m.get("online") and m.get("printer") == "ok" for m in watcher.messages), 10,
                   "kiosk status with printer ok")
        assert all(m["device"] == "kiosk1" and m["kind"] == "kiosk" for m in watcher.messages)
        # The home screen follows the queue live (MQTT retained queue state or the refresh after the ticket).
        kiosk.tap(button(kiosk, "ticket", "Færdig"))
        assert app.sm.current == "home"
        kiosk.wait(lambda: tile(kiosk, "kvik").waiting >= 1, 10, "the new waiting count on the tile")
    finally:
        watcher.stop()


def test_language_text_size_and_idle_reset(kiosk: Driver) -> None:
    app = kiosk.app
    kiosk.tap(button(kiosk, "home", "Svenska"))
    assert app.lang == "sv" and tile(kiosk, "kvik").title == "KVIK – snabb hjälp"
    assert button(kiosk, "home", "Jag har en bokad tid")
    before = tile(kiosk, "kvik").font_size
    kiosk.tap(button(kiosk, "home", "A+"))
    kiosk.pump(2)
    assert tile(kiosk, "kvik").font_size > before
    kiosk.tap(button(kiosk, "home", "Jag har en bokad tid"))
    assert app.sm.current == "checkin"
    assert not app.check_idle(now=time.monotonic() + 1)  # not idle yet
    assert app.check_idle(now=time.monotonic() + app.kiosk.idle_timeout + 1)
    assert (app.sm.current, app.lang, app.scale) == ("home", "da", 1.0)


# -- refusals --------------------------------------------------------------------------------------


def test_booking_only_and_closed_services_say_why(kiosk: Driver, printer: VirtualPrinter) -> None:
    app = kiosk.app
    assert tile(kiosk, "borgerservice").line == "Kun med tid – bestil en tid"
    assert tile(kiosk, "it").line.startswith("Lukket – åbner ") and tile(kiosk, "it").line.endswith("10:00")
    kiosk.tap(tile(kiosk, "borgerservice"))
    kiosk.wait(lambda: app.sm.current == "notice", 10, "booking-only notice")
    assert app.notice_title == "Borgerservice" and "Her skal du have en tid" in app.notice_body
    kiosk.tap(button(kiosk, "notice", "Jeg har en tid"))
    assert app.sm.current == "checkin"
    kiosk.tap(button(kiosk, "checkin", "Tilbage"))
    kiosk.tap(tile(kiosk, "it"))
    kiosk.wait(lambda: app.sm.current == "notice", 10, "closed notice")
    assert app.notice_body.startswith("Der er lukket lige nu. Vi åbner ") and app.notice_body.endswith("10:00.")
    assert printer.receipts == []


def test_paper_out_shows_the_number_tells_staff_and_recovers(kiosk: Driver, printer: VirtualPrinter,
                                                             live_broker: Broker) -> None:
    app = kiosk.app
    watcher = Watcher(live_broker, "vuoro/sonderbro/devices/kiosk1/status")
    try:
        printer.set_paper("out")
        kiosk.tap(tile(kiosk, "bibliotekar"))
        kiosk.wait(lambda: app.print_failed, 10, "the printer failure on the ticket screen")
        number = app.ticket_number
        assert app.sm.current == "ticket" and number.startswith("L")
        assert "Printeren er løbet tør for papir." in app.ticket_instruction and number in app.ticket_instruction
        kiosk.wait(lambda: any(m.get("printer") == "paper_out" for m in watcher.messages), 10, "paper_out status")
        assert printer.receipts == []
        printer.set_paper("ok")
        kiosk.tap(button(kiosk, "ticket", "Færdig"))
        kiosk.tap(tile(kiosk, "bibliotekar"))
        receipts = printer.wait_for(1, timeout=10)
        kiosk.wait(lambda: app.ticket_number != number and not app.print_failed and app.last_print is not None, 10)
        assert len(receipts) == 1 and app.ticket_number in receipts[0].text
        kiosk.wait(lambda: watcher.messages and watcher.messages[-1].get("printer") == "ok", 10, "status ok again")
    finally:
        watcher.stop()


PLAIN = "Køsystemet kan ikke nås lige nu. Spørg venligst i skranken."


def test_hub_down_is_said_plainly_and_the_kiosk_recovers(hub: Hub, kiosk: Driver, printer: VirtualPrinter) -> None:
    app = kiosk.app
    hub.stop()
    try:
        # The hub's offline status (MQTT) or the next request tells the kiosk; no visitor has to find out.
        kiosk.wait(lambda: not app.hub_ok, 20, "the kiosk to notice the hub is gone")
        assert app.root.ids.banner.text == PLAIN and app.root.ids.banner.height > 40
        assert tile(kiosk, "kvik").disabled and button(kiosk, "home", "Jeg har en tid").disabled
        kiosk.tap(tile(kiosk, "kvik"))  # a disabled tile does nothing
        assert app.sm.current == "home" and not app.busy
    finally:
        hub.start()
    kiosk.wait(lambda: app.hub_ok, 20, "the probe to find the hub again")
    assert app.root.ids.banner.height == 0 and not tile(kiosk, "kvik").disabled
    kiosk.tap(tile(kiosk, "kvik"))
    kiosk.wait(lambda: app.sm.current == "ticket" and app.last_print is not None, 15, "a ticket after recovery")
    assert len(printer.wait_for(1, timeout=10)) == 1 and app.ticket_number in printer.receipts[0].text


def test_a_touch_that_finds_the_hub_gone_says_so(hub: Hub, printer: VirtualPrinter) -> None:
    driver = make_kiosk(hub.url, None, printer.url)  # no MQTT: the touch itself finds out
    app = driver.app
    try:
        hub.stop()
        driver.tap(tile(driver, "kvik"))
        driver.wait(lambda: app.sm.current == "notice", 20, "the hub-down notice")
        assert app.notice_body == PLAIN and not app.hub_ok and app.root.ids.banner.text == PLAIN
        driver.tap(button(driver, "notice", "Til forsiden"))
        assert tile(driver, "kvik").disabled
        hub.start()
        driver.wait(lambda: app.hub_ok, 20, "recovery")
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
    assert app.code_text == "7KQ3MZ" and not submit.disabled
    kiosk.tap(submit)
    kiosk.wait(lambda: app.sm.current == "notice", 10, "check-in answer")
    assert app.notice_body.startswith("Vi kunne ikke finde en tid med koden 7KQ3MZ.")  # the hub's not_found


# -- check-in answers from a stub of the coming bookings API (issue 7) -------------------------------

CHECKIN_ANSWERS: dict[str, tuple[int, dict[str, Any]]] = {
    "NFND23": (404, {"error": {"code": "not_found", "message": "no such booking"}}),
    "NOTYET": (404, {"error": {"code": "http_404", "message": "There is nothing at this address."}}),
    "EARLY2": (409, {"error": {"code": "too_early", "message": "early", "come_back_at": "2099-01-01T10:15:00+01:00"}}),
    "LATE23": (409, {"error": {"code": "too_late", "message": "late", "service": "kvik"}}),
    "DAYX23": (409, {"error": {"code": "other_day", "message": "day"}}),
    "SITE23": (409, {"error": {"code": "other_site", "message": "site"}}),
    "DONE23": (409, {"error": {"code": "already_checked_in", "message": "done"}}),
    "GOOD23": (201, {"ticket": {"id": "b1", "ticket": "B007", "service": "borgerservice", "position": 0,
                                "estimated_wait_min": 0, "issued_at": "2026-11-23T10:20:00+01:00",
                                "service_names": {"da": "Borgerservice", "en": "Citizen service"}},
                     "booking": {"service": "borgerservice", "start": "2026-11-23T10:30:00+01:00",
                                 "end": "2026-11-23T10:45:00+01:00"}}),
}


class _Bookings(BaseHTTPRequestHandler):
    site: dict[str, Any] = {}
    keys: list[str] = []

    def _send(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:  # noqa: N802
        if self.path == "/api/v1/site":
            self._send(200, self.site)
        else:
            ok = self.path == "/api/v1/health"
            self._send(200 if ok else 404, {"status": "ok"} if ok else {"error": {"code": "http_404"}})

    def do_POST(self) -> None:  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
        self.keys.append(self.headers.get("Idempotency-Key", ""))
        self._send(*CHECKIN_ANSWERS.get(body.get("code"), (404, {"error": {"code": "not_found"}})))

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture()
def bookings_stub(hub: Hub) -> Iterator[str]:
    _Bookings.site = requests.get(hub.url + "/api/v1/site", timeout=5).json()
    _Bookings.keys = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Bookings)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_checkin_answers_in_plain_words(bookings_stub: str, printer: VirtualPrinter) -> None:
    master, slave = os.openpty()
    driver = make_kiosk(bookings_stub, None, printer.url, scanner=os.ttyname(slave))
    app = driver.app
    try:
        expected = {
            "NFND23": "Vi kunne ikke finde en tid med koden NFND23.",
            "NOTYET": "Du kan ikke tjekke ind her endnu. Spørg venligst i skranken.",
            "EARLY2": "Du er kommet tidligt. Kom igen ",
            "LATE23": "Din tid er overskredet.",
            "DAYX23": "Din tid er en anden dag.",
            "SITE23": "Din tid er på et andet bibliotek",
            "DONE23": "Du har allerede tjekket ind.",
        }
        for code, words in expected.items():
            driver.app.go("home")
            app.scanned(code)
            driver.wait(lambda: app.sm.current == "notice", 10, f"answer to {code}")
            assert app.notice_body.startswith(words), (code, app.notice_body)
        # A keyboard-wedge scanner: fast keystrokes and Enter, no touch.
        from kivy.core.window import Window

        app.go("home")
        for char in "LATE23":
            Window.dispatch("on_textinput", char)
        Window.dispatch("on_key_down", 13, 40, "\r", [])
        driver.wait(lambda: app.sm.current == "notice" and app.notice_title == "Din tid er gået", 10, "wedge scan")
        assert button(driver, "notice", "Tag et nummer i stedet")
        # A serial scanner on a pty: the happy path checks in and prints a check-in receipt.
        app.go("home")
        driver.wait(lambda: app.scanner is not None and app.scanner.port is not None, 10, "scanner port open")
        os.write(master, b"GOOD23\r\n")
        driver.wait(lambda: app.sm.current == "ticket" and app.last_print is not None, 10, "checked in")
        assert app.ticket_number == "B007" and "Din tid: 10:30" in app.ticket_place
        receipt = printer.wait_for(1, timeout=10)[0]
        assert "B007" in receipt.text and "GOOD23" in receipt.barcodes + receipt.qr
        assert all(8 <= len(k) <= 64 for k in _Bookings.keys) and len(set(_Bookings.keys)) == len(_Bookings.keys)
    finally:
        driver.stop()
        os.close(master)
        os.close(slave)


# -- what's on, and touch targets -------------------------------------------------------------------


def test_whats_on_from_the_hub(kiosk: Driver) -> None:
    app = kiosk.app
    kiosk.tap(button(kiosk, "home", "Arrangementer"))
    assert app.sm.current == "events"
    kiosk.wait(lambda: app.events_loaded, 10, "events")
    texts = [c.text for c in app.screen("events").ids.events.children]
    assert texts and "Et øjeblik …" not in texts


def test_whats_on_placeholder_when_the_hub_has_no_events(bookings_stub: str) -> None:
    driver = make_kiosk(bookings_stub, None, None)
    try:
        driver.tap(button(driver, "home", "Arrangementer"))
        driver.wait(lambda: any("Snart kan du se arrangementerne her" in c.text
                                for c in driver.app.screen("events").ids.events.children), 10, "placeholder")
    finally:
        driver.stop()


def test_touch_targets_are_at_least_9_mm(kiosk: Driver) -> None:
    app = kiosk.app
    min_px = 9 * app.kiosk.mm  # 9 mm at the 7" panel's 133 dpi ≈ 47 px
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


def slot_buttons(driver: Driver) -> list[Any]:
    return list(reversed(driver.app.screen("slots").ids.slots.children))


def open_slots(driver: Driver, service: str) -> None:
    app = driver.app
    before = app.slots_loaded
    driver.tap(button(driver, "home", app.tr("Book a time")))
    driver.wait(lambda: app.screen("book").ids.book_services.children, 10, "the bookable services")
    tiles = {t.service: t for t in app.screen("book").ids.book_services.children}
    assert set(tiles) == {"borgerservice", "bibliotekar"}  # the services with booking rules, from GET /slots
    driver.tap(tiles[service])
    driver.wait(lambda: app.sm.current == "slots" and app.slots_loaded > before and slot_buttons(driver), 10,
                "the free times")


def test_book_a_time_by_touches_prints_the_code_and_checks_in_with_it(kiosk: Driver, printer: VirtualPrinter) -> None:
    app = kiosk.app
    open_slots(kiosk, "bibliotekar")
    days = [b.text for b in reversed(app.screen("slots").ids.days.children)]
    assert days[0] in ("I dag", "I morgen") and len(days) == 7  # grouped by day, a week ahead
    first = slot_buttons(kiosk)[0]
    start = datetime.fromisoformat(first.slot["start"])
    kiosk.tap(first)
    span = f"{start:%H:%M}–{start + timedelta(minutes=15):%H:%M}"
    assert app.sm.current == "confirm" and app.confirm_when.endswith(span)
    kiosk.tap(app.screen("confirm").ids.confirm_button)
    kiosk.wait(lambda: app.sm.current == "booked" and app.last_receipt is not None, 10, "the booking and its receipt")
    booking = app.last_booking
    assert booking is not None and booking["status"] == "booked" and datetime.fromisoformat(booking["start"]) == start
    code = booking["code"]
    assert app.booked_code == booking["code_display"] and app.receipt_text == "Tag din kvittering."
    assert "Vis denne kode, når du kommer igen" in app.screen("booked").ids.instruction.text
    receipt = printer.wait_for(1, timeout=10)[0]
    assert code in receipt.barcodes + receipt.qr and booking["code_display"] in receipt.lines
    assert "Tidsbestilling" in receipt.lines and "Book en bibliotekar" in receipt.lines
    kiosk.tap(button(kiosk, "booked", "Færdig"))
    # The booked time is gone from the list for the next visitor.
    open_slots(kiosk, "bibliotekar")
    assert first.slot["start"] not in [b.slot["start"] for b in slot_buttons(kiosk)]
    app.go("home")
    if start.date() != datetime.now(start.tzinfo).date():
        pytest.skip("the next free time is after midnight: check-in is for the booking's own day")
    # Back at the kiosk with the code: check in on the keypad → a queue ticket and a check-in receipt.
    kiosk.tap(button(kiosk, "home", "Jeg har en tid"))
    for char in code:
        kiosk.tap(button(kiosk, "checkin", char))
    kiosk.tap(button(kiosk, "checkin", "Tjek ind"))
    kiosk.wait(lambda: app.sm.current == "ticket" and app.last_print is not None, 10, "checked in")
    assert app.ticket_number.startswith("L") and f"Din tid: {start:%H:%M}" in app.ticket_place
    checkin = printer.wait_for(2, timeout=10)[1]
    assert app.ticket_number in checkin.text and code in checkin.barcodes + checkin.qr


def test_a_time_taken_meanwhile_is_said_plainly_with_the_refreshed_list(kiosk: Driver, hub: Hub,
                                                                        printer: VirtualPrinter) -> None:
    app = kiosk.app
    open_slots(kiosk, "borgerservice")
    kiosk.tap(list(reversed(app.screen("slots").ids.days.children))[2])  # the day after tomorrow
    chosen = slot_buttons(kiosk)[0]
    assert datetime.fromisoformat(chosen.slot["start"]).date() == app.book_day
    kiosk.tap(chosen)
    assert app.sm.current == "confirm"
    for n in range(2):  # two desks, two places: someone else takes both while the visitor reads
        taken = requests.post(hub.url + "/api/v1/bookings/self", timeout=5,
                              json={"service": "borgerservice", "start": chosen.slot["start"]},
                              headers={**OTHER_KIOSK, "Idempotency-Key": f"other-visitor-{n}-{time.time_ns()}"})
        assert taken.status_code == 201, taken.text
    loaded = app.slots_loaded
    kiosk.tap(app.screen("confirm").ids.confirm_button)
    kiosk.wait(lambda: app.sm.current == "slots" and app.slots_loaded > loaded, 10, "the refreshed list")
    assert app.book_message == "En anden har lige bestilt den tid. Vælg venligst en anden tid."
    assert app.screen("slots").ids.book_message.height > 20
    assert chosen.slot["start"] not in [b.slot["start"] for b in slot_buttons(kiosk)] and slot_buttons(kiosk)
    assert printer.receipts == [] and app.book_key is None


def add_event(hub: Hub, title: str, seats: int, waiting_list: int = 0) -> str:
    start = (datetime.now(ZoneInfo("Europe/Copenhagen")) + timedelta(hours=2)).replace(second=0, microsecond=0)
    made = requests.post(hub.url + "/api/v1/events", headers=STAFF, timeout=5,
                         json={"title": title, "start": start.isoformat(), "room": "Salen", "seats": seats,
                               "waiting_list": waiting_list,
                               "end": (start + timedelta(hours=1)).isoformat()})
    assert made.status_code == 201, made.text
    return str(made.json()["id"])


def signup_button(driver: Driver, event_id: str) -> Any:
    return next(w for w in walk(driver.app.screen("events")) if getattr(w, "event_id", None) == event_id)


def test_sign_up_for_an_event_prints_the_code_and_a_full_event_says_so(kiosk: Driver, hub: Hub,
                                                                       printer: VirtualPrinter) -> None:
    app = kiosk.app
    cafe = add_event(hub, f"Sprogcafé {time.time_ns() % 10000}", seats=5)
    last = add_event(hub, "IT-café for seniorer", seats=1)
    kiosk.tap(button(kiosk, "home", "Arrangementer"))
    kiosk.wait(lambda: app.events_loaded and app._events != [None], 10, "events")
    texts = [w.text for w in walk(app.screen("events")) if isinstance(getattr(w, "text", None), str)]
    assert "Salen · 5 pladser tilbage" in texts and any("1 plads tilbage" in t for t in texts)
    kiosk.tap(signup_button(kiosk, cafe))
    kiosk.wait(lambda: app.sm.current == "signup" and app.last_receipt is not None, 10, "the sign-up")
    body = app.last_signup
    assert body is not None and body["seat"] == 1 and app.signup_title == "Du har en plads"
    assert app.signup_place == "Plads 1" and app.signup_code == body["code"]
    receipt = printer.wait_for(1, timeout=10)[0]
    assert receipt.qr == [body["code"]] and "Tilmelding" in receipt.text
    # The last seat of the other event goes to someone else before this visitor's touch.
    kiosk.tap(button(kiosk, "signup", "Arrangementer"))
    kiosk.wait(lambda: app.events_loaded and app._events != [None], 10, "events again")
    other = requests.post(hub.url + f"/api/v1/events/{last}/signups", json={}, timeout=5,
                          headers={**OTHER_KIOSK, "Idempotency-Key": f"other-{time.time_ns()}"})
    assert other.status_code == 201, other.text
    requested = app.events_requested
    kiosk.tap(signup_button(kiosk, last))
    kiosk.wait(lambda: app.sm.current == "notice", 10, "the refusal")
    assert app.notice_title == "Udsolgt" and app.notice_body.startswith("Desværre, arrangementet er fuldt")
    kiosk.tap(button(kiosk, "notice", "Arrangementer"))
    kiosk.wait(lambda: app.events_requested > requested + 1 and app.events_loaded, 10, "the refreshed programme")
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
        # A frozen UI (no frames, no clock) feeds nothing: here, the loop simply is not pumped.
        fed = seen.count("WATCHDOG=1")
        time.sleep(0.5)
        assert received().count("WATCHDOG=1") == fed
        driver.pump(1)
        driver.wait(lambda: received().count("WATCHDOG=1") > fed, 10, "feeding again once the loop runs")
    finally:
        driver.stop()
    received()
    sock.close()
    assert seen[-1] == "STOPPING=1"  # said on a clean stop, so systemd does not count it as a crash


class _LosingRelay(BaseHTTPRequestHandler):
    """A real HTTP hop in front of the hub that can lose the hub's answer to a ticket on the way back:
    the hub commits the ticket, the kiosk never hears of it (a cable pulled at the wrong moment)."""

    hub_url = ""
    lose_ticket_answers = threading.Event()
    lost: list[dict[str, Any]] = []

    def _relay(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
        answer = requests.request(self.command, self.hub_url + self.path, data=body, headers=headers, timeout=5)
        if self.path == "/api/v1/tickets" and self.lose_ticket_answers.is_set():
            self.lost.append(answer.json())
            self.close_connection = True  # hang up without a word
            return
        self.send_response(answer.status_code)
        self.send_header("Content-Type", answer.headers.get("Content-Type", "application/json"))
        self.send_header("Content-Length", str(len(answer.content)))
        self.end_headers()
        self.wfile.write(answer.content)

    do_GET = do_POST = _relay

    def log_message(self, *args: Any) -> None:
        pass


def test_a_ticket_whose_answer_was_lost_is_not_issued_twice(hub: Hub, printer: VirtualPrinter) -> None:
    """The visitor sees "not reachable", taps again once the hub is back: the same ticket, not a second."""
    _LosingRelay.hub_url, _LosingRelay.lost = hub.url, []
    relay = ThreadingHTTPServer(("127.0.0.1", 0), _LosingRelay)
    threading.Thread(target=relay.serve_forever, daemon=True).start()
    driver = make_kiosk(f"http://127.0.0.1:{relay.server_address[1]}", None, printer.url)
    app = driver.app

    def waiting() -> int:
        queues = requests.get(hub.url + "/api/v1/queues", timeout=5).json()
        return next(q["waiting"] for q in queues if q["service"] == "kvik")

    try:
        before = waiting()
        _LosingRelay.lose_ticket_answers.set()
        driver.tap(tile(driver, "kvik"))
        driver.wait(lambda: app.sm.current == "notice", 20, "the not-reachable notice")
        assert app.notice_body == PLAIN and _LosingRelay.lost
        _LosingRelay.lose_ticket_answers.clear()
        driver.tap(button(driver, "notice", "Til forsiden"))
        driver.wait(lambda: app.hub_ok and not tile(driver, "kvik").disabled, 20, "recovery")
        driver.tap(tile(driver, "kvik"))
        driver.wait(lambda: app.sm.current == "ticket", 20, "the ticket screen")
        assert app.ticket_number == _LosingRelay.lost[0]["ticket"]  # the ticket the hub made the first time
        assert waiting() == before + 1
    finally:
        _LosingRelay.lose_ticket_answers.clear()
        driver.stop()
        relay.shutdown()
