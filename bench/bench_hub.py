"""Hub benchmark: tickets through the HTTP API, call → MQTT delivery, start-up and memory.

Runs the real ``vuoro hub`` process against a private Mosquitto on free
ports, with the durable store (WAL, synchronous FULL) in a temp folder. The
load comes from ``wrk`` (Debian package) so the client costs little CPU on
the same 2 cores; every request carries a fresh Idempotency-Key.

    .venv/bin/python bench/bench_hub.py [--seconds 10]

Each figure is printed beside its target (../shared/targets.md) and beside
the machine's floor measured in the same run (a bare SQLite commit, a bare
Mosquitto round trip).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from toolkit.broker import Broker  # noqa: E402
from toolkit.hub_process import HubProcess  # noqa: E402
from vuoro.mqtt import BrokerSettings, make_client  # noqa: E402

SITE = ROOT / "tests" / "sites" / "always_open.toml"
KIOSK_TOKEN = "demo-kiosk1-token-change-me"
STAFF = {"Authorization": "Bearer demo-staff-token-change-me"}

WRK_SCRIPT = """
local n = 0
local prefix = "%s"
request = function()
  n = n + 1
  local headers = {}
  headers["Authorization"] = "Bearer %s"
  headers["Content-Type"] = "application/json"
  headers["Idempotency-Key"] = prefix .. "-" .. tostring(n) .. "-" .. tostring(math.random(1, 1000000000))
  return wrk.format("POST", "/api/v1/tickets", headers, '{"service":"kvik","language":"da"}')
end
done = function(summary, latency, requests)
  io.write(string.format("RESULT %%d %%d %%d %%d %%d %%d %%d\\n", summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write
    + summary.errors.timeout))
end
"""


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered) + 0.5) - 1))]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def floor_sqlite(folder: Path, n: int = 2000) -> float:
    db = sqlite3.connect(folder / "floor.sqlite3", isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
    started = time.perf_counter()
    for i in range(n):
        db.execute("BEGIN IMMEDIATE")
        db.execute("INSERT INTO t (v) VALUES (?)", (str(i),))
        db.execute("COMMIT")
    return n / (time.perf_counter() - started)


def floor_mqtt(broker: Broker, n: int = 500) -> list[float]:
    got = threading.Event()
    times: list[float] = []
    sent = [0.0]

    def on_message(c, u, m):  # type: ignore[no-untyped-def]
        times.append((time.perf_counter() - sent[0]) * 1000)
        got.set()

    sub = make_client(BrokerSettings(broker.url), name="the floor's subscriber")
    sub.on_message = on_message
    sub.connect_now(10)
    sub.subscribe("floor/x", qos=1)
    sub.loop_start()
    pub = make_client(BrokerSettings(broker.url), name="the floor's publisher")
    pub.connect_now(10)
    pub.loop_start()
    time.sleep(0.3)
    for _ in range(n):
        got.clear()
        sent[0] = time.perf_counter()
        pub.publish("floor/x", b"x", qos=1)
        got.wait(2)
    for c in (sub, pub):
        c.disconnect()
        c.loop_stop()
    return times


def wrk(url: str, connections: int, seconds: int, folder: Path, prefix: tuple[str, ...] = ()) -> dict[str, float]:
    script = folder / f"issue-{connections}.lua"
    script.write_text(WRK_SCRIPT % (uuid.uuid4().hex[:8], KIOSK_TOKEN))
    out = subprocess.run([*prefix, "wrk", "-t", str(min(connections, 2)), "-c", str(connections), "-d", f"{seconds}s",
                          "-s", str(script), url], capture_output=True, text=True, check=True).stdout
    match = re.search(r"RESULT (\d+) (\d+) (\d+) (\d+) (\d+) (\d+) (\d+)", out)
    assert match, out
    reqs, duration_us, p50, p90, p99, worst, errors = (int(g) for g in match.groups())
    return {"rate": reqs / (duration_us / 1e6), "p50": p50 / 1000, "p90": p90 / 1000, "p99": p99 / 1000,
            "max": worst / 1000, "errors": errors, "requests": reqs}


def call_latency(hub: HubProcess, broker: Broker, screens: int, calls: int, folder: Path) -> list[float]:
    """Staff presses 'next' over HTTP → every screen has the call (ms, one value per screen per call).

    The screens are ``mosquitto_sub`` processes (C clients, one per screen) stamping each arrival with
    the wall clock: 50 Python clients in one process would measure their own GIL queue, not the hub.
    """
    topic = f"{hub.topic_root}/sonderbro/calls"
    subs = []
    for n in range(screens):
        out = open(folder / f"screen-{screens}-{n}.txt", "w")  # noqa: SIM115 - closed below
        subs.append((subprocess.Popen(["mosquitto_sub", "-h", "127.0.0.1", "-p", str(broker.port), "-q", "1",
                                       "-t", topic, "-C", str(calls), "-F", "%U|%p"], stdout=out), out))
    time.sleep(1.0 + screens * 0.02)  # let every screen subscribe
    session = requests.Session()
    sent: dict[str, float] = {}
    for i in range(calls):
        session.post(f"{hub.url}/api/v1/tickets", json={"service": "bibliotekar"},
                     headers={"Authorization": f"Bearer {KIOSK_TOKEN}", "Idempotency-Key": uuid.uuid4().hex})
        started = time.time()
        answer = session.post(f"{hub.url}/api/v1/counters/bib1/next", headers=STAFF).json()
        sent[answer["call"]["ticket"]] = started
        time.sleep(0.01 if i % 10 else 0.05)
    latencies: list[float] = []
    for process, out in subs:
        process.wait(30)
        out.close()
        for line in Path(out.name).read_text().splitlines():
            stamp, _, payload = line.partition("|")
            ticket = json.loads(payload)["ticket"]
            latencies.append((float(stamp) - sent[ticket]) * 1000)
    return latencies


def fill(hub: HubProcess, count: int) -> None:
    """Issue ``count`` tickets nobody calls: visitors piling up in the line."""
    from concurrent.futures import ThreadPoolExecutor

    def worker(n: int) -> None:
        session = requests.Session()
        headers = {"Authorization": f"Bearer {KIOSK_TOKEN}"}
        for _ in range(n):
            session.post(f"{hub.url}/api/v1/tickets", json={"service": "kvik"},
                         headers={**headers, "Idempotency-Key": uuid.uuid4().hex})

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(worker, [count // 8] * 8))


def growth(broker: Broker, folder: Path, seconds: int) -> None:
    """How the ticket latency grows with the number of visitors waiting in one line."""
    hub = HubProcess(SITE, folder / "growth", broker.url, topic_root="growth").start()
    waiting = 0
    for level in (0, 1000, 5000, 10000):
        fill(hub, level - waiting)
        waiting = level
        r = wrk(hub.url, 1, seconds, folder)
        waiting += r["requests"]
        print(f"  {level:>6,} waiting: 1 kiosk p50 {r['p50']:.2f} ms, p99 {r['p99']:.2f} ms; "
              f"RSS {rss_mb(hub.process.pid):.0f} MB")  # type: ignore[union-attr]
    hub.stop()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=10, help="length of each wrk run")
    parser.add_argument("--calls", type=int, default=200)
    args = parser.parse_args()
    if not shutil.which("wrk"):
        print("bench_hub needs wrk: apt-get install wrk", file=sys.stderr)
        return 2
    folder = Path(tempfile.mkdtemp(prefix="vuoro-bench-"))
    print(f"# hub benchmark — {platform.node()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"{time.strftime('%Y-%m-%d %H:%M')}")
    with Broker(persistence=False) as broker:
        sqlite_rate = floor_sqlite(folder)
        mqtt_rt = floor_mqtt(broker)
        print(f"floor: bare SQLite durable commits {sqlite_rate:,.0f}/s; bare Mosquitto QoS1 round trip "
              f"p50 {pct(mqtt_rt, 50):.2f} ms, p99 {pct(mqtt_rt, 99):.2f} ms")

        hub = HubProcess(SITE, folder / "hub", broker.url, topic_root="bench")
        started = time.perf_counter()
        hub.start()
        first_reply = time.perf_counter() - started
        time.sleep(1.0)
        idle = rss_mb(hub.process.pid)  # type: ignore[union-attr]
        print(f"hub start → first HTTP reply: {first_reply:.2f} s (target ≤ 1.5 s); idle RSS {idle:.0f} MB "
              "(target ≤ 60 MB)")

        peak = [idle]
        sampling = threading.Event()

        def sample() -> None:
            while not sampling.is_set():
                peak[0] = max(peak[0], rss_mb(hub.process.pid))  # type: ignore[union-attr]
                time.sleep(0.1)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        for connections, target in ((1, "p50 ≤ 3 ms"), (8, "≥ 1,000/s, p99 ≤ 20 ms")):
            r = wrk(hub.url, connections, args.seconds, folder)
            print(f"tickets via HTTP, {connections} kiosk(s): {r['rate']:,.0f}/s, p50 {r['p50']:.2f} ms, "
                  f"p90 {r['p90']:.2f} ms, p99 {r['p99']:.2f} ms, max {r['max']:.1f} ms, errors {r['errors']} "
                  f"(target {target}); vs bare commits ×{r['rate'] / sqlite_rate:.2f}")
        sampling.set()
        sampler.join()
        print(f"hub RSS under the 8-kiosk load: {peak[0]:.0f} MB (target ≤ 100 MB)")
        tickets = sqlite3.connect(folder / "hub" / "hub.sqlite3").execute("SELECT COUNT(*), COUNT(DISTINCT "
                                                                           "number) FROM tickets").fetchone()
        print(f"store check: {tickets[0]:,} tickets, {tickets[1]:,} distinct numbers")

        for screens in (1, 10, 50):
            lat = call_latency(hub, broker, screens, args.calls, folder)
            print(f"staff call → {screens} screen(s) have it: p50 {pct(lat, 50):.2f} ms, p99 {pct(lat, 99):.2f} ms "
                  f"(n={len(lat)}; target p50 ≤ 5 ms, p99 ≤ 50 ms with 50); "
                  f"floor ×{pct(lat, 50) / pct(mqtt_rt, 50):.1f}")
        hub.stop()
        print("growth with visitors waiting in one line:")
        growth(broker, folder, max(2, args.seconds // 3))
    shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
