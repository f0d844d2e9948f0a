"""Staff's side of the municipality's booking calendar (issue 17), all real: the centre process over a private
PostgreSQL, a branch hub (its own SQLite), one clock file both read, a TCP relay the test cuts, and Chromium.

Proved here: a signed-in centre person sees a branch's day with names, phones and notes, books for a caller on
the centre's places (never the walk-in reserve, never a day the branch has taken over), moves and cancels, in
plain forms with CSRF; the overview says per branch whether today was handed over, not yet, or the branch is
unreachable; the branch's staff answer shows the centre's bookings of its later days, from its own store while
the centre cannot be reached; and a branch restarted during a WAN cut still sells the day it had taken over.
"""

from __future__ import annotations

import os
import re
import sqlite3
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
import requests

from tests.test_calendar_e2e import D0, Relay, calendar_site, centre_book
from toolkit.broker import free_port
from toolkit.central_process import ADMIN_TOKEN, CentralProcess, write_centre_config
from toolkit.polling import wait_until
from vuoro.clock import ENV as CLOCK_ENV
from vuoro.clock import write_clock_file

STAFF = {"Authorization": "Bearer demo-staff-token-change-me"}
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
# Screenshots land here when VUORO_STAFFCAL_SHOTS names a folder (looked at: /work/reports/staffcal-*.png)
SHOTS_ENV = "VUORO_STAFFCAL_SHOTS"


def with_reserve(path: Path) -> Path:
    """borgerservice (2 places a slot) keeps one place of every slot for walk-ins: the centre sells only one."""
    text = path.read_text(encoding="utf-8")
    text = text.replace('online = { asks = ["name", "phone"], until_min = 60, per_day = 1 }',
                        'online = { asks = ["name", "phone"], until_min = 60, per_day = 1, reserve = 1 }', 1)
    assert "reserve = 1" in text
    path.write_text(text, encoding="utf-8")
    return path


def account(centre: str, name: str, branches: list[str]) -> None:
    requests.put(f"{centre}/api/v1/staff/{name}", json={"role": "staff", "password": f"{name}-kodeord-1",
                                                        "branches": branches},
                 headers=ADMIN, timeout=30).raise_for_status()


def signed_in(centre: str, name: str) -> requests.Session:
    session = requests.Session()
    form = session.get(f"{centre}/login?lang=en", timeout=10)
    csrf = re.search(r'name="csrf" value="([^"]+)"', form.text)
    assert csrf, form.text
    answer = session.post(f"{centre}/login?lang=en", data={"username": name, "password": f"{name}-kodeord-1",
                                                           "csrf": csrf.group(1)}, timeout=30, allow_redirects=False)
    assert answer.status_code == 303, answer.text
    return session


def form_csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, html
    return found.group(1)


def branch_day(hub: Any, day: str) -> list[dict[str, Any]]:
    answer = requests.get(f"{hub.url}/api/v1/bookings", params={"day": day}, headers=STAFF, timeout=10)
    answer.raise_for_status()
    return answer.json()["bookings"]


def centre_row(database: str, code: str) -> tuple[Any, ...]:
    with psycopg.connect(database) as db:
        row = db.execute("SELECT status, start_at, name, phone, note, origin, slots FROM calendar_bookings "
                         "WHERE code = %s", (code,)).fetchone()
    assert row is not None, code
    return row


def test_every_word_of_the_centres_calendar_is_in_each_language() -> None:
    from server.staff.strings import CALENDAR_MSGIDS, LOCALE_DIR, strings
    from vuoro.i18n import untranslated

    assert len(set(CALENDAR_MSGIDS)) == len(CALENDAR_MSGIDS)
    for lang in ("da", "sv", "fi", "nl"):
        assert untranslated(LOCALE_DIR, lang, list(CALENDAR_MSGIDS)) == [], lang
        for msgid, text in strings(lang, CALENDAR_MSGIDS).items():
            assert set(re.findall(r"{\w+}", text)) == set(re.findall(r"{\w+}", msgid)), (lang, msgid, text)


@pytest.fixture()
def reserved_calendar(tmp_path, postgres_db, monkeypatch):  # type: ignore[no-untyped-def]
    """The centre's calendar in this process over a real PostgreSQL: north, "Ask a librarian" (1 place a slot) with
    ``reserve = 1`` — the one place is the branch's — and "Citizen service" (2 places, none reserved)."""
    from psycopg_pool import ConnectionPool

    from central.calendar import Calendar
    from central.config import load_centre
    from central.ingest import register_branches
    from central.schema import migrate
    from tests.test_calendar import NOW, site

    clock = tmp_path / "clock"
    write_clock_file(clock, NOW)
    monkeypatch.setenv(CLOCK_ENV, str(clock))
    config = load_centre(write_centre_config(tmp_path / "centre.toml", postgres_db, {
        "north": ("north-uplink-token-0123456789", site(tmp_path, reserve=1))}))
    migrate(postgres_db)
    pool = ConnectionPool(postgres_db, min_size=1, max_size=4, open=True)
    with pool.connection() as db:
        register_branches(db, {"north": "North"})
    yield Calendar(config, pool)
    pool.close()


def test_the_staff_rules_at_the_centre_and_the_overviews_handover_states(reserved_calendar) -> None:  # type: ignore
    from central.calendar import BRANCH_OWNS
    from server.errors import ApiError
    from tests.test_calendar import NOW

    cal = reserved_calendar

    def staff_book(service: str, start: datetime, **details: str) -> dict[str, Any]:
        return cal.book("north", service=service, start=start, slots=1, key=uuid.uuid4().hex, language="en",
                        staff=True, **details)[1]

    def refused(service: str, start: datetime, **details: str) -> ApiError:
        with pytest.raises(ApiError) as caught:
            staff_book(service, start, **details)
        return caught.value

    with cal.pool.connection() as db:  # never heard from: today is not sold, and the overview says why
        assert cal.handover_states(db, NOW)["north"]["state"] == "unreachable"
        db.execute("UPDATE branches SET last_seen = clock_timestamp() WHERE id = 'north'")
    with cal.pool.connection() as db:
        assert cal.handover_states(db, NOW)["north"] == {"state": "not_yet", "day": NOW.date().isoformat(),
                                                         "handed_at": None}
    soon = NOW.replace(hour=7, minute=15)
    # Staff may book a time too soon for a citizen (until_min = 60) and need no phone; a note is kept.
    with pytest.raises(ApiError):
        cal.book("north", service="borgerservice", start=soon, slots=1, key=uuid.uuid4().hex, language="en",
                 name="Citizen", phone="+45 11 22 33 44")
    row = staff_book("borgerservice", soon, name="Caller", note="Bring the form")
    assert (row["origin"], row["name"], row["phone"], row["note"]) == ("staff", "Caller", None, "Bring the form")
    # Never the walk-in reserve: "Ask a librarian" has one place a slot and it is the branch's.
    assert refused("bibliotekar", NOW.replace(hour=10) + timedelta(days=1), name="X").code == "full"
    assert cal.staff_times("north", "bibliotekar", (NOW + timedelta(days=1)).date()) == []
    assert refused("borgerservice", NOW.replace(hour=6)).code == "past"
    assert refused("borgerservice", NOW.replace(hour=9, minute=5)).code == "not_a_slot"
    assert refused("borgerservice", NOW.replace(hour=9), phone="not a phone").details["field"] == "phone"
    # Two places at 09:00: two staff bookings, then full (no overbooking at the centre).
    staff_book("borgerservice", NOW.replace(hour=9))
    staff_book("borgerservice", NOW.replace(hour=9))
    assert refused("borgerservice", NOW.replace(hour=9)).code == "full"
    assert NOW.replace(hour=9).isoformat(timespec="minutes") not in [
        t["start"] for t in cal.staff_times("north", "borgerservice", NOW.date())]
    # The branch takes today over: the centre's staff sell, and move onto, none of it.
    cal.handover("north", NOW.date())
    with cal.pool.connection() as db:
        state = cal.handover_states(db, NOW)["north"]
    handed_at = datetime.fromisoformat(state["handed_at"])  # by the centre's (test) clock, not the database's
    assert state["state"] == "handed_over" and timedelta(0) <= handed_at - NOW < timedelta(minutes=1)
    assert refused("borgerservice", NOW.replace(hour=12)).code == BRANCH_OWNS
    later = staff_book("borgerservice", NOW.replace(hour=12) + timedelta(days=1), name="Later")
    with pytest.raises(ApiError) as caught:
        cal.staff_move(later["id"], NOW.replace(hour=13))
    assert caught.value.code == BRANCH_OWNS
    moved = cal.staff_move(later["id"], NOW.replace(hour=14) + timedelta(days=2))
    assert (moved["code"], moved["day"]) == (later["code"], (NOW + timedelta(days=2)).date())
    assert cal.staff_cancel(later["id"])["status"] == "cancelled"
    view = cal.day_view("north", NOW.date())
    assert view["owner"] == BRANCH_OWNS and {r["name"] for r in view["bookings"]} == {"Caller", None}


def test_a_branch_restarted_during_a_cut_still_sells_its_day_and_shows_the_centres_bookings(  # type: ignore
        tmp_path, make_hub, postgres_db) -> None:
    clock = tmp_path / "clock"
    write_clock_file(clock, D0)
    env = {CLOCK_ENV: str(clock)}
    centre_port = free_port()
    relay = Relay(centre_port)
    sites = {"north": calendar_site(tmp_path, "north", "Nordby Bibliotek", f"http://127.0.0.1:{relay.port}")}
    config = write_centre_config(tmp_path / "centre.toml", postgres_db, sites, languages=("en", "da"))
    centre = CentralProcess(config, port=centre_port, env=env).start()
    hub = make_hub(tmp_path / "north", site=sites["north"][1], env=env).start()
    try:
        account(centre.url, "nordby", ["north"])
        today, d2 = D0.date().isoformat(), (D0 + timedelta(days=2)).date().isoformat()
        wait_until(lambda: requests.get(f"{hub.url}/api/v1/health", timeout=5).json()["calendar"]["state"] == "owner",
                   "north took today over (open round the clock: at once)", timeout=30)
        overview = requests.get(f"{centre.url}/api/v1/branches", headers=ADMIN, timeout=10).json()["branches"]
        assert overview[0]["calendar"]["state"] == "handed_over", overview[0]["calendar"]

        # Centre staff book for a caller two days ahead: name, phone and a note only staff see.
        staff = signed_in(centre.url, "nordby")
        day_page = staff.get(f"{centre.url}/calendar/north", params={"day": d2, "service": "bibliotekar"}, timeout=10)
        assert day_page.status_code == 200 and day_page.headers["cache-control"] == "no-store"
        start = (D0 + timedelta(days=2)).replace(hour=10).isoformat(timespec="minutes")
        assert f'value="{start}"' in day_page.text
        made = staff.post(f"{centre.url}/calendar/north/book?lang=en", timeout=10, allow_redirects=False, data={
            "csrf": form_csrf(day_page.text), "idem": uuid.uuid4().hex, "service": "bibliotekar", "day": d2,
            "slots": "1", "start": start, "name": "Karen Blixen", "phone": "+45 33 44 55 66",
            "note": "Needs a hearing loop"})
        assert made.status_code == 303, made.text
        assert "Karen" not in made.headers["location"] and "+45" not in made.headers["location"]
        done = staff.get(centre.url + made.headers["location"], timeout=10)
        code = re.search(r'<strong class="code">([A-Z0-9-]+)</strong>', done.text)
        assert code, done.text
        code_plain = code.group(1).replace("-", "")
        assert centre_row(postgres_db, code_plain)[:6] == (
            "booked", datetime.fromisoformat(start), "Karen Blixen", "+45 33 44 55 66", "Needs a hearing loop",
            "staff")

        # The branch's staff see it on that day beside their own, marked as the centre's.
        wait_until(lambda: any(b["code"] == code_plain for b in branch_day(hub, d2)),
                   "the centre's booking on the branch's staff answer", timeout=30)
        seen = next(b for b in branch_day(hub, d2) if b["code"] == code_plain)
        assert (seen["side"], seen["name"], seen["phone"], seen["note"]) == (
            "centre", "Karen Blixen", "+45 33 44 55 66", "Needs a hearing loop")
        public = requests.get(f"{hub.url}/api/v1/bookings", params={"day": d2}, timeout=10).json()["bookings"]
        assert public and "Karen" not in str(public) and code_plain not in str(public)  # only times to others

        # The WAN cut, then the hub restarted while it lasts.
        relay.cut()
        hub.stop()
        hub.start()
        wait_until(lambda: requests.get(f"{hub.url}/api/v1/health", timeout=5).json()["calendar"]["state"]
                   == "unreachable", "the restarted hub cannot reach the centre", timeout=30)
        # It still owns today (kept in its store): its own page offers today's times and sells one.
        slots = requests.get(f"{hub.url}/api/v1/public/slots", params={"service": "bibliotekar", "day": today},
                             timeout=10).json()
        assert today in slots["days"] and slots["slots"], slots
        later = D0.replace(hour=15)
        sold = requests.post(f"{hub.url}/api/v1/public/bookings", json={
            "service": "bibliotekar", "start": later.isoformat(), "name": "Offline Olga"},
            headers={"Idempotency-Key": uuid.uuid4().hex}, timeout=10)
        assert sold.status_code == 201, sold.text
        # ... and its staff still see the centre's booking of D+2, from the copy in its store.
        kept = [b for b in branch_day(hub, d2) if b.get("side") == "centre"]
        assert [(b["code"], b["name"], b["note"]) for b in kept] == [
            (code_plain, "Karen Blixen", "Needs a hearing loop")]
        with sqlite3.connect(f"file:{hub.data_dir / 'hub.sqlite3'}?mode=ro", uri=True) as db:
            assert db.execute("SELECT day FROM booking_owned_days").fetchall() == [(today,)]

        # Mended; then D+2 comes: the branch takes it over with the centre's booking — its note and origin too.
        relay.mend()
        wait_until(lambda: requests.get(f"{hub.url}/api/v1/health", timeout=5).json()["calendar"]["state"]
                   == "owner", "north hears the centre again", timeout=30)
        write_clock_file(clock, (D0 + timedelta(days=2)).replace(hour=7))
        wait_until(lambda: requests.get(f"{hub.url}/api/v1/health", timeout=5).json()["calendar"] == {
            "state": "owner", "day": d2, "error": None}, "north took D+2 over", timeout=30)
        own = [b for b in branch_day(hub, d2) if b["code"] == code_plain]
        assert [(b.get("side"), b["name"], b["note"], b["origin"]) for b in own] == [
            (None, "Karen Blixen", "Needs a hearing loop", "staff")]  # the branch's own now, not the copy's
        # The caller rings the centre to cancel: a forged form changes nothing, the real one reaches the branch.
        booking_id = seen["id"]
        cancel_page = staff.get(f"{centre.url}/calendar/north/cancel/{booking_id}", timeout=10)
        assert cancel_page.status_code == 200 and "Karen Blixen" in cancel_page.text
        forged = staff.post(f"{centre.url}/calendar/north/cancel/{booking_id}", data={"csrf": "forged"}, timeout=10)
        assert forged.status_code == 403 and centre_row(postgres_db, code_plain)[0] == "booked"
        cancelled = staff.post(f"{centre.url}/calendar/north/cancel/{booking_id}",
                               data={"csrf": form_csrf(cancel_page.text)}, timeout=10, allow_redirects=False)
        assert cancelled.status_code == 303 and centre_row(postgres_db, code_plain)[0] == "cancelled"
        wait_until(lambda: [b["status"] for b in branch_day(hub, d2) if b["code"] == code_plain] == ["cancelled"],
                   "the cancellation at the branch (the handover's next answer)", timeout=30)
    finally:
        hub.stop()
        centre.stop()


@pytest.mark.browser
def test_centre_staff_calendar_in_chromium(tmp_path, make_hub, postgres_db, browser) -> None:  # type: ignore
    """A person at the centre: the overview's handover lines, a branch's day, book for a caller (the centre's places
    only), a refusal in words with the details kept, move, cancel; Danish; axe-core finds nothing; the personal
    fields never in an address; another branch's staff are not let in."""
    from toolkit.accessibility import DESKTOP, PHONE, assert_accessible

    clock = tmp_path / "clock"
    write_clock_file(clock, D0)
    env = {CLOCK_ENV: str(clock)}
    centre_port = free_port()
    north = calendar_site(tmp_path, "north", "Nordby Bibliotek", f"http://127.0.0.1:{centre_port}")
    with_reserve(north[1])
    south = calendar_site(tmp_path, "south", "Sydby Bibliotek", f"http://127.0.0.1:{centre_port}")
    config = write_centre_config(tmp_path / "centre.toml", postgres_db, {"north": north, "south": south},
                                 languages=("en", "da", "sv", "fi", "nl"))
    centre = CentralProcess(config, port=centre_port, env=env).start()
    hub = make_hub(tmp_path / "north", site=north[1], env=env).start()  # south never comes: unreachable
    shots = Path(os.environ.get(SHOTS_ENV) or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    try:
        account(centre.url, "kommune", [])
        account(centre.url, "sydby", ["south"])
        d1 = (D0 + timedelta(days=1)).date().isoformat()
        wait_until(lambda: requests.get(f"{hub.url}/api/v1/health", timeout=5).json()["calendar"]["state"] == "owner",
                   "north took today over", timeout=30)
        context = browser.new_context(viewport=DESKTOP, locale="en-GB")
        page = context.new_page()
        addresses: list[str] = []
        page.on("request", lambda r: addresses.append(r.url))
        page.goto(f"{centre.url}/login?lang=en")
        page.fill("#username", "kommune")
        page.fill("#password", "kommune-kodeord-1")
        page.click("button[type=submit]")
        page.wait_for_selector("h2")
        # The overview: north handed today over at 07:00 (the clock's), south cannot be reached.
        assert page.locator("[data-handover=handed_over]").inner_text().startswith(
            "handed over to the branch at 07:00")
        assert page.locator("[data-handover=unreachable]").inner_text().startswith(
            "the branch cannot be reached: the centre is not selling today's times")
        assert_accessible(page, "the overview with the handover lines")
        page.screenshot(path=str(shots / "staffcal-overview-en.png"), full_page=True)

        # Today at north is the branch's: said plainly, nothing to book here.
        page.locator("[data-handover=handed_over] a").click()
        assert "Nordby Bibliotek has taken this day over" in page.inner_text("main")
        assert page.locator("form.book").count() == 0
        assert_accessible(page, "a day the branch has taken over")

        # Tomorrow: borgerservice keeps one of its two places for walk-ins, so the centre's staff sell one.
        page.get_by_role("link", name="Next day ›").click()
        page.get_by_role("link", name="Citizen service").click()
        assert "The walk-in places of Nordby Bibliotek are not booked here" in page.inner_text("main")
        page.get_by_label("10:00", exact=True).check()
        page.get_by_label("Name").fill("Ada Lovelace")
        page.get_by_label("Phone").fill("+45 12 34 56 78")
        page.get_by_label("Note").fill("Wheelchair")
        page.get_by_role("button", name="Book", exact=True).click()
        box = page.locator("p.good")
        assert box.inner_text().startswith("Booked 10:00. Code:"), box.inner_text()
        code = page.locator("p.good strong.code").inner_text().replace("-", "")
        row = page.locator(f"tr:has-text('{code[:3]}-{code[3:]}')")
        assert "Ada Lovelace" in row.inner_text() and "Wheelchair" in row.inner_text()
        assert_accessible(page, "the day with a booking just made")
        page.screenshot(path=str(shots / "staffcal-day-en.png"), full_page=True)
        # The one place the centre owns at 10:00 is gone: 10:00 is no longer offered (the reserve is the branch's).
        assert page.get_by_label("10:00", exact=True).count() == 0
        assert centre_book(centre.url, "north", "borgerservice", D0.replace(hour=10) + timedelta(days=1),
                           name="X", phone="+45 87 65 43 21").json()["error"]["code"] == "full"

        # A time another took meanwhile: refused in words, the caller's details kept, nothing booked.
        page.get_by_label("10:30", exact=True).check()
        page.get_by_label("Name").fill("Grace Hopper")
        page.get_by_label("Phone").fill("+45 22 33 44 55")
        taken = centre_book(centre.url, "north", "borgerservice", D0.replace(hour=10, minute=30) + timedelta(days=1),
                            name="Quick", phone="+45 99 88 77 66")
        assert taken.status_code == 201, taken.text
        page.get_by_role("button", name="Book", exact=True).click()
        assert page.locator("[role=alert]").inner_text() == "That time is fully booked. Choose another time."
        assert page.get_by_label("Name").input_value() == "Grace Hopper"
        assert_accessible(page, "a refusal with the details kept")
        page.screenshot(path=str(shots / "staffcal-refused-en.png"), full_page=True)

        # Move Ada's booking to 11:00 the same day, then cancel it.
        with page.expect_navigation():  # axe must not run on the page being left
            page.get_by_role("link", name="Move: Citizen service 10:00").click()
        assert_accessible(page, "the move page")
        page.get_by_label("11:00", exact=True).check()
        page.get_by_role("button", name="Move here").click()
        assert page.locator("p.good").inner_text() == "Moved to 11:00."
        with psycopg.connect(postgres_db) as db:
            start_at, status = db.execute("SELECT start_at, status FROM calendar_bookings WHERE code = %s",
                                          (code,)).fetchone()
        assert (start_at, status) == (D0.replace(hour=11) + timedelta(days=1), "booked")
        # The branch's staff answer has it too, at its new time (the centre's copy of later days).
        wait_until(lambda: [b["start"][11:16] for b in branch_day(hub, d1) if b.get("code") == code] == ["11:00"],
                   "the moved booking at the branch", timeout=30)
        # ... and its staff page shows it on that day, with the caller's details, to be changed at the centre.
        desk = context.new_page()
        desk.goto(f"{hub.url}/staff/login?lang=en")
        desk.fill("#username", "demo")
        desk.fill("#password", "demo-staff-password")
        desk.click("button[type=submit]")
        desk.wait_for_url(f"{hub.url}/staff/")
        desk.fill("#bookings-day", d1)
        desk.dispatch_event("#bookings-day", "change")
        card = desk.locator(f"li[data-booking]:has-text('{code[:3]}-{code[3:]}')")
        card.locator("[data-testid=booking-centre]").wait_for()
        assert "Ada Lovelace" in card.inner_text() and "Wheelchair" in card.inner_text()
        assert "Booked at the centre – Move or cancel it on the centre's calendar." in card.inner_text()
        assert card.locator("[data-testid=booking-move]").count() == 0
        assert desk.locator("[data-testid=centre-as-of]").inner_text().startswith("The centre's bookings as of")
        assert_accessible(desk, "the branch's staff page with a centre booking")
        desk.screenshot(path=str(shots / "staffcal-branch-staff-en.png"), full_page=True)
        desk.close()
        page.get_by_role("link", name="Cancel booking: Citizen service 11:00").click()
        assert "Ada Lovelace" in page.inner_text("main")
        assert_accessible(page, "the cancel page")
        page.get_by_role("button", name="Yes, cancel").click()
        assert page.locator("p.good").inner_text() == "Booking cancelled"
        with psycopg.connect(postgres_db) as db:
            assert db.execute("SELECT status FROM calendar_bookings WHERE code = %s", (code,)).fetchone() == (
                "cancelled",)

        # Danish, from the catalogs; CSRF; no personal field in any address the browser asked for.
        page.goto(f"{centre.url}/calendar/north?day={d1}&lang=da")
        assert page.inner_text("h1") == "Kalender: Nordby Bibliotek"
        assert page.get_by_role("heading", name="Bestil tid for en borger").count() == 1
        assert_accessible(page, "the calendar in Danish")
        page.screenshot(path=str(shots / "staffcal-day-da.png"), full_page=True)
        page.set_viewport_size(PHONE)  # a phone: the table scrolls in its own region, the page does not
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
        assert_accessible(page, "the calendar at phone size")
        page.screenshot(path=str(shots / "staffcal-day-da-phone.png"), full_page=True)
        forged = context.request.post(f"{centre.url}/calendar/north/book?lang=en", form={
            "csrf": "forged", "idem": uuid.uuid4().hex, "service": "bibliotekar", "day": d1,
            "start": (D0 + timedelta(days=1)).replace(hour=14).isoformat(timespec="minutes"), "name": "Mallory"},
            max_redirects=0)
        assert forged.status == 403
        with psycopg.connect(postgres_db) as db:
            assert db.execute("SELECT count(*) FROM calendar_bookings WHERE name = 'Mallory'").fetchone() == (0,)
        for url in addresses:
            assert not any(p in url for p in ("Ada", "Lovelace", "Grace", "12%2034", "Wheelchair")), url
        context.close()

        # Another branch's staff are not let into north's calendar.
        other = signed_in(centre.url, "sydby")
        assert other.get(f"{centre.url}/calendar/north", timeout=10).status_code == 404
        assert other.get(f"{centre.url}/calendar/south", timeout=10).status_code == 200
        assert requests.get(f"{centre.url}/calendar/north", timeout=10, allow_redirects=False).status_code == 303
    finally:
        hub.stop()
        centre.stop()
