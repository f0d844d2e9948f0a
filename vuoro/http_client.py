"""The HTTP session every Python client of the hub and the centre uses: keep-alive without the idle edge.

``session()`` is a ``requests.Session`` whose connection pools

- drop a connection that has been idle longer than ``CLIENT_IDLE_S`` (urllib3 reuses a pooled connection however
  old it is, and only notices one the server closed if the server's FIN has already arrived: a request written
  while the FIN is on its way is lost), so our clients never reach the servers' ``SERVER_KEEP_ALIVE_S``;
- send a request once more, on a new connection, when its connection ended before any byte of the answer came
  back (``RemoteDisconnected``, a reset, a broken pipe) — only a request that may be repeated: an idempotent
  method (GET, HEAD, OPTIONS, PUT, DELETE), or a POST with an ``Idempotency-Key``, which the hub answers the
  second time with what it did the first time (a ticket, a sign-up, a desk's call: never two).

The numbers and why: ``vuoro/keepalive.py`` and docs/protocol.md, "Connections".
"""

from __future__ import annotations

import http.client
import logging
import time
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ProtocolError

from vuoro.keepalive import CLIENT_IDLE_S

log = logging.getLogger("vuoro.http")

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"})
# What a connection that ended before the answer's first byte raises: the server closed it (an idle keep-alive
# closed as the request went out), reset it, or it was gone when the request was written.
_ENDED_BEFORE_ANSWER = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError,
                        ConnectionAbortedError)
_IDLE_SINCE = "_vuoro_idle_since"


class _IdleLimit:
    """Mixed into urllib3's pools: a connection back in the pool notes when; one taken out idle longer than
    ``idle_s`` is closed first (urllib3 then opens a new one on it)."""

    idle_s = CLIENT_IDLE_S

    def _get_conn(self, timeout: float | None = None) -> Any:
        conn = super()._get_conn(timeout)  # type: ignore[misc]
        since = getattr(conn, _IDLE_SINCE, None)
        if since is not None and time.monotonic() - since > self.idle_s:
            log.debug("dropping a connection idle %.1f s", time.monotonic() - since)
            conn.close()
        setattr(conn, _IDLE_SINCE, None)
        return conn

    def _put_conn(self, conn: Any) -> None:
        if conn is not None:
            setattr(conn, _IDLE_SINCE, time.monotonic())
        super()._put_conn(conn)  # type: ignore[misc]


def _pools(idle_s: float) -> dict[str, type]:
    http_pool = type("IdleLimitedHTTPPool", (_IdleLimit, HTTPConnectionPool), {"idle_s": idle_s})
    https_pool = type("IdleLimitedHTTPSPool", (_IdleLimit, HTTPSConnectionPool), {"idle_s": idle_s})
    return {"http": http_pool, "https": https_pool}


def ended_before_answer(exc: BaseException) -> bool:
    """Whether this error of ``requests`` means the connection ended before any byte of the answer."""
    for arg in getattr(exc, "args", ()):
        if isinstance(arg, ProtocolError) and any(isinstance(inner, _ENDED_BEFORE_ANSWER) for inner in arg.args):
            return True
        if isinstance(arg, _ENDED_BEFORE_ANSWER):
            return True
    return False


def may_repeat(request: requests.PreparedRequest) -> bool:
    """A request that may be sent twice: an idempotent method, or one the server deduplicates by its key."""
    return (request.method or "").upper() in IDEMPOTENT_METHODS or "Idempotency-Key" in request.headers


class KeepAliveAdapter(HTTPAdapter):
    """Pools with the idle limit; one more try for a request that may be repeated and met a connection that
    ended before the answer. ``repeats`` counts those (tests and health read it)."""

    def __init__(self, idle_s: float = CLIENT_IDLE_S, *, every_request_repeatable: bool = False, **kwargs: Any):
        self.idle_s = idle_s
        self.every_request_repeatable = every_request_repeatable
        self.repeats = 0
        super().__init__(**kwargs)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = _pools(self.idle_s)

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> requests.Response:
        try:
            return super().send(request, *args, **kwargs)
        except requests.ConnectionError as exc:
            if not (ended_before_answer(exc) and (self.every_request_repeatable or may_repeat(request))):
                raise
            self.repeats += 1
            log.info("%s %s: the connection ended before the answer (%s); sending it once more", request.method,
                     request.path_url, exc.args[0] if exc.args else exc)
            return super().send(request, *args, **kwargs)


def session(*, idle_s: float = CLIENT_IDLE_S, every_request_repeatable: bool = False) -> requests.Session:
    """A ``requests.Session`` with the keep-alive rule for http:// and https://. ``every_request_repeatable``: a
    client whose every request the server takes twice without harm (the uplink: the centre stores a batch's rows
    once by their position in the stream; the follower: reads, and a report of the state it is in)."""
    made = requests.Session()
    adapter = KeepAliveAdapter(idle_s, every_request_repeatable=every_request_repeatable)
    made.mount("http://", adapter)
    made.mount("https://", adapter)
    return made


def adapter_of(made: requests.Session) -> KeepAliveAdapter | None:
    adapter = made.get_adapter("http://x")
    return adapter if isinstance(adapter, KeepAliveAdapter) else None
