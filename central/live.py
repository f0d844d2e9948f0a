"""The overview's live stream (``GET /api/v1/overview/stream``): server-sent events that say which branch changed.

The stream carries no figures, only names: ``event: branch`` with a branch's id (its section is to be read again,
``GET /overview/branches?branch=``), ``event: all`` (read every section again). So a viewer reads only what it may
see, through the same filter as the page, and a missed event costs at most one read.

Where the events come from, in each worker (``LiveOverview``, in the worker's event loop):

- while streams are open, every ``WATCH_S`` the worker reads each branch's state in one small query — how far its
  rows are stored (the streams' positions) and whether it is silent — and sends the branches whose state changed
  (new rows, fallen silent, heard again). Not a ``NOTIFY`` from the ingest: a notifying transaction takes a
  database-wide lock at its commit, held through the commit's flush, so every branch's batch would wait for the
  others'; with one per batch the branch harness measured the branches' ticket p99 with the uplink at 3.3–4.2×
  the one without (0.95× with the read instead, bench/RESULTS.md 2026-12-01 14:10). The read costs nothing while
  no overview is open;
- a branch's config report and a published version (``NOTIFY`` from those rare transactions, heard by the
  worker's coordinator thread, central/coordination.py);
- at most one event per branch per ``COALESCE_S``, the changes meanwhile held back and sent as one;
- the coordinator's connection back after a loss (PostgreSQL restarted): ``all``, since NOTIFYs sent meanwhile
  never arrived.

Each stream sends a comment every ``KEEP_ALIVE_S`` (proxies close a quiet connection) after checking that its
viewer is still signed in with the same branches (else it ends: the browser opens it anew, as it now is), ends
at once when the worker stops (the browser's EventSource reconnects to another worker), and a worker keeps at
most ``MAX_STREAMS`` open: one more is refused with 503 in words, as the hub does (server/stream.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass, field

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

log = logging.getLogger("vuoro.central.live")

COALESCE_S = 1.0  # at most one event per branch this often
WATCH_S = 1.0  # how often the branches' states are read while a stream is open
KEEP_ALIVE_S = 15.0
MAX_STREAMS = 200  # per worker: an open stream is a socket and a few objects; a municipality has tens of viewers
RETRY_MS = 2000  # how soon a browser reconnects after the stream ended or broke
HEADERS = [(b"content-type", b"text/event-stream; charset=utf-8"), (b"cache-control", b"no-store"),
           (b"x-accel-buffering", b"no"), (b"x-content-type-options", b"nosniff")]

# Each branch's state as the page shows it (its rows' positions, silent or not): a change is a branch to read again
ReadStates = Callable[[], Awaitable[dict[str, Hashable]]]


@dataclass(eq=False)
class Listener:
    """One open stream: what its viewer may see, and what it has yet to send."""

    sees: Callable[[str], bool]
    changed: set[str] = field(default_factory=set)
    everything: bool = False
    ended: bool = False
    wake: asyncio.Event = field(default_factory=asyncio.Event)

    def take(self) -> bytes:
        """The events due, as the stream's text; clears them."""
        if self.everything:
            chunk = b"event: all\ndata: *\n\n"
        else:
            chunk = b"".join(f"event: branch\ndata: {b}\n\n".encode() for b in sorted(self.changed))
        self.changed.clear()
        self.everything = False
        return chunk


class LiveOverview:
    """The live streams of one worker (see the module's doc). Every method runs in the worker's event loop."""

    def __init__(self, read_states: ReadStates, limit: int = MAX_STREAMS):
        self.read_states, self.limit = read_states, limit
        self.listeners: set[Listener] = set()
        self.ended = False
        self._last_sent: dict[str, float] = {}
        self._held: set[str] = set()
        self._states: dict[str, Hashable] | None = None
        self._watch: asyncio.Task[None] | None = None
        self._first_read: asyncio.Event = asyncio.Event()

    def open(self, sees: Callable[[str], bool]) -> Listener | None:
        """A new stream's listener, or None: the worker is full or stopping."""
        if self.ended or len(self.listeners) >= self.limit:
            return None
        listener = Listener(sees)
        self.listeners.add(listener)
        if self._watch is None or self._watch.done():
            self._first_read = asyncio.Event()
            self._watch = asyncio.ensure_future(self._watch_states())
        return listener

    async def opened(self) -> None:
        """Wait (briefly) for the first reading of the branches' states: a stream that answers only after it
        misses no change made after the page read its sections on the stream's opening."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._first_read.wait(), 5.0)

    def close(self, listener: Listener) -> None:
        self.listeners.discard(listener)

    def branch_changed(self, branch: str) -> None:
        """A branch's rows changed: its viewers hear of it now, or once ``COALESCE_S`` after its last event."""
        if branch in self._held:
            return
        loop = asyncio.get_running_loop()
        wait = self._last_sent.get(branch, -math.inf) + COALESCE_S - loop.time()
        if wait > 0:
            self._held.add(branch)
            loop.call_later(wait, self._release, branch)
        else:
            self._send(branch)

    def everything_changed(self) -> None:
        """Changes may have been missed (the coordinator's connection was lost): every viewer reads all again."""
        for listener in self.listeners:
            listener.everything = True
            listener.wake.set()

    def end_all(self) -> None:
        """The worker is stopping: every stream ends now (its browser reconnects to a worker that serves)."""
        self.ended = True
        for listener in self.listeners:
            listener.ended = True
            listener.wake.set()
        if self._watch is not None:
            self._watch.cancel()

    def _release(self, branch: str) -> None:
        self._held.discard(branch)
        self._send(branch)

    def _send(self, branch: str) -> None:
        self._last_sent[branch] = asyncio.get_running_loop().time()
        for listener in self.listeners:
            if listener.sees(branch):
                listener.changed.add(branch)
                listener.wake.set()

    async def _watch_states(self) -> None:
        """While streams are open: which branches' states changed since the last read; ends with the last stream."""
        self._states = None
        while self.listeners and not self.ended:
            try:
                states = await self.read_states()
            except Exception as exc:  # the database away: read again next time, every branch that changed meanwhile
                log.debug("the branches' states could not be read: %s", exc)
            else:
                if self._states is not None:
                    for branch in states.keys() | self._states.keys():
                        if states.get(branch) != self._states.get(branch):
                            self.branch_changed(branch)
                self._states = states
            self._first_read.set()
            await asyncio.sleep(WATCH_S)


class EventStream(Response):
    """The ASGI response of one stream: ``retry:``, then the listener's events as they come, with keep-alives."""

    media_type = "text/event-stream"

    def __init__(self, live: LiveOverview, listener: Listener,
                 still_allowed: Callable[[], Awaitable[bool]]):  # no super().__init__: no body to render
        self.live, self.listener, self.still_allowed = live, listener, still_allowed
        self.status_code = 200
        self.background = None
        self.raw_headers = list(HEADERS)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        listener = self.listener

        async def until_disconnect() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass
            listener.ended = True
            listener.wake.set()

        watcher = asyncio.ensure_future(until_disconnect())
        try:
            await self.live.opened()
            await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
            await send({"type": "http.response.body", "body": f"retry: {RETRY_MS}\n\n".encode(), "more_body": True})
            while not listener.ended:
                try:
                    await asyncio.wait_for(listener.wake.wait(), KEEP_ALIVE_S)
                except TimeoutError:
                    if not await self.still_allowed():  # signed out, or its branches changed: it opens anew
                        break
                    await send({"type": "http.response.body", "body": b": alive\n\n", "more_body": True})
                    continue
                listener.wake.clear()
                if listener.ended:
                    break
                chunk = listener.take()
                if chunk:
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
            if not watcher.done():
                await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            self.live.close(listener)
            watcher.cancel()
