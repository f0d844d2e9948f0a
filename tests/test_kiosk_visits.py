"""A visitor's morning at the kiosk (issue 15), driven by touches through a real hub, broker and virtual printer.

The kiosk runs in this process with ``TZ=UTC``, as on a fresh Pi, while the site is in Europe/Copenhagen:
every time a visitor reads must be the site's. The helpers and fixtures are the kiosk tests' own
(``tests/test_kiosk_app.py``), imported by name, so pytest finds them here too.
"""
# ruff: noqa: F811 - the fixtures imported below are the arguments of the tests

from __future__ import annotations

import os
import re
import time
import uuid
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import requests
from test_kiosk_app import (  # noqa: F401 - fixtures are found by name
    DAYTIME,
    STAFF,
    TEST_SITE,
    Relay,
    add_event,
    button,
    daytime_hub,
    daytime_kiosk,
    hub,
    kiosk,
    make_kiosk,
    open_slots,
    printer,
    programme_shown,
    relay,
    signup_button,
    slot_buttons,
    slot_starts,
    tile,
)

from hardware.layout import format_datetime
from hardware.virtual import VirtualPrinter
from kiosk import model
from kiosk.driver import Driver
from toolkit.broker import Broker
from toolkit.hub_process import HubProcess

CPH = ZoneInfo("Europe/Copenhagen")
WEEKDAYS_DA = ("mandag", "tirsdag", "onsdag", "torsdag", "fredag", "lørdag", "søndag")
STAMP = re.compile(r"^\d\d\.\d\d\.\d{4} kl\. \d\d:\d\d$")  # a Danish receipt's date and time


@pytest.fixture(autouse=True)
def machine_in_utc() -> Iterator[None]:
    """The kiosk's process on UTC, as a fresh Raspberry Pi is."""
    before = os.environ.get("TZ")
    os.environ["TZ"] = "UTC"
    time.tzset()
    yield
    if before is None:
        os.environ.pop("TZ", None)
    else:
        os.environ["TZ"] = before
    time.tzset()


def issued_line(lines: list[str]) -> str:
    """The receipt's last date-and-time line: when it was issued."""
    return [line for line in lines if STAMP.match(line)][-1]


def site_clock_now() -> set[str]:
    """The issue stamp as the site's wall clock says it now (either side of a minute's turn)."""
    now = datetime.now(CPH)
    return {format_datetime(now - timedelta(minutes=1), "da"), format_datetime(now, "da")}


# -- item 1: receipts say the site's time ----------------------------------------------------------


def test_booking_and_signup_receipts_are_stamped_on_the_sites_clock(kiosk: Driver, hub,
                                                                    printer: VirtualPrinter) -> None:
    app = kiosk.app
    assert datetime.now().astimezone().utcoffset() == timedelta(0)  # the machine: UTC
    open_slots(kiosk, "bibliotekar")
    kiosk.tap(slot_buttons(kiosk)[0])
    kiosk.tap(app.screen("confirm").ids.confirm_button)
    booked = app.screen("booked")
    kiosk.wait(lambda: app.sm.current == "booked" and booked.receipt is not None, 10, "the booking's receipt")
    confirmation = printer.wait_for(1, timeout=10)[0]
    assert issued_line(confirmation.lines) in site_clock_now(), confirmation.lines
    cafe = add_event(hub, f"Sprogcafé {time.time_ns() % 10000}", seats=5)
    app.go("events")
    kiosk.wait(lambda: programme_shown(kiosk), 10, "events")
    kiosk.tap(signup_button(kiosk, cafe))
    signup = app.screen("signup")
    kiosk.wait(lambda: app.sm.current == "signup" and signup.receipt is not None, 10, "the sign-up's receipt")
    receipt = printer.wait_for(2, timeout=10)[1]
    assert issued_line(receipt.lines) in site_clock_now(), receipt.lines


# -- items 2, 3 and 6: booking from a tile, a day's times under its own heading, double slots -------


def test_a_booking_only_tile_leads_straight_to_booking_that_service(kiosk: Driver) -> None:
    app, slots = kiosk.app, kiosk.app.screen("slots")
    kiosk.tap(tile(kiosk, "borgerservice"))  # "Kun med tid – bestil en tid"
    kiosk.wait(lambda: app.sm.current == "slots" and slot_buttons(kiosk), 10, "borgerservice's free times")
    assert slots.service == "borgerservice" and slots.title == "Borgerservice"
    kiosk.tap(button(kiosk, "slots", "Tilbage"))
    assert app.sm.current == "home"  # it came from the tile: back is home, not a choice of services


def test_the_chosen_day_heads_its_times_which_stand_in_rows_of_an_hour(daytime_kiosk: Driver) -> None:
    kiosk = daytime_kiosk  # a weekday morning on the site's clock: "today" is DAYTIME's day, whatever the machine's
    slots = kiosk.app.screen("slots")
    open_slots(kiosk, "borgerservice")
    tabs = list(reversed(slots.ids.days.children))
    today = DAYTIME.date()

    def heading(day: date) -> str:
        dated = f"{WEEKDAYS_DA[day.weekday()]} {day.day}/{day.month}"
        return {today: f"I dag, {dated}", today + timedelta(days=1): f"I morgen, {dated}"}.get(day, dated.capitalize())

    first = slots.day
    assert slots.ids.heading.text == heading(first)
    kiosk.tap(tabs[2])
    day = slots.day
    assert day != first and slots.ids.heading.text == heading(day)
    # The day's band sits right under the tabs; its times below it, in rows of an hour: :00 :15 :30 :45.
    assert slots.ids.heading.top == pytest.approx(slots.ids.days.y, abs=1)
    assert slots.cols == 4 and len(tabs) == 7
    cells = slots.ids.slots.data
    assert len(cells) % 4 == 0
    for index, cell in enumerate(cells):
        if cell.get("slot"):
            start = datetime.fromisoformat(cell["slot"]["start"])
            row = [datetime.fromisoformat(c["slot"]["start"]).hour for c in cells[index - index % 4:][:4]
                   if c.get("slot")]
            assert start.date() == day and start.minute == 15 * (index % 4) and set(row) == {start.hour}


def test_a_double_slot_of_30_minutes_is_booked_at_the_kiosk(kiosk: Driver, hub,
                                                            printer: VirtualPrinter) -> None:
    app, slots, booked = kiosk.app, kiosk.app.screen("slots"), kiosk.app.screen("booked")
    open_slots(kiosk, "bibliotekar")
    kiosk.tap(button(kiosk, "slots", "30 min."))
    kiosk.wait(lambda: slots.length == 2 and slot_buttons(kiosk), 10, "the 30-minute times")
    assert slots.now_text == ""  # "now" is a single slot: not offered as 30 minutes
    offered = requests.get(hub.url + "/api/v1/slots?service=bibliotekar&days=7", timeout=5).json()["slots"]
    doubles = {s["start"] for s in offered if s["double"]}
    shown = slot_starts(kiosk)
    assert shown and set(shown) <= doubles  # only starts whose next slot is free too
    assert {s for s in doubles if datetime.fromisoformat(s).date() == slots.day} == set(shown)
    first = slot_buttons(kiosk)[0]
    start = datetime.fromisoformat(first.slot["start"])
    kiosk.tap(first)
    assert app.screen("confirm").when.endswith(f"{start:%H:%M}–{start + timedelta(minutes=30):%H:%M}")
    kiosk.tap(app.screen("confirm").ids.confirm_button)
    kiosk.wait(lambda: app.sm.current == "booked" and booked.receipt is not None, 10, "the double booking")
    booking = booked.booking
    assert booking["slots"] == 2 and datetime.fromisoformat(booking["end"]) - start == timedelta(minutes=30)
    receipt = printer.wait_for(1, timeout=10)[0]
    assert f"Bestilt tid: kl. {start:%H:%M}-{start + timedelta(minutes=30):%H:%M}" in receipt.lines
    # Both of its slots are gone for the next visitor.
    after = {s["start"] for s in requests.get(hub.url + "/api/v1/slots?service=bibliotekar&days=7",
                                              timeout=5).json()["slots"]}
    assert first.slot["start"] not in after and (start + timedelta(minutes=15)).isoformat(timespec="minutes") \
        not in after


# -- item 5: an open "What's on" follows the programme ------------------------------------------------


def test_an_open_whats_on_follows_the_programme_live_without_asking_again(hub, relay: Relay, live_broker: Broker,
                                                                          printer: VirtualPrinter) -> None:
    """Staff add an event and cancel it while a visitor reads the list: the retained events/today (MQTT)
    brings both to the open screen, and the kiosk asks GET /events only when the screen was opened."""
    driver = make_kiosk(relay.url, live_broker, printer.url)
    app, events = driver.app, driver.app.screen("events")

    def row(title: str) -> dict | None:
        return next((r for r in events.ids.events.data if title in r.get("head", "")), None)

    try:
        driver.wait(app.mqtt_up, 10, "the kiosk's MQTT link")
        driver.tap(button(driver, "home", "Arrangementer"))
        driver.wait(lambda: events.loaded and events.available, 10, "the programme")
        asked = relay.count("GET", "/api/v1/events")
        assert asked == 1
        title = f"Strikkecafé {time.time_ns() % 100000}"
        event_id = add_event(hub, title, seats=3)
        driver.wait(lambda: row(title), 10, "the new event on the open list")
        assert row(title)["extra"] == "Salen · 3 pladser tilbage" and row(title)["signup_text"] == "Tilmeld"
        requests.post(hub.url + f"/api/v1/events/{event_id}/signups", json={}, timeout=5,
                      headers={"Authorization": "Bearer demo-kiosk2-token-change-me",
                               "Idempotency-Key": f"elsewhere-{time.time_ns()}"}).raise_for_status()
        driver.wait(lambda: row(title)["extra"] == "Salen · 2 pladser tilbage", 10, "a seat taken at another kiosk")
        assert requests.delete(hub.url + f"/api/v1/events/{event_id}", headers=STAFF, timeout=5).status_code == 200
        driver.wait(lambda: row(title)["extra"] == "Salen · Aflyst", 10, "the cancellation")
        assert row(title)["signup_text"] == "" and app.sm.current == "events"
        assert relay.count("GET", "/api/v1/events") == asked  # followed over MQTT: no request of its own
    finally:
        driver.stop()


def test_the_retained_programme_is_the_truth_up_to_its_last_event_and_the_rest_of_the_week_stays() -> None:
    now = datetime(2026, 11, 23, 15, 0, tzinfo=CPH)

    def event(eid: str, day: int, hour: int, **extra: object) -> dict:
        start = datetime(2026, 11, day, hour, tzinfo=CPH)
        return {"id": eid, "title": eid, "start": start.isoformat(), "end": (start + timedelta(hours=1)).isoformat(),
                "state": "scheduled", **extra}

    shown = [event("over", 23, 9), event("gone", 23, 17), event("seats", 23, 18, seats_left=4),
             event("tomorrow", 24, 10), event("next-week", 29, 10)]
    live = {"day": "2026-11-23", "events": [event("over", 23, 9), event("seats", 23, 18, seats_left=2),
                                            event("new", 23, 19), event("tomorrow", 24, 10, state="cancelled")]}
    merged = model.follow_programme(shown, live, now)
    assert [e["id"] for e in merged] == ["seats", "new", "tomorrow", "next-week"]  # "gone" was deleted
    assert merged[0]["seats_left"] == 2 and merged[2]["state"] == "cancelled"


# -- item 9: checked in for today's event with a sign-up code -------------------------------------


@pytest.fixture()
def afternoon_hub(live_broker: Broker, tmp_path) -> Iterator[HubProcess]:  # type: ignore[no-untyped-def]
    """A real hub whose clock says Monday 23 November 2026, 16:00 in Copenhagen (its process in UTC)."""
    running = HubProcess(TEST_SITE, tmp_path, live_broker.url, clock=datetime(2026, 11, 23, 16, 0, tzinfo=CPH),
                         tz="UTC", topic_root="t" + uuid.uuid4().hex[:8]).start()
    yield running
    running.stop()


def test_a_sign_up_code_checks_in_for_todays_event_or_says_why_not(afternoon_hub: HubProcess,
                                                                   printer: VirtualPrinter) -> None:
    url = afternoon_hub.url

    def event(title: str, start: datetime, **extra: object) -> str:
        made = requests.post(url + "/api/v1/events", headers=STAFF, timeout=10, json={
            "title": title, "start": start.isoformat(), "end": (start + timedelta(hours=2)).isoformat(),
            "room": "Salen", **extra})
        assert made.status_code == 201, made.text
        return str(made.json()["id"])

    def sign_up(event_id: str) -> str:
        made = requests.post(f"{url}/api/v1/events/{event_id}/signups", json={}, timeout=10, headers={
            "Authorization": "Bearer demo-kiosk2-token-change-me", "Idempotency-Key": uuid.uuid4().hex})
        assert made.status_code == 201, made.text
        return str(made.json()["code"])

    cafe = event("Sprogcafé", datetime(2026, 11, 23, 17, 0, tzinfo=CPH), seats=1, waiting_list=1)
    seated, waiting = sign_up(cafe), sign_up(cafe)
    tomorrow = sign_up(event("Forfattermøde", datetime(2026, 11, 24, 19, 0, tzinfo=CPH), seats=5))
    driver = make_kiosk(url, None, printer.url)
    app, notice, checkin = driver.app, driver.app.screen("notice"), driver.app.screen("checkin")
    try:
        # On the keypad, the code grouped as its receipt prints it.
        driver.tap(button(driver, "home", "Jeg har en tid"))
        for char in seated:
            driver.tap(button(driver, "checkin", char))
        assert checkin.ids.code.text == f"{seated[:3]}-{seated[3:]}"
        driver.tap(button(driver, "checkin", "Tjek ind"))
        driver.wait(lambda: app.sm.current == "notice", 10, "the check-in answer")
        assert notice.title == "Velkommen"
        assert notice.body == "Du er tjekket ind til Sprogcafé kl. 17:00.\nDin plads: 1"
        # Why not: on the waiting list, another day (each scanned, as from the receipt's QR).
        for code, title, words in (
                (waiting, "Du er på ventelisten", "Du er på ventelisten til Sprogcafé kl. 17:00: nummer 1. "
                                                  "Du har ikke en plads endnu."),
                (tomorrow, "Ikke i dag", "Din tilmelding er til Forfattermøde, ")):
            app.go("home")
            checkin.scan(code)
            driver.wait(lambda: app.sm.current == "notice" and not app.session.busy, 10, f"the answer to {code}")
            assert notice.title == title and notice.body.startswith(words), notice.body
        assert notice.body.endswith("Tjek ind den dag.\nDin plads: 1")
        # The visitor before gives up the seat (staff cancel it, as the staff page does) and the waiting list
        # moves up: the same code now checks in, seated.
        cancelled = requests.delete(f"{url}/api/v1/events/{cafe}/signups/{seated}", headers=STAFF, timeout=10)
        assert cancelled.status_code == 200 and cancelled.json()["moved_up"]["code"] == waiting
        app.go("home")
        checkin.scan(f"{waiting[:3]}-{waiting[3:]}")
        driver.wait(lambda: app.sm.current == "notice" and notice.title == "Velkommen", 10, "the moved-up visitor")
        assert notice.body == "Du er tjekket ind til Sprogcafé kl. 17:00.\nDin plads: 1"
        assert printer.receipts == []  # attendance prints nothing
    finally:
        driver.stop()
