"""The municipality's one booking calendar, all real: the centre process over a private PostgreSQL, two branch
hubs (their own SQLite), one clock file all of them read (``VUORO_TEST_CLOCK``), and a TCP relay between the north
branch and the centre that the test cuts: a WAN cut with both sides running.

Proved here: a time booked at the centre for a branch is handed over at the branch's opening and checked in at its
kiosk with the code, offline; bookings, cancellations and check-ins made on both sides during a cut reconcile
afterwards by the one rule (checked in beats cancelled beats booked) with 0 double bookings and 0 lost bookings;
"the nearest free time at any branch"; and the plain notice for an unreachable branch's same-day times.
"""

from __future__ import annotations

import contextlib
import socket
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

from tests.conftest import TEST_SITE
from toolkit.broker import free_port
from toolkit.central_process import CentralProcess, write_centre_config
from toolkit.polling import wait_until
from vuoro.clock import ENV as CLOCK_ENV
from vuoro.clock import write_clock_file

KIOSK = {"Authorization": "Bearer demo-kiosk1-token-change-me"}
TZ = ZoneInfo("Europe/Copenhagen")
D0 = datetime(2026, 12, 1, 7, 0, tzinfo=TZ)  # a Tuesday; the test site is open round the clock
CAPACITY = {"bibliotekar": 1, "borgerservice": 2}


class Relay:
    """A TCP relay on a free port: ``cut()`` closes every connection and refuses new ones, ``mend()`` serves again."""

    def __init__(self, target_port: int):
        self.port, self.target = free_port(), target_port
        self.open = threading.Event()
        self.open.set()
        self.conns: list[socket.socket] = []
        self.server = socket.create_server(("127.0.0.1", self.port))
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            client, _ = self.server.accept()
            if not self.open.is_set():
                client.close()
                continue
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target), timeout=5)
            except OSError:
                client.close()
                continue
            self.conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _pipe(self, a: socket.socket, b: socket.socket) -> None:
        try:
            while data := a.recv(65536):
                b.sendall(data)
        except OSError:
            pass
        finally:
            for s in (a, b):
                with contextlib.suppress(OSError):
                    s.close()

    def cut(self) -> None:
        self.open.clear()
        for s in self.conns:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
        self.conns.clear()

    def mend(self) -> None:
        self.open.set()


def calendar_site(folder: Path, site_id: str, name: str, centre_url: str,
                  base: Path = TEST_SITE) -> tuple[str, Path]:
    """``base`` (a site file whose id is "sonderbro") as a branch of the centre's calendar."""
    token = f"{site_id}-uplink-token-0123456789"
    text = base.read_text(encoding="utf-8").replace('id = "sonderbro"', f'id = "{site_id}"', 1)
    text = text.replace('name = "Sønderbro Bibliotek & Borgerservice"', f'name = "{name}"', 1)
    # polled every second, not every 5: what the tests wait for arrives with the handover's next answer
    text = text.replace("[bookings]\n", "[bookings]\ncentre_calendar = true\ncalendar_poll_s = 1\n", 1)
    text += f'\n[central]\nurl = "{centre_url}"\ntoken = "{token}"\nheartbeat_s = 1\n'
    path = folder / f"{site_id}.toml"
    path.write_text(text, encoding="utf-8")
    return token, path


def centre_book(centre: str, branch: str, service: str, start: datetime, **details: str) -> requests.Response:
    return requests.post(f"{centre}/api/v1/calendar/bookings", params={"branch": branch},
                         json={"service": service, "start": start.isoformat(), **details},
                         headers={"Idempotency-Key": uuid.uuid4().hex}, timeout=10)


def branch_bookings(hub: Any) -> dict[str, tuple[str, str, str]]:
    """code → (status, service, start) as the branch's own SQLite file holds them."""
    with sqlite3.connect(f"file:{hub.data_dir / 'hub.sqlite3'}?mode=ro", uri=True) as db:
        return {c: (s, sv, st) for c, s, sv, st in db.execute("SELECT code, status, service, start FROM bookings")}


def centre_bookings(database: str) -> dict[str, tuple[str, str, str, str, datetime]]:
    """code → (branch, side, status, service, start) as the centre holds them."""
    with psycopg.connect(database) as db:
        return {r[0]: r[1:] for r in db.execute(
            "SELECT code, branch, side, status, service, start_at FROM calendar_bookings")}


def slot_counts(rows: list[tuple[str, str, datetime, datetime]]) -> dict[tuple[str, str, datetime], int]:
    """Active bookings per (branch, service, 15-minute slot)."""
    counts: dict[tuple[str, str, datetime], int] = {}
    for branch, service, start, end in rows:
        slot = start
        while slot < end:
            counts[(branch, service, slot)] = counts.get((branch, service, slot), 0) + 1
            slot += timedelta(minutes=15)
    return counts


def test_one_calendar_handover_checkin_offline_cut_and_reconciliation(  # type: ignore[no-untyped-def]
        tmp_path, make_hub, postgres_db) -> None:
    clock = tmp_path / "clock"
    write_clock_file(clock, D0)
    env = {CLOCK_ENV: str(clock)}
    centre_port = free_port()
    relay = Relay(centre_port)
    sites = {"north": calendar_site(tmp_path, "north", "Nordby Bibliotek", f"http://127.0.0.1:{relay.port}"),
             "south": calendar_site(tmp_path, "south", "Sydby Bibliotek", f"http://127.0.0.1:{centre_port}")}
    config = write_centre_config(tmp_path / "centre.toml", postgres_db, sites, languages=("en", "da"))
    config.write_text(config.read_text() + "\n[calendar]\naway_s = 4\n")
    centre = CentralProcess(config, port=centre_port, env=env).start()
    hubs = {bid: make_hub(tmp_path / bid, site=path, env=env).start() for bid, (_, path) in sites.items()}
    url = centre.url
    try:
        d1 = D0 + timedelta(days=1)
        # Both branches took today over at their opening (round the clock: at once): the centre sells none of it.
        wait_until(lambda: requests.get(f"{url}/api/v1/calendar/slots", params={
            "branch": "south", "service": "bibliotekar"}, timeout=5).json()["notice"] == "branch_owns",
                   'today handed over at both branches', timeout=30)
        refused = centre_book(url, "north", "bibliotekar", D0.replace(hour=12), name="Ann")
        assert refused.status_code == 409 and refused.json()["error"]["code"] == "branch_owns", refused.text

        # The centre sells tomorrow's places at the north branch: 7-character codes, its own code space.
        x = centre_book(url, "north", "borgerservice", d1.replace(hour=10), name="Xenia", phone="+45 11 22 33 44")
        y = centre_book(url, "north", "bibliotekar", d1.replace(hour=10, minute=15), name="Yrsa")
        assert x.status_code == 201 and y.status_code == 201, (x.text, y.text)
        x_code, y_code = x.json()["code"], y.json()["code"]
        assert len(x_code) == len(y_code) == 7
        # Nobody takes the same place twice: bibliotekar has one place, so 10:15 is gone.
        again = centre_book(url, "north", "bibliotekar", d1.replace(hour=10, minute=15), name="Again")
        assert again.status_code == 409 and again.json()["error"]["code"] == "full", again.text

        # The nearest free time at any branch: each branch's first, soonest first.
        nearest = requests.get(f"{url}/api/v1/calendar/nearest", params={"service": "bibliotekar"}, timeout=10).json()
        assert {n["branch"] for n in nearest["branches"]} == {"north", "south"}
        starts = [datetime.fromisoformat(n["start"]) for n in nearest["branches"]]
        assert starts == sorted(starts) and all(s.date() == d1.date() for s in starts)

        # The south branch goes away (its hub stopped); morning comes: north takes D1 with the centre's bookings.
        hubs["south"].stop()
        write_clock_file(clock, d1.replace(hour=9, minute=50))
        wait_until(lambda: requests.get(f"{hubs['north'].url}/api/v1/health", timeout=5).json()["calendar"] == {
            "state": "owner", "day": d1.date().isoformat(), "error": None}, "north's health: it owns D1", timeout=30)
        wait_until(lambda: {x_code, y_code} <= set(branch_bookings(hubs["north"])),
                   "the centre's bookings handed over to north", timeout=30)
        # South never took D1 over and cannot be reached: its same-day times are not sold, and the page says why.
        wait_until(lambda: requests.get(f"{url}/api/v1/calendar/slots", params={
            "branch": "south", "service": "bibliotekar"}, timeout=5).json()["notice"] == "branch_away",
                   'south unreachable for its same-day times', timeout=30)
        listing = requests.get(f"{url}/api/v1/calendar/slots", params={"branch": "south", "service": "bibliotekar"},
                               timeout=5).json()
        assert d1.date().isoformat() not in listing["days"] and listing["days"], listing["days"][:3]
        away = centre_book(url, "south", "bibliotekar", d1.replace(hour=15), name="Sam")
        assert away.status_code == 409 and away.json()["error"]["code"] == "branch_away"
        page = requests.get(f"{url}/book/south/bibliotekar/", timeout=5)
        assert "cannot be booked online just now, because the branch cannot be reached" in page.text
        later = centre_book(url, "south", "bibliotekar", d1.replace(hour=15) + timedelta(days=1), name="Sam")
        assert later.status_code == 201, later.text  # later days at the unreachable branch: the centre's to sell

        # The WAN cut: the north branch and the centre both run but cannot reach each other.
        relay.cut()
        cancel_x = requests.post(f"{url}/book/b/{x_code}/cancel", data={"csrf": "t"}, cookies={
            "vuoro_book_csrf": "t"}, timeout=10, allow_redirects=False)
        assert cancel_x.status_code == 303, cancel_x.text  # the citizen cancels X at the centre ...
        checkin = requests.post(f"{hubs['north'].url}/api/v1/checkins", json={"code": x_code.lower()},
                                headers={**KIOSK, "Idempotency-Key": uuid.uuid4().hex}, timeout=10)
        assert checkin.status_code == 201, checkin.text  # ... while X checks in at the kiosk, offline
        cancel_y = requests.post(f"{url}/book/b/{y_code}/cancel", data={"csrf": "t"}, cookies={
            "vuoro_book_csrf": "t"}, timeout=10, allow_redirects=False)
        assert cancel_y.status_code == 303  # Y is cancelled at the centre and nobody checks it in
        z = requests.post(f"{hubs['north'].url}/api/v1/public/bookings", json={
            "service": "bibliotekar", "start": d1.replace(hour=11).isoformat(), "name": "Zack"},
            headers={"Idempotency-Key": uuid.uuid4().hex}, timeout=10)
        assert z.status_code == 201, z.text  # the branch sells its own day during the cut
        w = centre_book(url, "north", "bibliotekar", d1.replace(hour=11) + timedelta(days=1), name="Wim")
        assert w.status_code == 201, w.text  # the centre sells a later day during the cut
        mine = centre_book(url, "north", "bibliotekar", d1.replace(hour=11), name="Twice")
        assert mine.status_code == 409  # and never the branch's own day, where Z now sits
        z_code, w_code = z.json()["code"], w.json()["code"]

        wait_until(lambda: requests.get(f"{hubs['north'].url}/api/v1/health", timeout=5).json()["calendar"][
            "state"] == "unreachable", "north's health says the centre is unreachable", timeout=30)
        relay.mend()
        # Reconciled: checked in beats cancelled (X), cancelled beats booked (Y), both sides' new bookings kept.
        wait_until(lambda: centre_bookings(postgres_db).get(x_code, ("",) * 3)[2] == "checked_in"
                   and z_code in centre_bookings(postgres_db),
                   'X checked in at the centre after the cut', timeout=40)
        wait_until(lambda: branch_bookings(hubs["north"]).get(y_code, ("",))[0] == "cancelled",
                   'Y cancelled at the branch after the cut', timeout=40)
        at_centre, at_north = centre_bookings(postgres_db), branch_bookings(hubs["north"])
        assert at_centre[x_code][2] == "checked_in" and at_north[x_code][0] == "checked_in"
        assert at_centre[y_code][2] == "cancelled" and at_north[y_code][0] == "cancelled"
        assert at_centre[z_code][:3] == ("north", "branch", "booked") and at_north[z_code][0] == "booked"
        assert at_centre[w_code][:3] == ("north", "centre", "booked")
        assert later.json()["code"] in at_centre
        # 0 lost: every booking made on either side is at the centre; the north's day is whole at the branch.
        assert {x_code, y_code, z_code, w_code, later.json()["code"]} <= set(at_centre)
        assert {x_code, y_code, z_code} <= set(at_north)
        # 0 double bookings: no slot holds more active bookings than it has places, counting both sides at once.
        with psycopg.connect(postgres_db) as db:
            active = db.execute("SELECT branch, service, start_at, end_at FROM calendar_bookings WHERE status IN "
                                "('booked', 'checked_in')").fetchall()
        over = {k: n for k, n in slot_counts(active).items() if n > CAPACITY[k[1]]}
        assert not over, over
        with sqlite3.connect(f"file:{hubs['north'].data_dir / 'hub.sqlite3'}?mode=ro", uri=True) as db:
            local = [("north", s, datetime.fromisoformat(a), datetime.fromisoformat(b)) for s, a, b in db.execute(
                'SELECT service, start, "end" FROM bookings WHERE status IN (\'booked\', \'checked_in\')')]
        assert not {k: n for k, n in slot_counts(local).items() if n > CAPACITY[k[1]]}
    finally:
        centre.stop()


@pytest.mark.browser
def test_the_centres_booking_page_at_phone_size_in_chromium(  # type: ignore[no-untyped-def]
        tmp_path, make_hub, postgres_db, browser) -> None:
    """A citizen books at the centre in Chromium at phone size: branch and service, a time, a name; the booking
    with its 7-character code and QR; moves it; axe-core finds nothing on any page. Screenshots:
    docs/screenshots/central."""
    from toolkit.accessibility import PHONE, assert_accessible

    clock = tmp_path / "clock"
    write_clock_file(clock, D0)
    env = {CLOCK_ENV: str(clock)}
    centre_port = free_port()
    sites = {"north": calendar_site(tmp_path, "north", "Nordby Bibliotek", f"http://127.0.0.1:{centre_port}")}
    config = write_centre_config(tmp_path / "centre.toml", postgres_db, sites, languages=("en", "da"))
    centre = CentralProcess(config, port=centre_port, env=env).start()
    hub = make_hub(tmp_path / "north", site=sites["north"][1], env=env).start()
    # The docs' screenshots of these pages come from test_calendar_citizen_web.py (the sample site's real hours);
    # this round-the-clock site's go to the test's own folder, to look at when it fails.
    shots = tmp_path / "shots"
    shots.mkdir(parents=True, exist_ok=True)
    try:
        wait_until(lambda: requests.get(f"{centre.url}/api/v1/calendar/slots", params={
            "branch": "north", "service": "bibliotekar"}, timeout=5).json()["notice"] == "branch_owns",
                   "north took today over", timeout=30)
        page = browser.new_context(viewport=PHONE, locale="en-GB").new_page()
        page.goto(f"{centre.url}/book/?lang=en")
        assert_accessible(page, "the centre's start page")
        page.screenshot(path=str(shots / "book-start-en.png"), full_page=True)
        with page.expect_navigation():  # axe must not run on the page being left
            page.locator("a[href='/book/north/bibliotekar/']").click()
        assert_accessible(page, "the centre's times at a branch")
        page.screenshot(path=str(shots / "book-times-en.png"), full_page=True)
        assert "Today's times at Nordby Bibliotek are booked at the branch itself" in page.content()
        page.locator("input[name=start]").first.check()
        page.get_by_label("Name").fill("Ada")
        with page.expect_navigation():  # axe must not run on the page being left
            page.get_by_role("button", name="Book this time").click()
        assert_accessible(page, "the centre's booking")
        page.screenshot(path=str(shots / "book-done-en.png"), full_page=True)
        code = page.locator("dd.code").inner_text().replace("-", "")
        assert page.locator("dd.code").inner_text() == f"{code[:3]}-{code[3:]}"  # shown as 7KQ-3MZA
        assert len(code) == 7
        assert centre_bookings(postgres_db)[code][:3] == ("north", "centre", "booked")
        first = centre_bookings(postgres_db)[code][4]
        with page.expect_navigation():  # axe must not run on the page being left
            page.get_by_role("link", name="Move the booking").click()
        assert_accessible(page, "the centre's move page")
        page.screenshot(path=str(shots / "book-move-en.png"), full_page=True)
        page.locator("input[name=start]").nth(4).check()
        page.get_by_role("button", name="Move to this time").click()
        assert "Moved to" in page.locator("p.done").inner_text()
        assert centre_bookings(postgres_db)[code][4] > first  # a later time, the same code
        assert_accessible(page, "the centre's booking, moved")
        page.goto(f"{centre.url}/book/any/bibliotekar/")
        assert_accessible(page, "the nearest free time at any branch")
        assert page.get_by_role("link", name="Nordby Bibliotek").count() == 1
    finally:
        hub.stop()
        centre.stop()


def test_the_centre_empties_personal_fields_after_the_branchs_retention_days(  # type: ignore[no-untyped-def]
        tmp_path, postgres_db) -> None:
    """The real centre process: a booking's name and phone are kept until ``retention_days`` (30 in the test site)
    after its day, then emptied by the centre's own purge (at start, then every 10 minutes); its time stays."""
    clock = tmp_path / "clock"
    write_clock_file(clock, D0)
    sites = {"north": calendar_site(tmp_path, "north", "Nordby Bibliotek", "http://127.0.0.1:9")}
    config = write_centre_config(tmp_path / "centre.toml", postgres_db, sites, languages=("en",))
    centre = CentralProcess(config, env={CLOCK_ENV: str(clock)}).start()
    try:
        made = centre_book(centre.url, "north", "borgerservice", (D0 + timedelta(days=2)).replace(hour=10),
                           name="Pia", phone="+45 11 22 33 44")
        assert made.status_code == 201, made.text
        centre.stop()
        write_clock_file(clock, D0 + timedelta(days=2 + 29))  # 29 days after: kept
        centre.start()

        def personal() -> tuple[Any, ...]:
            with psycopg.connect(postgres_db) as db:
                return db.execute("SELECT name, phone, start_at IS NOT NULL FROM calendar_bookings").fetchone()

        assert personal() == ("Pia", "+45 11 22 33 44", True)
        centre.stop()
        write_clock_file(clock, D0 + timedelta(days=2 + 31))  # past retention_days = 30
        centre.start()
        wait_until(lambda: personal() == (None, None, True), "the purge at the centre's start", timeout=20)
    finally:
        centre.stop()
