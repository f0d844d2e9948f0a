"""Online bookings through a real hub process (``vuoro hub``, a real Mosquitto, real HTTP from threads): a web
booking is checked in at the kiosk with its code or its QR, and the last place of a time taken by many citizens at
once goes to exactly one of them; the others are told plainly. The hub's clock is set (``HubProcess(clock=)``):
Monday 2026-11-23 in Copenhagen, where a librarian takes bookings 10–16 and citizen service 10–18 (sample site)."""

from __future__ import annotations

import threading
import uuid
from datetime import datetime
from zoneinfo import ZoneInfo

import requests

TZ = ZoneInfo("Europe/Copenhagen")
KIOSK = {"Authorization": "Bearer demo-kiosk1-token-change-me"}
STAFF = {"Authorization": "Bearer demo-staff-token-change-me"}


def book(url: str, body: dict) -> requests.Response:  # type: ignore[type-arg]
    return requests.post(f"{url}/api/v1/public/bookings", json=body,
                         headers={"Idempotency-Key": uuid.uuid4().hex}, timeout=20)


def test_a_web_booking_is_checked_in_at_the_kiosk_with_its_code_or_its_qr(make_hub) -> None:  # type: ignore
    hub = make_hub(clock=datetime(2026, 11, 23, 9, 40, tzinfo=TZ)).start()
    listing = requests.get(f"{hub.url}/api/v1/public/slots", params={"service": "bibliotekar"}, timeout=10).json()
    assert listing["slots"][0]["start"] == "2026-11-23T10:15+01:00"  # 30 minutes ahead at least, on the grid
    first = book(hub.url, {"service": "bibliotekar", "start": listing["slots"][0]["start"], "name": "Aino"})
    second = book(hub.url, {"service": "bibliotekar", "start": listing["slots"][1]["start"], "name": "Per"})
    assert first.status_code == second.status_code == 201, first.text + second.text
    early = requests.post(f"{hub.url}/api/v1/checkins", json={"code": first.json()["code_display"]},
                          headers={**KIOSK, "Idempotency-Key": uuid.uuid4().hex}, timeout=10)
    assert early.status_code == 409 and early.json()["error"]["code"] == "too_early"
    hub.set_clock(datetime(2026, 11, 23, 10, 16, tzinfo=TZ))  # both open for check-in (from 15 min before)
    typed = requests.post(f"{hub.url}/api/v1/checkins", json={"code": first.json()["code_display"].lower()},
                          headers={**KIOSK, "Idempotency-Key": uuid.uuid4().hex}, timeout=10)
    assert typed.status_code == 201, typed.text
    assert typed.json()["ticket"]["ticket"].startswith("L")
    # the QR on the booking page holds the manage address; the kiosk's scanner sends it as it reads it
    page = requests.get(f"{hub.url}/book/b/{second.json()['code']}", timeout=10)
    assert page.status_code == 200 and "<svg" in page.text
    scanned = requests.post(f"{hub.url}/api/v1/checkins", json={"code": f"{hub.url}/book/b/{second.json()['code']}"},
                            headers={**KIOSK, "Idempotency-Key": uuid.uuid4().hex}, timeout=10)
    assert scanned.status_code == 201, scanned.text
    day = requests.get(f"{hub.url}/api/v1/bookings", params={"day": "2026-11-23"}, headers=STAFF, timeout=10).json()
    mine = {b["code"]: b for b in day["bookings"]}
    assert mine[first.json()["code"]]["status"] == mine[second.json()["code"]]["status"] == "checked_in"
    assert mine[first.json()["code"]]["origin"] == "web" and mine[first.json()["code"]]["name"] == "Aino"


def test_the_last_place_taken_by_eight_citizens_at_once_goes_to_one(make_hub) -> None:  # type: ignore
    hub = make_hub(clock=datetime(2026, 11, 23, 9, 40, tzinfo=TZ)).start()
    slot = "2026-11-23T12:00+01:00"  # citizen service: two places (the test site staffs it all day); one taken
    assert book(hub.url, {"service": "borgerservice", "start": slot, "name": "Mette",
                          "phone": "+45 20 00 00 01"}).status_code == 201
    barrier = threading.Barrier(8)
    answers: list[requests.Response] = []

    def citizen(i: int) -> None:
        body = {"service": "borgerservice", "start": slot, "name": f"Borger {i}", "phone": f"+45 30 00 00 1{i}"}
        barrier.wait()
        answers.append(book(hub.url, body))

    threads = [threading.Thread(target=citizen, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(a.status_code for a in answers) == [201] + [409] * 7
    for lost in (a for a in answers if a.status_code == 409):
        assert lost.json()["error"]["code"] == "full"
        assert lost.json()["error"]["message"] == "Sorry, someone else has just booked that time. Choose another time."
    day = requests.get(f"{hub.url}/api/v1/bookings", params={"day": "2026-11-23"}, headers=STAFF, timeout=10).json()
    at_noon = [b for b in day["bookings"] if b["start"].startswith("2026-11-23T12:00") and b["status"] == "booked"]
    assert len(at_noon) == 2 and not any(b["overbooked"] for b in at_noon)
    free = requests.get(f"{hub.url}/api/v1/public/slots", params={"service": "borgerservice", "day": "2026-11-23"},
                        timeout=10).json()["slots"]
    assert slot not in [s["start"] for s in free]
