"""For tests and the benchmark: a stand-in hub that publishes, and a waiter.

Kept in the package (not in tests/) so `bench/bench_display.py` uses the same
fake hub as the tests."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt

from vuoro.protocol import Topics


class Waiter:
    """Wakes a test when a screen's state changes; waits on a condition, never on a clock."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.updates = 0

    def __call__(self, *args: Any) -> None:
        with self.cond:
            self.updates += 1
            self.cond.notify_all()

    def wait(self, predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
        with self.cond:
            return self.cond.wait_for(predicate, timeout)


class FakeHub:
    """Publishes what the hub would: retained state and QoS 1 call events."""

    def __init__(self, port: int, topics: Topics):
        self.topics = topics
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"fakehub-{uuid.uuid4().hex[:8]}")
        self.client.reconnect_delay_set(0.2, 1)
        self.connected = threading.Event()
        self.client.on_connect = lambda *a: self.connected.set()
        self.client.on_disconnect = lambda *a: self.connected.clear()
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        assert self.connected.wait(10), "fake hub could not connect"

    def publish(self, suffix: str, payload: dict[str, Any] | bytes | str, *, retain: bool = True) -> None:
        raw = payload if isinstance(payload, bytes | str) else json.dumps(payload, ensure_ascii=False)
        info = self.client.publish(f"{self.topics.base}/{suffix}", raw, qos=1, retain=retain)
        info.wait_for_publish(10)

    def publish_all(self, payloads: dict[str, dict[str, Any]]) -> None:
        for suffix, payload in payloads.items():
            self.publish(suffix, payload)

    def call(self, payload: dict[str, Any]) -> None:
        self.publish("calls", payload, retain=False)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def fresh_topics() -> Topics:
    """A topic root of its own per test, so retained state never leaks between tests."""
    return Topics("sonderbro", root=f"t{uuid.uuid4().hex[:10]}")
