"""``GET /api/v1/stream``: server-sent events for web signage, the staff page and the phone page.

One hub listener feeds every open stream: each change is turned into its
``event: …`` text once, in the writer thread, and handed to the event loop
once, into a numbered log; sweeps then wake the streams that are behind, a
slice at a time (``Streams``). So 2,000 open streams cost one ``send`` each
per sweep, not a JSON encoding each, and a kiosk's ticket is not stuck behind
them: with 2,000 streams open its p99 stays under the 50 ms target
(bench/bench_hostile.py).

Streams are limited per client address and in total (``[hub]
streams_per_address``, ``streams_total``), and the total is kept below the
process's open-file limit, so a client that opens streams until something
breaks is refused in words (429 per address, 503 in total) while kiosks are
served. A stream whose client stops reading is ended rather than buffered
without bound; the browser's EventSource reconnects and gets the whole state.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import resource
from collections import Counter, deque
from collections.abc import Callable, Iterator
from itertools import islice
from typing import Any

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from server.hookspecs import hookimpl
from vuoro import refusals

log = logging.getLogger("vuoro.stream")

KEEP_ALIVE_SECONDS = 15.0  # a comment line this often lets proxies and the browser see the line is alive
LOG_MAX = 1000  # changes kept for streams that are behind; one further behind is ended (and reconnects)
FILES_RESERVE = 200  # open files kept for everything else: kiosks, the store, MQTT, logs
HEADERS = [(b"content-type", b"text/event-stream; charset=utf-8"), (b"cache-control", b"no-cache"),
           (b"x-accel-buffering", b"no")]


def raise_open_files_limit() -> int:
    """Raise this process's soft limit on open files to its hard limit; return the soft limit in force.

    Under systemd the unit's ``LimitNOFILE`` sets both (and its system-call filter forbids
    ``setrlimit``); started by hand, the soft limit is often 1,024, which 1,000 idle streams use up."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 65536)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError) as exc:
            log.warning("could not raise the open-files limit from %d to %d: %s", soft, target, exc)
    return soft


def open_files_limit() -> int:
    """The soft limit on open files this process runs with."""
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def sse(event: str, data: dict[str, Any]) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False, separators=(',', ':'))}\n\n".encode()


def change_event(kind: str, name: str, payload: dict[str, Any]) -> bytes:
    """A hub announcement as the stream sends it: a call, or a retained state with its topic suffix."""
    return sse("call", payload) if kind == "call" else sse("state", {"topic": name, "payload": payload})


class StreamRefused(Exception):
    def __init__(self, status: int, code: str, message: str, retry_after: int):
        super().__init__(message)
        self.status, self.code, self.message, self.retry_after = status, code, message, retry_after


class Stream:
    """One open stream: how far it has read the change log, and an event that wakes its sender."""

    __slots__ = ("address", "seen", "wake", "ended")

    def __init__(self, address: str, seen: int):
        self.address = address
        self.seen = seen  # the version of the last change it has been sent
        self.wake = asyncio.Event()
        self.ended = False


class Streams:
    """Every open stream of one app, the caps, and the one hub hook (``announce``) that feeds them.

    Changes go into one log, numbered. A sweep wakes the streams that are behind, ``SLICE``
    at a time with the event loop free in between, so a kiosk's request waits for one slice
    at most, never for all 2,000 sends. A stream sends what it missed with each topic's
    latest state only (and every call): when changes come faster than a sweep, the screens
    skip the states already out of date instead of the hub falling behind. A sweep that ends
    with changes still to send rests as long as it took before the next one, so streams never
    take more than half the loop; a change that comes alone goes out at once.
    """

    SLICE = 50

    def __init__(self, retained_state: Callable[[], dict[str, dict[str, Any]]], *, per_address: int, total: int):
        self.retained_state = retained_state
        self.per_address = per_address
        self.total = total
        self.open: dict[Stream, None] = {}  # insertion-ordered: the sweep goes round in the same order
        self.by_address: Counter[str] = Counter()
        self.loop: asyncio.AbstractEventLoop | None = None
        self.version = 0
        self.log: deque[tuple[int, str, bytes]] = deque()  # (version, topic or a call's own key, event text)
        self._sweeping = False  # a pass is going round, or resting before the next
        self._pass_began = 0.0
        self._keep_alive: asyncio.TimerHandle | None = None

    # -- the hub side (writer thread) -----------------------------------------------------------

    @hookimpl(specname="announce")
    def listener(self, kind: str, name: str, payload: dict[str, Any]) -> None:
        """The hub's ``announce`` hook: encode once, hand to the event loop once."""
        loop = self.loop
        if loop is None or not self.open:
            return
        chunk = change_event(kind, name, payload)
        with contextlib.suppress(RuntimeError):  # the loop has closed: the hub is stopping
            loop.call_soon_threadsafe(self._deliver, "" if kind == "call" else name, chunk)

    # -- the event loop side ------------------------------------------------------------------------

    def _deliver(self, topic: str, chunk: bytes) -> None:
        self.version += 1
        self.log.append((self.version, topic or f"call {self.version}", chunk))
        if len(self.log) > LOG_MAX:  # a stream this far behind gets a fresh start (EventSource reconnects)
            oldest = self.log.popleft()[0]
            for stream in self.open:
                if stream.seen < oldest and not stream.ended:
                    stream.ended = True
                    stream.wake.set()
        if not self._sweeping:
            self._start_pass()

    def _start_pass(self) -> None:
        self._sweeping = True
        self._pass_began = self.loop.time()  # type: ignore[union-attr]
        self.loop.call_soon(self._sweep, iter(list(self.open)))  # type: ignore[union-attr]

    def _sweep(self, streams: Iterator[Stream]) -> None:
        """Wake the next SLICE streams that are behind (each sends in its own task, in the next turn)."""
        went = 0
        for stream in islice(streams, self.SLICE):
            went += 1
            if stream.seen < self.version:
                stream.wake.set()
        if went == self.SLICE:
            self.loop.call_soon(self._sweep, streams)  # type: ignore[union-attr]
            return
        live = [stream for stream in self.open if not stream.ended]
        oldest = min((stream.seen for stream in live), default=self.version)
        while self.log and self.log[0][0] <= oldest:
            self.log.popleft()
        if any(stream.seen < self.version and not stream.wake.is_set() for stream in live):
            # Changes came in while this pass went round. Rest as long as the pass took before the next:
            # with changes coming all the time, streams get at most half the loop and kiosks the rest.
            rest = self.loop.time() - self._pass_began  # type: ignore[union-attr]
            self.loop.call_later(rest, self._start_pass)  # type: ignore[union-attr]
        else:
            self._sweeping = False

    def missed(self, stream: Stream) -> bytes:
        """What this stream has not been sent: each topic's latest state and every call, in order."""
        latest: dict[str, bytes] = {}
        for version, key, chunk in self.log:
            if version > stream.seen:
                latest.pop(key, None)
                latest[key] = chunk
        stream.seen = self.version
        return b"".join(latest.values())

    def _tick(self) -> None:
        self._keep_alive = None
        if self.open:
            self._deliver("keep-alive", b": keep-alive\n\n")
            self._arm()

    def _arm(self) -> None:
        if self._keep_alive is None and self.loop is not None:
            self._keep_alive = self.loop.call_later(KEEP_ALIVE_SECONDS, self._tick)

    # -- the HTTP side (event loop) ----------------------------------------------------------------

    def admit(self, address: str) -> Stream:
        """A new stream for this address, or StreamRefused with words for whoever opened it."""
        if self.by_address[address] >= self.per_address:
            raise StreamRefused(429, refusals.TOO_MANY_STREAMS,
                                f"This address already has {self.per_address} live streams open, the most the hub "
                                "serves one address. Close a screen or browser tab and try again.", 30)
        if len(self.open) >= self.total:
            raise StreamRefused(503, refusals.STREAMS_FULL,
                                f"The hub is serving {self.total} live streams, as many as it takes at once. "
                                "Try again in a minute.", 60)
        if self.loop is None:
            self.loop = asyncio.get_running_loop()
        stream = Stream(address, self.version)
        self.open[stream] = None
        self.by_address[address] += 1
        self._arm()
        return stream

    def end_all(self) -> None:
        """The hub is stopping: every stream ends now (its browser reconnects to the hub that comes back)."""
        for stream in list(self.open):
            stream.ended = True
            stream.wake.set()

    def close(self, stream: Stream) -> None:
        if stream in self.open:
            del self.open[stream]
            self.by_address[stream.address] -= 1
            if self.by_address[stream.address] <= 0:
                del self.by_address[stream.address]

    def response(self, stream: Stream) -> EventStreamResponse:
        return EventStreamResponse(self, stream)


class EventStreamResponse(Response):
    """The ASGI response of one stream: every retained state first, then each change as it comes."""

    media_type = "text/event-stream"

    def __init__(self, streams: Streams, stream: Stream):  # no super().__init__: there is no body to render
        self.streams = streams
        self.stream = stream
        self.status_code = 200
        self.background = None
        self.raw_headers = list(HEADERS)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        stream = self.stream

        async def until_disconnect() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass
            stream.ended = True
            stream.wake.set()

        watcher = asyncio.ensure_future(until_disconnect())
        try:
            await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
            first = [b"retry: 2000\n\n"] + [change_event("state", name, payload)
                                             for name, payload in self.streams.retained_state().items()]
            await send({"type": "http.response.body", "body": b"".join(first), "more_body": True})
            while True:
                await stream.wake.wait()
                stream.wake.clear()
                if stream.ended:
                    break
                chunk = self.streams.missed(stream)
                if chunk:
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
            if not watcher.done():
                await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            self.streams.close(stream)
            watcher.cancel()
