"""SignageState and the presenter, without a broker or a window."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from display import sample
from display.present import LOCALE_DIR, MSGIDS, present, spoken_call
from display.state import SignageState
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
