"""Shared fixtures: a real Mosquitto per session, temporary site files.

Kivy reads its environment at first import, so the variables that keep it
quiet, off the user's config and on an offscreen SDL window are set here,
before any test module can import it.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from pathlib import Path

os.environ.setdefault("KIVY_NO_ARGS", "1")
os.environ.setdefault("KIVY_NO_CONSOLELOG", "1")
os.environ.setdefault("KIVY_NO_FILELOG", "1")
os.environ.setdefault("KIVY_NO_CONFIG", "1")
os.environ.setdefault("KIVY_HOME", tempfile.mkdtemp(prefix="vuoro-kivy-"))
os.environ.setdefault("SDL_VIDEODRIVER", "offscreen")
os.environ.setdefault("GPIOZERO_PIN_FACTORY", "mock")

from collections.abc import Iterator  # noqa: E402

import pytest  # noqa: E402

from toolkit.broker import Broker  # noqa: E402
from toolkit.hub_process import HubProcess  # noqa: E402

TEST_SITE = Path(__file__).parent / "sites" / "always_open.toml"


@pytest.fixture(scope="session")
def broker() -> Iterator[Broker]:
    """A real Mosquitto on a free port for the whole session.

    Tests that stop or restart it must leave it running (``broker.start()``).
    """
    with Broker() as running:
        yield running


@pytest.fixture()
def live_broker(broker: Broker) -> Broker:
    """The session broker, guaranteed up at the start of the test."""
    broker.start()
    return broker


def start_hub(data_dir: Path, broker: Broker) -> HubProcess:
    """A real hub process on the always-open test site. Each gets its own MQTT topic root, so tests
    never see each other's retained state on the shared session broker."""
    return HubProcess(TEST_SITE, data_dir, broker.url, topic_root="t" + uuid.uuid4().hex[:8]).start()


@pytest.fixture()
def hub(tmp_path: Path, live_broker: Broker) -> Iterator[HubProcess]:
    process = start_hub(tmp_path, live_broker)
    yield process
    process.stop()


class Watch:
    """A real MQTT subscriber that remembers every message, for tests to wait on."""

    def __init__(self, broker: Broker, topic: str):
        import threading

        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        self.messages: list[tuple[str, bytes, bool]] = []
        self.retained: dict[str, bytes] = {}
        self.latest: dict[str, bytes] = {}
        self._changed = threading.Condition()
        self.subscribed = threading.Event()
        client = mqtt.Client(CallbackAPIVersion.VERSION2)
        client.reconnect_delay_set(0.1, 0.5)

        def on_connect(c, userdata, flags, reason, props):  # type: ignore[no-untyped-def]
            c.subscribe(topic, qos=1)

        def on_subscribe(c, userdata, mid, reasons, props):  # type: ignore[no-untyped-def]
            self.subscribed.set()

        def on_message(c, userdata, msg):  # type: ignore[no-untyped-def]
            with self._changed:
                self.messages.append((msg.topic, msg.payload, bool(msg.retain)))
                self.latest[msg.topic] = msg.payload
                if msg.retain:
                    self.retained[msg.topic] = msg.payload
                self._changed.notify_all()

        client.on_connect, client.on_subscribe, client.on_message = on_connect, on_subscribe, on_message
        client.connect("127.0.0.1", broker.port)
        client.loop_start()
        self.client = client
        if not self.subscribed.wait(10):
            raise TimeoutError("could not subscribe")

    def wait_for(self, predicate, timeout: float = 10.0):  # type: ignore[no-untyped-def]
        """Wait until predicate(self) is truthy; return its value. Generous timeouts, no timing asserts."""
        import time

        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                value = predicate(self)
                if value:
                    return value
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"condition not met within {timeout} s; saw {len(self.messages)} messages")
                self._changed.wait(min(left, 0.2))

    def json(self, topic: str) -> dict | None:
        import json

        raw = self.latest.get(topic)
        return json.loads(raw) if raw else None

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture()
def watch(live_broker: Broker):  # type: ignore[no-untyped-def]
    """``watch(topic)`` subscribes a real client; all are closed after the test."""
    watches: list[Watch] = []

    def make(topic: str) -> Watch:
        w = Watch(live_broker, topic)
        watches.append(w)
        return w

    yield make
    for w in watches:
        w.close()
