"""A/B of the hub's figures between two checkouts, interleaved on the same machine at the same time.

The shared 2-core machine's speed changes by the minute (other work, the disk's fsync time), so a figure
measured an hour ago says little about a change. This runs the same measurements on checkout A, then B, then
A, then B ... (each with its own ``.venv``), with a bare SQLite durable commit measured in every round as the
floor, and prints each round and the median per build: what is left between A and B is the code's.

    .venv/bin/python bench/ab_hub.py /work/wt/old /work/wt/new [--rounds 3] [--seconds 5]

Per build and round: hub start → first HTTP reply (and the CPU seconds the hub used for it: steadier than the wall
clock on a loaded machine), idle RSS one second later, tickets via HTTP from ``wrk`` with
1 and 8 connections (as bench/bench_hub.py). A checkout without a ``.venv`` runs on this interpreter's packages
(``python -m server.main`` from the checkout: its own code). ``--pin`` runs wrk on CPU 0 and the hub on CPU 1 (taskset).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bench_hub import floor_sqlite, rss_mb, wrk  # noqa: E402
from toolkit.broker import Broker, free_port  # noqa: E402


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far: start-up cost that a busy machine does not inflate."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_hub(repo: Path, folder: Path, broker_url: str, prefix: list[str]) -> tuple[subprocess.Popen[bytes], str,
                                                                                    float, float]:
    port = free_port()
    python = repo / ".venv" / "bin" / "python"  # a checkout without one runs on this interpreter's packages
    cmd = [*prefix, str(python) if python.exists() else sys.executable, "-m", "server.main", "--config",
           str(repo / "tests" / "sites" / "always_open.toml"), "--data-dir", str(folder), "--listen",
           f"127.0.0.1:{port}", "--broker", broker_url, "--topic-root", f"ab{port}", "--log-level", "warning"]
    url = f"http://127.0.0.1:{port}"
    began = time.perf_counter()
    process = subprocess.Popen(cmd, cwd=repo, stdout=subprocess.DEVNULL, stderr=open(folder / "hub.log", "wb"))  # noqa: SIM115
    while True:
        if process.poll() is not None:
            raise RuntimeError((folder / "hub.log").read_text())
        try:
            requests.get(url + "/api/v1/health", timeout=0.5)
            return process, url, time.perf_counter() - began, cpu_seconds(process.pid)
        except requests.RequestException:
            time.sleep(0.01)


def one(repo: Path, broker: Broker, folder: Path, seconds: int, pin: bool) -> dict[str, float]:
    folder.mkdir(parents=True)
    process, url, started, cpu = start_hub(repo, folder, broker.url, ["taskset", "-c", "1"] if pin else [])
    try:
        time.sleep(1.0)
        idle = rss_mb(process.pid)
        if seconds == 0:  # start and memory only
            return {"start_s": started, "start_cpu_s": cpu, "idle_mb": idle}
        wrk_prefix = ("taskset", "-c", "0") if pin else ()
        k1 = wrk(url, 1, seconds, folder, wrk_prefix)
        k8 = wrk(url, 8, seconds, folder, wrk_prefix)
    finally:
        process.terminate()
        process.wait(10)
    return {"start_s": started, "start_cpu_s": cpu, "idle_mb": idle, "k1_p50": k1["p50"], "k1_rate": k1["rate"],
            "k8_rate": k8["rate"], "k8_p50": k8["p50"], "k8_p99": k8["p99"], "errors": k1["errors"] + k8["errors"]}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("repos", nargs="+", type=Path, help="checkouts, each with its .venv")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=5, help="length of each wrk run; 0: start and memory only")
    parser.add_argument("--pin", action="store_true", help="wrk on CPU 0, the hub on CPU 1")
    args = parser.parse_args()
    figures: dict[Path, list[dict[str, float]]] = {repo: [] for repo in args.repos}
    floors: list[float] = []
    print(f"# ab_hub {time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC, {os.cpu_count()} cores, "
          f"load {' '.join(Path('/proc/loadavg').read_text().split()[:3])}; pin={args.pin}")
    keys: tuple[str, ...] = ("start_s", "start_cpu_s", "idle_mb", "k1_p50", "k1_rate", "k8_rate", "k8_p50", "k8_p99",
                             "errors")
    if args.seconds == 0:
        keys = keys[:3]
    with Broker(persistence=False) as broker, tempfile.TemporaryDirectory() as tmp:
        for n in range(args.rounds):
            floor = floor_sqlite(Path(tmp), 1000)
            Path(tmp, "floor.sqlite3").unlink()
            floors.append(floor)
            for i, repo in enumerate(args.repos):
                got = one(repo, broker, Path(tmp) / f"{n}-{i}", args.seconds, args.pin)
                figures[repo].append(got)
                print(f"round {n} floor {floor:,.0f} commits/s load {Path('/proc/loadavg').read_text().split()[0]} "
                      f"{repo.name:>14}: " + " ".join(f"{k} {got[k]:.2f}" for k in keys), flush=True)
    print(f"median per build (floor median {statistics.median(floors):.0f} commits/s):")
    for repo, rows in figures.items():
        print(f"{repo.name:>14}: " + " ".join(f"{k} {statistics.median(r[k] for r in rows):.2f}" for k in keys))
    return 0


if __name__ == "__main__":
    sys.exit(main())
