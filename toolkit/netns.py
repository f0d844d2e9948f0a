"""Network namespaces for branches: each branch on its own network, its WAN a veth pair that can be cut.

A ``Network`` is a Linux bridge in the root namespace (the municipality's WAN; the centre listens on its
address ``10.77.<n>.1``) and one namespace per branch, joined to the bridge by a veth pair: inside, the
branch sees ``wan0`` with ``10.77.<n>.<10+i>`` and its own loopback, where its Mosquitto, its hub and its
kiosks talk to each other. ``cut`` sets the WAN side of the pair down: packets stop in both directions
and nobody sends a FIN or a RST, so every TCP connection over it is left half-open, as a real outage
leaves it (a killed process closes its sockets cleanly, which is why a kill does not test this).

Needs root (``ip netns add``). Names start with ``vq-`` (namespaces) and ``vq`` (links) and carry a
random tag, so two runs on one machine never meet; ``close`` deletes them and SIGKILLs the processes
still inside (only processes in our own namespaces), and runs at exit too. ``clean_leftovers`` removes
what a SIGKILLed run left behind.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import os
import random
import re
import signal
import subprocess
import threading
import uuid
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")
CLONE_NEWNET = 0x40000000
PREFIX = "vq"
_live: set[Network] = set()


def ip(*args: str, check: bool = True) -> str:
    result = subprocess.run(["ip", *args], capture_output=True, text=True)
    if check and result.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {result.stderr.strip()}")
    return result.stdout


def unavailable() -> str | None:
    """Why network namespaces cannot be made here (not root, no ``ip``), or None."""
    if os.geteuid() != 0:
        return "network namespaces need root (ip netns add)"
    try:
        ip("netns", "list")
    except (OSError, RuntimeError) as exc:
        return f"ip netns does not work here: {exc}"
    return None


def _free_subnet() -> int:
    used = {int(m) for m in re.findall(r"inet 10\.77\.(\d+)\.", ip("-4", "-o", "addr"))}
    free = [n for n in range(2, 255) if n not in used]
    if not free:
        raise RuntimeError("no free 10.77.<n>.0/24 left on this machine")
    return random.choice(free)


class Namespace:
    """One branch's network: a namespace with loopback and ``wan0``, whose other end is on the bridge."""

    def __init__(self, network: Network, name: str, index: int):
        self.network = network
        self.name = f"{PREFIX}-{network.tag}-{name}"
        self.address = f"10.77.{network.subnet}.{10 + index}"
        self.wan = f"{PREFIX}{network.tag}w{index}"  # the WAN side, in the root namespace: what a cut sets down

    def create(self) -> None:
        inner = f"{PREFIX}{self.network.tag}n{self.address.rsplit('.', 1)[1]}"
        ip("netns", "add", self.name)
        ip("link", "add", self.wan, "type", "veth", "peer", "name", inner)
        ip("link", "set", inner, "netns", self.name)
        ip("-n", self.name, "link", "set", inner, "name", "wan0")
        ip("-n", self.name, "addr", "add", f"{self.address}/24", "dev", "wan0")
        ip("-n", self.name, "link", "set", "wan0", "up")
        ip("-n", self.name, "link", "set", "lo", "up")
        ip("link", "set", self.wan, "master", self.network.bridge, "up")

    def wrap(self) -> list[str]:
        """The command prefix that runs a program inside (``ip netns exec`` execs it: the pid is the program's)."""
        return ["ip", "netns", "exec", self.name]

    def cut(self) -> None:
        ip("link", "set", self.wan, "down")

    def restore(self) -> None:
        ip("link", "set", self.wan, "up")

    @property
    def is_cut(self) -> bool:
        flags = re.search(r"<([^>]*)>", ip("-o", "link", "show", self.wan))
        return not flags or "UP" not in flags.group(1).split(",")

    def run(self, fn: Callable[[], T]) -> T:
        """Call ``fn`` in a thread that entered this namespace (setns is per thread), e.g. to reach 127.0.0.1
        inside while the branch is cut off."""
        result: list[T] = []
        error: list[BaseException] = []

        def inside() -> None:
            try:
                fd = os.open(f"/run/netns/{self.name}", os.O_RDONLY)
                try:
                    if ctypes.CDLL(None, use_errno=True).setns(fd, CLONE_NEWNET) != 0:
                        raise OSError(ctypes.get_errno(), "setns failed")
                finally:
                    os.close(fd)
                result.append(fn())
            except BaseException as exc:  # handed to the caller's thread
                error.append(exc)

        thread = threading.Thread(target=inside, name=f"in-{self.name}")
        thread.start()
        thread.join()
        if error:
            raise error[0]
        return result[0]

    def pids(self) -> list[int]:
        return [int(p) for p in ip("netns", "pids", self.name, check=False).split()]

    def delete(self) -> None:
        for pid in self.pids():  # only processes inside our own namespace: ours
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        ip("netns", "del", self.name, check=False)  # takes the veth pair with it
        ip("link", "del", self.wan, check=False)


class Network:
    def __init__(self, subnet: int | None = None):
        self.tag = uuid.uuid4().hex[:4]
        self.subnet = subnet or _free_subnet()
        self.bridge = f"{PREFIX}{self.tag}br"
        self.gateway = f"10.77.{self.subnet}.1"  # the root namespace on the WAN: where the centre listens
        self.namespaces: dict[str, Namespace] = {}

    def create(self) -> Network:
        _live.add(self)
        ip("link", "add", self.bridge, "type", "bridge")
        ip("addr", "add", f"{self.gateway}/24", "dev", self.bridge)
        ip("link", "set", self.bridge, "up")
        return self

    def add(self, name: str) -> Namespace:
        ns = Namespace(self, name, len(self.namespaces) + 1)
        self.namespaces[name] = ns
        ns.create()
        return ns

    def close(self) -> None:
        for ns in self.namespaces.values():
            ns.delete()
        ip("link", "del", self.bridge, check=False)
        _live.discard(self)

    def __enter__(self) -> Network:
        return self.create()

    def __exit__(self, *exc: object) -> None:
        self.close()


def clean_leftovers() -> list[str]:
    """Delete namespaces and bridges of runs that could not clean up (SIGKILLed); what was removed."""
    removed = []
    for line in ip("netns", "list").splitlines():
        name = line.split()[0] if line.strip() else ""
        if re.fullmatch(rf"{PREFIX}-[0-9a-f]{{4}}-\S+", name):
            for pid in ip("netns", "pids", name, check=False).split():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(pid), signal.SIGKILL)
            ip("netns", "del", name, check=False)
            removed.append(name)
    for bridge in re.findall(rf"\d+: ({PREFIX}[0-9a-f]{{4}}br)[:@]", ip("-o", "link", "show", "type", "bridge")):
        ip("link", "del", bridge, check=False)
        removed.append(bridge)
    return removed


@atexit.register
def _close_all() -> None:
    for network in list(_live):
        network.close()
