"""Staff at the desk, in Debian's Chromium against a real hub and broker (issue 15):

- today's bookings with the name, phone and note staff wrote (and nowhere else: not on the public list,
  not on MQTT, not on the signage stream);
- a phone booking from the page: service, length (a double 30-minute slot), day, a free time, who; the code
  to read out; then moved to another time and cancelled;
- an event's sign-ups: who is seated and who waits; a caller signed up with a name; a seat cancelled and the
  first on the waiting list moved up, seated on the page and at the kiosk's code check; a kiosk's sign-up
  reaching the open page by itself.

Screenshots go to ``$VUORO_STAFF_SCREENSHOTS`` when set (docs/screenshots/staff), else to a temporary folder.
"""

from __future__ import annotations

import os
import re
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from toolkit.broker import Broker
from toolkit.hub_in_process import DEMO_PASSWORD, DEMO_USER, RunningHub
from toolkit.mqtt_watch import Watch
from toolkit.polling import wait_until
from vuoro.protocol import EVENTS_TODAY_SUFFIX, Topics

pytestmark = [pytest.mark.browser]

STAFF = {"Authorization": "Bearer demo-staff-token-change-me"}
KIOSK = {"Authorization": "Bearer demo-kiosk1-token-change-me"}
DESKTOP = {"width": 1366, "height": 900}


@pytest.fixture()
def shots(tmp_path: Path) -> Path:
    target = Path(os.environ.get("VUORO_STAFF_SCREENSHOTS") or tmp_path / "shots")
    target.mkdir(parents=True, exist_ok=True)
    return target


def logged_in(browser: Any, hub: RunningHub, lang: str = "da", viewport: dict[str, int] = DESKTOP) -> Any:
    page = browser.new_context(viewport=viewport).new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.errors = errors
    page.goto(f"{hub.url}/staff/login?lang={lang}")
    page.fill("#username", DEMO_USER)
    page.fill("#password", DEMO_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{hub.url}/staff/")
    return page


def staff_bookings(hub: RunningHub) -> list[dict[str, Any]]:
    answer = httpx.get(f"{hub.url}/api/v1/bookings?day=2026-11-23", headers=STAFF, timeout=10)
    return [b for b in answer.json()["bookings"] if b["status"] != "cancelled"]


def test_a_phone_booking_from_the_page_then_moved_and_cancelled(hub_in_process: RunningHub, live_broker: Broker,
                                                                browser: Any, shots: Path) -> None:
    from playwright.sync_api import expect

    hub = hub_in_process
    everything = Watch(live_broker, f"{hub.config.topic_root}/#")
    try:
        page = logged_in(browser, hub)
        form = page.locator("[data-testid=book-form]")
        expect(page.locator("#book-h")).to_have_text("Bestil tid for en borger")
        page.select_option("[data-testid=book-service]", "bibliotekar")
        # Double slots: 30 minutes offers only the times whose next slot is free too.
        expect(page.locator("[data-testid=book-length] option")).to_have_text(["15 min.", "30 min."])
        page.select_option("[data-testid=book-length]", "2")
        expect(page.locator("[data-testid=book-days] [data-day='2026-11-23']")).to_have_attribute("aria-pressed",
                                                                                                   "true")
        slot = page.locator("[data-testid=book-slots] [data-start='2026-11-23T11:00+01:00']")
        slot.click()
        expect(slot).to_have_attribute("aria-pressed", "true")
        page.fill("[data-testid=book-name]", "Åse Østergård")
        page.fill("[data-testid=book-phone]", "+45 12 34 56 78")
        page.fill("[data-testid=book-note]", "Hjælp med MitID-app")
        page.click("[data-testid=book-submit]")
        code = page.locator("[data-testid=book-code]")
        expect(code).to_have_text(re.compile(r"^[A-Z2-9]{3}-[A-Z2-9]{3}$"))
        expect(page.locator("[data-testid=book-result]")).to_contain_text("Bestilt man. 23.11 11:00. Kode:")
        expect(page.locator("[data-testid=book-result]")).to_contain_text("Læs koden op for borgeren.")
        [made] = staff_bookings(hub)
        assert made["code_display"] == code.inner_text()
        assert (made["start"][11:16], made["slots"], made["end"][11:16]) == ("11:00", 2, "11:30")
        assert (made["name"], made["phone"], made["note"], made["origin"]) == (
            "Åse Østergård", "+45 12 34 56 78", "Hjælp med MitID-app", "staff")
        # The time is taken now: both its slots are gone from the 30-minute choice (10:45 needs 11:00).
        expect(page.locator("[data-testid=book-slots] [data-start='2026-11-23T11:00+01:00']")).to_have_count(0)
        expect(page.locator("[data-testid=book-slots] [data-start='2026-11-23T10:45+01:00']")).to_have_count(0)

        # Today's bookings: who, phone and note for staff.
        item = page.locator(f"[data-booking='{made['id']}']")
        expect(item.locator(".booking-main")).to_have_text("11:00 Book en bibliotekar ikke tjekket ind")
        expect(item.locator("[data-testid=booking-who]")).to_have_text(
            f"Åse Østergård+45 12 34 56 78Kode {made['code_display']}Hjælp med MitID-app")
        page.screenshot(path=str(shots / "bookings-desktop.png"), full_page=True)

        # Move it to 14:00 (a single slot now): same code, the old time free again.
        item.locator("[data-testid=booking-move]").click()
        expect(page.locator("[data-testid=book-moving]")).to_contain_text(f"Flyt tid {made['code_display']} Åse")
        expect(page.locator("[data-testid=book-service]")).to_be_disabled()
        page.select_option("[data-testid=book-length]", "1")
        page.locator("[data-testid=book-slots] [data-start='2026-11-23T14:00+01:00']").click()
        form.screenshot(path=str(shots / "book-moving-desktop.png"))
        page.click("[data-testid=book-submit]")
        expect(page.locator("[data-testid=book-result]")).to_contain_text("Flyttet til man. 23.11 14:00.")
        expect(item.locator(".booking-main")).to_have_text("14:00 Book en bibliotekar ikke tjekket ind")
        [moved] = staff_bookings(hub)
        assert (moved["id"], moved["code"], moved["start"][11:16], moved["slots"]) == (made["id"], made["code"],
                                                                                      "14:00", 1)
        expect(page.locator("[data-testid=book-slots] [data-start='2026-11-23T11:00+01:00']")).to_have_count(1)

        # Personal data stays with staff: not on the public list, MQTT or the page's live stream.
        public = httpx.get(f"{hub.url}/api/v1/bookings?day=2026-11-23", timeout=10).text
        stream = page.evaluate("fetch('/api/v1/stream').then(async (r) => { const reader = r.body.getReader(); "
                               "const chunk = await reader.read(); reader.cancel(); "
                               "return new TextDecoder().decode(chunk.value); })")
        for text in (public, stream, str([m for m in everything.messages])):
            assert "Åse" not in text and "12 34 56 78" not in text and "MitID" not in text

        # Cancel: the button asks once more.
        cancel = item.locator("[data-testid=booking-cancel]")
        cancel.click()
        expect(cancel).to_have_text("Ja, aflys")
        assert staff_bookings(hub)  # not yet
        cancel.click()
        expect(page.locator("[data-testid=book-result]")).to_have_text("Tiden er aflyst")
        expect(page.locator("[data-testid=bookings]")).to_contain_text("Ingen tidsbestillinger i dag")
        assert staff_bookings(hub) == []

        # A caller for tomorrow: booked, and the list goes to that day to show it; back with "I dag" or ‹.
        page.locator("[data-testid=book-days] [data-day='2026-11-24']").click()
        page.locator("[data-testid=book-slots] [data-start='2026-11-24T10:00+01:00']").click()
        page.fill("[data-testid=book-name]", "Bo Berg")
        page.click("[data-testid=book-submit]")
        expect(page.locator("#bookings-h")).to_have_text("Tidsbestillinger tirs. 24.11")
        expect(page.locator("[data-testid=bookings] .booking-main")).to_have_text(
            ["10:00 Book en bibliotekar ikke tjekket ind"])
        expect(page.locator("[data-testid=bookings] [data-testid=booking-who]")).to_contain_text("Bo Berg")
        page.click("[data-testid=bookings-prev]")
        expect(page.locator("#bookings-h")).to_have_text("Dagens tidsbestillinger")
        expect(page.locator("[data-testid=bookings]")).to_contain_text("Ingen tidsbestillinger i dag")
        page.click("[data-testid=bookings-next]")
        expect(page.locator("[data-testid=bookings]")).to_contain_text("Bo Berg")
        page.click("[data-testid=bookings-today]")
        expect(page.locator("#bookings-h")).to_have_text("Dagens tidsbestillinger")
        assert not page.errors, page.errors
    finally:
        everything.close()


def test_a_full_time_is_refused_in_words_and_nothing_is_booked(hub_in_process: RunningHub, browser: Any) -> None:
    """Another desk took the last place while this page was open: the refusal is said in Finnish."""
    from playwright.sync_api import expect

    hub = hub_in_process
    page = logged_in(browser, hub, "fi")
    page.select_option("[data-testid=book-service]", "bibliotekar")
    page.locator("[data-testid=book-slots] [data-start='2026-11-23T12:00+01:00']").click()
    taken = httpx.post(f"{hub.url}/api/v1/bookings", headers=STAFF, timeout=10,
                       json={"service": "bibliotekar", "start": "2026-11-23T12:00:00+01:00"})
    assert taken.status_code == 201
    page.click("[data-testid=book-submit]")
    expect(page.locator("[data-testid=book-result]")).to_have_text("Aika on varattu. Valitse toinen aika.")
    assert len(staff_bookings(hub)) == 1
    assert not page.errors, page.errors


def test_sign_ups_seated_and_waiting_a_cancel_moves_the_waiting_list_up(hub_in_process: RunningHub,
                                                                        live_broker: Broker, browser: Any,
                                                                        shots: Path) -> None:
    from playwright.sync_api import expect

    hub = hub_in_process
    topics = Topics(hub.config.site_id, hub.config.topic_root)
    today = topics.under(EVENTS_TODAY_SUFFIX)
    watch = Watch(live_broker, today)
    made = httpx.post(f"{hub.url}/api/v1/events", headers=STAFF, timeout=10, json={
        "title": "Sprogcafé", "start": "2026-11-23T17:00:00+01:00", "end": "2026-11-23T18:30:00+01:00",
        "room": "Salen", "seats": 1, "waiting_list": 3})
    event_id = made.json()["id"]

    def kiosk_sign_up() -> dict[str, Any]:
        answer = httpx.post(f"{hub.url}/api/v1/events/{event_id}/signups", json={"language": "da"}, timeout=10,
                            headers={**KIOSK, "Idempotency-Key": uuid.uuid4().hex})
        assert answer.status_code == 201, answer.text
        return answer.json()

    seated, first, second = kiosk_sign_up(), kiosk_sign_up(), kiosk_sign_up()
    try:
        page = logged_in(browser, hub)
        event = page.locator(f"[data-event='{event_id}']")
        expect(event.locator("summary")).to_contain_text("man. 23.11 17:00 Sprogcafé 0 ledige pladser")
        event.locator("summary").click()
        rows = event.locator("[data-testid=signups] li")
        expect(rows).to_have_count(3)
        expect(rows.nth(0)).to_contain_text(f"{seated['code_display']}  plads 1")
        expect(rows.nth(1)).to_contain_text(f"{first['code_display']}  venteliste nr. 1")
        expect(rows.nth(2)).to_contain_text(f"{second['code_display']}  venteliste nr. 2")
        expect(event.locator("summary")).to_contain_text("2 på venteliste")

        # A caller by phone, with a name: third on the waiting list; the name on the page only.
        event.locator("[data-testid=signup-name]").fill("Dorte Dahl")
        event.locator("[data-testid=signup-add]").click()
        expect(page.locator("[data-testid=events-message]")).to_contain_text("På venteliste: ")
        expect(rows).to_have_count(4)
        expect(rows.nth(3)).to_contain_text("Dorte Dahl venteliste nr. 3")
        wait_until(lambda: watch.on(today) and watch.on(today)[-1]["events"][0]["waiting_list_left"] == 0,
                   "events/today with the waiting list full")

        # Cancel the seat (it asks once more): the first on the waiting list moves up, on the page and at the kiosk.
        cancel = rows.nth(0).locator("[data-testid=signup-cancel]")
        cancel.click()
        expect(cancel).to_have_text("Ja, aflys")
        cancel.click()
        expect(page.locator("[data-testid=events-message]")).to_have_text(
            f"{seated['code_display']} er afmeldt. {first['code_display']} er rykket op på plads 1.")
        expect(rows).to_have_count(3)
        expect(page.locator(f"[data-signup='{first['code']}']")).to_contain_text("plads 1 rykket op")
        expect(page.locator(f"[data-signup='{second['code']}']")).to_contain_text("venteliste nr. 1")
        expect(page.locator(f"[data-signup='{first['code']}']")).to_have_class(re.compile(r"\bseated\b.*\bmoved\b"))
        event.screenshot(path=str(shots / "signups-desktop.png"))
        checkin = httpx.post(f"{hub.url}/api/v1/checkins", json={"code": first["code_display"]}, timeout=10,
                             headers={**KIOSK, "Idempotency-Key": uuid.uuid4().hex})
        assert checkin.status_code == 201, checkin.text
        assert checkin.json()["signup"]["status"] == "seated"
        wait_until(lambda: watch.on(today)[-1]["events"][0]["waiting_list_left"] == 1, "events/today after the cancel")

        # A kiosk's sign-up reaches the open page by itself (events/today on the page's stream).
        kiosk_sign_up()
        expect(rows).to_have_count(4)
        expect(event.locator("summary")).to_contain_text("3 på venteliste")
        page.screenshot(path=str(shots / "signups-page-desktop.png"), full_page=True)
        assert not page.errors, page.errors
    finally:
        watch.close()


def test_staff_see_the_e_mail_a_citizen_gave_beside_name_and_phone(hub_in_process: RunningHub,
                                                                    browser: Any) -> None:
    """A booking the centre sold with an e-mail (the service asked for it), handed over to the branch: staff see
    the e-mail with the name and phone; the public list does not carry it."""
    from playwright.sync_api import expect

    hub = hub_in_process
    book = hub.app.state.bookings
    row = {"id": uuid.uuid4().hex, "code": "AVV6ZAL", "service": "bibliotekar", "start": "2026-11-23T15:00:00+00:00",
           "end": "2026-11-23T15:15:00+00:00", "slots": 1, "status": "booked", "name": "Eva Ek",
           "phone": "+45 87 65 43 21", "email": "eva@example.dk", "language": "da"}
    hub.hub.call(lambda engine, now: book.accept_handover(engine, now, engine.local(now).date(), [row]))
    page = logged_in(browser, hub)
    who = page.locator(f"[data-booking='{row['id']}'] [data-testid=booking-who]")
    expect(who.locator(".who-email")).to_have_text("eva@example.dk")
    expect(who).to_have_text("Eva Ek+45 87 65 43 21eva@example.dkKode AVV-6ZAL")
    assert "eva@example.dk" not in httpx.get(f"{hub.url}/api/v1/bookings?day=2026-11-23", timeout=10).text
