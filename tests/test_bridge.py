"""MQTT across branches: two branch Mosquittos bridged over TLS to the centre's Mosquitto, every file as
deployed (the shipped configs, the generated users, ACLs and bridges; docs/central.md, "The bridge").

"Not delivered" is proved without waiting for a timeout, as in test_deploy_mosquitto.py: the forbidden
or dropped message is followed, on the same path, by an allowed one (the sentinel); one client's messages
(and one bridge's) arrive in order, so when the sentinel is there the other would be too.
"""

from __future__ import annotations

import json
import queue
import sys
import tomllib
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # deploy/ from the checkout

from certs import TestCA  # noqa: E402

from deploy.mosquitto_bridge import render_bridge  # noqa: E402
from server.config import load_config, parse_config  # noqa: E402
from toolkit.bridged_brokers import (  # noqa: E402
    DeployedMosquitto,
    branch_broker,
    branch_site,
    branch_token,
    central_mosquitto,
    centre_config,
    centre_password,
    hub_password,
    login,
)
from toolkit.broker import free_port  # noqa: E402
from toolkit.hub_in_process import running_hub  # noqa: E402
from toolkit.mqtt_watch import Watch  # noqa: E402
from vuoro.protocol import ConfigNudge, Topics, centre_topic, parse_config_nudge  # noqa: E402

WAIT = 20.0  # a generous bound for what must happen (a bridge backs off up to 30 s), never a measured time
BRANCHES = ("north", "south")


@dataclass
class Municipality:
    ca: TestCA
    centre: DeployedMosquitto
    centre_tls: int
    centre_dir: Path
    branches: dict[str, DeployedMosquitto]

    def centre_watch(self, *topics: str) -> Watch:
        """The centre's own reader, over TLS as the user "centre"."""
        return Watch(login(f"mqtts://localhost:{self.centre_tls}", "centre", centre_password(self.centre_dir),
                           self.ca.cert), *topics)

    def as_branch_at_centre(self, bid: str, *topics: str, password: str | None = None,
                            timeout: float = 10.0) -> Watch:
        """Someone with a branch's login at the centre (what its bridge has)."""
        return Watch(login(f"mqtts://localhost:{self.centre_tls}", bid, password or branch_token(bid),
                           self.ca.cert), *topics, timeout=timeout)

    def hub(self, bid: str, *topics: str) -> Watch:
        """The branch's hub on its own broker (user "hub", the generated password)."""
        broker = self.branches[bid]
        return Watch(login(broker.url, "hub", hub_password(broker.workdir), self.ca.cert), *topics)


@pytest.fixture(scope="module")
def town(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Municipality]:
    work = tmp_path_factory.mktemp("bridge")
    ca = TestCA.create(work / "ca")
    cert = ca.issue("centre-mqtt")
    tls_port = free_port()
    sites = {bid: branch_site(work, bid, [f"mqtts://localhost:{tls_port}"], ca.cert) for bid in BRANCHES}
    centre_dir = work / "centre"
    centre, tls_port = central_mosquitto(centre_config(work, sites), centre_dir, cert.cert, cert.key, tls_port)
    centre.start()
    branches = {bid: branch_broker(load_config(site), work / bid).start() for bid, site in sites.items()}
    try:
        yield Municipality(ca, centre, tls_port, centre_dir, branches)
    finally:
        for broker in [*branches.values(), centre]:
            broker.close()


def state(watch: Watch, topic: str) -> dict | None:
    return watch.json(topic)


def test_the_generated_bridge_carries_live_state_up_under_the_branchs_prefix_and_nudges_down(tmp_path: Path) -> None:
    ca = TestCA.create(tmp_path / "ca")
    site = load_config(branch_site(tmp_path, "north", ["mqtts://a.centre.example:8883", "mqtts://b.centre.example"],
                                   ca.cert))
    text = render_bridge(site)
    assert "address a.centre.example:8883 b.centre.example:8883" in text
    assert f"remote_username north\nremote_password {branch_token('north')}\n" in text
    assert f"bridge_cafile {ca.cert}" in text
    assert "topic board out 0 vuoro/north/ branches/north/" in text
    assert "topic config/nudge in 0 vuoro/north/ branches/north/" in text
    assert "phone/door" not in text and "hub/alive" not in text and "buttons" not in text


def test_a_bridge_address_must_be_mqtts(tmp_path: Path) -> None:
    ca = TestCA.create(tmp_path / "ca")
    from server.config import ConfigError

    with pytest.raises(ConfigError) as refused:
        load_config(branch_site(tmp_path, "north", ["mqtt://centre.example:1883"], ca.cert))
    assert "central.broker[0]: expected mqtts://host:port" in str(refused.value)


def test_a_branchs_retained_state_reaches_the_centre_under_its_own_prefix_and_nothing_else_leaves(
        town: Municipality) -> None:
    centre = town.centre_watch("branches/#")
    hub = town.hub("north")
    try:
        centre.wait_for(lambda w: w.latest.get(centre_topic("north", "bridge/state")) == b"1", WAIT)
        t = Topics("north")
        board = {"v": 1, "states": {"queue/kvik/state": {"service": "kvik", "waiting": 3}}, "at": uuid.uuid4().hex}
        hub.client.publish(t.phone_door, json.dumps({"v": 1, "code": "secret-door"}), qos=1, retain=True)
        hub.client.publish(t.hub_alive, json.dumps({"v": 1, "online": True}), qos=0)
        hub.client.publish(t.queue_state("kvik"), json.dumps({"v": 1, "waiting": 3}), qos=1, retain=True)
        hub.client.publish(t.board, json.dumps(board), qos=1, retain=True).wait_for_publish(WAIT)
        centre.wait_for(lambda w: state(w, "branches/north/board") == board, WAIT)
        # Retained at the centre: a reader that comes later has it at once.
        late = town.centre_watch("branches/north/#")
        try:
            late.wait_for(lambda w: state(w, "branches/north/board") == board, WAIT)
            assert late.retained["branches/north/board"]
        finally:
            late.close()
        seen = {topic for topic, _, _ in centre.messages}
        assert not any(topic.endswith(("phone/door", "hub/alive", "queue/kvik/state")) for topic in seen), seen
        assert not any(topic.startswith("vuoro/") for topic in seen)
        assert not any(topic.startswith("branches/south/board") for topic in seen)
    finally:
        hub.close()
        centre.close()


def test_a_branch_cannot_publish_under_another_branchs_prefix_nor_what_it_does_not_carry(
        town: Municipality) -> None:
    centre = town.centre_watch("branches/#")
    north = town.as_branch_at_centre("north")
    try:
        north.client.publish("branches/south/board", b'{"v":1,"states":{},"at":"forged"}', qos=1, retain=True)
        north.client.publish("branches/north/config/nudge", b'{"v":1,"version":99,"checksum":"x"}', qos=1)
        north.client.publish("branches/north/phone/door", b'{"v":1}', qos=1)
        sentinel = {"v": 1, "states": {}, "at": uuid.uuid4().hex}
        north.client.publish("branches/north/board", json.dumps(sentinel), qos=1).wait_for_publish(WAIT)
        centre.wait_for(lambda w: w.json("branches/north/board") == sentinel, WAIT)
        assert all(b"forged" not in payload for _, payload, _ in centre.messages)
        assert not [t for t, _, _ in centre.messages if t.endswith(("config/nudge", "phone/door"))]
    finally:
        north.close()
        centre.close()
    with pytest.raises(TimeoutError):  # another branch's token is not north's password: never subscribed
        town.as_branch_at_centre("north", "branches/north/config/nudge", password=branch_token("south"),
                                 timeout=3).close()


def test_a_nudge_from_the_centre_reaches_its_branch_only(town: Municipality) -> None:
    north, south = town.hub("north", "vuoro/north/#"), town.hub("south", "vuoro/south/#")
    centre = town.centre_watch()
    try:
        for bid, version in (("north", 7), ("south", 3)):
            nudge = ConfigNudge(version=version, checksum=f"sha256:{bid}", staff=2)
            centre.client.publish(centre_topic(bid, "config/nudge"), nudge.to_payload(), qos=1, retain=True)
        got = north.wait_for(lambda w: w.latest.get("vuoro/north/config/nudge"), WAIT)
        assert parse_config_nudge(got).version == 7
        assert parse_config_nudge(south.wait_for(lambda w: w.latest.get("vuoro/south/config/nudge"), WAIT)
                                  ).checksum == "sha256:south"
        # south's nudge came after north's on the centre's one connection: had it crossed, it would be here.
        assert not [t for t, _, _ in north.messages if "south" in t]
        assert not [t for t, _, _ in south.messages if "north" in t]
    finally:
        for watch in (north, south, centre):
            watch.close()


def test_after_the_centres_broker_was_away_the_bridge_reconnects_and_the_centre_is_current_again(
        town: Municipality) -> None:
    """And the bridge is not a durable queue: what was published while it was down and not retained
    (a call) never arrives; the retained states are sent again, so nothing that matters is lost."""
    hub = town.hub("south")
    t = Topics("south")
    try:
        town.centre.stop()
        board = {"v": 1, "states": {"queue/kvik/state": {"waiting": 11}}, "at": uuid.uuid4().hex}
        hub.client.publish(t.calls, json.dumps({"v": 1, "call_id": "during-outage"}), qos=1).wait_for_publish(WAIT)
        hub.client.publish(t.board, json.dumps(board), qos=1, retain=True).wait_for_publish(WAIT)
        town.centre.start()
        centre = town.centre_watch("branches/south/#")
        try:
            centre.wait_for(lambda w: w.json("branches/south/board") == board, 60)
            centre.wait_for(lambda w: w.latest.get("branches/south/bridge/state") == b"1", WAIT)
            hub.client.publish(t.calls, json.dumps({"v": 1, "call_id": "after"}), qos=1).wait_for_publish(WAIT)
            centre.wait_for(lambda w: any(c.get("call_id") == "after" for c in w.on("branches/south/calls")), WAIT)
            assert [c["call_id"] for c in centre.on("branches/south/calls")] == ["after"]
        finally:
            centre.close()
    finally:
        hub.close()


def test_a_real_hubs_state_reaches_the_centre_and_the_centres_nudge_reaches_the_hub(
        town: Municipality, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The hub's own MQTT link on the branch's deployed broker (its login from hub.env), in this process so
    the test can listen where the config follower will (``MqttLink.on_config_nudge``)."""
    broker = town.branches["north"]
    monkeypatch.setenv("VUORO_MQTT_USERNAME", "hub")
    monkeypatch.setenv("VUORO_MQTT_PASSWORD", hub_password(broker.workdir))
    data = tomllib.loads((broker.workdir.parent / "north.toml").read_text(encoding="utf-8"))
    data["hub"].update(broker=broker.url, database=f"sqlite:///{tmp_path / 'hub.sqlite3'}")
    config = parse_config(data, broker.workdir.parent / "north.toml")
    centre = town.centre_watch("branches/north/#")
    try:
        with running_hub(config) as running:
            nudges: queue.Queue[ConfigNudge] = queue.Queue()
            running.link.on_config_nudge.append(nudges.put)
            running.issue("kvik", 2)
            board = centre.wait_for(lambda w: (w.json("branches/north/board") or {}).get("states", {})
                                    .get("queue/kvik/state", {}).get("waiting") == 2 and w.json("branches/north/board"),
                                    WAIT)
            assert board["states"]["queue/kvik/state"]["service"] == "kvik"  # the hub's own board, as screens get it
            assert centre.wait_for(lambda w: w.json("branches/north/hub/status"), WAIT)["online"] is True
            assert centre.wait_for(lambda w: w.json("branches/north/site"), WAIT)["site"] == "north"
            sent = ConfigNudge(version=12, checksum="sha256:0123456789abcdef", staff=4)
            centre.client.publish(centre_topic("north", "config/nudge"), sent.to_payload(), qos=1, retain=True)
            got = nudges.get(timeout=WAIT)
            while got.version != 12:  # an earlier test's retained nudge may come first
                got = nudges.get(timeout=WAIT)
            assert (got.checksum, got.staff) == (sent.checksum, 4)
    finally:
        centre.close()


# -- the generators, read as text ------------------------------------------------------------------------


def test_the_centres_users_give_each_branch_its_own_prefix_on_both_brokers(tmp_path: Path) -> None:
    from deploy import central_broker

    ca = TestCA.create(tmp_path / "ca")
    sites = {bid: branch_site(tmp_path, bid, ["mqtts://centre.example"], ca.cert) for bid in BRANCHES}
    config = centre_config(tmp_path, sites)
    acl = central_broker.render_mosquitto_acl(config)
    north = acl.split("user north\n")[1].split("\n\n")[0].splitlines()
    assert "topic write branches/north/board" in north and "topic read branches/north/config/nudge" in north
    assert not [line for line in north if "south" in line or line.endswith("#")]
    users = central_broker.render_nats_users(config, "centre-password-0123456789")
    north_line = next(line for line in users.splitlines() if '"north"' in line)
    assert '"branches.north.devices.*.status"' in north_line and "south" not in north_line
    assert "$MQTT.sub" not in north_line  # only the centre may hold QoS 1 subscriptions (docs/central.md)
    assert central_broker.nats_subjects("branches/#") == ["branches", "branches.>"]
    assert '"password": "$2' in users.replace("password: ", '"password": ')  # bcrypt hashes, never the tokens
    assert branch_token("north") not in users


def test_the_central_generator_refuses_a_mosquitto_without_tls_and_a_branch_called_centre(tmp_path: Path) -> None:
    from deploy import central_broker

    ca = TestCA.create(tmp_path / "ca")
    site = branch_site(tmp_path, "north", ["mqtts://centre.example"], ca.cert)
    config = centre_config(tmp_path, {"north": site}).path
    assert central_broker.main(["--config", str(config), "--out", str(tmp_path / "out")]) == 1
    bad = branch_site(tmp_path, "centre", ["mqtts://centre.example"], ca.cert)
    with pytest.raises(ValueError, match="may not be called 'centre'"):
        central_broker.rights(centre_config(tmp_path, {"centre": bad}))


def test_the_branch_generator_writes_the_bridge_with_broker_and_removes_it_without(tmp_path: Path) -> None:
    from deploy import mosquitto_acl

    ca = TestCA.create(tmp_path / "ca")
    site = branch_site(tmp_path, "north", ["mqtts://centre.example"], ca.cert)
    written = mosquitto_acl.generate(load_config(site), tmp_path / "out", group=None)
    assert "connection vuoro-central" in written["bridge"].read_text()
    acl = written["acl"].read_text()
    assert "user central.bridge\ntopic read vuoro/north/hub/status\n" in acl
    assert "topic write vuoro/north/config/nudge" in acl and "topic read vuoro/north/phone/door" not in acl
    site.write_text(site.read_text().replace('broker = ["mqtts://centre.example"]\n', ""))
    written = mosquitto_acl.generate(load_config(site), tmp_path / "out", group=None)
    assert not written["bridge"].exists() and "central.bridge" not in written["acl"].read_text()
