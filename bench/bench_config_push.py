"""Config push benchmark: from publishing a site config at the centre to the branch running on it.

Real parts on this machine: a private PostgreSQL, a private Mosquitto, the centre (``vuoro central``) and two
branch hubs (``vuoro hub`` with ``[central]``): one with ``heartbeat_s = 1``, one with the default 10 s (an idle
branch hears of a new version on its next uplink round trip; a busy one at once, its rows make the round trips).
Rounds alternate between the two branches (interleaved A/B); each publishes a version that renames a service
and measures:

- **applied**: publish (before the POST) → the centre's ``/api/v1/configs`` says the branch runs on it (the
  branch's report arrives from the restarted process);
- **serving**: publish → the hub's ``/api/v1/site`` shows the new name;
- **gap**: the longest time the hub's health did not answer during the restart in place;
- **staff**: an account changed at the centre → the branch holds its revision (no restart: read at each sign-in);
- **floor**: the same hub stopped and started by hand, in the same run: what the restart in place costs at least.

``--rate`` tickets/s at each branch while it runs (0: idle branches).

    .venv/bin/python bench/bench_config_push.py [--rounds 5] [--rate 0]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from toolkit.broker import Broker, free_port, fresh_root  # noqa: E402
from toolkit.central_process import ADMIN_TOKEN, CentralProcess, write_centre_config  # noqa: E402
from toolkit.hub_process import HubProcess  # noqa: E402
from toolkit.postgres import PostgresCluster  # noqa: E402

SITE = ROOT / "tests" / "sites" / "always_open.toml"
KIOSK = {"Authorization": "Bearer demo-kiosk1-token-change-me"}
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
ORIGINAL = 'da = "KVIK – hurtig hjælp"'


def site_file(folder: Path, bid: str, centre_port: int, heartbeat: float) -> tuple[str, Path]:
    token = f"{bid}-bench-token-0123456789"
    text = SITE.read_text(encoding="utf-8").replace('id = "sonderbro"', f'id = "{bid}"', 1)
    text += f'\n[central]\nurl = "http://127.0.0.1:{centre_port}"\ntoken = "{token}"\nheartbeat_s = {heartbeat}\n'
    path = folder / f"{bid}.toml"
    path.write_text(text, encoding="utf-8")
    return token, path


def kvik_name(hub: HubProcess) -> str | None:
    try:
        site = requests.get(f"{hub.url}/api/v1/site", timeout=1).json()
    except (requests.RequestException, ValueError):
        return None
    return next(s for s in site["services"] if s["id"] == "kvik")["names"]["da"]


def applied(centre: CentralProcess, bid: str) -> int | None:
    try:
        states = requests.get(f"{centre.url}/api/v1/configs", headers=ADMIN, timeout=2).json()["branches"]
    except (requests.RequestException, ValueError):
        return None
    return next(s for s in states if s["branch"] == bid)["applied"]


def one_push(centre: CentralProcess, hub: HubProcess, bid: str, text: str, version: int,
             name: str) -> tuple[float, float, float]:
    gap = longest = 0.0
    down_since: float | None = None
    t0 = time.monotonic()
    answer = requests.post(f"{centre.url}/api/v1/branches/{bid}/config", data=text.encode(),
                           headers={**ADMIN, "Content-Type": "text/plain"}, timeout=30)
    assert answer.status_code == 201 and answer.json()["version"] == version, answer.text
    t_applied = t_serving = None
    while t_applied is None or t_serving is None:
        now = time.monotonic()
        if now - t0 > 120:
            raise TimeoutError(f"{bid} did not apply version {version} within 120 s")
        seen = kvik_name(hub)
        if seen is None:
            down_since = down_since or now
        elif down_since is not None:
            gap, down_since = now - down_since, None
            longest = max(longest, gap)
        if t_serving is None and seen == name:
            t_serving = now - t0
        if t_applied is None and applied(centre, bid) == version:
            t_applied = time.monotonic() - t0
        time.sleep(0.02)
    return t_applied, t_serving, longest


def staff_round(centre: CentralProcess, hub: HubProcess, n: int) -> float:
    t0 = time.monotonic()
    answer = requests.put(f"{centre.url}/api/v1/staff/bench{n}", json={"role": "staff",
                                                                        "password": "bench-password-1"},
                          headers=ADMIN, timeout=30)
    answer.raise_for_status()
    revision = answer.json()["revision"]
    while True:
        health = requests.get(f"{hub.url}/api/v1/health", timeout=2).json()
        if health["uplink"]["config"]["staff_revision"] == revision:
            return time.monotonic() - t0
        if time.monotonic() - t0 > 60:
            raise TimeoutError("the staff revision did not arrive")
        time.sleep(0.02)


def load(hubs: list[HubProcess], rate: float, stop: threading.Event) -> None:
    while not stop.is_set():
        for hub in hubs:
            with contextlib.suppress(requests.RequestException):  # the hub restarting: a kiosk retries
                requests.post(f"{hub.url}/api/v1/tickets", json={"service": "it", "language": "da"},
                              headers={**KIOSK, "Idempotency-Key": uuid.uuid4().hex}, timeout=10)
        stop.wait(1 / rate)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5, help="pushes per branch")
    parser.add_argument("--rate", type=float, default=0.0, help="tickets per second per branch meanwhile")
    args = parser.parse_args()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"load at start {os.getloadavg()[0]:.1f}")
    work = Path(tempfile.mkdtemp(prefix="vuoro-bench-push-"))
    with PostgresCluster(fsync=True) as pg, Broker() as broker:
        database = pg.create_database("central")
        port = free_port()
        beats = {"fast": 1.0, "default": 10.0}
        sites = {bid: site_file(work, bid, port, beat) for bid, beat in beats.items()}
        centre = CentralProcess(write_centre_config(work / "centre.toml", database, sites), port=port).start()
        hubs = {bid: HubProcess(sites[bid][1], work / bid, broker.url, topic_root=fresh_root()).start()
                for bid in beats}
        stop = threading.Event()
        if args.rate:
            threading.Thread(target=load, args=(list(hubs.values()), args.rate, stop), daemon=True).start()
        results: dict[str, list[tuple[float, float, float]]] = {bid: [] for bid in beats}
        loads = []
        try:
            for n in range(1, args.rounds + 1):
                for bid in beats:  # interleaved: the same machine state for both
                    name = f"KVIK runde {n}"
                    text = sites[bid][1].read_text(encoding="utf-8").replace(ORIGINAL, f'da = "{name}"', 1)
                    results[bid].append(one_push(centre, hubs[bid], bid, text, n, name))
                    loads.append(os.getloadavg()[0])
            staff = [staff_round(centre, hubs["fast"], n) for n in range(args.rounds)]
            starts = []  # the floor: the same hub stopped and started by hand, in the same run
            for _ in range(3):
                hubs["fast"].stop()
                t0 = time.monotonic()
                hubs["fast"].start(timeout=120)
                starts.append(time.monotonic() - t0)
        finally:
            stop.set()
            for hub in hubs.values():
                hub.stop()
            centre.stop()
    print(f"load during the rounds: {min(loads):.1f}–{max(loads):.1f}; tickets/s per branch meanwhile: {args.rate:g}")
    for bid, rows in results.items():
        a, s, g = zip(*rows, strict=True)
        print(f"heartbeat {beats[bid]:g} s: publish→applied median {statistics.median(a):.2f} s (max {max(a):.2f}); "
              f"publish→serving median {statistics.median(s):.2f} s (max {max(s):.2f}); "
              f"restart gap median {statistics.median(g):.2f} s (max {max(g):.2f})")
    print(f"staff account → at the branch (heartbeat 1 s): median {statistics.median(staff):.2f} s "
          f"(max {max(staff):.2f})")
    print(f"floor: the same hub started by hand → first HTTP answer: median {statistics.median(starts):.2f} s "
          f"(max {max(starts):.2f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
