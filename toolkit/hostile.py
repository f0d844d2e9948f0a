"""Hostile HTTP clients, for the fault tests and the benchmarks: huge bodies, many open streams.

Raw sockets, because the point is what the hub does with bytes a polite client
library never sends: 300 MB bodies without a token, chunked bodies without a
length, thousands of server-sent-event streams from many addresses (any
127.x.y.z is this machine, so one process can be twenty clients).
"""

from __future__ import annotations

import contextlib
import json
import resource
import selectors
import socket
import threading
import uuid
from collections.abc import Iterator
from typing import Any

MB = 1024 * 1024


def post_raw(port: int, path: str, size: int, *, chunked: bool, token: str | None = None,
             content_type: str = "application/json") -> tuple[int, dict[str, Any], int]:
    """POST ``size`` bytes of junk as fast as the hub takes them; (status, error body, bytes the hub let in).

    The hub may close the connection while the body is still coming (that is the point); the
    answer it wrote before closing is still read."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    head = [f"POST {path} HTTP/1.1", "Host: hub", f"Content-Type: {content_type}",
            "Idempotency-Key: hostile-" + uuid.uuid4().hex[:12]]
    if token:
        head.append(f"Authorization: Bearer {token}")
    head.append("Transfer-Encoding: chunked" if chunked else f"Content-Length: {size}")
    sent = 0
    piece = b"x" * MB
    with contextlib.closing(sock):
        try:
            sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
            while sent < size:
                sock.sendall(b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece)
                sent += len(piece)
            if chunked:
                sock.sendall(b"0\r\n\r\n")
        except OSError:
            pass  # the hub hung up on the body: read what it answered
        answer = _read_answer(sock)
    status_line, _, rest = answer.partition(b"\r\n")
    if not status_line.startswith(b"HTTP/1.1 "):
        raise AssertionError(f"no HTTP answer to {path} (got {answer[:80]!r})")
    body = rest.partition(b"\r\n\r\n")[2]
    return int(status_line.split()[1]), json.loads(body) if body.startswith(b"{") else {}, sent


# The attack: four 300 MB bodies at once, without a token; two say their length, two are chunked.
BODY_ATTACK = [("/api/v1/tickets", False), ("/api/v1/tickets", True), ("/api/v1/checkins", True),
               ("/api/v1/bookings/import", False)]


def body_attack(port: int, size: int = 300 * MB) -> list[tuple[int, dict[str, Any], int]]:
    """BODY_ATTACK, all at once from four threads: each ``post_raw`` answer."""
    answers: list[tuple[int, dict[str, Any], int]] = []
    threads = [threading.Thread(target=lambda p=path, c=chunked: answers.append(post_raw(port, p, size, chunked=c)))
               for path, chunked in BODY_ATTACK]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    return answers


def _content_length(head: bytes) -> int | None:
    """The Content-Length an answer's head announces, if it does."""
    for line in head.split(b"\r\n")[1:]:
        if line.lower().startswith(b"content-length:"):
            return int(line.split(b":", 1)[1])
    return None


def _whole(answer: bytes) -> bool:
    """Whether ``answer`` holds a head and all the body its Content-Length announces."""
    head, found, body = answer.partition(b"\r\n\r\n")
    length = _content_length(head) if found else None
    return length is not None and len(body) >= length


def _read_answer(sock: socket.socket, answer: bytes = b"") -> bytes:
    """The answer on ``sock`` (``answer``: what was read of it already): to its Content-Length, or to the end."""
    with contextlib.suppress(OSError):
        while not _whole(answer):
            more = sock.recv(65536)
            if not more:
                break
            answer += more
    return answer


def open_stream(port: int, source: str) -> tuple[int, socket.socket, bytes]:
    """GET /api/v1/stream from the address ``source``; (status, the open socket, the bytes read so far)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10, source_address=(source, 0))
    sock.sendall(b"GET /api/v1/stream HTTP/1.1\r\nHost: hub\r\nAccept: text/event-stream\r\n\r\n")
    data = b""
    while b"\r\n\r\n" not in data:
        more = sock.recv(65536)
        if not more:
            break
        data += more
    return int(data.split(b" ", 2)[1]), sock, data


def refusal_body(sock: socket.socket, data: bytes) -> bytes:
    """The whole body of a refusal whose head ``open_stream`` read (``data``: the bytes read so far).

    The body may have come with the head or may still be on its way; the hub keeps the connection open
    after it (keep-alive), so read by its Content-Length: one read too many waits for bytes that never come
    (CI at load 5 had the body with the head, and an unconditional recv timed out)."""
    if _content_length(data.partition(b"\r\n\r\n")[0]) is None:
        raise AssertionError(f"a refusal without a Content-Length: {data[:300]!r}")
    return _read_answer(sock, data).partition(b"\r\n\r\n")[2]


class Drain:
    """Reads and throws away whatever arrives on many sockets, in one thread (as screens that keep up)."""

    def __init__(self, sockets: list[socket.socket]):
        self.selector = selectors.DefaultSelector()
        for sock in sockets:
            sock.setblocking(False)
            self.selector.register(sock, selectors.EVENT_READ)
        self.received = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            for key, _ in self.selector.select(0.2):
                try:
                    data = key.fileobj.recv(65536)  # type: ignore[union-attr]
                except BlockingIOError:
                    continue
                except OSError:
                    data = b""
                if not data:
                    self.selector.unregister(key.fileobj)
                self.received += len(data)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.selector.close()


@contextlib.contextmanager
def open_files(soft: int) -> Iterator[None]:
    """Run the block with this soft limit on open files (a child process started in it inherits it)."""
    old = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, old[1]))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, old)


def raise_own_open_files(needed: int) -> None:
    """This process needs ``needed`` open files (thousands of client sockets): raise the soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= needed:
        return
    if hard != resource.RLIM_INFINITY and hard < needed:
        raise RuntimeError(f"{needed} open files are needed; the hard limit here is {hard}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))


def open_files_of(pid: int) -> tuple[str, str]:
    """The (soft, hard) limit on open files of a running process, as /proc shows them."""
    with open(f"/proc/{pid}/limits") as limits:
        line = next(line for line in limits if line.startswith("Max open files"))
    soft, hard = line.split()[3:5]
    return soft, hard


class PeakRss:
    """Samples a process's resident memory every 20 ms in a thread; ``peak`` is the highest seen."""

    def __init__(self, pid: int):
        import psutil  # a dev dependency: only tests and benchmarks measure memory

        self.process = psutil.Process(pid)
        self.start = self.peak = self.process.memory_info().rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, self.process.memory_info().rss)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)
