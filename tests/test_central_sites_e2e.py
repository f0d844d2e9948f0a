"""The centre sells a branch's calendar by the site version the branch RUNS, all real: the centre process with two
workers over a private PostgreSQL, one branch hub with [central] and the centre's calendar, one clock file both
read (``VUORO_TEST_CLOCK``).

Proved here: a version that changes the branch's online hours (and a service's name), once the branch reports it
applied, is what every worker of the centre offers (the free times, the /book/ page, the overview's names), asked
over new connections until both workers have answered (``SO_REUSEPORT`` spreads them); a booking sold under the
old hours stays sold and a new sale follows the new hours; a version the branch refuses changes nothing at the
centre; the centre restarted keeps using the applied version, not the file named in centre.toml; a report whose
NOTIFY no worker heard is read when the workers' coordinators reconnect.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg
import requests

from central.app import SHOW_WORKER_ENV
from tests.test_calendar_e2e import D0, calendar_site, centre_book
from toolkit.broker import free_port
from toolkit.central_process import ADMIN_TOKEN, CentralProcess, write_centre_config
from toolkit.polling import wait_until
from vuoro.clock import ENV as CLOCK_ENV
from vuoro.clock import write_clock_file

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
ALL_DAY = 'hours = "00:00-24:00", staff = 1'  # the librarian's bookable places in the test site: round the clock
NEW_NAME = "Librarian, mornings only"
TOMORROW = D0 + timedelta(days=1)  # today is the branch's own (handed over at its opening): the centre sells ahead


def version(text: str, span: str, name: str | None = None) -> str:
    """The branch's site text with the librarian's online places only in ``span`` (and a new English name)."""
    assert ALL_DAY in text
    text = text.replace(ALL_DAY, f'hours = "{span}", staff = 1', 1)
    return text.replace('en = "Ask a librarian"', f'en = "{name}"', 1) if name else text


def publish(url: str, text: str) -> int:
    answer = requests.post(f"{url}/api/v1/branches/north/config", data=text.encode(),
                           headers={**ADMIN, "Content-Type": "text/plain"}, timeout=30)
    assert answer.status_code == 201, answer.text
    return int(answer.json()["version"])


def state(url: str) -> dict[str, Any]:
    return requests.get(f"{url}/api/v1/configs", headers=ADMIN, timeout=10).json()["branches"][0]


def hours_by_worker(url: str) -> dict[int, tuple[str, str]]:
    """Each worker's first and last free time of the librarian tomorrow, asked over new connections until two
    workers have answered (each ``requests.get`` opens a connection of its own)."""
    found: dict[int, tuple[str, str]] = {}
    for _ in range(60):
        answer = requests.get(f"{url}/api/v1/calendar/slots", params={
            "branch": "north", "service": "bibliotekar", "day": TOMORROW.date().isoformat()}, timeout=10)
        assert answer.status_code == 200, answer.text
        slots = answer.json()["slots"]
        found[int(answer.headers["x-vuoro-worker"])] = (slots[0]["start"][11:16], slots[-1]["start"][11:16])
        if len(found) >= 2:
            return found
    raise AssertionError(f"new connections reached only the workers {sorted(found)}")


def everywhere(url: str, first: str, last: str) -> bool:
    return set(hours_by_worker(url).values()) == {(first, last)}


def pages_by_worker(url: str) -> dict[int, str]:
    """The /book/ page of the librarian tomorrow, from two workers."""
    found: dict[int, str] = {}
    for _ in range(60):
        page = requests.get(f"{url}/book/north/bibliotekar/", params={"day": TOMORROW.date().isoformat(),
                                                                      "lang": "en"}, timeout=10)
        assert page.status_code == 200, page.text
        found[int(page.headers["x-vuoro-worker"])] = page.text
        if len(found) >= 2:
            return found
    raise AssertionError(f"new connections reached only the workers {sorted(found)}")


def booking_status(database: str, code: str) -> str:
    with psycopg.connect(database) as db:
        row = db.execute("SELECT status FROM calendar_bookings WHERE code = %s", (code,)).fetchone()
    return str(row[0]) if row else "missing"


def test_every_worker_sells_the_hours_the_branch_applied_never_a_refused_version_and_after_a_restart(
        tmp_path: Path, make_hub: Any, postgres_db: str) -> None:
    clock = tmp_path / "clock"
    write_clock_file(clock, D0)
    env = {CLOCK_ENV: str(clock)}
    port = free_port()
    token, site = calendar_site(tmp_path, "north", "Nordby Bibliotek", f"http://127.0.0.1:{port}")
    own = site.read_text(encoding="utf-8")
    config = write_centre_config(tmp_path / "centre.toml", postgres_db, {"north": (token, site)}, languages=("en",))
    centre = CentralProcess(config, port=port, workers=2, env={**env, SHOW_WORKER_ENV: "1"}).start()
    hub = make_hub(tmp_path / "north", site=site, env=env).start()
    url = centre.url
    try:
        assert everywhere(url, "00:00", "23:45")  # the site file named in centre.toml: round the clock
        early = centre_book(url, "north", "bibliotekar", TOMORROW.replace(hour=8), name="Early")
        assert early.status_code == 201, early.text

        # The municipality keeps the librarian to the mornings: once the branch runs it, every worker sells by it
        assert publish(url, version(own, "10:00-12:00", NEW_NAME)) == 1
        wait_until(lambda: state(url)["applied"] == 1, "north to report version 1 applied", 90)
        wait_until(lambda: everywhere(url, "10:00", "11:45"), "every worker to offer 10:00-12:00 only", 60)
        for page in pages_by_worker(url).values():
            assert NEW_NAME in page and f'value="{TOMORROW.date()}T10:00+01:00"' in page
            assert f'value="{TOMORROW.date()}T09:45+01:00"' not in page
        overview = requests.get(f"{url}/api/v1/branches", headers=ADMIN, timeout=10).json()["branches"][0]
        assert NEW_NAME in str(overview["services"])  # the centre's figures name it as the branch does

        # What was sold stays sold; a new sale follows the new hours
        assert booking_status(postgres_db, early.json()["code"]) == "booked"
        late = centre_book(url, "north", "bibliotekar", TOMORROW.replace(hour=9), name="Late")
        assert late.status_code in (409, 422), late.text
        ten = centre_book(url, "north", "bibliotekar", TOMORROW.replace(hour=10), name="Ten")
        assert ten.status_code == 201, ten.text
        wait_until(lambda: everywhere(url, "10:15", "11:45"), "10:00 sold at every worker", 60)

        # A version the branch refuses (without [central]: only the branch's own rules refuse it) changes nothing
        assert publish(url, version(own, "13:00-14:00")[:own.index("[central]")]) == 2
        wait_until(lambda: state(url)["refused"] == 2, "north to refuse version 2", 90)
        assert state(url)["applied"] == 1
        for _ in range(3):
            assert everywhere(url, "10:15", "11:45")

        # The centre restarted uses the version the branch runs, not the file in centre.toml
        centre.stop()
        centre.start()
        assert everywhere(url, "10:15", "11:45")
        assert all(NEW_NAME in page for page in pages_by_worker(url).values())
        assert booking_status(postgres_db, early.json()["code"]) == "booked"
    finally:
        hub.stop()
        centre.stop()


def test_a_version_run_while_a_worker_heard_nothing_is_read_when_its_coordinator_reconnects(
        tmp_path: Path, postgres_db: str) -> None:
    """A report whose NOTIFY no worker heard (stored here without one, as if every coordinator's connection was
    down at that moment) changes nothing until the coordinators reconnect; then every worker reads it."""
    clock = tmp_path / "clock"
    write_clock_file(clock, D0)
    token, site = calendar_site(tmp_path, "north", "Nordby Bibliotek", "http://127.0.0.1:9")
    own = site.read_text(encoding="utf-8")
    config = write_centre_config(tmp_path / "centre.toml", postgres_db, {"north": (token, site)}, languages=("en",))
    centre = CentralProcess(config, workers=2, env={CLOCK_ENV: str(clock), SHOW_WORKER_ENV: "1"}).start()
    try:
        url = centre.url
        assert publish(url, version(own, "10:00-12:00")) == 1
        with psycopg.connect(postgres_db, autocommit=True) as db:
            db.execute("INSERT INTO config_reports (branch, applied_version, applied_checksum, applied_at, "
                       "reported_at) SELECT branch, version, checksum, now(), now() FROM site_configs "
                       "WHERE branch = 'north' AND version = 1")
            assert everywhere(url, "00:00", "23:45")  # nobody told the workers
            gone = db.execute("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                              "WHERE application_name LIKE 'vuoro-central worker %'").fetchone()[0]
            assert gone == 2  # each worker's coordinator: a network blip, say
        wait_until(lambda: everywhere(url, "10:00", "11:45"), "every worker to read the version after reconnecting",
                   60)
    finally:
        centre.stop()
