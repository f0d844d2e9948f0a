"""Confirmations and reminders of bookings made at the centre (issue 17, docs/bookings.md "Confirmations and
reminders"), all real: the ``vuoro central`` process (two workers) over a private PostgreSQL, its clock set by the
test (``VUORO_TEST_CLOCK``), a real SMTP server (aiosmtpd) and a local stand-in for the SMS gateway. Every message
comes from the sender thread of the worker that owns the background work; the test only moves the clock.

The branches are Europe/Copenhagen while the tests run with TZ=UTC: the reminder goes at 18:00 Copenhagen time the
day before (17:00 UTC in November). Monday 2026-11-23 09:40; the times booked are on Tuesday the 24th. North sends
texts and e-mails (its ``[notify]``); south sends nothing.
"""

from __future__ import annotations

import re
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
import pytest
import requests

from server.bookings.notice_parts import FORM_MSGIDS, words
from tests.test_booking_notices import opt_in_in_dutch, subject
from tests.test_calendar_e2e import calendar_site
from tests.test_notify import Gateway, Inbox, gateway, smtp  # noqa: F401 - the real SMTP server and gateway
from tests.test_staff_calendar import account, form_csrf, signed_in
from toolkit.broker import free_port
from toolkit.central_process import CentralProcess, write_centre_config
from toolkit.polling import wait_until
from vuoro.clock import ENV as CLOCK_ENV
from vuoro.clock import write_clock_file

TZ = ZoneInfo("Europe/Copenhagen")
MONDAY_MORNING = datetime(2026, 11, 23, 9, 40, tzinfo=TZ)
PUBLIC_URL = "https://book.kommune.example"
TUESDAY = "2026-11-24"


class Centre:
    """The centre process, its database, its clock file and its log."""

    def __init__(self, process: CentralProcess, database: str, clock: Path):
        self.process, self.database, self.clock = process, database, clock

    @property
    def url(self) -> str:
        return self.process.url

    def set_clock(self, when: datetime) -> None:
        write_clock_file(self.clock, when)

    def rows(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.database) as db:
            return db.execute(sql, args).fetchall()


@pytest.fixture()
def centre(tmp_path: Path, postgres_db: str, smtp: tuple[Inbox, int], gateway: Gateway):  # noqa: F811
    clock = tmp_path / "clock"
    write_clock_file(clock, MONDAY_MORNING)
    port = free_port()  # the branches never run here: the centre sells their later days by itself
    north = calendar_site(tmp_path, "north", "Nordby Bibliotek", f"http://127.0.0.1:{port}")
    north[1].write_text(north[1].read_text(encoding="utf-8") + (
        f'\n[notify]\nsms_url = "{gateway.url}"\nsmtp_host = "127.0.0.1"\nsmtp_port = {smtp[1]}\n'
        'smtp_from = "nordby@kommune.example"\nretry_first_s = 0.3\nreminder_at = "18:00"\n'), encoding="utf-8")
    south = calendar_site(tmp_path, "south", "Sydby Bibliotek", f"http://127.0.0.1:{port}")
    config = write_centre_config(tmp_path / "centre.toml", postgres_db, {"north": north, "south": south},
                                 languages=("en", "da", "sv", "fi", "nl"))
    text = config.read_text(encoding="utf-8")
    config.write_text(text.replace("[centre]\n", f'[centre]\npublic_url = "{PUBLIC_URL}"\n', 1), encoding="utf-8")
    process = CentralProcess(config, env={CLOCK_ENV: str(clock)}, workers=2).start()
    yield Centre(process, postgres_db, clock)
    process.stop()


def book_on_page(session: requests.Session, centre: Centre, branch: str, service: str, start: str, lang: str,
                 **fields: str) -> requests.Response:
    page = session.get(f"{centre.url}/book/{branch}/{service}/?day={TUESDAY}&lang={lang}", timeout=10)
    assert page.status_code == 200, page.text
    form = {"csrf": session.cookies["vuoro_book_csrf"], "idem": uuid.uuid4().hex, "slots": "1", "start": start,
            **fields}
    return session.post(f"{centre.url}/book/{branch}/{service}/?lang={lang}", data=form, timeout=10,
                        allow_redirects=False)


def code_of(answer: requests.Response) -> str:
    assert answer.status_code == 303, answer.text
    return answer.headers["location"].split("/")[-1].split("?")[0]


def notices(centre: Centre) -> list[tuple[str, str]]:
    return [(k, s) for k, s in centre.rows("SELECT kind, state FROM calendar_notices ORDER BY kind, state")]


def test_a_citizen_who_ticks_the_box_gets_one_confirmation_and_one_reminder_after_six_the_evening_before(
        centre: Centre, smtp: tuple[Inbox, int], gateway: Gateway) -> None:  # noqa: F811
    inbox, _ = smtp
    session = requests.Session()
    page = session.get(f"{centre.url}/book/north/bibliotekar/?day={TUESDAY}&lang=fi", timeout=10)
    assert 'name="remind"' in page.text and words("fi", FORM_MSGIDS[0]) in page.text
    assert 'name="remind" value="1" checked' not in page.text  # never ticked beforehand
    assert words("fi", "the day before at {time}", time="18:00") in page.text  # the purpose and when it is deleted
    south = session.get(f"{centre.url}/book/south/bibliotekar/?day={TUESDAY}", timeout=10)
    assert south.status_code == 200 and 'name="remind"' not in south.text  # south sends nothing: no box

    aino = code_of(book_on_page(session, centre, "north", "bibliotekar", f"{TUESDAY}T10:00+01:00", "fi",
                                name="Aino", remind="1", remind_to="aino@example.org"))
    # An address typed without the tick is not kept, and nothing is sent for that booking.
    per = code_of(book_on_page(session, centre, "north", "bibliotekar", f"{TUESDAY}T10:15+01:00", "fi",
                               name="Per", remind_to="nobody@example.org"))
    # A ticked box without a usable address is refused in words, with nothing booked.
    empty = book_on_page(session, centre, "north", "bibliotekar", f"{TUESDAY}T10:45+01:00", "fi", name="E",
                         remind="1", remind_to="")
    assert empty.status_code == 422 and words("fi", FORM_MSGIDS[-1]) in empty.text
    # The centre's API takes remind_to as a branch's does: a text in Danish.
    mette = requests.post(f"{centre.url}/api/v1/calendar/bookings", params={"branch": "north"}, json={
        "service": "bibliotekar", "start": f"{TUESDAY}T10:30+01:00", "name": "Mette", "language": "da",
        "remind_to": "+45 20 30 40 50"}, headers={"Idempotency-Key": uuid.uuid4().hex}, timeout=10)
    assert mette.status_code == 201, mette.text

    wait_until(lambda: len(inbox.messages) == 1 and len(gateway.texts) == 1, "the two confirmations", timeout=20)
    confirmation = inbox.messages[0]
    assert confirmation["To"] == "aino@example.org" and confirmation["From"] == "nordby@kommune.example"
    assert subject(confirmation) == "Varaus vahvistettu: Varaa kirjastonhoitaja, tiistai 24. marraskuuta 10:00"
    body = confirmation.get_content()
    assert f"Koodisi: {aino[:3]}-{aino[3:]}" in body and f"{PUBLIC_URL}/book/b/{aino}" in body
    assert "Nordby Bibliotek" in body and "Lähetämme muistutuksen ennen aikaasi." in body
    # The message's id is its Message-ID (and the gateway's Idempotency-Key): a mail system can drop a copy.
    ids = {i for (i,) in centre.rows("SELECT n.id FROM calendar_notices n JOIN calendar_bookings b ON "
                                      "b.id = n.booking_id WHERE b.code = %s AND n.kind = 'booked'", aino)}
    assert confirmation["Message-ID"] == f"<vuoro-{ids.pop()}@kommune.example>"
    assert gateway.texts[0]["to"] == "+4520304050" and gateway.texts[0]["text"].startswith("Du har bestilt")
    assert f"{PUBLIC_URL}/book/b/{mette.json()['code']}" in gateway.texts[0]["text"]
    # The contacts are kept, in their own table, until the reminders have gone; the unticked address never was.
    contacts = centre.rows("SELECT b.code, c.channel FROM calendar_contacts c JOIN calendar_bookings b ON "
                           "b.id = c.booking_id ORDER BY c.channel")
    assert contacts == [(aino, "email"), (mette.json()["code"], "sms")]
    assert "nobody@example.org" not in str(centre.rows("SELECT * FROM calendar_bookings WHERE code = %s", per))
    time.sleep(2)
    assert len(inbox.messages) == 1 and len(gateway.texts) == 1  # once

    centre.set_clock(datetime(2026, 11, 23, 17, 59, 56, tzinfo=TZ))
    time.sleep(2)  # the sender looks every second: 17:59:58 is not yet the evening before at six
    assert len(inbox.messages) == 1 and len(gateway.texts) == 1
    wait_until(lambda: len(inbox.messages) == 2 and len(gateway.texts) == 2, "the two reminders", timeout=20)
    assert subject(inbox.messages[1]) == "Muistutus: Varaa kirjastonhoitaja, tiistai 24. marraskuuta 10:00"
    assert gateway.texts[1]["text"].startswith("Påmindelse: du har bestilt Book en bibliotekar hos Nordby Bibliotek")
    wait_until(lambda: notices(centre) == [("booked", "sent")] * 2 + [("reminder", "sent")] * 2, "all settled")
    done = centre.rows("SELECT done_at FROM calendar_notices WHERE kind = 'reminder'")
    assert all(at >= datetime(2026, 11, 23, 17, 0, tzinfo=TZ) for (at,) in done)  # 18:00 in Copenhagen, not UTC
    wait_until(lambda: centre.rows("SELECT * FROM calendar_contacts") == [], "the contacts deleted")
    time.sleep(2)
    assert len(inbox.messages) == 2 and len(gateway.texts) == 2  # once
    log = centre.process.log_path.read_bytes()
    assert b"aino@example.org" not in log and b"4520304050" not in log and b"20 30 40 50" not in log


def test_moving_and_cancelling_confirm_and_a_cancelled_booking_is_never_reminded_staff_booking_for_a_caller(
        centre: Centre, smtp: tuple[Inbox, int], gateway: Gateway) -> None:  # noqa: F811
    inbox, _ = smtp
    session = requests.Session()
    code = code_of(book_on_page(session, centre, "north", "bibliotekar", f"{TUESDAY}T12:15+01:00", "sv",
                                name="Eva", remind="1", remind_to="eva@example.se"))
    wait_until(lambda: len(inbox.messages) == 1, "the confirmation", timeout=20)
    assert subject(inbox.messages[0]) == "Bokning bekräftad: Boka en bibliotekarie, tisdag 24 november 12:15"
    csrf = session.cookies["vuoro_book_csrf"]
    moved = session.post(f"{centre.url}/book/b/{code}/move?lang=sv", data={
        "csrf": csrf, "start": f"{TUESDAY}T13:00+01:00"}, timeout=10, allow_redirects=False)
    assert moved.status_code == 303, moved.text
    wait_until(lambda: len(inbox.messages) == 2, "the move's confirmation", timeout=20)
    assert subject(inbox.messages[1]) == "Bokningen är flyttad: Boka en bibliotekarie, tisdag 24 november 13:00"
    cancelled = session.post(f"{centre.url}/book/b/{code}/cancel?lang=sv", data={"csrf": csrf}, timeout=10,
                             allow_redirects=False)
    assert cancelled.status_code == 303
    wait_until(lambda: len(inbox.messages) == 3, "the cancellation's confirmation", timeout=20)
    assert subject(inbox.messages[2]) == "Bokningen är avbokad: Boka en bibliotekarie, tisdag 24 november 13:00"
    assert PUBLIC_URL not in inbox.messages[2].get_content()  # nothing left to manage
    wait_until(lambda: centre.rows("SELECT * FROM calendar_contacts") == [], "the contact deleted with the cancel")

    # Staff at the centre book for a caller who asks for a text; a wrong number is refused in words, unbooked.
    account(centre.url, "kommune", [])
    staff = signed_in(centre.url, "kommune")
    day_page = staff.get(f"{centre.url}/calendar/north?day={TUESDAY}&service=borgerservice&lang=da", timeout=10)
    assert 'name="notify_to"' in day_page.text and "Bekræftelse og påmindelse til" in day_page.text
    south_page = staff.get(f"{centre.url}/calendar/south?day={TUESDAY}&lang=da", timeout=10)
    assert 'name="notify_to"' not in south_page.text  # south sends nothing
    form = {"csrf": form_csrf(day_page.text), "service": "borgerservice", "day": TUESDAY, "slots": "1",
            "start": f"{TUESDAY}T10:00+01:00", "name": "Jens"}
    wrong = staff.post(f"{centre.url}/calendar/north/book?lang=da", data={
        **form, "idem": uuid.uuid4().hex, "notify_to": "not a number"}, timeout=10, allow_redirects=False)
    assert wrong.status_code == 422 and "Tjek mobilnummeret eller e-mailadressen til bekræftelsen" in wrong.text
    assert centre.rows("SELECT * FROM calendar_bookings WHERE name = 'Jens'") == []
    booked = staff.post(f"{centre.url}/calendar/north/book?lang=da", data={
        **form, "idem": uuid.uuid4().hex, "notify_to": "+45 30 40 50 60"}, timeout=10, allow_redirects=False)
    assert booked.status_code == 303, booked.text
    assert "30%2040" not in booked.headers["location"] and "4530405060" not in booked.headers["location"]
    booking_id = re.search(r"booked=([0-9a-f]+)", booked.headers["location"]).group(1)  # type: ignore[union-attr]
    wait_until(lambda: len(gateway.texts) == 1, "the caller's confirmation", timeout=20)
    assert gateway.texts[0]["to"] == "+4530405060"
    assert gateway.texts[0]["text"].startswith("Du har bestilt Borgerservice hos Nordby Bibliotek")
    move_page = staff.get(f"{centre.url}/calendar/north/move/{booking_id}?lang=da", timeout=10)
    staff.post(f"{centre.url}/calendar/north/move/{booking_id}?lang=da", data={
        "csrf": form_csrf(move_page.text), "day": TUESDAY, "slots": "1", "start": f"{TUESDAY}T11:00+01:00"},
               timeout=10, allow_redirects=False).raise_for_status()
    wait_until(lambda: len(gateway.texts) == 2, "the move's text", timeout=20)
    moved_text = gateway.texts[1]["text"]
    assert moved_text.startswith("Din tid er flyttet: Borgerservice") and "11:00" in moved_text
    cancel_page = staff.get(f"{centre.url}/calendar/north/cancel/{booking_id}?lang=da", timeout=10)
    staff.post(f"{centre.url}/calendar/north/cancel/{booking_id}?lang=da", data={"csrf": form_csrf(cancel_page.text)},
               timeout=10, allow_redirects=False).raise_for_status()
    wait_until(lambda: len(gateway.texts) == 3, "the cancellation's text", timeout=20)
    assert gateway.texts[2]["text"].startswith("Din tid er aflyst: Borgerservice")

    centre.set_clock(datetime(2026, 11, 23, 18, 0, 5, tzinfo=TZ))
    time.sleep(3)
    assert len(inbox.messages) == 3 and len(gateway.texts) == 3  # no reminder for a cancelled time
    assert ("reminder", "sent") not in notices(centre) and ("reminder", "dropped") in notices(centre)
    assert centre.rows("SELECT * FROM calendar_contacts") == []


def test_a_refused_message_is_tried_again_and_a_centre_killed_mid_send_never_sends_it_again(
        centre: Centre, gateway: Gateway) -> None:  # noqa: F811
    gateway.down = 2  # the gateway refuses the confirmation twice: tried again after 0.3 s and 0.6 s
    answer = requests.post(f"{centre.url}/api/v1/calendar/bookings", params={"branch": "north"}, json={
        "service": "bibliotekar", "start": f"{TUESDAY}T11:00+01:00", "name": "Mette", "language": "da",
        "remind_to": "+4520304050"}, headers={"Idempotency-Key": uuid.uuid4().hex}, timeout=10)
    assert answer.status_code == 201, answer.text
    wait_until(lambda: len(gateway.texts) == 1, "the confirmation after two refusals", timeout=20)
    assert gateway.tries == 3 and answer.json()["code_display"] in gateway.texts[0]["text"]
    wait_until(lambda: centre.rows("SELECT state, tries FROM calendar_notices WHERE kind = 'booked'") == [
        ("sent", 3)], "settled after three tries")

    # The reminder is being sent when the centre loses power: the gateway has it, the centre never heard back.
    gateway.release.clear()
    tries = gateway.tries
    centre.set_clock(datetime(2026, 11, 23, 17, 59, 59, tzinfo=TZ))
    wait_until(lambda: gateway.tries == tries + 1, "the reminder reaching the (hanging) gateway", timeout=20)
    assert centre.rows("SELECT state FROM calendar_notices WHERE kind = 'reminder'") == [("sending",)]  # committed
    centre.process.kill()  # SIGKILL to the parent; its workers die with it (PR_SET_PDEATHSIG)
    gateway.release.set()
    wait_until(lambda: len(gateway.texts) == 2, "the gateway delivering the reminder it had")
    centre.process.start()
    wait_until(lambda: centre.rows("SELECT state FROM calendar_notices WHERE kind = 'reminder'") == [("unknown",)],
               "the new owner marks the cut send unknown", timeout=20)
    time.sleep(3)  # a few of the sender's looks
    assert len(gateway.texts) == 2 and gateway.tries == tries + 1  # at most once: not sent again
    wait_until(lambda: centre.rows("SELECT * FROM calendar_contacts") == [], "nothing left to send: deleted")


def test_schema_12_migrates_a_database_with_bookings_and_keeps_messages_to_their_booking(postgres_db: str) -> None:
    from central.schema import MIGRATIONS, migrate, schema_version

    notices_step = next(i for i, step in enumerate(MIGRATIONS, 1) if "CREATE TABLE calendar_contacts" in step)
    assert notices_step == 12
    with psycopg.connect(postgres_db) as db:  # a centre at the step before, with a booking in it
        assert schema_version(db) == 0
        for version, step in enumerate(MIGRATIONS[:notices_step - 1], 1):
            db.execute(step.encode())
            db.execute("INSERT INTO central_schema (version) VALUES (%s)", (version,))
        db.execute("INSERT INTO branches (id, name) VALUES ('north', 'North')")
        db.execute("INSERT INTO calendar_bookings (id, branch, side, code, service, start_at, end_at, day, slots, "
                   "status, origin, created_at) VALUES ('b1', 'north', 'centre', 'ABCDEFG', 'bibliotekar', "
                   "'2026-11-24T09:00Z', '2026-11-24T09:15Z', '2026-11-24', 1, 'booked', 'web', now())")
    assert migrate(postgres_db) == len(MIGRATIONS)
    with psycopg.connect(postgres_db, autocommit=True) as db:
        db.execute("INSERT INTO calendar_contacts VALUES ('b1', 'sms', '+4512345678', 'da')")
        db.execute("INSERT INTO calendar_notices (id, booking_id, kind, due_at, for_start, state) VALUES "
                   "('n1', 'b1', 'reminder', now(), '2026-11-24T09:00Z', 'due')")
        with pytest.raises(psycopg.errors.CheckViolation):
            db.execute("UPDATE calendar_notices SET state = 'maybe' WHERE id = 'n1'")
        with pytest.raises(psycopg.errors.ForeignKeyViolation):  # a message always belongs to a booking
            db.execute("INSERT INTO calendar_notices (id, booking_id, kind, due_at, for_start, state) VALUES "
                       "('n2', 'nobody', 'booked', now(), now(), 'due')")
        db.execute("DELETE FROM calendar_bookings WHERE id = 'b1'")  # (never done by the centre, but tidy)
        assert db.execute("SELECT count(*) FROM calendar_contacts").fetchone() == (0,)


def test_the_centres_public_url_and_each_branchs_notify_are_checked_at_start(tmp_path: Path,
                                                                             postgres_db: str) -> None:
    from central.config import load_centre
    from server.config import ConfigError

    north = calendar_site(tmp_path, "north", "Nordby Bibliotek", "http://127.0.0.1:1")
    north[1].write_text(north[1].read_text(encoding="utf-8") + '\n[notify]\nsmtp_host = "127.0.0.1"\n'
                        'reminder_at = "6 pm"\n', encoding="utf-8")
    config = write_centre_config(tmp_path / "centre.toml", postgres_db, {"north": north})
    config.write_text(config.read_text(encoding="utf-8").replace("[centre]\n", '[centre]\npublic_url = "book"\n', 1),
                      encoding="utf-8")
    with pytest.raises(ConfigError) as refused:
        load_centre(config)
    assert any(p.startswith("centre.public_url: expected an http(s) address") for p in refused.value.problems)
    assert any(p.startswith("branches.north.site") and "notify.reminder_at" in p for p in refused.value.problems)


@pytest.mark.browser
def test_the_opt_in_at_the_centre_in_chromium_at_phone_size_with_no_axe_violations(
        centre: Centre, smtp: tuple[Inbox, int], browser: Any, tmp_path: Path) -> None:  # noqa: F811
    import os

    from toolkit.accessibility import PHONE

    inbox, _ = smtp
    page = browser.new_context(viewport=PHONE, locale="nl-NL").new_page()
    page.goto(f"{centre.url}/book/north/bibliotekar/?day={TUESDAY}&lang=nl")
    opt_in_in_dutch(page, "the centre's booking form with the reminder opt-in (nl)")
    folder = Path(os.environ.get("VUORO_BOOK_SCREENSHOTS") or tmp_path)  # docs/screenshots/central when asked
    folder.mkdir(parents=True, exist_ok=True)
    top, end = (page.locator(sel).bounding_box() for sel in ("fieldset.details", "form.book button[type=submit]"))
    assert top and end
    scrolled = page.evaluate("window.scrollY")  # the boxes are the viewport's; the clip is the page's
    page.screenshot(path=str(folder / "book-remind-opt-in-nl-phone.png"), full_page=True, clip={
        "x": 0, "y": scrolled + top["y"] - 8, "width": PHONE["width"],
        "height": end["y"] + end["height"] + 16 - top["y"]})
    page.click("form.book button[type=submit]")
    page.wait_for_url(re.compile(r".*/book/b/[A-Z2-9]{7}\?new=1"))
    wait_until(lambda: len(inbox.messages) == 1, "the confirmation", timeout=20)
    assert inbox.messages[0]["To"] == "jan@example.nl"
    assert subject(inbox.messages[0]).startswith("Afspraak bevestigd: ")
    assert f"{PUBLIC_URL}/book/b/{page.url.split('/')[-1].split('?')[0]}" in inbox.messages[0].get_content()
    assert "jan@example.nl" not in page.url


def test_the_channels_follow_the_version_the_branch_runs(tmp_path: Path, postgres_db: str,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """A branch whose file sends nothing starts running a published version with ``[notify]``: the centre offers the
    box and plans by that version's reminder rule; back on its own file, nothing again (in this process, over a real
    PostgreSQL; central/branch_sites.py)."""
    from datetime import timedelta

    from central.calendar import Calendar
    from tests.test_branch_sites import centre_in_process, publish, report
    from tests.test_calendar import NOW

    with centre_in_process(tmp_path, postgres_db, monkeypatch) as (config, pool, own):
        cal = Calendar(config, pool)
        assert cal.notices.settings_for("north") is None  # its own file has no [notify]
        version = publish(pool, own.read_text(encoding="utf-8") + '\n[notify]\nsmtp_host = "127.0.0.1"\n'
                          'reminder_hours = 3\n')
        report(pool, version)
        with pool.connection() as db:
            assert config.branches.reload(db, ["north"]) == ["north"]
        settings = cal.notices.settings_for("north")
        assert settings is not None and settings.channels == ["email"]
        start = datetime.fromisoformat(cal.listing("north", "bibliotekar", (NOW + timedelta(days=1)).date())[
            "slots"][0]["start"])
        _, row = cal.book("north", service="bibliotekar", start=start, slots=1, key=uuid.uuid4().hex, language="en",
                          name="Ann", contact=("email", "ann@example.org"))
        with pool.connection() as db:
            due = dict(db.execute("SELECT kind, due_at FROM calendar_notices WHERE booking_id = %s",
                                  (row["id"],)).fetchall())
        assert due["reminder"] == row["start_at"] - timedelta(hours=3)  # that version's rule
        report(pool, 0)  # back on its own file
        with pool.connection() as db:
            config.branches.reload(db, ["north"])
        assert cal.notices.settings_for("north") is None
