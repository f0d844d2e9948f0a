"""What's on: realistic feeds (tests/feeds/), a real HTTP feed server, and the hub's events/today.

The feed server is a real ``http.server`` on a free port that can answer with
an ETag, answer 304, serve a broken feed, or sleep past the client's timeout.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient

from server.api import create_app
from server.config import ConfigError, load_config, parse_config
from server.events.feeds import FeedError, FeedFetcher, parse_dpl, parse_ics
from server.events.settings import EventSettings, Feed, parse_settings
from server.hub import Hub
from server.store import SQLiteStore

FEEDS = Path(__file__).parent / "feeds"
SITE = Path(__file__).parent / "sites" / "always_open.toml"
TZ = ZoneInfo("Europe/Copenhagen")
STAFF = {"Authorization": "Bearer demo-staff-token-change-me"}
KIOSK = {"Authorization": "Bearer demo-kiosk1-token-change-me"}
WINDOW = (datetime(2026, 9, 1, tzinfo=TZ), datetime(2027, 5, 1, tzinfo=TZ))
IT_CAFE_DATE = "DTSTART;TZID=Europe/Copenhagen:20261028T100000"
NOVEMBER_31 = "DTSTART;TZID=Europe/Copenhagen:20261131T100000"  # the same event typed with an impossible date


def library() -> list:  # type: ignore[type-arg]
    return parse_ics((FEEDS / "library.ics").read_bytes(), TZ, *WINDOW, "web")


# -- parsing -----------------------------------------------------------------------------------


def test_weekly_recurrence_with_an_exdate_and_a_moved_occurrence() -> None:
    cafe = [e for e in library() if e.title.startswith("Sprogcafé")]
    starts = [e.start.isoformat() for e in cafe]
    assert "2026-10-15T16:00:00+02:00" not in starts  # EXDATE
    assert "2026-10-22T16:00:00+02:00" not in starts  # moved by RECURRENCE-ID ...
    moved = [e for e in cafe if "flyttet" in e.title]
    assert [(e.start.isoformat(), e.room) for e in moved] == [("2026-10-23T14:00:00+02:00", "Mødelokale 2")]
    assert len(cafe) == 7  # COUNT=8 minus one EXDATE; the moved one is still there
    assert len({e.id for e in cafe}) == 7
    # ids are stable from one fetch to the next (sign-ups refer to them)
    assert [e.id for e in cafe] == [e.id for e in library() if e.title.startswith("Sprogcafé")]


def test_a_weekly_event_keeps_its_local_time_across_both_dst_changes() -> None:
    events = library()
    cafe = {e.start.date().isoformat(): e for e in events if e.title == "Sprogcafé"}
    assert cafe["2026-10-08"].start.isoformat() == "2026-10-08T16:00:00+02:00"  # summer time
    assert cafe["2026-10-29"].start.isoformat() == "2026-10-29T16:00:00+01:00"  # after the last Sunday of October
    club = [e.start.isoformat() for e in events if e.title == "Læseklub"]
    assert club == ["2027-03-20T10:00:00+01:00", "2027-03-27T10:00:00+01:00", "2027-04-03T10:00:00+02:00"]


def test_an_event_across_the_night_the_clocks_go_back_lasts_seven_hours() -> None:
    [night] = [e for e in library() if e.title.startswith("Kulturnat")]
    assert night.start.isoformat() == "2026-10-24T22:00:00+02:00"
    assert night.end.isoformat() == "2026-10-25T04:00:00+01:00"
    # (same-zone subtraction in Python is wall-clock: 6 h; the real length is 7 h)
    assert night.end.astimezone(UTC) - night.start.astimezone(UTC) == timedelta(hours=7)


def clock_changes() -> list:  # type: ignore[type-arg]
    return parse_ics((FEEDS / "clock_changes.ics").read_bytes(), TZ, *WINDOW, "web")


def real_local_time(text: str) -> bool:
    """Whether an ISO time is one a clock on the wall shows (not 02:30+01:00 on the night 02:00 → 03:00)."""
    moment = datetime.fromisoformat(text)
    return moment.astimezone(UTC).astimezone(TZ).isoformat() == text


def test_a_duration_across_the_night_the_clocks_go_forward_is_exact_time() -> None:
    # RFC 5545 §3.3.6: PT4H is four hours of exact time; 23:00 + 4 h the night of 28 March 2027 is 04:00 CEST.
    # (recurring-ical-events writes every occurrence with a wall-clock DTEND, 03:00; parse_ics keeps DURATION.)
    [night] = [e for e in clock_changes() if e.title == "Natlæsning"]
    assert night.start.isoformat() == "2027-03-27T23:00:00+01:00"
    assert night.end.isoformat() == "2027-03-28T04:00:00+02:00"
    assert night.end.astimezone(UTC) - night.start.astimezone(UTC) == timedelta(hours=4)


def test_a_start_in_the_spring_forward_gap_is_read_with_the_offset_before_it() -> None:
    # RFC 5545 §3.3.5: 02:30 on 28 March 2027 does not exist; read with +01:00 it is 01:30 UTC, 03:30 CEST.
    stars = [e for e in clock_changes() if e.title == "Stjernekig fra taget"]
    spans = [(e.start.isoformat(), e.end.isoformat()) for e in stars]
    assert spans == [("2027-03-21T02:30:00+01:00", "2027-03-21T03:15:00+01:00"),
                     ("2027-03-28T03:30:00+02:00", "2027-03-28T04:15:00+02:00"),  # its 45 minutes, after the gap
                     ("2027-04-04T02:30:00+02:00", "2027-04-04T03:15:00+02:00")]
    for event in clock_changes() + library():
        assert event.end >= event.start, event
        assert real_local_time(event.start.isoformat()) and real_local_time(event.end.isoformat()), event


def test_tentative_events_are_marked() -> None:
    events = {e.title: e for e in clock_changes() + library()}
    assert events["Sommerfest i gården"].tentative and events["Sommerfest i gården"].state == "scheduled"
    assert not events["Natlæsning"].tentative and not events["Forfatteraften"].tentative


def test_an_impossible_date_is_named_and_the_other_events_are_read() -> None:
    body = (FEEDS / "library.ics").read_text().replace(IT_CAFE_DATE, NOVEMBER_31)
    problems: list = []  # type: ignore[type-arg]
    events = parse_ics(body, TZ, *WINDOW, "web", problems=problems)
    assert [(p.event, p.reason) for p in problems] == [
        ("IT-café for seniorer", "Its start 20261131T100000 is not a real date or time.")]
    assert "IT-café for seniorer" not in {e.title for e in events}
    assert {e.title for e in events} == {e.title for e in library()} - {"IT-café for seniorer"}


def test_all_day_cancelled_and_seats() -> None:
    events = {e.title: e for e in library()}
    sale = events["Bogudsalg"]
    assert sale.all_day and sale.start.isoformat() == "2026-10-26T00:00:00+01:00"
    assert sale.end.isoformat() == "2026-10-28T00:00:00+01:00"
    assert events["Forfatteraften"].state == "cancelled"
    assert events["IT-café for seniorer"].seats == 12 and events["Sprogcafé"].seats is None


def test_dpl_cms_events_and_their_states() -> None:
    events = parse_dpl((FEEDS / "dpl_events.json").read_bytes(), TZ, datetime(2026, 10, 1, tzinfo=TZ),
                       datetime(2026, 11, 1, tzinfo=TZ), "dplcms")
    states = {e.title: (e.state, e.room) for e in events}
    assert states == {"Strikkecafé": ("scheduled", "Læsesalen"), "Foredrag: Byens historie": ("sold_out", "Salen"),
                      "Koncert i gården": ("cancelled", "Gården"), "Babysalmesang": ("scheduled", "Børneafdelingen")}
    assert all(e.seats is None for e in events)  # DPL sells its own tickets
    with pytest.raises(FeedError, match="not JSON"):
        parse_dpl(b"<html>502 Bad Gateway</html>", TZ, *WINDOW, "dplcms")
    with pytest.raises(FeedError, match="not a list"):
        parse_dpl(b'{"message": "Access denied"}', TZ, *WINDOW, "dplcms")


def test_a_malformed_feed_is_a_clear_error() -> None:
    with pytest.raises(FeedError, match="broken"):
        parse_ics((FEEDS / "malformed.ics").read_bytes(), TZ, *WINDOW, "web")
    with pytest.raises(FeedError, match="not an iCalendar feed"):
        parse_ics(b"<!doctype html><title>Siden findes ikke</title>", TZ, *WINDOW, "web")


def test_feed_config_errors_name_their_key_path() -> None:
    config = load_config(SITE)
    raw = {**config.raw, "events": {"feeds": [{"name": "web", "url": "ftp://x", "kind": "ics"},
                                              {"name": "cms", "url": "https://x", "kind": "rss"}],
                                    "refresh_min": 0}}
    with pytest.raises(ConfigError) as caught:
        parse_settings(parse_config(raw, SITE))
    text = "\n".join(caught.value.problems)
    assert "events.feeds[0].url: expected an http(s) address" in text
    assert "events.feeds[1].kind: expected ics or dpl" in text
    assert "events.refresh_min: expected a number from 1 to 1440" in text


# -- a real feed server --------------------------------------------------------------------------


class FeedServer:
    """Serves ``body`` with an ETag; ``mode`` = ok | broken | sleep | error."""

    def __init__(self, body: bytes):
        self.body = body
        self.mode = "ok"
        self.requests: list[dict[str, str]] = []
        self.sleep_s = 3.0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802
                server.requests.append(dict(self.headers))
                if server.mode == "sleep":
                    time.sleep(server.sleep_s)
                if server.mode == "error":
                    self.send_response(500)
                    self.end_headers()
                    return
                body = server.body if server.mode != "broken" else (FEEDS / "malformed.ics").read_bytes()
                etag = f'"{hash(body) & 0xFFFFFFFF:x}"'
                if self.headers.get("If-None-Match") == etag:
                    self.send_response(304)
                    self.send_header("ETag", etag)
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Type", "text/calendar; charset=utf-8")
                self.send_header("ETag", etag)
                self.send_header("Last-Modified", "Mon, 21 Sep 2026 08:00:00 GMT")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/arrangementer.ics"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture()
def feed_server() -> Iterator[FeedServer]:
    server = FeedServer((FEEDS / "library.ics").read_bytes())
    yield server
    server.close()


def fetcher_for(server: FeedServer, cache: Path, timeout: float = 5.0) -> tuple[FeedFetcher, dict[str, list]]:
    delivered: dict[str, list] = {}  # type: ignore[type-arg]
    settings = EventSettings(feeds=(Feed("web", server.url, "ics"),), timeout_s=timeout)
    fetcher = FeedFetcher(settings, TZ, cache, lambda name, events: delivered.__setitem__(name, events),
                          clock=lambda: datetime(2026, 10, 20, 9, 0, tzinfo=TZ))
    return fetcher, delivered


def test_conditional_get_and_304(feed_server: FeedServer, tmp_path: Path) -> None:
    fetcher, delivered = fetcher_for(feed_server, tmp_path)
    feed = fetcher.settings.feeds[0]
    fetcher.fetch(feed)
    assert len(delivered["web"]) > 5 and fetcher.status["web"].ok
    assert (tmp_path / "web.body").exists() and json.loads((tmp_path / "web.json").read_text())["etag"]
    delivered.clear()
    fetcher.fetch(feed)
    assert feed_server.requests[-1].get("If-None-Match") and feed_server.requests[-1].get("If-Modified-Since")
    assert fetcher.status["web"].not_modified == 1 and fetcher.status["web"].ok
    assert "web" not in delivered  # same body, same day: nothing to do
    # a new fetcher (a restarted hub) shows the cached programme before any network
    again, delivered_again = fetcher_for(feed_server, tmp_path)
    again.load_cache()
    assert len(delivered_again["web"]) > 5 and again.status["web"].from_cache


def test_a_broken_feed_keeps_the_last_good_programme(feed_server: FeedServer, tmp_path: Path) -> None:
    fetcher, delivered = fetcher_for(feed_server, tmp_path)
    feed = fetcher.settings.feeds[0]
    fetcher.fetch(feed)
    good = delivered["web"]
    feed_server.mode = "broken"
    fetcher.fetch(feed)
    status = fetcher.status["web"]
    assert not status.ok and "broken" in (status.error or "") and "last good programme" in (status.error or "")
    assert delivered["web"] is good
    assert b"BEGIN:VEVENT" in (tmp_path / "web.body").read_bytes() and b"SOMETIMES" not in (
        tmp_path / "web.body").read_bytes()
    feed_server.mode = "error"
    fetcher.fetch(feed)
    assert "HTTP 500" in (fetcher.status["web"].error or "") and delivered["web"] is good


def test_a_feed_that_does_not_answer_times_out(feed_server: FeedServer, tmp_path: Path) -> None:
    fetcher, delivered = fetcher_for(feed_server, tmp_path, timeout=0.3)
    feed_server.mode = "sleep"
    fetcher.fetch(fetcher.settings.feeds[0])
    status = fetcher.status["web"]
    assert not status.ok and "did not answer within 0.3 s" in (status.error or "")
    assert "web" not in delivered


def test_a_feed_with_an_impossible_date_never_silently_replaces_the_good_one(
        feed_server: FeedServer, tmp_path: Path) -> None:
    fetcher, delivered = fetcher_for(feed_server, tmp_path)
    feed = fetcher.settings.feeds[0]
    fetcher.fetch(feed)
    good_body = (tmp_path / "web.body").read_bytes()
    [cafe] = [e for e in delivered["web"] if e.title == "IT-café for seniorer"]
    # The library's next export: a new event, and the IT café typed as 31 November.
    new_event = ("BEGIN:VEVENT\r\nUID:juleklip-2026@sonderbro.example\r\nDTSTAMP:20261001T080000Z\r\n"
                 "SUMMARY:Juleklip\r\nDTSTART;TZID=Europe/Copenhagen:20261029T150000\r\n"
                 "DTEND;TZID=Europe/Copenhagen:20261029T170000\r\nEND:VEVENT\r\nEND:VCALENDAR")
    feed_server.body = good_body.replace(IT_CAFE_DATE.encode(), NOVEMBER_31.encode()) \
        .replace(b"END:VCALENDAR", new_event.encode())
    fetcher.fetch(feed)
    status = fetcher.status["web"].json()
    assert not status["ok"] and status["problems"] == [
        {"event": "IT-café for seniorer", "reason": "Its start 20261131T100000 is not a real date or time.",
         "code": "bad_start", "value": "20261131T100000"}]
    assert "could not be read" in status["error"] and "last good copy" in status["error"]
    titles = {e.title: e for e in delivered["web"]}
    assert "Juleklip" in titles  # the new, readable event is shown ...
    assert titles["IT-café for seniorer"].id == cafe.id  # ... and the unreadable one as last read (sign-ups hold)
    assert titles["IT-café for seniorer"].start == cafe.start
    assert (tmp_path / "web.body").read_bytes() == good_body  # the cache keeps the good copy
    # a restarted hub starts from the good copy, not the degraded one
    again, delivered_again = fetcher_for(feed_server, tmp_path)
    again.load_cache()
    assert "IT-café for seniorer" in {e.title for e in delivered_again["web"]} and again.status["web"].ok
    # the library fixes its feed: read, cached, and the problem is gone
    feed_server.body = feed_server.body.replace(b"20261131T100000", b"20261028T100000")
    fetcher.fetch(feed)
    assert fetcher.status["web"].ok and fetcher.status["web"].json()["problems"] == []
    assert b"Juleklip" in (tmp_path / "web.body").read_bytes()


# -- through the hub: events/today, GET /events, staff events, sign-ups --------------------------


def test_feeds_reach_events_today_and_the_kiosk(feed_server: FeedServer, tmp_path: Path) -> None:
    config = load_config(SITE)
    raw = {**config.raw, "events": {"feeds": [{"name": "web", "url": feed_server.url, "kind": "ics"},
                                              {"name": "dplcms", "url": (FEEDS / "dpl_events.json").as_uri(),
                                               "kind": "dpl"}]}}
    config = parse_config(raw, SITE)
    now = datetime(2026, 10, 26, 9, 0, tzinfo=TZ)
    hub = Hub(config, SQLiteStore(tmp_path / "hub.sqlite3", config.site_id), clock=lambda: now).start()
    app = create_app(hub, plugins=("server.bookings", "server.events"))
    try:
        with TestClient(app) as client:
            assert app.state.feeds.wait_rounds(1, 20)
            hub.call(lambda engine, now: None)  # the delivered events are applied before this
            today = hub.retained_state()["events/today"]
            assert today["day"] == "2026-10-26"
            titles = [(e["title"], e["state"]) for e in today["events"] if e["start"].startswith("2026-10-26")]
            assert ("Bogudsalg", "scheduled") in titles and ("Foredrag: Byens historie", "sold_out") in titles
            # an open kiosk list follows sign-up state
            assert set(today["events"][0]) == {"id", "title", "start", "end", "room", "state", "seats_left",
                                               "waiting_list_left", "signup", "tentative"}
            listing = client.get("/api/v1/events?days=3").json()
            cancelled = [e for e in listing["events"] if e["title"] == "Koncert i gården"]
            assert cancelled and cancelled[0]["state"] == "cancelled"
            it_cafe = [e for e in client.get("/api/v1/events?days=7").json()["events"]
                       if e["title"] == "IT-café for seniorer"][0]
            assert it_cafe["seats_left"] == 12 and it_cafe["signup"] is True
            r = client.post(f"/api/v1/events/{it_cafe['id']}/signups", json={"language": "da"},
                            headers={**KIOSK, "Idempotency-Key": "signup-0001"})
            assert r.status_code == 201 and r.json()["seat"] == 1 and r.json()["event"]["seats_left"] == 11
            dpl = [e for e in listing["events"] if e["source"] == "dplcms"][0]
            no = client.post(f"/api/v1/events/{dpl['id']}/signups", headers={**KIOSK, "Idempotency-Key": "signup-02"})
            assert no.status_code == 409 and no.json()["error"]["code"] == "no_signup"
            feeds = client.get("/api/v1/events/feeds", headers=STAFF).json()["feeds"]
            assert {f["name"]: f["ok"] for f in feeds} == {"web": True, "dplcms": False}
            # the DPL answer's one event without a date_time is named for staff, not dropped in silence
            [dpl_status] = [f for f in feeds if f["name"] == "dplcms"]
            assert dpl_status["problems"] == [{"event": "Uden tidspunkt", "code": "no_date", "value": "",
                                               "reason": "It has no title or no date and time."}]
    finally:
        app.state.feeds.stop()
        hub.stop()


def test_clock_changes_tentative_events_and_problems_through_the_hub(tmp_path: Path) -> None:
    """The real fetcher reads a real HTTP feed into the real hub: events/today and GET /events/feeds."""
    body = (FEEDS / "clock_changes.ics").read_bytes()
    server = FeedServer(body.replace(b"END:VCALENDAR", (
        "BEGIN:VEVENT\r\nUID:bad-2027@sonderbro.example\r\nDTSTAMP:20260901T080000Z\r\nSUMMARY:Påskeklip\r\n"
        "DTSTART;TZID=Europe/Copenhagen:20270231T100000\r\nDURATION:PT2H\r\nEND:VEVENT\r\nEND:VCALENDAR").encode()))
    config = load_config(SITE)
    config = parse_config({**config.raw, "events": {"feeds": [{"name": "web", "url": server.url, "kind": "ics"}]}},
                          SITE)
    now = datetime(2027, 3, 26, 9, 0, tzinfo=TZ)
    hub = Hub(config, SQLiteStore(tmp_path / "hub.sqlite3", config.site_id), clock=lambda: now).start()
    app = create_app(hub, plugins=("server.bookings", "server.events"))
    try:
        with TestClient(app) as client:
            assert app.state.feeds.wait_rounds(1, 20)
            hub.call(lambda engine, now: None)  # the delivered events are applied before this
            events = hub.retained_state()["events/today"]["events"]
            spans = {(e["title"], e["start"], e["end"], e["tentative"]) for e in events}
            assert ("Sommerfest i gården", "2027-03-26T15:00:00+01:00", "2027-03-26T18:00:00+01:00", True) in spans
            assert ("Natlæsning", "2027-03-27T23:00:00+01:00", "2027-03-28T04:00:00+02:00", False) in spans
            assert ("Stjernekig fra taget", "2027-03-28T03:30:00+02:00", "2027-03-28T04:15:00+02:00", False) in spans
            listing = client.get("/api/v1/events?days=7").json()["events"]
            assert [e["tentative"] for e in listing if e["title"] == "Sommerfest i gården"] == [True]
            [feed] = client.get("/api/v1/events/feeds", headers=STAFF).json()["feeds"]
            assert not feed["ok"] and feed["problems"] == [
                {"event": "Påskeklip", "reason": "Its start 20270231T100000 is not a real date or time.",
                 "code": "bad_start", "value": "20270231T100000"}]
    finally:
        app.state.feeds.stop()
        hub.stop()
        server.close()


@pytest.mark.browser
def test_staff_page_names_the_event_a_feed_could_not_read(live_broker: Any, browser: Any, tmp_path: Path) -> None:
    """The real hub reads a real HTTP feed with a 31 November in it; staff see which event, and why."""
    import tomllib

    from playwright.sync_api import expect

    from server.config import SAMPLE_SITE
    from toolkit.hub_in_process import DEMO_PASSWORD, DEMO_STAFF_BLOCK, DEMO_USER, running_hub

    server = FeedServer((FEEDS / "library.ics").read_bytes().replace(IT_CAFE_DATE.encode(), NOVEMBER_31.encode()))
    data = tomllib.loads(SAMPLE_SITE.read_text(encoding="utf-8"))
    data["hub"]["broker"] = live_broker.url
    data["hub"]["database"] = f"sqlite:///{tmp_path / 'hub.sqlite3'}"
    data["staff"] = DEMO_STAFF_BLOCK
    data["events"] = {"feeds": [{"name": "arrangementer", "url": server.url, "kind": "ics"}]}
    try:
        with running_hub(parse_config(data, tmp_path / "site.toml")) as hub:
            assert hub.app.state.feeds.wait_rounds(1, 20)
            page = browser.new_context(viewport={"width": 1366, "height": 900}).new_page()
            page.goto(hub.url + "/staff/login?lang=da")
            page.fill("#username", DEMO_USER)
            page.fill("#password", DEMO_PASSWORD)
            page.click("button[type=submit]")
            feed = page.locator("[data-feed=arrangementer]")
            expect(feed).to_contain_text("kræver opmærksomhed")
            expect(feed).not_to_contain_text("last good copy")  # there was none: this was the first read
            expect(feed.locator("[data-problem='IT-café for seniorer']")).to_have_text(
                "⚠ Ikke vist: IT-café for seniorer – "
                "starttidspunktet 20261131T100000 er ikke en rigtig dato eller tid.")
            expect(page.locator("#feeds-h")).to_have_text("Arrangementsfeeds")
            feed.scroll_into_view_if_needed()
            page.screenshot(path=str(tmp_path / "staff-feeds.png"), full_page=True)
            page.close()
    finally:
        server.close()


def test_the_kiosk_says_a_tentative_feed_event_is_to_be_confirmed(live_broker: Any, tmp_path: Path) -> None:
    """A TENTATIVE event of a real HTTP feed, through the real hub, on the real kiosk's What's on."""
    import tomllib

    from kiosk.app import KioskApp
    from kiosk.config import KioskConfig
    from kiosk.driver import Driver
    from server.config import SAMPLE_SITE
    from toolkit.hub_in_process import DEMO_STAFF_BLOCK, running_hub

    def walk(widget: Any) -> Iterator[Any]:
        yield widget
        for child in widget.children:
            yield from walk(child)

    body = (FEEDS / "clock_changes.ics").read_bytes().replace(b"20270326T150000", b"20261123T150000") \
        .replace(b"20270326T180000", b"20261123T180000")  # the Sommerfest on the hub's day (23 November 2026)
    server = FeedServer(body)
    data = tomllib.loads(SAMPLE_SITE.read_text(encoding="utf-8"))
    data["hub"]["broker"] = live_broker.url
    data["hub"]["database"] = f"sqlite:///{tmp_path / 'hub.sqlite3'}"
    data["staff"] = DEMO_STAFF_BLOCK
    data["events"] = {"feeds": [{"name": "arrangementer", "url": server.url, "kind": "ics"}]}
    driver = None
    try:
        with running_hub(parse_config(data, tmp_path / "site.toml")) as hub:
            assert hub.app.state.feeds.wait_rounds(1, 20)
            config = KioskConfig(hub=hub.url, token="demo-kiosk1-token-change-me", device="kiosk1", language="da",
                                 http_timeout=2.0, retries=1, probe_seconds=0.3)
            driver = Driver(KioskApp(config), (800, 480))
            driver.wait(lambda: driver.app.screen("home").ids.tiles.children, 15, "service tiles")
            driver.tap(next(w for w in walk(driver.app.screen("home")) if getattr(w, "text", None) == "Arrangementer"
                            and hasattr(w, "on_release")))
            events = driver.app.screen("events")
            rows = lambda: [v for v in events.ids.events.layout_manager.view_indices if getattr(v, "head", "")]  # noqa: E731
            driver.wait(lambda: any("Sommerfest" in v.head for v in rows()), 15, "the feed's events")
            [party] = [v for v in rows() if "Sommerfest" in v.head]
            assert party.extra == "Gården · Ikke bekræftet"
            assert all("Ikke bekræftet" not in v.extra for v in rows() if "Sommerfest" not in v.head)
    finally:
        if driver is not None:
            driver.stop()
        server.close()
