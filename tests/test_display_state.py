"""SignageState and the presenter, without a broker or a window."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from display import sample
from display.present import LOCALE_DIR, MSGIDS, present, spoken_call
from display.state import ANNOUNCE_MAX_AGE_S, HubTime, SignageState
from vuoro.i18n import LANGUAGES, untranslated
from vuoro.protocol import Topics

TOPICS = Topics("sonderbro")


def loaded(**kwargs: object) -> SignageState:
    state = SignageState(TOPICS, **kwargs)  # type: ignore[arg-type]
    for suffix, payload in sample.retained().items():
        update = state.apply_payload(suffix, payload)
        assert update is not None or kwargs, suffix  # a filtered screen skips other services
    state.link_online = True
    return state


def test_retained_state_alone_makes_a_complete_screen() -> None:
    state = loaded()
    assert state.complete
    text = present(state, "da")
    assert text.site_name.startswith("Sønderbro")
    assert text.call_ticket == "K041" and text.call_counter == "Skranke 2"
    assert [q.service for q in text.queues] == ["kvik", "borgerservice", "bibliotekar", "it"]
    kvik = text.queues[0]
    assert (kvik.name, kvik.waiting, kvik.wait) == ("KVIK – hurtig hjælp", "4 venter", "ca. 8 min")
    assert text.queues[1].wait == "Kun med tidsbestilling"
    assert text.queues[3].wait.startswith("Lukket · Åbner")
    assert [e.kind for e in text.events][:3] == ["scheduled", "sold_out", "cancelled"]
    assert [e.status for e in text.events][:3] == ["3 pladser tilbage", "Udsolgt", "Aflyst"]
    assert text.hours == "Personale til stede nu"
    assert not text.offline


def test_a_call_goes_on_top_highlighted_and_is_announced_once() -> None:
    state = loaded()
    call = sample.call("K042", "borger1")
    update = state.apply(f"{TOPICS.base}/calls", json.dumps(call), now=100.0)
    assert update is not None and update.announce and update.call == call
    assert state.current_call == call and state.highlighted(now=101.0)
    assert not state.highlighted(now=100.0 + state.highlight_seconds + 0.1)
    # QoS 1 may deliver twice: the second copy changes nothing and is not announced.
    assert state.apply(f"{TOPICS.base}/calls", json.dumps(call), now=102.0) is None
    # A recall has a new call id: announced again, and the old line is not repeated.
    recall = {**call, "call_id": "recall-1", "recall": True}
    assert state.apply(f"{TOPICS.base}/calls", json.dumps(recall), now=103.0).announce  # type: ignore[union-attr]
    assert [c["ticket"] for c in state.recent].count("K042") == 1
    # The hub's retained list arriving afterwards does not re-announce anything.
    assert not state.apply_payload("calls/recent", {"v": 1, "calls": [recall]}).announce  # type: ignore[union-attr]


def hub_call(ticket: str, at: datetime) -> str:
    return json.dumps({**sample.call(ticket, "kvik1"), "at": at.isoformat(timespec="milliseconds")})


def test_a_call_is_spoken_only_while_fresh_on_the_hubs_clock() -> None:
    """Calls that waited out a broker outage are shown but not spoken: by default, older than 5 s."""
    assert ANNOUNCE_MAX_AGE_S == 5.0 and SignageState(TOPICS).announce_max_age == 5.0
    hub = datetime(2031, 6, 1, 12, 0, tzinfo=UTC)  # the hub's clock: it need not agree with this machine's
    state = SignageState(TOPICS)
    state.apply_payload("queue/kvik/state", sample.queue_state("kvik", 3, 6, now=hub), now=1000.0)
    # 30 s of silence on the screen's own clock, then the burst after the outage:
    burst = [state.apply(f"{TOPICS.base}/calls", hub_call(f"K{int(n):03d}", hub + timedelta(seconds=n)), now=1030.0)
             for n in (10, 24, 25.5, 26, 29)]
    assert [u.announce for u in burst if u] == [False, False, True, True, True]  # 20, 6, 4.5, 4, 1 s old
    assert state.late_calls == 2
    assert state.current_call["ticket"] == "K029"  # type: ignore[index]  # every one of them is on the list
    assert [c["ticket"] for c in state.recent[:3]] == ["K029", "K026", "K025"]


def test_the_age_limit_is_the_screens_setting() -> None:
    hub = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
    strict = SignageState(TOPICS, announce_max_age=1.0)
    strict.apply_payload("site", {**sample.retained(hub)["site"], "at": hub.isoformat()}, now=50.0)
    late = strict.apply(f"{TOPICS.base}/calls", hub_call("K001", hub + timedelta(seconds=0.5)), now=52.0)
    assert late is not None and not late.announce  # 1.5 s old: too old for this screen
    assert not strict.highlighted(now=52.1)  # and not flashed as the call of the moment either


def test_the_hubs_time_is_carried_forward_and_a_step_back_believed_after_a_while() -> None:
    clock = HubTime(memory=600)
    assert clock.now(0.0) is None
    hub = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
    clock.saw(hub, 100.0)
    clock.saw(hub - timedelta(seconds=30), 110.0)  # a message that came late says nothing new
    assert clock.now(160.0) == hub.timestamp() + 60
    clock.saw(hub - timedelta(hours=1), 170.0)  # the hub's clock was stepped back an hour
    assert clock.now(170.0) == hub.timestamp() + 70  # not believed at once (a late message looks the same)...
    assert clock.now(711.0) == (hub - timedelta(hours=1)).timestamp() + 711 - 170  # ...but 10 minutes on


def test_malformed_payloads_are_dropped_and_the_state_kept() -> None:
    state = loaded()
    before = dict(state.queues["kvik"])
    bad = [
        b"not json",
        b"[1, 2]",
        b'{"service": "kvik", "waiting": 3}',  # no version
        b'{"v": 2, "service": "kvik", "waiting": 3, "open": true}',  # newer schema
        b'{"v": 1, "service": "kvik", "waiting": "three", "open": true}',
        b'{"v": 1, "service": "kvik", "waiting": true, "open": true}',
        b'{"v": 1, "service": "kvik", "waiting": -1, "open": true}',
        b'{"v": 1, "service": "it", "waiting": 1, "open": true}',  # under another service's topic
        b"\xff\xfe",
    ]
    for raw in bad:
        assert state.apply(f"{TOPICS.base}/queue/kvik/state", raw) is None
    assert state.queues["kvik"] == before
    assert state.apply(f"{TOPICS.base}/calls", b'{"v": 1, "ticket": "K1"}') is None
    assert state.apply(f"{TOPICS.base}/events/today", b'{"v": 1, "events": [{"title": "x", "start": "soon"}]}') is None
    assert state.apply(f"{TOPICS.base}/site", b'{"v": 1, "name": 5}') is None
    assert state.rejected == len(bad) + 3
    present(state, "da")  # still presentable


def test_filters_by_service_and_counter() -> None:
    state = loaded(services=("kvik", "it"), counters=("kvik1", "kvik2"))
    assert [q.service for q in present(state, "en").queues] == ["kvik", "it"]
    assert all(c["counter"] in ("kvik1", "kvik2") and c["service"] in ("kvik", "it") for c in state.recent)
    other = sample.call("K050", "borger1")  # a counter this screen does not show
    assert state.apply_payload("calls", other) is None
    mine = sample.call("H008", "kvik1")
    assert state.apply_payload("calls", mine).announce  # type: ignore[union-attr]


def test_self_service_only_says_when_staff_are_back() -> None:
    state = SignageState(TOPICS)
    for suffix, payload in sample.retained(staffed=False).items():
        state.apply_payload(suffix, payload)
    assert present(state, "da").hours == "Kun selvbetjening · personale igen i morgen kl. 10:00"
    assert present(state, "sv").hours.startswith("Meröppet")


def test_past_events_drop_off_and_the_offline_mark_follows_the_link() -> None:
    state = loaded()
    later = datetime.now(UTC) + timedelta(days=2)
    assert present(state, "fi", now=later).events == []
    state.link_online = False
    assert present(state, "fi").offline and present(state, "fi").offline_text == "Ei yhteyttä"
    state.link_online = True
    state.apply_payload("hub/status", {"v": 1, "online": False})
    assert state.offline


def test_spoken_call_in_each_language() -> None:
    call = sample.call("K042", "borger1")
    assert spoken_call(call, "da") == "Nummer K 42, Skranke 3"
    assert spoken_call(call, "fi") == "Numero K 42, Skranke 3"
    assert spoken_call({**call, "ticket": "K1000"}, "en") == "Number K 1000, Skranke 3"


def test_every_language_has_every_string() -> None:
    for lang in LANGUAGES:
        if lang != "en":
            assert untranslated(LOCALE_DIR, lang, MSGIDS) == [], lang


def board_of(retained: dict[str, dict]) -> dict:
    """The board the hub would send for these retained states (vuoro.payloads.Board)."""
    from vuoro.payloads import in_board

    return {"v": 1, "states": {k: {f: v for f, v in p.items() if f != "v"} for k, p in retained.items()
                               if in_board(k)}}


def test_a_board_alone_brings_the_queues_and_recent_calls_a_bad_state_in_it_dropped_alone() -> None:
    retained = sample.retained()
    state = SignageState(TOPICS)
    for suffix in ("site", "events/today", "message", "hub/status"):
        state.apply_payload(suffix, retained[suffix])
    assert not state.complete
    board = board_of(retained)
    board["states"]["queue/kvik/state"] = {"service": "kvik", "waiting": "many", "open": True}
    assert state.apply_payload("board", board) is not None
    assert state.rejected == 1 and "kvik" not in state.queues
    assert set(state.queues) == {"borgerservice", "bibliotekar", "it"}
    assert state.current_call and state.current_call["ticket"] == "K041"
    # The next board has kvik right: it is taken; the others, unchanged, are not parsed again.
    good = board_of(retained)
    state.queues["it"] = {"marker": "not parsed again"}
    state.apply_payload("board", good)
    assert state.queues["kvik"]["waiting"] == 4 and state.rejected == 1
    assert state.queues["it"] == {"marker": "not parsed again"}
    # A queue the board no longer lists is gone (a service taken out of the site).
    del good["states"]["queue/it/state"]
    state.apply_payload("board", good)
    assert "it" not in state.queues and state.complete is False


def test_a_board_that_carries_another_topic_is_refused_whole() -> None:
    state = loaded()
    board = board_of(sample.retained())
    board["states"]["message"] = {"text": "hacked"}
    board["states"]["queue/kvik/state"]["waiting"] = 99
    assert state.apply_payload("board", board) is None
    assert state.rejected == 1 and state.queues["kvik"]["waiting"] == 4 and state.message != "hacked"
