"""Start a private Mosquitto broker: for the demo, the tests and the benchmarks.

A site normally runs Mosquitto as a system service (see ``deploy/``). The
demo and the test suite instead start their own on a free loopback port, so
they never touch a broker that is already running on 1883, and so a test can
stop and restart it to prove that screens and the hub recover.
"""

from __future__ import annotations

import getpass
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from toolkit.ports import free_port as free_port  # re-exported: the tests and the demo take it from here
from toolkit.ports import free_ports as free_ports


def fresh_root(prefix: str = "t") -> str:
    """A topic root of its own (e.g. ``t3f9a0c1b``), so clients on a shared broker never see each other's
    retained state: one per test on the session's broker."""
    return prefix + uuid.uuid4().hex[:8]


def wait_for_port(port: int, host: str = "127.0.0.1", timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), timeout=0.2):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing listens on {host}:{port} after {timeout:.0f} s") from None
            time.sleep(0.02)


def mosquitto_path() -> str | None:
    return shutil.which("mosquitto") or next(
        (p for p in ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto") if Path(p).exists()), None
    )


class Broker:
    """A Mosquitto process on 127.0.0.1:<port>, started and stopped on demand.

    The port is kept across restarts so clients can reconnect to the same
    address. ``persistence`` keeps retained messages across a restart, as a
    site's broker does (``deploy/mosquitto``).
    """

    def __init__(self, port: int | None = None, *, persistence: bool = True, workdir: Path | None = None):
        exe = mosquitto_path()
        if exe is None:
            raise FileNotFoundError("mosquitto is not installed (Debian: apt-get install mosquitto)")
        self.exe = exe
        self.port = port or free_port()
        self.persistence = persistence
        self._tmp = None if workdir else tempfile.TemporaryDirectory(prefix="vuoro-broker-")
        self.workdir = Path(workdir or self._tmp.name)  # type: ignore[union-attr]
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def _write_config(self) -> Path:
        conf = self.workdir / "mosquitto.conf"
        lines = [
            f"listener {self.port} 127.0.0.1",
            "allow_anonymous true",
            f"persistence {'true' if self.persistence else 'false'}",
            f"persistence_location {self.workdir}/",
            "autosave_interval 1",
            "max_queued_messages 10000",
            "log_dest stderr",
            "log_type error",
            "log_type warning",
            # Started as root, mosquitto would switch to the user "mosquitto", who may not write the
            # store into our temporary folder: persistence would fail, silently. Stay who we are.
            f"user {getpass.getuser()}",
        ]
        conf.write_text("\n".join(lines) + "\n")
        return conf

    def start(self) -> Broker:
        if self.process and self.process.poll() is None:
            return self
        conf = self._write_config()
        self.process = subprocess.Popen(
            [self.exe, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=self.workdir
        )
        try:
            wait_for_port(self.port)
        except TimeoutError:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()  # SIGTERM: mosquitto saves retained messages first
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        if self.process and self.process.stderr:
            self.process.stderr.close()
        self.process = None

    def restart(self, downtime: float = 0.0) -> None:
        self.stop()
        if downtime:
            time.sleep(downtime)
        self.start()

    def close(self) -> None:
        self.stop()
        if self._tmp:
            self._tmp.cleanup()

    def __enter__(self) -> Broker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


class EmbeddedBroker(Broker):
    """amqtt, a pure-Python MQTT 3.1.1 broker, in a child process: for the demo on a machine without
    Mosquitto (no root needed to install it). Retained messages and last wills work; it keeps nothing
    across a restart, which the hub heals by republishing its state on every reconnect.
    """

    def __init__(self, port: int | None = None, *, workdir: Path | None = None):
        import importlib.util

        if importlib.util.find_spec("amqtt") is None:
            raise FileNotFoundError("neither mosquitto nor amqtt is installed "
                                    "(apt-get install mosquitto, or pip install 'vuoro[demo]')")
        self.exe = sys.executable
        self.port = port or free_port()
        self.persistence = False
        self._tmp = None if workdir else tempfile.TemporaryDirectory(prefix="vuoro-amqtt-")
        self.workdir = Path(workdir or self._tmp.name)  # type: ignore[union-attr]
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.process = None

    def start(self) -> Broker:
        if self.process and self.process.poll() is None:
            return self
        conf = self.workdir / "amqtt.yaml"
        conf.write_text(
            "listeners:\n  default:\n    type: tcp\n"
            f"    bind: 127.0.0.1:{self.port}\n"
            "plugins:\n  amqtt.plugins.authentication.AnonymousAuthPlugin:\n    allow_anonymous: true\n"
        )
        run = "import sys; from amqtt.scripts.broker_script import main; sys.argv[0] = 'amqtt'; main()"
        self.process = subprocess.Popen([self.exe, "-c", run, "-c", str(conf)], stdout=subprocess.DEVNULL,
                                        stderr=subprocess.PIPE, cwd=self.workdir)
        try:
            wait_for_port(self.port, timeout=20)
        except TimeoutError:
            self.stop()
            raise
        return self


def start_broker(workdir: Path | None = None, port: int | None = None) -> Broker:
    """Mosquitto where installed, otherwise the embedded broker."""
    broker = Broker(port, workdir=workdir) if mosquitto_path() else EmbeddedBroker(port, workdir=workdir)
    return broker.start()
