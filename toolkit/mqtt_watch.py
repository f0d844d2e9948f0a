"""An MQTT subscriber for tests: it records every message that arrives, and a test waits on what it saw.

Made through ``vuoro.mqtt.make_client`` like every other client. ``Watch(broker,
*topics)`` subscribes at QoS 1 before returning (with no topic it only
connects, to publish); ``wait_for`` waits on a condition, never on a clock.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from vuoro.mqtt import BrokerSettings, make_client


class Watch:
    """A real MQTT client that remembers every message: ``messages`` (topic, payload, retained) in order,
    the latest payload per topic, and the retained ones."""

    def __init__(self, broker: Any, *topics: str, timeout: float = 10.0):
        self.messages: list[tuple[str, bytes, bool]] = []
        self.retained: dict[str, bytes] = {}
        self.latest: dict[str, bytes] = {}
        self._changed = threading.Condition()
        self.ready = threading.Event()
        # A broker of the test kit, or whole settings (a login, TLS) for a deployed one.
        settings = broker if isinstance(broker, BrokerSettings) else BrokerSettings(broker.url)
        self.client = make_client(settings, client_id=f"test-watch-{uuid.uuid4().hex[:10]}",
                                  name="a test's watch", reconnect=(0.1, 0.5))
        if topics:
            self.client.on_connect = lambda c, *_: c.subscribe([(topic, 1) for topic in topics])
            self.client.on_subscribe = lambda *_: self.ready.set()
        else:
            self.client.on_connect = lambda *_: self.ready.set()
        self.client.on_message = self._on_message
        self.client.connect_now(timeout)
        self.client.loop_start()
        if not self.ready.wait(timeout):
            self.close()
            raise TimeoutError(f"could not subscribe to {', '.join(topics)}" if topics else "could not connect")

    def _on_message(self, _client: Any, _userdata: Any, msg: Any) -> None:
        with self._changed:
            self.messages.append((msg.topic, msg.payload, bool(msg.retain)))
            self.latest[msg.topic] = msg.payload
            if msg.retain:
                self.retained[msg.topic] = msg.payload
            self._changed.notify_all()

    def wait_for(self, predicate: Callable[[Watch], Any], timeout: float = 10.0) -> Any:
        """Wait until predicate(self) is truthy; return its value. Generous timeouts, no timing asserts."""
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
        """The latest payload on a topic, parsed."""
        raw = self.latest.get(topic)
        return json.loads(raw) if raw else None

    def on(self, topic: str) -> list[dict[str, Any]]:
        """Every payload that arrived on a topic, parsed, in order (an empty one, a cleared topic, left out)."""
        return [json.loads(raw) for name, raw, _ in list(self.messages) if name == topic and raw]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def publish_retained(broker: Any, topic: str, payload: bytes) -> None:
    """Leave a retained message on the broker, as a device or hub that has since gone would have."""
    client = make_client(BrokerSettings(broker.url), name="a test publisher")
    client.connect_now(10)
    client.loop_start()
    client.publish(topic, payload, qos=1, retain=True).wait_for_publish(10)
    client.disconnect()
    client.loop_stop()
