"""One hub per site: a lock on its database, and a look at the broker before it takes part.

Two hubs for one site hand out the same numbers twice, and on one broker they
knock each other off (they log in as the same user, and the broker keeps one
connection per login). So a hub refuses to start, with exit code 2 (its unit
does not restart it: ``RestartPreventExitStatus``), when

- another hub process on this machine uses the same database: an exclusive
  ``flock`` on ``<database>.lock`` held while the hub runs. The kernel drops
  it when the process ends, however it ends, so a crash never leaves a lock
  behind;
- another hub of the same site is alive on the broker: its retained
  ``hub/status`` says online with another instance (host and database), and
  its heartbeat (``hub/alive``) arrives within ``HUB_ALIVE_WAIT_SECONDS``.

A retained "online" without a heartbeat is left over from a hub that died
while the broker was down (so its last will was never sent): the new hub
takes over and says so in the log. The hub's own status from before a crash
(same instance) needs no wait. While running, a hub that meets another
instance's status after a reconnect (the other came while it was away) keeps
running only if it started first (``HubStatus.precedes``), the same answer on
both sides, so exactly one of the two stops.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import socket
import time
from datetime import datetime, tzinfo
from pathlib import Path

from vuoro import __version__
from vuoro.mqtt import BrokerRefused, BrokerSettings, BrokerUnavailable, TopicWatch, watcher_settings
from vuoro.protocol import HUB_ALIVE_WAIT_SECONDS, HubStatus, PayloadError, Topics, parse_hub_status

log = logging.getLogger("vuoro.hub")

LOOK_TIMEOUT = 5.0  # for the broker to answer the start-up look


class AnotherHub(Exception):
    """Another hub serves this site: the message says which and what to do."""


def this_hub(database: Path) -> HubStatus:
    """This process's identity on the broker."""
    return HubStatus(online=True, instance=f"{socket.gethostname()}:{database}", started=time.time(),
                     version=__version__)


# -- one hub per database ---------------------------------------------------------------------------


class DatabaseLock:
    """``<database>.lock``, locked while this hub runs; it holds the process id for the message."""

    def __init__(self, database: Path):
        self.database = database
        self.path = database.with_name(database.name + ".lock")
        self._fd: int | None = None

    def acquire(self) -> DatabaseLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o640)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise AnotherHub(
                f"Another hub is already running on this machine with the database {self.database} (process "
                f"{holder}). Two hubs on one database would hand out the same numbers twice. Stop the other one "
                "first (systemctl stop vuoro-hub), or give this hub a --data-dir of its own.") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)  # closing drops the lock; the file stays, so no one races its removal
            self._fd = None


# -- one hub per site on the broker -----------------------------------------------------------------


def _when(seconds: float, zone: tzinfo | None) -> str:
    return datetime.fromtimestamp(seconds, zone).strftime("%Y-%m-%d %H:%M:%S")


def another_hub_message(me: HubStatus, other: HubStatus, site: str, broker: str, zone: tzinfo | None, *,
                        running: bool = False) -> str:
    what = ("came onto the broker while this one was away from it; this one started later, so it stops"
            if running else "is already running")
    return (f"Another hub for site {site!r} {what}: it is {other.instance} (started {_when(other.started, zone)}), "
            f"on the broker {broker}. This one is {me.instance}. Two hubs for one site hand out the same numbers "
            "twice and knock each other off the broker. Stop the other hub for good (on that machine: systemctl "
            "disable --now vuoro-hub), or give this one a site of its own (site.id), then start it again.")


def rival(me: HubStatus, raw: bytes) -> HubStatus | None:
    """The other hub a hub/status or hub/alive message comes from, if it is not this one."""
    try:
        status = parse_hub_status(raw)
    except PayloadError:
        return None  # not a hub's status at all: nothing to decide on
    return status if status.instance != me.instance else None


def look_for_another_hub(settings: BrokerSettings, topics: Topics, me: HubStatus, *, zone: tzinfo | None = None,
                         timeout: float = LOOK_TIMEOUT, wait: float = HUB_ALIVE_WAIT_SECONDS) -> None:
    """Before taking part: raise AnotherHub if another hub of this site is alive on the broker.

    Raises BrokerUnavailable when the broker cannot be asked (the caller tries again later). Looks
    with the hub's look-only login, so a running hub is never knocked off by the look.
    """
    try:
        watch = TopicWatch(watcher_settings(settings), [topics.hub_status, topics.hub_alive],
                           name="the hub's start-up check").open(timeout)
    except BrokerRefused as exc:
        log.error("could not check for another hub of this site: the broker refused the user %r (%s). Run "
                  "python -m deploy.mosquitto_acl again (it adds that user) and reload mosquitto; starting "
                  "without the check", watcher_settings(settings).username, exc)
        return
    try:
        if not watch.settled(timeout):
            raise BrokerUnavailable(f"the broker at {settings.address} did not answer a subscription in time")
        retained = [m for m in watch.messages if m.retain and m.topic == topics.hub_status]
        other = rival(me, retained[-1].payload) if retained else None
        if other is None or not other.online:
            return
        log.info("the broker says hub %s is online; waiting up to %.0f s for it to show it is alive",
                 other.instance, wait)

        def alive() -> bool:
            return any(not m.retain and (found := rival(me, m.payload)) is not None and
                       found.instance == other.instance for m in list(watch.messages))

        if watch.wait(alive, wait):
            raise AnotherHub(another_hub_message(me, other, topics.site, str(settings.address), zone))
        log.warning("the broker said hub %s (started %s) is online, but it has shown no sign of life in %.0f s: that"
                    " status is left over from a hub that stopped while the broker was down. Taking over.",
                    other.instance, _when(other.started, zone), wait)
    finally:
        watch.close()
