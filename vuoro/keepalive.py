"""How long an idle HTTP connection lives, on both ends: ONE rule for the hub, the centre and their clients.

A client that reuses a keep-alive connection and a server that closes it when idle race each other: a request
written just as the server closes the connection is never read, and the client sees the connection end with no
answer (``RemoteDisconnected``). The branch harness lost 5 of ≈ 13,000 desk calls that way when uvicorn closed
connections after its default 5 s and a desk called every 4.5 s (bench/RESULTS.md). The rule that makes the race
impossible for our own clients, and harmless for the rest (docs/protocol.md, "Connections"):

- the servers (the hub's and the centre's uvicorn) keep an idle connection ``SERVER_KEEP_ALIVE_S``;
- our Python clients (the kiosk, the config follower, the harness: ``vuoro.http_client.session``; the uplink's own
  connection: ``server/uplink/centre_client.py``) drop a connection idle longer than ``CLIENT_IDLE_S``, well
  before the server does, and open a new one;
- a request that may be repeated (an idempotent method, or one with an ``Idempotency-Key`` the hub honours) is
  sent once more when its connection ended before any byte of the answer: a server restart, a proxy in
  between or a browser with its own idle window meets the edge too.

This module only holds the numbers (the hub imports it; the HTTP client library it must not load when idle).
"""

from __future__ import annotations

import logging
import os

log = logging.getLogger("vuoro.keepalive")

# The servers keep an idle keep-alive connection this long (uvicorn's default is 5 s). Longer than any client of
# ours keeps one idle, with a wide margin: the clients' clocks and the network's delay never close the gap.
SERVER_KEEP_ALIVE_S = 75.0
# Our clients drop a pooled connection idle longer than this and connect again (a TCP handshake on a LAN costs
# under a millisecond; a kiosk between visitors, a desk between calls, the uplink between heartbeats).
CLIENT_IDLE_S = 30.0
# Only to reproduce the edge in a test (tests/test_keepalive_edge.py): a hub or centre started with this in its
# environment keeps idle connections this many seconds instead, and says so in its log.
KEEP_ALIVE_ENV = "VUORO_KEEP_ALIVE_S"


def server_keep_alive() -> float:
    """The server's idle keep-alive: ``SERVER_KEEP_ALIVE_S``, or the test's value from ``VUORO_KEEP_ALIVE_S``."""
    raw = os.environ.get(KEEP_ALIVE_ENV, "").strip()
    if not raw:
        return SERVER_KEEP_ALIVE_S
    try:
        value = float(raw)
    except ValueError:
        log.warning("%s=%r is not a number of seconds; keeping idle connections %.0f s", KEEP_ALIVE_ENV, raw,
                    SERVER_KEEP_ALIVE_S)
        return SERVER_KEEP_ALIVE_S
    log.warning("%s is set: idle connections are closed after %.2f s, not %.0f s (a test of the keep-alive edge)",
                KEEP_ALIVE_ENV, value, SERVER_KEEP_ALIVE_S)
    return max(0.1, value)
