"""MQTT across branches for tests and benches: branch Mosquittos bridged to a central Mosquitto or to a
three-node nats-server cluster, each started from the shipped config files and the generated users, ACLs
and bridges (``deploy/mosquitto*``, ``deploy/central_broker.py``, ``deploy/nats/node.conf``), changed only
where a test must: ports, folders, no pid file, no privilege drop.
"""

from __future__ import annotations

import getpass
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Iterable
from pathlib import Path

from central.config import CentreConfig, load_centre
from deploy import central_broker, mosquitto_acl
from server.config import SiteConfig
from toolkit.broker import Broker, free_port, free_ports, wait_for_port
from toolkit.central_process import write_centre_config
from vuoro.mqtt import BrokerSettings

REPO = Path(__file__).resolve().parent.parent
BRANCH_CONF = REPO / "deploy" / "mosquitto" / "mosquitto.conf"
CENTRAL_CONF = REPO / "deploy" / "mosquitto" / "central.conf"
NATS_NODE_CONF = REPO / "deploy" / "nats" / "node.conf"
TEST_SITE = REPO / "tests" / "sites" / "always_open.toml"


def localise(conf: str, replacements: Iterable[tuple[str, str]]) -> str:
    """A shipped config with each pattern replaced; a pattern that no longer matches is an error (the
    shipped file changed under the tests)."""
    for pattern, new in replacements:
        conf, count = re.subn(pattern, new.replace("\\", "\\\\"), conf)
        if not count:
            raise ValueError(f"the shipped config no longer has {pattern!r}: update toolkit/bridged_brokers.py")
    return conf


class DeployedMosquitto(Broker):
    """Mosquitto from a shipped config made local; ``port`` is its plain loopback listener."""

    def __init__(self, conf_text: str, port: int, workdir: Path):
        super().__init__(port, workdir=workdir)
        self.conf_text = conf_text

    def _write_config(self) -> Path:
        conf = self.workdir / "mosquitto.conf"
        # As root Mosquitto would switch to the user "mosquitto", who may not read the temporary folder.
        conf.write_text(self.conf_text + f"\nuser {getpass.getuser()}\nlog_dest file {self.workdir}/log\n")
        return conf

    def kill(self) -> None:
        """SIGKILL: no goodbye to anyone (no will sent by it, nothing saved)."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(5)
        self.process = None


def branch_site(folder: Path, site_id: str, brokers: list[str], ca_file: Path, *, root: str = "vuoro") -> Path:
    """The test site as branch ``site_id`` with ``[central]``: its token, the centre's CA, the brokers."""
    text = TEST_SITE.read_text(encoding="utf-8").replace('id = "sonderbro"', f'id = "{site_id}"', 1)
    if root != "vuoro":
        text = text.replace("[hub]\n", f'[hub]\ntopic_root = "{root}"\n', 1)
    quoted = ", ".join(f'"{url}"' for url in brokers)
    text += (f'\n[central]\nurl = "https://127.0.0.1:9"\ntoken = "{branch_token(site_id)}"\nca_file = "{ca_file}"\n'
             f"broker = [{quoted}]\n")
    path = folder / f"{site_id}.toml"
    path.write_text(text, encoding="utf-8")
    return path


def branch_token(site_id: str) -> str:
    return f"{site_id}-uplink-token-0123456789"


def centre_config(folder: Path, sites: dict[str, Path]) -> CentreConfig:
    """The centre's config naming these branches (its database is never opened here)."""
    path = write_centre_config(folder / "municipality.toml", "postgresql://vuoro@127.0.0.1:9/vuoro",
                               {bid: (branch_token(bid), site) for bid, site in sites.items()})
    return load_centre(path)


def branch_broker(config: SiteConfig, workdir: Path) -> DeployedMosquitto:
    """A branch's Mosquitto: the shipped config, the generated users, ACL and bridge to the centre."""
    workdir.mkdir(parents=True, exist_ok=True)
    mosquitto_acl.generate(config, workdir, group=None)
    port = free_port()
    conf = localise(BRANCH_CONF.read_text(), [
        (r"(?m)^listener 1883$", f"listener {port} 127.0.0.1"),
        (r"/etc/mosquitto/vuoro/", f"{workdir}/"),
        (r"/var/lib/mosquitto/", f"{workdir}/"),
        (r"(?m)^pid_file .*$", "# pid_file (test: none)"),
        (r"(?m)^log_dest stderr$", "# log_dest (test: a file)"),
    ])
    return DeployedMosquitto(conf, port, workdir)


def central_mosquitto(config: CentreConfig, workdir: Path, cert: Path, key: Path,
                      tls_port: int | None = None) -> tuple[DeployedMosquitto, int]:
    """The centre's Mosquitto (deploy/mosquitto/central.conf) and the port of its TLS listener."""
    workdir.mkdir(parents=True, exist_ok=True)
    port, spare = free_ports(2)  # the plain and the TLS listener: two different ports
    tls_port = tls_port or spare
    central_broker.generate(config, workdir, tls=mosquitto_acl.TlsListener(cert, key, port=tls_port), group=None)
    conf = localise(CENTRAL_CONF.read_text(), [
        (r"(?m)^listener 1883 127.0.0.1$", f"listener {port} 127.0.0.1"),
        (r"/etc/mosquitto/vuoro-central/", f"{workdir}/"),
        (r"/var/lib/mosquitto/", f"{workdir}/"),
        (r"(?m)^pid_file .*$", "# pid_file (test: none)"),
        (r"(?m)^log_dest stderr$", "# log_dest (test: a file)"),
    ])
    return DeployedMosquitto(conf, port, workdir), tls_port


def bridge_target(broker: DeployedMosquitto) -> int | None:
    """The port of the central broker a branch's bridge last connected to (from the branch broker's log)."""
    log = (broker.workdir / "log").read_text(errors="replace") if (broker.workdir / "log").exists() else ""
    found = re.findall(r"Connecting bridge \(step 1\) \S+ \(\S+:(\d+)\)", log)
    return int(found[-1]) if found else None


def login(url: str, user: str, password: str, ca: Path) -> BrokerSettings:
    return BrokerSettings(url, username=user, password=password, ca_file=str(ca))


def centre_password(workdir: Path) -> str:
    return (workdir / "centre.password").read_text().strip()


def hub_password(workdir: Path) -> str:
    return (workdir / "hub.password").read_text().strip()


def nats_path() -> str | None:
    return shutil.which("nats-server") or ("/usr/sbin/nats-server" if Path("/usr/sbin/nats-server").exists() else None)


class NatsCluster:
    """Three nats-server nodes on loopback (deploy/nats/node.conf, the generated users), each with an MQTT
    listener over TLS and JetStream; a node can be killed and started again."""

    def __init__(self, config: CentreConfig, workdir: Path, cert: Path, key: Path, nodes: int = 3):
        exe = nats_path()
        if exe is None:
            raise FileNotFoundError("nats-server is not installed (Debian: apt-get install nats-server)")
        self.exe, self.workdir, self.cert, self.key = exe, workdir, cert, key
        workdir.mkdir(parents=True, exist_ok=True)
        central_broker.generate(config, workdir, broker="nats", group=None)
        self.names = [f"n{i + 1}" for i in range(nodes)]
        ports = iter(free_ports(3 * len(self.names)))  # nine different ports, not nine tries that may repeat
        self.client_ports = {n: next(ports) for n in self.names}
        self.route_ports = {n: next(ports) for n in self.names}
        self.mqtt_ports = {n: next(ports) for n in self.names}
        self.processes: dict[str, subprocess.Popen[bytes]] = {}

    def mqtts(self, name: str) -> str:
        return f"mqtts://localhost:{self.mqtt_ports[name]}"

    def _conf(self, name: str) -> Path:
        routes = ", ".join(f"nats-route://127.0.0.1:{self.route_ports[n]}" for n in self.names)
        text = localise(NATS_NODE_CONF.read_text(), [
            (r"(?m)^server_name: n1$", f"server_name: {name}"),
            (r"(?m)^listen: 127.0.0.1:4222 ", f"listen: 127.0.0.1:{self.client_ports[name]} "),
            (r'store_dir: "/var/lib/nats/jetstream"', f'store_dir: "{self.workdir}/js-{name}"'),
            (r"max_memory_store: 256MB", "max_memory_store: 64MB"),
            (r"max_file_store: 4GB", "max_file_store: 256MB"),
            (r"listen: 0.0.0.0:6222", f"listen: 127.0.0.1:{self.route_ports[name]}"),
            (r"(?s)routes: \[.*?\]", f"routes: [{routes}]"),
            (r"listen: 0.0.0.0:8883", f"listen: 127.0.0.1:{self.mqtt_ports[name]}"),
            (r'cert_file: "/etc/nats/mqtt.crt"', f'cert_file: "{self.cert}"'),
            (r'key_file: "/etc/nats/mqtt.key"', f'key_file: "{self.key}"'),
        ])
        path = self.workdir / f"{name}.conf"  # beside nats-users.conf: nats includes relative to the file
        path.write_text(text)
        return path

    def start(self, name: str | None = None) -> NatsCluster:
        for node in [name] if name else self.names:
            log = open(self.workdir / f"{node}.log", "ab")  # noqa: SIM115 - handed to the child
            self.processes[node] = subprocess.Popen([self.exe, "-c", str(self._conf(node))], stdout=log,
                                                    stderr=subprocess.STDOUT)
            log.close()
        for node in [name] if name else self.names:
            try:
                wait_for_port(self.mqtt_ports[node], timeout=20)
            except TimeoutError:
                raise RuntimeError(f"nats-server {node} did not start: {self.log(node)[-2000:]}") from None
        return self

    def kill(self, name: str) -> None:
        """SIGKILL one node: the machine it runs on is gone."""
        process = self.processes.pop(name)
        process.kill()
        process.wait(10)

    def node_of(self, port: int | None) -> str | None:
        return next((n for n, p in self.mqtt_ports.items() if p == port), None)

    def stop(self) -> None:
        for name in list(self.processes):
            process = self.processes.pop(name)
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)

    def log(self, name: str) -> str:
        return (self.workdir / f"{name}.log").read_text(errors="replace")


def wait_until(predicate, timeout: float = 20.0, step: float = 0.05):  # type: ignore[no-untyped-def]
    """Poll a condition until it holds (a generous bound for something that must happen, never a timing)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"not true within {timeout} s")
        time.sleep(step)
