"""The visit history's one retention rule (``[hub] history_days``, server/retention.py): tickets and feedback
ratings older than the site keeps are deleted by the hub's own tick job, the same day for both.

The real hub in this process (its writer thread, tick timer and SQLite file) with a clock the test moves:
visitors come on 1 October 2026 (a ticket, a booking checked in, a called and finished ticket, two ratings),
then the clock moves on 40 days with ``history_days = 31`` and the test waits for the real tick.
"""

from __future__ import annotations

import sqlite3
import time
import tomllib
import uuid
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient

from server.api import create_app
from server.config import ConfigError, parse_config
from server.hub import Hub
from server.store import SQLiteStore

SITE = Path(__file__).parent / "sites" / "always_open.toml"
TZ = ZoneInfo("Europe/Copenhagen")
STAFF = {"Authorization": "Bearer demo-staff-token-change-me"}
KIOSK = {"Authorization": "Bearer demo-kiosk1-token-change-me"}


class Clock:
    def __init__(self, now: datetime):
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def site_with(tmp_path: Path, **hub: object) -> object:
    data = tomllib.loads(SITE.read_text(encoding="utf-8"))
    data["hub"].update(hub)
    return parse_config(data, tmp_path / "site.toml")


def test_history_days_is_0_or_at_least_a_month(tmp_path: Path) -> None:
    assert site_with(tmp_path).history_days == 0  # keep everything, as before
    assert site_with(tmp_path, history_days=365).history_days == 365
    with pytest.raises(ConfigError, match="hub.history_days: expected 0 .* or at least 31 days, got 7"):
        site_with(tmp_path, history_days=7)


def test_the_tick_job_forgets_old_tickets_and_ratings_alike(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import server.hub

    monkeypatch.setattr(server.hub, "TICK_SECONDS", 0.05)
    config = site_with(tmp_path, history_days=31)
    clock = Clock(datetime(2026, 10, 1, 10, 0, tzinfo=TZ))
    db_path = tmp_path / "hub.sqlite3"
    hub = Hub(config, SQLiteStore(db_path, config.site_id), clock=clock).start()
    app = create_app(hub)

    def sql(query: str, *args: object) -> list[tuple]:
        with sqlite3.connect(db_path) as db:
            return db.execute(query, args).fetchall()

    try:
        with TestClient(app) as client:
            def ticket(service: str) -> dict:
                answer = client.post("/api/v1/tickets", json={"service": service},
                                     headers={**KIOSK, "Idempotency-Key": uuid.uuid4().hex})
                assert answer.status_code == 201, answer.text
                return answer.json()

            def rate(rating: int) -> None:
                assert client.post("/api/v1/feedback", json={"rating": rating}, headers=KIOSK).status_code == 201

            # 1 October: a walk-in served, one left waiting at closing, a booking checked in, two ratings.
            ticket("kvik")
            assert client.post("/api/v1/counters/kvik1/next", headers=STAFF).status_code == 200
            assert client.post("/api/v1/counters/kvik1/finish", headers=STAFF).status_code == 200
            ticket("kvik")
            booked = client.post("/api/v1/bookings", headers=STAFF, json={
                "service": "bibliotekar", "start": "2026-10-01T10:15:00+02:00", "name": "Åse"}).json()
            checked = client.post("/api/v1/checkins", json={"code": booked["code"]},
                                  headers={**KIOSK, "Idempotency-Key": uuid.uuid4().hex})
            assert checked.status_code == 201, checked.text
            rate(5)
            rate(2)
            old_days = sql("SELECT DISTINCT day FROM tickets")
            assert old_days == [("2026-10-01",)] and sql("SELECT COUNT(*) FROM stats_feedback") == [(2,)]

            # 9 November (39 days on): today's visitors; the October ones are older than 31 days.
            clock.now = datetime(2026, 11, 9, 10, 0, tzinfo=TZ)
            kept = ticket("kvik")
            rate(4)
            deadline = time.monotonic() + 20
            while sql("SELECT COUNT(*) FROM tickets WHERE day = '2026-10-01'") != [(0,)]:
                assert time.monotonic() < deadline, "the retention job did not run"
                time.sleep(0.05)
            # Both went at once (one record, one transaction): the ratings of the same days too.
            assert sql("SELECT rating FROM stats_feedback") == [(4,)]
            assert sql("SELECT label FROM tickets") == [(kept["ticket"],)]
            assert sql("SELECT COUNT(*) FROM ticket_log WHERE ticket_id NOT IN (SELECT id FROM tickets)") == [(0,)]
            assert sql("SELECT COUNT(*) FROM calls") == [(0,)] and sql("SELECT COUNT(*) FROM idempotency") == [(1,)]
            # The booking stays (its own retention took its name), without the ticket it once had.
            assert sql("SELECT status, ticket_id, name FROM bookings WHERE id = ?", booked["id"]) == [
                ("checked_in", None, None)]
            # Statistics of the month still read, with what is kept.
            summary = client.get("/api/v1/stats/summary?from=2026-11-09&to=2026-11-09", headers=STAFF).json()
            assert summary["total"]["issued"] == 1 and summary["total"]["feedback_count"] == 1
    finally:
        app.state.feeds.stop()
        hub.stop()
