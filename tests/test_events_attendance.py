"""Event attendance: a visitor checks in at the kiosk with a sign-up code (issue 15).

A real hub process at a chosen time (Monday 23 November 2026, TZ=UTC while the site is in
Europe/Copenhagen), events and sign-ups made through its API, the clock stepped to the afternoon,
then every answer of ``POST /api/v1/checkins`` for a sign-up code, the rows it wrote and the count in
the statistics.
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import requests

from toolkit.broker import Broker
from toolkit.hub_process import HubProcess

CPH = ZoneInfo("Europe/Copenhagen")
SITE = Path(__file__).parent / "sites" / "always_open.toml"
STAFF = {"Authorization": "Bearer demo-staff-token-change-me"}
KIOSK = {"Authorization": "Bearer demo-kiosk1-token-change-me"}
MORNING = datetime(2026, 11, 23, 9, 0, tzinfo=CPH)
AFTERNOON = datetime(2026, 11, 23, 16, 0, tzinfo=CPH)


class Site:
    def __init__(self, hub: HubProcess):
        self.hub = hub
        self.codes: dict[str, str] = {}

    def event(self, title: str, start: datetime, hours: float = 1.5, **extra: object) -> str:
        made = requests.post(self.hub.url + "/api/v1/events", headers=STAFF, timeout=10, json={
            "title": title, "start": start.isoformat(), "end": (start + timedelta(hours=hours)).isoformat(),
            "room": "Salen", **extra})
        assert made.status_code == 201, made.text
        return str(made.json()["id"])

    def sign_up(self, who: str, event_id: str) -> dict:
        answer = requests.post(f"{self.hub.url}/api/v1/events/{event_id}/signups", json={"language": "da"},
                               headers={**KIOSK, "Idempotency-Key": uuid.uuid4().hex}, timeout=10)
        assert answer.status_code == 201, answer.text
        self.codes[who] = answer.json()["code"]
        return answer.json()

    def check_in(self, code: str) -> requests.Response:
        return requests.post(self.hub.url + "/api/v1/checkins", json={"code": code, "language": "da"}, timeout=10,
                             headers={**KIOSK, "Idempotency-Key": uuid.uuid4().hex})

    def sql(self, query: str, *args: object) -> list[tuple]:
        with sqlite3.connect(self.hub.data_dir / "hub.sqlite3", timeout=10) as db:
            return db.execute(query, args).fetchall()


@pytest.fixture()
def site(live_broker: Broker, tmp_path: Path) -> Iterator[Site]:
    hub = HubProcess(SITE, tmp_path, live_broker.url, clock=MORNING, tz="UTC",
                     topic_root="t" + uuid.uuid4().hex[:8]).start()
    try:
        yield Site(hub)
    finally:
        hub.stop()


def test_a_sign_up_code_checks_the_visitor_in_on_the_day_and_says_why_not_otherwise(site: Site) -> None:
    today = MORNING.replace(hour=17)
    cafe = site.event("Sprogcafé", today, seats=1, waiting_list=2)
    site.sign_up("seated", cafe)
    assert site.sign_up("waiting", cafe)["waiting_place"] == 1
    site.sign_up("tomorrow", site.event("Forfattermøde", today + timedelta(days=1, hours=2), seats=5))
    knitting = site.event("Strikkeklub", today.replace(hour=18), seats=3)
    site.sign_up("cancelled", knitting)
    site.sign_up("over", site.event("Babysalmesang", MORNING.replace(hour=10), hours=1, seats=5))
    assert requests.delete(f"{site.hub.url}/api/v1/events/{knitting}", headers=STAFF, timeout=10).ok
    site.hub.set_clock(AFTERNOON)

    # Checked in for today's event, with the code as printed (NWS-7AL) or as typed (nws7al).
    code = site.codes["seated"]
    first = site.check_in(f"{code[:3]}-{code[3:]}")
    assert first.status_code == 201, first.text
    body = first.json()
    assert body["event"]["title"] == "Sprogcafé" and body["event"]["start"] == "2026-11-23T17:00:00+01:00"
    assert body["signup"] == {"code": code, "code_display": f"{code[:3]}-{code[3:]}", "seat": 1,
                              "waiting_place": None, "status": "seated"}
    assert body["already"] is False and body["checked_in_at"].startswith("2026-11-23T16:00")
    again = site.check_in(code.lower())
    assert again.status_code == 200 and again.json()["already"] is True
    assert again.json()["checked_in_at"] == body["checked_in_at"]  # the first check-in counts
    [(attended,)] = site.sql("SELECT attended_at FROM event_signups WHERE code = ?", code)
    assert attended.startswith("2026-11-23T15:00")  # UTC in the store

    # Why not, in each case: the refusal names the event and the sign-up as it is now.
    def refused(who: str) -> dict:
        answer = site.check_in(site.codes[who])
        assert answer.status_code == 409, answer.text
        return answer.json()["error"]

    waiting = refused("waiting")
    assert (waiting["code"], waiting["waiting_place"], waiting["signup"]["status"]) == ("waiting_list", 1, "waiting")
    other_day = refused("tomorrow")
    assert (other_day["code"], other_day["date"], other_day["event"]["title"]) == ("other_day", "2026-11-24",
                                                                                    "Forfattermøde")
    assert refused("cancelled")["code"] == "cancelled" and refused("over")["code"] == "too_late"
    assert site.sql("SELECT COUNT(*) FROM event_signups WHERE attended_at IS NOT NULL") == [(1,)]

    # Counted in the statistics of the day.
    summary = requests.get(f"{site.hub.url}/api/v1/stats/summary?from=2026-11-23&to=2026-11-23", headers=STAFF,
                           timeout=10).json()
    assert summary["events"]["attended"] == 1 and summary["events"]["signups"] == 5


def test_a_visitor_who_moved_up_from_the_waiting_list_checks_in_with_a_seat(site: Site) -> None:
    """The check-in reads the sign-up as it is now, not as its receipt was printed ("waiting list: place 1")."""
    cafe = site.event("IT-café", MORNING.replace(hour=17), seats=1, waiting_list=1)
    site.sign_up("first", cafe)
    assert site.sign_up("second", cafe)["waiting_place"] == 1
    site.hub.set_clock(AFTERNOON)
    assert site.check_in(site.codes["second"]).json()["error"]["code"] == "waiting_list"
    # The first visitor's seat is given up (staff cancel it, as the staff page does) and the waiting list
    # moves up: the second visitor now has seat 1.
    cancelled = requests.delete(f"{site.hub.url}/api/v1/events/{cafe}/signups/{site.codes['first']}",
                                headers=STAFF, timeout=10)
    assert cancelled.status_code == 200 and cancelled.json()["moved_up"]["code"] == site.codes["second"]
    assert site.sql("SELECT seat, waiting_place FROM event_signups WHERE code = ?", site.codes["second"]) == [(1, None)]
    moved = site.check_in(site.codes["second"])
    assert moved.status_code == 201, moved.text
    assert moved.json()["signup"]["status"] == "seated" and moved.json()["signup"]["seat"] == 1
