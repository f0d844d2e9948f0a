"""Booking confirmations and reminders (issue 21, docs/bookings.md) through a real hub process whose clock the test
sets (``HubProcess(clock=)``), a real SMTP server (aiosmtpd) and a local HTTP endpoint standing in for the SMS
gateway: nothing leaves the machine, and every message comes from the hub's own sender thread and loop.

The site is Europe/Copenhagen while the tests run with TZ=UTC: the reminder goes at 18:00 Copenhagen time the day
before (17:00 UTC in November). Monday 2026-11-23; the times booked are on Tuesday the 24th.
"""

from __future__ import annotations

import re
import sqlite3
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import requests

from tests.test_notify import Gateway, Inbox, gateway, smtp  # noqa: F401 - the real SMTP server and gateway
from toolkit.demo import always_open
from toolkit.hub_process import HubProcess
from toolkit.polling import wait_until

TZ = ZoneInfo("Europe/Copenhagen")
MONDAY_MORNING = datetime(2026, 11, 23, 9, 40, tzinfo=TZ)
STAFF = {"Authorization": "Bearer demo-staff-token-change-me"}
PUBLIC_URL = "https://ko.sonderbro.example"


@pytest.fixture()
def notices_site(tmp_path: Path, smtp: tuple[Inbox, int], gateway: Gateway) -> Path:  # noqa: F811
    from server.config import SAMPLE_SITE

    text = always_open(SAMPLE_SITE.read_text(encoding="utf-8"))
    text = text.replace('# public_url = "https://ko.sonderbro.example"', f'public_url = "{PUBLIC_URL}"', 1)
    assert PUBLIC_URL in text
    text += (f'\n[notify]\nsms_url = "{gateway.url}"\nsmtp_host = "127.0.0.1"\nsmtp_port = {smtp[1]}\n'
             'smtp_from = "ko@sonderbro.example"\nretry_first_s = 0.3\nreminder_at = "18:00"\n')
    path = tmp_path / "site.toml"
    path.write_text(text, encoding="utf-8")
    return path


def book(url: str, start: str, **fields: Any) -> dict[str, Any]:
    answer = requests.post(f"{url}/api/v1/public/bookings", json={"service": "bibliotekar", "start": start, **fields},
                           headers={"Idempotency-Key": uuid.uuid4().hex}, timeout=20)
    assert answer.status_code == 201, answer.text
    return answer.json()  # type: ignore[no-any-return]


def subject(message: Any) -> str:
    return " ".join(str(message["Subject"]).split())  # a long subject is folded over two header lines


def opt_in_in_dutch(page: Any, what: str) -> None:
    """On a booking page in Dutch (a branch's or the centre's: the same form parts): a time, a name, the opt-in box
    unticked with its purpose, ticked, an address; axe-core finds nothing."""
    from playwright.sync_api import expect

    from toolkit.accessibility import assert_accessible

    page.locator(".times input").nth(1).check()
    page.fill("#f-name", "Jan")
    box = page.get_by_label("Stuur mij een bevestiging en een herinnering")
    expect(box).not_to_be_checked()  # opt-in: never ticked for the citizen
    expect(page.locator("#remind-why")).to_contain_text("de dag ervoor om 18:00")
    box.check()
    page.get_by_label("Mobiel nummer of e-mailadres").fill("jan@example.nl")
    assert_accessible(page, what)


def table(db_path: Path, sql: str) -> list[tuple[Any, ...]]:
    db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        return db.execute(sql).fetchall()
    finally:
        db.close()


def test_confirmation_at_once_reminder_at_six_the_evening_before_only_for_who_asked_and_the_contact_is_deleted(
        make_hub: Any, notices_site: Path, smtp: tuple[Inbox, int], gateway: Gateway) -> None:  # noqa: F811
    inbox, _ = smtp
    hub: HubProcess = make_hub(site=notices_site, clock=MONDAY_MORNING).start()
    aino = book(hub.url, "2026-11-24T10:00+01:00", name="Aino", remind_to="aino@example.org", language="fi")
    book(hub.url, "2026-11-24T10:15+01:00", name="Per")  # asks for nothing: gets nothing
    mette = book(hub.url, "2026-11-24T10:30+01:00", name="Mette", remind_to="+45 20 30 40 50", language="da")
    wait_until(lambda: len(inbox.messages) == 1 and len(gateway.texts) == 1, "the two confirmations")
    confirmation = inbox.messages[0]
    assert confirmation["To"] == "aino@example.org" and confirmation["From"] == "ko@sonderbro.example"
    assert subject(confirmation) == "Varaus vahvistettu: Varaa kirjastonhoitaja, tiistai 24. marraskuuta 10:00"
    body = confirmation.get_content()
    assert f"Koodisi: {aino['code_display']}" in body and f"{PUBLIC_URL}/book/b/{aino['code']}" in body
    assert "Lähetämme muistutuksen ennen aikaasi." in body
    assert gateway.texts[0]["to"] == "+4520304050"
    assert gateway.texts[0]["text"].startswith("Du har bestilt")
    assert f"{PUBLIC_URL}/book/b/{mette['code']}" in gateway.texts[0]["text"]
    # The contact is on disk until the reminder has gone (it may be days away, across restarts).
    db = hub.data_dir / "hub.sqlite3"
    assert len(table(db, "SELECT * FROM booking_contacts")) == 2
    time.sleep(2)
    assert len(inbox.messages) == 1 and len(gateway.texts) == 1  # once

    hub.set_clock(datetime(2026, 11, 23, 17, 59, 56, tzinfo=TZ))
    time.sleep(2)  # the sender looks every second: 17:59:58 is not yet the evening before at six
    assert len(inbox.messages) == 1 and len(gateway.texts) == 1
    wait_until(lambda: len(inbox.messages) == 2 and len(gateway.texts) == 2, "the two reminders")
    reminder = inbox.messages[1]
    assert subject(reminder) == "Muistutus: Varaa kirjastonhoitaja, tiistai 24. marraskuuta 10:00"
    assert gateway.texts[1]["text"].startswith("Påmindelse: du har bestilt Book en bibliotekar hos Sønderbro Bibliotek")
    reminders = "SELECT kind, state, done_at FROM booking_notices WHERE kind = 'reminder'"
    wait_until(lambda: [(k, s) for k, s, _ in table(db, reminders)] == [("reminder", "sent")] * 2, "both settled")
    sent = table(db, reminders)
    assert all(done >= "2026-11-23T17:00:00+00:00" for _, _, done in sent)  # 18:00 in Copenhagen, not UTC
    wait_until(lambda: table(db, "SELECT * FROM booking_contacts") == [], "the contacts deleted")
    time.sleep(2)
    assert len(inbox.messages) == 2 and len(gateway.texts) == 2  # once
    hub.stop()
    on_disk = b"".join(p.read_bytes() for p in hub.data_dir.glob("hub.sqlite3*"))
    assert b"aino@example.org" not in on_disk and b"4520304050" not in on_disk  # overwritten, not just unlinked
    assert b"aino@example.org" not in (hub.data_dir / "hub.log").read_bytes()


def test_a_gateway_down_is_tried_again_across_a_restart_and_a_send_cut_by_a_crash_is_never_repeated(
        make_hub: Any, notices_site: Path, gateway: Gateway) -> None:  # noqa: F811
    hub: HubProcess = make_hub(site=notices_site, clock=MONDAY_MORNING).start()
    gateway.down = 1000  # the gateway refuses everything for now
    mette = book(hub.url, "2026-11-24T11:00+01:00", name="Mette", remind_to="+4520304050", language="da")
    wait_until(lambda: gateway.tries >= 2, "the confirmation refused twice (back-off)")
    # Meanwhile the hub books, calls and answers as usual: the writer never waits for the gateway.
    book(hub.url, "2026-11-24T11:15+01:00", name="Per")
    hub.stop()  # due, not sent: the schedule is on disk
    gateway.down = 0
    hub.start()
    wait_until(lambda: len(gateway.texts) == 1, "the confirmation after the restart", timeout=20)
    assert mette["code_display"] in gateway.texts[0]["text"]
    alerts = requests.get(f"{hub.url}/api/v1/devices", headers=STAFF, timeout=10).json()
    assert "4520304050" not in str(alerts)

    # The reminder is being sent when the hub loses power: the gateway has it, the hub never heard back.
    gateway.release.clear()
    tries = gateway.tries
    hub.set_clock(datetime(2026, 11, 23, 17, 59, 59, tzinfo=TZ))
    wait_until(lambda: gateway.tries == tries + 1, "the reminder reaching the (hanging) gateway")
    hub.kill()
    gateway.release.set()
    wait_until(lambda: len(gateway.texts) == 2, "the gateway delivering the reminder it had")
    hub.start()
    time.sleep(3)  # a few of the sender's looks
    assert len(gateway.texts) == 2 and gateway.tries == tries + 1  # at most once: not sent again
    db = hub.data_dir / "hub.sqlite3"
    assert table(db, "SELECT kind, state FROM booking_notices ORDER BY kind") == [("booked", "sent"),
                                                                               ("reminder", "unknown")]
    devices = requests.get(f"{hub.url}/api/v1/devices", headers=STAFF, timeout=10).json()
    alerts = next(d for d in devices if d["device"] == "booking-notices")["alerts"]
    assert [a["code"] for a in alerts] == ["notice_unknown"]
    assert table(db, "SELECT * FROM booking_contacts") == []  # nothing left to send: deleted


def test_moving_and_cancelling_confirm_and_a_cancelled_booking_is_never_reminded(
        make_hub: Any, notices_site: Path, smtp: tuple[Inbox, int], gateway: Gateway) -> None:  # noqa: F811
    inbox, _ = smtp
    hub: HubProcess = make_hub(site=notices_site, clock=MONDAY_MORNING).start()
    session = requests.Session()
    page = session.get(f"{hub.url}/book/sonderbro/bibliotekar/?day=2026-11-24&lang=sv", timeout=10)
    assert 'name="remind"' in page.text and "Skicka en bekräftelse och en påminnelse till mig" in page.text
    csrf = session.cookies["vuoro_book_csrf"]
    form = {"csrf": csrf, "idem": uuid.uuid4().hex, "slots": "1", "start": "2026-11-24T12:00+01:00", "name": "Eva"}
    empty = session.post(f"{hub.url}/book/sonderbro/bibliotekar/?lang=sv", data={**form, "remind": "1"}, timeout=10)
    assert empty.status_code == 422 and "Skriv ett mobilnummer eller en e-postadress" in empty.text
    untick = session.post(f"{hub.url}/book/sonderbro/bibliotekar/?lang=sv",  # an address without the box: not kept
                          data={**form, "remind_to": "nobody@example.org"}, timeout=10, allow_redirects=False)
    assert untick.status_code == 303
    made = session.post(f"{hub.url}/book/sonderbro/bibliotekar/?lang=sv",
                        data={**form, "idem": uuid.uuid4().hex, "start": "2026-11-24T12:15+01:00", "remind": "1",
                              "remind_to": "eva@example.se"}, timeout=10, allow_redirects=False)
    assert made.status_code == 303, made.text
    code = made.headers["location"].split("/")[-1].split("?")[0]
    wait_until(lambda: len(inbox.messages) == 1, "the confirmation")
    assert inbox.messages[0]["To"] == "eva@example.se"
    assert subject(inbox.messages[0]) == "Bokning bekräftad: Boka en bibliotekarie, tisdag 24 november 12:15"
    moved = session.post(f"{hub.url}/book/b/{code}/move?lang=sv",
                         data={"csrf": csrf, "start": "2026-11-24T13:00+01:00"}, timeout=10, allow_redirects=False)
    assert moved.status_code == 303, moved.text
    wait_until(lambda: len(inbox.messages) == 2, "the move's confirmation")
    assert subject(inbox.messages[1]) == "Bokningen är flyttad: Boka en bibliotekarie, tisdag 24 november 13:00"
    cancelled = session.post(f"{hub.url}/book/b/{code}/cancel?lang=sv", data={"csrf": csrf}, timeout=10,
                             allow_redirects=False)
    assert cancelled.status_code == 303
    wait_until(lambda: len(inbox.messages) == 3, "the cancellation's confirmation")
    assert subject(inbox.messages[2]) == "Bokningen är avbokad: Boka en bibliotekarie, tisdag 24 november 13:00"
    db = hub.data_dir / "hub.sqlite3"
    wait_until(lambda: table(db, "SELECT * FROM booking_contacts") == [], "the contact deleted with the cancel")
    hub.set_clock(datetime(2026, 11, 23, 18, 0, 5, tzinfo=TZ))
    time.sleep(3)
    assert len(inbox.messages) == 3 and gateway.texts == []  # no reminder for a cancelled time; none for "untick"
    assert "nobody@example.org" not in str(table(db, "SELECT * FROM bookings"))


def test_staff_booking_moving_and_cancelling_for_a_caller_confirm_when_asked(
        make_hub: Any, notices_site: Path, gateway: Gateway) -> None:  # noqa: F811
    hub: HubProcess = make_hub(site=notices_site, clock=MONDAY_MORNING).start()
    answer = requests.post(f"{hub.url}/api/v1/bookings", headers={**STAFF, "Idempotency-Key": uuid.uuid4().hex},
                           json={"service": "borgerservice", "start": "2026-11-24T10:00", "name": "Jens",
                                 "language": "da", "notify_to": "+45 30 40 50 60"}, timeout=10)
    assert answer.status_code == 201, answer.text
    wait_until(lambda: len(gateway.texts) == 1, "the caller's confirmation")
    assert gateway.texts[0]["to"] == "+4530405060" and answer.json()["code_display"] in gateway.texts[0]["text"]
    booking_id = answer.json()["id"]
    moved = requests.patch(f"{hub.url}/api/v1/bookings/{booking_id}", json={"start": "2026-11-24T11:00"},
                           headers=STAFF, timeout=10)
    assert moved.status_code == 200, moved.text
    wait_until(lambda: len(gateway.texts) == 2, "the move's confirmation")
    moved_text = gateway.texts[1]["text"]
    assert moved_text.startswith("Din tid er flyttet: Borgerservice") and "11:00" in moved_text
    assert requests.delete(f"{hub.url}/api/v1/bookings/{booking_id}", headers=STAFF, timeout=10).status_code == 200
    wait_until(lambda: len(gateway.texts) == 3, "the cancellation's confirmation")
    assert gateway.texts[2]["text"].startswith("Din tid er aflyst: Borgerservice")
    wait_until(lambda: table(hub.data_dir / "hub.sqlite3", "SELECT * FROM booking_contacts") == [], "deleted")
    wrong = requests.post(f"{hub.url}/api/v1/bookings", headers={**STAFF, "Idempotency-Key": uuid.uuid4().hex},
                          json={"service": "borgerservice", "start": "2026-11-24T10:15", "name": "Jens",
                                "notify_to": "not a number"}, timeout=10)
    assert wrong.status_code == 422 and wrong.json()["error"]["field"] == "notify_to"


def test_the_reminder_settings_are_checked_with_their_key_paths_and_say_when(tmp_path: Path) -> None:
    import tomllib

    from server.bookings.notices import parse_settings
    from server.config import SAMPLE_SITE, parse_config
    from server.plugins import check_config

    data = tomllib.loads(SAMPLE_SITE.read_text(encoding="utf-8"))
    data["notify"] = {"smtp_host": "127.0.0.1", "reminder_at": "6 pm", "retry_first_s": 0,
                      "reminders": {"nowhere": {"reminder_hours": 2},
                                    "borgerservice": {"reminder_at": "17:00", "reminder_hours": 3}}}
    found = check_config(parse_config(data, tmp_path / "site.toml"), ("server.bookings.notices",))
    assert {p.split(":")[0] for p in found} == {"notify.reminder_at", "notify.retry_first_s",
                                                 "notify.reminders.nowhere", "notify.reminders.borgerservice"}, found
    data["notify"] = {"smtp_host": "127.0.0.1", "reminder_at": "17:30",
                      "reminders": {"borgerservice": {"reminder_hours": 3}}}
    config = parse_config(data, tmp_path / "site.toml")
    settings = parse_settings(config)
    start = datetime(2026, 3, 30, 9, 0, tzinfo=TZ)  # the Monday after the spring DST night
    assert settings.rule_for("bibliotekar").due(start, config) == datetime(2026, 3, 29, 17, 30, tzinfo=TZ)
    assert settings.rule_for("borgerservice").due(start, config) == datetime(2026, 3, 30, 6, 0, tzinfo=TZ)
    assert settings.rule_for("bibliotekar").said("da") == "dagen før kl. 17:30"
    assert settings.rule_for("borgerservice").said("fi") == "3 tuntia ennen aikaasi"


def test_every_word_of_the_messages_and_the_opt_in_is_translated() -> None:
    from server.bookings.notices import LOCALE_DIR, MSGIDS
    from vuoro.i18n import untranslated

    for lang in ("da", "sv", "fi", "nl"):
        assert untranslated(LOCALE_DIR, lang, list(MSGIDS)) == [], lang


@pytest.mark.browser
def test_the_citizen_opts_in_on_the_booking_page_in_the_browser_with_no_axe_violations(
        make_hub: Any, notices_site: Path, smtp: tuple[Inbox, int], browser: Any,  # noqa: F811
        tmp_path: Path) -> None:
    import os

    from toolkit.accessibility import PHONE

    inbox, _ = smtp
    folder = Path(os.environ.get("VUORO_BOOK_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    hub: HubProcess = make_hub(site=notices_site, clock=MONDAY_MORNING).start()
    page = browser.new_context(viewport=PHONE, locale="nl-NL").new_page()
    page.goto(f"{hub.url}/book/sonderbro/bibliotekar/?day=2026-11-24")
    assert page.evaluate("document.documentElement.lang") == "nl"
    opt_in_in_dutch(page, "the booking form with the reminder opt-in (nl)")
    page.locator("form.book").screenshot(path=str(folder / "remind-opt-in-nl-phone.png"))
    page.click("form.book button[type=submit]")
    page.wait_for_url(re.compile(r".*/book/b/[A-Z2-9]{6}\?new=1"))
    wait_until(lambda: len(inbox.messages) == 1, "the confirmation")
    assert inbox.messages[0]["To"] == "jan@example.nl"
    assert subject(inbox.messages[0]).startswith("Afspraak bevestigd: ")
    assert f"{PUBLIC_URL}/book/b/{page.url.split('/')[-1].split('?')[0]}" in inbox.messages[0].get_content()


@pytest.mark.browser
def test_staff_booking_for_a_caller_on_the_desk_page_sends_the_confirmation(
        make_hub: Any, notices_site: Path, smtp: tuple[Inbox, int], browser: Any) -> None:  # noqa: F811
    from playwright.sync_api import expect

    from toolkit.hub_in_process import DEMO_PASSWORD, DEMO_USER

    inbox, _ = smtp
    hub: HubProcess = make_hub(site=notices_site, clock=MONDAY_MORNING).start()
    page = browser.new_context(viewport={"width": 1366, "height": 900}).new_page()
    page.goto(f"{hub.url}/staff/login?lang=da")
    page.fill("#username", DEMO_USER)
    page.fill("#password", DEMO_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{hub.url}/staff/")
    page.select_option("[data-testid=book-service]", "bibliotekar")
    page.locator("[data-testid=book-days] [data-day='2026-11-24']").click()
    page.locator("[data-testid=book-slots] [data-start='2026-11-24T11:00+01:00']").click()
    page.fill("[data-testid=book-name]", "Åse")
    expect(page.locator("#book-notify-label")).to_have_text(
        "Bekræftelse og påmindelse til (mobil eller e-mail, kun hvis den, der ringer, beder om det)")
    page.fill("[data-testid=book-notify]", "aase@example.dk")
    page.click("[data-testid=book-submit]")
    expect(page.locator("[data-testid=book-code]")).to_have_text(re.compile(r"^[A-Z2-9]{3}-[A-Z2-9]{3}$"))
    wait_until(lambda: len(inbox.messages) == 1, "the caller's confirmation")
    assert inbox.messages[0]["To"] == "aase@example.dk"
    assert page.locator("[data-testid=book-code]").inner_text() in inbox.messages[0].get_content()
    expect(page.locator("[data-testid=book-notify]")).to_have_value("")  # not kept on the desk's screen
