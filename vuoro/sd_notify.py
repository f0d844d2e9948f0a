"""Tell systemd how a service is doing: ready, alive, status text. Standard library only.

The units in ``deploy/systemd`` run the apps with ``Type=notify`` and
``WatchdogSec=``: systemd waits for ``READY=1`` before it counts the service
as started, and restarts it when ``WATCHDOG=1`` stops arriving (a frozen
app, a dead lock, a hung GPU driver). Outside systemd ``$NOTIFY_SOCKET`` is
not set and every call here does nothing, so the apps call it
unconditionally.

Send ``watchdog()`` from the loop that does the work (the Kivy clock, the
asyncio loop, the button poll loop), never from a helper thread of its own:
a thread that pings while the main loop hangs hides exactly the freeze the
watchdog is there to catch. ``watchdog_interval()`` says how often (half the
timeout systemd set).

    from vuoro import sd_notify
    sd_notify.ready("serving on :8080")
    Clock.schedule_interval(lambda dt: sd_notify.watchdog(), sd_notify.watchdog_interval() or 10)
"""

from __future__ import annotations

import os
import socket

__all__ = ["notify", "ready", "watchdog", "status", "stopping", "reloading", "watchdog_interval", "enabled"]


def _address() -> str | None:
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return None
    if address.startswith("@"):  # an abstract socket (Linux): a leading NUL byte
        return "\0" + address[1:]
    return address


def enabled() -> bool:
    """True when running under systemd with a notify socket."""
    return _address() is not None


def notify(*lines: str) -> bool:
    """Send ``KEY=value`` lines to systemd in one datagram. False when not under systemd or on error.

    Never raises: a failed notification must not take the app down (systemd
    will notice the missing watchdog ping by itself).
    """
    address = _address()
    if address is None or not lines:
        return False
    message = "\n".join(lines).encode("utf-8")
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.connect(address)
            sock.sendall(message)
    except OSError:
        return False
    return True


def _one_line(text: str) -> str:
    return " ".join(text.split())


def ready(status_text: str | None = None) -> bool:
    """The service has started and does its work (``READY=1``)."""
    lines = ["READY=1"]
    if status_text:
        lines.append(f"STATUS={_one_line(status_text)}")
    return notify(*lines)


def watchdog() -> bool:
    """I am alive (``WATCHDOG=1``). Call at least every ``watchdog_interval()`` seconds."""
    return notify("WATCHDOG=1")


def status(text: str) -> bool:
    """A line shown by ``systemctl status`` (``STATUS=...``), e.g. "printer: paper low"."""
    return notify(f"STATUS={_one_line(text)}")


def stopping() -> bool:
    """The service is shutting down on purpose (``STOPPING=1``)."""
    return notify("STOPPING=1")


def reloading(status_text: str | None = None) -> bool:
    """The service restarts itself in place (the same pid, ``os.execv``) and says ``READY=1`` again when it
    serves (``RELOADING=1`` with ``MONOTONIC_USEC``, sd_notify(3)): systemd shows it reloading, not stopping."""
    import time

    lines = ["RELOADING=1", f"MONOTONIC_USEC={time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000}"]
    if status_text:
        lines.append(f"STATUS={_one_line(status_text)}")
    return notify(*lines)


def watchdog_interval() -> float | None:
    """Seconds between ``watchdog()`` calls: half of ``WatchdogSec=``; None when no watchdog is set.

    systemd passes the timeout in ``$WATCHDOG_USEC`` and, when set, the pid it
    is meant for in ``$WATCHDOG_PID`` (a child process must not act on it).
    """
    usec = os.environ.get("WATCHDOG_USEC", "")
    pid = os.environ.get("WATCHDOG_PID", "")
    if not usec.isdigit() or int(usec) == 0:
        return None
    if pid and (not pid.isdigit() or int(pid) != os.getpid()):
        return None
    return int(usec) / 1_000_000 / 2
