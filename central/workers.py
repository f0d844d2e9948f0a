"""The centre as several worker processes: one parent that supervises, N workers that serve (docs/central.md).

The parent (the service's main pid) checks the config, migrates the database and registers the branches, binds
the listening sockets, then forks the workers and only supervises:

- one listening socket per worker slot, all bound to the same address with ``SO_REUSEPORT``: the kernel spreads
  new connections over the slots evenly (a shared socket lets whichever worker wakes first accept a whole burst).
  The parent keeps every slot's socket open, so connections waiting on a slot whose worker died are served by the
  worker that replaces it; before binding, a plain bind checks that no other process serves the port already
  (``SO_REUSEPORT`` would otherwise let a second centre share it silently);
- a worker that exits or stops answering (no heartbeat for ``SILENT_S``: a hung event loop or thread pool) is
  killed and replaced; one that dies within ``QUICK_DEATH_S`` of its start is replaced after a growing pause;
- ``SIGTERM``/``SIGINT``: ``STOPPING=1``, the workers are asked to stop (uvicorn's graceful stop), and killed after
  ``STOP_S``;
- systemd's notifications come from the parent alone (``Type=notify``, ``NotifyAccess=main``): ``READY=1`` once
  every worker serves, ``WATCHDOG=1`` while at least one worker answers. The workers lose ``$NOTIFY_SOCKET``.

A worker is forked from the parent (no threads or connections exist there yet): it builds its own pool and app
and runs uvicorn on its slot's socket. It tells the parent over a pipe that it serves (``R``) and that its loop and
threads answer (``H``, every ``HEARTBEAT_S``), and it dies with the parent (``PR_SET_PDEATHSIG``): a parent killed
with ``SIGKILL`` leaves no worker serving the port behind (a centre started again at once waits up to
``BIND_WAIT_S`` for the port).
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import logging
import os
import selectors
import signal
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from vuoro import sd_notify

log = logging.getLogger("vuoro.central.workers")

HEARTBEAT_S = 2.0  # a worker says it answers this often
SILENT_S = 20.0  # a worker not heard from this long is killed and replaced
QUICK_DEATH_S = 5.0  # a worker that dies this soon after its start is replaced after a pause (1, 2, 4 … 30 s)
STOP_S = 8.0  # SIGTERM → the workers' graceful stop (uvicorn's 3 s for open requests) → SIGKILL
BIND_WAIT_S = 10.0  # the port still held by another process: tried again this long
READY, ALIVE = b"R", b"H"
_PR_SET_PDEATHSIG = 1


def default_workers() -> int:
    """The CPUs this process may run on, at least 2: a worker being replaced never leaves the centre without one."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    return max(2, cpus)


def listening_sockets(host: str, port: int, count: int, backlog: int = 2048,
                      wait_s: float = BIND_WAIT_S) -> list[socket.socket]:
    """``count`` sockets bound to ``host:port`` with ``SO_REUSEPORT`` (port 0: one free port for all of them);
    OSError when another process still serves the port after ``wait_s`` (the workers of a centre killed a moment
    ago are gone within it)."""
    family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    deadline = time.monotonic() + wait_s
    while True:
        probe = socket.socket(family, kind, proto)  # no SO_REUSEPORT: fails if anyone holds the port, even a group
        try:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(address)
            address = (address[0], probe.getsockname()[1], *address[2:])
            break
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE or time.monotonic() > deadline:
                raise
            time.sleep(0.1)
        finally:
            probe.close()
    sockets: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.socket(family, kind, proto)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            sock.bind(address)
            sock.listen(backlog)
            sock.setblocking(False)
    except OSError:
        for sock in sockets:
            sock.close()
        raise
    return sockets


def die_with_parent(parent: int) -> None:
    """In a worker: killed when the parent dies (Linux): a parent that is killed or crashes takes its workers along
    (a stop on purpose is the parent's SIGTERM, which lets them finish); exit at once if it is gone already."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:
        os._exit(1)


class ParentLink:
    """A worker's end of its pipe to the parent: ready, then alive."""

    def __init__(self, fd: int):
        self.fd = fd

    def ready(self) -> None:
        self._send(READY)

    def alive(self) -> None:
        self._send(ALIVE)

    def _send(self, byte: bytes) -> None:
        try:
            os.write(self.fd, byte)
        except BlockingIOError:  # the parent is slow to read: it has heard from us recently enough
            pass
        except OSError:  # the parent is gone: PR_SET_PDEATHSIG stops us
            pass


@dataclass
class Slot:
    index: int
    sock: socket.socket
    pid: int = 0
    pipe: int = -1  # the parent's read end
    started: float = 0.0
    heard: float = 0.0
    ready: bool = False
    quick_deaths: int = 0
    restart_at: float = 0.0
    killed: bool = field(default=False)


WorkerMain = Callable[[int, socket.socket, ParentLink], int]


class Supervisor:
    """Forks ``len(sockets)`` workers running ``worker_main(slot, its socket, its link to the parent)`` and keeps
    them running until SIGTERM/SIGINT; returns the exit status for the service."""

    def __init__(self, sockets: list[socket.socket], worker_main: WorkerMain, *, status: str = "",
                 clock: Callable[[], float] = time.monotonic):
        self.slots = [Slot(i, s) for i, s in enumerate(sockets)]
        self.worker_main = worker_main
        self.status = status
        self.clock = clock
        self.selector = selectors.DefaultSelector()
        self._stopping = False
        self._announced = False
        self._wake_r, self._wake_w = socket.socketpair()

    # -- the parent's loop ---------------------------------------------------------------------------------------

    def run(self) -> int:
        for sock in (self._wake_r, self._wake_w):
            sock.setblocking(False)
        previous = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGCHLD)}
        old_fd = signal.set_wakeup_fd(self._wake_w.fileno(), warn_on_full_buffer=False)
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGINT, self._stop)
        signal.signal(signal.SIGCHLD, lambda *_: None)  # only to wake the loop through the wakeup fd
        self.selector.register(self._wake_r, selectors.EVENT_READ, None)
        try:
            for slot in self.slots:
                self._spawn(slot)
            watchdog = sd_notify.watchdog_interval()
            next_ping = self.clock()
            while not self._stopping:
                timeout = 1.0
                if watchdog and self._announced:
                    timeout = min(timeout, max(0.0, next_ping - self.clock()))
                for key, _ in self.selector.select(timeout):
                    if key.data is None:
                        with contextlib.suppress(OSError):
                            self._wake_r.recv(4096)
                    else:
                        self._read(key.data)
                self._reap()
                self._check(self.clock())
                if watchdog and self._announced and self.clock() >= next_ping:
                    if any(s.ready and self.clock() - s.heard < SILENT_S for s in self.slots):
                        sd_notify.watchdog()
                    else:
                        log.error("no worker answers; not feeding the watchdog")
                    next_ping = self.clock() + watchdog
            sd_notify.stopping()
            self._stop_all()
            return 0
        finally:
            signal.set_wakeup_fd(old_fd)
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _stop(self, signum: int, frame: object) -> None:
        self._stopping = True

    def _spawn(self, slot: Slot) -> None:
        read_end, write_end = os.pipe()
        os.set_blocking(read_end, False)
        parent = os.getpid()
        pid = os.fork()
        if pid == 0:  # the worker
            code = 1
            try:
                os.close(read_end)
                self._become_worker(slot, parent)
                os.set_blocking(write_end, False)
                code = self.worker_main(slot.index, slot.sock, ParentLink(write_end))
            except BaseException:
                log.exception("worker %d failed", slot.index)
            finally:
                logging.shutdown()
                os._exit(code)
        os.close(write_end)
        now = self.clock()
        slot.pid, slot.pipe, slot.started, slot.heard, slot.ready, slot.killed = pid, read_end, now, now, False, False
        self.selector.register(read_end, selectors.EVENT_READ, slot)
        log.info("worker %d started (pid %d)", slot.index, pid)

    def _become_worker(self, slot: Slot, parent: int) -> None:
        """In the forked child: the parent's signal handling, its pipes and the other slots' sockets are not ours."""
        signal.set_wakeup_fd(-1)
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGCHLD):
            signal.signal(sig, signal.SIG_DFL)
        die_with_parent(parent)
        with contextlib.suppress(Exception):
            self.selector.close()
        for sock in (self._wake_r, self._wake_w):
            sock.close()
        for other in self.slots:
            if other is not slot:
                other.sock.close()
            if other.pipe >= 0:
                with contextlib.suppress(OSError):
                    os.close(other.pipe)
        for name in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"):  # systemd hears the parent only
            os.environ.pop(name, None)

    def _read(self, slot: Slot) -> None:
        try:
            data = os.read(slot.pipe, 4096)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:  # the worker closed its end: it is exiting; _reap collects it
            self._forget_pipe(slot)
            return
        slot.heard = self.clock()
        if READY in data and not slot.ready:
            slot.ready = True
            log.info("worker %d (pid %d) serves", slot.index, slot.pid)
            if not self._announced and all(s.ready for s in self.slots):
                self._announced = True
                sd_notify.ready(f"{self.status}, {len(self.slots)} workers" if self.status
                                else f"{len(self.slots)} workers")

    def _forget_pipe(self, slot: Slot) -> None:
        if slot.pipe >= 0:
            with contextlib.suppress(KeyError, ValueError):
                self.selector.unregister(slot.pipe)
            with contextlib.suppress(OSError):
                os.close(slot.pipe)
            slot.pipe = -1

    def _reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            slot = next((s for s in self.slots if s.pid == pid), None)
            if slot is None:
                continue
            lived = self.clock() - slot.started
            how = (f"signal {os.WTERMSIG(status)}" if os.WIFSIGNALED(status) else f"exit {os.WEXITSTATUS(status)}")
            self._forget_pipe(slot)
            slot.pid = 0
            if self._stopping:
                continue
            slot.quick_deaths = slot.quick_deaths + 1 if lived < QUICK_DEATH_S else 0
            pause = min(30.0, 2.0 ** (slot.quick_deaths - 1)) if slot.quick_deaths else 0.0
            slot.restart_at = self.clock() + pause
            log.warning("worker %d (pid %d) ended (%s) after %.1f s; %s", slot.index, pid, how, lived,
                        f"starting another in {pause:.0f} s" if pause else "starting another")

    def _check(self, now: float) -> None:
        for slot in self.slots:
            if slot.pid == 0 and not self._stopping and now >= slot.restart_at:
                self._spawn(slot)
            elif slot.pid and not slot.killed and now - slot.heard > SILENT_S:
                log.error("worker %d (pid %d) has not answered for %.0f s: killing it", slot.index, slot.pid,
                          now - slot.heard)
                slot.killed = True
                with contextlib.suppress(ProcessLookupError):
                    os.kill(slot.pid, signal.SIGKILL)

    def _stop_all(self) -> None:
        for slot in self.slots:
            if slot.pid:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(slot.pid, signal.SIGTERM)
        deadline = self.clock() + STOP_S
        while any(s.pid for s in self.slots) and self.clock() < deadline:
            self._reap()
            time.sleep(0.05)
        for slot in self.slots:
            if slot.pid:
                log.warning("worker %d (pid %d) did not stop in %.0f s: killing it", slot.index, slot.pid, STOP_S)
                with contextlib.suppress(ProcessLookupError):
                    os.kill(slot.pid, signal.SIGKILL)
        while any(s.pid for s in self.slots):
            try:
                pid, _ = os.waitpid(-1, 0)
            except ChildProcessError:
                break
            for slot in self.slots:
                if slot.pid == pid:
                    slot.pid = 0
        for slot in self.slots:
            self._forget_pipe(slot)
            slot.sock.close()
