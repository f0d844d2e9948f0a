"""The keep-alive edge: a request sent just as the hub closes an idle connection is lost, unless the client sees to
it (vuoro/keepalive.py, vuoro/http_client.py; docs/protocol.md, "Connections").

A real hub process, started with a short keep-alive (``VUORO_KEEP_ALIVE_S``) so the edge comes every second, and a
desk calling the next visitor at that edge through the products' HTTP session. The race itself is a window of
microseconds (the hub's FIN on its way while the client checks its pooled connection and writes the request); the
first tests widen it to the whole idle time, deterministically, by making urllib3's check of a pooled connection
blind (it says "alive" for a connection the hub has closed): every request then meets a dead connection. The last
one sends at the real edge, again and again. Lost answers and calls are counted in the hub's own store: 0 lost,
0 visitors called twice.
"""

from __future__ import annotations

import sqlite3
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import requests
import urllib3.connectionpool

from toolkit.hub_process import HubProcess
from vuoro.http_client import adapter_of
from vuoro.http_client import session as keep_alive_session
from vuoro.keepalive import CLIENT_IDLE_S, KEEP_ALIVE_ENV, SERVER_KEEP_ALIVE_S

KIOSK = {"Authorization": "Bearer demo-kiosk1-token-change-me"}
STAFF = {"Authorization": "Bearer demo-staff-token-change-me"}
KEEP_ALIVE_S = 0.5  # the hub's idle keep-alive in these tests (a site's: SERVER_KEEP_ALIVE_S)


@pytest.fixture()
def hub(make_hub: Any, tmp_path: Path) -> HubProcess:
    hub = make_hub(tmp_path / "hub", env={KEEP_ALIVE_ENV: str(KEEP_ALIVE_S)}).start()
    with requests.Session() as kiosk:
        for _ in range(60):
            answer = kiosk.post(f"{hub.url}/api/v1/tickets", json={"service": "kvik", "language": "da"},
                                headers={**KIOSK, "Idempotency-Key": uuid.uuid4().hex}, timeout=10)
            assert answer.status_code == 201, answer.text
    return hub


@pytest.fixture()
def blind_pool(monkeypatch: pytest.MonkeyPatch) -> None:
    """urllib3 takes every pooled connection for alive: the hub's FIN is always 'still on its way'."""
    monkeypatch.setattr(urllib3.connectionpool, "is_connection_dropped", lambda conn: False)


def calls_in_store(hub: HubProcess) -> list[tuple[str, str]]:
    with sqlite3.connect(f"file:{hub.data_dir / 'hub.sqlite3'}?mode=ro", uri=True, timeout=10) as db:
        return [(ticket, counter) for ticket, counter in db.execute("SELECT ticket_id, counter FROM calls")]


def call_next(session: requests.Session, hub: HubProcess, counter: str = "kvik1", key: str | None = None,
              action: str = "next") -> requests.Response:
    headers = {**STAFF, "Idempotency-Key": key or uuid.uuid4().hex}
    return session.post(f"{hub.url}/api/v1/counters/{counter}/{action}", headers=headers, timeout=10)


def test_the_product_rule_keeps_the_servers_idle_window_longer_than_the_clients() -> None:
    assert CLIENT_IDLE_S * 2 <= SERVER_KEEP_ALIVE_S


def test_a_request_on_a_connection_the_hub_closed_is_lost_by_a_plain_session_and_answered_by_ours(
        hub: HubProcess, blind_pool: None) -> None:
    # The edge reproduced: a plain requests.Session (the harness's desks before) loses the call. The hub never
    # read it (it had closed the connection), so nobody was called.
    plain = requests.Session()
    assert call_next(plain, hub).status_code == 200
    time.sleep(KEEP_ALIVE_S + 0.3)
    with pytest.raises(requests.ConnectionError):
        call_next(plain, hub)
    assert len(calls_in_store(hub)) == 1

    # The products' session, its own idle limit set past the hub's so it reuses the dead connection: each call is
    # sent once more on a new connection and answered; every answer is a call of its own.
    ours = keep_alive_session(idle_s=60)
    answered = [call_next(ours, hub)]
    for _ in range(8):
        time.sleep(KEEP_ALIVE_S + 0.3)
        answered.append(call_next(ours, hub))
    assert [a.status_code for a in answered] == [200] * 9
    adapter = adapter_of(ours)
    assert adapter is not None and adapter.repeats == 8  # every one after an idle spell met the closed connection
    called = [a.json()["call"]["ticket"] for a in answered]
    assert len(set(called)) == 9
    calls = calls_in_store(hub)
    assert len(calls) == 10 and len({ticket for ticket, _ in calls}) == 10  # 1 + 9, no visitor twice


def test_a_desk_action_without_a_key_is_not_sent_twice(hub: HubProcess, blind_pool: None) -> None:
    """A POST the hub cannot recognise again is never repeated by the session: it fails, as the caller asked."""
    ours = keep_alive_session(idle_s=60)
    assert ours.post(f"{hub.url}/api/v1/counters/kvik1/next", headers=STAFF, timeout=10).status_code == 200
    time.sleep(KEEP_ALIVE_S + 0.3)
    with pytest.raises(requests.ConnectionError):
        ours.post(f"{hub.url}/api/v1/counters/kvik1/next", headers=STAFF, timeout=10)
    adapter = adapter_of(ours)
    assert adapter is not None and adapter.repeats == 0
    assert len(calls_in_store(hub)) == 1


def test_our_clients_drop_an_idle_connection_before_the_hub_does(hub: HubProcess, blind_pool: None) -> None:
    """The first half of the rule: idle longer than the client's limit (here shorter than the hub's keep-alive),
    the connection is not reused at all; no request meets the edge, none needs sending again."""
    ours = keep_alive_session(idle_s=KEEP_ALIVE_S / 2)
    for _ in range(5):
        assert call_next(ours, hub).status_code == 200
        time.sleep(KEEP_ALIVE_S + 0.3)
    adapter = adapter_of(ours)
    assert adapter is not None and adapter.repeats == 0
    assert len(calls_in_store(hub)) == 5


def test_a_lost_answer_repeated_with_its_key_calls_nobody_else(hub: HubProcess) -> None:
    """The hub did act, the answer was lost: the repeat with the same key gets the first answer back — for a call
    and for a transfer (which took no key before: a repeated transfer moved the next visitor too)."""
    with requests.Session() as desk:
        key = uuid.uuid4().hex
        first, again = call_next(desk, hub, key=key), call_next(desk, hub, key=key)
        assert first.status_code == again.status_code == 200
        assert again.json()["call"] == first.json()["call"]
        assert len(calls_in_store(hub)) == 1

        key = uuid.uuid4().hex
        moved = [desk.post(f"{hub.url}/api/v1/counters/kvik1/transfer", json={"service": "bibliotekar"},
                           headers={**STAFF, "Idempotency-Key": key}, timeout=10) for _ in range(2)]
        assert [m.status_code for m in moved] == [200, 200] and moved[0].json() == moved[1].json()
        with sqlite3.connect(f"file:{hub.data_dir / 'hub.sqlite3'}?mode=ro", uri=True, timeout=10) as db:
            assert db.execute("SELECT COUNT(*) FROM tickets WHERE transfers > 0").fetchone()[0] == 1
        refused = desk.post(f"{hub.url}/api/v1/counters/kvik1/transfer", json={"service": "bibliotekar"},
                            headers={**STAFF, "Idempotency-Key": "no"}, timeout=10)
        assert refused.status_code == 400 and refused.json()["error"]["code"] == "idempotency_key"


def test_calls_sent_at_the_real_edge_are_all_answered_once(hub: HubProcess) -> None:
    """No blind pool: the desk waits the hub's keep-alive, give or take a few milliseconds, again and again, and
    every call is answered once. On loopback the real window is tens of microseconds (the FIN arrives with the
    close): a probe of 93 such calls with a plain session lost none at load 14, where the harness, under load
    between namespaces, lost 5 in 13,000. So this is the edge as it comes, not a proof: the blind pool above is."""
    ours = keep_alive_session(idle_s=60)
    answered = [call_next(ours, hub)]
    for step in range(-12, 13):
        time.sleep(KEEP_ALIVE_S + step * 0.002)
        answered.append(call_next(ours, hub))
    assert all(a.status_code == 200 for a in answered), [a.status_code for a in answered]
    called = [a.json()["call"]["ticket"] for a in answered]
    assert len(set(called)) == len(answered) == 26
    calls = calls_in_store(hub)
    assert len(calls) == 26 and len({ticket for ticket, _ in calls}) == 26
