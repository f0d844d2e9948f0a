"""Free loopback ports for the servers the demo, the tests and the benchmarks start (brokers, hubs, centres).

Not ``bind(0)``: that hands out a port from the kernel's ephemeral range, the same range every outgoing
connection takes its local port from, and the port is free only until the socket closes. Under load (four
test workers, browsers, uplinks) another process's connection or another worker's ``bind(0)`` took such a
port before the server bound it ("address already in use"). Here each process takes ports below the
ephemeral range, from a slice of its own per pytest-xdist worker, in turn from a random start (two test runs
side by side do not walk in step), and each is checked by binding it once.
"""

from __future__ import annotations

import itertools
import os
import random
import re
import socket
import threading
from collections.abc import Iterator

LOWEST = 20000  # above the well-known services this machine may run (5432, 1883, 6379, 5672)
SLICE = 1500  # ports per worker: gw0 .. gw7 fit below the ephemeral range's 32768


def ephemeral_floor() -> int:
    """The lowest port the kernel hands out for outgoing connections and bind(0)."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range", encoding="ascii") as text:
            return int(text.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def _worker_index() -> int:
    """gw0 → 0, gw1 → 1, ...; 8 outside pytest-xdist (the demo, a benchmark, ``pytest -n 0``)."""
    found = re.fullmatch(r"gw(\d+)", os.environ.get("PYTEST_XDIST_WORKER", ""))
    return int(found.group(1)) % 8 if found else 8


def _ports() -> Iterator[int]:
    first = LOWEST + _worker_index() * SLICE
    last = min(first + SLICE, ephemeral_floor()) - 1
    if last <= first:  # an unusual ephemeral range: fall back on the kernel's choice
        while True:
            yield _kernel_port()
    span = range(first, last + 1)
    start = random.randrange(len(span))
    yield from itertools.cycle([*span[start:], *span[:start]])


_lock = threading.Lock()
_next: Iterator[int] | None = None


def _kernel_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def bindable(port: int) -> bool:
    """Nobody is bound to ``port`` on loopback now."""
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_ports(count: int) -> list[int]:
    """``count`` different ports nobody is bound to now, and that no other caller here gets next."""
    global _next
    found: list[int] = []
    with _lock:
        if _next is None:
            _next = _ports()
        for _ in range(2 * SLICE):
            port = next(_next)
            if bindable(port) and port not in found:
                found.append(port)
                if len(found) == count:
                    return found
    raise RuntimeError(f"no {count} free ports in this process's slice from {LOWEST}: is something holding them all?")


def free_port() -> int:
    return free_ports(1)[0]
