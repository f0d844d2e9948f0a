"""Two branches and the centre, all real: hub processes (their own SQLite, the session's Mosquitto under topic
roots of their own), the centre process (``vuoro central``) and a private PostgreSQL.

Tickets issued and called at both branches reach the centre exactly once; the centre killed (and its
database with it) leaves the branches issuing and they catch up; a hub SIGKILLed between the centre's
COMMIT and its own mark re-sends and nothing is doubled; the centre's figures for a branch equal the
branch's own statistics.
"""

from __future__ import annotations

import sqlite3
import threading
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
import pytest
import requests

from central.ingest import ts_text
from server.uplink import outbox
from tests.conftest import TEST_SITE
from toolkit.broker import free_port, fresh_root
from toolkit.central_process import CentralProcess
from toolkit.hub_process import HubProcess
from toolkit.polling import wait_until

KIOSK = {"Authorization": "Bearer demo-kiosk1-token-change-me"}
STAFF = {"Authorization": "Bearer demo-staff-token-change-me"}
BRANCHES = {"north": "Nordby Bibliotek", "south": "Sydby Bibliotek"}
CPH = ZoneInfo("Europe/Copenhagen")


def branch_site(folder: Path, site_id: str, name: str, centre_port: int, *, scheme: str = "http",
                ca_file: Path | None = None) -> tuple[str, Path]:
    """The test site renamed to another branch, with [central] pointing at the centre; (its token, its file)."""
    token = f"{site_id}-uplink-token-0123456789"
    text = TEST_SITE.read_text(encoding="utf-8").replace('id = "sonderbro"', f'id = "{site_id}"', 1)
    text = text.replace('name = "Sønderbro Bibliotek & Borgerservice"', f'name = "{name}"', 1)
    text += f'\n[central]\nurl = "{scheme}://127.0.0.1:{centre_port}"\ntoken = "{token}"\nheartbeat_s = 1\n'
    text += "start_wait_s = 2\n"  # a new store waits this long for an unreachable centre (a site: 20 s)
    if ca_file:
        text += f'ca_file = "{ca_file}"\n'
    path = folder / f"{site_id}.toml"
    path.write_text(text, encoding="utf-8")
    return token, path


class Setup:
    def __init__(self, tmp_path: Path, make_hub: Any, make_central: Any, postgres_db: str, **hub_options: Any):
        port = free_port()
        self.sites = {bid: branch_site(tmp_path, bid, name, port) for bid, name in BRANCHES.items()}
        self.database = postgres_db
        self.centre: CentralProcess = make_central(self.sites, port=port)
        self.hubs: dict[str, HubProcess] = {
            bid: make_hub(tmp_path / bid, site=path, **hub_options.get(bid, {}))
            for bid, (_, path) in self.sites.items()}

    def issue(self, bid: str, service: str = "kvik") -> dict[str, Any]:
        answer = requests.post(f"{self.hubs[bid].url}/api/v1/tickets", json={"service": service, "language": "da"},
                               headers={**KIOSK, "Idempotency-Key": uuid.uuid4().hex}, timeout=10)
        assert answer.status_code == 201, answer.text
        return answer.json()

    def act(self, bid: str, counter: str, action: str) -> dict[str, Any]:
        answer = requests.post(f"{self.hubs[bid].url}/api/v1/counters/{counter}/{action}", headers=STAFF, timeout=10)
        assert answer.status_code == 200, answer.text
        return answer.json()

    def store(self, bid: str) -> Path:
        return self.hubs[bid].data_dir / "hub.sqlite3"

    def branch_rows(self, bid: str) -> dict[str, set[Any]]:
        """What the branch itself holds, read from its SQLite file (WAL: while the hub runs)."""
        with sqlite3.connect(f"file:{self.store(bid)}?mode=ro", uri=True) as db:
            return {
                "tickets": set(db.execute("SELECT id, status, counter FROM tickets")),
                "events": {f"{t}/{i}/{at}" for t, i, at in db.execute("SELECT ticket_id, id, at FROM ticket_log")},
                "calls": {row[0] for row in db.execute("SELECT id FROM calls")},
                "feedback": {row for row in db.execute("SELECT rating, service FROM stats_feedback")},
            }

    def central_rows(self, bid: str) -> dict[str, set[Any]]:
        with psycopg.connect(self.database) as db:
            return {
                "tickets": set(db.execute("SELECT id, status, counter FROM tickets WHERE branch = %s", (bid,))),
                "events": {r[0] for r in db.execute("SELECT key FROM ticket_events WHERE branch = %s", (bid,))},
                "calls": {r[0] for r in db.execute("SELECT id FROM calls WHERE branch = %s", (bid,))},
                "feedback": set(db.execute("SELECT rating, service FROM feedback WHERE branch = %s", (bid,))),
            }

    def central_counts(self, bid: str) -> tuple[int, ...]:
        with psycopg.connect(self.database) as db:
            return tuple(db.execute(f"SELECT COUNT(*) FROM {table} WHERE branch = %s", (bid,)).fetchone()[0]
                         for table in ("tickets", "ticket_events", "calls", "feedback"))

    def branch_counts(self, bid: str) -> tuple[int, ...]:
        with sqlite3.connect(f"file:{self.store(bid)}?mode=ro", uri=True) as db:
            return tuple(db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
                         for table in ("tickets", "ticket_log", "calls", "stats_feedback"))

    def in_step(self, bid: str) -> bool:
        """The centre holds exactly what the branch holds (sets: nothing missing, nothing else) and no more rows
        than that (counts: nothing twice)."""
        return self.branch_rows(bid) == self.central_rows(bid) and self.central_counts(bid) == self.branch_counts(bid)

    def wait_in_step(self, timeout: float = 30.0) -> None:
        for bid in self.hubs:
            wait_until(lambda bid=bid: self.in_step(bid), f"the centre to hold exactly {bid}'s rows", timeout)

    def uplink(self, bid: str) -> dict[str, Any]:
        return requests.get(f"{self.hubs[bid].url}/api/v1/health", timeout=5).json()["uplink"]


@pytest.fixture()
def setup(tmp_path: Path, make_hub: Any, make_central: Any, postgres_db: str) -> Setup:
    return Setup(tmp_path, make_hub, make_central, postgres_db)


def busy_morning(setup: Setup) -> None:
    """Both branches issue and call: served, not shown up, one transferred, some still waiting."""
    for bid in setup.hubs:
        for service in ("kvik", "kvik", "kvik", "bibliotekar", "kvik", "it"):
            setup.issue(bid, service)
        assert setup.act(bid, "kvik1", "next")["call"]["ticket"] == "K001"
        setup.act(bid, "kvik1", "finish")
        setup.act(bid, "kvik1", "next")
        setup.act(bid, "kvik1", "no-show")
        setup.act(bid, "kvik2", "next")
        requests.post(f"{setup.hubs[bid].url}/api/v1/counters/kvik2/transfer", json={"service": "bibliotekar"},
                      headers=STAFF, timeout=10).raise_for_status()
        setup.act(bid, "bib1", "next")
        setup.act(bid, "bib1", "recall")
        for rating, service in ((5, "kvik"), (2, "kvik"), (4, None)):
            requests.post(f"{setup.hubs[bid].url}/api/v1/feedback", json={"rating": rating, "service": service},
                          headers=KIOSK, timeout=10).raise_for_status()


def test_two_branches_reach_the_centre_exactly_once_and_its_figures_are_theirs(setup: Setup) -> None:
    setup.centre.start()
    for hub in setup.hubs.values():
        hub.start()
    busy_morning(setup)
    setup.wait_in_step()
    for bid in setup.hubs:
        wait_until(lambda bid=bid: setup.uplink(bid)["backlog"] == 0, f"{bid}'s outbox to be shipped")

    # the centre's statistics of each branch are the branch's own, figure for figure
    for bid, hub in setup.hubs.items():
        for by in ("", "service"):
            own = requests.get(f"{hub.url}/api/v1/stats/summary", params={"by": by} if by else {}, headers=STAFF,
                               timeout=10).json()
            central = setup.centre.get(f"/api/v1/branches/{bid}/summary", by=by).json()
            assert central["total"] == own["total"], (bid, by)
            assert central["total"]["issued"] == 6 and central["total"]["served"] >= 1
            assert central["total"]["feedback_ratings"] == [0, 1, 0, 1, 1]
            assert central.get("groups", []) == own.get("groups", []), (bid, by)

    together = setup.centre.get("/api/v1/summary").json()
    assert [b["branch"] for b in together["branches"]] == list(BRANCHES)
    assert together["all"]["issued"] == 12 and together["all"]["feedback_ratings"] == [0, 2, 0, 2, 2]
    assert together["all"]["served"] == sum(b["served"] for b in together["branches"])
    assert together["all"]["called"] == sum(b["called"] for b in together["branches"])

    overview = {b["branch"]: b for b in setup.centre.get("/api/v1/branches").json()["branches"]}
    assert set(overview) == set(BRANCHES)
    for bid in BRANCHES:
        assert overview[bid]["tickets_today"] == 6
        services = {s["service"]: s for s in overview[bid]["services"]}
        # by the service each ticket is in now: K003 was transferred to the librarians
        assert [(services[s]["issued"], services[s]["served"], services[s]["no_show"]) for s in ("kvik", "bibliotekar")
                ] == [(3, 1, 1), (2, 0, 0)]
        assert overview[bid]["backlog"] == 0 and overview[bid]["seconds_since_seen"] < 30
    page = requests.get(setup.centre.url + "/", params={"lang": "da"}, timeout=10,
                        headers={"Authorization": f"Bearer {'test-centre-admin-token'}"})
    assert page.status_code == 200 and "Nordby Bibliotek" in page.text and "Billetter i dag" in page.text
    assert requests.get(setup.centre.url + "/api/v1/branches", timeout=10).status_code == 401


def test_the_centre_down_leaves_the_branches_issuing_and_they_catch_up(setup: Setup, postgres: Any) -> None:
    setup.centre.start()
    for hub in setup.hubs.values():
        hub.start()
    for bid in setup.hubs:
        setup.issue(bid)
    setup.wait_in_step()

    setup.centre.kill()  # the centre and its database, both SIGKILLed
    postgres.kill()
    try:
        for _ in range(3):
            for bid in setup.hubs:
                setup.issue(bid)  # 201 every time: the branch never waits for the centre
        setup.act("north", "kvik1", "next")
        wait_until(lambda: setup.uplink("north")["state"] == "unreachable" and setup.uplink("north")["backlog"] > 0,
                   "the branch to say the centre is unreachable and rows are waiting")
    finally:
        postgres.start()
    setup.centre.start()
    setup.wait_in_step()
    assert len(setup.central_rows("north")["tickets"]) == 4

    postgres.kill()  # only the database this time: the centre answers 503 and its pool reconnects by itself
    try:
        for bid in setup.hubs:
            setup.issue(bid)
        wait_until(lambda: "503" in (setup.uplink("south")["last_error"] or ""),
                   "the branch to hear that the centre's database is away")
        health = requests.get(setup.centre.url + "/api/v1/health", timeout=10)
        assert health.status_code == 503 and health.json()["status"] == "degraded"
    finally:
        postgres.start()
    setup.wait_in_step()
    assert len(setup.central_rows("south")["tickets"]) == 5


def test_a_hub_killed_between_the_centres_commit_and_its_own_mark_sends_again_and_nothing_doubles(
        tmp_path: Path, make_hub: Any, make_central: Any, postgres_db: str) -> None:
    setup = Setup(tmp_path, make_hub, make_central, postgres_db)
    setup.centre.start()
    hub = setup.hubs["north"]
    del setup.hubs["south"]
    for _ in range(3):
        hub.env = {"VUORO_UPLINK_KILL_AFTER": "1"}  # SIGKILL after the centre's first commit of rows
        hub.start()
        setup.issue("north")
        assert hub.process is not None
        hub.process.wait(20)
        assert hub.process.returncode == -9
        with sqlite3.connect(setup.store("north")) as db:
            shipped = db.execute("SELECT shipped FROM uplink_state").fetchone()[0]
            waiting = db.execute("SELECT COUNT(*) FROM outbox WHERE seq > ?", (shipped,)).fetchone()[0]
        assert waiting > 0  # the branch had not marked them: they are still in its outbox ...
        with psycopg.connect(setup.database) as db:
            stored = db.execute("SELECT shipped FROM streams WHERE branch = 'north'").fetchone()[0]
        assert stored > shipped  # ... though the centre had stored them: the very moment we meant to crash in
        hub.process = None
        hub.env = {}
        hub.topic_root = fresh_root()  # not to wait for the killed hub's "online" to prove stale (server/presence.py)
        hub.start()  # sends them again
        setup.wait_in_step()
        hub.stop()
    assert setup.central_counts("north")[0] == 3


def test_a_hub_stopped_by_sigterm_marks_what_the_centre_has_before_it_exits(setup: Setup) -> None:
    """As systemd stops it (vuoro/stopping.py): the clean-up after serving runs (uvicorn raised the SIGTERM again
    once it had stopped serving, and the default handler ended the process first), so the uplink's last mark is
    made and nothing is sent again at the next start."""
    setup.centre.start()
    del setup.hubs["south"]
    hub = setup.hubs["north"].start()
    for _ in range(3):
        setup.issue("north")
    setup.wait_in_step()
    process = hub.process
    assert process is not None
    hub.stop()  # SIGTERM
    assert process.returncode == 0
    with sqlite3.connect(setup.store("north")) as db:
        assert db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0] == 0  # every row acknowledged is marked
        (marked,) = db.execute("SELECT shipped FROM uplink_state").fetchone()
    with psycopg.connect(setup.database) as db:
        assert db.execute("SELECT shipped FROM streams WHERE branch = 'north'").fetchone()[0] == marked
    centre = setup.centre.process
    assert centre is not None
    setup.centre.stop()  # SIGTERM: the centre too closes its refresher and pool and returns, instead of dying of it
    assert centre.returncode == 0


def test_a_centre_restored_from_an_older_backup_gets_the_whole_branch_again(setup: Setup) -> None:
    setup.centre.start()
    del setup.hubs["south"]
    setup.hubs["north"].start()
    for _ in range(3):
        setup.issue("north")
    setup.act("north", "kvik1", "next")
    setup.wait_in_step()
    # The centre's database comes back from a backup taken before the last ticket: that ticket, its history and
    # most of the branch's position are gone, though the centre had acknowledged them.
    with psycopg.connect(setup.database) as db:
        last = db.execute("SELECT id FROM tickets WHERE branch = 'north' ORDER BY issued_at DESC LIMIT 1").fetchone()
        db.execute("DELETE FROM ticket_events WHERE branch = 'north' AND ticket_id = %s", last)
        db.execute("DELETE FROM tickets WHERE branch = 'north' AND id = %s", last)
        db.execute("UPDATE streams SET shipped = 2 WHERE branch = 'north'")
    setup.centre.stop()
    setup.centre.start()
    setup.issue("north")  # the next batch says the centre has more than it has: 409, and the branch ships all again
    setup.wait_in_step()
    with psycopg.connect(setup.database) as db:
        assert db.execute("SELECT COUNT(*) FROM streams WHERE branch = 'north'").fetchone()[0] == 2


def test_a_re_snapshot_goes_in_chunks_while_kiosks_issue_and_the_centre_ends_with_exactly_the_branch(
        setup: Setup) -> None:
    """The repair after a 409 copies the store a chunk at a time (server/uplink/outbox.py, 250 source rows), so
    the kiosks are served in between: they issue and a desk calls all through it, and the centre ends with exactly
    the branch's rows, each ticket at its last state."""
    from concurrent.futures import ThreadPoolExecutor

    setup.centre.start()
    del setup.hubs["south"]
    setup.hubs["north"].start()
    with ThreadPoolExecutor(4) as pool:  # 700 tickets and their history: 1,400 source rows, more than one chunk
        list(pool.map(lambda _: setup.issue("north"), range(700)))
    setup.wait_in_step(timeout=120)
    with psycopg.connect(setup.database) as db:  # the centre's database back from an older backup
        db.execute("UPDATE streams SET shipped = 2 WHERE branch = 'north'")
    setup.centre.stop()
    setup.centre.start()
    issued, stop = [], threading.Event()

    def kiosk_and_desk() -> None:
        while not stop.is_set() and len(issued) < 300:
            issued.append(setup.issue("north")["id"])
            if len(issued) % 10 == 0:
                setup.act("north", "kvik1", "next")

    worker = threading.Thread(target=kiosk_and_desk)
    worker.start()
    try:
        wait_until(lambda: setup.uplink("north")["state"] == "resending" or len(issued) >= 300,
                   "the branch to begin shipping its whole store again", 60)
        wait_until(lambda: len(issued) >= 300, "the kiosk to issue through the re-send", 120)
    finally:
        stop.set()
        worker.join(30)
    assert len(issued) == 300  # no kiosk request failed (issue asserts 201) or hung past its 10 s
    setup.wait_in_step(timeout=120)
    with psycopg.connect(setup.database) as db:
        assert db.execute("SELECT COUNT(*) FROM streams WHERE branch = 'north'").fetchone()[0] == 2


def test_a_branch_restored_from_its_own_backup_ships_what_it_has_and_loses_nothing(setup: Setup) -> None:
    setup.centre.start()
    del setup.hubs["south"]
    hub = setup.hubs["north"]
    hub.start()
    for _ in range(2):
        setup.issue("north")
    setup.wait_in_step()
    hub.stop()
    backup = {path.name: path.read_bytes() for path in hub.data_dir.glob("hub.sqlite3*")}
    hub.start()
    lost = [setup.issue("north")["id"] for _ in range(2)]  # committed and shipped, then the disk is replaced
    setup.wait_in_step()
    hub.stop()
    for path in hub.data_dir.glob("hub.sqlite3*"):
        path.unlink()
    for name, data in backup.items():
        (hub.data_dir / name).write_bytes(data)
    hub.start()
    for _ in range(3):
        setup.issue("north")  # numbered again from the backup: the centre sees a different row at its position

    def all_there() -> bool:
        branch, central = setup.branch_rows("north"), setup.central_rows("north")
        return all(branch[kind] <= central[kind] for kind in branch)

    wait_until(all_there, "every row of the restored branch at the centre")
    central = setup.central_rows("north")
    assert {t[0] for t in central["tickets"]} >= set(lost)  # what visitors were given before the restore stays
    assert setup.central_counts("north")[0] == 2 + 2 + 3
    with psycopg.connect(setup.database) as db:
        assert db.execute("SELECT COUNT(*) FROM streams WHERE branch = 'north'").fetchone()[0] == 2
        labels = sorted(row[0] for row in db.execute("SELECT label FROM tickets WHERE branch = 'north'"))
    assert labels == ["K001", "K002", "K003", "K004", "K005", "K006", "K007"]  # numbering asked at start: no repeat


def test_a_branch_hub_on_a_wiped_disk_goes_on_with_todays_numbers(setup: Setup) -> None:
    setup.centre.start()
    del setup.hubs["south"]
    hub = setup.hubs["north"]
    hub.start()
    assert [setup.issue("north")["ticket"] for _ in range(3)] == ["K001", "K002", "K003"]
    assert setup.issue("north", "it")["ticket"] == "H001"
    setup.wait_in_step()
    hub.kill()
    for path in hub.data_dir.glob("hub.sqlite3*"):  # the disk is gone: a new card, the same site file
        path.unlink()
    hub.topic_root = fresh_root()
    hub.start()
    assert setup.issue("north")["ticket"] == "K004"  # not a second K001
    assert setup.issue("north", "it")["ticket"] == "H002"
    assert setup.issue("north", "bibliotekar")["ticket"] == "L001"  # a letter not used today starts at 1
    wait_until(lambda: setup.central_counts("north")[0] == 7, "the new disk's tickets at the centre")
    with psycopg.connect(setup.database) as db:
        labels = [row[0] for row in db.execute("SELECT label FROM tickets WHERE branch = 'north' ORDER BY label")]
    assert labels == ["H001", "H002", "K001", "K002", "K003", "K004", "L001"]  # no number twice


def test_a_branch_ships_over_https_to_a_centre_it_trusts_and_to_no_other(tmp_path: Path, make_hub: Any,
                                                                         make_central: Any) -> None:
    from tests.certs import TestCA

    ca, stranger = TestCA.create(tmp_path / "ca"), TestCA.create(tmp_path / "stranger", "Someone else's CA")
    issued = ca.issue("centre")
    port = free_port()
    sites = {"north": branch_site(tmp_path, "north", BRANCHES["north"], port, scheme="https", ca_file=ca.cert),
             "south": branch_site(tmp_path, "south", BRANCHES["south"], port, scheme="https", ca_file=stranger.cert)}
    centre = make_central(sites, port=port, tls=(issued.cert, issued.key), tls_ca=ca.cert).start()
    hubs = {bid: make_hub(tmp_path / bid, site=path).start() for bid, (_, path) in sites.items()}
    for hub in hubs.values():
        answer = requests.post(f"{hub.url}/api/v1/tickets", json={"service": "kvik", "language": "da"},
                               headers={**KIOSK, "Idempotency-Key": uuid.uuid4().hex}, timeout=10)
        assert answer.status_code == 201, answer.text  # both branches serve, whatever the centre

    def today(bid: str) -> int:
        return next(b for b in centre.get("/api/v1/branches").json()["branches"] if b["branch"] == bid)[
            "tickets_today"]

    wait_until(lambda: today("north") == 1, "north's ticket at the centre, over HTTPS")

    def south_refused() -> bool:
        uplink = requests.get(f"{hubs['south'].url}/api/v1/health", timeout=5).json()["uplink"]
        return uplink["state"] == "unreachable" and "CERTIFICATE_VERIFY_FAILED" in (uplink["last_error"] or "")

    wait_until(south_refused, "south to refuse a centre whose certificate its CA did not sign")
    assert today("south") == 0

    from server.config import load_config
    from toolkit.doctor import check_centre

    assert check_centre(load_config(sites["north"][1]).central).ok
    refused = check_centre(load_config(sites["south"][1]).central)
    assert not refused.ok and "certificate is not trusted" in refused.message


def test_the_centre_counts_how_tickets_were_taken_and_who_left(setup: Setup) -> None:
    """The ticket's channel travels with it (tickets.channel → uplink → the centre's column) and the centre's
    statistics count it as the branch does; the live overview counts visitors who left the queue."""
    setup.centre.start()
    hub = setup.hubs["north"].start()
    setup.issue("north")  # a kiosk's
    desk = requests.post(f"{hub.url}/api/v1/tickets", json={"service": "kvik", "language": "da"}, timeout=10,
                         headers={**STAFF, "Idempotency-Key": "desk-ticket-0001"}).json()
    assert requests.post(f"{hub.url}/api/v1/track/{desk['track_token']}/leave", timeout=10).json()["status"] == "left"
    wait_until(lambda: setup.uplink("north")["backlog"] == 0 and setup.in_step("north"), "north shipped")
    own = requests.get(f"{hub.url}/api/v1/stats/summary", headers=STAFF, timeout=10).json()["total"]
    central = setup.centre.get("/api/v1/branches/north/summary").json()["total"]
    assert (central["from_kiosk"], central["from_staff"], central["from_phone"], central["left"]) == (1, 1, 0, 1)
    assert central == own
    with psycopg.connect(setup.database) as db:  # stored as the branch sent it, not guessed from the origin
        assert sorted(db.execute("SELECT channel FROM tickets").fetchall()) == [("kiosk",), ("staff",)]
    overview = setup.centre.get("/api/v1/branches").json()["branches"]
    kvik = next(s for s in next(b for b in overview if b["branch"] == "north")["services"] if s["service"] == "kvik")
    assert kvik["left"] == 1 and kvik["issued"] == 2


# -- what's on: staff events, sign-ups and check-ins ------------------------------------------------------------

MORNING = datetime(2026, 11, 23, 9, 0, tzinfo=CPH)  # a Monday; the hubs run on this clock, TZ=UTC
DAY = MORNING.date().isoformat()


class Programme:
    """One branch's events and sign-ups, through its hub's API (kiosk and staff), as tests/test_events_* do."""

    def __init__(self, setup: Setup, bid: str):
        self.url, self.setup, self.bid = setup.hubs[bid].url, setup, bid

    def event(self, title: str, start: datetime, **extra: Any) -> str:
        made = requests.post(f"{self.url}/api/v1/events", headers=STAFF, timeout=10, json={
            "title": title, "start": start.isoformat(), "end": (start + timedelta(hours=1, minutes=30)).isoformat(),
            "room": "Salen", **extra})
        assert made.status_code == 201, made.text
        return str(made.json()["id"])

    def sign_up(self, event_id: str, *, name: str | None = None) -> dict[str, Any]:
        answer = requests.post(f"{self.url}/api/v1/events/{event_id}/signups", timeout=10,
                               json={"language": "da", **({"name": name} if name else {})},
                               headers={**(STAFF if name else KIOSK), "Idempotency-Key": uuid.uuid4().hex})
        assert answer.status_code == 201, answer.text
        return dict(answer.json())

    def check_in(self, code: str) -> dict[str, Any]:
        answer = requests.post(f"{self.url}/api/v1/checkins", json={"code": code, "language": "da"}, timeout=10,
                               headers={**KIOSK, "Idempotency-Key": uuid.uuid4().hex})
        assert answer.status_code in (200, 201), answer.text
        return dict(answer.json())

    def branch_rows(self) -> tuple[set[Any], set[Any]]:
        with sqlite3.connect(f"file:{self.setup.store(self.bid)}?mode=ro", uri=True) as db:
            return (set(db.execute("SELECT id, event_id, seat, waiting_place, attended_at FROM event_signups")),
                    set(db.execute("SELECT id, state, seats FROM events_local")))

    def central_rows(self) -> tuple[set[Any], set[Any]]:
        with psycopg.connect(self.setup.database) as db:
            signups = {(i, e, s, w, ts_text(a)) for i, e, s, w, a in db.execute(
                "SELECT id, event_id, seat, waiting_place, attended_at FROM event_signups WHERE branch = %s",
                (self.bid,))}
            events = set(db.execute("SELECT id, state, seats FROM staff_events WHERE branch = %s", (self.bid,)))
        return signups, events

    def outbox_left(self) -> int:
        with sqlite3.connect(f"file:{self.setup.store(self.bid)}?mode=ro", uri=True) as db:
            return int(db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0])

    def in_step(self) -> bool:
        return self.branch_rows() == self.central_rows()  # sets of the same rows; primary keys: none twice

    def figures(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """What's on in the day's figures: the branch's own statistics, and the centre's for the branch."""
        own = requests.get(f"{self.url}/api/v1/stats/summary", params={"from": DAY, "to": DAY}, headers=STAFF,
                           timeout=10).json()["events"]
        central = self.setup.centre.get(f"/api/v1/branches/{self.bid}/summary", start=DAY, end=DAY).json()["events"]
        return own, central


def test_event_sign_ups_and_check_ins_reach_the_centre_exactly_once_and_its_figures_are_the_branchs(
        tmp_path: Path, make_hub: Any, make_central: Any, postgres_db: str) -> None:
    """Staff events, sign-ups (kiosk and staff, a waiting list, one given up so the first waiting moves up) and
    check-ins travel like tickets: the centre holds exactly the branch's rows, without the sign-ups' codes and names,
    and counts them as the branch's statistics do. A hub SIGKILLed between the centre's commit of a sign-up and its
    own mark sends it again, and the centre still has it once; a re-snapshot after the centre lost rows ships the
    given-up sign-up's tombstone again, so the centre forgets it even from an older backup."""
    clock = {"clock": MORNING, "tz": "UTC"}
    setup = Setup(tmp_path, make_hub, make_central, postgres_db, north=clock, south=clock)
    setup.centre.start()
    for hub in setup.hubs.values():
        hub.start()
    north, south = Programme(setup, "north"), Programme(setup, "south")

    cafe = north.event("Sprogcafé", MORNING.replace(hour=17), seats=2, waiting_list=3)
    anna, bent = north.sign_up(cafe), north.sign_up(cafe)
    karen = north.sign_up(cafe, name="Karen Jensen")  # by phone, at the desk: waiting, 1st
    carl = north.sign_up(cafe)  # waiting, 2nd
    assert (karen["waiting_place"], carl["waiting_place"]) == (1, 2)
    given_up = requests.delete(f"{north.url}/api/v1/events/{cafe}/signups/{bent['code']}", headers=STAFF, timeout=10)
    assert given_up.ok and given_up.json()["moved_up"]["code"] == karen["code"]  # Karen takes Bent's seat
    north.sign_up(north.event("Forfattermøde", MORNING + timedelta(days=1, hours=9), seats=20))
    knitting = north.event("Strikkeklub", MORNING.replace(hour=18), seats=5)
    assert requests.delete(f"{north.url}/api/v1/events/{knitting}", headers=STAFF, timeout=10).ok
    south.sign_up(south.event("Babysalmesang", MORNING.replace(hour=10, minute=30), seats=8))

    for hub in setup.hubs.values():
        hub.set_clock(MORNING.replace(hour=16, minute=40))
    assert north.check_in(anna["code"])["already"] is False
    assert north.check_in(anna["code"])["already"] is True  # a second scan changes nothing
    assert north.check_in(karen["code"])["already"] is False  # moved up: checks in with her seat
    wait_until(lambda: north.in_step() and south.in_step(), "the centre to hold exactly each branch's what's on")

    signups, _ = north.central_rows()
    assert len(signups) == 4 and bent["code"] not in str(signups)  # Anna, Karen, Carl, Forfattermøde's; not Bent
    with psycopg.connect(setup.database) as db:  # nothing personal: no code, no name
        columns = {c for c, in db.execute("SELECT column_name FROM information_schema.columns "
                                          "WHERE table_name = 'event_signups'")}
        assert not columns & {"code", "name", "phone", "email"}
    with sqlite3.connect(f"file:{setup.store('north')}?mode=ro", uri=True) as db:
        (karen_id,) = db.execute("SELECT id FROM event_signups WHERE code = ?", (karen["code"],)).fetchone()
        shipped = outbox.read_back(db, outbox.SIGNUP, karen_id)  # the body the writer put in the outbox
    assert shipped and "Karen" not in shipped and karen["code"] not in shipped

    for programme in (north, south):
        own, central = programme.figures()
        assert central == own, programme.bid
    # the Sprogcafé (Forfattermøde is tomorrow, Strikkeklub cancelled); Anna, Karen, Carl and Forfattermøde's
    # sign-up made today (Bent's given up), Carl waiting; Anna and Karen checked in
    assert north.figures()[1] == {"events": 1, "signups": 4, "seated": 3, "waiting_list": 1, "attended": 2}
    together = setup.centre.get("/api/v1/summary", start=DAY, end=DAY).json()["events"]
    assert together["all"] == {"events": 2, "signups": 5, "seated": 4, "waiting_list": 1, "attended": 2}
    assert together["branches"] == {programme.bid: programme.figures()[1] for programme in (north, south)}

    # SIGKILLed between the centre's commit of a new sign-up and the branch's own mark: sent again, stored once
    hub = setup.hubs["north"]
    wait_until(lambda: north.outbox_left() == 0, "north to mark what the centre acknowledged")  # none to re-send
    hub.stop()
    hub.env = {"VUORO_UPLINK_KILL_AFTER": "1"}
    hub.start()
    dora = north.sign_up(cafe)
    assert hub.process is not None
    hub.process.wait(20)
    assert hub.process.returncode == -9
    with sqlite3.connect(setup.store("north")) as db:
        (marked,) = db.execute("SELECT shipped FROM uplink_state").fetchone()
        kinds = {kind for kind, in db.execute("SELECT kind FROM outbox WHERE seq > ?", (marked,))}
    with psycopg.connect(setup.database) as db:
        (stored,) = db.execute("SELECT shipped FROM streams WHERE branch = 'north'").fetchone()
    assert outbox.SIGNUP in kinds and stored > marked  # the centre had it; the branch had not marked it: the window
    hub.process, hub.env, hub.topic_root = None, {}, fresh_root()
    hub.start()
    wait_until(north.in_step, "the sign-up made at the kill at the centre, once")
    assert dora["waiting_place"] == 3 and len(north.central_rows()[0]) == 5  # Carl keeps his place, 2

    # The centre's database back from an older backup that still had Bent: the branch ships everything again,
    # Bent's tombstone with it
    with sqlite3.connect(f"file:{setup.store('north')}?mode=ro", uri=True) as db:
        (bent_id,) = db.execute("SELECT id FROM event_signups_cancelled").fetchone()  # the one given up
    with psycopg.connect(setup.database) as db:
        db.execute("INSERT INTO event_signups (branch, id, stream, revision, event_id, seat, created_at, committed_at) "
                   "VALUES ('north', %s, 'old', 1, %s, 2, now(), now())", (bent_id, cafe))
        db.execute("UPDATE streams SET shipped = 2 WHERE branch = 'north'")
    setup.centre.stop()
    setup.centre.start()
    north.sign_up(cafe)  # the next batch meets the 409: a new stream with the whole store
    wait_until(north.in_step, "the centre to hold exactly north's what's on after the re-snapshot", 60)
    with psycopg.connect(setup.database) as db:
        assert db.execute("SELECT COUNT(*) FROM streams WHERE branch = 'north'").fetchone()[0] == 2
        assert db.execute("SELECT COUNT(*) FROM event_signups WHERE id = %s", (bent_id,)).fetchone()[0] == 0
    own, central = north.figures()
    assert central == own and central["signups"] == 6

