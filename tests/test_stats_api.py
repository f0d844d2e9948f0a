"""The statistics plugin on a real hub (writer thread, SQLite file) with a clock the test moves.

Tickets go through the real engine via the HTTP API, so the figures checked
here are what a site would get, to the second, including across the October
DST change.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from server.api import create_app
from server.config import load_config
from server.hub import Hub
from server.store import SQLiteStore

SITE = Path(__file__).parent / "sites" / "always_open.toml"
KIOSK = {"Authorization": "Bearer demo-kiosk1-token-change-me"}
KIOSK2 = {"Authorization": "Bearer demo-kiosk2-token-change-me"}
STAFF = {"Authorization": "Bearer demo-staff-token-change-me"}
SCREEN = {"Authorization": "Bearer demo-screen1-token-change-me"}


class Clock:
    def __init__(self, start: datetime):
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def set(self, value: str) -> None:
        self.now = datetime.fromisoformat(value.replace("Z", "+00:00"))


@pytest.fixture()
def site(tmp_path: Path) -> Iterator[tuple[TestClient, Hub, Clock]]:
    config = load_config(SITE)
    clock = Clock(datetime(2026, 10, 24, 22, 30, tzinfo=UTC))  # 00:30 CEST on the 25-hour day
    hub = Hub(config, SQLiteStore(tmp_path / "hub.sqlite3", config.site_id), clock=clock).start()
    app = create_app(hub, plugins=("server.stats", "server.feedback"))
    with TestClient(app) as client:
        yield client, hub, clock
    hub.stop()


def issue(client: TestClient, service: str = "kvik") -> dict[str, Any]:
    import uuid

    answer = client.post("/api/v1/tickets", json={"service": service}, headers={**KIOSK,
                                                                                "Idempotency-Key": uuid.uuid4().hex})
    assert answer.status_code == 201, answer.text
    return answer.json()


def act(client: TestClient, counter: str, action: str) -> dict[str, Any]:
    answer = client.post(f"/api/v1/counters/{counter}/{action}", headers=STAFF)
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_a_day_through_the_api_across_the_october_change(site: tuple[TestClient, Hub, Clock]) -> None:
    client, hub, clock = site
    clock.set("2026-10-25T00:30:00Z")  # 02:30 CEST
    issue(client)  # K001
    clock.set("2026-10-25T00:55:00Z")  # 02:55 CEST
    issue(client)  # K002
    clock.set("2026-10-25T01:00:00Z")  # 02:00 CET: the clock went back
    assert act(client, "kvik1", "next")["call"]["ticket"] == "K001"  # waited 30 min
    clock.set("2026-10-25T01:05:00Z")  # 02:05 CET
    assert act(client, "kvik2", "next")["call"]["ticket"] == "K002"  # waited 10 min, wall clock says −50
    clock.set("2026-10-25T01:09:00Z")
    act(client, "kvik1", "finish")  # K001 served 9 min
    act(client, "kvik2", "no-show")
    clock.set("2026-10-25T01:30:00Z")  # 02:30 CET, the second 02:30 of the day
    issue(client, "bibliotekar")  # L001
    clock.set("2026-10-25T01:31:00Z")
    act(client, "bib1", "next")
    clock.set("2026-10-25T01:32:00Z")
    moved = client.post("/api/v1/counters/bib1/transfer", json={"service": "it"}, headers=STAFF)
    assert moved.status_code == 200, moved.text
    clock.set("2026-10-25T01:50:00Z")
    act(client, "bib1", "next")  # L001 again, now for IT
    clock.set("2026-10-25T02:00:00Z")
    act(client, "bib1", "finish")
    clock.set("2026-10-25T22:59:00Z")  # 23:59 CET
    issue(client)  # K003, still waiting at the end

    by_hour = client.get("/api/v1/stats/summary", params={"from": "2026-10-25", "to": "2026-10-25", "by": "hour"},
                         headers=STAFF)
    assert by_hour.status_code == 200, by_hour.text
    body = by_hour.json()
    assert body["percentile_method"] == "nearest-rank" and body["timezone"] == "Europe/Copenhagen"
    total = body["total"]
    assert (total["issued"], total["served"], total["no_show"], total["open"], total["transferred"]) == (
        4, 2, 1, 1, 1)
    # waits: K001 1800, K002 600, L001 60 (to its FIRST call) → sorted 60 600 1800
    assert (total["wait_median_s"], total["wait_p90_s"], total["wait_max_s"]) == (600.0, 1800.0, 1800.0)
    # service times: K001 540, L001 600 (from its last call)
    assert (total["service_median_s"], total["service_p90_s"]) == (540.0, 600.0)
    # KVIK's target is 10 min: K001 misses; IT's is 20: L001 within
    assert (total["within_target"], total["service_level"]) == (2, round(2 / 3, 4))
    assert [(g["hour"], g["issued"]) for g in body["groups"]] == [(2, 3), (23, 1)]

    by_day = client.get("/api/v1/stats/summary", params={"from": "2026-10-25", "to": "2026-10-25", "by": "day"},
                        headers=STAFF).json()
    assert [(g["day"], g["issued"], g["day_hours"]) for g in by_day["groups"]] == [("2026-10-25", 4, 25.0)]
    by_service = client.get("/api/v1/stats/summary", headers=STAFF,
                            params={"from": "2026-10-25", "to": "2026-10-25", "by": "service"}).json()
    assert {g["service"]: g["issued"] for g in by_service["groups"]} == {"it": 1, "kvik": 3}
    assert "now" in by_day and by_day["now"]["waiting"] == 1 and by_day["now"]["longest_wait_now_s"] == 0

    report = client.get("/api/v1/stats/report", params={"from": "2026-10-25", "to": "2026-10-25"},
                        headers=STAFF).json()
    assert set(report["report"]) == {"hour", "day,service", "service", "counter"}
    assert report["report"]["hour"] == body["groups"]

    text = client.get("/api/v1/stats/tickets.csv", params={"from": "2026-10-25", "to": "2026-10-25"},
                      headers=STAFF)
    assert text.status_code == 200 and text.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(text.text)))
    assert [(r["ticket"], r["status"], r["wait_s"]) for r in rows] == [
        ("K001", "done", "1800"), ("K002", "no_show", "600"), ("L001", "done", "60"), ("K003", "waiting", "")]
    assert rows[1]["issued_local"] == "2026-10-25T02:55:00+02:00" and rows[2]["issued_local"].endswith("+01:00")
    assert not {"id", "track_token", "token"} & set(rows[0])
    summary_csv = client.get("/api/v1/stats/summary.csv", params={"from": "2026-10-25", "to": "2026-10-25",
                                                                  "by": "service", "sep": "semicolon"},
                             headers=STAFF).text
    table = list(csv.reader(io.StringIO(summary_csv), delimiter=";"))
    assert [r[0] for r in table] == ["service", "it", "kvik", "total"] and table[-1][1] == "4"


def test_who_may_see_statistics(site: tuple[TestClient, Hub, Clock]) -> None:
    client, _, _ = site
    assert client.get("/api/v1/stats/summary").status_code == 401
    assert client.get("/api/v1/stats/summary", headers=KIOSK).status_code == 403
    assert client.get("/api/v1/stats/tickets.csv", headers=SCREEN).status_code == 403
    assert client.get("/api/v1/stats/summary", headers={"Authorization": "Bearer demo-admin-token-change-me"}
                      ).status_code == 200
    bad = client.get("/api/v1/stats/summary", params={"by": "colour"}, headers=STAFF)
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "by"
    backwards = client.get("/api/v1/stats/summary", params={"from": "2026-10-25", "to": "2026-10-01"},
                           headers=STAFF)
    assert backwards.status_code == 422 and backwards.json()["error"]["field"] == "to"
    assert client.get("/api/v1/stats/summary", params={"from": "25.10.2026"}, headers=STAFF).status_code == 422
    # the pages themselves are open; they fetch the figures with the visitor's credentials
    page = client.get("/stats/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert client.get("/stats/stats.js").status_code == 200
    assert client.get("/feedback/").status_code == 200 and client.get("/feedback/feedback.js").status_code == 200
    assert client.get("/stats/nothing.js").status_code == 404


def test_feedback_is_kept_rate_limited_and_counted(site: tuple[TestClient, Hub, Clock]) -> None:
    client, hub, clock = site
    clock.set("2026-11-23T09:10:00Z")  # 10:10 local
    issue(client)
    act(client, "kvik1", "next")
    for rating in (5, 4, 5, 3, 1):
        answer = client.post("/api/v1/feedback", json={"rating": rating, "service": "kvik"}, headers=KIOSK)
        assert answer.status_code == 201, answer.text
    limited = client.post("/api/v1/feedback", json={"rating": 5}, headers=KIOSK)
    assert limited.status_code == 429 and limited.json()["error"]["retry_after_s"] > 0
    # another device has its own allowance; a three-face screen sends 1, 3 or 5
    assert client.post("/api/v1/feedback", json={"rating": 3, "faces": 3}, headers=KIOSK2).status_code == 201
    assert client.post("/api/v1/feedback", json={"rating": 2, "faces": 3}, headers=KIOSK2).status_code == 422
    assert client.post("/api/v1/feedback", json={"rating": 6}, headers=KIOSK2).status_code == 422
    assert client.post("/api/v1/feedback", json={"rating": 4, "service": "passport"},
                       headers=KIOSK2).status_code == 404
    assert client.post("/api/v1/feedback", json={"rating": 4}).status_code == 401
    assert client.post("/api/v1/feedback", json={"rating": 4}, headers=SCREEN).status_code == 403
    body = client.get("/api/v1/stats/summary", params={"from": "2026-11-23", "by": "service"},
                      headers=STAFF).json()
    assert body["total"]["feedback_count"] == 6 and body["total"]["feedback_ratings"] == [1, 0, 2, 1, 2]
    assert body["total"]["feedback_mean"] == round(21 / 6, 2)
    kvik = next(g for g in body["groups"] if g["service"] == "kvik")
    assert (kvik["feedback_count"], kvik["feedback_mean"]) == (5, 3.6)
    stored = hub.call(lambda engine, now: hub.store.db.execute(
        "SELECT rating, device, service FROM stats_feedback ORDER BY id").fetchall())
    assert stored[0] == (5, "kiosk1", "kvik") and stored[-1] == (3, "kiosk2", None)


def test_a_rating_sent_again_with_its_key_counts_once(site: tuple[TestClient, Hub, Clock]) -> None:
    """The tablet lost the answer with its connection and sent the rating again, with the same Idempotency-Key."""
    client, hub, clock = site
    clock.set("2026-11-23T09:10:00Z")
    for _ in range(2):
        answer = client.post("/api/v1/feedback", json={"rating": 4},
                             headers={**KIOSK, "Idempotency-Key": "rating-1a2b3c"})
        assert answer.status_code == 201 and answer.json() == {"ok": True, "rating": 4}
    # the same key from another device is another rating; a new key is a new rating; a bad key is refused
    assert client.post("/api/v1/feedback", json={"rating": 2},
                       headers={**KIOSK2, "Idempotency-Key": "rating-1a2b3c"}).status_code == 201
    assert client.post("/api/v1/feedback", json={"rating": 5},
                       headers={**KIOSK, "Idempotency-Key": "rating-4d5e6f"}).status_code == 201
    refused = client.post("/api/v1/feedback", json={"rating": 5}, headers={**KIOSK, "Idempotency-Key": "no"})
    assert refused.status_code == 400 and refused.json()["error"]["code"] == "idempotency_key"
    stored = hub.call(lambda engine, now: hub.store.db.execute(
        "SELECT rating, device, request_key FROM stats_feedback ORDER BY id").fetchall())
    assert stored == [(4, "kiosk1", "kiosk1:rating-1a2b3c"), (2, "kiosk2", "kiosk2:rating-1a2b3c"),
                      (5, "kiosk1", "kiosk1:rating-4d5e6f")]


def test_device_status_changes_are_recorded_and_give_downtime(site: tuple[TestClient, Hub, Clock]) -> None:
    client, hub, clock = site

    def status(device: str, online: bool, printer: str | None = "ok") -> None:
        # exactly what server/mqtt_link.py does with a devices/<id>/status message
        hub.record_device({"device": device, "kind": "kiosk", "online": online, "printer": printer,
                           "detail": None, "at": 0.0})
        hub.call(lambda engine, now: None)  # let the writer commit the change before the clock moves

    clock.set("2026-11-23T08:00:00Z")
    status("kiosk1", True)
    clock.set("2026-11-23T08:30:00Z")
    status("kiosk1", True)  # a repeat changes nothing
    clock.set("2026-11-23T09:00:00Z")
    status("kiosk1", False, None)
    clock.set("2026-11-23T09:20:00Z")
    status("kiosk1", True, "paper_out")
    clock.set("2026-11-23T09:25:00Z")
    status("kiosk1", True, "ok")
    clock.set("2026-11-23T10:00:00Z")
    rows = hub.call(lambda engine, now: hub.store.db.execute("SELECT COUNT(*) FROM stats_device_status")
                    .fetchone()[0])
    assert rows == 4
    body = client.get("/api/v1/stats/summary", params={"from": "2026-11-23"}, headers=STAFF).json()
    (kiosk,) = body["devices"]
    assert (kiosk["device"], kiosk["offline_s"], kiosk["printer_down_s"], kiosk["outages"]) == (
        "kiosk1", 1200.0, 300.0, 1)
    assert kiosk["known_s"] == 7200.0  # from the first record to now
    assert client.get("/api/v1/devices", headers=STAFF).json()[0]["device"] == "kiosk1"


def test_a_restarted_hub_keeps_figures_and_does_not_repeat_device_states(tmp_path: Path) -> None:
    config = load_config(SITE)
    clock = Clock(datetime(2026, 11, 23, 9, 0, tzinfo=UTC))
    for round_ in range(2):
        hub = Hub(config, SQLiteStore(tmp_path / "hub.sqlite3", config.site_id), clock=clock).start()
        try:
            with TestClient(create_app(hub, plugins=("server.stats", "server.feedback"))) as client:
                hub.record_device({"device": "kiosk1", "kind": "kiosk", "online": True, "printer": "ok"})
                client.post("/api/v1/feedback", json={"rating": 4}, headers=KIOSK)
                db = hub.store.db
                count = hub.call(lambda engine, now, db=db: db.execute(
                    "SELECT (SELECT COUNT(*) FROM stats_device_status), (SELECT COUNT(*) FROM stats_feedback)")
                    .fetchone())
                assert count == (1, round_ + 1)
        finally:
            hub.stop()
        clock.now += timedelta(minutes=5)
