"""Mosquitto on any address, inside a network namespace if asked: the harness's central broker on the WAN bridge, and
each branch's own broker inside its namespace, bridged outbound to the central one under the branch's topic prefix.

The bridge here is the smallest that carries a branch's live state up (``topic # out 0 "" <branch>/``); the
generated production bridge (TLS, ACLs, config down) is deploy/mosquitto's. Nothing that must not be lost
travels over it: rows go by the uplink's outbox.
"""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

from toolkit.broker import mosquitto_path
from toolkit.hub_process import ChildProcess
from toolkit.netns import Namespace


class Mosquitto(ChildProcess):
    def __init__(self, workdir: Path, host: str, port: int, *, ns: Namespace | None = None,
                 bridge_to: str | None = None, prefix: str = ""):
        exe = mosquitto_path()
        if exe is None:
            raise FileNotFoundError("mosquitto is not installed (Debian: apt-get install mosquitto)")
        self.exe = exe
        self.workdir = workdir
        self.host, self.port, self.ns = host, port, ns
        self.bridge_to, self.prefix = bridge_to, prefix
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    def _config(self) -> Path:
        self.workdir.mkdir(parents=True, exist_ok=True)
        lines = [f"listener {self.port} {self.host}", "allow_anonymous true", "persistence false",
                 "log_dest stderr", "log_type error", "log_type warning", "user root"]
        if self.bridge_to:
            lines += ["connection central", f"address {self.bridge_to}", f'topic # out 0 "" {self.prefix}/',
                      "cleansession true", "keepalive_interval 10", "restart_timeout 1 10",
                      f"remote_clientid bridge-{self.prefix}", "bridge_protocol_version mqttv311"]
        path = self.workdir / "mosquitto.conf"
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return path

    def start(self, timeout: float = 10.0) -> Mosquitto:
        conf = self._config()
        log = open(self.workdir / "mosquitto.log", "ab")  # noqa: SIM115 - handed to the child
        self.process = subprocess.Popen([*(self.ns.wrap() if self.ns else []), self.exe, "-c", str(conf)],
                                        stdout=log, stderr=subprocess.STDOUT, cwd=self.workdir)
        log.close()
        deadline = time.monotonic() + timeout

        def listening() -> bool:
            try:
                with socket.create_connection((self.host, self.port), timeout=0.2):
                    return True
            except OSError:
                return False

        while not (self.ns.run(listening) if self.ns else listening()):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"mosquitto did not start: {(self.workdir / 'mosquitto.log').read_text()}")
            time.sleep(0.05)
        return self
