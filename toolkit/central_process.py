"""Run the centre (``vuoro central``) as a separate process, on a free port: for the tests and the benchmarks.

``write_centre_config`` writes a centre's TOML naming its branches' site files, as a municipality would.
A real process is what "the centre killed and restarted" needs.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import requests

from toolkit.broker import free_port
from toolkit.hub_process import ChildProcess

ADMIN_TOKEN = "test-centre-admin-token"


def write_centre_config(path: Path, database: str, branches: dict[str, tuple[str, Path]], *,
                        name: str = "Test Kommune", languages: tuple[str, ...] = ("da", "en", "sv", "fi", "nl"),
                        admin_token: str = ADMIN_TOKEN, tls: tuple[Path, Path] | None = None,
                        extra: str = "") -> Path:
    """``branches``: site id → (its token, its site file); ``tls``: (certificate, key) to serve HTTPS;
    ``extra``: more TOML at the end (e.g. ``[staff.ldap]``)."""
    lines = ["[centre]", f'name = "{name}"', f'database = "{database}"',
             f"languages = [{', '.join(repr(code).replace(chr(39), chr(34)) for code in languages)}]",
             f'admin_token = "{admin_token}"']
    if tls:
        lines += [f'tls_cert = "{tls[0]}"', f'tls_key = "{tls[1]}"']
    lines.append("")
    for bid, (token, site) in branches.items():
        lines += [f"[branches.{bid}]", f'token = "{token}"', f'site = "{site}"', ""]
    path.write_text("\n".join(lines) + extra, encoding="utf-8")
    return path


class CentralProcess(ChildProcess):
    def __init__(self, config: str | Path, *, port: int | None = None, log_path: str | Path | None = None,
                 env: dict[str, str] | None = None, tls_ca: str | Path | None = None, host: str = "127.0.0.1",
                 workers: int | None = None):
        self.config = str(config)
        self.workers = workers  # worker processes (None: the config's, else the CPUs, at least 2)
        self.host = host  # e.g. the harness's bridge address, which branches in network namespaces reach
        self.port = port or free_port()
        self.log_path = Path(log_path) if log_path else Path(self.config).with_suffix(".log")
        self.env = env or {}
        self.tls_ca = str(tls_ca) if tls_ca else None  # a centre serving HTTPS (centre.tls_cert): its CA
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"{'https' if self.tls_ca else 'http'}://{self.host}:{self.port}"

    def start(self, timeout: float = 30.0) -> CentralProcess:
        log = open(self.log_path, "ab")  # noqa: SIM115 - handed to the child, closed with it
        self.process = subprocess.Popen(
            [sys.executable, "-m", "central.main", "--config", self.config, "--listen", f"{self.host}:{self.port}",
             "--log-level", "warning", *(["--workers", str(self.workers)] if self.workers else [])],
            stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1", **self.env})
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the centre exited with {self.process.returncode}:\n{self.log_path.read_text()}")
            try:
                if requests.get(self.url + "/api/v1/health", timeout=1, verify=self.tls_ca or True).status_code == 200:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.05)
        raise TimeoutError(f"the centre did not answer within {timeout:g} s:\n{self.log_path.read_text()}")


    def get(self, path: str, **params: str) -> requests.Response:
        return requests.get(self.url + path, params=params, timeout=10, verify=self.tls_ca or True,
                            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})

    def __enter__(self) -> CentralProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
