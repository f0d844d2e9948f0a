"""The whole municipality on one machine: a private PostgreSQL, the central broker and the centre in the root
namespace on the WAN bridge, and N branches each in a namespace of its own (``branch.py``).

Everything is torn down by ``close`` — on success, on an exception, on Ctrl-C (the caller's try/finally)
and at interpreter exit (``toolkit.netns`` deletes its namespaces and the processes left inside them).
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import threading
from pathlib import Path

import psycopg

from bench.central_harness.branch import Branch
from toolkit.broker import free_port
from toolkit.central_process import CentralProcess, write_centre_config
from toolkit.netns import Network
from toolkit.netns_mosquitto import Mosquitto
from toolkit.postgres import PostgresCluster


class Harness:
    def __init__(self, branches: int, work: Path | None = None, *, keep: bool = False, centre_fsync: bool = True,
                 centre_nice: int = 0):
        self.work = work or Path(tempfile.mkdtemp(prefix="vuoro-harness-"))
        self.keep = keep  # keep the folder (logs, load records, SQLite files) for a look afterwards
        self.ids = [f"b{i + 1}" for i in range(branches)]
        self.net = Network()
        # its own folder: PostgreSQL runs as nobody, who may not enter ours. fsync off only to see how much of the
        # branches' latency is the centre's disk writes competing with theirs on this one machine (--centre-fsync)
        self.pg = PostgresCluster(fsync=centre_fsync)
        # > 0: the centre and its PostgreSQL yield the CPU to the branches, as on a machine of their own (the disk
        # is still shared): how much of the A/B is the centre's CPU on the branches' two cores (--centre-nice)
        self.centre_nice = centre_nice
        self.database = ""
        self.centre_port = free_port()
        self.centre_url = f"http://{self.net.gateway}:{self.centre_port}"
        self.central_broker = Mosquitto(self.work / "central-mqtt", self.net.gateway, free_port())
        self.centre: CentralProcess | None = None
        self.branches: dict[str, Branch] = {}

    def start(self) -> Harness:
        self.net.create()
        self.pg.start()
        self.database = self.pg.create_database("central")
        self.central_broker.start()
        self.branches = {bid: Branch(self.net, bid, self.work, self.centre_url,
                                     f"{self.net.gateway}:{self.central_broker.port}") for bid in self.ids}
        config = write_centre_config(self.work / "centre.toml", self.database,
                                     {bid: (b.token, b.site) for bid, b in self.branches.items()})
        self.centre = CentralProcess(config, port=self.centre_port, host=self.net.gateway).start(timeout=60)
        self._nice_centre()
        self.each(lambda b: b.start())
        return self

    def each(self, fn: object, ids: list[str] | None = None) -> None:
        """Run ``fn(branch)`` for these branches at once (starting 7 hubs one after the other takes long)."""
        errors: list[BaseException] = []

        def run(branch: Branch) -> None:
            try:
                fn(branch)  # type: ignore[operator]
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=run, args=(self.branches[bid],)) for bid in (ids or self.ids)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if errors:
            raise errors[0]

    # -- the centre down and back ---------------------------------------------------

    def centre_down(self) -> None:
        """SIGKILL the centre, its PostgreSQL and the central broker: a crash of the centre's machine."""
        assert self.centre is not None
        self.centre.kill()
        self.pg.kill()
        self.central_broker.kill()

    def centre_up(self) -> None:
        assert self.centre is not None
        self.pg.start()
        self.central_broker.start()
        self.centre.start(timeout=60)
        self._nice_centre()

    def _nice_centre(self) -> None:
        """The centre, PostgreSQL and its processes at ``centre_nice`` (backends it starts later inherit it)."""
        if not self.centre_nice:
            return
        import psutil

        for top in (self.centre.process if self.centre else None, self.pg.process):
            if top is None:
                continue
            for proc in [psutil.Process(top.pid), *psutil.Process(top.pid).children(recursive=True)]:
                with contextlib.suppress(psutil.Error):
                    proc.nice(self.centre_nice)

    def cpu_seconds(self) -> dict[str, float]:
        """CPU time used so far by the hubs, and by the centre with PostgreSQL (all its backends): read before and
        after a phase, it says how much of this one machine the centre's side takes from the branches'."""
        import psutil

        def used(pids: list[int]) -> float:
            total = 0.0
            for pid in pids:
                try:
                    proc = psutil.Process(pid)
                    for p in [proc, *proc.children(recursive=True)]:
                        times = p.cpu_times()
                        total += times.user + times.system
                except psutil.Error:
                    pass
            return total

        hubs = [b.hub.process.pid for b in self.branches.values() if b.hub.process]
        centre = [p.pid for p in (self.centre.process if self.centre else None, self.pg.process) if p]
        return {"hubs": used(hubs), "centre": used(centre)}

    def db(self) -> psycopg.Connection:
        return psycopg.connect(self.database, autocommit=True)

    def close(self) -> None:
        for branch in self.branches.values():
            with contextlib.suppress(Exception):
                branch.stop()
        if self.centre:
            with contextlib.suppress(Exception):
                self.centre.stop()
        with contextlib.suppress(Exception):
            self.central_broker.stop()
        with contextlib.suppress(Exception):
            self.pg.close()
        self.net.close()
        if not self.keep:
            shutil.rmtree(self.work, ignore_errors=True)

    def __enter__(self) -> Harness:
        try:
            return self.start()
        except BaseException:
            self.close()
            raise

    def __exit__(self, *exc: object) -> None:
        self.close()
