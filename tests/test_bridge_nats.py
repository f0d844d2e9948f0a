"""MQTT across branches, many branches: a branch's Mosquitto bridged over TLS to a three-node nats-server
cluster (MQTT listener, JetStream, the generated users and permissions; docs/central.md, "A nats-server
cluster"), and the bridge surviving the loss of the node it is connected to.

One test on purpose: a cluster takes seconds to elect its JetStream leaders, and everything is proved
against the one cluster (well under a minute on the loaded 2-core machine).
"""

from __future__ import annotations

import contextlib
import json
import sys
import time
import uuid
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from certs import TestCA  # noqa: E402

from server.config import load_config  # noqa: E402
from toolkit.bridged_brokers import (  # noqa: E402
    NatsCluster,
    branch_broker,
    branch_site,
    branch_token,
    bridge_target,
    centre_config,
    centre_password,
    hub_password,
    login,
    nats_path,
    wait_until,
)
from toolkit.broker import free_port  # noqa: E402
from toolkit.mqtt_watch import Watch  # noqa: E402
from vuoro.protocol import ConfigNudge, Topics, centre_topic, parse_config_nudge  # noqa: E402

WAIT = 30.0  # generous: JetStream elections and the bridge's back-off on a loaded machine; never a timing


def board(waiting: int) -> dict:
    return {"v": 1, "states": {"queue/kvik/state": {"service": "kvik", "waiting": waiting}}, "at": uuid.uuid4().hex}


@pytest.mark.slow
def test_a_branch_bridged_to_a_nats_cluster_carries_state_and_nudges_and_survives_losing_its_node(
        tmp_path: Path) -> None:
    assert nats_path(), "nats-server is not installed (apt-get install nats-server): deploy/setup-dev.sh does it"
    ca = TestCA.create(tmp_path / "ca")
    cert = ca.issue("nats")
    ports = [free_port() for _ in range(3)]
    sites = {bid: branch_site(tmp_path, bid, [f"mqtts://localhost:{p}" for p in ports], ca.cert)
             for bid in ("north", "south")}
    cluster = NatsCluster(centre_config(tmp_path, sites), tmp_path / "nats", cert.cert, cert.key)
    cluster.mqtt_ports = dict(zip(cluster.names, ports, strict=True))  # the addresses the bridge was given
    cluster.start()
    branch = branch_broker(load_config(sites["north"]), tmp_path / "north")
    watches: list[Watch] = []

    def centre_at(node: str, *topics: str) -> Watch:
        settings = login(cluster.mqtts(node), "centre", centre_password(cluster.workdir), ca.cert)
        # The MQTT listener answers before JetStream has its leaders: try until a subscription holds.
        watch = wait_until(lambda: _try(lambda: Watch(settings, *topics, timeout=5)), WAIT, 0.5)
        watches.append(watch)
        return watch

    try:
        # A node's MQTT listener opens before JetStream is ready, and a bridge that connects then waits
        # for a CONNACK until its keepalive runs out: start the branch once every node answers.
        centre = centre_at("n3", "branches/#")
        for node in ("n1", "n2"):
            centre_at(node, "branches/north/board")
        branch.start()
        hub = Watch(login(branch.url, "hub", hub_password(branch.workdir), ca.cert), "vuoro/north/config/nudge")
        watches.append(hub)
        t = Topics("north")

        # Up: a retained state, published at the branch, at the centre under the branch's prefix.
        first = board(3)
        hub.client.publish(t.board, json.dumps(first), qos=1, retain=True)
        centre.wait_for(lambda w: w.json("branches/north/board") == first, WAIT)
        connected = cluster.node_of(bridge_target(branch))
        assert connected in cluster.names

        # Retained across the cluster: a reader on another node has it at once.
        other = next(n for n in cluster.names if n not in (connected, "n3"))
        late = centre_at(other, "branches/north/board")
        late.wait_for(lambda w: w.json("branches/north/board") == first, WAIT)

        # The permissions: north's login cannot write under south's prefix, nor its own nudges.
        north = Watch(login(cluster.mqtts("n3"), "north", branch_token("north"), ca.cert))
        watches.append(north)
        north.client.publish("branches/south/board", b'{"v":1,"states":{},"at":"forged"}', qos=0, retain=True)
        north.client.publish("branches/north/config/nudge", b'{"v":1,"version":99,"checksum":"forged"}', qos=0)
        # nats-server drops (and logs) a publish its permissions refuse; the sentinel follows on the same
        # connection, so had the forged ones passed they would have arrived first.
        sentinel = board(4)
        north.client.publish("branches/north/board", json.dumps(sentinel), qos=0, retain=True)
        centre.wait_for(lambda w: w.json("branches/north/board") == sentinel, WAIT)
        assert all(b"forged" not in payload for _, payload, _ in centre.messages)

        # Down: the centre's nudge for north reaches north's hub; south's does not.
        centre.client.publish(centre_topic("south", "config/nudge"),
                              ConfigNudge(version=1, checksum="sha256:south").to_payload(), qos=1, retain=True)
        centre.client.publish(centre_topic("north", "config/nudge"),
                              ConfigNudge(version=5, checksum="sha256:north").to_payload(), qos=1, retain=True)
        got = hub.wait_for(lambda w: w.latest.get("vuoro/north/config/nudge"), WAIT)
        assert parse_config_nudge(got).checksum == "sha256:north"
        assert not [p for _, p, _ in hub.messages if b"south" in p or b"forged" in p]

        # Lose the node the bridge is connected to (SIGKILL: its machine is gone). The bridge goes to
        # another; states published after that reach the centre, and the branch's latest is current there.
        cluster.kill(connected)
        during = board(8)
        hub.client.publish(t.board, json.dumps(during), qos=1, retain=True)
        survivor = next(n for n in cluster.names if n != connected)
        watcher = centre if connected != "n3" else centre_at(survivor, "branches/#")
        # The hub sends its board again as things change; here every few seconds, as the bridge may still be
        # finding its new node (once, under load, the one publish made at the kill was not there within 60 s).
        deadline = time.monotonic() + 120
        while watcher.json("branches/north/board") != during and time.monotonic() < deadline:
            hub.client.publish(t.board, json.dumps(during), qos=1, retain=True)
            with contextlib.suppress(TimeoutError):
                watcher.wait_for(lambda w: w.json("branches/north/board") == during, 5)
        assert watcher.json("branches/north/board") == during, "the bridge did not carry state after losing its node"
        moved = cluster.node_of(bridge_target(branch))
        assert moved in cluster.names and moved != connected
        after = board(9)
        hub.client.publish(t.board, json.dumps(after), qos=1, retain=True)
        watcher.wait_for(lambda w: w.json("branches/north/board") == after, WAIT)
    finally:
        for watch in watches:
            watch.close()
        branch.close()
        cluster.stop()


def _try(make):  # type: ignore[no-untyped-def]
    try:
        return make()
    except (TimeoutError, OSError):
        return None
