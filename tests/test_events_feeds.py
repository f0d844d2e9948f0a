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
            assert set(today["events"][0]) == {"id", "title", "start", "end", "room", "state", "seats_left",
                                               "waiting_list_left", "signup"}  # an open kiosk list follows it
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
            assert {f["name"]: f["ok"] for f in feeds} == {"web": True, "dplcms": True}
    finally:
        app.state.feeds.stop()
        hub.stop()
