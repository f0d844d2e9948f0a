"""A stand-in hub for screens: it publishes what the hub would, over MQTT or as the hub's SSE stream.

For the display tests, the display benchmark and the signage screenshots, so
all three drive a screen with the same fake (``FakeHub`` for a Kivy screen's
MQTT client, ``Replay`` for the web page), and a ``Waiter`` to wait on a
screen's state without sleeping."""

from __future__ import annotations

import json
import queue
import threading
import uuid
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from toolkit.broker import fresh_root
from vuoro.mqtt import BrokerSettings, make_client
from vuoro.payloads import in_board
from vuoro.protocol import BOARD_SUFFIX, RECENT_CALLS_SUFFIX, Topics

WEB = Path(__file__).resolve().parent.parent / "display" / "web"


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
    """Publishes what the hub would: retained state and QoS 1 call events, and the screens' ``board``
    (vuoro.payloads.Board) after each state it carries (at once: the hub gathers them for BOARD_SECONDS)."""

    def __init__(self, port: int, topics: Topics):
        self.topics = topics
        self.client = make_client(BrokerSettings(f"mqtt://127.0.0.1:{port}"), name="the fake hub",
                                  client_id=f"fakehub-{uuid.uuid4().hex[:8]}", reconnect=(0.2, 1))
        self.connected = threading.Event()
        self.client.on_connect = lambda *a: self.connected.set()
        self.client.on_disconnect = lambda *a: self.connected.clear()
        self.client.start()
        self.board_states: dict[str, Any] = {}  # what the board carries, by topic suffix
        assert self.connected.wait(10), "fake hub could not connect"

    def publish(self, suffix: str, payload: dict[str, Any] | bytes | str, *, retain: bool = True,
                board: bool = True) -> None:
        """Publish on one topic; a state the board carries (given as a dict) goes out in a board too."""
        raw = payload if isinstance(payload, bytes | str) else json.dumps(payload, ensure_ascii=False)
        info = self.client.publish(f"{self.topics.base}/{suffix}", raw, qos=1, retain=retain)
        info.wait_for_publish(10)
        if board and isinstance(payload, dict) and in_board(suffix):
            self.board_states[suffix] = payload
            self.publish_board()

    def publish_board(self) -> None:
        self.publish(BOARD_SUFFIX, {"v": 1, "states": self.board_states}, board=False)

    def publish_all(self, payloads: dict[str, dict[str, Any]]) -> None:
        for suffix, payload in payloads.items():
            self.publish(suffix, payload, board=False)
            if in_board(suffix):
                self.board_states[suffix] = payload
        self.publish_board()

    def call(self, payload: dict[str, Any]) -> None:
        """A call: the event, then a board with it on top of the recent calls (as the hub sends them)."""
        self.publish("calls", payload, retain=False)
        recent = self.board_states.get(RECENT_CALLS_SUFFIX) or {"v": 1, "calls": []}
        if isinstance(recent.get("calls"), list) and isinstance(payload.get("call_id"), str):
            others = [c for c in recent["calls"] if c.get("call_id") != payload["call_id"]]
            self.board_states[RECENT_CALLS_SUFFIX] = {**recent, "calls": [payload, *others][:8]}
            self.publish_board()

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def fresh_topics() -> Topics:
    """The sample site's topics under a root of their own, so retained state never leaks between tests."""
    return Topics("sonderbro", root=fresh_root())


class Replay:
    """A stand-in for the hub's /api/v1/stream and /api/v1/track, plus /signage/ static files."""

    def __init__(self) -> None:
        self.retained: dict[str, dict[str, Any]] = {}
        self.streams: list[queue.Queue[str | None]] = []
        self.track: dict[str, dict[str, Any]] = {}
        self.up = True
        self.lock = threading.Lock()
        replay = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802 - the http.server name
                path = self.path.split("?")[0]
                if path == "/api/v1/stream":
                    return replay.stream(self)
                if path.startswith("/api/v1/track/"):
                    body = replay.track.get(path.rsplit("/", 1)[1])
                    return self.send(200 if body else 404, json.dumps(body or {"error": {}}).encode(),
                                     "application/json")
                if path.startswith("/signage/"):
                    file = WEB / path[len("/signage/"):]
                    if file.is_file():
                        kind = {".html": "text/html", ".css": "text/css", ".js": "text/javascript",
                                ".json": "application/json"}.get(file.suffix, "application/octet-stream")
                        return self.send(200, file.read_bytes(), kind + "; charset=utf-8")
                self.send(404, b"not found", "text/plain")

            def send(self, status: int, body: bytes, kind: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def stream(self, handler: BaseHTTPRequestHandler) -> None:
        if not self.up:
            handler.close_connection = True  # hang up without an answer, as a dead hub would
            return
        inbox: queue.Queue[str | None] = queue.Queue()
        with self.lock:
            self.streams.append(inbox)
            first = [self.event("state", {"topic": k, "payload": v}) for k, v in self.retained.items()]
        handler.send_response(200)
        handler.send_header("Content-Type", "text/event-stream")
        handler.send_header("Cache-Control", "no-cache")
        handler.end_headers()
        handler.close_connection = True
        try:
            handler.wfile.write(("retry: 300\n\n" + "".join(first)).encode())
            handler.wfile.flush()
            while (item := inbox.get()) is not None:
                handler.wfile.write(item.encode())
                handler.wfile.flush()
        except OSError:
            pass
        finally:
            with self.lock:
                self.streams.remove(inbox)

    @staticmethod
    def event(kind: str, data: dict[str, Any]) -> str:
        return f"event: {kind}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"

    def publish(self, topic: str, payload: dict[str, Any]) -> None:
        with self.lock:
            self.retained[topic] = payload
            for inbox in self.streams:
                inbox.put(self.event("state", {"topic": topic, "payload": payload}))

    def call(self, payload: dict[str, Any]) -> None:
        with self.lock:
            for inbox in self.streams:
                inbox.put(self.event("call", payload))

    def cut(self) -> None:
        """The hub goes away: open streams end and new ones are refused."""
        self.up = False
        with self.lock:
            for inbox in self.streams:
                inbox.put(None)

    def close(self) -> None:
        self.cut()
        self.server.shutdown()
        self.server.server_close()
