"""The centre's calendar against a real PostgreSQL, in this process: a crowd racing for the last place gets it
once; the branch's reserve is never sold online; a handed-over day is not sold; the config's mistakes by key path;
the centre's words in five languages; the code spaces apart. (The whole path with processes and a WAN cut:
tests/test_calendar_e2e.py.)"""

from __future__ import annotations

import threading
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from psycopg_pool import ConnectionPool

from central.booking_pages import CENTRE_MSGIDS
from central.calendar import BRANCH_OWNS, Calendar
from central.config import load_centre
from central.ingest import register_branches
from central.schema import migrate
from server import codes
from server.bookings.public import LOCALE_DIR
from server.config import ConfigError
from tests.conftest import TEST_SITE
from toolkit.central_process import write_centre_config
from vuoro.clock import ENV as CLOCK_ENV
from vuoro.clock import write_clock_file
from vuoro.i18n import LANGUAGES, untranslated

TZ = ZoneInfo("Europe/Copenhagen")
NOW = datetime(2026, 12, 1, 7, 0, tzinfo=TZ)


def site(folder: Path, extra: str = "", reserve: int = 0) -> Path:
    text = TEST_SITE.read_text(encoding="utf-8").replace('id = "sonderbro"', 'id = "north"', 1)
    text = text.replace("[bookings]\n", "[bookings]\ncentre_calendar = true\n", 1)
    text = text.replace('online = { asks = ["name"], until_min = 30 }',
                        f'online = {{ asks = ["name"], until_min = 30, reserve = {reserve} }}')
    text += '\n[central]\nurl = "http://127.0.0.1:9"\ntoken = "north-uplink-token-0123456789"\n' + extra
    path = folder / "north.toml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture()
def calendar(tmp_path, postgres_db, monkeypatch):  # type: ignore[no-untyped-def]
    clock = tmp_path / "clock"
    write_clock_file(clock, NOW)
    monkeypatch.setenv(CLOCK_ENV, str(clock))
    config = load_centre(write_centre_config(tmp_path / "centre.toml", postgres_db, {
        "north": ("north-uplink-token-0123456789", site(tmp_path))}))
    migrate(postgres_db)
    pool = ConnectionPool(postgres_db, min_size=1, max_size=10, open=True)
    with pool.connection() as db:
        register_branches(db, {"north": "North"})
    yield Calendar(config, pool)
    pool.close()


def book(cal: Calendar, start: datetime, service: str = "bibliotekar", name: str = "Ann") -> str:
    try:
        made, row = cal.book("north", service=service, start=start, slots=1, key=uuid.uuid4().hex, language="en",
                             name=name, phone="+45 12 34 56 78")
        return str(row["code"])
    except Exception as exc:  # the refusal's code, for the race below
        return f"refused:{getattr(exc, 'code', exc)}"


def test_a_crowd_racing_for_the_last_place_gets_it_once(calendar: Calendar) -> None:
    start = (NOW + timedelta(days=2)).replace(hour=10)
    results: list[str] = []
    threads = [threading.Thread(target=lambda i=i: results.append(book(calendar, start, name=f"P{i}")))
               for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    won = [r for r in results if not r.startswith("refused")]
    assert len(won) == 1 and len(won[0]) == 7, results
    assert sorted(set(results) - set(won)) == ["refused:full"], results  # every loser told plainly
    with calendar.pool.connection() as db:
        assert db.execute("SELECT count(*) FROM calendar_claims").fetchone()[0] == 1


def test_a_handed_over_day_is_not_sold_and_its_bookings_go_to_the_branch(calendar: Calendar) -> None:
    tomorrow = (NOW + timedelta(days=1)).replace(hour=10)
    code = book(calendar, tomorrow)
    assert len(code) == 7
    rows = calendar.handover("north", tomorrow.date())
    assert [r["code"] for r in rows] == [code] and rows[0]["name"] == "Ann"  # staff at the branch see the name
    assert calendar.handover("north", tomorrow.date()) == rows  # asked again: the same answer
    assert book(calendar, tomorrow.replace(hour=11)) == f"refused:{BRANCH_OWNS}"
    listing = calendar.listing("north", "bibliotekar", None)
    assert tomorrow.date().isoformat() not in listing["days"]


def test_the_branchs_reserve_is_never_sold_online(tmp_path, postgres_db, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    clock = tmp_path / "clock"
    write_clock_file(clock, NOW)
    monkeypatch.setenv(CLOCK_ENV, str(clock))
    config = load_centre(write_centre_config(tmp_path / "centre.toml", postgres_db, {
        "north": ("north-uplink-token-0123456789", site(tmp_path, reserve=1))}))
    migrate(postgres_db)
    with ConnectionPool(postgres_db, min_size=1, max_size=2, open=True) as pool:
        with pool.connection() as db:
            register_branches(db, {"north": "North"})
        cal = Calendar(config, pool)
        # bibliotekar has one place and a reserve of one: the centre has nothing of it to sell
        assert cal.listing("north", "bibliotekar", None)["days"] == []
        assert book(cal, (NOW + timedelta(days=2)).replace(hour=10)).startswith("refused:")


def test_the_calendar_settings_are_checked_with_their_key_paths(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from server.bookings.settings import parse_settings
    from server.config import load_config

    text = TEST_SITE.read_text(encoding="utf-8").replace("[bookings]\n", "[bookings]\ncentre_calendar = true\n", 1)
    path = tmp_path / "alone.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as refused:
        parse_settings(load_config(path))
    assert "bookings.centre_calendar: expected a [central] section" in str(refused.value)
    path.write_text(text.replace("centre_calendar = true\n", "calendar_poll_s = 0\n", 1), encoding="utf-8")
    with pytest.raises(ConfigError) as refused:
        parse_settings(load_config(path))
    assert "bookings.calendar_poll_s" in str(refused.value)
    path.write_text(text.replace("centre_calendar = true\n", "", 1), encoding="utf-8")
    assert parse_settings(load_config(path)).calendar_poll_s == 5
    centre = write_centre_config(tmp_path / "centre.toml", "postgresql://x@127.0.0.1:1/x", {
        "north": ("north-uplink-token-0123456789", site(tmp_path))})
    centre.write_text(centre.read_text() + "\n[calendar]\naway_s = 0\n")
    with pytest.raises(ConfigError) as refused:
        load_centre(centre)
    assert "calendar.away_s: expected seconds from 1 to 3600, got 0" in str(refused.value)


def test_the_centres_words_are_in_every_language() -> None:
    for language in LANGUAGES:
        assert untranslated(LOCALE_DIR, language, list(CENTRE_MSGIDS)) == [], language


def test_centre_and_branch_codes_are_apart_and_read_alike() -> None:
    assert codes.CENTRE_LENGTH != codes.LENGTH  # disjoint by length: a centre code is never a branch's
    assert codes.pretty("7KQ3MZA") == "7KQ-3MZA" and codes.pretty("7KQ3MZ") == "7KQ-3MZ"
    assert codes.normalise("7kq-3mza") == "7KQ3MZA" and codes.problem("7KQ3MZA") is None


def test_a_bookings_change_goes_out_in_its_commit_and_a_new_stream_ships_the_bookings(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The centre's calendar hears of a branch's bookings through the outbox, exactly like tickets: a booking's
    row is written in the commit that made it; a new stream (a re-snapshot, a site joining) ships every booking."""
    import json
    import sqlite3

    from server.bookings import records
    from server.bookings.book import BookingBook
    from server.bookings.settings import parse_settings
    from server.config import load_config
    from server.engine import Outcome
    from server.hub import Hub
    from server.store import SQLiteStore
    from server.uplink.outbox import Resnapshot

    config = load_config(TEST_SITE)
    path = tmp_path / "hub.sqlite3"
    store = SQLiteStore(path, config.site_id, outbox=True)
    hub = Hub(config, store).start()
    try:
        store.writers.update({records.BookingRow: records.write_booking})
        hub.call(lambda engine, now: store.migrate_plugin("bookings", records.SCHEMA))
        book = BookingBook(config, parse_settings(config), store)
        start = (datetime.now(TZ) + timedelta(days=2)).replace(hour=10, minute=0, second=0, microsecond=0)
        _, made = hub.call(lambda engine, now: book.book_online(engine, now, service="bibliotekar", start=start,
                                                               slots=1, key="web:k1", language="da", name="Ann"))

        def outbox() -> list[tuple[str, dict]]:
            with sqlite3.connect(path) as db:
                return [(k, json.loads(b)) for k, b in db.execute("SELECT kind, body FROM outbox ORDER BY seq")]

        shipped = [body for kind, body in outbox() if kind == "booking"]
        assert [(b["code"], b["status"], b["name"]) for b in shipped] == [(made["code"], "booked", "Ann")]
        hub.call(lambda engine, now: book.cancel_online(engine, now, made["code"]))
        hub.call(lambda engine, now: Outcome(records=[Resnapshot(config.site_id)]))
        again = [body for kind, body in outbox() if kind == "booking"]
        assert [(b["code"], b["status"], b["start"]) for b in again] == [
            (made["code"], "cancelled", start.astimezone(ZoneInfo("UTC")).isoformat())]
    finally:
        hub.stop()


def test_the_branchs_rows_merge_by_the_one_rule_and_a_move_there_is_kept(calendar: Calendar) -> None:
    """What the ingest does with a branch's ``booking`` rows for a booking the centre sold: a later check-in beats
    the centre's cancellation, a stale 'booked' never undoes it, and a move by staff at the branch (the day is
    theirs) is taken with the centre's places of the old time let go."""
    from central.calendar import merge_branch_rows

    tomorrow = (NOW + timedelta(days=1)).replace(hour=10)
    code = book(calendar, tomorrow)
    [row] = calendar.handover("north", tomorrow.date())
    calendar.cancel(code)  # the citizen cancels at the centre during a cut ...
    moved = tomorrow.replace(hour=12).astimezone(ZoneInfo("UTC"))

    def branch_row(status: str, start: datetime) -> dict:  # type: ignore[type-arg]
        return {"kind": "booking", "at": NOW.isoformat(), "body": {
            **row, "status": status, "start": start.isoformat(), "end": (start + timedelta(minutes=15)).isoformat(),
            "day": tomorrow.date().isoformat(), "checked_in_at": NOW.isoformat() if status == "checked_in" else None}}

    with calendar.pool.connection() as db, db.transaction():  # ... while the branch moved it and checked it in
        merge_branch_rows(db, "north", [branch_row("booked", moved), branch_row("checked_in", moved)])
    with calendar.pool.connection() as db, db.transaction():  # an old row arriving late changes nothing
        merge_branch_rows(db, "north", [branch_row("booked", moved)])
    found = calendar.find(code)
    assert (found["status"], found["start_at"]) == ("checked_in", moved)
    with calendar.pool.connection() as db:
        assert db.execute("SELECT count(*) FROM calendar_claims").fetchone()[0] == 0


def test_a_citizen_moves_a_centre_booking_and_the_old_time_is_free_again(calendar: Calendar) -> None:
    day = (NOW + timedelta(days=2)).replace(hour=10)
    code = book(calendar, day)
    other = book(calendar, day.replace(hour=12), name="Bo")
    assert len(other) == 7
    with pytest.raises(Exception) as full:  # onto Bo's time (one place): refused, nothing changes
        calendar.move(code, day.replace(hour=12))
    assert getattr(full.value, "code", None) == "full"
    assert calendar.find(code)["start_at"] == day
    moved = calendar.move(code, day.replace(hour=11))
    assert moved["start_at"] == day.replace(hour=11) and moved["code"] == code
    assert len(book(calendar, day, name="Cy")) == 7  # the old time is free again
    assert book(calendar, day.replace(hour=11), name="Di") == "refused:full"  # the new one is taken
    calendar.handover("north", day.date())
    with pytest.raises(Exception) as owned:
        calendar.move(code, day.replace(hour=13))
    assert getattr(owned.value, "code", None) == BRANCH_OWNS


def test_one_citizen_booking_several_times_at_once_gets_the_per_day_limit(calendar: Calendar) -> None:
    """Sales run side by side now (the branch's lock is shared); one citizen's still run one after the other: eight
    tabs of the same phone number (written differently) for eight different times of one day get one booking."""
    day = (NOW + timedelta(days=3)).replace(hour=10)
    phones = ["+45 40 00 00 01", "40000001", "+4540000001", "40 00 00 01"] * 2
    results: list[str] = []

    def sell(i: int) -> None:
        try:
            calendar.book("north", service="borgerservice", start=day + timedelta(minutes=15 * i), slots=1,
                          key=uuid.uuid4().hex, language="en", name="Ann", phone=phones[i])
            results.append("booked")
        except Exception as exc:
            results.append(str(getattr(exc, "code", exc)))

    threads = [threading.Thread(target=sell, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == ["booked"] + ["per_day"] * 7, results
    with calendar.pool.connection() as db:
        assert db.execute("SELECT count(*) FROM calendar_bookings WHERE status = 'booked'").fetchone()[0] == 1
