"""Faults of the calendar (issue 13, items 1 and 2): a hub that was off at midnight, clocks that step, DST nights.

Every test runs a real hub process (``HubProcess``) at a chosen time on its
test clock (``vuoro/clock.py``): the process in ``TZ=UTC``, the site in
Europe/Copenhagen. Clock steps are made while the hub runs, as NTP or a
person would make them. Nothing sleeps to a deadline except where a real
midnight must pass on the hub's own clock, and then only seconds.
"""

from __future__ import annotations

import shutil
import sqlite3
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import requests

from toolkit.fixtures import MakeHub
from toolkit.hub_process import HubProcess

CPH = ZoneInfo("Europe/Copenhagen")
KIOSK = {"Authorization": "Bearer demo-kiosk1-token-change-me"}
STAFF = {"Authorization": "Bearer demo-staff-token-change-me"}


def local(text: str) -> datetime:
    """A wall-clock time at the site, e.g. ``local("2026-11-23 16:59")``."""
    return datetime.fromisoformat(text).replace(tzinfo=CPH)


def hub_at(data: Path, make_hub: MakeHub, when: datetime) -> HubProcess:
    """A hub on its test clock at ``when``, the process in UTC, the site in Europe/Copenhagen."""
    return make_hub(data, clock=when, tz="UTC")


def issue(hub: HubProcess, service: str = "kvik") -> dict[str, Any]:
    answer = requests.post(f"{hub.url}/api/v1/tickets", json={"service": service, "language": "da"},
                           headers={**KIOSK, "Idempotency-Key": uuid.uuid4().hex}, timeout=10)
    assert answer.status_code == 201, f"{answer.status_code} {answer.text}"
    return dict(answer.json())


def call_next(hub: HubProcess, counter: str) -> str | None:
    answer = requests.post(f"{hub.url}/api/v1/counters/{counter}/next", headers=STAFF, timeout=10)
    assert answer.status_code == 200, f"{answer.status_code} {answer.text}"
    call = answer.json()["call"]
    return call["ticket"] if call else None


def store_rows(data: Path, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    with sqlite3.connect(data / "hub.sqlite3") as db:
        return db.execute(sql, args).fetchall()


def labels_by_day(data: Path, where: str = "1") -> dict[str, list[str]]:
    """The store's tickets by their business day, in number order."""
    found: dict[str, list[str]] = {}
    for day, label in store_rows(data, f"SELECT day, label FROM tickets WHERE {where} ORDER BY day, number"):
        found.setdefault(day, []).append(label)
    return found


def open_monday_with_leftovers(data: Path, make_hub: MakeHub) -> None:
    """Monday 17:00: K001 at desk 1, K002–K005 waiting; then the hub is stopped for the night."""
    with hub_at(data, make_hub, local("2026-11-23 16:59")) as monday:
        assert [issue(monday)["ticket"] for _ in range(5)] == ["K001", "K002", "K003", "K004", "K005"]
        assert call_next(monday, "kvik1") == "K001"


def assert_a_fresh_day(hub: HubProcess, data: Path, today: str, waiting: int = 0) -> None:
    """What the first answers of the day must show: nothing of an earlier day, desks closed."""
    queues = requests.get(f"{hub.url}/api/v1/queues", timeout=5).json()
    assert {q["service"]: q["waiting"] for q in queues}["kvik"] == waiting
    counters = requests.get(f"{hub.url}/api/v1/counters", timeout=5).json()
    assert {c["counter"]: (c["status"], c["serving"]) for c in counters}["kvik1"] == ("closed", None)
    active = labels_by_day(data, "status IN ('waiting', 'called')")
    assert set(active) <= {today}, f"an earlier day's tickets are still waiting or being served: {active}"


# -- 1. the hub that was off at midnight ----------------------------------------------------------------


def test_a_hub_off_over_midnight_starts_on_a_fresh_day(tmp_path: Path, make_hub: MakeHub) -> None:
    open_monday_with_leftovers(tmp_path, make_hub)
    with hub_at(tmp_path, make_hub, local("2026-11-24 09:00")) as tuesday:
        assert_a_fresh_day(tuesday, tmp_path, "2026-11-24")
        first = issue(tuesday)
        assert (first["ticket"], first["position"]) == ("K001", 0)
        assert [issue(tuesday)["ticket"] for _ in range(2)] == ["K002", "K003"]
        called = [call_next(tuesday, "kvik1") for _ in range(4)]
    assert called == ["K001", "K002", "K003", None]  # Tuesday's, once each; none of Monday's
    statuses = dict(store_rows(tmp_path, "SELECT label, status FROM tickets WHERE day = '2026-11-23'"))
    assert statuses == {f"K00{n}": "expired" for n in range(1, 6)}


def test_a_store_restored_from_an_older_backup_rolls_the_days_it_missed(tmp_path: Path,
                                                                        make_hub: MakeHub) -> None:
    """Monday evening's image, put back on Thursday after Tuesday and Wednesday ran on another disk."""
    live, backup = tmp_path / "live", tmp_path / "backup"
    open_monday_with_leftovers(live, make_hub)
    shutil.copytree(live, backup)
    with hub_at(live, make_hub, local("2026-11-25 10:00")) as wednesday:
        assert [issue(wednesday)["ticket"] for _ in range(3)] == ["K001", "K002", "K003"]
    shutil.rmtree(live)
    shutil.copytree(backup, live)  # the restore: Monday's store on Thursday
    with hub_at(live, make_hub, local("2026-11-26 08:30")) as thursday:
        assert_a_fresh_day(thursday, live, "2026-11-26")
        assert issue(thursday)["ticket"] == "K001"
        assert call_next(thursday, "kvik1") == "K001"
        assert call_next(thursday, "kvik1") is None


# -- 2. clocks that step --------------------------------------------------------------------------------


def test_a_clock_stepped_back_across_midnight_and_forward_again_keeps_the_new_day(tmp_path: Path,
                                                                                  make_hub: MakeHub) -> None:
    """The rule: a business day never goes back once begun; a step back keeps the day and its numbering."""
    hub = hub_at(tmp_path, make_hub, local("2026-11-23 23:59:30")).start()
    try:
        assert [issue(hub)["ticket"] for _ in range(3)] == ["K001", "K002", "K003"]  # Monday
        assert call_next(hub, "kvik1") == "K001"
        hub.set_clock(local("2026-11-24 00:00:05"))  # NTP steps forward: Tuesday
        assert issue(hub)["ticket"] == "K001"
        hub.set_clock(local("2026-11-23 23:58:00"))  # ...and back across midnight
        assert [issue(hub)["ticket"] for _ in range(2)] == ["K002", "K003"]  # Tuesday's series goes on
        assert_a_fresh_day(hub, tmp_path, "2026-11-24", waiting=3)  # Monday's leftovers stay expired
        hub.stop()
        hub.start()  # a restart while the clock is still behind: the store's record, not the clock, decides
        assert issue(hub)["ticket"] == "K004"
        hub.set_clock(local("2026-11-24 00:02:00"))  # forward again
        assert issue(hub)["ticket"] == "K005"
        hub.set_clock(local("2026-11-24 00:01:00"))  # back inside the day
        assert issue(hub)["ticket"] == "K006"
        # the line is in the order people took their tickets, whatever the clock said meanwhile
        assert [call_next(hub, "kvik1") for _ in range(7)] == ["K001", "K002", "K003", "K004", "K005", "K006",
                                                               None]
    finally:
        hub.stop()
    days = labels_by_day(tmp_path)
    assert days == {"2026-11-23": ["K001", "K002", "K003"],
                    "2026-11-24": ["K001", "K002", "K003", "K004", "K005", "K006"]}
    assert "503" not in (tmp_path / "hub.log").read_text()


# -- DST nights: the day is the site's local date, 23 or 25 hours long -----------------------------------


def just_before(hub: HubProcess, moment: str) -> datetime:
    """Set the hub's clock 3 s before ``moment`` (UTC), for a ticket then; return the moment to wait for."""
    when = datetime.fromisoformat(moment)
    hub.set_clock(when - timedelta(seconds=3))
    return when


def test_the_spring_night_day_is_23_hours(tmp_path: Path, make_hub: MakeHub) -> None:
    """Sunday 29 March 2026 in Copenhagen: 00:00 CET (23:00Z) to 00:00 CEST (22:00Z), 02:00 does not exist."""
    hub = hub_at(tmp_path, make_hub, datetime.fromisoformat("2026-03-28T22:00:00+00:00")).start()
    try:
        midnight = just_before(hub, "2026-03-28T23:00:00+00:00")
        assert issue(hub)["ticket"] == "K001"  # Saturday 23:59:57 CET
        hub.wait_for_clock(midnight)  # a real midnight passes on the running hub
        assert issue(hub)["ticket"] == "K001"  # Sunday
        two = just_before(hub, "2026-03-29T01:00:00+00:00")  # 01:59:57 CET
        hub.wait_for_clock(two)  # → 03:00 CEST
        assert issue(hub)["ticket"] == "K002"
        midnight = just_before(hub, "2026-03-29T22:00:00+00:00")  # 23:59:57 CEST
        assert issue(hub)["ticket"] == "K003"
        hub.wait_for_clock(midnight)  # 22:00Z is midnight already: two hours before UTC's
        assert issue(hub)["ticket"] == "K001"
    finally:
        hub.stop()
    assert labels_by_day(tmp_path) == {"2026-03-28": ["K001"], "2026-03-29": ["K001", "K002", "K003"],
                                       "2026-03-30": ["K001"]}


def test_the_autumn_night_day_is_25_hours(tmp_path: Path, make_hub: MakeHub) -> None:
    """Sunday 25 October 2026: 00:00 CEST (22:00Z the day before) to 00:00 CET (23:00Z); 02:00–03:00 twice."""
    hub = hub_at(tmp_path, make_hub, datetime.fromisoformat("2026-10-24T21:00:00+00:00")).start()
    try:
        midnight = just_before(hub, "2026-10-24T22:00:00+00:00")
        assert issue(hub)["ticket"] == "K001"  # Saturday 23:59:57 CEST
        hub.wait_for_clock(midnight)
        assert issue(hub)["ticket"] == "K001"  # Sunday
        three = just_before(hub, "2026-10-25T01:00:00+00:00")  # 02:59:57 CEST
        assert issue(hub)["ticket"] == "K002"
        hub.wait_for_clock(three)  # → 02:00 CET: the wall clock went back an hour, the day did not
        assert issue(hub)["ticket"] == "K003"
        hub.set_clock(datetime.fromisoformat("2026-10-25T22:30:00+00:00"))  # 23:30 CET: 24½ hours in, still Sunday
        assert issue(hub)["ticket"] == "K004"
        midnight = just_before(hub, "2026-10-25T23:00:00+00:00")
        hub.wait_for_clock(midnight)  # 23:00Z: Monday
        assert issue(hub)["ticket"] == "K001"
        assert [call_next(hub, "kvik1") for _ in range(2)] == ["K001", None]
    finally:
        hub.stop()
    assert labels_by_day(tmp_path) == {"2026-10-24": ["K001"], "2026-10-25": ["K001", "K002", "K003", "K004"],
                                       "2026-10-26": ["K001"]}
