"""The public booking page (/book/) and its API against a real hub (uvicorn in this process, a real broker): a
citizen books with the least data the service asks for, gets a code, a QR and a calendar file, moves and cancels
by the code; the site config's online rules (windows, walk-in reserve, one per person a day) and the abuse
limits (CSRF, an idempotency key per form, bookings per address, code look-ups through the code guard).

The in-process hub's clock is Monday 2026-11-23 10:30 in Copenhagen (``OPEN_MONDAY``), running at real speed.
"""

from __future__ import annotations

import os
import re
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import icalendar
import pytest

from server.bookings.public import LOCALE_DIR, MSGIDS
from server.bookings.settings import parse_settings
from server.config import ConfigError, parse_config
from toolkit.hub_in_process import RunningHub
from vuoro.i18n import untranslated

TZ = ZoneInfo("Europe/Copenhagen")


def client(hub: RunningHub) -> httpx.Client:
    return httpx.Client(base_url=hub.url, follow_redirects=False, timeout=10)


def form_fields(html: str) -> dict[str, str]:
    return dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', html))


def first_time(html: str) -> str:
    found = re.search(r'name="start" id="t0" value="([^"]+)"', html)
    assert found, html[:3000]
    return found.group(1)


def book_on_page(c: httpx.Client, service: str, **details: str) -> httpx.Response:
    page = c.get(f"/book/sonderbro/{service}/")
    assert page.status_code == 200
    fields = form_fields(page.text)
    return c.post(f"/book/sonderbro/{service}/", data={**fields, "start": first_time(page.text), **details})


def test_every_word_of_the_booking_page_is_translated_in_every_language() -> None:
    for lang in ("da", "sv", "fi", "nl"):
        assert untranslated(LOCALE_DIR, lang, list(MSGIDS)) == [], lang


def test_the_online_rules_are_checked_with_their_key_paths(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import tomllib

    from server.config import SAMPLE_SITE

    data = tomllib.loads(SAMPLE_SITE.read_text(encoding="utf-8"))
    data["services"]["bibliotekar"]["booking"]["online"] = {"asks": ["name", "passport"], "opens_at": "8",
                                                            "reserve": -1, "colour": "red"}
    with pytest.raises(ConfigError) as failed:
        parse_settings(parse_config(data, tmp_path / "site.toml"))
    text = "\n".join(failed.value.problems)
    for path in ("services.bibliotekar.booking.online.asks", "services.bibliotekar.booking.online.opens_at",
                 "services.bibliotekar.booking.online.reserve", "services.bibliotekar.booking.online.colour"):
        assert path in text, text


def test_a_citizen_books_with_only_a_name_gets_a_code_a_qr_and_a_calendar_file(hub_in_process: RunningHub) -> None:
    with client(hub_in_process) as c:
        start_page = c.get("/book/?lang=en")
        assert "/book/sonderbro/bibliotekar/" in start_page.text and "/book/sonderbro/kvik/" not in start_page.text
        page = c.get("/book/sonderbro/bibliotekar/")
        assert page.status_code == 200
        assert 'name="phone"' not in page.text and 'name="name"' in page.text  # a name only: what it asks
        made = book_on_page(c, "bibliotekar", name="Aino Virtanen", phone="+45 11 22 33 44")
        assert made.status_code == 303, made.text
        where = made.headers["location"]
        code = re.fullmatch(r"/book/b/([A-Z2-9]{6})\?new=1", where).group(1)  # type: ignore[union-attr]
        assert "Aino" not in where
        shown = c.get(where)
        assert f"{code[:3]}-{code[3:]}" in shown.text and "<svg" in shown.text and 'role="img"' in shown.text
        booking = hub_in_process.app.state.bookings.find_online(code)
        assert (booking.name, booking.phone, booking.email, booking.origin) == ("Aino Virtanen", None, None, "web")
        ics = c.get(f"/book/b/{code}/calendar.ics")
        assert ics.headers["content-type"].startswith("text/calendar") and "\r\n" in ics.text
        event = next(iter(icalendar.Calendar.from_ical(ics.text).walk("VEVENT")))
        assert event.decoded("dtstart").astimezone(TZ) == booking.start.astimezone(TZ)
        assert event.decoded("dtend") - event.decoded("dtstart") == booking.end - booking.start


def test_a_double_submit_books_once_and_a_form_without_its_token_books_nothing(hub_in_process: RunningHub) -> None:
    with client(hub_in_process) as c:
        page = c.get("/book/sonderbro/bibliotekar/")
        data = {**form_fields(page.text), "start": first_time(page.text), "name": "Per"}
        first, second = c.post("/book/sonderbro/bibliotekar/", data=data), \
            c.post("/book/sonderbro/bibliotekar/", data=data)
        assert first.status_code == second.status_code == 303
        assert first.headers["location"] == second.headers["location"]
        forged = c.post("/book/sonderbro/bibliotekar/", data={**data, "csrf": "x" * 32, "idem": uuid.uuid4().hex})
        assert forged.status_code == 403 and "Formularen var udløbet" in forged.text  # the site's first language
        other_site = c.post("/book/sonderbro/bibliotekar/", data={**data, "idem": uuid.uuid4().hex},
                            headers={"Origin": "https://evil.example"})
        assert other_site.status_code == 403


def test_a_citizen_moves_and_cancels_by_the_code_and_the_time_is_free_again(hub_in_process: RunningHub) -> None:
    with client(hub_in_process) as c:
        made = book_on_page(c, "bibliotekar", name="Per")
        code = made.headers["location"].split("/")[-1].split("?")[0]
        first = hub_in_process.app.state.bookings.find_online(code).start
        move = c.get(f"/book/b/{code}/move")
        assert move.status_code == 200
        assert first.astimezone(TZ).isoformat(timespec="minutes") not in move.text  # its own time is not offered
        new = re.findall(r'name="start" id="t\d+" value="([^"]+)"', move.text)[3]
        moved = c.post(f"/book/b/{code}/move", data={**form_fields(move.text), "start": new})
        assert moved.status_code == 303, moved.text
        assert hub_in_process.app.state.bookings.find_online(code).start == datetime.fromisoformat(new)
        confirm = c.get(f"/book/b/{code}/cancel")
        gone = c.post(f"/book/b/{code}/cancel", data=form_fields(confirm.text))
        assert gone.status_code == 303
        assert hub_in_process.app.state.bookings.find_online(code).status == "cancelled"
        again = c.get("/book/sonderbro/bibliotekar/", params={"day": new[:10]})
        assert f'value="{new}"' in again.text  # the place is free for someone else


def test_a_service_that_asks_for_a_phone_says_why_and_keeps_one_booking_per_phone_a_day(
        hub_in_process: RunningHub) -> None:
    with client(hub_in_process) as c:
        page = c.get("/book/sonderbro/borgerservice/?lang=en")
        assert 'name="phone"' in page.text and "Why we ask" in page.text
        missing = book_on_page(c, "borgerservice", name="Mette")
        assert missing.status_code == 422 and "Please fill in: Phone" in missing.text
        assert book_on_page(c, "borgerservice", name="Mette", phone="+45 20 30 40 50").status_code == 303
        twice = book_on_page(c, "borgerservice", name="Mette", phone="20304050")
        assert twice.status_code == 409 and "already have a booking" in twice.text
        assert "<title>There is a problem: Citizen service" in twice.text  # read first by a screen reader
        # nor by moving another booking of the same phone onto that day
        other = c.post("/api/v1/public/bookings", headers={"Idempotency-Key": uuid.uuid4().hex}, json={
            "service": "borgerservice", "start": "2026-11-24T12:00", "name": "Mette", "phone": "+4520304050"})
        assert other.status_code == 201
        move = c.get(f"/book/b/{other.json()['code']}/move", params={"day": "2026-11-23"})
        refused = c.post(f"/book/b/{other.json()['code']}/move",
                         data={**form_fields(move.text), "start": first_time(move.text)})
        assert refused.status_code == 409 and "already have a booking" in refused.text


def test_the_api_books_once_per_key_and_refuses_times_outside_the_windows(hub_in_process: RunningHub) -> None:
    with client(hub_in_process) as c:
        listing = c.get("/api/v1/public/slots", params={"service": "bibliotekar"}).json()
        now = hub_in_process.hub.clock()
        first = datetime.fromisoformat(listing["slots"][0]["start"])
        assert (first - now).total_seconds() >= 30 * 60  # until_min = 30: not later than 30 minutes ahead
        # days_ahead = 14: today and the 13 days after, only those a librarian takes bookings on (Mon–Fri)
        assert listing["days"][0] == "2026-11-23" and listing["days"][-1] == "2026-12-04"
        assert len(listing["days"]) == 10
        key = {"Idempotency-Key": uuid.uuid4().hex}
        body = {"service": "bibliotekar", "start": listing["slots"][0]["start"], "name": "Ole"}
        made, again = c.post("/api/v1/public/bookings", json=body, headers=key), \
            c.post("/api/v1/public/bookings", json=body, headers=key)
        assert (made.status_code, again.status_code) == (201, 200) and made.json()["code"] == again.json()["code"]
        soon = c.post("/api/v1/public/bookings", json={**body, "start": "2026-11-23T10:45"},
                      headers={"Idempotency-Key": uuid.uuid4().hex})
        assert soon.status_code == 409 and soon.json()["error"]["code"] == "too_soon"
        far = c.post("/api/v1/public/bookings", json={**body, "start": "2026-12-21T10:00"},
                     headers={"Idempotency-Key": uuid.uuid4().hex})
        assert far.status_code == 409 and far.json()["error"]["code"] == "not_open_yet"
        assert "name" not in made.json() and "phone" not in made.json()


def test_wrong_codes_from_one_address_are_slowed_down(hub_in_process: RunningHub) -> None:
    with client(hub_in_process) as c:
        answers = [c.get("/book/b/ABCDEF"[:-1] + letter) for letter in "ABCDEFGH"]
        assert [a.status_code for a in answers[:6]] == [404] * 6
        assert answers[-1].status_code == 429 and answers[-1].headers["retry-after"]


def test_pages_are_small_and_load_nothing_from_elsewhere(hub_in_process: RunningHub) -> None:
    with client(hub_in_process) as c:
        page = c.get("/book/sonderbro/bibliotekar/")
        css = c.get("/book/book.css")
        assert len(page.content) + len(css.content) < 100_000
        assert "http" not in re.sub(r'(href|action)="/[^"]*"', "", page.text).split("<main", 1)[1]
        assert "<script" not in page.text



# -- in the real browser ------------------------------------------------------------------------------------------


def shots_dir(tmp_path: Any) -> Path:
    """Screenshots go to ``$VUORO_BOOK_SCREENSHOTS`` when set (docs/screenshots/book), else to a temporary folder."""
    folder = Path(os.environ.get("VUORO_BOOK_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.mark.browser
@pytest.mark.parametrize("lang", ["da", "fi"])
def test_the_whole_citizen_path_in_the_browser_at_phone_size_with_no_axe_violations(
        hub_in_process: RunningHub, browser: Any, lang: str, tmp_path: Any) -> None:
    from playwright.sync_api import expect

    from toolkit.accessibility import DESKTOP, PHONE, assert_accessible

    folder = shots_dir(tmp_path)
    url = hub_in_process.url
    for size_name, size in (("phone", PHONE), ("desktop", DESKTOP)):
        context = browser.new_context(viewport=size, locale={"da": "da-DK", "fi": "fi-FI"}[lang])
        page = context.new_page()
        outside: list[str] = []
        page.on("request", lambda r, seen=outside: seen.append(r.url) if not r.url.startswith(url) else None)
        page.goto(url + "/book/")  # the browser's language (Accept-Language) chooses the page's
        assert page.evaluate("document.documentElement.lang") == lang
        assert_accessible(page, f"the booking start page, {lang}, {size_name}")
        page.screenshot(path=str(folder / f"start-{lang}-{size_name}.png"), full_page=True)
        page.click("a.choice[href$='/borgerservice/']")
        expect(page.locator("h1")).to_have_text(hub_in_process.config.services["borgerservice"].name(lang))
        assert_accessible(page, f"the free times, {lang}, {size_name}")
        # a double (30-minute) time: the length links keep only the times with the next slot free too
        page.click(".length li:nth-child(2) a")
        expect(page.locator(".length a[aria-current]")).to_contain_text("30")
        page.locator(".times input").nth(2).check()
        page.fill("#f-name", "Mette Hansen")
        page.screenshot(path=str(folder / f"times-{lang}-{size_name}.png"), full_page=True)
        page.click("form.book button[type=submit]")  # no phone: refused in words, the name and time kept
        # (the browser's own check stops an empty required field first; typing a wrong number reaches the hub)
        page.fill("#f-phone", "nope")
        page.click("form.book button[type=submit]")
        expect(page.locator("#problem")).to_be_visible()
        assert page.input_value("#f-name") == "Mette Hansen"
        assert_accessible(page, f"the form with a problem, {lang}, {size_name}")
        page.fill("#f-phone", "+45 20 30 40 " + ("50" if size_name == "phone" else "51"))
        page.locator(".times input").nth(2).check()
        page.click("form.book button[type=submit]")
        page.wait_for_url(re.compile(r".*/book/b/[A-Z2-9]{6}\?new=1"))
        expect(page.locator(".summary .code")).to_have_text(re.compile(r"^[A-Z2-9]{3}-[A-Z2-9]{3}$"))
        expect(page.locator("svg.qr")).to_be_visible()
        assert_accessible(page, f"the booking, {lang}, {size_name}")
        page.screenshot(path=str(folder / f"booking-{lang}-{size_name}.png"), full_page=True)
        with page.expect_navigation():  # axe must not run on the page being left
            page.click("a[href$='/move']")
        assert_accessible(page, f"moving the booking, {lang}, {size_name}")
        page.go_back()
        with page.expect_navigation():  # axe must not run on the page being left
            page.click("a[href$='/cancel']")
        assert_accessible(page, f"cancelling, {lang}, {size_name}")
        page.click("form button[type=submit]")
        expect(page.locator(".done")).to_be_visible()
        assert_accessible(page, f"the cancelled booking, {lang}, {size_name}")
        assert outside == [], outside  # no third-party scripts, fonts or images
        context.close()


@pytest.mark.browser
def test_a_citizen_books_with_the_keyboard_alone(hub_in_process: RunningHub, browser: Any) -> None:
    """Tab to the service, to a time (arrow keys move within the radio group), to the name, Enter books."""
    from playwright.sync_api import expect

    page = browser.new_context(viewport={"width": 390, "height": 844}).new_page()
    page.goto(hub_in_process.url + "/book/?lang=en")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.className") == "skip"
    for _ in range(12):
        page.keyboard.press("Tab")
        if "bibliotekar" in (page.evaluate("document.activeElement.getAttribute('href')") or ""):
            break
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r".*/bibliotekar/"))
    page.focus("#t0")
    page.keyboard.press("ArrowRight")  # the radio group: the next time
    assert page.evaluate("document.activeElement.id") == "t1"
    assert page.is_checked("#t1")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "f-name"
    page.keyboard.type("Kim")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r".*/book/b/[A-Z2-9]{6}\?new=1"))
    expect(page.locator("[role=status]")).to_contain_text("You have booked a time.")


def test_a_store_of_last_week_takes_web_bookings_with_its_bookings_and_places_kept(tmp_path: Path) -> None:
    """The bookings schema's step 2 rebuilds the table (origin 'web', an e-mail column) and keeps every row and
    slot place of step 1 (dropping the table must not cascade into the places)."""
    import sqlite3

    from server.bookings.records import SCHEMA
    from server.store import SQLiteStore

    store = SQLiteStore(tmp_path / "hub.sqlite3", "sonderbro")
    store.migrate_plugin("bookings", SCHEMA[:1])
    store.db.execute("INSERT INTO bookings (id, site, code, service, start, \"end\", day, status, origin, name, "
                     "created_at) VALUES ('b1', 'sonderbro', 'ABCDEF', 'bibliotekar', '2026-11-23T09:00:00Z', "
                     "'2026-11-23T09:15:00Z', '2026-11-23', 'booked', 'staff', 'Jens', '2026-11-20T09:00:00Z')")
    store.db.execute("INSERT INTO booking_claims VALUES ('sonderbro', 'bibliotekar', '2026-11-23T09:00:00Z', 1, 'b1')")
    store.db.commit()
    store.migrate_plugin("bookings", SCHEMA)
    assert store.db.execute("SELECT name, email FROM bookings WHERE id = 'b1'").fetchone() == ("Jens", None)
    assert store.db.execute("SELECT booking_id FROM booking_claims").fetchall() == [("b1",)]
    store.db.execute("INSERT INTO bookings (id, site, code, service, start, \"end\", day, status, origin, email, "
                     "created_at) VALUES ('b2', 'sonderbro', 'BCDEFG', 'bibliotekar', '2026-11-24T09:00:00Z', "
                     "'2026-11-24T09:15:00Z', '2026-11-24', 'booked', 'web', 'a@b.dk', '2026-11-20T09:00:00Z')")
    with pytest.raises(sqlite3.IntegrityError):  # the claims still belong to their bookings
        store.db.execute("INSERT INTO booking_claims VALUES ('sonderbro', 'bibliotekar', 'x', 1, 'nobody')")
    assert store.db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    assert store.db.execute("PRAGMA foreign_key_check").fetchall() == []


def test_one_address_may_make_twenty_bookings_at_once_then_is_told_to_wait(hub_in_process: RunningHub) -> None:
    with client(hub_in_process) as c:
        starts = [s["start"] for s in c.get("/api/v1/public/slots", params={"service": "bibliotekar",
                                                                              "day": "2026-11-24"}).json()["slots"]]

        def book(start: str) -> httpx.Response:
            return c.post("/api/v1/public/bookings", json={"service": "bibliotekar", "start": start, "name": "Bot"},
                          headers={"Idempotency-Key": uuid.uuid4().hex})

        assert book(starts[0]).status_code == 201
        assert book(starts[0]).status_code == 409  # full: a refusal costs nothing of the allowance
        answers = [book(start) for start in starts[1:21]]
        assert [a.status_code for a in answers[:19]] == [201] * 19  # [bookings] online_burst = 20 (default)
        assert answers[19].status_code == 429 and answers[19].json()["error"]["code"] == "slow_down"
        assert int(answers[19].headers["retry-after"]) > 0


def test_the_purge_empties_a_web_bookings_email_with_its_name_and_phone(tmp_path: Path) -> None:
    from server.bookings.records import SCHEMA, PurgePersonalData, write_purge
    from server.store import SQLiteStore

    store = SQLiteStore(tmp_path / "hub.sqlite3", "sonderbro")
    store.migrate_plugin("bookings", SCHEMA)
    store.db.execute("INSERT INTO bookings (id, site, code, service, start, \"end\", day, status, origin, name, "
                     "phone, email, created_at) VALUES ('b1', 'sonderbro', 'ABCDEF', 'bibliotekar', "
                     "'2026-10-01T09:00:00Z', '2026-10-01T09:15:00Z', '2026-10-01', 'no_show', 'web', 'Aino', "
                     "'+4520304050', 'aino@example.dk', '2026-09-30T09:00:00Z')")
    write_purge(store.db, PurgePersonalData("sonderbro", "2026-10-31"))
    assert store.db.execute("SELECT name, phone, email, start FROM bookings").fetchone() == \
        (None, None, None, "2026-10-01T09:00:00Z")  # the time is kept for statistics


def test_the_walk_in_reserve_is_never_booked_online_but_the_kiosk_may_take_it(live_broker: Any,
                                                                               tmp_path: Path) -> None:
    import tomllib

    from server.config import SAMPLE_SITE
    from toolkit.hub_in_process import DEMO_STAFF_BLOCK, running_hub

    data = tomllib.loads(SAMPLE_SITE.read_text(encoding="utf-8"))
    data["hub"]["broker"] = live_broker.url
    data["hub"]["database"] = f"sqlite:///{tmp_path / 'hub.sqlite3'}"
    data["staff"] = DEMO_STAFF_BLOCK
    data["services"]["borgerservice"]["booking"]["online"] = {"asks": [], "reserve": 1}  # of 2 places on Mondays
    with running_hub(parse_config(data, tmp_path / "site.toml")) as hub, client(hub) as c:
        free = c.get("/api/v1/public/slots", params={"service": "borgerservice", "day": "2026-11-23"}).json()
        slot = free["slots"][0]
        assert slot["free"] == 1  # two staff, one place kept for walk-ins
        made = c.post("/api/v1/public/bookings", json={"service": "borgerservice", "start": slot["start"]},
                      headers={"Idempotency-Key": uuid.uuid4().hex})
        assert made.status_code == 201, made.text
        again = c.post("/api/v1/public/bookings", json={"service": "borgerservice", "start": slot["start"]},
                       headers={"Idempotency-Key": uuid.uuid4().hex})
        assert again.status_code == 409 and again.json()["error"]["code"] == "full"
        after = c.get("/api/v1/public/slots", params={"service": "borgerservice", "day": "2026-11-23"}).json()
        assert slot["start"] not in [s["start"] for s in after["slots"]]
        kiosk = c.post("/api/v1/bookings/self", json={"service": "borgerservice", "start": slot["start"]},
                       headers={"Authorization": "Bearer demo-kiosk1-token-change-me",
                                "Idempotency-Key": uuid.uuid4().hex})
        assert kiosk.status_code == 201, kiosk.text  # the reserved place, at the kiosk in the house
