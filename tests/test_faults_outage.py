"""Fault: calls made while the broker is away or frozen (issue 13, item 3) must not be spoken late.

A real hub process takes calls from staff over HTTP while the real Mosquitto
is stopped, or frozen (SIGSTOP: it holds every message that reaches it, as a
stalled network does) and then continued or killed. The screen is the real
signage client (``display.client.SignageClient``) with the real announcer
(``display.announce.Announcer``: espeak-ng renders each call; the recording
player keeps what would have been played). After the outage the screen must
show the current state at once, and speak only calls that are still fresh.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from display.announce import Announcer, RecordingPlayer
from display.client import SignageClient
from display.state import SignageState
from tests.test_faults_screen import call, issue
from toolkit.broker import Broker
from toolkit.hub_process import HubProcess
from toolkit.mqtt_watch import Watch
from toolkit.polling import wait_until
from vuoro.protocol import Topics


def wait_for(condition: Any, what: str, timeout: float = 30.0) -> None:
    """The kit's wait, with the longer bound an outage needs."""
    wait_until(condition, what, timeout)


@dataclass
class Screen:
    client: SignageClient
    player: RecordingPlayer
    calls: Watch  # every call event that reached the broker, as a plain subscriber sees it

    @property
    def state(self) -> SignageState:
        return self.client.state

    def spoken(self) -> list[str]:
        with self.player.done:
            return [p.label for p in self.player.played]

    def shows(self, condition: Any) -> bool:
        with self.client.lock:
            return bool(condition(self.state))

    def events(self) -> list[str]:
        import json

        return [json.loads(payload)["ticket"] for _, payload, _ in list(self.calls.messages)]


@pytest.fixture()
def screen_for(hub: HubProcess, live_broker: Broker, tmp_path: Path) -> Iterator[Any]:
    made: list[tuple[SignageClient, Announcer, Watch]] = []

    def make(**settings: Any) -> Screen:
        topics = Topics("sonderbro", hub.topic_root or "vuoro")
        player = RecordingPlayer(tmp_path, time_scale=0)
        announcer = Announcer("da", player, workdir=tmp_path)
        client = SignageClient(live_broker.url, SignageState(topics, **settings), device="screen1",
                               on_call=announcer.announce).start()
        watch = Watch(live_broker, topics.calls)
        made.append((client, announcer, watch))
        assert client.wait_connected(10)
        wait_for(lambda: client.state.complete, "the retained state on the screen")
        return Screen(client, player, watch)

    yield make
    for client, announcer, watch in made:
        client.stop()
        announcer.close()
        watch.close()


def serving(state: SignageState, counter: str) -> str | None:
    return ((state.counter_states.get(counter) or {}).get("serving") or {}).get("ticket")


def shows_now(current: str, serving_at: dict[str, str], waiting: dict[str, int] | None = None) -> Any:
    """A screen state check that says what differs (wait_for reports the last one at its deadline)."""

    def check(s: SignageState) -> bool:
        seen = {"offline": s.offline, "current": (s.current_call or {}).get("ticket"),
                **{counter: serving(s, counter) for counter in serving_at},
                **{f"{service} waiting": (s.queues.get(service) or {}).get("waiting") for service in waiting or {}}}
        wanted = {"offline": False, "current": current, **serving_at,
                  **{f"{service} waiting": n for service, n in (waiting or {}).items()}}
        if seen != wanted:
            raise AssertionError(f"the screen shows {seen}, not {wanted}")
        return True

    return check


def broker_seen_by_hub(hub: HubProcess) -> str:
    return str(requests.get(f"{hub.url}/api/v1/health", timeout=5).json()["broker"])


def test_calls_made_while_the_broker_is_down_are_shown_after_not_spoken(hub: HubProcess, live_broker: Broker,
                                                                        screen_for: Any) -> None:
    screen = screen_for()  # the default age limit, 5 s
    tickets = [issue(hub) for _ in range(6)]
    assert call(hub, "kvik1") == tickets[0]
    wait_for(lambda: screen.spoken() == [tickets[0]], "the first call spoken")

    live_broker.stop()
    try:
        wait_for(lambda: screen.shows(lambda s: s.offline), "the offline mark")
        wait_for(lambda: broker_seen_by_hub(hub) == "disconnected", "the hub notice the broker is gone")
        during = [call(hub, "kvik1"), call(hub, "kvik2"), call(hub, "kvik1"), call(hub, "kvik2")]
    finally:
        live_broker.start()
    back = time.monotonic()
    wait_for(lambda: screen.shows(shows_now(during[-1], {"kvik1": during[2], "kvik2": during[3]}, {"kvik": 1})),
             "the state as it is now")
    print(f"screen right {time.monotonic() - back:.2f} s after the broker came back")  # target ≤ 2 s: bench
    with screen.client.lock:
        assert [c["ticket"] for c in screen.state.recent[:5]] == [*reversed(during), tickets[0]]

    fresh = call(hub, "kvik1")
    wait_for(lambda: fresh in screen.spoken(), "the next call spoken")
    # Spoken in order, one at a time: had the hub replayed the outage's calls, they would be spoken before this.
    assert screen.spoken() == [tickets[0], fresh]
    screen.calls.wait_for(lambda w: fresh in screen.events())
    assert not set(during) & set(screen.events()), "the hub replayed calls from the outage as new events"


def freeze(broker: Broker) -> None:
    assert broker.process is not None
    broker.process.send_signal(signal.SIGSTOP)


def thaw(broker: Broker) -> None:
    if broker.process and broker.process.poll() is None:
        broker.process.send_signal(signal.SIGCONT)


def first_call_spoken(hub: HubProcess, screen: Screen) -> str:
    """Four visitors; desk 1 calls the first, and the screen says so."""
    tickets = [issue(hub) for _ in range(4)]
    assert call(hub, "kvik1") == tickets[0]
    wait_for(lambda: screen.spoken() == [tickets[0]], "the first call spoken")
    return tickets[0]


def calls_into_a_frozen_broker(hub: HubProcess, broker: Broker) -> list[str]:
    """Two calls while the broker holds everything it receives; they wait there for 2 s."""
    freeze(broker)
    try:
        held = [call(hub, "kvik2"), call(hub, "kvik1")]
        time.sleep(2.0)  # the fault itself: the calls age in the frozen broker
    except BaseException:
        thaw(broker)
        raise
    return held


def test_calls_held_up_by_a_frozen_broker_arrive_late_and_are_not_spoken(hub: HubProcess, live_broker: Broker,
                                                                         screen_for: Any) -> None:
    """The hub cannot know: its link looks fine while the broker holds what it sent. Only the age can tell."""
    screen = screen_for(announce_max_age=1.0)  # a short limit, so a short stall proves it
    first = first_call_spoken(hub, screen)
    held = calls_into_a_frozen_broker(hub, live_broker)
    thaw(live_broker)
    screen.calls.wait_for(lambda w: set(held) <= set(screen.events()))  # delivered, late
    wait_for(lambda: screen.shows(lambda s: s.current_call["ticket"] == held[-1]), "the held calls on the list")

    fresh = call(hub, "kvik2")
    wait_for(lambda: fresh in screen.spoken(), "the next call spoken")
    assert screen.spoken() == [first, fresh]
    assert screen.state.late_calls == 2


def test_calls_sent_into_a_broker_that_then_died_are_resent_by_paho_and_not_spoken(
        hub: HubProcess, live_broker: Broker, screen_for: Any) -> None:
    """Frozen, then killed and restarted: the hub's MQTT client resends what was never acknowledged."""
    screen = screen_for(announce_max_age=1.0)
    first = first_call_spoken(hub, screen)
    held = calls_into_a_frozen_broker(hub, live_broker)
    assert live_broker.process is not None
    live_broker.process.kill()  # a stopped process dies too; its sockets close
    live_broker.process.wait(5)
    live_broker.stop()
    live_broker.start()
    screen.calls.wait_for(lambda w: set(held) <= set(screen.events()))  # paho's resend after the reconnect
    wait_for(lambda: screen.shows(shows_now(held[-1], {"kvik1": held[1], "kvik2": held[0]})),
             "the state as it is now")

    fresh = call(hub, "kvik2")
    wait_for(lambda: fresh in screen.spoken(), "the next call spoken")
    assert screen.spoken() == [first, fresh]
