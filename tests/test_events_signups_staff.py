"""Staff and event sign-ups: the list, a cancel, and the waiting list moving up (issue 15).

A whole hub in this process (its writer thread, its SQLite file, its MQTT link to a real broker, its HTTP app),
driven over HTTP as the staff page drives it. The two-cancels test holds the writer thread while both requests
arrive, so they are decided in one batch and written in one transaction: the case where a move-up read from the
store (not yet written) would seat the same visitor twice.
"""

from __future__ import annotations

import sqlite3
import threading
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx

from toolkit.broker import Broker
from toolkit.hub_in_process import OPEN_MONDAY, RunningHub
from toolkit.mqtt_watch import Watch
from toolkit.polling import wait_until
from vuoro.protocol import EVENTS_TODAY_SUFFIX, Topics

STAFF = {"Authorization": "Bearer demo-staff-token-change-me"}
KIOSK = {"Authorization": "Bearer demo-kiosk1-token-change-me"}


def make_event(hub: RunningHub, title: str, seats: int, waiting_list: int) -> str:
    start = OPEN_MONDAY.replace(hour=17, minute=0)
    made = httpx.post(f"{hub.url}/api/v1/events", headers=STAFF, timeout=10, json={
        "title": title, "start": start.isoformat(), "end": (start + timedelta(hours=1)).isoformat(),
        "seats": seats, "waiting_list": waiting_list})
    assert made.status_code == 201, made.text
    return str(made.json()["id"])


def sign_up(hub: RunningHub, event_id: str, headers: dict[str, str] = KIOSK, **body: Any) -> dict[str, Any]:
    answer = httpx.post(f"{hub.url}/api/v1/events/{event_id}/signups", json={"language": "da", **body}, timeout=10,
                        headers={**headers, "Idempotency-Key": uuid.uuid4().hex})
    assert answer.status_code == 201, answer.text
    return answer.json()


def listing(hub: RunningHub, event_id: str) -> list[dict[str, Any]]:
    answer = httpx.get(f"{hub.url}/api/v1/events/{event_id}/signups", headers=STAFF, timeout=10)
    assert answer.status_code == 200, answer.text
    return answer.json()["signups"]


def rows(hub: RunningHub, event_id: str) -> dict[str, tuple[Any, Any]]:
    """code → (seat, waiting place) as the hub's SQLite file has it."""
    with sqlite3.connect(hub.hub.store.path, timeout=10) as db:
        return {code: (seat, place) for code, seat, place in db.execute(
            "SELECT code, seat, waiting_place FROM event_signups WHERE event_id = ?", (event_id,))}


def hold_writer(hub: RunningHub) -> threading.Event:
    """Block the hub's writer thread (a command that waits) until the returned event is set."""
    gate, holding = threading.Event(), threading.Event()

    def hold(engine: Any, now: Any) -> None:
        holding.set()
        gate.wait(10)

    hub.hub.submit(hold)
    assert holding.wait(10)
    return gate


def check_in(hub: RunningHub, code: str) -> httpx.Response:
    return httpx.post(f"{hub.url}/api/v1/checkins", json={"code": code, "language": "da"}, timeout=10,
                      headers={**KIOSK, "Idempotency-Key": uuid.uuid4().hex})


def test_staff_list_and_cancel_a_seat_moves_the_first_on_the_waiting_list_up(hub_in_process: RunningHub,
                                                                              live_broker: Broker) -> None:
    hub = hub_in_process
    topics = Topics(hub.config.site_id, hub.config.topic_root)
    today_topic = topics.under(EVENTS_TODAY_SUFFIX)
    watch = Watch(live_broker, today_topic)
    try:
        cafe = make_event(hub, "Sprogcafé", seats=2, waiting_list=3)
        anna = sign_up(hub, cafe, STAFF, name="Anna  Andersen")  # a caller, signed up at the desk
        bo = sign_up(hub, cafe)
        cy, dan = sign_up(hub, cafe), sign_up(hub, cafe)
        assert (anna["seat"], bo["seat"], cy["waiting_place"], dan["waiting_place"]) == (1, 2, 1, 2)
        assert "name" not in anna and "Anna" not in str(anna)  # the answer a kiosk would print carries no name

        # A kiosk cannot write a name; staff see it, with seat or place on the waiting list.
        refused = httpx.post(f"{hub.url}/api/v1/events/{cafe}/signups", json={"name": "Eve"}, timeout=10,
                             headers={**KIOSK, "Idempotency-Key": uuid.uuid4().hex})
        assert refused.status_code == 403 and refused.json()["error"]["field"] == "name"
        assert httpx.get(f"{hub.url}/api/v1/events/{cafe}/signups", headers=KIOSK, timeout=10).status_code == 403
        listed = listing(hub, cafe)
        assert [(s["code"], s["name"], s["status"], s["seat"], s["position"]) for s in listed] == [
            (anna["code"], "Anna Andersen", "seated", 1, None), (bo["code"], None, "seated", 2, None),
            (cy["code"], None, "waiting", None, 1), (dan["code"], None, "waiting", None, 2)]
        wait_until(lambda: any(e["id"] == cafe and e["seats_left"] == 0 and e["waiting_list_left"] == 1
                               for m in watch.on(today_topic) for e in m["events"]), "events/today with the sign-ups")
        assert "Anna" not in str(watch.on(today_topic))  # never a name on MQTT

        # Cy cannot check in yet: waiting.
        assert check_in(hub, cy["code"]).json()["error"]["code"] == "waiting_list"

        # Staff cancel Bo (the code as printed, with its dash): Cy takes seat 2, Dan is first in line now.
        pretty = f"{bo['code'][:3]}-{bo['code'][3:]}"
        answer = httpx.delete(f"{hub.url}/api/v1/events/{cafe}/signups/{pretty}", headers=STAFF, timeout=10)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["cancelled"]["code"] == bo["code"]
        assert body["moved_up"] == {"code": cy["code"], "code_display": f"{cy['code'][:3]}-{cy['code'][3:]}",
                                    "seat": 2, "waiting_place": None, "status": "seated"}
        assert rows(hub, cafe) == {anna["code"]: (1, None), cy["code"]: (2, None), dan["code"]: (None, 2)}
        assert [(s["code"], s["status"], s["position"]) for s in listing(hub, cafe)] == [
            (anna["code"], "seated", None), (cy["code"], "seated", None), (dan["code"], "waiting", 1)]

        # The kiosk's code check takes Cy's code as seated; Bo's code is no one's any more.
        moved = check_in(hub, cy["code"])
        assert moved.status_code == 201, moved.text
        assert moved.json()["signup"]["status"] == "seated" and moved.json()["signup"]["seat"] == 2
        assert check_in(hub, bo["code"]).status_code == 404
        # Cancelling it again says so.
        again = httpx.delete(f"{hub.url}/api/v1/events/{cafe}/signups/{bo['code']}", headers=STAFF, timeout=10)
        assert again.status_code == 404 and again.json()["error"]["code"] == "unknown_signup"

        # Cancel a waiting-list place: no one moves; the waiting list has room again, and events/today says so.
        assert httpx.delete(f"{hub.url}/api/v1/events/{cafe}/signups/{dan['code']}", headers=STAFF,
                            timeout=10).json()["moved_up"] is None
        wait_until(lambda: any(e["id"] == cafe and e["seats_left"] == 0 and e["waiting_list_left"] == 3
                               for e in watch.on(today_topic)[-1]["events"]), "events/today after the cancels")
        # Both seats are taken: a new sign-up is first on the waiting list.
        late = sign_up(hub, cafe)
        assert (late["seat"], late["waiting_place"]) == (None, 1)
    finally:
        watch.close()


def test_two_cancels_at_once_seat_two_different_visitors_and_lose_no_seat(hub_in_process: RunningHub) -> None:
    hub = hub_in_process
    talk = make_event(hub, "Forfattermøde", seats=2, waiting_list=5)
    seated = [sign_up(hub, talk)["code"] for _ in range(2)]
    waiting = [sign_up(hub, talk)["code"] for _ in range(3)]

    # Hold the writer thread, send both cancels, let it go: both are decided in one batch, one transaction.
    gate = hold_writer(hub)
    answers: list[httpx.Response] = []

    def cancel(code: str) -> None:
        answers.append(httpx.delete(f"{hub.url}/api/v1/events/{talk}/signups/{code}", headers=STAFF, timeout=20))

    threads = [threading.Thread(target=cancel, args=(code,)) for code in seated]
    for thread in threads:
        thread.start()
    wait_until(lambda: hub.hub.jobs.qsize() >= 2, "both cancels queued behind the held writer")
    gate.set()
    for thread in threads:
        thread.join(20)
    assert sorted(a.status_code for a in answers) == [200, 200], [a.text for a in answers]
    moved = sorted(a.json()["moved_up"]["code"] for a in answers)
    assert moved == sorted(waiting[:2])  # the first two in line, one each: neither seated twice
    on_disk = rows(hub, talk)
    assert sorted(seat for seat, _ in on_disk.values() if seat is not None) == [1, 2]  # no seat lost or shared
    assert on_disk[waiting[0]][0] is not None and on_disk[waiting[1]][0] is not None
    assert on_disk[waiting[2]] == (None, 3)
    assert set(on_disk) == set(waiting)

    # The same code cancelled twice at once: one cancel, one "no such sign-up"; one visitor moves up, not two.
    gate = hold_writer(hub)
    answers.clear()
    threads = [threading.Thread(target=cancel, args=(waiting[0],)) for _ in range(2)]
    for thread in threads:
        thread.start()
    wait_until(lambda: hub.hub.jobs.qsize() >= 2, "both cancels queued behind the held writer")
    gate.set()
    for thread in threads:
        thread.join(20)
    assert sorted(a.status_code for a in answers) == [200, 404]
    assert rows(hub, talk) == {waiting[1]: on_disk[waiting[1]], waiting[2]: (on_disk[waiting[0]][0], None)}

    # The programme read again from the file has the same picture (memory never ran ahead of the disk).
    hub.hub.call(lambda engine, now: hub.app.state.programme.load())
    assert [(s["code"], s["status"]) for s in listing(hub, talk)] == [
        (c, "seated") for c in sorted(waiting[1:], key=lambda c: rows(hub, talk)[c][0])]


def test_a_name_written_with_a_sign_up_is_forgotten_a_day_after_the_event(tmp_path: Any,
                                                                          monkeypatch: Any) -> None:
    """The real hub's tick (its timer sped up), a clock the test moves: the name is there until the day after
    the event, then NULL in the file and gone from the staff list; the sign-up itself stays."""
    import time
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from fastapi.testclient import TestClient

    import server.hub
    from server.api import create_app
    from server.config import load_config
    from server.hub import Hub
    from server.store import SQLiteStore

    monkeypatch.setattr(server.hub, "TICK_SECONDS", 0.05)
    tz = ZoneInfo("Europe/Copenhagen")
    now = [datetime(2026, 11, 23, 10, 0, tzinfo=tz)]
    config = load_config(Path(__file__).parent / "sites" / "always_open.toml")
    db_path = tmp_path / "hub.sqlite3"
    hub = Hub(config, SQLiteStore(db_path, config.site_id), clock=lambda: now[0]).start()
    app = create_app(hub, plugins=("server.events",))

    def names() -> list[tuple]:
        with sqlite3.connect(db_path) as db:
            return db.execute("SELECT name FROM event_signups ORDER BY created_at").fetchall()

    try:
        with TestClient(app) as client:
            made = client.post("/api/v1/events", headers=STAFF, json={
                "title": "Sprogcafé", "start": "2026-11-23T17:00:00+01:00", "end": "2026-11-23T18:00:00+01:00",
                "seats": 5}).json()
            signed = client.post(f"/api/v1/events/{made['id']}/signups", json={"name": "Dorte Dahl"},
                                 headers={**STAFF, "Idempotency-Key": uuid.uuid4().hex})
            assert signed.status_code == 201, signed.text
            now[0] = datetime(2026, 11, 24, 17, 30, tzinfo=tz)  # the event ended 23.5 hours ago: still kept
            time.sleep(0.5)  # ten ticks
            assert names() == [("Dorte Dahl",)]
            now[0] = datetime(2026, 11, 24, 18, 1, tzinfo=tz)  # a day after it ended
            hub.submit(lambda engine, n: None).result(5)
            wait_until(lambda: names() == [(None,)], "the name forgotten by the tick job", timeout=20)
            listed = client.get(f"/api/v1/events/{made['id']}/signups", headers=STAFF).json()["signups"]
            assert [(s["code"], s["name"]) for s in listed] == [(signed.json()["code"], None)]
    finally:
        app.state.feeds.stop()
        hub.stop()
