"""The queue rules, on their own: no clock, no database, no network.

Each test reads as a small story at the sample site (Sønderbro, Europe/Copenhagen).
"""

from __future__ import annotations

import itertools
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from server.config import SAMPLE_SITE, load_config
from server.engine import CALLED, DONE, EXPIRED, NO_SHOW, OPEN, PAUSED, WAITING, QueueEngine, Refusal, Snapshot

CPH = ZoneInfo("Europe/Copenhagen")
MONDAY_11 = datetime(2026, 11, 23, 11, 0, tzinfo=CPH).astimezone(UTC)  # KVIK staffed 10-18


def empty(day: date) -> Snapshot:
    return Snapshot(day=day, tickets=[], counters={}, next_numbers={}, service_times={}, idempotency={},
                    action_keys={}, recent_calls=[])


ALWAYS_OPEN = Path(__file__).parent / "sites" / "always_open.toml"


def make_engine(config_path: Path) -> QueueEngine:
    counter = itertools.count(1)
    return QueueEngine(load_config(config_path), empty(date(2026, 11, 23)),
                       new_id=lambda: f"id{next(counter)}", new_token=lambda: f"tok{next(counter)}")


@pytest.fixture()
def engine() -> QueueEngine:
    """The sample site with its real opening hours."""
    return make_engine(SAMPLE_SITE)


@pytest.fixture()
def open_engine() -> QueueEngine:
    """The sample site with every service staffed all day, for rules that are not about hours."""
    return make_engine(ALWAYS_OPEN)


def at(minutes: float) -> datetime:
    return MONDAY_11 + timedelta(minutes=minutes)


def test_numbers_run_per_letter_from_001(engine: QueueEngine) -> None:
    labels = [engine.issue("kvik", "da", at(i)).ticket.label for i in range(3)]
    labels.append(engine.issue("bibliotekar", "da", at(4)).ticket.label)
    assert labels == ["K001", "K002", "K003", "L001"]


def test_a_retried_request_returns_the_first_ticket(engine: QueueEngine) -> None:
    first = engine.issue("kvik", "da", at(0), idempotency_key="kiosk1:abc")
    again = engine.issue("kvik", "da", at(0.1), idempotency_key="kiosk1:abc")
    assert again.replay and not again.changed
    assert again.ticket.id == first.ticket.id
    assert engine.issue("kvik", "da", at(0.2), idempotency_key="kiosk1:def").ticket.label == "K002"


def test_booking_only_service_refuses_a_walk_in(engine: QueueEngine) -> None:
    with pytest.raises(Refusal) as refused:
        engine.issue("borgerservice", "da", at(0))
    assert refused.value.code == "booking_only"
    assert "appointment" in refused.value.message


def test_closed_service_says_when_it_opens(engine: QueueEngine) -> None:
    early = datetime(2026, 11, 23, 8, 30, tzinfo=CPH)
    with pytest.raises(Refusal) as refused:
        engine.issue("kvik", "da", early)
    assert refused.value.code == "closed"
    assert refused.value.details["opens_at"] == "2026-11-23T10:00:00+01:00"
    assert "10:00" in refused.value.message


def test_a_holiday_exception_closes_the_service(engine: QueueEngine) -> None:
    christmas_eve = datetime(2026, 12, 24, 11, 0, tzinfo=CPH)
    with pytest.raises(Refusal) as refused:
        engine.issue("kvik", "da", christmas_eve)
    assert refused.value.details["opens_at"] == "2026-12-25T10:00:00+01:00"


def test_call_next_takes_the_longest_waiting_then_finishes_the_previous(engine: QueueEngine) -> None:
    k1 = engine.issue("kvik", "da", at(0)).ticket
    k2 = engine.issue("kvik", "da", at(1)).ticket
    first = engine.call_next("kvik1", at(2))
    assert first.call.ticket == "K001" and k1.status == CALLED and k1.counter == "kvik1"
    assert engine.counters["kvik1"].status == OPEN
    second = engine.call_next("kvik1", at(6))
    assert second.call.ticket == "K002"
    assert k1.status == DONE and k1.finished_at == at(6)
    assert k2.status == CALLED


def test_priority_weights_the_wait(open_engine: QueueEngine) -> None:
    engine = open_engine
    # bib1 serves bibliotekar then it; make IT twice as urgent.
    engine.config.services["it"] = replace(engine.config.services["it"], priority=2.0)
    lib = engine.issue("bibliotekar", "da", at(0)).ticket
    it = engine.issue("it", "da", at(4)).ticket
    # at 10 min: library waited 10 (weight 1) = 10; IT waited 6 (weight 2) = 12 → IT first
    assert engine.call_next("bib1", at(10)).ticket is it
    assert engine.call_next("bib1", at(11)).ticket is lib


def test_counter_preference_breaks_a_tie(open_engine: QueueEngine) -> None:
    engine = open_engine
    it = engine.issue("it", "da", at(0)).ticket
    kvik = engine.issue("kvik", "da", at(0)).ticket
    assert engine.call_next("kvik1", at(5)).ticket is kvik  # kvik1 prefers kvik over it
    assert engine.call_next("kvik1", at(6)).ticket is it


def test_a_due_checked_in_booking_goes_before_walk_ins(engine: QueueEngine) -> None:
    walk_in = engine.issue("bibliotekar", "da", at(0)).ticket
    booked = engine.issue("bibliotekar", "da", at(20), origin="booking", due_at=at(30)).ticket
    # at 21 min the booking is not due yet (more than 5 min early): the walk-in goes first
    assert engine.call_next("bib1", at(21)).ticket is walk_in
    # a new walk-in arrives; at 26 the booking is within its 5-minute margin and goes first
    later = engine.issue("bibliotekar", "da", at(22)).ticket
    assert engine.call_next("bib1", at(26)).ticket is booked
    assert engine.call_next("bib1", at(40)).ticket is later


def test_a_counter_only_calls_its_own_services(engine: QueueEngine) -> None:
    engine.issue("bibliotekar", "da", at(0))
    outcome = engine.call_next("kvik2", at(1))
    assert outcome.call is None
    assert engine.counters["kvik2"].status == OPEN


def test_recall_repeats_the_call_with_a_new_id(engine: QueueEngine) -> None:
    engine.issue("kvik", "da", at(0))
    first = engine.call_next("kvik1", at(1)).call
    again = engine.recall("kvik1", at(2)).call
    assert again.recall and again.ticket == first.ticket and again.call_id != first.call_id
    assert engine.tickets[first.ticket_id].recalls == 1


def test_recall_with_no_one_at_the_counter_is_refused(engine: QueueEngine) -> None:
    with pytest.raises(Refusal) as refused:
        engine.recall("kvik1", at(0))
    assert refused.value.code == "no_current_visitor"


def test_no_show_and_finish(engine: QueueEngine) -> None:
    a = engine.issue("kvik", "da", at(0)).ticket
    b = engine.issue("kvik", "da", at(0.5)).ticket
    engine.call_next("kvik1", at(1))
    engine.no_show("kvik1", at(3))
    assert a.status == NO_SHOW and engine.counters["kvik1"].ticket_id is None
    engine.call_next("kvik1", at(4))
    engine.finish("kvik1", at(9))
    assert b.status == DONE
    assert engine.average_service_seconds("kvik") == 300  # one real service time: 5 min


def test_transfer_keeps_the_visitors_place(open_engine: QueueEngine) -> None:
    engine = open_engine
    moved = engine.issue("kvik", "da", at(0)).ticket
    engine.issue("it", "da", at(5))  # already waiting for IT when the transfer happens
    engine.call_next("kvik1", at(6))
    engine.transfer("kvik1", "it", at(8))
    assert moved.service == "it" and moved.status == WAITING and moved.label == "K001"
    assert engine.position(moved) == 0  # queued at 0: ahead of the IT visitor from minute 5
    assert engine.call_next("bib1", at(9)).ticket is moved


def test_transfer_to_the_same_service_is_refused(engine: QueueEngine) -> None:
    engine.issue("kvik", "da", at(0))
    engine.call_next("kvik1", at(1))
    with pytest.raises(Refusal):
        engine.transfer("kvik1", "kvik", at(2))


def test_pause_and_resume_change_the_estimate(engine: QueueEngine) -> None:
    for i in range(4):
        engine.issue("kvik", "da", at(i))
    engine.resume("kvik1", at(5))
    engine.resume("kvik2", at(5))
    two_open = engine.estimate_minutes("kvik", 4)
    engine.pause("kvik2", at(6))
    assert engine.counters["kvik2"].status == PAUSED
    one_open = engine.estimate_minutes("kvik", 4)
    assert two_open == 8 and one_open == 16  # 4 people × 4 min typical, over 2 counters or 1


def test_position_counts_people_before_you(engine: QueueEngine) -> None:
    tickets = [engine.issue("kvik", "da", at(i)).ticket for i in range(3)]
    assert [engine.position(t) for t in tickets] == [0, 1, 2]
    assert engine.estimate_minutes("kvik", 0) == 0


def test_numbers_reset_at_local_midnight_and_leftovers_expire(engine: QueueEngine) -> None:
    late = datetime(2026, 11, 23, 17, 59, tzinfo=CPH)
    left = engine.issue("kvik", "da", late).ticket
    engine.call_next("kvik2", late)
    next_morning = datetime(2026, 11, 24, 10, 1, tzinfo=CPH)
    fresh = engine.issue("kvik", "da", next_morning)
    assert fresh.ticket.label == "K001" and fresh.ticket.day == date(2026, 11, 24)
    assert left.status == EXPIRED
    assert engine.counters["kvik2"].ticket_id is None
    assert left in fresh.tickets  # the expiry is written in the same transaction


def test_midnight_is_local_not_utc(engine: QueueEngine) -> None:
    engine.issue("kvik", "da", datetime(2026, 11, 23, 17, 0, tzinfo=CPH))
    # 23:30 UTC is already 00:30 the next day in Copenhagen.
    engine.roll_day(datetime(2026, 11, 23, 23, 30, tzinfo=UTC))
    assert engine.day == date(2026, 11, 24)


def test_a_clock_behind_the_business_day_keeps_the_day_and_its_numbering(engine: QueueEngine) -> None:
    """The rule for clock steps: a business day never goes back once it has begun."""
    assert engine.issue("kvik", "da", datetime(2026, 11, 23, 17, 0, tzinfo=CPH)).ticket.label == "K001"
    tuesday = engine.issue("kvik", "da", datetime(2026, 11, 24, 10, 0, tzinfo=CPH))
    assert (tuesday.ticket.label, tuesday.day) == ("K001", (date(2026, 11, 24), tuesday.ticket.issued_at))
    stepped_back = datetime(2026, 11, 23, 17, 30, tzinfo=CPH)  # Monday again, on the clock
    assert not engine.roll_day(stepped_back).changed
    again = engine.issue("kvik", "da", stepped_back).ticket
    assert (again.label, again.day) == ("K002", date(2026, 11, 24))
    # ...and the visitor who came later queues behind the one already waiting, whatever the clock said
    assert again.queued_at > tuesday.ticket.queued_at
    assert [t.label for t in engine.waiting("kvik")] == ["K001", "K002"]


def test_a_busy_day_passes_999_with_a_fourth_digit(engine: QueueEngine) -> None:
    engine.next_numbers["K"] = 999
    assert engine.issue("kvik", "da", at(0)).ticket.label == "K999"
    assert engine.issue("kvik", "da", at(1)).ticket.label == "K1000"
    # another letter's series is untouched
    assert engine.issue("bibliotekar", "da", at(2)).ticket.label == "L001"


def test_an_action_key_acts_once(engine: QueueEngine) -> None:
    engine.issue("kvik", "da", at(0))
    engine.issue("kvik", "da", at(1))

    def press() -> object:
        return engine.act_once("press:b1-1", lambda: engine.call_next("kvik1", at(2)),
                               lambda o: {"ticket": o.call.ticket if o.call else None}, at(2))

    first, second = press(), press()
    assert first.result == {"ticket": "K001"} and second.replay and second.result == {"ticket": "K001"}
    assert engine.counters["kvik1"].ticket_id == first.ticket.id  # K002 was not called by the duplicate


def test_unknown_service_and_counter_are_refused_by_name(engine: QueueEngine) -> None:
    with pytest.raises(Refusal) as refused:
        engine.issue("passport", "da", at(0))
    assert refused.value.code == "unknown_service" and refused.value.details["field"] == "service"
    with pytest.raises(Refusal) as refused:
        engine.call_next("desk99", at(0))
    assert refused.value.code == "unknown_counter"


def test_the_wait_a_visitor_is_promised_is_the_wait_they_get(open_engine: QueueEngine) -> None:
    """A busy hour played through the engine: visitors arrive faster than three desks clear them, two of
    the desks are shared with the IT line, and every visit takes its service's typical time. Each ticket's
    estimate when it was issued must be the wait that visitor then had, to the minute.

    The first estimate divided people ahead × time by the desks that could serve the line: a desk shared
    with a long line counted as free for each of its services, and the first in line heard "0 min" while
    every desk was busy — in the demo, "25 waiting – about 2 min" beside a median wait of 38 minutes.
    """
    engine = open_engine
    typical = {sid: s.typical_service_min for sid, s in engine.config.services.items()}
    every = {"kvik": (1.5, 0.0), "it": (6.0, 0.25), "bibliotekar": (9.0, 0.5)}  # minutes apart, first at
    desks = {"kvik1": 0.0, "kvik2": 0.0, "bib1": 0.0}  # counter → minute it is free to call the next
    promised: dict[str, int] = {}
    step, minute = 0.25, 0.0
    while minute <= 45 or any(engine.lines.values()):
        for service, (gap, first) in every.items():
            if minute <= 45 and minute >= first and ((minute - first) / gap).is_integer():
                ticket = engine.issue(service, "da", at(minute)).ticket
                promised[ticket.id] = engine.estimate_minutes(service, engine.position(ticket))
        for desk, free in desks.items():
            if free <= minute:
                called = engine.call_next(desk, at(minute)).ticket
                desks[desk] = minute + (typical[called.service] if called else step)
        minute += step
    waits = {tid: (engine.tickets[tid].called_at - engine.tickets[tid].issued_at).total_seconds() / 60
             for tid in promised}
    assert max(waits.values()) > 30  # a real queue, not an empty hall
    wrong = {engine.tickets[tid].label: (promised[tid], waits[tid]) for tid in promised
             if not waits[tid] <= promised[tid] < waits[tid] + 1}
    assert not wrong, f"label: (promised, actual minutes) {wrong}"


def test_far_back_in_a_long_line_the_estimate_goes_on_at_the_pace_of_the_desks(open_engine: QueueEngine) -> None:
    """The desks are played forward only so far (ESTIMATE_CALLS); beyond that a line goes on at the pace it
    was served: 600 waiting for two KVIK desks at 4 minutes a visit is 20 hours, not a few minutes."""
    engine = open_engine
    for i in range(600):
        engine.issue("kvik", "da", at(i * 0.01))
    engine.resume("kvik1", at(7))
    engine.resume("kvik2", at(7))
    assert engine.estimate_minutes("kvik", 600) == 600 * 4 // 2
    assert abs(engine.estimate_minutes("kvik", 301) - 300 * 4 // 2) <= 4  # within one visit
    assert engine.estimate_minutes("kvik", 3) == 4  # played: two at once, then the next two after 4 minutes
    engine.pause("kvik2", at(8))
    assert engine.estimate_minutes("kvik", 600) == 600 * 4
