"""The centre publishes each branch's config/nudge on its own broker (central/nudges.py, docs/central.md), all real:
the ``vuoro central`` process on a private PostgreSQL, the central Mosquitto from its shipped config and generated
users and ACLs, and readers logged in as the branches (what their bridges have) over TLS.

A nudge says what the branch's HTTPS answers say (the newest config version and checksum, the staff revision); it is
published for the branch whose config changed, for every branch when an account changes, again in full whenever the
publisher (re)connects, and by whichever worker owns the background work. The broker away hurts nothing.
"""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # deploy/ from the checkout

from certs import TestCA  # noqa: E402

from central import configs  # noqa: E402
from central.config import load_centre  # noqa: E402
from central.coordination import owner_pid  # noqa: E402
from server.config import ConfigError, load_config, parse_config  # noqa: E402
from toolkit.bridged_brokers import (  # noqa: E402
    DeployedMosquitto,
    branch_broker,
    branch_site,
    branch_token,
    central_mosquitto,
    centre_config,
    hub_password,
    login,
)
from toolkit.broker import free_port  # noqa: E402
from toolkit.central_process import ADMIN_TOKEN, CentralProcess, write_centre_config  # noqa: E402
from toolkit.hub_in_process import running_hub  # noqa: E402
from toolkit.mqtt_watch import Watch  # noqa: E402
from toolkit.polling import wait_until  # noqa: E402
from vuoro.protocol import CONFIG_NUDGE_SUFFIX, ConfigNudge, centre_topic, parse_config_nudge  # noqa: E402

WAIT = 30.0  # a generous bound for what must happen, never a measured time
OUTAGE_WAIT = 90.0  # the publisher's reconnect backs off up to 30 s
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
BRANCHES = ("north", "south")


@dataclass
class Town:
    """Two branches' sites, the central Mosquitto (generated users and ACLs) and a centre with ``[broker]``."""

    work: Path
    ca: TestCA
    sites: dict[str, Path]
    broker: DeployedMosquitto
    tls_port: int
    centre: CentralProcess
    watches: list[Watch]

    def as_branch(self, bid: str) -> Watch:
        """A reader at the central broker with the branch's login, over TLS: what its bridge may read."""
        watch = Watch(login(f"mqtts://localhost:{self.tls_port}", bid, branch_token(bid), self.ca.cert),
                      centre_topic(bid, CONFIG_NUDGE_SUFFIX))
        self.watches.append(watch)
        return watch

    def publish(self, bid: str, text: str) -> dict[str, Any]:
        answer = requests.post(f"{self.centre.url}/api/v1/branches/{bid}/config", data=text.encode(),
                               headers={**ADMIN, "Content-Type": "text/plain"}, timeout=60)
        assert answer.status_code == 201, answer.text
        return answer.json()  # type: ignore[no-any-return]

    def renamed(self, bid: str, name: str) -> str:
        """The branch's own site file with another name (what an administrator would publish)."""
        text = self.sites[bid].read_text(encoding="utf-8")
        return text.replace('name = "', f'name = "{name} ', 1)

    def health(self) -> dict[str, Any]:
        answer = requests.get(f"{self.centre.url}/api/v1/health", timeout=30)
        assert answer.status_code == 200, answer.text
        return answer.json()  # type: ignore[no-any-return]


def nudges(watch: Watch, bid: str) -> list[ConfigNudge]:
    """Every nudge the reader got for the branch, in order."""
    topic = centre_topic(bid, CONFIG_NUDGE_SUFFIX)
    return [parse_config_nudge(raw) for name, raw, _ in list(watch.messages) if name == topic and raw]


def newest(watch: Watch, bid: str, accept: Callable[[ConfigNudge], bool], timeout: float = WAIT) -> ConfigNudge:
    """Wait for a nudge for ``bid`` that ``accept`` takes; the newest such."""
    return watch.wait_for(lambda w: next((n for n in reversed(nudges(w, bid)) if accept(n)), None),  # type: ignore
                          timeout)


def broker_section(url: str, password_file: Path, extra: str = "") -> str:
    return f'\n[broker]\nurl = "{url}"\npassword_file = "{password_file}"\n{extra}'


@pytest.fixture()
def town(tmp_path: Path, make_central: Any) -> Iterator[Town]:
    ca = TestCA.create(tmp_path / "ca")
    cert = ca.issue("centre-mqtt")
    tls_port = free_port()
    sites = {bid: branch_site(tmp_path, bid, [f"mqtts://localhost:{tls_port}"], ca.cert) for bid in BRANCHES}
    folder = tmp_path / "central-broker"
    broker, tls_port = central_mosquitto(centre_config(tmp_path, sites), folder, cert.cert, cert.key, tls_port)
    broker.start()
    # The centre on its broker's loopback listener, as the generated user "centre" (deploy/central_broker.py)
    centre = make_central({bid: (branch_token(bid), site) for bid, site in sites.items()}, workers=2,
                          extra=broker_section(f"mqtt://127.0.0.1:{broker.port}", folder / "centre.password"))
    made = Town(tmp_path, ca, sites, broker, tls_port, centre, [])
    try:
        yield made
    finally:
        for watch in made.watches:
            watch.close()
        centre.stop()
        broker.close()


def test_a_published_config_is_nudged_to_its_branch_with_the_version_and_checksum_the_centre_holds(
        town: Town) -> None:
    town.centre.start()
    north, south = town.as_branch("north"), town.as_branch("south")
    # At its start the centre publishes every branch's nudge: nothing published yet, no account changed.
    start = newest(north, "north", lambda n: True)
    assert (start.version, start.checksum, start.staff) == (0, "", 0)
    newest(south, "south", lambda n: True)

    text = town.renamed("north", "Nord")
    published = town.publish("north", text)
    got = newest(north, "north", lambda n: n.version == published["version"])
    assert (got.version, got.checksum, got.staff) == (1, configs.checksum(text), 0)
    assert got.checksum == published["checksum"]  # what the branch's long poll and uplink answers say too

    # Only north's changed: south's next nudge (an account, below, concerns every branch) is the first after its
    # start's, and still says version 0. The centre publishes north's first, on its one connection, in order.
    revision = put_account(town, "mette")
    assert newest(south, "south", lambda n: n.staff == revision).version == 0
    assert [(n.version, n.staff) for n in nudges(south, "south")] == [(0, 0), (0, revision)]
    health = town.health()["broker"]
    assert health["connected"] is True and health["url"].startswith("mqtt://127.0.0.1:")


def put_account(town: Town, name: str) -> int:
    answer = requests.put(f"{town.centre.url}/api/v1/staff/{name}", json={"role": "staff",
                                                                         "password": "mettes-kodeord-1"},
                          headers=ADMIN, timeout=60)
    assert answer.status_code == 200, answer.text
    return int(answer.json()["revision"])


def test_a_staff_account_changed_nudges_every_branch_with_the_new_revision(town: Town) -> None:
    town.centre.start()
    watches = {bid: town.as_branch(bid) for bid in BRANCHES}
    first = put_account(town, "mette")
    for bid, watch in watches.items():
        assert newest(watch, bid, lambda n: n.staff == first).version == 0
    gone = requests.delete(f"{town.centre.url}/api/v1/staff/mette", headers=ADMIN, timeout=60)
    assert gone.status_code == 200
    for bid, watch in watches.items():
        assert newest(watch, bid, lambda n: n.staff is not None and n.staff > first).staff == first + 1


def test_with_the_broker_away_the_centre_serves_as_ever_and_publishes_the_current_nudge_when_it_is_back(
        town: Town) -> None:
    town.centre.start()
    north = town.as_branch("north")
    newest(north, "north", lambda n: True)
    town.broker.kill()  # SIGKILL: nothing retained is saved; what comes after it can only be the centre's
    (town.broker.workdir / "mosquitto.db").unlink(missing_ok=True)  # nor anything an autosave kept
    wait_until(lambda: town.health()["broker"]["connected"] is False, "the health to show the broker away", WAIT)

    text = town.renamed("north", "Nord")
    published = town.publish("north", text)  # the centre answers as ever: the branches follow over HTTPS
    assert published["version"] == 1
    changes = requests.get(f"{town.centre.url}/api/v1/branch/changes", params={"config": 0, "staff": 0},
                           headers={"Authorization": f"Bearer {branch_token('north')}"}, timeout=60)
    assert changes.json()["config"] == {"version": 1, "checksum": configs.checksum(text)}

    town.broker.start()
    got = newest(north, "north", lambda n: n.version == 1, OUTAGE_WAIT)  # the reader reconnected, the centre too
    assert got.checksum == configs.checksum(text)
    # south's nudge did not change, and the broker came back empty: it is there again because the centre publishes
    # every branch's nudge whenever it connects
    assert newest(town.as_branch("south"), "south", lambda n: True).version == 0
    wait_until(lambda: town.health()["broker"]["connected"] is True, "the health to show the broker back", WAIT)
    log = town.centre.log_path.read_text()
    assert log.count("cannot publish its nudges") == 1  # once per kind of failure, however long it was away


def test_the_worker_that_takes_the_background_work_over_publishes_every_nudge(town: Town, postgres_db: str) -> None:
    """The old owner killed, a config published at once: whether the next owner heard the change or took the work
    over after it, north's nudge is the new version, and it came from the new owner."""
    def owner() -> int | None:
        with psycopg.connect(postgres_db) as db:
            return owner_pid(db)

    town.centre.start()
    north = town.as_branch("north")
    first = wait_until(owner, "a worker to own the background work", WAIT)
    wait_until(lambda: town.health()["broker"]["worker"].endswith(f":{first}"), "the owner to publish", WAIT)
    before = newest(north, "north", lambda n: True)
    os.kill(first, signal.SIGKILL)
    text = town.renamed("north", "Nord")
    town.publish("north", text)
    second = wait_until(lambda: owner() not in (None, first) and owner(), "another worker to take over", WAIT)
    got = newest(north, "north", lambda n: n.version == 1 and n.at > before.at)
    assert got.checksum == configs.checksum(text)
    wait_until(lambda: town.health()["broker"]["worker"].endswith(f":{second}"), "the new owner's link", WAIT)
    assert town.health()["broker"]["connected"] is True


def test_a_hub_behind_its_bridge_hears_the_centres_nudge(town: Town, monkeypatch: pytest.MonkeyPatch) -> None:
    """The branch's Mosquitto bridged to the central one (generated bridge and ACLs), the hub's own MQTT link on it:
    what the config follower listens to (``MqttLink.on_config_nudge``) is the nudge of the version just published.
    (That the follower then applies it sooner than its uplink heartbeat is not shown: its long poll is answered at the
    publish anyway, and a nudge only wakes a wait; docs/central.md.)"""
    town.centre.start()
    bridged = branch_broker(load_config(town.sites["north"]), town.work / "north-broker").start()
    try:
        monkeypatch.setenv("VUORO_MQTT_USERNAME", "hub")
        monkeypatch.setenv("VUORO_MQTT_PASSWORD", hub_password(bridged.workdir))
        data = tomllib.loads(town.sites["north"].read_text(encoding="utf-8"))
        data["hub"].update(broker=bridged.url, database=f"sqlite:///{town.work / 'hub.sqlite3'}")
        with running_hub(parse_config(data, town.sites["north"])) as running:
            heard: queue.Queue[ConfigNudge] = queue.Queue()
            running.link.on_config_nudge.append(heard.put)
            text = town.renamed("north", "Nord")
            published = town.publish("north", text)
            got = heard.get(timeout=WAIT)
            while got.version != published["version"]:  # the start's nudge (version 0) may come first
                got = heard.get(timeout=WAIT)
            assert got.checksum == configs.checksum(text)
    finally:
        bridged.close()


# -- without [broker], and its mistakes -----------------------------------------------------------------------


def test_a_centre_without_a_broker_section_runs_as_before(tmp_path: Path, make_central: Any,
                                                          postgres_db: str) -> None:
    ca = TestCA.create(tmp_path / "ca")
    site = branch_site(tmp_path, "north", ["mqtts://localhost:1"], ca.cert)
    centre = make_central({"north": (branch_token("north"), site)}).start()
    health = requests.get(f"{centre.url}/api/v1/health", timeout=30).json()
    assert health["status"] == "ok" and "broker" not in health
    answer = requests.post(f"{centre.url}/api/v1/branches/north/config", data=site.read_bytes(),
                           headers={**ADMIN, "Content-Type": "text/plain"}, timeout=60)
    assert answer.status_code == 201 and answer.json()["version"] == 1
    with psycopg.connect(postgres_db) as db:
        assert db.execute("SELECT count(*) FROM broker_link").fetchone() == (0,)  # no publisher ever ran


def test_the_broker_section_is_checked_by_key_path_and_its_password_file_before_the_centre_starts(
        tmp_path: Path) -> None:
    ca = TestCA.create(tmp_path / "ca")
    site = branch_site(tmp_path, "north", ["mqtts://localhost:1"], ca.cert)
    branches = {"north": (branch_token("north"), site)}
    bad = write_centre_config(tmp_path / "bad.toml", "postgresql://vuoro@127.0.0.1:9/vuoro", branches,
                              extra='\n[broker]\nurl = "http://broker"\nuser = "centre"\n')
    with pytest.raises(ConfigError) as refused:
        load_centre(bad)
    assert {p.split(":")[0] for p in refused.value.problems} == {"broker.url", "broker.user", "broker.password_file"}

    password = tmp_path / "centre.password"
    config = write_centre_config(tmp_path / "centre.toml", "postgresql://vuoro@127.0.0.1:9/vuoro", branches,
                                 extra=broker_section("mqtt://127.0.0.1:1883", password))
    assert load_centre(config).broker is not None  # loaded without the file: the generator makes it from here

    def check() -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "central.main", "--config", str(config), "--check"],
                              capture_output=True, text=True, timeout=60)

    missing = check()
    assert missing.returncode == 2 and "broker.password_file: expected a file that exists" in missing.stderr
    password.write_text("a-generated-password-0123456789\n")
    assert check().returncode == 0


@pytest.mark.parametrize("broker", ["mosquitto", ""])
def test_the_centre_role_gives_a_centre_on_its_own_mosquitto_the_broker_section(tmp_path: Path, broker: str) -> None:
    """The role's centre.toml, rendered by Ansible itself with the role's defaults, as the centre loads it: with the
    central Mosquitto on the host, ``[broker]`` on its loopback listener with the password file the role copies
    (tasks/broker.yml); with the broker elsewhere (a nats cluster, set up by hand), none."""
    import json

    import yaml

    from tests.test_deploy_pi_ansible import ANSIBLE, run, tool

    role = ANSIBLE / "roles" / "centre"
    ca = TestCA.create(tmp_path / "ca")
    site = branch_site(tmp_path, "north", ["mqtts://localhost:1"], ca.cert)
    (tmp_path / "sites").mkdir()
    (tmp_path / "sites" / "north.toml").write_text(site.read_text(encoding="utf-8"), encoding="utf-8")
    variables = {**yaml.safe_load((role / "defaults" / "main.yml").read_text()), "vuoro_etc": str(tmp_path),
                 "vuoro_centre_name": "Test Kommune", "vuoro_centre_admin_token": ADMIN_TOKEN,
                 "vuoro_centre_broker": broker,
                 "vuoro_centre_branches": [{"id": "north", "token": branch_token("north"), "site": str(site)}]}
    plays = [{"name": "render", "hosts": "localhost", "connection": "local", "gather_facts": False, "tasks": [
        {"name": "render centre.toml", "ansible.builtin.template": {
            "src": str(role / "templates" / "centre.toml.j2"), "dest": str(tmp_path / "centre.toml"),
            "mode": "0600"}}]}]
    (tmp_path / "render.yml").write_text(json.dumps(plays))
    (tmp_path / "vars.json").write_text(json.dumps(variables))
    result = run(tool("ansible-playbook", "apt-get install ansible"), "-i", "localhost,", "render.yml",
                 "-e", "@vars.json", cwd=tmp_path, env={"ANSIBLE_LOCAL_TEMP": str(tmp_path / "tmp")})
    assert result.returncode == 0, result.stdout + result.stderr
    config = load_centre(tmp_path / "centre.toml")
    if broker:
        assert config.broker is not None
        assert (config.broker.url, config.broker.username, config.broker.password_file) == (
            "mqtt://127.0.0.1:1883", "centre", str(tmp_path / "centre-mqtt.password"))
        copied = yaml.safe_load((role / "tasks" / "broker.yml").read_text())
        copy = next(t["ansible.builtin.copy"] for t in copied if t.get("name") == "Give the centre its MQTT password")
        assert copy["src"] == "{{ vuoro_centre_broker_dir }}/centre.password"  # what deploy/central_broker.py writes
        assert copy["dest"] == "{{ vuoro_etc }}/centre-mqtt.password" and copy["group"] == "{{ vuoro_user }}"
    else:
        assert config.broker is None
