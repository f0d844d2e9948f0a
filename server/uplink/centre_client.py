"""The uplink's connection to the centre: one kept-alive HTTP(S) connection (``http.client``), nothing more.

A branch posts a batch a few times a second under load, each one small (a few KB). ``requests`` spent more CPU
on each post than the rest of the uplink's round together (≈ 1.3 ms against ≈ 0.35 ms for ``http.client``,
bench/bench_branches.py), CPU taken from the kiosks' requests on a Raspberry Pi. This client does only what the
uplink needs: POST a body with the branch's token on one connection kept open between batches, TLS verified
against ``ca_file`` (else ``$REQUESTS_CA_BUNDLE`` or certifi's bundle, as requests did), a connect timeout and a
read timeout.

Errors say whether anything reached the centre: ``Unreachable`` (the connection or its TLS handshake could
not be made: refused, no route, no answer to the connect) or anything else (``OSError``, ``HTTPException``:
the request was sent, its answer did not come). A connection the centre closed while idle (its keep-alive
timeout is shorter than the uplink's heartbeat) is noticed before the next post and opened again; one closed
just as a post went out is tried once more on a new connection: the centre skips rows it has, so a batch
sent twice changes nothing.
"""

from __future__ import annotations

import http.client
import os
import select
import ssl
import time
from urllib.parse import urlsplit

from vuoro.keepalive import CLIENT_IDLE_S


class Unreachable(OSError):
    """Nothing reached the centre: the connection (or its TLS handshake, ``tls``) could not be made."""

    def __init__(self, message: str, *, tls: bool = False):
        super().__init__(message)
        self.tls = tls


# A kept connection found closed as a post goes out (the centre's keep-alive ran out just then): sent again once
RESENT_AFTER = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError, ConnectionAbortedError)


class CentreClient:
    def __init__(self, url: str, token: str, ca_file: str | None, *, connect_timeout: float, read_timeout: float):
        parts = urlsplit(url)
        self.https = parts.scheme == "https"
        self.host = parts.hostname or ""
        self.port = parts.port or (443 if self.https else 80)
        self.base = parts.path.rstrip("/")
        self.headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        self.ca_file = ca_file
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self._tls: ssl.SSLContext | None = None
        self._conn: http.client.HTTPConnection | None = None
        self._used_at = 0.0  # monotonic: the kept connection's last answer

    def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        """POST ``body`` to ``path`` under the centre's URL: (status, the answer's body)."""
        # one rule for every client of ours (vuoro/keepalive.py): idle longer than CLIENT_IDLE_S, open a new one
        reused = (self._conn is not None and time.monotonic() - self._used_at < CLIENT_IDLE_S
                  and not self._dropped(self._conn))
        if not reused:
            self.close()
        conn = self._connection()
        try:
            return self._exchange(conn, path, body)
        except RESENT_AFTER:
            self.close()
            if not reused:
                raise
        return self._exchange(self._connection(), path, body)

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    # -- inside ---------------------------------------------------------------------

    def _exchange(self, conn: http.client.HTTPConnection, path: str, body: bytes) -> tuple[int, bytes]:
        try:
            conn.request("POST", self.base + path, body=body, headers=self.headers)
            answer = conn.getresponse()
            data = answer.read()  # all of it, so the connection can carry the next post
        except BaseException:
            self.close()
            raise
        if answer.will_close:
            self.close()
        self._used_at = time.monotonic()
        return answer.status, data

    def _connection(self) -> http.client.HTTPConnection:
        if self._conn is not None:
            return self._conn
        conn: http.client.HTTPConnection
        if self.https:
            conn = http.client.HTTPSConnection(self.host, self.port, timeout=self.connect_timeout,
                                               context=self._context())
        else:
            conn = http.client.HTTPConnection(self.host, self.port, timeout=self.connect_timeout)
        try:
            conn.connect()
        except ssl.SSLError as exc:  # the handshake: a certificate this branch does not trust, not over in seconds
            conn.close()
            raise Unreachable(f"{self.host}:{self.port}: {exc}", tls=True) from exc
        except OSError as exc:  # refused, no route, the connect timed out
            conn.close()
            raise Unreachable(f"{self.host}:{self.port}: {exc or type(exc).__name__}") from exc
        assert conn.sock is not None
        conn.sock.settimeout(self.read_timeout)  # from here on: how long an answer may take
        self._conn = conn
        return conn

    def _context(self) -> ssl.SSLContext:
        if self._tls is None:
            if self.ca_file:
                self._tls = ssl.create_default_context(cafile=self.ca_file)
            else:  # what requests trusted, so the same centres as before this client: its variables, else certifi
                import certifi

                bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or certifi.where()
                self._tls = ssl.create_default_context(cafile=bundle)
        return self._tls

    @staticmethod
    def _dropped(conn: http.client.HTTPConnection) -> bool:
        """Whether an idle kept connection was closed by the centre: readable with nothing asked means its FIN
        (or stray bytes: either way not a connection to post on)."""
        if conn.sock is None:
            return True
        try:
            readable, _, _ = select.select([conn.sock], [], [], 0)
        except (OSError, ValueError):
            return True
        return bool(readable)
