"""Run a hub as a separate process: for the demo, the fault tests and the benchmarks.

A real process is what a SIGKILL test needs, and what a benchmark should
measure: the same ``vuoro hub`` a site runs, on a free port.

``clock=`` starts the hub at a chosen time and ``set_clock`` steps its clock
while it runs (``vuoro/clock.py``: the hub reads a file named by
``VUORO_TEST_CLOCK``); ``tz=`` sets the process's own zone, e.g. ``"UTC"``
while the site is in Europe/Copenhagen, as the tests run it. ``wrap=`` is a
command the hub runs under (e.g. ``unshare`` with a small filesystem of its
own, to fill a disk for real).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import requests

from toolkit.broker import free_port
from vuoro.clock import ENV as CLOCK_ENV
from vuoro.clock import FileClock, write_clock_file


class ChildProcess:
    """What every harness process shares: SIGKILL like a power cut, or a polite stop (SIGTERM, then SIGKILL)."""

    process: subprocess.Popen | None = None

    def kill(self) -> None:
        """SIGKILL: no clean-up, no last words, like a power cut of the process."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)
        self.process = None

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()
        self.process = None


class HubProcess(ChildProcess):
    def __init__(self, config: str | Path, data_dir: str | Path, broker_url: str, *, port: int | None = None,
                 log_path: str | Path | None = None, topic_root: str | None = None, clock: datetime | None = None,
                 tz: str | None = None, wrap: list[str] | None = None, tls_ca: str | Path | None = None,
                 env: dict[str, str] | None = None, listen_host: str = "127.0.0.1", host: str | None = None):
        self.config = str(config)
        self.data_dir = Path(data_dir)
        self.broker_url = broker_url
        self.port = port or free_port()
        # where it listens, and where this process reaches it: e.g. 0.0.0.0 inside a network namespace of its own,
        # reached over that namespace's veth address (bench/central_harness)
        self.listen_host = listen_host
        self.host = host or listen_host
        self.log_path = Path(log_path) if log_path else self.data_dir / "hub.log"
        self.topic_root = topic_root
        self.tls_ca = str(tls_ca) if tls_ca else None  # a hub serving HTTPS (hub.tls_cert): its CA
        self.env = env or {}
        self.process: subprocess.Popen[bytes] | None = None
        self.clock_file = self.data_dir / "test-clock" if clock else None
        self.tz = tz
        self.wrap = list(wrap or [])
        if clock:
            self.set_clock(clock)

    def set_clock(self, when: datetime) -> None:
        """Start the hub at this time, or step its running clock to it (forwards or back)."""
        if self.clock_file is None:
            raise RuntimeError("this hub runs on the machine's clock: give HubProcess(clock=...) to set it")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        write_clock_file(self.clock_file, when)

    def clock_now(self) -> datetime:
        """What the hub's clock says now (its test clock runs at real speed from the last set_clock)."""
        return FileClock(self.clock_file)() if self.clock_file else datetime.now(UTC)

    def wait_for_clock(self, moment: datetime, timeout: float = 30.0) -> None:
        """Let the hub's running clock pass ``moment``: e.g. a real midnight, a few seconds after set_clock."""
        deadline = time.monotonic() + timeout
        while self.clock_now() <= moment:
            if time.monotonic() > deadline:
                raise TimeoutError(f"the hub's clock did not reach {moment} within {timeout} s")
            time.sleep(0.02)

    @property
    def url(self) -> str:
        return f"{'https' if self.tls_ca else 'http'}://{self.host}:{self.port}"

    def start(self, timeout: float = 20.0) -> HubProcess:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")  # noqa: SIM115 - handed to the child, closed with it
        cmd = [*self.wrap, sys.executable, "-m", "server.main", "--config", self.config,
               "--data-dir", str(self.data_dir), "--listen", f"{self.listen_host}:{self.port}",
               "--broker", self.broker_url, "--log-level", "warning"]
        if self.topic_root:
            cmd += ["--topic-root", self.topic_root]
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **self.env}
        if self.clock_file:
            env[CLOCK_ENV] = str(self.clock_file)
        if self.tz:
            env["TZ"] = self.tz
        self.process = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
        log.close()
        self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout: float = 20.0) -> float:
        """Seconds until the hub answered its health endpoint."""
        started = time.monotonic()
        deadline = started + timeout
        while time.monotonic() < deadline:
            if self.process and self.process.poll() is not None:
                raise RuntimeError(f"the hub exited with {self.process.returncode}:\n{self.log_path.read_text()}")
            try:
                requests.get(self.url + "/api/v1/health", timeout=0.5, verify=self.tls_ca or True)
                return time.monotonic() - started
            except requests.RequestException:
                time.sleep(0.02)
        raise TimeoutError(f"the hub did not answer within {timeout} s:\n{self.log_path.read_text()}")


    def __enter__(self) -> HubProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
