"""Fault: the broker restarts while screens and the hub run (issue 10), the screen's side.

tests/test_hub.py proves the hub republishes after a broker restart, and
tests/test_display_mqtt.py proves a screen recovers against a stand-in hub.
Here both are real at once: the signage screen's own MQTT client
(``display.client.SignageClient``, headless) follows a real hub process, the
broker goes away, staff call and a kiosk issues **while it is away**, and
the broker comes back. With no manual step the screen must show the offline
mark during the outage and then the state as it is now, not as it was.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import requests

from display.client import SignageClient
from display.state import SignageState
from toolkit.broker import Broker
from toolkit.hub_process import HubProcess
from vuoro.protocol import Topics

KIOSK = {"Authorization": "Bearer demo-kiosk1-token-change-me"}
STAFF = {"Authorization": "Bearer demo-staff-token-change-me"}


def issue(hub: HubProcess) -> str:
    answer = requests.post(f"{hub.url}/api/v1/tickets", json={"service": "kvik"},
                           headers={**KIOSK, "Idempotency-Key": uuid.uuid4().hex}, timeout=10)
    assert answer.status_code == 201, answer.text
    return str(answer.json()["ticket"])


def call(hub: HubProcess, counter: str) -> str:
    answer = requests.post(f"{hub.url}/api/v1/counters/{counter}/next", headers=STAFF, timeout=10).json()
    return str(answer["call"]["ticket"])


def until(screen: SignageClient, condition: Any, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        with screen.lock:
            if condition(screen.state):
                return
            seen = (screen.state.link_online, screen.state.hub_online, screen.state.recent[:1],
                    screen.state.queues.get("kvik", {}).get("waiting"))
        if time.monotonic() > deadline:
            raise TimeoutError(f"the screen never showed {what}; it showed (link, hub, last call, waiting) = {seen}")
        time.sleep(0.05)


def serving(state: SignageState, counter: str) -> str | None:
    return ((state.counter_states.get(counter) or {}).get("serving") or {}).get("ticket")


def test_broker_restart_screen_shows_offline_then_the_state_changed_meanwhile(hub: HubProcess,
                                                                              live_broker: Broker) -> None:
    screen = SignageClient(live_broker.url, SignageState(Topics("sonderbro", hub.topic_root or "vuoro")),
                           device="screen1").start()
    try:
        first, second = issue(hub), issue(hub)
        assert call(hub, "kvik1") == first
        until(screen, lambda s: s.complete and not s.offline and s.current_call
              and s.current_call["ticket"] == first and s.queues["kvik"]["waiting"] == 1, "the first call")

        live_broker.stop()
        try:
            until(screen, lambda s: s.offline, "the offline mark")
            # the house goes on while the broker is away
            assert call(hub, "kvik2") == second
            third = issue(hub)
        finally:
            live_broker.start()

        until(screen, lambda s: not s.offline and s.current_call and s.current_call["ticket"] == second
              and serving(s, "kvik2") == second and serving(s, "kvik1") == first
              and s.queues["kvik"]["waiting"] == 1, "the state after the restart")
        with screen.lock:
            assert [c["ticket"] for c in screen.state.recent[:2]] == [second, first]
        assert third not in (serving(screen.state, c) for c in ("kvik1", "kvik2"))
    finally:
        screen.stop()
