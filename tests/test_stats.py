"""Statistics from a seeded, known day: every figure checked exactly, across midnight and DST changes."""

from __future__ import annotations

import csv
import io
import sqlite3
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from server import stats
from server.feedback import FeedbackRecord, write_feedback
from server.stats.records import SCHEMA_NAME, SCHEMA_STEPS
from server.store import SQLiteStore

CPH = ZoneInfo("Europe/Copenhagen")
TARGETS = {"kvik": 10.0, "bibliotekar": 20.0, "it": 20.0, "borgerservice": 5.0}
DAY = date(2026, 11, 23)  # a Monday in November: UTC+1


def utc(value: str) -> str:
    """'2026-11-23 10:00' local (Copenhagen), or '…Z' for UTC, → the store's UTC ISO text."""
    if value.endswith("Z"):
        return datetime.fromisoformat(value[:-1]).replace(tzinfo=UTC).isoformat()
    return datetime.fromisoformat(value).replace(tzinfo=CPH).astimezone(UTC).isoformat()


def ticket(tid: str, service: str, issued: str, *, called: str | None = None, finished: str | None = None,
           status: str = "done", origin: str = "walk_in", counter: str | None = None, transfers: int = 0,
           due: str | None = None, queued: str | None = None) -> tuple[Any, ...]:
    """A row in stats.TICKET_FIELDS order; times are local unless they end in Z."""
    issued_u = utc(issued)
    return (tid, tid, service, issued_u[:10], status, origin, "da", utc(queued) if queued else issued_u, issued_u,
            utc(due) if due else None, counter, utc(called) if called else None, utc(finished) if finished else None,
            0, transfers)


def known_day() -> tuple[list[tuple[Any, ...]], dict[str, str]]:
    d = "2026-11-23"
    rows = [
        ticket("K001", "kvik", f"{d} 10:00:00", called=f"{d} 10:02:00", finished=f"{d} 10:06:00", counter="kvik1"),
        ticket("K002", "kvik", f"{d} 10:01:00", called=f"{d} 10:06:00", finished=f"{d} 10:09:30", counter="kvik1"),
        ticket("K003", "kvik", f"{d} 10:05:00", called=f"{d} 10:20:00", finished=f"{d} 10:22:00", status="no_show",
               counter="kvik2"),
        ticket("K004", "kvik", f"{d} 11:10:00", called=f"{d} 11:11:00", finished=f"{d} 11:21:00", counter="kvik2"),
        ticket("K005", "kvik", f"{d} 11:30:00", finished="2026-11-24 00:00:00", status="expired"),
        ticket("L001", "bibliotekar", f"{d} 10:30:00", called=f"{d} 10:40:00", finished=f"{d} 10:55:00",
               counter="bib1"),
        # a booking that checked in 10 minutes early: its wait starts at its due time, 11:00
        ticket("L002", "bibliotekar", f"{d} 10:50:00", called=f"{d} 11:03:00", finished=f"{d} 11:18:00",
               counter="bib1", origin="booking", due=f"{d} 11:00:00"),
        # KVIK → IT: first called 10:12 at kvik1, transferred, called again 10:30 at bib1
        ticket("K006", "it", f"{d} 10:10:00", called=f"{d} 10:30:00", finished=f"{d} 10:40:00", counter="bib1",
               transfers=1),
    ]
    return rows, {"K006": utc(f"{d} 10:12:00")}


FEEDBACK = [
    stats.Feedback(utc("2026-11-23 10:10"), 5, "kvik", "exit1"),
    stats.Feedback(utc("2026-11-23 10:20"), 4, "kvik", "exit1"),
    stats.Feedback(utc("2026-11-23 11:40"), 1, None, "kiosk1"),
    stats.Feedback(utc("2026-11-23 11:45"), 5, "bibliotekar", "exit1"),
]


# -- percentiles ------------------------------------------------------------------------------------


def test_nearest_rank_percentiles() -> None:
    ten = [float(x) for x in range(1, 11)]
    assert stats.nearest_rank(ten, 90) == 9.0  # rank ⌈9⌉ = 9
    assert stats.nearest_rank(ten, 91) == 10.0  # rank ⌈9.1⌉ = 10
    assert stats.nearest_rank(ten, 50) == 5.0  # even n: the lower middle value
    assert stats.nearest_rank(ten, 100) == 10.0
    assert stats.nearest_rank(ten, 1) == 1.0
    assert stats.nearest_rank([7.0], 50) == 7.0 and stats.nearest_rank([7.0], 90) == 7.0
    assert stats.nearest_rank([1.0, 2.0, 3.0], 50) == 2.0
    assert stats.nearest_rank([], 50) is None
    with pytest.raises(ValueError):
        stats.nearest_rank(ten, 0)


# -- the known day ----------------------------------------------------------------------------------


def test_the_known_day_in_total() -> None:
    rows, first = known_day()
    total = stats.summarize(rows, CPH, targets=TARGETS, first_calls=first, feedback=FEEDBACK).total
    assert (total["issued"], total["served"], total["no_show"], total["expired"], total["open"]) == (8, 6, 1, 1, 0)
    assert (total["transferred"], total["transfers"], total["walk_in"], total["booking"]) == (1, 1, 7, 1)
    assert (total["bookings_kept"], total["bookings_no_show"]) == (1, 0)
    # waits of the 7 called tickets, sorted: 60 120 120 180 300 600 900
    assert total["called"] == 7
    assert total["wait_median_s"] == 180.0  # rank ⌈3.5⌉ = 4
    assert total["wait_p90_s"] == 900.0  # rank ⌈6.3⌉ = 7
    assert total["wait_max_s"] == 900.0
    assert total["wait_mean_s"] == 325.7  # 2280 / 7
    # service times of the 6 served: 210 240 600 600 900 900
    assert total["service_median_s"] == 600.0 and total["service_p90_s"] == 900.0
    # within target: all but K003 (15 min > 10) and K005 (expired uncalled)
    assert (total["within_target"], total["service_level"]) == (6, 0.75)
    assert total["feedback_count"] == 4 and total["feedback_mean"] == 3.75
    assert total["feedback_ratings"] == [1, 0, 0, 1, 2]


def test_a_transfer_waits_until_its_first_call_and_a_target_can_be_overridden() -> None:
    rows, first = known_day()
    without_log = stats.summarize(rows, CPH, ("service",), targets=TARGETS).groups
    it = next(g for g in without_log if g["service"] == "it")
    assert it["wait_max_s"] == 1200.0  # 10:10 → 10:30 when only the ticket row is known
    with_log = stats.summarize(rows, CPH, ("service",), targets=TARGETS, first_calls=first).groups
    assert next(g for g in with_log if g["service"] == "it")["wait_max_s"] == 120.0  # 10:10 → 10:12
    strict = stats.summarize(rows, CPH, targets=TARGETS, first_calls=first, target_override=2).total
    assert (strict["within_target"], strict["service_level"]) == (3, 0.375)  # K001, K004, K006 within 120 s


def test_the_known_day_by_hour_service_and_counter() -> None:
    rows, first = known_day()
    by_hour = stats.summarize(rows, CPH, ("hour",), targets=TARGETS, first_calls=first, feedback=FEEDBACK).groups
    assert [(g["hour"], g["issued"], g["feedback_count"]) for g in by_hour] == [(10, 6, 2), (11, 2, 2)]
    ten = by_hour[0]  # waits 120 300 900 600 180 120 → sorted 120 120 180 300 600 900
    assert (ten["wait_median_s"], ten["wait_p90_s"], ten["wait_max_s"]) == (180.0, 900.0, 900.0)

    by_service = stats.summarize(rows, CPH, ("service",), targets=TARGETS, first_calls=first,
                                 feedback=FEEDBACK).groups
    figures = {g["service"]: g for g in by_service}
    assert {s: g["issued"] for s, g in figures.items()} == {"bibliotekar": 2, "it": 1, "kvik": 5}
    kvik = figures["kvik"]  # waits 60 120 300 900
    assert (kvik["served"], kvik["no_show"], kvik["expired"]) == (3, 1, 1)
    assert (kvik["wait_median_s"], kvik["wait_p90_s"], kvik["service_median_s"]) == (120.0, 900.0, 240.0)
    assert (kvik["service_level"], kvik["feedback_count"], kvik["feedback_mean"]) == (0.6, 2, 4.5)
    assert figures["bibliotekar"]["wait_median_s"] == 180.0  # 180 (booking from 11:00) and 600
    assert figures["bibliotekar"]["feedback_mean"] == 5.0

    by_counter = stats.summarize(rows, CPH, ("counter",), targets=TARGETS, first_calls=first,
                                 feedback=FEEDBACK).groups
    assert [(g["counter"], g["issued"], g["served"]) for g in by_counter] == [
        ("", 1, 0), ("bib1", 3, 3), ("kvik1", 2, 2), ("kvik2", 2, 1)]
    assert all(g["feedback_count"] == 0 for g in by_counter)  # a rating has no counter

    by_day_service = stats.summarize(rows, CPH, ("day", "service"), targets=TARGETS).groups
    assert [(g["day"], g["service"], g["issued"], g["day_hours"]) for g in by_day_service] == [
        ("2026-11-23", "bibliotekar", 2, 24.0), ("2026-11-23", "it", 1, 24.0), ("2026-11-23", "kvik", 5, 24.0)]


def test_across_midnight_a_ticket_stays_on_its_issue_day() -> None:
    rows = [
        ticket("late", "kvik", "2026-11-23 23:50:00", called="2026-11-24 00:10:00", finished="2026-11-24 00:15:00"),
        ticket("first", "kvik", "2026-11-24 00:00:00", called="2026-11-24 00:01:00", finished="2026-11-24 00:02:00"),
        ticket("last", "kvik", "2026-11-23 23:59:59", status="expired", finished="2026-11-24 00:00:00"),
    ]
    groups = stats.summarize(rows, CPH, ("day", "hour"), targets=TARGETS).groups
    assert [(g["day"], g["hour"], g["issued"], g["wait_max_s"]) for g in groups] == [
        ("2026-11-23", 23, 2, 1200.0), ("2026-11-24", 0, 1, 60.0)]
    only_24th = stats.summarize(rows, CPH, targets=TARGETS, start=date(2026, 11, 24), end=date(2026, 11, 24))
    assert only_24th.total["issued"] == 1


def test_the_25_hour_day_in_october() -> None:
    # 2026-10-25: at 01:00 UTC Copenhagen goes from 03:00 CEST back to 02:00 CET; 02:xx happens twice.
    rows = [
        ticket("before", "kvik", "2026-10-24T21:59:59Z", called="2026-10-24T22:00:30Z", finished="2026-10-24T22:01Z"),
        ticket("midnight", "kvik", "2026-10-24T22:00:00Z", called="2026-10-24T22:05Z", finished="2026-10-24T22:06Z"),
        ticket("cest", "kvik", "2026-10-25T00:30:00Z", called="2026-10-25T00:50Z", finished="2026-10-25T00:55Z"),
        # queued 02:55 CEST, called 02:05 CET: the wall clock says −50 min, the truth is 10 min
        ticket("across", "kvik", "2026-10-25T00:55:00Z", called="2026-10-25T01:05Z", finished="2026-10-25T01:09Z"),
        ticket("cet", "kvik", "2026-10-25T01:30:00Z", called="2026-10-25T01:40Z", finished="2026-10-25T01:41Z"),
        ticket("late", "kvik", "2026-10-25T22:59:59Z", called="2026-10-25T23:00:59Z", finished="2026-10-25T23:02Z"),
        ticket("next", "kvik", "2026-10-25T23:00:00Z", called="2026-10-25T23:01Z", finished="2026-10-25T23:02Z"),
    ]
    groups = stats.summarize(rows, CPH, ("day", "hour"), targets=TARGETS).groups
    assert [(g["day"], g["hour"], g["issued"]) for g in groups] == [
        ("2026-10-24", 23, 1), ("2026-10-25", 0, 1), ("2026-10-25", 2, 3), ("2026-10-25", 23, 1),
        ("2026-10-26", 0, 1)]
    two = groups[2]  # waits 1200 (cest), 600 (across), 600 (cet)
    assert (two["wait_median_s"], two["wait_max_s"], two["service_median_s"]) == (600.0, 1200.0, 240.0)
    days = stats.summarize(rows, CPH, ("day",), targets=TARGETS).groups
    assert [(g["day"], g["issued"], g["day_hours"]) for g in days] == [
        ("2026-10-24", 1, 24.0), ("2026-10-25", 5, 25.0), ("2026-10-26", 1, 24.0)]
    assert stats.period_utc(date(2026, 10, 25), date(2026, 10, 25), CPH) == (
        datetime(2026, 10, 24, 22, tzinfo=UTC), datetime(2026, 10, 25, 23, tzinfo=UTC))


def test_the_23_hour_day_in_march() -> None:
    # 2026-03-29: at 01:00 UTC Copenhagen jumps from 02:00 CET to 03:00 CEST; there is no 02:xx.
    rows = [
        ticket("first", "kvik", "2026-03-28T23:00:00Z", called="2026-03-28T23:10Z", finished="2026-03-28T23:20Z"),
        ticket("cet", "kvik", "2026-03-29T00:59:59Z", called="2026-03-29T01:00:59Z", finished="2026-03-29T01:05Z"),
        ticket("gap", "kvik", "2026-03-29T00:50:00Z", called="2026-03-29T01:10Z", finished="2026-03-29T01:20Z"),
        ticket("cest", "kvik", "2026-03-29T01:00:00Z", called="2026-03-29T01:30Z", finished="2026-03-29T01:31Z"),
        ticket("late", "kvik", "2026-03-29T21:59:59Z", status="expired", finished="2026-03-29T22:00Z"),
        ticket("next", "kvik", "2026-03-29T22:00:00Z", called="2026-03-29T22:01Z", finished="2026-03-29T22:02Z"),
    ]
    groups = stats.summarize(rows, CPH, ("day", "hour"), targets=TARGETS).groups
    assert [(g["day"], g["hour"], g["issued"]) for g in groups] == [
        ("2026-03-29", 0, 1), ("2026-03-29", 1, 2), ("2026-03-29", 3, 1), ("2026-03-29", 23, 1),
        ("2026-03-30", 0, 1)]
    one = groups[1]  # 'cet' waited 60 s; 'gap' 01:50 CET → 03:10 CEST is 20 minutes, not 80
    assert (one["wait_median_s"], one["wait_max_s"]) == (60.0, 1200.0)
    days = stats.summarize(rows, CPH, ("day",), targets=TARGETS).groups
    assert [(g["day"], g["issued"], g["day_hours"], g["expired"]) for g in days] == [
        ("2026-03-29", 5, 23.0, 1), ("2026-03-30", 1, 24.0, 0)]


@pytest.mark.parametrize("zone", ["Europe/Copenhagen", "Europe/Helsinki", "Asia/Kolkata", "Australia/Lord_Howe",
                                  "America/St_Johns"])
def test_the_hour_cache_agrees_with_zoneinfo_everywhere(zone: str) -> None:
    tz = ZoneInfo(zone)
    local = stats.LocalTime(tz)
    moment = datetime(2026, 1, 1, tzinfo=UTC)
    while moment.year == 2026:
        stamp = moment.isoformat()
        expected = moment.astimezone(tz)
        assert local.bucket(stamp) == (expected.date().isoformat(), expected.hour, expected.isoweekday()), stamp
        moment += timedelta(minutes=53, seconds=17)


# -- device downtime ----------------------------------------------------------------------------------


def test_downtime_from_status_changes() -> None:
    lo, hi = stats.period_utc(DAY, DAY, CPH)  # 2026-11-22T23:00Z .. 2026-11-23T23:00Z
    changes = [
        stats.DeviceChange("kiosk1", "kiosk", "2026-11-22T20:00:00+00:00", True, "ok"),
        stats.DeviceChange("kiosk1", "kiosk", "2026-11-23T09:00:00+00:00", False, None),
        stats.DeviceChange("kiosk1", "kiosk", "2026-11-23T09:30:00+00:00", True, "ok"),
        stats.DeviceChange("kiosk1", "kiosk", "2026-11-23T12:00:00+00:00", True, "paper_out"),
        stats.DeviceChange("kiosk1", "kiosk", "2026-11-23T12:10:00+00:00", True, "paper_low"),  # still prints
        stats.DeviceChange("screen1", "display", "2026-11-22T22:00:00+00:00", False, None),
        stats.DeviceChange("screen1", "display", "2026-11-23T00:00:00+00:00", True, None),
    ]
    result = {d["device"]: d for d in stats.downtime(changes, lo, hi)}
    assert (result["kiosk1"]["offline_s"], result["kiosk1"]["printer_down_s"], result["kiosk1"]["outages"]) == (
        1800.0, 600.0, 1)
    assert result["kiosk1"]["availability"] == round(1 - 2400 / 86400, 4)
    assert (result["screen1"]["offline_s"], result["screen1"]["outages"]) == (3600.0, 1)  # from the period start


# -- reading a real store -----------------------------------------------------------------------------


def test_reading_a_real_store_and_the_ticket_csv(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "hub.sqlite3", "sonderbro")
    store.migrate_plugin(SCHEMA_NAME, SCHEMA_STEPS)
    rows, _ = known_day()
    db = store.db
    for r in rows:
        db.execute(
            "INSERT INTO tickets (id, site, service, letter, day, number, label, language, status, origin, "
            "queued_at, issued_at, due_at, counter, called_at, finished_at, recalls, transfers, track_token) "
            "VALUES (?, 'sonderbro', ?, ?, ?, ?, ?, 'da', ?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?)",
            (f"id-{r[0]}", r[2], r[0][0], DAY.isoformat(), int(r[0][1:]), r[0], r[4], r[5], r[7], r[8], r[9], r[10],
             r[11], r[12], r[14], f"secret-token-{r[0]}"))
    db.execute("INSERT INTO ticket_log (ticket_id, kind, at, service, counter) VALUES (?, 'called', ?, 'kvik', "
               "'kvik1')", ("id-K006", utc("2026-11-23 10:12:00")))
    db.execute("INSERT INTO ticket_log (ticket_id, kind, at, service, counter) VALUES (?, 'called', ?, 'it', "
               "'bib1')", ("id-K006", utc("2026-11-23 10:30:00")))
    for f in FEEDBACK:
        write_feedback(db, FeedbackRecord("sonderbro", f.at, f.rating, 5, f.service, f.device))
    read = sqlite3.connect(f"file:{store.path}?mode=ro", uri=True)
    tickets = stats.read_tickets(read, "sonderbro", DAY, DAY)
    first = stats.read_first_calls(read, "sonderbro", DAY, DAY)
    assert first == {"id-K006": utc("2026-11-23 10:12:00")}
    lo, hi = stats.period_utc(DAY, DAY, CPH)
    feedback = stats.read_feedback(read, "sonderbro", lo, hi)
    total = stats.summarize(tickets, CPH, targets=TARGETS, first_calls=first, feedback=feedback, start=DAY,
                            end=DAY).total
    assert (total["issued"], total["wait_median_s"], total["wait_p90_s"], total["service_level"]) == (
        8, 180.0, 900.0, 0.75)
    assert total["feedback_mean"] == 3.75
    lean = stats.read_tickets(read, "sonderbro", DAY, DAY, lean=True)
    assert stats.summarize(lean, CPH, ("counter",), targets=TARGETS, first_calls=first, feedback=feedback).groups \
        == stats.summarize(tickets, CPH, ("counter",), targets=TARGETS, first_calls=first, feedback=feedback).groups
    assert stats.read_bookings(read, "sonderbro", lo, hi) is None and stats.read_events(read, "sonderbro", lo,
                                                                                         hi) is None

    text = "".join(stats.csv_text([list(stats.TICKET_CSV_COLUMNS), *stats.ticket_csv_rows(
        tickets, CPH, targets=TARGETS, first_calls=first, start=DAY, end=DAY)]))
    assert "secret-token" not in text and "id-K" not in text
    table = list(csv.DictReader(io.StringIO(text)))
    assert set(table[0]) == set(stats.TICKET_CSV_COLUMNS)
    k003 = next(r for r in table if r["ticket"] == "K003")
    assert (k003["status"], k003["wait_s"], k003["within_target"], k003["issued_local"]) == (
        "no_show", "900", "0", "2026-11-23T10:05:00+01:00")
    assert next(r for r in table if r["ticket"] == "K006")["wait_s"] == "120"
    store.close()
    read.close()


def test_bookings_and_events_are_read_from_the_plugins_own_tables(tmp_path: Path) -> None:
    """The tables as the bookings and events plugins make them (their own migrations), not a guess."""
    from server.bookings import records as bookings
    from server.events import records as events

    store = SQLiteStore(tmp_path / "hub.sqlite3", "s")
    store.migrate_plugin("bookings", bookings.SCHEMA)
    store.migrate_plugin("events", events.SCHEMA)
    db = store.db
    for n, (start, status, site) in enumerate([("2026-11-23T09:00:00+00:00", "checked_in", "s"),
                                               ("2026-11-23T10:00:00+00:00", "no_show", "s"),
                                               ("2026-11-23T11:00:00+00:00", "booked", "s"),
                                               ("2026-11-24T10:00:00+00:00", "checked_in", "s"),
                                               ("2026-11-23T10:00:00+00:00", "checked_in", "other")]):
        db.execute("INSERT INTO bookings (id, site, code, service, start, \"end\", day, status, origin, created_at) "
                   "VALUES (?, ?, ?, 'bibliotekar', ?, ?, '2026-11-23', ?, 'staff', ?)",
                   (f"b{n}", site, f"CODE{n}", start, start, status, start))
    db.execute("INSERT INTO events_local (id, site, title, start, \"end\", state, created_at) VALUES "
               "('e1', 's', 'Sprogcafé', '2026-11-23T15:00:00+00:00', '2026-11-23T16:00:00+00:00', 'scheduled', "
               "'2026-11-20T10:00:00+00:00')")
    for n, (seat, waiting, made) in enumerate([(1, None, "2026-11-23T08:00:00+00:00"),
                                               (2, None, "2026-11-23T09:00:00+00:00"),
                                               (None, 1, "2026-11-23T09:30:00+00:00"),
                                               (3, None, "2026-11-22T09:00:00+00:00")]):
        db.execute("INSERT INTO event_signups (id, site, event_id, code, seat, waiting_place, created_at) "
                   "VALUES (?, 's', 'e1', ?, ?, ?, ?)", (f"s{n}", f"SIGN{n}", seat, waiting, made))
    # Two visitors checked in at the kiosk that day (one signed up the day before); one the next day.
    for signup, at in (("s0", "2026-11-23T14:55:00+00:00"), ("s3", "2026-11-23T15:01:00+00:00"),
                       ("s1", "2026-11-24T15:00:00+00:00")):
        db.execute("UPDATE event_signups SET attended_at = ? WHERE id = ?", (at, signup))
    lo, hi = stats.period_utc(DAY, DAY, CPH)
    assert stats.read_bookings(db, "s", lo, hi) == {"by_status": {"checked_in": 1, "no_show": 1, "booked": 1},
                                                    "total": 3, "kept": 1, "no_show": 1}
    assert stats.read_events(db, "s", lo, hi) == {"events": 1, "signups": 3, "seated": 2, "waiting_list": 1,
                                                  "attended": 2}
    store.close()


def test_summary_csv_has_a_row_per_group_and_a_total() -> None:
    rows, first = known_day()
    summary = stats.summarize(rows, CPH, ("service",), targets=TARGETS, first_calls=first)
    table = list(csv.reader(io.StringIO("".join(stats.csv_text(stats.summary_csv_rows(summary), ";"))),
                            delimiter=";"))
    assert table[0][:3] == ["service", "issued", "served"]
    assert [r[0] for r in table[1:]] == ["bibliotekar", "it", "kvik", "total"]
    assert table[-1][1] == "8" and table[3][table[0].index("service_level")] == "0.6"


def test_many_groupings_in_one_pass_equal_one_at_a_time() -> None:
    rows, first = known_day()
    groupings = [("hour",), ("day", "service"), ("counter",), ()]
    many = stats.summarize_many(rows, CPH, groupings, targets=TARGETS, first_calls=first, feedback=FEEDBACK)
    for by in groupings:
        one = stats.summarize(rows, CPH, by, targets=TARGETS, first_calls=first, feedback=FEEDBACK)
        assert (many[by].groups, many[by].total) == (one.groups, one.total)
