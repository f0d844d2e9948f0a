"""Call → a hall of real screens: the project's signage client, one process per screen, against a real hub.

    .venv/bin/python bench/bench_screens.py [--screens 50] [--calls 100] [--rounds 2]

A real ``vuoro hub`` process and a private Mosquitto. Staff press "next" over HTTP (after a kiosk
ticket, as in bench_hub); the time runs from the moment the desk's request starts to the moment a
screen's state shows the called ticket as its current call. Each screen is its own process running
``display.client.SignageClient`` + ``display.state.SignageState`` exactly as ``vuoro display`` builds
them (its own subscription, its device id, its presence), only without the Kivy window.

The floor, in the same run: the same number of processes, each a bare paho client subscribed to the
``calls`` topic only, that stamps the message's arrival and does nothing else. Rounds alternate
floor, screens, floor, screens… so both see the same machine; the figures pool the rounds.
Targets (issue 19): screens p50 ≤ 1.5 × floor p50 and p99 ≤ 2 × floor p99.

Every process stamps with the wall clock (one machine: one clock); the load average is printed
beside the figures because this machine is shared.
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
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SITE = ROOT / "tests" / "sites" / "always_open.toml"
KIOSK = {"Authorization": "Bearer demo-kiosk1-token-change-me"}
STAFF = {"Authorization": "Bearer demo-staff-token-change-me"}


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered) + 0.5) - 1))]


def load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


# -- one screen (runs in its own process) ------------------------------------------------


def worker(kind: str, url: str, root: str, device: str) -> None:
    """Print "ready" once subscribed, then "<wall time> <ticket>" the first time each ticket is shown."""
    out_lock = threading.Lock()

    def say(line: str) -> None:
        with out_lock:
            sys.stdout.write(line + "\n")
            sys.stdout.flush()

    from vuoro.protocol import Topics

    topics = Topics("sonderbro", root=root)
    if kind == "bare":
        from vuoro.mqtt import BrokerSettings, make_client

        client = make_client(BrokerSettings(url), name="a bare subscriber")
        client.on_message = lambda c, u, m: say(f"{time.time():.6f} {json.loads(m.payload)['ticket']}")
        client.on_subscribe = lambda *a: say("ready")
        client.on_connect = lambda c, *a: c.subscribe(topics.calls, qos=1)
        client.start()
    else:
        from display.client import SignageClient
        from display.state import SignageState

        state = SignageState(topics)
        shown = [""]

        def on_update(update: object) -> None:
            now = time.time()
            call = state.current_call
            if call and call["ticket"] != shown[0]:
                shown[0] = call["ticket"]
                say(f"{now:.6f} {call['ticket']}")

        screen = SignageClient(url, state, device=device, on_update=on_update)
        screen.start()
        screen.wait_connected(30)
        deadline = time.monotonic() + 30
        while not state.complete and time.monotonic() < deadline:  # the retained picture is in
            time.sleep(0.05)
        say("ready")
    started = time.process_time()
    sys.stdin.read()  # until the bench closes our stdin
    say(f"cpu {time.process_time() - started:.6f}")  # this process's CPU from ready to the end: its work


# -- the bench ---------------------------------------------------------------------------


def start_screens(kind: str, count: int, url: str, root: str, folder: Path) -> list[tuple[subprocess.Popen, Path]]:
    procs = []
    for n in range(count):
        path = folder / f"{kind}-{uuid.uuid4().hex[:6]}-{n}.txt"
        with open(path, "w") as out:
            procs.append((subprocess.Popen([sys.executable, __file__, "--worker", kind, url, root, f"screen-{n}"],
                                           stdin=subprocess.PIPE, stdout=out, cwd=ROOT), path))
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if all("ready" in path.read_text() for _, path in procs):
            return procs
        time.sleep(0.2)
    raise RuntimeError(f"{kind} screens did not get ready in time")


def stop_screens(procs: list[tuple[subprocess.Popen, Path]]) -> dict[str, list[float]]:
    """Each ticket's arrival times, one per screen."""
    time.sleep(0.5)  # the last deliveries
    for proc, _ in procs:
        proc.stdin.close()  # type: ignore[union-attr]
    seen: dict[str, list[float]] = {}
    cpu: list[float] = []
    again = 0
    for proc, path in procs:
        proc.wait(30)
        shown: set[str] = set()
        for line in path.read_text().splitlines():
            if line.startswith("cpu "):
                cpu.append(float(line.split()[1]))
            elif line != "ready":
                stamp, ticket = line.split()
                if ticket in shown:
                    again += 1  # the screen went back to an older call and then forward again: a glitch
                    continue
                shown.add(ticket)
                seen.setdefault(ticket, []).append(float(stamp))
    if again:
        print(f"  !! {again} times a screen showed a call again after showing another one")
    seen["_cpu"] = cpu
    return seen


def drive(hub_url: str, calls: int) -> dict[str, float]:
    """Staff call ``calls`` tickets, one after another: ticket → when the 'next' request started."""
    import requests

    session = requests.Session()
    sent: dict[str, float] = {}
    for i in range(calls):
        session.post(f"{hub_url}/api/v1/tickets", json={"service": "bibliotekar"},
                     headers={**KIOSK, "Idempotency-Key": uuid.uuid4().hex})
        started = time.time()
        answer = session.post(f"{hub_url}/api/v1/counters/bib1/next", headers=STAFF).json()
        sent[answer["call"]["ticket"]] = started
        time.sleep(0.02 if i % 10 else 0.06)
    return sent


def round_of(kind: str, count: int, calls: int, hub_url: str, broker_url: str, root: str,
             folder: Path) -> tuple[list[float], int]:
    procs = start_screens(kind, count, broker_url, root, folder)
    time.sleep(1.0)  # quiet after the start-up storm
    sent = drive(hub_url, calls)
    seen = stop_screens(procs)
    cpu = seen.pop("_cpu")
    latencies = [(t - sent[ticket]) * 1000 for ticket, times in seen.items() if ticket in sent for t in times]
    print(f"  {kind}: CPU per call per screen {sum(cpu) / max(1, len(cpu)) / len(sent) * 1e6:.0f} µs "
          f"(process time from ready to the end, mean of {len(cpu)})")
    return latencies, len(sent) * count


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        worker(*sys.argv[2:6])
        return 0
    parser = argparse.ArgumentParser()
    parser.add_argument("--screens", type=int, default=50)
    parser.add_argument("--calls", type=int, default=100, help="calls per round")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--only", choices=("bare", "screen"), help="one kind only (no floor)")
    args = parser.parse_args()

    from toolkit.broker import Broker
    from toolkit.hub_process import HubProcess

    folder = Path(tempfile.mkdtemp(prefix="vuoro-bench-screens-"))
    git = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout
    print(f"# call → {args.screens} real screens — {platform.node()}, {os.cpu_count()} cores, Python "
          f"{platform.python_version()}, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
          f"commit {git.strip()}, load {load()}")
    results: dict[str, list[float]] = {"bare": [], "screen": []}
    expected = {"bare": 0, "screen": 0}
    kinds = (args.only,) if args.only else ("bare", "screen")
    with Broker(persistence=False) as broker:
        hub = HubProcess(SITE, folder / "hub", broker.url, topic_root="bench").start(timeout=90)
        try:
            for r in range(args.rounds):
                for kind in kinds:
                    lat, want = round_of(kind, args.screens, args.calls, hub.url, broker.url, "bench", folder)
                    results[kind] += lat
                    expected[kind] += want
                    print(f"  round {r + 1} {kind:>6}: p50 {pct(lat, 50):6.2f} ms  p99 {pct(lat, 99):6.2f} ms  "
                          f"max {max(lat):6.1f} ms  ({len(lat)}/{want}; load {load()})", flush=True)
        finally:
            hub.stop()
    for kind in kinds:
        lat = results[kind]
        print(f"{'floor (bare paho, calls only)' if kind == 'bare' else 'real screens (SignageClient)':<32}"
              f" p50 {pct(lat, 50):6.2f} ms  p99 {pct(lat, 99):6.2f} ms  n {len(lat)}/{expected[kind]}")
    if not args.only:
        floor, real = results["bare"], results["screen"]
        print(f"ratio screens / floor: p50 ×{pct(real, 50) / pct(floor, 50):.2f} (target ≤ 1.5), "
              f"p99 ×{pct(real, 99) / pct(floor, 99):.2f} (target ≤ 2); load at the end {load()}")
    shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
