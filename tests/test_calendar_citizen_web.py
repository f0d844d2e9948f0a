"""The citizen's whole path on the municipality's booking page (the centre's ``/book/``), in the real browser.

The real ``vuoro central`` process over a private PostgreSQL, two branches with the sample site's real opening
hours and services (not the round-the-clock test site), the centre's clock set in the site's zone while the tests
run on UTC. In Danish and in Finnish, at phone size and on a desktop: choose a branch's service, a day and a
double time, a refusal in words with what was typed kept, the booking with its code and QR, move, cancel — with
axe-core finding no violation on any page, nothing loaded from elsewhere, and no name or phone in any address
the browser asked for. Screenshots go to ``$VUORO_SCREENSHOTS`` (``docs/screenshots/central``) when set.
"""

from __future__ import annotations

import os
import re
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
import pytest

from tests.test_calendar_e2e import calendar_site
from toolkit.broker import free_port
from toolkit.central_process import CentralProcess, write_centre_config
from vuoro.clock import ENV as CLOCK_ENV
from vuoro.clock import write_clock_file

SAMPLE = Path(__file__).resolve().parent.parent / "server" / "sites" / "sample.toml"
TZ = ZoneInfo("Europe/Copenhagen")
NOW = datetime(2026, 12, 8, 9, 30, tzinfo=TZ)  # a Tuesday morning: citizen service is open 10–14 today
BRANCHES = {"north": "Nordby Bibliotek", "south": "Sydby Bibliotek & Borgerservice"}


@pytest.fixture
def clock(tmp_path: Path) -> Path:
    path = tmp_path / "clock"
    write_clock_file(path, NOW)
    return path


@pytest.fixture
def centre(postgres_db: str, tmp_path: Path, clock: Path) -> Any:
    port = free_port()
    sites = {bid: calendar_site(tmp_path, bid, name, f"http://127.0.0.1:{port}", base=SAMPLE)
             for bid, name in BRANCHES.items()}
    config = write_centre_config(tmp_path / "centre.toml", postgres_db, sites, name="Sønderbro Kommune")
    process = CentralProcess(config, port=port, env={CLOCK_ENV: str(clock)}).start()
    yield process
    process.stop()


def shots_dir(tmp_path: Path) -> Path:
    folder = (Path(__file__).resolve().parent.parent / "docs" / "screenshots" / "central"
              if os.environ.get("VUORO_SCREENSHOTS") else tmp_path / "shots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def booking_row(database: str, code: str) -> tuple[str, str, str, datetime, datetime, str | None, str | None]:
    with psycopg.connect(database) as db:
        row = db.execute("SELECT branch, service, status, start_at, end_at, name, phone FROM calendar_bookings "
                         "WHERE code = %s", (code,)).fetchone()
    assert row is not None, f"no booking {code} at the centre"
    return row


@pytest.mark.browser
@pytest.mark.parametrize("lang", ["da", "fi"])
def test_the_whole_citizen_path_at_the_centre_in_two_languages_with_no_axe_violations(
        centre: Any, postgres_db: str, browser: Any, lang: str, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    from toolkit.accessibility import DESKTOP, PHONE, assert_accessible

    folder = shots_dir(tmp_path)
    url = centre.url
    for size_name, size, phone in (("phone", PHONE, "+45 20 30 40 50"), ("desktop", DESKTOP, "+45 20 30 40 51")):
        context = browser.new_context(viewport=size, locale={"da": "da-DK", "fi": "fi-FI"}[lang])
        page = context.new_page()
        asked: list[str] = []
        page.on("request", lambda r, seen=asked: seen.append(r.url))
        page.goto(url + "/book/")  # the browser's language (Accept-Language) chooses the page's
        assert page.evaluate("document.documentElement.lang") == lang
        assert_accessible(page, f"the centre's start page, {lang}, {size_name}")
        page.screenshot(path=str(folder / f"book-start-{lang}-{size_name}.png"), full_page=True)
        # citizen service is served only with a booking (no ticket at the kiosk): the start page says so
        assert page.locator("a[href='/book/north/borgerservice/'] .tag").count() == 1
        assert page.locator("a[href='/book/north/bibliotekar/'] .tag").count() == 0

        with page.expect_navigation():  # axe must not run on the page being left
            page.click("a[href='/book/north/borgerservice/']")
        assert page.locator("h1").inner_text().strip() != ""
        assert "Nordby Bibliotek" in page.content()
        # The branch has never been heard from: today's times are not sold, and the page says so in its words.
        assert page.locator("[role=status], .notice").count() >= 1
        assert_accessible(page, f"the centre's free times, {lang}, {size_name}")
        if size_name == "phone":  # a week of days at a time; "Later days" reaches the last bookable one
            last = (NOW.date() + timedelta(days=27)).isoformat()  # days_ahead = 28, today the first of them
            pages = 0
            while page.locator(f"nav.days a[href*='day={last}']").count() == 0 and pages < 6:
                with page.expect_navigation():
                    page.click("nav.days a[rel=next]")
                pages += 1
            assert page.locator(f"nav.days a[href*='day={last}']").count() == 1, "the last day is out of reach"
            assert_accessible(page, f"the centre's later days, {lang}")
            with page.expect_navigation():
                page.goto(url + "/book/north/borgerservice/")
        # a double (30-minute) time: the length links keep only the times with the next slot free too
        with page.expect_navigation():
            page.click(".length li:nth-child(2) a")
        expect(page.locator(".length a[aria-current]")).to_contain_text("30")
        page.locator(".times input").nth(2).check()
        page.fill("#f-name", "Mette Hansen")
        page.fill("#f-phone", "nope")  # a wrong number: refused in words, the name kept
        page.screenshot(path=str(folder / f"book-times-{lang}-{size_name}.png"), full_page=True)
        with page.expect_navigation():
            page.click("form.book button[type=submit]")
        expect(page.locator("#problem")).to_be_visible()
        assert page.input_value("#f-name") == "Mette Hansen"
        assert_accessible(page, f"the centre's form with a problem, {lang}, {size_name}")
        page.fill("#f-phone", phone)
        page.locator(".times input").nth(2).check()
        with page.expect_navigation():
            page.click("form.book button[type=submit]")
        page.wait_for_url(re.compile(r".*/book/b/[A-Z2-9]{7}\?new=1"))
        shown = page.locator(".summary .code").inner_text()
        assert re.fullmatch(r"[A-Z2-9]{3}-[A-Z2-9]{4}", shown), shown  # the centre's 7 characters, as 7KQ-3MZA
        expect(page.locator("svg.qr")).to_be_visible()
        assert_accessible(page, f"the centre's booking, {lang}, {size_name}")
        page.screenshot(path=str(folder / f"book-done-{lang}-{size_name}.png"), full_page=True)
        code = shown.replace("-", "")
        branch, service, status, start, end, name, stored_phone = booking_row(postgres_db, code)
        assert (branch, service, status, name) == ("north", "borgerservice", "booked", "Mette Hansen")
        assert stored_phone is not None and stored_phone.replace(" ", "").endswith(phone.replace(" ", "")[-8:])
        assert (end - start).total_seconds() == 30 * 60
        assert start.astimezone(TZ).date() > NOW.date()  # not today: the branch owns or cannot sell it

        ics = context.request.get(f"{url}/book/b/{code}/calendar.ics")
        assert ics.ok and "BEGIN:VEVENT" in ics.text()

        with page.expect_navigation():
            page.click("a[href$='/move']")
        assert_accessible(page, f"the centre's move page, {lang}, {size_name}")
        page.locator(".times input").nth(4).check()
        with page.expect_navigation():
            page.click("form button[type=submit]")
        expect(page.locator("p.done")).to_be_visible()
        moved = booking_row(postgres_db, code)
        assert moved[2] == "booked" and moved[3] != start  # another time, the same code

        with page.expect_navigation():
            page.click("a[href$='/cancel']")
        assert_accessible(page, f"the centre's cancel page, {lang}, {size_name}")
        with page.expect_navigation():
            page.click("form button[type=submit]")
        expect(page.locator(".done")).to_be_visible()
        assert_accessible(page, f"the centre's cancelled booking, {lang}, {size_name}")
        assert booking_row(postgres_db, code)[2] == "cancelled"

        assert [a for a in asked if not a.startswith(url)] == []  # no third-party scripts, fonts or images
        personal = ("Mette", "Hansen", phone.replace(" ", "")[-8:], phone.replace(" ", "+"), "20%2030")
        leaked = [a for a in asked if any(p in a for p in personal)]
        assert leaked == [], leaked  # names and phones travel in POST bodies, never in an address
        context.close()


def form_fields(page: str) -> dict[str, str]:
    """The hidden fields of a booking page's form (CSRF token, idempotency key, length) and its first time."""
    fields = dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', page))
    first = re.search(r'name="start" id="t0" value="([^"]+)"', page)
    assert first is not None, "no free time on the page"
    return {**fields, "start": first.group(1)}


def test_a_form_without_its_token_or_from_another_site_books_nothing(centre: Any, postgres_db: str) -> None:
    import requests

    with requests.Session() as browser_like:
        page = browser_like.get(f"{centre.url}/book/north/bibliotekar/?lang=en", timeout=10)
        data = {**form_fields(page.text), "name": "Per"}
        forged = browser_like.post(f"{centre.url}/book/north/bibliotekar/", timeout=10,
                                   data={**data, "csrf": "x" * 32}, allow_redirects=False)
        assert forged.status_code == 403 and "The form had expired. Try again." in forged.text
        other_site = browser_like.post(f"{centre.url}/book/north/bibliotekar/", timeout=10, data=data,
                                       headers={"Origin": "https://evil.example"}, allow_redirects=False)
        assert other_site.status_code == 403
        with psycopg.connect(postgres_db) as db:
            assert db.execute("SELECT count(*) FROM calendar_bookings").fetchone() == (0,)
        made = browser_like.post(f"{centre.url}/book/north/bibliotekar/", timeout=10, data=data,
                                 allow_redirects=False)
        assert made.status_code == 303 and re.fullmatch(r"/book/b/[A-Z2-9]{7}\?new=1", made.headers["location"])


def test_wrong_codes_from_one_address_are_slowed_down_at_the_centre(centre: Any) -> None:
    """Guessing codes: after a handful of wrong ones an address is told to wait, in words, with Retry-After."""
    import requests

    answers = [requests.get(f"{centre.url}/book/b/ABCDEF{letter}?lang=en", timeout=10) for letter in "ABCDEFGHJK"]
    assert [a.status_code for a in answers[:6]] == [404] * 6
    slowed = answers[-1]
    assert slowed.status_code == 429 and int(slowed.headers["retry-after"]) > 0
    assert "Too many tries from your connection." in slowed.text


def test_a_form_for_a_day_not_yet_released_is_refused_with_the_time_it_opens(centre: Any, clock: Path) -> None:
    """The morning release: at 07:30 the service's 28th day (today the first) is not sold yet — it opens at 08:00
    today; a form sent for it (a page kept open since yesterday, a guessed address) is told so in words."""
    import requests

    write_clock_file(clock, NOW.replace(hour=7, minute=30))
    last = NOW.date() + timedelta(days=27)
    with requests.Session() as browser_like:
        page = browser_like.get(f"{centre.url}/book/north/borgerservice/?lang=en", timeout=10)
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert csrf is not None
        browser_like.cookies.set("vuoro_book_csrf", csrf.group(1))
        answer = browser_like.post(f"{centre.url}/book/north/borgerservice/?lang=en", timeout=10, data={
            "csrf": csrf.group(1), "idem": "a-kept-page-0001", "slots": "1", "name": "Kim", "phone": "+4520304050",
            "start": f"{last.isoformat()}T10:00+01:00"})
    assert answer.status_code == 409, answer.text[:400]
    assert "That day cannot be booked yet. Times open Tuesday 8 December 08:00." in answer.text
