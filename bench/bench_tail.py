"""The busy machine's tail: 8 kiosks on a quiet machine, then with a CPU load the bench starts and stops.

    .venv/bin/python bench/bench_tail.py [--seconds 8] [--rounds 2] [--load-nice 0] [--hub-nice -5]

A real ``vuoro hub`` process (durable store, private Mosquitto) and ``wrk`` with 8 connections issuing
tickets, as bench_hub. Each round runs the 8 kiosks twice: alone ("quiet"), then beside one busy
process per core that the bench starts for that run and stops after it ("load"; ``--load-nice`` sets
their niceness). Target (issue 19): 8-kiosk p99 under load ≤ 3 × the quiet p99 of the same round.
The hub starts at nice -5, as its systemd unit starts it (``--hub-nice 0``: as before issue 19); a
negative niceness needs root, so run it as root or with CAP_SYS_NICE to see the deployed figure.

To find where a slow ticket's time goes, the hub runs with ``bench/tail_probe`` on its PYTHONPATH (a
``sitecustomize`` that records every garbage collection, each writer batch with its queue wait and its
commit, and the event loop's delay between the writer's answer and the handler running again) and the
bench reads each hub thread's run-queue wait from /proc/<pid>/task/*/schedstat. All of it is printed
per run beside the load average: the machine is shared, so read the ratios of one round.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bench_hub import SITE, wrk  # noqa: E402
from toolkit.broker import Broker  # noqa: E402
from toolkit.hub_process import HubProcess  # noqa: E402

BUSY = "import os, sys\nos.nice(int(sys.argv[1]))\nwhile True:\n    pass\n"


def load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def pct(values: list[float], p: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered) + 0.5) - 1))]


def schedstat(pid: int) -> dict[int, tuple[int, int]]:
    """Each thread's (ns on a CPU, ns waiting on a run queue)."""
    out = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            run, wait, _ = (int(x) for x in (task / "schedstat").read_text().split())
        except (OSError, ValueError):
            continue
        out[int(task.name)] = (run, wait)
    return out


def one_run(hub: HubProcess, seconds: int, folder: Path, busy: int, nice: int, prefix: tuple[str, ...]) -> dict:
    workers = [subprocess.Popen([sys.executable, "-c", BUSY, str(nice)]) for _ in range(busy)]
    try:
        time.sleep(0.5 if busy else 0.0)  # the load is running before the kiosks start
        pid = hub.process.pid  # type: ignore[union-attr]
        before = schedstat(pid)
        started = time.monotonic()
        result = wrk(hub.url, 8, seconds, folder, prefix)
        ended = time.monotonic()
        after = schedstat(pid)
        result["load"] = load()
    finally:
        for w in workers:
            w.kill()
        for w in workers:
            w.wait()
    waits = sorted(((after[t][1] - before.get(t, (0, 0))[1]) / 1e6, (after[t][0] - before.get(t, (0, 0))[0]) / 1e6)
                   for t in after)
    result["window"] = (started, ended)
    result["runq_wait_ms"] = sum(w for w, _ in waits)
    result["cpu_ms"] = sum(c for _, c in waits)
    result["busiest_threads"] = sorted(waits, key=lambda x: -x[1])[:3]  # (wait, cpu) of the 3 busiest
    return result


def probe_summary(records: dict, window: tuple[float, float]) -> str:
    lo, hi = window
    gcs = [r for r in records["gc"] if lo <= r[0] <= hi]
    batches = [r for r in records["batch"] if lo <= r[0] <= hi]
    resumes = [r[1] * 1000 for r in records["resume"] if lo <= r[0] <= hi]
    gc_ms = [r[1] * 1000 for r in gcs]
    waited = [r[1] * 1000 for r in batches]
    took = [r[2] * 1000 for r in batches]
    commit = [r[3] * 1000 for r in batches if r[3]]
    return (f"    GC: {len(gcs)} collections, {sum(gc_ms):.1f} ms in all, longest {max(gc_ms, default=0):.2f} ms "
            f"(gen2: {sum(1 for r in gcs if r[2] == 2)})\n"
            f"    writer: {len(batches)} batches of {sum(r[4] for r in batches) / max(1, len(batches)):.1f} jobs; "
            f"queue wait p50 {pct(waited, 50):.2f} / p99 {pct(waited, 99):.2f} / max {max(waited, default=0):.1f} ms; "
            f"batch p99 {pct(took, 99):.2f} / max {max(took, default=0):.1f} ms; "
            f"commit p50 {pct(commit, 50):.2f} / p99 {pct(commit, 99):.2f} / max {max(commit, default=0):.1f} ms\n"
            f"    answer → handler runs again (event loop): p50 {pct(resumes, 50):.2f} / p99 {pct(resumes, 99):.2f} / "
            f"max {max(resumes, default=0):.1f} ms")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=8, help="length of each wrk run")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--load-nice", type=int, default=0, help="niceness of the competing busy processes")
    parser.add_argument("--busy", type=int, default=os.cpu_count() or 2, help="busy processes (default: cores)")
    parser.add_argument("--hub-nice", type=int, default=-5,
                        help="start the hub under nice -n N, as deploy/systemd/vuoro-hub.service does (Nice=-5)")
    parser.add_argument("--wrk-nice", type=int, help="niceness of wrk (default: the hub's: kiosks are other devices, "
                        "their CPU is not the hub's)")
    parser.add_argument("--switch", type=float, help="experiment: the hub's GIL switch interval (s) instead of its own")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        print("bench_tail needs wrk: apt-get install wrk", file=sys.stderr)
        return 2
    wrap = ["nice", "-n", str(args.hub_nice)] if args.hub_nice else []  # a negative niceness needs root
    wrk_nice = args.hub_nice if args.wrk_nice is None else args.wrk_nice
    wrk_prefix = ("nice", "-n", str(wrk_nice)) if wrk_nice else ()
    folder = Path(tempfile.mkdtemp(prefix="vuoro-bench-tail-"))
    git = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout
    print(f"# 8 kiosks, quiet and busy — {platform.node()}, {os.cpu_count()} cores, Python "
          f"{platform.python_version()}, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, commit {git.strip()}; "
          f"load: {args.busy} busy processes at nice {args.load_nice}; hub at nice {args.hub_nice}, wrk at {wrk_nice}"
          f"{f', switch interval {args.switch} s' if args.switch else ''}; load average {load()}")
    probe_out = folder / "probe.json"
    env = {"PYTHONPATH": os.pathsep.join([str(ROOT / "bench" / "tail_probe"), str(ROOT)]),
           "VUORO_PROBE_OUT": str(probe_out), **({"VUORO_PROBE_SWITCH": str(args.switch)} if args.switch else {})}
    runs = []
    with Broker(persistence=False) as broker:
        hub = HubProcess(SITE, folder / "hub", broker.url, topic_root="tail", env=env,
                         wrap=wrap).start(timeout=90)
        time.sleep(1.0)
        try:
            wrk(hub.url, 8, 2, folder)  # warm up
            for r in range(args.rounds):
                for name, busy in (("quiet", 0), ("load", args.busy)):
                    res = one_run(hub, args.seconds, folder, busy, args.load_nice, wrk_prefix)
                    res["name"], res["round"] = name, r + 1
                    runs.append(res)
                    print(f"round {r + 1} {name:>5}: {res['rate']:,.0f}/s, p50 {res['p50']:.2f} ms, "
                          f"p99 {res['p99']:.2f} ms, max {res['max']:.1f} ms, errors {res['errors']} "
                          f"(load average {res['load']})", flush=True)
                quiet, busy_run = runs[-2], runs[-1]
                print(f"round {r + 1}: p99 under load / quiet = ×{busy_run['p99'] / quiet['p99']:.2f} (target ≤ 3)")
        finally:
            hub.stop()
    records = json.loads(probe_out.read_text()) if probe_out.exists() else None
    print("where the time went (per run):")
    for res in runs:
        requests = max(1, res["requests"])
        print(f"  round {res['round']} {res['name']}: hub threads waited {res['runq_wait_ms']:.0f} ms on a run queue "
              f"({res['runq_wait_ms'] / requests * 1000:.0f} µs per ticket) and ran {res['cpu_ms']:.0f} ms "
              f"({res['cpu_ms'] / requests * 1000:.0f} µs per ticket); busiest threads (wait, cpu ms): "
              + ", ".join(f"({w:.0f}, {c:.0f})" for w, c in res["busiest_threads"]))
        if records:
            print(probe_summary(records, res["window"]))
    shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
