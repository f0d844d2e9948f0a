"""Signage screen benchmark: start-up, memory, and call → screen-state latency.

    .venv/bin/python bench/bench_display.py [--calls 200] [--screens 1,10,50]

1. ``vuoro display --smoke`` as a real process (offscreen SDL, Mesa): time
   from launch to the first frame and to the frame with the full retained
   state, and its RSS then. Targets: ≤ 3 s, ≤ 200 MB.
2. Call latency: N screen clients (``SignageClient`` + ``SignageState``, as
   in the app) subscribed to one Mosquitto; a stand-in hub publishes calls
   (QoS 1); latency = publish → the call is the screen's current call.
   Screens run in several processes (screens are separate devices; one
   Python process would measure its own GIL). The floor is the same with bare
   paho subscribers that only timestamp the message. Target with 50 screens:
   p50 ≤ 5 ms, p99 ≤ 50 ms. CLOCK_MONOTONIC is shared by all processes.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import paho.mqtt.client as mqtt  # noqa: E402

from display import sample  # noqa: E402
from display.client import SignageClient  # noqa: E402
from display.state import SignageState  # noqa: E402
from toolkit.broker import Broker  # noqa: E402
from toolkit.fake_hub import FakeHub  # noqa: E402
from vuoro.mqtt import BrokerSettings, make_client  # noqa: E402
from vuoro.protocol import Topics  # noqa: E402


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


# -- 1. start-up and memory ------------------------------------------------------------


BARE_WINDOW = """
from kivy.config import Config
Config.set("graphics", "width", "1920"); Config.set("graphics", "height", "1080")
from kivy.app import App
from kivy.clock import Clock
from kivy.uix.label import Label
def rss_kb():
    return int(next(l for l in open("/proc/self/status") if l.startswith("VmRSS")).split()[1])
class Bare(App):
    def build(self):
        Clock.schedule_once(lambda dt: (print(rss_kb()), self.stop()), 0.5)
        return Label(text="floor")
Bare().run()
"""


def startup(broker: Broker, runs: int) -> dict[str, float]:
    topics = Topics("sonderbro", root="b" + uuid.uuid4().hex[:8])
    hub = FakeHub(broker.port, topics)
    hub.publish_all(sample.retained())
    env = {**os.environ, "SDL_VIDEODRIVER": "offscreen", "KIVY_NO_ARGS": "1", "KIVY_NO_CONSOLELOG": "1",
           "KIVY_NO_FILELOG": "1", "KIVY_NO_CONFIG": "1", "KIVY_HOME": tempfile.mkdtemp(prefix="vuoro-kivy-")}
    first, full, rss = [], [], []
    for _ in range(runs):
        started = time.monotonic()
        out = subprocess.run(
            [sys.executable, "-m", "vuoro.cli", "display", "--broker", broker.url, "--site", "sonderbro",
             "--root", topics.root, "--window", "1920x1080", "--no-sound", "--smoke"],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=True,
        ).stdout
        report = json.loads(out.strip().splitlines()[-1])
        first.append(report["first_frame"] - started)
        full.append(report["full_state"] - started)
        rss.append(report["rss_kb"] / 1024)
    # The floor: an empty Kivy window of the same size (SDL + the GL driver, here Mesa llvmpipe).
    script = Path(env["KIVY_HOME"]) / "bare_window.py"  # Kivy's App wants a source file, not -c
    script.write_text(BARE_WINDOW)
    bare = subprocess.run([sys.executable, str(script)], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=60, check=True).stdout
    hub.close()
    return {"first_frame_s": statistics.median(first), "full_state_s": statistics.median(full),
            "rss_mb": max(rss), "floor_rss_mb": int(bare.strip().splitlines()[-1]) / 1024}


# -- 2. call latency -------------------------------------------------------------------


def screens_worker(port: int, root: str, count: int, bare: bool, ready: mp.Event, done: mp.Event,
                   out: mp.Queue) -> None:
    """One process holding ``count`` screens; sends back every latency it saw (ms)."""
    topics = Topics("sonderbro", root=root)
    latencies: list[float] = []
    lock = threading.Lock()
    clients: list[object] = []
    if bare:
        for _ in range(count):
            c = make_client(BrokerSettings(f"mqtt://127.0.0.1:{port}"), name="a bare subscriber")
            connected = threading.Event()

            def on_message(cl: mqtt.Client, ud: object, msg: mqtt.MQTTMessage) -> None:
                now = time.monotonic_ns()
                sent = json.loads(msg.payload)["bench_t"]
                with lock:
                    latencies.append((now - sent) / 1e6)

            c.on_message = on_message
            c.on_subscribe = lambda *a, e=connected: e.set()
            c.on_connect = lambda cl, *a: cl.subscribe(topics.calls, qos=1)
            c.connect_now(10)
            c.loop_start()
            connected.wait(10)
            clients.append(c)
    else:
        for _ in range(count):
            state = SignageState(topics)

            def on_update(update: object, state: SignageState = state) -> None:
                now = time.monotonic_ns()
                call = state.current_call
                if update is not None and getattr(update, "kind", "") == "call" and call:
                    with lock:
                        latencies.append((now - call["bench_t"]) / 1e6)

            screen = SignageClient(f"mqtt://127.0.0.1:{port}", state, on_update=on_update)
            screen.start()
            screen.wait_connected(10)
            clients.append(screen)
        time.sleep(0.3)  # let the retained state of the subscription settle before calls flow
    ready.set()
    done.wait(600)
    time.sleep(0.5)  # the last QoS 1 deliveries
    for c in clients:
        if isinstance(c, SignageClient):
            c.stop()
        else:
            c.disconnect()  # type: ignore[attr-defined]
            c.loop_stop()  # type: ignore[attr-defined]
    out.put(latencies)


def latency(broker: Broker, screens: int, calls: int, bare: bool) -> dict[str, float]:
    root = "b" + uuid.uuid4().hex[:8]
    topics = Topics("sonderbro", root=root)
    hub = FakeHub(broker.port, topics)
    hub.publish_all(sample.retained())
    procs_n = min(screens, 5)
    per = [screens // procs_n + (1 if i < screens % procs_n else 0) for i in range(procs_n)]
    ctx = mp.get_context("fork")
    done = ctx.Event()
    out: mp.Queue = ctx.Queue()
    readies, procs = [], []
    for n in per:
        ready = ctx.Event()
        proc = ctx.Process(target=screens_worker, args=(broker.port, root, n, bare, ready, done, out))
        proc.start()
        readies.append(ready)
        procs.append(proc)
    for ready in readies:
        ready.wait(60)
    for i in range(calls):
        call = sample.call(f"K{i % 999 + 1:03d}", "kvik1")
        call["bench_t"] = time.monotonic_ns()
        hub.client.publish(f"{topics.base}/calls", json.dumps(call), qos=1)
        time.sleep(0.02)  # a busy site makes a few calls a minute; 50/s is already far beyond it
    done.set()
    values: list[float] = []
    for _ in procs:
        values += out.get(timeout=60)
    for proc in procs:
        proc.join(10)
    hub.close()
    return {"p50": pct(values, 50), "p99": pct(values, 99), "n": len(values), "expected": screens * calls}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--screens", default="1,10,50")
    parser.add_argument("--startup-runs", type=int, default=3)
    args = parser.parse_args()
    with Broker(persistence=False) as broker:
        print(f"machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}")
        s = startup(broker, args.startup_runs)
        print(f"display start → first frame        {s['first_frame_s'] * 1000:7.0f} ms   (target ≤ 3000 ms)")
        print(f"display start → full state drawn   {s['full_state_s'] * 1000:7.0f} ms   (target ≤ 3000 ms)")
        print(f"display RSS at full state          {s['rss_mb']:7.0f} MB   (target ≤ 200 MB)")
        ratio = s["rss_mb"] / s["floor_rss_mb"]
        print(f"  floor: empty Kivy window, same size {s['floor_rss_mb']:5.0f} MB   ratio {ratio:.2f}")
        print()
        print(f"call → screen state, {args.calls} calls, QoS 1 (ms)")
        print(f"{'screens':>8} {'p50':>7} {'p99':>7} {'floor p50':>10} {'floor p99':>10} {'ratio p50':>10} "
              f"{'ratio p99':>10} {'delivered':>10}")
        for n in (int(x) for x in args.screens.split(",")):
            real = latency(broker, n, args.calls, bare=False)
            floor = latency(broker, n, args.calls, bare=True)
            target = "   (target p50 ≤ 5, p99 ≤ 50)" if n == 50 else ""
            print(f"{n:>8} {real['p50']:7.2f} {real['p99']:7.2f} {floor['p50']:10.2f} {floor['p99']:10.2f} "
                  f"{real['p50'] / floor['p50']:10.2f} {real['p99'] / floor['p99']:10.2f} "
                  f"{real['n']:>5}/{real['expected']}{target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
