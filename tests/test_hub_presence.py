"""One hub per site (issue 13, item 5): real hub processes on a real Mosquitto and real SQLite files.

Two hubs on one database, or two hubs of one site on one broker, would hand
out the same numbers twice and knock each other off the broker. The second
refuses to start with exit code 2 (systemd does not restart it) and says
which hub is already there. What must *not* stop a hub: its own status left
on the broker from before a crash, or another hub's "online" left over from
a hub that died while the broker was down.

(The deployed broker, with logins, is in test_deploy_mosquitto.py.)
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import threading
import time
from pathlib import Path

import pytest
import requests

from toolkit.broker import Broker, free_port, fresh_root
from toolkit.fixtures import MakeHub
from toolkit.hub_process import HubProcess
from toolkit.mqtt_watch import publish_retained
from vuoro.protocol import HUB_ALIVE_WAIT_SECONDS, HubStatus

SITE = Path(__file__).parent / "sites" / "always_open.toml"
WAIT = 30.0  # bound for something that must happen; never a measured duration


def hub_for(make_hub: MakeHub, data: Path, root: str) -> HubProcess:
    """A hub (not yet started) that shares the topic root ``root`` with the test's other hubs."""
    return make_hub(data, topic_root=root)


def refused(hub: HubProcess) -> str:
    """Start a hub that must refuse: its exit code is 2 and what it said is returned."""
    try:
        with pytest.raises(RuntimeError, match="the hub exited with 2"):
            hub.start(timeout=WAIT)
    finally:
        hub.stop()  # when it did start after all: do not leave it running
    return hub.log_path.read_text()


def health(hub: HubProcess) -> dict:
    return requests.get(f"{hub.url}/api/v1/health", timeout=10).json()


def root() -> str:
    return fresh_root("p")


def test_a_second_hub_on_the_same_database_refuses_at_once(tmp_path: Path, make_hub: MakeHub) -> None:
    topic_root = root()
    first = hub_for(make_hub, tmp_path, topic_root).start()
    try:
        said = refused(make_hub(tmp_path, topic_root=topic_root, log_path=tmp_path / "second.log"))
        assert "Another hub is already running on this machine with the database" in said
        assert f"(process {first.process.pid})" in said and "--data-dir of its own" in said  # type: ignore[union-attr]
        assert health(first)["status"] == "ok"
    finally:
        first.stop()


def test_a_second_hub_of_the_site_on_the_broker_refuses_and_the_first_stays(
        live_broker: Broker, tmp_path: Path, make_hub: MakeHub, watch) -> None:  # type: ignore[no-untyped-def]
    topic_root = root()
    status = f"{topic_root}/sonderbro/hub/status"
    seen = watch(status)
    first = hub_for(make_hub, tmp_path / "first", topic_root).start()
    try:
        seen.wait_for(lambda w: (w.json(status) or {}).get("online"))
        before = len(seen.messages)
        said = refused(hub_for(make_hub, tmp_path / "second", topic_root))
        assert f"Another hub for site 'sonderbro' is already running: it is {os.uname().nodename}:" in said
        assert str(tmp_path / "first") in said and str(tmp_path / "second") in said
        assert health(first)["broker"] == "connected"
        assert seen.messages[before:] == []  # the first hub never went away, never came back
    finally:
        first.stop()


def test_another_hubs_left_over_online_status_is_taken_over(live_broker: Broker, tmp_path: Path, make_hub: MakeHub,
                                                            watch) -> None:  # type: ignore[no-untyped-def]
    """A hub on another machine died while the broker was down: its "online" stays, but no heartbeat comes."""
    topic_root = root()
    status = f"{topic_root}/sonderbro/hub/status"
    ghost = HubStatus(True, "old-pi:/var/lib/vuoro/hub.sqlite3", time.time() - 86400, "0.1.0")
    publish_retained(live_broker, status, ghost.to_payload())
    seen = watch(status)
    hub = hub_for(make_hub, tmp_path, topic_root).start(timeout=WAIT)
    try:
        mine = seen.wait_for(lambda w: (body := w.json(status)) and body["instance"] != ghost.instance and body)
        assert mine["online"] and mine["instance"] == f"{os.uname().nodename}:{tmp_path / 'hub.sqlite3'}"
        said = hub.log_path.read_text()
        assert "old-pi:/var/lib/vuoro/hub.sqlite3" in said and "left over" in said and "Taking over" in said
        assert f"{HUB_ALIVE_WAIT_SECONDS:.0f} s" in said
    finally:
        hub.stop()


def crash(broker: Broker) -> None:
    """The broker dies as in a power cut: no last wills sent, the store as last saved (saved now)."""
    assert broker.process is not None
    store = broker.workdir / "mosquitto.db"
    before = store.stat() if store.exists() else None
    broker.process.send_signal(signal.SIGUSR1)  # mosquitto: write the store now
    deadline = time.monotonic() + WAIT
    while not store.exists() or (before and (store.stat().st_mtime_ns, store.stat().st_ino) ==
                                 (before.st_mtime_ns, before.st_ino)):
        assert time.monotonic() < deadline, "mosquitto did not save its store"
        time.sleep(0.01)
    broker.process.kill()
    broker.stop()


def test_a_hub_whose_own_online_status_outlived_a_power_cut_starts_at_once(
        live_broker: Broker, tmp_path: Path, make_hub: MakeHub, watch) -> None:  # type: ignore[no-untyped-def]
    """Hub and broker lose power together: the broker's store still says this hub is online (no last
    will was ever sent). That is this hub's own status, so it must not wait for itself."""
    topic_root = root()
    status = f"{topic_root}/sonderbro/hub/status"
    seen = watch(status)
    hub = hub_for(make_hub, tmp_path, topic_root).start()
    try:
        seen.wait_for(lambda w: (w.json(status) or {}).get("online"))
        crash(live_broker)
        hub.kill()
        live_broker.start()
        seen.wait_for(lambda w: status in w.retained)  # restored from the store, on the watch's reconnect
        assert json.loads(seen.retained[status])["online"] is True
        hub = hub_for(make_hub, tmp_path, topic_root).start()
        assert health(hub)["status"] == "ok"
        said = hub.log_path.read_text()
        assert "waiting up to" not in said and "left over" not in said
    finally:
        hub.stop()
        live_broker.start()


def test_a_hub_that_started_without_the_broker_gives_way_when_the_broker_shows_the_other(
        live_broker: Broker, tmp_path: Path, make_hub: MakeHub) -> None:
    """The broker is down when the second hub starts: it serves, looks once the broker is back, and
    stops (exit 2) because the first hub comes back too."""
    topic_root = root()
    first = hub_for(make_hub, tmp_path / "first", topic_root).start()
    second = hub_for(make_hub, tmp_path / "second", topic_root)
    try:
        live_broker.stop()
        second.start()
        assert health(second)["broker"] == "disconnected"
        live_broker.start()
        assert second.process is not None and second.process.wait(WAIT) == 2
        # Which words depends on who reaches the broker first: the look finds the first hub alive
        # ("is already running"), or the two meet right after ("came onto the broker ..."): either way
        # the later one stops and says which hub keeps the site.
        said = second.log_path.read_text()
        assert "Another hub for site 'sonderbro' " in said and str(tmp_path / "first") in said
        deadline = time.monotonic() + WAIT
        while health(first)["broker"] != "connected":
            assert time.monotonic() < deadline, "the first hub did not reconnect"
            time.sleep(0.1)
    finally:
        second.stop()
        first.stop()
        live_broker.start()


class Cable:
    """A TCP relay between one hub and the broker: the network cable of the hub's machine, to pull and
    plug back in. The broker sees the connection drop at once (as a switch that lost its link)."""

    def __init__(self, broker_port: int):
        self.broker_port = broker_port
        self.port = free_port()
        self._server: socket.socket | None = None
        self._links: list[socket.socket] = []
        self._lock = threading.Lock()
        self.plug_in()

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def plug_in(self) -> None:
        server = socket.create_server(("127.0.0.1", self.port))
        with self._lock:
            self._server = server
        threading.Thread(target=self._accept, args=(server,), daemon=True).start()

    def pull(self) -> None:
        with self._lock:
            if self._server:
                with contextlib.suppress(OSError):
                    self._server.shutdown(socket.SHUT_RDWR)  # wakes the accept() below; close() alone would not
                self._server.close()
                self._server = None
            for link in self._links:
                with contextlib.suppress(OSError):
                    link.shutdown(socket.SHUT_RDWR)
                link.close()
            self._links.clear()

    def _accept(self, server: socket.socket) -> None:
        while True:
            try:
                near, _ = server.accept()
            except OSError:
                return
            with self._lock:
                if server is not self._server:  # accepted as the cable was pulled: it never got through
                    near.close()
                    return
                far = socket.create_connection(("127.0.0.1", self.broker_port))
                self._links += [near, far]
            for a, b in ((near, far), (far, near)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_RDWR)


def test_two_running_hubs_that_meet_on_the_broker_keep_the_one_that_started_first(
        live_broker: Broker, tmp_path: Path, make_hub: MakeHub, watch) -> None:  # type: ignore[no-untyped-def]
    """The first hub's network is cut; someone starts a second hub in its place; the cable goes back
    in. The two meet on the broker: the later one stops (exit 2), the first keeps the site."""
    topic_root = root()
    status = f"{topic_root}/sonderbro/hub/status"
    seen = watch(status)
    cable = Cable(live_broker.port)
    first = make_hub(tmp_path / "first", broker=cable, topic_root=topic_root).start()
    second = hub_for(make_hub, tmp_path / "second", topic_root)
    try:
        seen.wait_for(lambda w: (w.json(status) or {}).get("online"))
        cable.pull()  # the broker sends the first hub's last will
        seen.wait_for(lambda w: (w.json(status) or {}).get("online") is False)
        second.start()
        seen.wait_for(lambda w: str(tmp_path / "second") in (w.json(status) or {}).get("instance", ""))
        cable.plug_in()
        assert second.process is not None and second.process.wait(WAIT) == 2
        assert "came onto the broker while this one was away" in second.log_path.read_text()
        assert "it started later, so it will stop" in first.log_path.read_text()
        seen.wait_for(lambda w: str(tmp_path / "first") in (w.json(status) or {}).get("instance", "")
                      and w.json(status)["online"], timeout=WAIT)
        assert health(first)["broker"] == "connected" and first.process and first.process.poll() is None
    finally:
        second.stop()
        first.stop()
        cable.pull()
