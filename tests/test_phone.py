"""A ticket from the visitor's phone (issue 21, docs/phone.md): the door code that changes, the page that takes a
ticket by the kiosk's rules, leaving the queue, and the word when the turn is near.

Regenerate docs/screenshots/phone/ with ``VUORO_PHONE_SCREENSHOTS=docs/screenshots/phone`` (this file,
tests/test_notify.py and the door screen in tests/test_display_kivy.py).

The rules are tested on their own (door codes, the engine's leave and near_turn, statistics' ``left``), then
through a real hub in this process (HTTP, MQTT, the SQLite file) and Debian's Chromium at phone size.
"""

from __future__ import annotations

import os
import sqlite3
import tempfile
import tomllib
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from server import stats
from server.config import SAMPLE_SITE, ConfigError, parse_config
from server.engine import LEFT, QueueEngine, Refusal, Snapshot
from server.phone.door import PASS_MINUTES, DoorCodes
from server.phone.settings import parse_settings
from server.store import MIGRATIONS, SQLiteStore
from toolkit.accessibility import PHONE, assert_accessible
from toolkit.broker import Broker
from toolkit.hub_in_process import OPEN_MONDAY, RunningHub, running_hub, site_config
from vuoro import refusals

STAFF = {"Authorization": "Bearer demo-staff-token-change-me"}
NOW = datetime(2026, 11, 23, 9, 30, tzinfo=UTC)  # 10:30 in Copenhagen, a Monday


# -- the door code -------------------------------------------------------------------------------


def test_a_door_code_works_for_its_minute_and_the_next_and_never_again() -> None:
    codes = DoorCodes(b"s" * 32, "sonderbro", 60)
    code = codes.current(NOW)
    assert len(code) == 10 and code != codes.current(NOW + timedelta(seconds=60))
    assert codes.accepts(code, NOW) and codes.accepts(code, NOW + timedelta(seconds=60))
    assert not codes.accepts(code, NOW + timedelta(seconds=120))  # two changes later: a photo of it is no use
    assert not codes.accepts(code, NOW + timedelta(days=1))  # yesterday's photo of the screen
    assert not codes.accepts("", NOW) and not codes.accepts(code.upper(), NOW)
    assert not codes.accepts("p1-é", NOW) and not codes.accepts("åäö", NOW) and not codes.accepts("p١٢-x", NOW)
    assert not DoorCodes(b"t" * 32, "sonderbro", 60).accepts(code, NOW)  # another site's secret
    assert not DoorCodes(b"s" * 32, "other", 60).accepts(code, NOW)


def test_a_pass_runs_out_and_a_daily_code_is_good_for_its_day_only() -> None:
    codes = DoorCodes(b"s" * 32, "sonderbro", 60)
    granted = codes.pass_for(NOW)
    assert codes.accepts(granted, NOW + timedelta(minutes=PASS_MINUTES - 1))
    assert not codes.accepts(granted, NOW + timedelta(minutes=PASS_MINUTES + 1))
    forged = granted.split("-")[0][:-1] + "9-" + granted.split("-")[1]  # a later end, the old signature
    assert not codes.accepts(forged, NOW)
    today = codes.daily(date(2026, 11, 23))
    assert codes.accepts(today, NOW, local_day=date(2026, 11, 23))
    assert not codes.accepts(today, NOW, local_day=date(2026, 11, 24))
    assert not codes.accepts(today, NOW)  # a site whose poster is "screen" takes no daily code


# -- the rules: leaving, near the turn ----------------------------------------------------------


@pytest.fixture()
def engine() -> QueueEngine:
    config = parse_config(tomllib.loads(SAMPLE_SITE.read_text(encoding="utf-8")), SAMPLE_SITE)
    return QueueEngine(config, Snapshot(NOW.date(), [], {}, {}, {}, {}, {}, []))


def test_leaving_frees_the_place_once_and_only_while_waiting(engine: QueueEngine) -> None:
    tickets = [engine.issue("kvik", "da", NOW + timedelta(seconds=i)).ticket for i in range(3)]
    first, second, third = tickets
    assert engine.position(third) == 2
    outcome = engine.leave(second.track_token, NOW + timedelta(minutes=1))
    assert outcome.ticket is second and second.status == LEFT and outcome.changed
    assert [e.kind for e in outcome.log] == ["left"]
    assert engine.position(third) == 1 and engine.waiting_count("kvik") == 2
    again = engine.leave(second.track_token, NOW + timedelta(minutes=2))  # a double tap
    assert again.replay and not again.changed
    called = engine.call_next("kvik1", NOW + timedelta(minutes=3)).ticket
    assert called is first
    with pytest.raises(Refusal) as refused:
        engine.leave(first.track_token, NOW + timedelta(minutes=4))
    assert refused.value.code == refusals.NOT_WAITING and "go to the desk" in refused.value.message
    with pytest.raises(Refusal) as unknown:
        engine.leave("no-such-token", NOW)
    assert unknown.value.code == refusals.UNKNOWN_TICKET


def test_near_the_turn_is_the_services_own_number(engine: QueueEngine) -> None:
    assert engine.config.services["kvik"].near_turn == 3 and engine.config.services["it"].near_turn == 0
    kvik = [engine.issue("kvik", "da", NOW + timedelta(seconds=i)).ticket for i in range(5)]
    assert [engine.near_turn(t) for t in kvik] == [True, True, True, True, False]  # 0–3 before: near
    librarian = engine.issue("bibliotekar", "da", NOW).ticket
    assert engine.config.services["bibliotekar"].near_turn == 0 and not engine.near_turn(librarian)  # never said
    engine.call_next("kvik1", NOW + timedelta(minutes=1))
    assert not engine.near_turn(kvik[0]) and engine.near_turn(kvik[4])  # called is not "near"; the last moved up


def test_near_turn_and_the_phone_section_are_checked_with_their_key_paths(tmp_path: Path) -> None:
    data = tomllib.loads(SAMPLE_SITE.read_text(encoding="utf-8"))
    data["services"]["kvik"]["near_turn"] = 2.5
    data["phone"] = {"poster": "sometimes", "code_every_s": 5, "colour": "red"}
    with pytest.raises(ConfigError) as core:
        parse_config(data, tmp_path / "site.toml")
    assert any(p.startswith("services.kvik.near_turn:") for p in core.value.problems), core.value.problems
    data["services"]["kvik"]["near_turn"] = 3
    with pytest.raises(ConfigError) as phone:
        parse_settings(parse_config(data, tmp_path / "site.toml"))
    problems = "\n".join(phone.value.problems)
    assert "phone.poster:" in problems and "phone.code_every_s:" in problems and "phone.colour: unknown key" in problems
    # `vuoro hub --check` hears about both of the plugin's sections at once.
    from server.plugins import check_config

    data["notify"] = {"sms_url": "ftp://gateway", "smtp_port": 0}
    found = check_config(parse_config(data, tmp_path / "site.toml"), ("server.phone",))
    assert {p.split(":")[0] for p in found} >= {"phone.poster", "phone.code_every_s", "notify.sms_url",
                                                  "notify.smtp_port"}, found


# -- statistics: "left" is an outcome of its own -----------------------------------------------


def test_statistics_count_left_apart_and_a_late_leaver_as_missed() -> None:
    tz = stats.figures.ZoneInfo("Europe/Copenhagen")

    def row(tid: str, status: str, queued: str, finished: str | None, called: str | None = None) -> tuple[Any, ...]:
        at = f"2026-11-23T{queued}:00+00:00"
        return (tid, tid, "kvik", "2026-11-23", status, "walk_in", "da", at, at, None, "kvik1" if called else None,
                f"2026-11-23T{called}:00+00:00" if called else None,
                f"2026-11-23T{finished}:00+00:00" if finished else None, 0, 0)

    rows = [row("K001", "done", "09:00", "09:10", called="09:05"),  # called within 10 min
            row("K002", "left", "09:00", "09:03"),  # left after 3 min: no wait of ours
            row("K003", "left", "09:00", "09:30")]  # left after 30 min (target 10): missed
    total = stats.summarize(rows, tz, targets={"kvik": 10.0}).total
    assert total["issued"] == 3 and total["served"] == 1 and total["left"] == 2 and total["open"] == 0
    assert total["called"] == 1  # no leaver is in the wait sample
    assert total["within_target"] == 1 and total["service_level"] == pytest.approx(0.5)  # 1 of (1 called + 1 late)


# -- the store: step 5 keeps every ticket and reference ---------------------------------------


def test_an_older_store_takes_left_tickets_after_its_upgrade(tmp_path: Path) -> None:
    path = tmp_path / "hub.sqlite3"
    old = sqlite3.connect(path)
    for version, step in enumerate(MIGRATIONS[:3], 1):
        old.executescript(f"BEGIN;\n{step}\nPRAGMA user_version = {version};\nCOMMIT;")
    old.execute("INSERT INTO tickets (id, site, service, letter, day, number, label, language, status, queued_at, "
                "issued_at, track_token) VALUES ('t1', 'sonderbro', 'kvik', 'K', '2026-11-23', 1, 'K001', 'da', "
                "'waiting', '2026-11-23T09:00:00+00:00', '2026-11-23T09:00:00+00:00', 'tok1')")
    old.execute("INSERT INTO ticket_log (ticket_id, kind, at, service) VALUES ('t1', 'issued', "
                "'2026-11-23T09:00:00+00:00', 'kvik')")
    old.commit()
    old.close()
    store = SQLiteStore(path, "sonderbro")
    assert store.schema_version == len(MIGRATIONS)
    store.db.execute("UPDATE tickets SET status = 'left' WHERE id = 't1'")
    assert store.db.execute("SELECT label, status FROM tickets").fetchall() == [("K001", "left")]
    assert store.db.execute("PRAGMA foreign_key_check").fetchall() == []
    assert store.db.execute("PRAGMA foreign_keys").fetchone() == (1,)
    with pytest.raises(sqlite3.IntegrityError):
        store.db.execute("INSERT INTO ticket_log (ticket_id, kind, at, service) VALUES ('nope', 'x', 'y', 'kvik')")
    store.close()


# -- through a real hub ---------------------------------------------------------------------------


class SteppedClock:
    """The hub's clock, moved on by the test: a door code changes when the test says a minute has passed."""

    def __init__(self, start: datetime = OPEN_MONDAY):
        self.now = start

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture()
def clock() -> SteppedClock:
    return SteppedClock()


@pytest.fixture()
def phone_hub(live_broker: Broker, tmp_path: Path, clock: SteppedClock) -> Iterator[RunningHub]:
    with running_hub(site_config(tmp_path, live_broker.url), clock=clock) as running:
        yield running


def door_code(running: RunningHub) -> str:
    return running.app.state.phone_door.codes.current(running.hub.clock())


def take(url: str, code: str, service: str = "kvik", key: str = "phone-key-0001", lang: str = "sv") -> httpx.Response:
    return httpx.post(f"{url}/api/v1/phone/tickets", json={"service": service, "language": lang, "door": code},
                      headers={"Idempotency-Key": key}, timeout=10)


def test_a_ticket_needs_a_current_door_code_and_a_double_tap_makes_one(phone_hub: RunningHub,
                                                                         clock: SteppedClock) -> None:
    url = phone_hub.url
    missing = take(url, "")
    assert missing.status_code == 403 and missing.json()["error"]["code"] == refusals.DOOR_CODE
    assert "Scan the code on the screen" in missing.json()["error"]["message"]
    code = door_code(phone_hub)
    first = take(url, code)
    assert first.status_code == 201, first.text
    ticket = first.json()
    assert ticket["ticket"] == "K001" and ticket["language"] == "sv" and ticket["status"] == "waiting"
    assert ticket["track_path"] == f"/signage/ticket.html?t={ticket['track_token']}"
    again = take(url, code)  # the double tap
    assert again.status_code == 200 and again.json()["track_token"] == ticket["track_token"]
    clock.now += timedelta(minutes=3)  # the code on the photo is three changes old
    stale = take(url, code, key="phone-key-0002")
    assert stale.status_code == 403 and "changes every minute" in stale.json()["error"]["message"]
    assert phone_hub.hub.call(lambda engine, now: engine.waiting_count("kvik")) == 1
    # The page's view says the same, and hands a pass to a code that is current.
    view = httpx.get(f"{url}/api/v1/phone", params={"d": code}, timeout=10).json()
    assert view["door"] == "old" and view["pass"] is None
    fresh = httpx.get(f"{url}/api/v1/phone", params={"d": door_code(phone_hub)}, timeout=10).json()
    assert fresh["door"] == "ok" and fresh["pass"].startswith("p")
    assert [q["service"] for q in fresh["services"]] == ["kvik", "bibliotekar", "it"]  # walk-in services only
    clock.now += timedelta(minutes=5)  # reading the list calmly: the pass still takes a ticket
    assert take(url, fresh["pass"], key="phone-key-0003").status_code == 201


def test_the_kiosks_rules_hold_and_an_address_is_slowed_in_plain_words(phone_hub: RunningHub) -> None:
    url = phone_hub.url
    code = door_code(phone_hub)
    booking = take(url, code, service="borgerservice", key="phone-key-0010")
    assert booking.status_code == 409 and booking.json()["error"]["code"] == refusals.BOOKING_ONLY
    closed = take(url, code, service="it", key="phone-key-0011")  # IT help: Tuesdays, Thursdays, Saturdays
    assert closed.status_code == 409 and closed.json()["error"]["code"] == refusals.CLOSED
    assert closed.json()["error"]["opens_at"].startswith("2026-11-24T13:00")
    # Refusals spent no try: the address still has its three.
    made = [take(url, code, key=f"phone-key-002{i}") for i in range(3)]
    assert [r.status_code for r in made] == [201, 201, 201]
    slowed = take(url, code, key="phone-key-0030")
    error = slowed.json()["error"]
    assert slowed.status_code == 429 and error["code"] == refusals.TOO_MANY and int(slowed.headers["Retry-After"]) > 0
    assert "wait about" in error["message"] and "kiosk" in error["message"]
    assert take(url, code, key="phone-key-0020").status_code == 200  # a retry of a ticket made is no new try


def test_leaving_from_the_phone_frees_the_place_and_is_counted(phone_hub: RunningHub) -> None:
    url = phone_hub.url
    code = door_code(phone_hub)
    first, second = (take(url, code, key=f"phone-key-004{i}").json() for i in range(2))
    left = httpx.post(f"{url}/api/v1/track/{first['track_token']}/leave", timeout=10)
    assert left.status_code == 200 and left.json()["status"] == "left"
    assert httpx.get(f"{url}/api/v1/track/{second['track_token']}", timeout=10).json()["position"] == 0
    called = httpx.post(f"{url}/api/v1/counters/kvik1/next", headers={**STAFF, "Idempotency-Key": "call-0001"},
                        timeout=10).json()
    assert called["call"]["ticket"] == second["ticket"]  # the freed place is not called
    late = httpx.post(f"{url}/api/v1/track/{second['track_token']}/leave", timeout=10)
    assert late.status_code == 409 and late.json()["error"]["code"] == refusals.NOT_WAITING
    rows = phone_hub.hub.call(lambda engine, now: phone_hub.hub.store.rows(
        "SELECT label, status FROM tickets ORDER BY label"))
    assert rows == [("K001", "left"), ("K002", "called")]  # on disk, not only in memory
    day = OPEN_MONDAY.date().isoformat()
    summary = httpx.get(f"{url}/api/v1/stats/summary", params={"from": day, "to": day}, headers=STAFF, timeout=10)
    assert summary.status_code == 200, summary.text
    assert summary.json()["total"]["left"] == 1


def test_the_door_code_on_the_screens_changes_with_the_minute(phone_hub: RunningHub, clock: SteppedClock,
                                                                watch: Callable[..., Any]) -> None:
    topic = f"{phone_hub.config.topic_root}/sonderbro/phone/door"
    seen = watch(topic)
    first = seen.wait_for(lambda w: w.json(topic))
    assert first["code"] == door_code(phone_hub) and first["path"] == f"/phone/?d={first['code']}"
    assert first["qr"] == f"/phone/door.svg?d={first['code']}" and first["url"] is None  # no public_url
    clock.now += timedelta(seconds=61)
    phone_hub.hub.call(lambda engine, now: None)  # the writer's next batch (the tick does this every 15 s)
    second = seen.wait_for(lambda w: (w.json(topic) or {}).get("code") != first["code"] and w.json(topic))
    assert second["code"] == door_code(phone_hub)
    svg = httpx.get(f"{phone_hub.url}/phone/door.svg?d={second['code']}", timeout=10)
    assert svg.status_code == 200 and svg.headers["content-type"].startswith("image/svg+xml")
    assert svg.text.startswith("<svg") and "<path" in svg.text


# -- in Chromium, at phone size -------------------------------------------------------------------

# Screenshots go to $VUORO_PHONE_SCREENSHOTS when set (docs/screenshots/phone), else to a temporary folder,
# as the staff page's tests do: a test run leaves the repository as it found it.
SHOTS = Path(os.environ.get("VUORO_PHONE_SCREENSHOTS") or tempfile.mkdtemp(prefix="vuoro-phone-shots-"))


def phone_context(browser: Any, locale: str) -> Any:
    context = browser.new_context(viewport=PHONE, locale=locale, device_scale_factor=1)
    context.add_init_script("window.vibrations = []; navigator.vibrate = (p) => { window.vibrations.push(p); "
                            "return true; };")
    return context


def shot(page: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / name), full_page=True)


def call_next(url: str, counter: str = "kvik1") -> dict[str, Any]:
    import uuid

    answer = httpx.post(f"{url}/api/v1/counters/{counter}/next", timeout=10,
                        headers={**STAFF, "Idempotency-Key": uuid.uuid4().hex})
    assert answer.status_code == 200, answer.text
    return answer.json()


@pytest.mark.browser
def test_from_the_door_qr_to_a_called_ticket_in_swedish_with_the_near_word(phone_hub: RunningHub,
                                                                             browser: Any) -> None:
    from playwright.sync_api import expect

    url = phone_hub.url
    phone_hub.issue("kvik", 4)  # four before: not near yet (kvik: near_turn = 3)
    page = phone_context(browser, "sv-SE").new_page()
    fetched: list[str] = []
    page.on("request", lambda r: fetched.append(r.url))
    page.goto(f"{url}/phone/?d={door_code(phone_hub)}")  # what the QR on the screen opens
    expect(page.locator("h1")).to_have_text("Ta en kölapp")
    page.evaluate("document.fonts.ready.then(() => 1)")
    # The phone's own fonts: no font file on a visitor's data plan (the screens' Roboto is 318 KiB), none from
    # elsewhere; the letters are drawn all the same (the heading's ö).
    assert [u for u in fetched if u.endswith((".ttf", ".woff", ".woff2")) or not u.startswith(url)] == []
    family = page.evaluate("getComputedStyle(document.body).fontFamily")
    assert family.startswith("system-ui") and "Vuoro Roboto" not in family
    assert page.evaluate("document.documentElement.lang") == "sv"  # the phone's language, which the site speaks
    expect(page.locator("#lead")).to_have_text("Välj vad du behöver hjälp med")
    kvik = page.locator("button.service[data-service=kvik]")
    expect(kvik).to_contain_text("KVIK – snabb hjälp")
    expect(kvik).to_contain_text("4 väntar")
    assert_accessible(page, "the phone page: take a number (sv)")
    shot(page, "take-sv.png")
    kvik.dblclick()  # a double tap: one ticket
    page.wait_for_url("**/signage/ticket.html?t=*")
    expect(page.locator("#ticket")).to_have_text("K005")
    expect(page.locator("#h-number")).to_have_text("Ditt nummer")
    assert phone_hub.hub.call(lambda engine, now: engine.waiting_count("kvik")) == 5
    expect(page.locator("#near")).to_be_hidden()
    expect(page.locator("#leave-open")).to_have_text("Jag behöver inte längre hjälp")
    assert_accessible(page, "the phone's ticket, waiting (sv)")
    shot(page, "ticket-waiting-sv.png")
    call_next(url)  # three before: near
    expect(page.locator("#near")).to_have_text("Snart din tur. Kom till väntområdet.")
    expect(page.locator("html")).to_have_class("phone-page near")
    expect(page).to_have_title("● Snart: K005 · Vuoro")
    expect(page.locator("#announce")).to_have_text("K005: Snart din tur. Kom till väntområdet.")
    assert page.evaluate("window.vibrations") == [[200]]
    assert_accessible(page, "the phone's ticket, near the turn (sv)")
    shot(page, "ticket-near-sv.png")
    for _ in range(3):
        call_next(url)
    called = call_next(url, "kvik2")
    assert called["call"]["ticket"] == "K005"
    expect(page.locator("#called")).to_have_text("Du är kallad till Skranke 2")
    expect(page.locator("#near")).to_be_hidden()
    expect(page.locator("#leave")).to_be_hidden()  # once called, the desk ends the visit
    expect(page).to_have_title("▶ K005 · Du är kallad till Skranke 2")
    assert page.evaluate("window.vibrations") == [[200], [400, 200, 400]]
    expect(page.locator("html")).to_have_class("phone-page is-called")
    assert_accessible(page, "the phone's ticket, called (sv)")
    shot(page, "ticket-called-sv.png")


@pytest.mark.browser
def test_in_finnish_a_stale_code_is_refused_plainly_and_the_visitor_can_leave(phone_hub: RunningHub,
                                                                               clock: SteppedClock,
                                                                               browser: Any) -> None:
    from playwright.sync_api import expect

    url = phone_hub.url
    old = door_code(phone_hub)
    clock.now += timedelta(minutes=5)
    page = phone_context(browser, "en-GB").new_page()
    page.goto(f"{url}/phone/?d={old}&lang=fi")  # a photo of the screen from five minutes ago
    expect(page.locator("#lead")).to_have_text("Koodi on vanhentunut: se vaihtuu joka minuutti. Skannaa "
                                               "sisäänkäynnin näytön koodi uudelleen.")
    expect(page.locator("button.service")).to_have_count(0)
    assert_accessible(page, "the phone page: an old code (fi)")
    shot(page, "old-code-fi.png")
    page.goto(f"{url}/phone/?d={door_code(phone_hub)}&lang=fi")
    page.locator("button.service[data-service=bibliotekar]").click()
    page.wait_for_url("**/signage/ticket.html?t=*")
    expect(page.locator("#ticket")).to_have_text("L001")
    page.locator("#leave-open").click()
    expect(page.locator("#leave-question")).to_have_text("Poistutaanko jonosta? Paikkasi siirtyy seuraavalle.")
    expect(page.locator("#leave-no")).to_be_focused()
    assert_accessible(page, "the phone's ticket, asking before leaving (fi)")
    shot(page, "leave-confirm-fi.png")
    page.locator("#leave-yes").click()
    expect(page.locator("#final")).to_have_text("Olet poistunut jonosta. Kiitos, että kerroit.")
    expect(page.locator("#leave")).to_be_hidden()
    expect(page.locator("#hint")).to_be_hidden()  # nothing more will change on this page
    assert phone_hub.hub.call(lambda engine, now: engine.waiting_count("bibliotekar")) == 0
    shot(page, "left-fi.png")
    # Back on the phone page, the visitor is not offered the number they gave up.
    page.goto(f"{url}/phone/?d={door_code(phone_hub)}&lang=fi")
    expect(page.locator("button.service")).to_have_count(3)
    expect(page.locator("#have")).to_be_hidden()


@pytest.mark.browser
def test_a_closed_service_says_when_it_opens_and_a_second_visit_offers_the_number(phone_hub: RunningHub,
                                                                                    browser: Any) -> None:
    from playwright.sync_api import expect

    url = phone_hub.url
    page = phone_context(browser, "da-DK").new_page()
    page.goto(f"{url}/phone/?d={door_code(phone_hub)}")
    it = page.locator("button.service[data-service=it]")
    expect(it).to_contain_text("Lukket · Åbner 13:00")
    it.click()
    expect(page.locator("#status")).to_have_text("Lukket nu. Åbner 13:00.")
    page.locator("button.service[data-service=kvik]").click()
    page.wait_for_url("**/signage/ticket.html?t=*")
    page.goto(f"{url}/phone/?d={door_code(phone_hub)}")
    expect(page.locator("#have-text")).to_have_text("Du har allerede et nummer i dag: K001")
    assert_accessible(page, "the phone page with a number already (da)")
    shot(page, "take-again-da.png")


@pytest.mark.browser
def test_the_poster_and_the_door_screen_show_a_qr(phone_hub: RunningHub, browser: Any) -> None:
    from playwright.sync_api import expect

    url = phone_hub.url
    poster = browser.new_context(viewport={"width": 794, "height": 1123}).new_page()  # A4 at 96 dpi
    poster.goto(f"{url}/signage/poster.html")
    expect(poster.locator("h1")).to_have_text("Tag et kønummer på din telefon")
    expect(poster.locator("#p-how")).to_have_text("Ret telefonens kamera mod koden på skærmen ved indgangen.")
    expect(poster.locator("#p-langs li")).to_have_count(4)
    assert poster.evaluate("document.getElementById('p-qr').naturalWidth") > 0
    assert_accessible(poster, "the poster")
    shot(poster, "poster-da.png")
    screen = browser.new_context(viewport={"width": 1920, "height": 1080}).new_page()
    screen.goto(f"{url}/signage/index.html?lang=da&door=1&alternate=0")
    expect(screen.locator("#door")).to_be_visible()
    expect(screen.locator("#door-text")).to_have_text("Scan og tag et nummer")
    screen.wait_for_function("document.getElementById('door-qr').naturalWidth > 0")
    assert door_code(phone_hub) in screen.locator("#door-qr").get_attribute("src")
    shot(screen, "signage-door-da.png")
    for size, name in (({"width": 1920, "height": 1080}, "landscape"), ({"width": 1080, "height": 1920}, "portrait")):
        door_screen = browser.new_context(viewport=size).new_page()
        door_screen.goto(f"{url}/signage/index.html?lang=da&door=1&alternate=0")
        door_screen.wait_for_function("document.getElementById('door-qr').naturalWidth > 0")
        door_box = door_screen.locator("#door").bounding_box()
        assert door_box is not None
        for panel in (".events", ".queues", ".recent", ".call"):  # the QR has a place of its own: it covers none
            box = door_screen.locator(panel).bounding_box()
            assert box is not None
            apart = (door_box["x"] >= box["x"] + box["width"] or box["x"] >= door_box["x"] + door_box["width"]
                     or door_box["y"] >= box["y"] + box["height"] or box["y"] >= door_box["y"] + door_box["height"])
            assert apart, (name, panel, door_box, box)
        assert door_box["y"] + door_box["height"] <= size["height"] - 40  # above the bottom bar, on the screen
        shot(door_screen, f"signage-door-da-{name}.png")
    plain = browser.new_context(viewport={"width": 1920, "height": 1080}).new_page()
    plain.goto(f"{url}/signage/index.html?lang=da")
    plain.wait_for_function("document.querySelectorAll('#queues li').length > 0")
    expect(plain.locator("#door")).to_be_hidden()  # only the screens by the door


def test_the_qr_codes_hold_the_addresses_and_a_daily_poster_works_for_its_day(live_broker: Broker, tmp_path: Path,
                                                                            clock: SteppedClock) -> None:
    from server.phone.routes import qr_svg

    config = site_config(tmp_path, live_broker.url)
    data = dict(config.raw)
    data["phone"] = {**data["phone"], "poster": "daily"}
    with running_hub(parse_config(data, tmp_path / "site.toml"), clock=clock) as running:
        url = running.url
        door = running.app.state.phone_door
        # The SVGs are exactly the QR of the expected address (same library, same settings: byte for byte).
        live = httpx.get(f"{url}/phone/door.svg", timeout=10)
        assert live.content == qr_svg(f"{url}/phone/?d={door_code(running)}").body
        daily = door.codes.daily(OPEN_MONDAY.date())
        poster = httpx.get(f"{url}/phone/poster.svg", timeout=10)
        assert poster.content == qr_svg(f"{url}/phone/?d={daily}").body
        assert take(url, daily, key="poster-key-0001").status_code == 201
        clock.now += timedelta(days=1)  # yesterday's poster
        stale = take(url, daily, key="poster-key-0002")
        assert stale.status_code == 403 and stale.json()["error"]["code"] == refusals.DOOR_CODE
    # The default poster ("screen") carries no code: it opens the page that asks for the screen's.
    with running_hub(site_config(tmp_path / "b", live_broker.url), clock=SteppedClock()) as running:
        poster = httpx.get(f"{running.url}/phone/poster.svg", timeout=10)
        assert poster.content == qr_svg(f"{running.url}/phone/").body
        assert httpx.get(f"{running.url}/api/v1/phone", timeout=10).json()["door"] == "none"
