"""Bookings and events end to end: a real hub process, a real Mosquitto, real HTTP from kiosk threads."""

from __future__ import annotations

import json
import threading
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import requests

from toolkit.fixtures import MakeHub
from toolkit.hub_process import HubProcess

TZ = ZoneInfo("Europe/Copenhagen")
KIOSKS = [{"Authorization": "Bearer demo-kiosk1-token-change-me"},
          {"Authorization": "Bearer demo-kiosk2-token-change-me"}]
STAFF = {"Authorization": "Bearer demo-staff-token-change-me"}


def at_once(calls: list) -> list[requests.Response]:  # type: ignore[type-arg]
    """Run each call on its own thread, released together by a barrier."""
    barrier = threading.Barrier(len(calls))
    answers: list[requests.Response | None] = [None] * len(calls)

    def run(i: int) -> None:
        barrier.wait()
        answers[i] = calls[i]()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return [a for a in answers if a is not None]


# A weekday morning on the hub's test clock: what these tests book "now" or "in 90 minutes" is on the same site
# day at any hour they run (on the machine's clock, 90 minutes on was tomorrow after 22:30 in Copenhagen, and a
# ticket taken before midnight and a check-in after it were on two days).
MORNING = datetime(2026, 11, 23, 10, 0, tzinfo=TZ)


@pytest.fixture()
def morning_hub(make_hub: MakeHub, tmp_path: Path) -> HubProcess:
    return make_hub(tmp_path, clock=MORNING, tz="UTC").start()


def site_now(hub: HubProcess) -> datetime:
    return hub.clock_now().astimezone(TZ).replace(second=0, microsecond=0)


def test_a_checked_in_due_booking_is_called_before_a_walk_in(morning_hub: HubProcess, watch) -> None:  # type: ignore
    hub = morning_hub
    w = watch(f"{hub.topic_root}/sonderbro/#")
    walk_in = requests.post(f"{hub.url}/api/v1/tickets", json={"service": "bibliotekar"},
                            headers={**KIOSKS[0], "Idempotency-Key": uuid.uuid4().hex}, timeout=10)
    assert walk_in.status_code == 201 and walk_in.json()["ticket"] == "L001"
    start = site_now(hub)  # due now: booked by phone for this minute
    booking = requests.post(f"{hub.url}/api/v1/bookings", json={"service": "bibliotekar", "start": start.isoformat(),
                            "name": "Jens Hansen", "force": True}, headers=STAFF, timeout=10)
    assert booking.status_code == 201, booking.text
    checkin = requests.post(f"{hub.url}/api/v1/checkins", json={"code": booking.json()["code_display"].lower()},
                            headers={**KIOSKS[1], "Idempotency-Key": uuid.uuid4().hex}, timeout=10)
    assert checkin.status_code == 201, checkin.text
    assert checkin.json()["ticket"]["ticket"] == "L002"
    called = requests.post(f"{hub.url}/api/v1/counters/bib1/next", headers=STAFF, timeout=10).json()
    assert called["call"]["ticket"] == "L002"  # the booking, although the walk-in came first
    assert requests.post(f"{hub.url}/api/v1/counters/bib1/next", headers=STAFF,
                         timeout=10).json()["call"]["ticket"] == "L001"
    # nothing personal went over MQTT
    w.wait_for(lambda w: any(t.endswith("/calls") for t, _, _ in w.messages))
    assert not any(b"Jens" in payload for _, payload, _ in w.messages)


def test_two_kiosks_take_the_last_place_of_a_slot(hub: HubProcess) -> None:
    slots = requests.get(f"{hub.url}/api/v1/slots?service=bibliotekar&days=2", timeout=10).json()["slots"]
    slot = slots[4]["start"]  # an hour or so ahead; one librarian: one place

    def take(i: int):  # type: ignore[no-untyped-def]
        return lambda: requests.post(f"{hub.url}/api/v1/bookings/self", json={"service": "bibliotekar",
                                     "start": slot}, headers={**KIOSKS[i], "Idempotency-Key": uuid.uuid4().hex},
                                     timeout=10)

    answers = at_once([take(0), take(1)])
    assert sorted(a.status_code for a in answers) == [201, 409]
    refused = next(a for a in answers if a.status_code == 409).json()["error"]
    assert refused["code"] == "full" and refused["field"] == "start"
    won = next(a for a in answers if a.status_code == 201).json()["booking"]
    assert len(won["code"]) == 6 and "name" not in won
    free = requests.get(f"{hub.url}/api/v1/slots?service=bibliotekar&days=2", timeout=10).json()["slots"]
    assert slot not in [s["start"] for s in free]


def test_two_kiosks_and_the_last_seat_of_an_event(morning_hub: HubProcess, watch) -> None:  # type: ignore[no-untyped-def]
    hub = morning_hub
    w = watch(f"{hub.topic_root}/sonderbro/events/today")
    start = site_now(hub) + timedelta(minutes=90)  # today's: on events/today
    seats_1 = requests.post(f"{hub.url}/api/v1/events", json={"title": "IT-café for seniorer",
                            "start": start.isoformat(), "room": "Læsesalen", "seats": 1, "waiting_list": 0},
                            headers=STAFF, timeout=10).json()
    with_list = requests.post(f"{hub.url}/api/v1/events", json={"title": "Sprogcafé", "start": start.isoformat(),
                              "room": "Salen", "seats": 1, "waiting_list": 5}, headers=STAFF, timeout=10).json()

    def sign(event: dict, i: int):  # type: ignore[no-untyped-def, type-arg]
        return lambda: requests.post(f"{hub.url}/api/v1/events/{event['id']}/signups", json={"language": "da"},
                                     headers={**KIOSKS[i], "Idempotency-Key": uuid.uuid4().hex}, timeout=10)

    answers = at_once([sign(seats_1, 0), sign(seats_1, 1)])
    assert sorted(a.status_code for a in answers) == [201, 409]
    assert next(a for a in answers if a.status_code == 201).json()["seat"] == 1
    assert next(a for a in answers if a.status_code == 409).json()["error"]["code"] == "full"

    answers = at_once([sign(with_list, 0), sign(with_list, 1)])
    assert {(a.status_code, a.json()["seat"], a.json()["waiting_place"]) for a in answers} == {
        (201, 1, None), (201, None, 1)}  # one seat, one first place on the waiting list

    def sold_out(w) -> bool:  # type: ignore[no-untyped-def]
        body = w.json(f"{hub.topic_root}/sonderbro/events/today")
        return bool(body) and {e["title"]: e["state"] for e in body["events"]} == {
            "IT-café for seniorer": "sold_out", "Sprogcafé": "sold_out"}

    w.wait_for(sold_out)
    body = w.json(f"{hub.topic_root}/sonderbro/events/today")
    assert body["v"] == 1 and all(e["seats_left"] == 0 for e in body["events"])
    assert json.dumps(body).count("code") == 0  # no sign-up codes on the screens
