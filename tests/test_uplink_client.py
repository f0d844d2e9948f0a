"""The uplink's HTTP client (server/uplink/centre_client.py) against a real HTTP/1.1 server on loopback: one kept
connection for many posts, a connection the server closed while idle opened again, one closed as a post went out
sent again once, and nothing reached (refused) told apart from a request sent and not answered."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from server.uplink.centre_client import CentreClient, Unreachable
from toolkit.broker import free_port


class Centre(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.connections = 0
        self.bodies: list[bytes] = []
        self.tokens: set[str] = set()
        self.drop_next = False  # close the connection on the next request without answering
        self.silent = False  # take requests and never answer


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: Centre

    def setup(self) -> None:
        super().setup()
        self.server.connections += 1

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if self.server.drop_next:
            self.server.drop_next = False
            self.close_connection = True
            return
        if self.server.silent:
            threading.Event().wait(5)
            return
        self.server.bodies.append(body)
        answer = b'{"shipped": %d}' % len(self.server.bodies)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)
        self.server.tokens.add(self.headers["Authorization"])

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture()
def centre() -> Iterator[Centre]:
    server = Centre()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def client(port: int, read_timeout: float = 5.0) -> CentreClient:
    return CentreClient(f"http://127.0.0.1:{port}", "branch-secret-0123456789", None, connect_timeout=2.0,
                        read_timeout=read_timeout)


def test_many_posts_go_over_one_kept_connection(centre: Centre) -> None:
    uplink = client(centre.server_address[1])
    answers = [uplink.post("/api/v1/ingest", b'{"n": %d}' % n) for n in range(5)]
    assert answers == [(200, b'{"shipped": %d}' % n) for n in range(1, 6)]
    assert centre.connections == 1
    assert centre.tokens == {"Bearer branch-secret-0123456789"}
    uplink.close()


def test_a_connection_the_centre_closed_while_idle_is_opened_again(centre: Centre) -> None:
    uplink = client(centre.server_address[1])
    assert uplink.post("/api/v1/ingest", b"{}")[0] == 200
    assert uplink._conn is not None and uplink._conn.sock is not None
    # the centre's keep-alive ran out: it closes its end (a FIN, as uvicorn after 5 s idle)
    centre.drop_next = True
    assert uplink.post("/api/v1/ingest", b'{"a": 1}')[0] == 200  # dropped as it went out: sent again, once
    assert centre.bodies == [b"{}", b'{"a": 1}'] and centre.connections == 2


def test_a_refused_connection_is_unreachable_and_a_silent_centre_times_out(centre: Centre) -> None:
    with pytest.raises(Unreachable) as refused:
        client(free_port()).post("/api/v1/ingest", b"{}")
    assert not refused.value.tls and "Connection refused" in str(refused.value)
    centre.silent = True
    with pytest.raises(TimeoutError) as waited:  # sent: not Unreachable (it may be stored), a read timeout
        client(centre.server_address[1], read_timeout=0.5).post("/api/v1/ingest", b"{}")
    assert not isinstance(waited.value, Unreachable)


def test_a_centre_that_closes_a_new_connection_is_an_error_not_sent_twice(centre: Centre) -> None:
    """Only a kept connection is tried again: a new one dropped is the centre's trouble, and the uplink's backoff
    decides when to try."""
    centre.drop_next = True
    with pytest.raises((ConnectionError, OSError)):
        client(centre.server_address[1]).post("/api/v1/ingest", b"{}")
    assert centre.bodies == []


def test_an_idle_socket_with_its_peer_gone_counts_as_dropped() -> None:
    left, right = socket.socketpair()
    conn = type("C", (), {"sock": left})()
    assert not CentreClient._dropped(conn)  # type: ignore[arg-type]
    right.close()
    assert CentreClient._dropped(conn)  # type: ignore[arg-type]
    left.close()
