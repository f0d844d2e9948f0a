"""The queue's payloads are one contract (``vuoro/payloads.py``): the hub builds by it, readers parse by it.

- every retained state and call the real hub publishes over MQTT parses
  through the contract, and the contract writes it back field for field (so
  the hub sends nothing the contract does not define, and leaves out nothing);
- the web page's copy of the contract (``display/web/contract.json``) is the
  one the classes describe today; ``tests/test_display_web.py`` proves the
  page reads no field outside it;
- routing refuses a payload under another id's topic, and a bad id.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import requests

from display import sample
from vuoro import payloads
from vuoro.payloads import CONTRACT_JSON, QueueState, contract_text, read, route
from vuoro.protocol import PayloadError, Topics, decode

KIOSK = {"Authorization": "Bearer demo-kiosk1-token-change-me"}
STAFF = {"Authorization": "Bearer demo-staff-token-change-me"}
ENVELOPE = {"v", "at"}  # stamped on every message by the wire, not part of a payload's fields


def test_the_web_pages_copy_of_the_contract_is_current() -> None:
    assert CONTRACT_JSON.read_text(encoding="utf-8") == contract_text(), "run: python -m vuoro.payloads"


# A weekday morning on the hub's test clock: an event an hour on is today's (events/today) at any hour the test
# runs; on the machine's clock it was tomorrow's after 23:00 in Copenhagen and events/today never came.
MORNING = datetime(2026, 11, 23, 10, 0, tzinfo=ZoneInfo("Europe/Copenhagen"))


def test_everything_the_real_hub_publishes_parses_through_the_contract_and_back(make_hub: Any, tmp_path: Any,
                                                                                 watch: Any) -> None:
    hub = make_hub(tmp_path, clock=MORNING, tz="UTC").start()
    topics = Topics("sonderbro", hub.topic_root)
    seen = watch(topics.everything)
    soon = MORNING + timedelta(hours=1)
    answers = [
        requests.post(f"{hub.url}/api/v1/tickets", json={"service": "kvik", "language": "da"}, timeout=10,
                      headers={**KIOSK, "Idempotency-Key": uuid.uuid4().hex}),
        requests.post(f"{hub.url}/api/v1/tickets", json={"service": "kvik", "language": "da"}, timeout=10,
                      headers={**KIOSK, "Idempotency-Key": uuid.uuid4().hex}),
        requests.post(f"{hub.url}/api/v1/counters/kvik1/next", headers=STAFF, timeout=10),
        requests.post(f"{hub.url}/api/v1/events", headers=STAFF, timeout=10,
                      json={"title": "Sprogcafé", "start": soon.isoformat(),
                            "end": (soon + timedelta(hours=1)).isoformat(), "room": "Salen", "seats": 2}),
        requests.put(f"{hub.url}/api/v1/message", headers=STAFF, json={"text": "Borgerservice lukker kl. 16"},
                     timeout=10),
    ]
    assert all(a.status_code < 300 for a in answers), [a.text for a in answers]
    called = answers[2].json()["call"]["ticket"]
    seen.wait_for(lambda w: any(t == topics.calls for t, _, _ in w.messages)
                  and (w.json(topics.message) or {}).get("text")
                  and (w.json(topics.events_today) or {}).get("events")
                  and ((w.json(topics.counter_state("kvik1")) or {}).get("serving") or {}).get("ticket") == called)
    checked: dict[str, int] = {}
    for topic, raw, _ in list(seen.messages):
        suffix = topic[len(topics.base) + 1:]
        if not raw or suffix.startswith(("hub/", "devices/")):
            continue  # presence and devices: vuoro/protocol.py's own payloads
        body = decode(raw)
        payload = read(suffix, body)
        assert payload is not None, f"{suffix} carries no payload of the contract"
        sent = {k: v for k, v in body.items() if k not in ENVELOPE or k in payload.to_json()}
        assert payload.to_json() == sent, suffix
        checked[payload.KIND] = checked.get(payload.KIND, 0) + 1
    assert set(checked) == {"site", "queue_state", "counter_state", "recent_calls", "call", "events_today",
                            "message", "phone_door", "board"}, checked
    # The screens' board follows (gathered for a moment) and sums up the topics it carries.
    states = {t[len(topics.base) + 1:] for t, _, _ in list(seen.messages)
              if t.startswith((f"{topics.base}/queue/", f"{topics.base}/counters/"))}

    def board_is_current(w: Any) -> bool:
        last = (w.json(topics.board) or {}).get("states") or {}
        return set(last) == {*states, "calls/recent"} and all(
            state == {k: v for k, v in w.json(topics.under(suffix)).items() if k not in ENVELOPE}
            for suffix, state in last.items())

    seen.wait_for(board_is_current)
    assert len(states) >= 8


def test_the_sample_payloads_are_what_the_contract_reads() -> None:
    for suffix, body in sample.retained().items():
        if suffix != "hub/status":
            payload = read(suffix, body)
            assert payload is not None and payload.to_json() == {k: v for k, v in body.items() if k not in ENVELOPE}


def test_routing_knows_every_topic_and_refuses_a_payload_under_another_ids_topic() -> None:
    assert route("queue/kvik/state") == (QueueState, "kvik")
    assert route("counters/kvik1/state") == (payloads.CounterState, "kvik1")
    assert route("calls") == (payloads.Call, None) and route("calls/recent") == (payloads.RecentCalls, None)
    assert route("buttons/kvik1/press") is None
    kvik = sample.queue_state("kvik", 3, 6)
    with pytest.raises(PayloadError, match="published under 'it'"):
        read("queue/it/state", kvik)
    with pytest.raises(PayloadError, match="bad id"):
        read("queue/K V/state", kvik)


@pytest.mark.parametrize(("change", "problem"), [
    ({"waiting": -1}, "negative"),
    ({"waiting": True}, "wrong type"),  # true/false is never a count
    ({"open": None}, "'open' is missing"),
    ({"names": ["KVIK"]}, "wrong type"),
    ({"estimated_wait_min": "soon"}, "wrong type"),
])
def test_a_queue_state_that_breaks_the_contract_is_refused_in_words(change: dict[str, Any], problem: str) -> None:
    with pytest.raises(PayloadError, match=problem):
        QueueState.parse(json.dumps({**sample.queue_state("kvik", 3, 6), **change}))


def test_a_reader_keeps_going_when_a_newer_hub_adds_a_field() -> None:
    newer = {**sample.queue_state("kvik", 3, 6), "crowding": "high"}
    assert QueueState.from_json(newer).waiting == 3
