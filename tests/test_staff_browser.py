"""The staff page in Debian's Chromium (Playwright, headless) against a real hub and a real broker.

Log in (a wrong password first), choose a desk, call the next visitor with the
keyboard and a click, and see the call on the hub's MQTT topics and on the web
signage stream; a change without the CSRF token is refused. Screenshots go to
``$VUORO_STAFF_SCREENSHOTS`` when set (docs/screenshots/staff), else to a
temporary folder.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest

from toolkit.broker import Broker
from toolkit.hub_in_process import DEMO_PASSWORD, DEMO_USER, RunningHub
from toolkit.mqtt_watch import Watch
from toolkit.polling import wait_until
from vuoro.protocol import DeviceStatus, Topics

SIZES = {"desktop": {"width": 1366, "height": 900}, "tablet": {"width": 820, "height": 1180}}

pytestmark = [pytest.mark.browser]


@pytest.fixture()
def shots(tmp_path: Path) -> Path:
    target = Path(os.environ.get("VUORO_STAFF_SCREENSHOTS") or tmp_path / "shots")
    target.mkdir(parents=True, exist_ok=True)
    return target


class SignageStream:
    """Reads the hub's web signage stream (/api/v1/stream) in a thread; keeps the call events."""

    def __init__(self, url: str):
        self.calls: list[dict[str, Any]] = []
        self.open = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(url,), daemon=True)
        self._thread.start()
        assert self.open.wait(10)

    def _run(self, url: str) -> None:
        event = ""
        try:
            with httpx.Client(timeout=None) as client, client.stream("GET", url + "/api/v1/stream") as response:
                self.open.set()
                for line in response.iter_lines():
                    if self._stop.is_set():
                        return
                    if line.startswith("event: "):
                        event = line[7:]
                    elif line.startswith("data: ") and event == "call":
                        self.calls.append(json.loads(line[6:]))
        except httpx.TransportError:
            pass  # the hub stopped at the end of the test

    def close(self) -> None:
        self._stop.set()


def publish_devices(broker: Broker, topics: Topics) -> None:
    statuses = [DeviceStatus("kiosk1", "kiosk", True, printer="paper_low", detail="paper low"),
                DeviceStatus("kiosk2", "kiosk", True, printer="ok"),
                DeviceStatus("screen1", "display", False, detail="connection lost"),
                DeviceStatus("buttons1", "button", True)]
    listener = Watch(broker)
    for status in statuses:
        listener.client.publish(topics.device_status(status.device), status.to_payload(), qos=1,
                                retain=True).wait_for_publish(5)
    listener.close()


def clear_devices(broker: Broker, topics: Topics) -> None:
    listener = Watch(broker)
    for device in ("kiosk1", "kiosk2", "screen1", "buttons1"):
        listener.client.publish(topics.device_status(device), b"", qos=1, retain=True).wait_for_publish(5)
    listener.close()


def test_staff_calls_next_from_the_browser(hub_in_process: RunningHub, live_broker: Broker, browser: Any,
                                           shots: Path) -> None:
    from playwright.sync_api import expect

    topics = Topics(hub_in_process.config.site_id, hub_in_process.config.topic_root)
    listener = Watch(live_broker, topics.calls, topics.counter_state("kvik1"))
    stream = SignageStream(hub_in_process.url)
    publish_devices(live_broker, topics)
    wait_until(lambda: len(hub_in_process.hub.devices) >= 4, "the hub to hear the devices")
    hub_in_process.issue("kvik", 3)
    hub_in_process.issue("bibliotekar", 1)
    for n in range(7):  # someone tries booking codes with kiosk2's token: six wrong ones, then slowed down
        httpx.post(f"{hub_in_process.url}/api/v1/checkins", json={"code": f"ZZZZZ{n + 2}"}, timeout=10,
                   headers={"Authorization": "Bearer demo-kiosk2-token-change-me", "Idempotency-Key": f"guess-{n}-x1"})
    try:
        context = browser.new_context(viewport=SIZES["desktop"])
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))

        # -- log in: a wrong password is refused, then the right one
        page.goto(hub_in_process.url + "/staff/")
        expect(page).to_have_url(hub_in_process.url + "/staff/login")
        page.screenshot(path=str(shots / "login-desktop.png"))
        page.fill("#username", DEMO_USER)
        page.fill("#password", "wrong-password")
        page.click("button[type=submit]")
        expect(page.locator(".error")).to_have_text("Forkert brugernavn eller adgangskode.")
        page.fill("#password", DEMO_PASSWORD)
        page.click("button[type=submit]")
        expect(page).to_have_url(hub_in_process.url + "/staff/")

        # -- choose a desk; the waiting line is there
        page.select_option("[data-testid=desk]", "kvik1")
        waiting = page.locator("[data-testid=waiting] [data-service=kvik] li strong")
        expect(waiting).to_have_text(["K001", "K002", "K003"])

        # -- a refusal from the hub is said in the page's language, not the hub's English (the buttons
        # that would provoke one are disabled here, so ask the page's own wording directly)
        said = page.evaluate("refusal({code: 'no_current_visitor', message: 'No visitor is being served'})")
        assert said == "Der er ingen kunde ved skranken lige nu."
        assert page.evaluate("refusal({code: 'something_new', message: 'As the hub said'})") == "As the hub said"

        # -- call next with the keyboard: the page, the MQTT state and the signage stream all see it
        page.keyboard.press("n")
        expect(page.locator("[data-testid=current]")).to_have_text("K001")
        expect(page.locator("[data-testid=message]")).to_have_text("Kaldt K001")
        expect(waiting).to_have_text(["K002", "K003"])
        wait_until(lambda: listener.on(topics.calls), "the call on MQTT")
        call = listener.on(topics.calls)[0]
        assert (call["ticket"], call["counter"], call["recall"]) == ("K001", "kvik1", False)
        wait_until(lambda: any(s["serving"] and s["serving"]["ticket"] == "K001"
                               for s in listener.on(topics.counter_state("kvik1"))), "the retained desk state")
        wait_until(lambda: stream.calls, "the call on the signage stream")
        assert stream.calls[0]["ticket"] == "K001" and stream.calls[0]["counter_name"] == "Skranke 1"

        # -- a new visitor shows up without a reload
        hub_in_process.issue("kvik", 1)
        expect(waiting).to_have_text(["K002", "K003", "K004"])

        # -- devices: paper low and a screen offline are visible
        devices = page.locator("[data-testid=devices]")
        expect(devices.locator("[data-device=kiosk1]")).to_contain_text("lidt papir")
        expect(devices.locator("[data-device=screen1]")).to_contain_text("offline")
        expect(devices.locator("[data-device=kiosk2] [data-alert=booking_codes_guessed]")).to_have_text(
            "⚠ 6 forkerte koder til tidsbestillinger den seneste time – bremset")
        expect(devices.locator("[data-device=kiosk1] [data-alert]")).to_have_count(0)
        expect(page.locator("[data-testid=bookings]")).to_contain_text("Ingen tidsbestillinger i dag")
        page.screenshot(path=str(shots / "desk-desktop.png"), full_page=True)
        page.locator("section:has([data-testid=devices])").screenshot(path=str(shots / "devices-desktop.png"))

        # -- a change without the CSRF token is refused, even with the session cookie
        forged = context.request.post(hub_in_process.url + "/api/v1/counters/kvik1/next")
        assert forged.status == 403 and forged.json()["error"]["code"] == "csrf"
        assert hub_in_process.hub.view.counters["kvik1"]["serving"]["ticket"] == "K001"

        # -- a click works too: finish, then the next one
        page.click("#act-finish")
        expect(page.locator("[data-testid=current]")).to_have_text("Ingen ved skranken")
        page.click("#act-next")
        expect(page.locator("[data-testid=current]")).to_have_text("K002")
        wait_until(lambda: len(stream.calls) == 2, "the second call on the stream")

        # -- tablet size, in English
        tablet = browser.new_context(viewport=SIZES["tablet"], has_touch=True)
        tab = tablet.new_page()
        tab.goto(hub_in_process.url + "/staff/login?lang=en")
        tab.screenshot(path=str(shots / "login-tablet.png"))
        tab.fill("#username", DEMO_USER)
        tab.fill("#password", DEMO_PASSWORD)
        tab.click("button[type=submit]")
        tab.select_option("[data-testid=desk]", "kvik2")
        tab.keyboard.press("n")
        expect(tab.locator("[data-testid=current]")).to_have_text("K003")
        expect(tab.locator("[data-testid=message]")).to_have_text("Called K003")
        expect(tab.locator("[data-testid=devices] [data-device=kiosk1]")).to_contain_text("paper low")
        expect(tab.locator("[data-testid=devices] [data-device=kiosk2]")).to_contain_text(
            "6 wrong booking codes in the last hour – slowed down")
        expect(tab.locator("[data-testid=waiting] [data-service=kvik] li strong")).to_have_text(["K004"])
        tab.screenshot(path=str(shots / "desk-tablet.png"), full_page=True)
        tab.locator("section:has([data-testid=devices])").screenshot(path=str(shots / "devices-tablet.png"))
        assert not errors, errors
    finally:
        stream.close()
        listener.close()
        clear_devices(live_broker, topics)
    assert (shots / "desk-desktop.png").stat().st_size > 10_000


def test_staff_see_todays_bookings_with_their_check_in_state(hub_in_process: RunningHub, browser: Any) -> None:
    """Bookings made by phone (the staff API) and one checked in at the kiosk, as the page lists them:
    time, service, ticket and state, and for staff the name written with the booking; a cancelled booking
    is left out."""
    from playwright.sync_api import expect

    staff = {"Authorization": "Bearer demo-staff-token-change-me"}
    kiosk = {"Authorization": "Bearer demo-kiosk1-token-change-me"}

    def book(start: str, name: str) -> dict[str, Any]:
        answer = httpx.post(f"{hub_in_process.url}/api/v1/bookings", headers=staff, timeout=10,
                            json={"service": "bibliotekar", "start": f"2026-11-23T{start}:00+01:00", "name": name})
        assert answer.status_code == 201, answer.text
        return answer.json()

    arrived, expected, cancelled = book("10:45", "Anna Arrived"), book("11:00", "Bo Booked"), book("11:15", "Cy")
    checkin = httpx.post(f"{hub_in_process.url}/api/v1/checkins", json={"code": arrived["code"]}, timeout=10,
                         headers={**kiosk, "Idempotency-Key": "staff-browser-checkin-1"})
    assert checkin.status_code == 201, checkin.text
    ticket = checkin.json()["ticket"]["ticket"]
    assert httpx.delete(f"{hub_in_process.url}/api/v1/bookings/{cancelled['id']}", headers=staff,
                        timeout=10).status_code == 200

    page = browser.new_context(viewport=SIZES["desktop"]).new_page()
    page.goto(hub_in_process.url + "/staff/login")
    page.fill("#username", DEMO_USER)
    page.fill("#password", DEMO_PASSWORD)
    page.click("button[type=submit]")
    items = page.locator("[data-testid=bookings] li")
    expect(items).to_have_count(2)
    expect(page.locator(f"[data-booking='{arrived['id']}'] .booking-main")).to_have_text(
        f"10:45 Book en bibliotekar {ticket} tjekket ind")
    expect(page.locator(f"[data-booking='{expected['id']}'] .booking-main")).to_have_text(
        "11:00 Book en bibliotekar ikke tjekket ind")
    expect(page.locator(f"[data-booking='{arrived['id']}'] [data-testid=booking-who]")).to_contain_text("Anna Arrived")
    expect(page.locator(f"[data-booking='{arrived['id']}'] [data-testid=booking-move]")).to_have_count(0)  # checked in
    expect(page.locator(f"[data-booking='{expected['id']}'] [data-testid=booking-move]")).to_have_count(1)
    listing = page.locator("[data-testid=bookings]").inner_text()
    assert "Cy" not in listing and "object" not in listing


def test_a_kiosk_printer_out_of_paper_reaches_the_devices_box(hub_in_process: RunningHub, live_broker: Broker,
                                                              browser: Any, printer: Any) -> None:
    """The whole way from the paper roll: the printer answers "paper end" to the kiosk's status query, the
    kiosk's MQTT link publishes its retained device status, the hub keeps it, and the staff page's devices
    box says it. (The headless demo printed beside the kiosk's link, so nothing ever reached the box.)"""
    from playwright.sync_api import expect

    from hardware.printer import Printer
    from hardware.samples import queue_ticket
    from kiosk.link import KioskLink

    topics = Topics(hub_in_process.config.site_id, hub_in_process.config.topic_root)
    link = KioskLink(live_broker.url, topics, "kiosk1", on_queue=lambda _: None).start()
    kiosk_printer = Printer(printer.url)
    kiosk_printer.on_health(link.printer)
    try:
        printer.set_paper("out")
        result = kiosk_printer.print_receipt(queue_ticket("da"))
        assert not result.printed and result.state == "paper_out"
        wait_until(lambda: hub_in_process.hub.devices.get("kiosk1", {}).get("printer") == "paper_out",
                   "the hub to hear kiosk1's printer")
        page = browser.new_context(viewport=SIZES["desktop"]).new_page()
        page.goto(hub_in_process.url + "/staff/")
        page.fill("#username", DEMO_USER)
        page.fill("#password", DEMO_PASSWORD)
        page.click("button[type=submit]")
        expect(page.locator("[data-testid=devices] [data-device=kiosk1]")).to_contain_text("papir opbrugt")
        page.context.close()
    finally:
        kiosk_printer.close()
        link.stop()
        clear_devices(live_broker, topics)


def test_a_desk_call_whose_answer_was_lost_is_sent_again_and_calls_nobody_else(hub_in_process: RunningHub,
                                                                               browser: Any) -> None:
    """The hub calls the visitor, the answer never reaches the page (the connection ends: a keep-alive closed as the
    request went out, docs/protocol.md "Connections"): the page sends the call once more with the same
    Idempotency-Key and shows the hub's first answer; the next visitor is not called."""
    from playwright.sync_api import Route, expect

    hub_in_process.issue("kvik", 3)
    keys: list[str | None] = []

    def lose_the_first_answer(route: Route) -> None:
        keys.append(route.request.headers.get("idempotency-key"))
        if len(keys) == 1:
            route.fetch()  # the hub acts ...
            route.abort("connectionreset")  # ... and its answer is lost on the way
        else:
            route.continue_()

    context = browser.new_context(viewport=SIZES["desktop"])
    page = context.new_page()
    page.goto(hub_in_process.url + "/staff/login")
    page.fill("#username", DEMO_USER)
    page.fill("#password", DEMO_PASSWORD)
    page.click("button[type=submit]")
    page.select_option("[data-testid=desk]", "kvik1")
    waiting = page.locator("[data-testid=waiting] [data-service=kvik] li strong")
    expect(waiting).to_have_text(["K001", "K002", "K003"])
    page.route("**/api/v1/counters/kvik1/next", lose_the_first_answer)
    page.keyboard.press("n")
    expect(page.locator("[data-testid=message]")).to_have_text("Kaldt K001")
    expect(page.locator("[data-testid=current]")).to_have_text("K001")
    expect(waiting).to_have_text(["K002", "K003"])
    assert len(keys) == 2 and keys[0] is not None and keys[0] == keys[1]
    view = hub_in_process.hub.view
    assert view.counters["kvik1"]["serving"]["ticket"] == "K001" and view.queues["kvik"]["waiting"] == 2
    context.close()
