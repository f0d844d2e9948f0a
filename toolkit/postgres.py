"""A private PostgreSQL cluster: for the centre's tests, the demo of the centre and the benchmarks.

``initdb`` in a temporary directory, ``postgres`` on a free loopback port with its socket in that
directory: never the machine's own cluster on 5432, never its data. The binaries are Debian's
(``/usr/lib/postgresql/<version>/bin``, package ``postgresql``; the newest version installed is used).

PostgreSQL refuses to run as root. When this process is root (CI, the developers' machines), the
cluster runs as the unprivileged user ``nobody``: its directory is handed to that user and the
server is started with ``subprocess``'s ``user=``/``group=``. Clients connect over TCP on
127.0.0.1 with ``trust`` authentication: the cluster lives as long as the test session and
listens on loopback only.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from toolkit.broker import free_port

PG_ROOT = Path("/usr/lib/postgresql")
SUPERUSER = "vuoro"


def postgres_bin() -> Path | None:
    """The bin directory of the newest PostgreSQL installed (Debian's layout), or None."""
    versions = sorted((p for p in PG_ROOT.glob("*/bin") if (p / "initdb").exists()),
                      key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0)
    return versions[-1] if versions else None


class PostgresCluster:
    """One ``postgres`` server of our own, started and stopped (or SIGKILLed) on demand, data kept across."""

    def __init__(self, port: int | None = None, *, fsync: bool = False, workdir: Path | None = None):
        found = postgres_bin()
        if found is None:
            raise FileNotFoundError("PostgreSQL is not installed (Debian: apt-get install postgresql)")
        self.bin = found
        self.port = port or free_port()
        # fsync off by default: a test cluster that dies with its test session need not survive a power cut,
        # and six engineers share the disk. A SIGKILLed server still loses nothing (the OS keeps its writes).
        self.fsync = fsync
        self._own_dir = workdir is None
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="vuoro-pg-"))
        self.data = self.workdir / "data"
        self.log_path = self.workdir / "postgres.log"
        self.process: subprocess.Popen[bytes] | None = None
        self._as: dict[str, Any] = {}
        if os.geteuid() == 0:
            nobody = pwd.getpwnam("nobody")
            os.chown(self.workdir, nobody.pw_uid, nobody.pw_gid)
            self._as = {"user": nobody.pw_uid, "group": nobody.pw_gid, "extra_groups": []}

    def _run(self, *args: str) -> None:
        result = subprocess.run([str(self.bin / args[0]), *args[1:]], capture_output=True, text=True,
                                cwd=self.workdir, **self._as)
        if result.returncode != 0:
            raise RuntimeError(f"{args[0]} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")

    def init(self) -> None:
        if (self.data / "PG_VERSION").exists():
            return
        self._run("initdb", "-D", str(self.data), "-U", SUPERUSER, "--auth=trust", "-E", "UTF8",
                  "--locale=C.UTF-8", "--no-instructions")

    def dsn(self, dbname: str = "postgres") -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{dbname}"

    def start(self, timeout: float = 30.0) -> PostgresCluster:
        if self.running:
            return self
        self.init()
        log = open(self.log_path, "ab")  # noqa: SIM115 - handed to the child, closed with it
        self.process = subprocess.Popen(
            [str(self.bin / "postgres"), "-D", str(self.data), "-p", str(self.port), "-k", str(self.workdir),
             "-c", "listen_addresses=127.0.0.1", "-c", f"fsync={'on' if self.fsync else 'off'}",
             "-c", "shared_buffers=32MB", "-c", "max_connections=60", "-c", "log_min_messages=warning"],
            # a session of its own, so that a crash (kill) takes the server's backends with it at once
            stdout=log, stderr=subprocess.STDOUT, cwd=self.workdir, start_new_session=True, **self._as)
        log.close()
        self.wait_ready(timeout)
        return self

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def wait_ready(self, timeout: float = 30.0) -> None:
        import psycopg

        deadline = time.monotonic() + timeout
        while True:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"postgres exited with {self.process.returncode}:\n{self.log_path.read_text()}")
            try:
                with psycopg.connect(self.dsn(), connect_timeout=2):
                    return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"postgres did not accept connections within {timeout:g} s:\n"
                                       f"{self.log_path.read_text()}") from None
                time.sleep(0.05)

    def create_database(self, name: str | None = None) -> str:
        """A fresh, empty database; its connection string."""
        import psycopg

        name = name or "t" + uuid.uuid4().hex[:10]
        with psycopg.connect(self.dsn(), autocommit=True) as db:
            db.execute(f'CREATE DATABASE "{name}"')
        return self.dsn(name)

    def stop(self) -> None:
        """A fast shutdown (SIGINT): sessions are ended, everything committed is kept."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()
        self.process = None

    def kill(self) -> None:
        """SIGKILL of the server and all its processes, as a crash (or a power cut of the database host): it
        recovers from its WAL on the next start. All of them: a new server refuses to start while a backend
        of the old one still holds its shared memory."""
        if self.process and self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)
        self.process = None

    def close(self) -> None:
        self.stop()
        if self._own_dir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> PostgresCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()
