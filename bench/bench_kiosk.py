"""Kiosk benchmark: touch on a service → first receipt byte at the virtual printer, start-up, memory.

    SDL_VIDEODRIVER=offscreen .venv/bin/python bench/bench_kiosk.py [--n 100]

Through the real hub (subprocess), a real Mosquitto and the virtual printer.
The touch is a UnitTestTouch dispatched through the window onto the real
tile; the clock starts just before it and stops when the first byte that is
not a status query reaches the printer's socket.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
for key, value in {"KIVY_NO_ARGS": "1", "KIVY_NO_CONSOLELOG": "1", "KIVY_NO_FILELOG": "1", "KIVY_NO_CONFIG": "1",
                   "SDL_VIDEODRIVER": "offscreen"}.items():
    os.environ.setdefault(key, value)
os.environ.setdefault("KIVY_HOME", tempfile.mkdtemp(prefix="vuoro-kivy-"))

STATUS_QUERY = b"\x10\x04"


def rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=100)
    args = parser.parse_args()
    started = time.perf_counter()
    from kivy.config import Config

    Config.set("graphics", "width", "800")
    Config.set("graphics", "height", "480")

    from hardware.virtual import VirtualPrinter
    from kiosk.app import KioskApp
    from kiosk.config import KioskConfig
    from kiosk.driver import Driver
    from toolkit.broker import Broker
    from toolkit.hub_process import HubProcess
    from toolkit.kiosk_screenshots import demo_site

    tmp = Path(tempfile.mkdtemp(prefix="vuoro-bench-kiosk-"))
    with Broker() as broker, VirtualPrinter() as printer:
        first_byte: list[float] = []
        arrived = threading.Event()
        make_session = printer.emulator.session

        def session():  # type: ignore[no-untyped-def]
            inner = make_session()
            feed = inner.feed

            def timed(data: bytes) -> bytes:
                if data and not data.startswith(STATUS_QUERY) and not arrived.is_set():
                    first_byte.append(time.perf_counter())
                    arrived.set()
                return feed(data)

            inner.feed = timed
            return inner

        printer.emulator.session = session
        hub = HubProcess(demo_site(tmp), tmp, broker.url).start()
        try:
            url = hub.url
            t0 = time.perf_counter()
            app = KioskApp(KioskConfig(hub=url, token="demo-kiosk1-token-change-me", broker=broker.url,
                                       printer=printer.url, fullscreen=False))
            d = Driver(app, (800, 480))  # builds, starts and draws the first frame
            first_frame = time.perf_counter() - t0
            d.wait(lambda: app.screen("home").ids.tiles.children, 15, "tiles")
            with_tiles = time.perf_counter() - t0
            import_to_frame = time.perf_counter() - started
            tile = next(t for t in app.screen("home").ids.tiles.children if t.service == "kvik")
            latencies = []
            for i in range(args.n):
                app.go("home")
                d.pump(1)
                arrived.clear()
                first_byte.clear()
                count = len(printer.receipts)
                t = time.perf_counter()
                d.tap(tile)
                if not arrived.wait(10):
                    raise TimeoutError(f"no receipt byte for touch {i}")
                latencies.append((first_byte[0] - t) * 1000)
                printer.wait_for(count + 1, 10)
                d.wait(lambda: app.screen("ticket").printed is not None and app.sm.current == "ticket", 10)
            rss = rss_mb()
            d.stop()
        finally:
            hub.stop()
    latencies.sort()
    p50 = statistics.median(latencies)
    p95 = latencies[int(0.95 * (len(latencies) - 1))]
    print(f"touch → first receipt byte ({args.n} touches): p50 {p50:.1f} ms, p95 {p95:.1f} ms, "
          f"max {latencies[-1]:.1f} ms   target p95 ≤ 150 ms")
    print(f"app start → first frame: {first_frame:.2f} s (with services from the hub {with_tiles:.2f} s; "
          f"from process start incl. Kivy import {import_to_frame:.2f} s)   target ≤ 3 s")
    print(f"RSS after {args.n} tickets: {rss:.0f} MB   target ≤ 200 MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
