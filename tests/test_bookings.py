"""Booking rules through the real hub in this process, with a clock the test moves.

The hub, its writer thread, the SQLite store and the HTTP app are the real
ones; only time is the test's (``Hub(clock=...)``), so early, late and
no-show windows are checked to the minute without sleeping.
"""

from __future__ import annotations

import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient

from server import codes
from server.api import create_app
from server.bookings.settings import parse_settings
from server.config import ConfigError, load_config, parse_config
from server.hub import Hub
from server.store import SQLiteStore

SITE = Path(__file__).parent / "sites" / "always_open.toml"
TZ = ZoneInfo("Europe/Copenhagen")
STAFF = {"Authorization": "Bearer demo-staff-token-change-me"}
KIOSK = {"Authorization": "Bearer demo-kiosk1-token-change-me"}
MONDAY_0950 = datetime(2026, 11, 23, 9, 50, tzinfo=TZ)


class Clock:
    def __init__(self, now: datetime):
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def at(self, hhmm: str) -> None:
        h, m = (int(x) for x in hhmm.split(":"))
        self.now = self.now.replace(hour=h, minute=m, second=0)


@dataclass
class Site:
    hub: Hub
    client: TestClient
    clock: Clock
    db_path: Path

    def book(self, start: str, service: str = "borgerservice", **extra: object) -> dict:
        r = self.client.post("/api/v1/bookings", json={"service": service, "start": start, **extra}, headers=STAFF)
        assert r.status_code == 201, r.text
        return r.json()

    def checkin(self, code: str, key: str | None = None):  # type: ignore[no-untyped-def]
        return self.client.post("/api/v1/checkins", json={"code": code, "language": "sv"},
                                headers={**KIOSK, "Idempotency-Key": key or uuid.uuid4().hex})

    def next(self, counter: str):  # type: ignore[no-untyped-def]
        return self.client.post(f"/api/v1/counters/{counter}/next", headers=STAFF).json()

    def sql(self, query: str, *args: object) -> list[tuple]:
        with sqlite3.connect(self.db_path) as db:
            return db.execute(query, args).fetchall()


def make_site(tmp_path: Path, now: datetime = MONDAY_0950, config_path: Path = SITE) -> Iterator[Site]:
    clock = Clock(now)
    config = load_config(config_path)
    db_path = tmp_path / "hub.sqlite3"
    hub = Hub(config, SQLiteStore(db_path, config.site_id), clock=clock).start()
    app = create_app(hub, plugins=("server.bookings", "server.events"))
    with TestClient(app) as client:
        yield Site(hub, client, clock, db_path)
    app.state.feeds.stop()
    hub.stop()


@pytest.fixture()
def site(tmp_path: Path) -> Iterator[Site]:
    yield from make_site(tmp_path)


# -- codes --------------------------------------------------------------------------------


def test_codes_use_an_unambiguous_alphabet_and_typing_is_forgiven() -> None:
    for _ in range(200):
        code = codes.new_code(lambda c: False)
        assert len(code) == 6 and set(code) <= set(codes.ALPHABET) and not set(code) & set("01IO")
    assert codes.normalise(" 7kq-3mz ") == "7KQ3MZ"
    assert codes.normalise("7KQ 3MZ") == "7KQ3MZ"
    assert codes.normalise("https://ko.sonderbro.example/b/7KQ3MZ") == "7KQ3MZ"
    assert codes.problem("7KQ3MZ") is None
    assert "0, O, 1 or I" in (codes.problem("7KQ0MZ") or "")
    assert "0, O, 1 or I" in (codes.problem("IKQ3MZ") or "")
    assert codes.problem("") and codes.problem("7KQ3M!")
    assert codes.pretty("7KQ3MZ") == "7KQ-3MZ"
    taken = {"AAAAAA"}
    assert codes.new_code(lambda c: c in taken) != "AAAAAA"


def test_the_code_is_unique_per_site_in_the_store(site: Site) -> None:
    first = site.book("2026-11-23T10:00")
    with pytest.raises(sqlite3.IntegrityError):
        site.sql("INSERT INTO bookings (id, site, code, service, start, \"end\", day, slots, status, origin, "
                 "created_at) VALUES ('x', 'sonderbro', ?, 'kvik', 'a', 'b', '2026-11-23', 1, 'booked', 'staff', "
                 "'c')", first["code"])


def test_personal_fields_are_kept_90_days_where_the_site_says_nothing_else() -> None:
    config = load_config(SITE)
    unsaid = {k: v for k, v in config.raw["bookings"].items() if k != "retention_days"}
    assert parse_settings(parse_config({**config.raw, "bookings": unsaid}, SITE)).retention_days == 90
    said = {**unsaid, "retention_days": 14}
    assert parse_settings(parse_config({**config.raw, "bookings": said}, SITE)).retention_days == 14


def test_config_errors_name_their_key_path(tmp_path: Path) -> None:
    config = load_config(SITE)
    raw = {**config.raw, "bookings": {"retention_days": 0, "colour": "red"},
           "services": {**config.raw["services"], "kvik": {**config.raw["services"]["kvik"], "booking": {
               "slot_min": 7, "capacity": [{"days": ["monday"], "hours": "10:00-18:00"},
                                           {"days": ["mon"], "hours": "10:10-18:00"}]}}}}
    with pytest.raises(ConfigError) as caught:
        parse_settings(parse_config(raw, SITE))
    text = "\n".join(caught.value.problems)
    assert "bookings.retention_days: expected a whole number from 1 to 3650" in text
    assert "bookings.colour: unknown key" in text
    assert "services.kvik.booking.slot_min: expected a length that divides a day" in text
    assert "services.kvik.booking.capacity[0].days" in text
    assert "services.kvik.booking.capacity[1].hours: expected times on the 7-minute slot grid" in text


# -- check-in --------------------------------------------------------------------------------


def test_check_in_makes_a_due_ticket_in_one_transaction(site: Site) -> None:
    booking = site.book("2026-11-23T10:00", name="Jens Hansen", phone="+45 12 34 56 78")
    typed = booking["code"].lower()[:3] + " - " + booking["code"][3:].lower()
    r = site.checkin(typed, key="checkin-key-1")
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["ticket"]["ticket"] == "B001" and body["ticket"]["origin"] == "booking"
    assert body["booking"] == {"service": "borgerservice", "start": "2026-11-23T10:00:00+01:00",
                               "end": "2026-11-23T10:15:00+01:00"}
    assert "Jens" not in r.text and "12 34" not in r.text
    # the ticket and the booking's check-in are on disk together
    [(status, ticket_id)] = site.sql("SELECT status, ticket_id FROM bookings WHERE id = ?", booking["id"])
    assert status == "checked_in" and ticket_id == body["ticket"]["id"]
    [(origin, due_at)] = site.sql("SELECT origin, due_at FROM tickets WHERE id = ?", ticket_id)
    assert origin == "booking" and due_at.startswith("2026-11-23T09:00:00")
    # a retry with the same key is the same answer; another try is told it is done, with the ticket
    again = site.checkin(typed, key="checkin-key-1")
    assert again.status_code == 200 and again.json()["ticket"]["id"] == ticket_id
    other = site.checkin(booking["code"])
    assert other.status_code == 409 and other.json()["error"]["code"] == "already_checked_in"
    assert other.json()["error"]["ticket"]["id"] == ticket_id


def test_codes_that_cannot_exist_are_not_found_and_never_guessed(site: Site) -> None:
    booking = site.book("2026-11-23T10:00")
    code = booking["code"]
    wrong = site.checkin(code[:5] + ("O" if code[5] != "O" else "0"))
    assert wrong.status_code == 404 and wrong.json()["error"]["code"] == "not_found"
    assert "0, O, 1 or I" in wrong.json()["error"]["message"] and wrong.json()["error"]["field"] == "code"
    missing = site.checkin("ZZZZZZ" if code != "ZZZZZZ" else "YYYYYY")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"


def test_early_late_and_no_show_windows(site: Site) -> None:
    early = site.book("2026-11-23T10:30")  # check-in opens 10:15 (15 min early), closes 10:40 (10 min late)
    site.clock.at("10:14")
    r = site.checkin(early["code"])
    assert r.status_code == 409 and r.json()["error"]["code"] == "too_early"
    assert r.json()["error"]["come_back_at"] == "2026-11-23T10:15:00+01:00"
    site.clock.at("10:15")
    assert site.checkin(early["code"]).status_code == 201

    late = site.book("2026-11-23T10:30")
    site.clock.at("10:40")
    on_the_edge = site.checkin(late["code"])
    assert on_the_edge.status_code == 201  # 10 minutes late is still in time

    too_late = site.book("2026-11-23T10:45")
    site.clock.now = datetime(2026, 11, 23, 10, 55, 1, tzinfo=TZ)
    r = site.checkin(too_late["code"])
    assert r.status_code == 409 and r.json()["error"]["code"] == "too_late"
    assert r.json()["error"]["service"] == "borgerservice"  # the kiosk offers a walk-in ticket there

    # the tick job marks it a no-show; after that it stays too late
    site.hub.call(lambda engine, now: site.client.app.state.bookings.mark_no_shows(engine, now))  # type: ignore
    assert site.sql("SELECT status FROM bookings WHERE id = ?", too_late["id"]) == [("no_show",)]
    assert site.checkin(too_late["code"]).json()["error"]["code"] == "too_late"


def test_other_day_cancelled_and_other_site(site: Site) -> None:
    tomorrow = site.book("2026-11-24T10:00")
    r = site.checkin(tomorrow["code"])
    assert r.status_code == 409 and r.json()["error"]["code"] == "other_day"
    assert r.json()["error"]["date"] == "2026-11-24"
    cancelled = site.book("2026-11-23T10:00")
    assert site.client.delete(f"/api/v1/bookings/{cancelled['id']}", headers=STAFF).json()["status"] == "cancelled"
    r = site.checkin(cancelled["code"])
    assert r.status_code == 409 and r.json()["error"]["code"] == "cancelled"
    csv_text = ("external_id;service;start;site;name\n"
                "ext-77;borgerservice;2026-11-23 10:00;vestby;Anna\n")
    imported = site.client.post("/api/v1/bookings/import?format=csv", content=csv_text.encode(),
                                headers={**STAFF, "Content-Type": "text/csv"})
    assert imported.json()["other_site"] == 1
    [(code, name)] = site.sql("SELECT code, name FROM bookings WHERE external_id = 'ext-77'")
    assert name is None  # another branch's visitor: nothing personal kept here
    r = site.checkin(code)
    assert r.status_code == 409 and r.json()["error"]["code"] == "other_site" and r.json()["error"]["site"] == "vestby"


def test_a_due_booking_is_called_before_walk_ins_and_an_early_one_is_not(site: Site) -> None:
    # borger1 serves borgerservice then kvik; a walk-in waits at kvik since 09:50
    site.client.post("/api/v1/tickets", json={"service": "kvik"}, headers={**KIOSK, "Idempotency-Key": "walkin-1"})
    later = site.book("2026-11-23T10:30")
    site.clock.at("10:15")
    assert site.checkin(later["code"]).status_code == 201  # checked in 15 minutes early: not due yet
    assert site.next("borger1")["call"]["ticket"] == "K001"
    site.clock.at("10:26")  # within the engine's 5-minute margin: due
    assert site.next("borger1")["call"]["ticket"] == "B001"


# -- slots, double slots, self-booking ---------------------------------------------------------


def test_slots_double_slots_and_a_full_slot(site: Site) -> None:
    slots = site.client.get("/api/v1/slots?service=bibliotekar&days=1").json()
    assert slots["slot_min"] == 15 and slots["max_slots"] == 2
    assert slots["slots"][0] == {"start": "2026-11-23T10:00+01:00", "end": "2026-11-23T10:15+01:00", "free": 1,
                                 "double": True}
    assert slots["here_and_now"] == {"start": "2026-11-23T09:50+01:00", "end": "2026-11-23T10:00+01:00"}
    double = site.client.post("/api/v1/bookings/self", json={"service": "bibliotekar", "start":
                              "2026-11-23T10:15+01:00", "slots": 2}, headers={**KIOSK, "Idempotency-Key": "self-001"})
    assert double.status_code == 201, double.text
    booked = double.json()["booking"]
    assert booked["end"] == "2026-11-23T10:45:00+01:00" and booked["slots"] == 2 and len(booked["code"]) == 6
    assert "name" not in booked and double.json()["ticket"] is None
    # the same key again: the same booking, no second one
    replay = site.client.post("/api/v1/bookings/self", json={"service": "bibliotekar", "start":
                              "2026-11-23T10:15+01:00", "slots": 2}, headers={**KIOSK, "Idempotency-Key": "self-001"})
    assert replay.status_code == 200 and replay.json()["booking"]["id"] == booked["id"]
    starts = [s["start"] for s in site.client.get("/api/v1/slots?service=bibliotekar&days=1").json()["slots"]]
    assert "2026-11-23T10:15+01:00" not in starts and "2026-11-23T10:30+01:00" not in starts
    assert "2026-11-23T10:00+01:00" in starts
    after = site.client.get("/api/v1/slots?service=bibliotekar&days=1").json()["slots"][0]
    assert after["start"] == "2026-11-23T10:00+01:00" and after["double"] is False  # 10:15 is taken
    # a double slot over a taken one is full; staff can force it
    r = site.client.post("/api/v1/bookings/self", json={"service": "bibliotekar", "start": "2026-11-23T10:00+01:00",
                         "slots": 2}, headers={**KIOSK, "Idempotency-Key": "self-002"})
    assert r.status_code == 409 and r.json()["error"]["code"] == "full"
    three = site.client.post("/api/v1/bookings", json={"service": "bibliotekar", "start": "2026-11-23T11:00",
                             "slots": 3}, headers=STAFF)
    assert three.status_code == 422 and three.json()["error"]["field"] == "slots"
    forced = site.client.post("/api/v1/bookings", json={"service": "bibliotekar", "start": "2026-11-23T10:30",
                              "force": True}, headers=STAFF)
    assert forced.status_code == 201 and forced.json()["overbooked"] is True
    off_grid = site.client.post("/api/v1/bookings/self", json={"service": "bibliotekar",
                                "start": "2026-11-23T11:05+01:00"}, headers={**KIOSK, "Idempotency-Key": "self-003"})
    assert off_grid.status_code == 422 and off_grid.json()["error"]["code"] == "not_a_slot"


def test_here_and_now_books_and_checks_in_at_once_only_when_someone_is_free(site: Site) -> None:
    r = site.client.post("/api/v1/bookings/self", json={"service": "bibliotekar", "here_and_now": True},
                         headers={**KIOSK, "Idempotency-Key": "hn-000001"})
    assert r.status_code == 201, r.text
    assert r.json()["ticket"]["ticket"] == "L001" and r.json()["booking"]["status"] == "checked_in"
    # now the librarian's current slot is taken and someone waits: no more here-and-now
    assert site.client.get("/api/v1/slots?service=bibliotekar").json()["here_and_now"] is None
    again = site.client.post("/api/v1/bookings/self", json={"service": "bibliotekar", "here_and_now": True},
                             headers={**KIOSK, "Idempotency-Key": "hn-000002"})
    assert again.status_code == 409 and again.json()["error"]["code"] == "not_free"


def test_here_and_now_ends_on_the_grid_and_never_runs_into_the_next_slot(site: Site) -> None:
    """09:50: the librarian's 09:45 slot has ten minutes left, so "now" is 09:50–10:00 and 10:00 stays bookable
    (it was 09:50–10:05 over a free 10:00 slot: two visitors for five minutes). 09:53 leaves less than half a
    slot: "now" runs to 10:15 and holds the 10:00 slot too, so no one else is offered 10:00."""
    def offered() -> tuple[dict | None, list[str]]:
        body = site.client.get("/api/v1/slots?service=bibliotekar&days=1").json()
        return body["here_and_now"], [s["start"] for s in body["slots"]]

    now, starts = offered()
    assert now == {"start": "2026-11-23T09:50+01:00", "end": "2026-11-23T10:00+01:00"}
    assert starts[0] == "2026-11-23T10:00+01:00" and starts[0] >= now["end"]
    site.clock.at("09:53")
    now, starts = offered()
    assert now == {"start": "2026-11-23T09:53+01:00", "end": "2026-11-23T10:15+01:00"}
    r = site.client.post("/api/v1/bookings/self", json={"service": "bibliotekar", "here_and_now": True},
                         headers={**KIOSK, "Idempotency-Key": "hn-grid-01"})
    assert r.status_code == 201, r.text
    booking = r.json()["booking"]
    assert (booking["start"], booking["end"], booking["slots"]) == ("2026-11-23T09:53:00+01:00",
                                                                    "2026-11-23T10:15:00+01:00", 2)
    claims = site.sql("SELECT slot_start FROM booking_claims WHERE booking_id = ? ORDER BY slot_start",
                      booking["id"])
    assert claims == [("2026-11-23T08:45:00+00:00",), ("2026-11-23T09:00:00+00:00",)]
    _now, starts = offered()
    assert starts[0] == "2026-11-23T10:15+01:00"  # 10:00 is the here-and-now visitor's
    # Less than half a slot left and the next slot taken: no "now" that would run into it.
    assert site.next("bib1")["call"]["ticket"] == "L001"  # served: no one waits for the librarian any more
    site.book("2026-11-23T11:00", service="bibliotekar")
    site.clock.at("10:50")
    assert offered()[0] == {"start": "2026-11-23T10:50+01:00", "end": "2026-11-23T11:00+01:00"}
    site.clock.at("10:53")
    assert offered()[0] is None


def test_capacity_follows_the_weekly_spans(tmp_path: Path) -> None:
    # the sample site: book a librarian Tue 13–16 with two librarians, 10–13 with one; closed Saturday
    tuesday = datetime(2026, 11, 24, 9, 0, tzinfo=TZ)
    sample = Path(__file__).parent.parent / "server" / "sites" / "sample.toml"
    for s in make_site(tmp_path, tuesday, sample):
        slots = s.client.get("/api/v1/slots?service=bibliotekar&days=5").json()["slots"]
        by_start = {x["start"]: x["free"] for x in slots}
        assert by_start["2026-11-24T10:00+01:00"] == 1 and by_start["2026-11-24T13:00+01:00"] == 2
        assert "2026-11-24T16:00+01:00" not in by_start and "2026-11-24T09:45+01:00" not in by_start
        assert not any(x.startswith("2026-11-28") for x in by_start)  # Saturday: no bookings
        assert s.client.get("/api/v1/slots?service=kvik").json()["error"]["code"] == "no_self_booking"


# -- privacy ---------------------------------------------------------------------------------


def test_names_are_for_staff_only(site: Site) -> None:
    site.book("2026-11-23T10:00", name="Jens Hansen", phone="12345678", note="pas")
    public = site.client.get("/api/v1/bookings?day=2026-11-23")
    assert public.status_code == 200 and "Jens" not in public.text and "code" not in public.text
    assert public.json()["bookings"] == [{"service": "borgerservice", "start": "2026-11-23T10:00:00+01:00",
                                          "end": "2026-11-23T10:15:00+01:00", "status": "booked"}]
    staff = site.client.get("/api/v1/bookings?day=2026-11-23", headers=STAFF).json()["bookings"][0]
    assert staff["name"] == "Jens Hansen" and staff["phone"] == "12345678" and staff["ticket"] is None
    assert "Jens" not in str(site.hub.retained_state())
    assert site.client.post("/api/v1/bookings", json={"service": "kvik", "start": "2026-11-23T10:00"},
                            headers=KIOSK).status_code == 403
    assert site.client.get("/api/v1/bookings?day=23-11-2026", headers=STAFF).json()["error"]["field"] == "day"


def test_the_retention_job_really_runs_and_empties_the_columns(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    import server.hub

    monkeypatch.setattr(server.hub, "TICK_SECONDS", 0.05)
    for s in make_site(tmp_path):
        old = s.book("2026-11-23T10:00", name="Jens Hansen", phone="12345678", note="pas fornyes")
        kept = s.book("2026-12-20T10:00", name="Anna Berg", phone="87654321")
        assert s.sql("SELECT name FROM bookings WHERE id = ?", old["id"]) == [("Jens Hansen",)]
        s.clock.now = datetime(2026, 12, 24, 12, 0, tzinfo=TZ)  # 31 days later; retention is 30
        deadline = time.monotonic() + 20
        while s.sql("SELECT name FROM bookings WHERE id = ?", old["id"]) != [(None,)]:
            assert time.monotonic() < deadline, "the retention job did not run"
            time.sleep(0.05)
        assert s.sql("SELECT name, phone, note, code, status FROM bookings WHERE id = ?", old["id"]) == [
            (None, None, None, old["code"], "no_show")]
        assert s.sql("SELECT name, phone FROM bookings WHERE id = ?", kept["id"]) == [("Anna Berg", "87654321")]


# -- imports ---------------------------------------------------------------------------------


CSV_EXPORT = """\ufeffexternal_id;service;start;end;name;phone
BS-1001;borgerservice;2026-11-23 10:00;2026-11-23 10:30;Jens Hansen;12345678
BS-1002;Borgerservice;2026-11-23 11:00;;;
BS-1003;passport;2026-11-23 12:00;;Ole;
;borgerservice;2026-11-23 12:00;;Ole;
BS-1005;borgerservice;23/11/2026 12:00;;Ole;
BS-1006;borgerservice;2026-11-23 12:00;2026-11-23 11:00;Ole;
BS-1007;bibliotekar;2026-11-23T13:00;;;
"""


def test_csv_import_reports_bad_rows_and_is_idempotent(site: Site) -> None:
    def post(text: str):  # type: ignore[no-untyped-def]
        return site.client.post("/api/v1/bookings/import", content=text.encode(),
                                headers={**STAFF, "Content-Type": "text/csv"}).json()

    report = post(CSV_EXPORT)
    assert report["format"] == "csv" and report["created"] == 3 and report["rows"] == 7
    assert [(e["row"], e["field"]) for e in report["errors"]] == [
        (4, "service"), (5, "external_id"), (6, "start"), (7, "end")]
    assert "passport" in report["errors"][0]["message"]
    [(slots, name)] = site.sql("SELECT slots, name FROM bookings WHERE external_id = 'BS-1001'")
    assert slots == 2 and name == "Jens Hansen"
    again = post(CSV_EXPORT)
    assert again["created"] == 0 and again["unchanged"] == 3
    assert site.sql("SELECT count(*) FROM bookings") == [(3,)]
    moved = post("external_id,service,start,status\nBS-1002,borgerservice,2026-11-23 14:00,\n"
                 "BS-1007,bibliotekar,2026-11-23 13:00,cancelled\n")
    assert moved["updated"] == 1 and moved["cancelled"] == 1
    assert site.sql("SELECT start FROM bookings WHERE external_id = 'BS-1002'") == [("2026-11-23T13:00:00+00:00",)]
    assert site.sql("SELECT status FROM bookings WHERE external_id = 'BS-1007'") == [("cancelled",)]
    header = post("who,when\nx,y\n")
    assert header["errors"][0]["row"] == 1 and "external_id" in header["errors"][0]["message"]


ICS_EXPORT = """BEGIN:VCALENDAR\r
VERSION:2.0\r
PRODID:-//Kommune//Tidsbestilling//DA\r
BEGIN:VEVENT\r
UID:tb-2001@kommune.example\r
DTSTAMP:20261120T080000Z\r
DTSTART;TZID=Europe/Copenhagen:20261123T100000\r
DTEND;TZID=Europe/Copenhagen:20261123T101500\r
SUMMARY:Pas\r
CATEGORIES:Borgerservice\r
ATTENDEE;CN=Jens Hansen:mailto:jens@example.dk\r
X-VUORO-PHONE:12345678\r
END:VEVENT\r
BEGIN:VEVENT\r
UID:tb-2002@kommune.example\r
DTSTAMP:20261120T080000Z\r
DTSTART;VALUE=DATE:20261123\r
SUMMARY:Hele dagen?\r
X-VUORO-SERVICE:borgerservice\r
END:VEVENT\r
BEGIN:VEVENT\r
DTSTAMP:20261120T080000Z\r
DTSTART:20261123T110000Z\r
SUMMARY:No uid\r
END:VEVENT\r
BEGIN:VEVENT\r
UID:tb-2004@kommune.example\r
DTSTAMP:20261120T080000Z\r
DTSTART:20261123T120000Z\r
DURATION:PT30M\r
SUMMARY:Kørekort\r
STATUS:CONFIRMED\r
END:VEVENT\r
END:VCALENDAR\r
"""


def test_ics_import_with_errors_by_event(site: Site) -> None:
    r = site.client.post("/api/v1/bookings/import?service=borgerservice", content=ICS_EXPORT.encode(),
                         headers={**STAFF, "Content-Type": "text/calendar"})
    report = r.json()
    assert report["format"] == "ics" and report["created"] == 2, report
    assert [(e["row"], e["field"]) for e in report["errors"]] == [(2, "DTSTART"), (3, "UID")]
    assert site.sql("SELECT name, phone, slots FROM bookings WHERE external_id = 'tb-2001@kommune.example'") == [
        ("Jens Hansen", "12345678", 1)]
    assert site.sql("SELECT slots FROM bookings WHERE external_id = 'tb-2004@kommune.example'") == [(2,)]
    assert site.client.post("/api/v1/bookings/import?service=borgerservice", content=ICS_EXPORT.encode(),
                            headers={**STAFF, "Content-Type": "text/calendar"}).json()["unchanged"] == 2
    junk = site.client.post("/api/v1/bookings/import?format=ics", content=b"\x00\xff not a calendar",
                            headers=STAFF)
    assert junk.status_code == 200 and junk.json()["errors"][0]["row"] == 0


# -- the writer thread serialises: the last place of a slot ---------------------------------------


def test_two_kiosks_and_the_last_place_in_process(site: Site) -> None:
    barrier = threading.Barrier(2)
    answers: list[int] = []

    def take(n: int) -> None:
        barrier.wait()
        r = site.client.post("/api/v1/bookings/self", json={"service": "bibliotekar",
                             "start": "2026-11-23T12:00+01:00"}, headers={**KIOSK, "Idempotency-Key": f"race-{n:04d}"})
        answers.append(r.status_code)

    threads = [threading.Thread(target=take, args=(n,)) for n in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(answers) == [201, 409]
    assert site.sql("SELECT count(*) FROM booking_claims WHERE slot_start = '2026-11-23T11:00:00+00:00'") == [(1,)]
