"""A screen's MQTT client against a real Mosquitto: cold start, calls, restarts, junk."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from display import sample
from display.announce import Announcer, RecordingPlayer, wav_seconds
from display.client import SignageClient
from display.state import SignageState
from toolkit.broker import Broker
from toolkit.fake_hub import FakeHub, Waiter
from vuoro.mqtt import BrokerSettings, make_client
from vuoro.protocol import Topics, parse_device_status


@pytest.fixture()
def topics(fake_hub: FakeHub) -> Topics:
    return fake_hub.topics


def start_screen(broker: Broker, topics: Topics, **kwargs: object) -> tuple[SignageClient, Waiter]:
    waiter = Waiter()
    client = SignageClient(broker.url, SignageState(topics), on_update=waiter, **kwargs)  # type: ignore[arg-type]
    return client.start(), waiter


def test_cold_start_draws_the_full_state_from_retained_messages(live_broker: Broker, fake_hub: FakeHub,
                                                                topics: Topics) -> None:
    fake_hub.publish_all(sample.retained(message="Borgerservice lukker kl. 16"))
    screen, waiter = start_screen(live_broker, topics)
    try:
        assert waiter.wait(lambda: screen.state.complete and bool(screen.state.events) and bool(screen.state.message))
        state = screen.state
        assert set(state.queues) == {"kvik", "borgerservice", "bibliotekar", "it"}
        assert state.current_call and state.current_call["ticket"] == "K041"
        assert state.message == "Borgerservice lukker kl. 16" and not state.offline
    finally:
        screen.stop()


def test_a_call_reaches_the_screen_and_its_announcer(live_broker: Broker, fake_hub: FakeHub, topics: Topics) -> None:
    fake_hub.publish_all(sample.retained())
    calls: list[dict[str, object]] = []
    screen, waiter = start_screen(live_broker, topics, on_call=calls.append)
    try:
        assert waiter.wait(lambda: screen.state.complete)
        call = sample.call("K042", "borger1")
        fake_hub.call(call)
        assert waiter.wait(lambda: screen.state.current_call == call)
        assert screen.state.highlighted()
        assert calls == [call]
    finally:
        screen.stop()


def test_broker_restart_keeps_the_picture_marks_offline_and_recovers(live_broker: Broker, fake_hub: FakeHub,
                                                                      topics: Topics) -> None:
    fake_hub.publish_all(sample.retained())
    screen, waiter = start_screen(live_broker, topics)
    try:
        assert waiter.wait(lambda: screen.state.complete and screen.state.link_online)
        live_broker.stop()
        assert waiter.wait(lambda: screen.state.offline)
        # Offline, the last state stays on screen.
        assert screen.state.queues["kvik"]["waiting"] == 4 and screen.state.current_call is not None
        live_broker.start()
        assert waiter.wait(lambda: screen.state.link_online and screen.connects >= 2, timeout=15)
        # After the restart the hub republishes; the screen follows without help.
        assert fake_hub.connected.wait(15)
        fake_hub.publish("queue/kvik/state", sample.queue_state("kvik", 7, 14))
        assert waiter.wait(lambda: screen.state.queues["kvik"]["waiting"] == 7, timeout=15)
        call = sample.call("K043", "kvik1")
        fake_hub.call(call)
        assert waiter.wait(lambda: screen.state.current_call == call)
        assert not screen.state.offline
    finally:
        live_broker.start()
        screen.stop()


def test_malformed_payloads_are_dropped_and_the_screen_keeps_going(live_broker: Broker, fake_hub: FakeHub,
                                                                   topics: Topics) -> None:
    fake_hub.publish_all(sample.retained())
    screen, waiter = start_screen(live_broker, topics)
    try:
        assert waiter.wait(lambda: screen.state.complete)
        # Junk on the board (the topic a screen takes queue states from), a bad state inside one (dropped
        # alone), a bad event list, a call without an id, bytes that are not text.
        fake_hub.publish("board", b"{not json")
        fake_hub.publish("queue/kvik/state", {"v": 1, "service": "kvik", "waiting": "many", "open": True})
        fake_hub.publish("events/today", {"v": 1, "events": "tonight"})
        fake_hub.call({"v": 1, "ticket": "K099"})
        fake_hub.publish("board", b"\x00\xff" * 1000)
        # A good message afterwards still gets through: the client lived.
        fake_hub.publish("queue/kvik/state", sample.queue_state("kvik", 9, 18))
        assert waiter.wait(lambda: screen.state.queues["kvik"]["waiting"] == 9)
        assert screen.state.rejected == 5
        assert len(screen.state.events) == 4  # the bad events payload changed nothing
    finally:
        screen.stop()


def test_presence_is_retained_with_a_last_will(live_broker: Broker, topics: Topics) -> None:
    seen: list[bool] = []
    got = threading.Condition()

    def on_message(client: mqtt.Client, userdata: object, message: mqtt.MQTTMessage) -> None:
        with got:
            seen.append(parse_device_status(message.payload).online)
            got.notify_all()

    watcher = make_client(BrokerSettings(live_broker.url), name="a test watcher")
    watcher.on_message = on_message
    watcher.on_connect = lambda c, *a: c.subscribe(topics.device_status("screen1"), qos=1)
    watcher.connect_now(10)
    watcher.loop_start()
    screen, waiter = start_screen(live_broker, topics, device="screen1")
    try:
        with got:
            assert got.wait_for(lambda: seen[-1:] == [True], 10)
        # Cut the TCP link without a DISCONNECT, as a power cut would: the
        # broker sends the will, then the screen reconnects and says it is back.
        sock = screen.client.socket()
        assert sock is not None
        sock.close()
        with got:
            assert got.wait_for(lambda: False in seen and seen[-1] is True and len(seen) >= 3, 15)
    finally:
        screen.stop()
        watcher.disconnect()
        watcher.loop_stop()


def test_calls_in_quick_succession_are_announced_in_order_never_overlapping(
    live_broker: Broker, fake_hub: FakeHub, topics: Topics, tmp_path: Path
) -> None:
    fake_hub.publish_all(sample.retained())
    # Playback at a fraction of real time keeps the test short; overlap would still show.
    player = RecordingPlayer(tmp_path, time_scale=0.15)
    announcer = Announcer("da", player)
    screen, waiter = start_screen(live_broker, topics, on_call=announcer.announce)
    try:
        assert waiter.wait(lambda: screen.state.complete)
        calls = [sample.call("K042", "borger1"), sample.call("H008", "kvik1"), sample.call("L004", "bib1")]
        recall = {**calls[0], "call_id": "recall-" + calls[0]["call_id"], "recall": True}
        for call in [*calls, recall]:
            fake_hub.call(call)  # back to back, no pause
        assert player.wait_for(4, timeout=30)
        assert [p.label for p in player.played] == ["K042", "H008", "L004", "K042"]
        assert player.most_at_once == 1
        for before, after in zip(player.played, player.played[1:], strict=False):
            assert after.start >= before.end
        for played in player.played:
            # chime (~1.4 s) + speech: a real WAV at espeak's rate, longer than the chime alone
            assert wav_seconds(played.path) > 1.6
        assert json.dumps(screen.state.current_call) == json.dumps(recall)
    finally:
        screen.stop()
        announcer.close()
