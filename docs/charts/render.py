"""Render the statistics page's charts to PNG for the docs (Debian chromium, headless).

Generates a demo year of the sample site (bench/bench_stats.py's generator, fewer tickets), plus some
device status changes, serves it with the real app and the stats plugin, opens /stats/ for
November 2026 with a staff token, and screenshots the charts and the feedback page.

    .venv/bin/python docs/charts/render.py
"""

from __future__ import annotations

import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import uvicorn  # noqa: E402
from bench_stats import generate  # noqa: E402
from playwright.sync_api import sync_playwright  # noqa: E402

from server.api import create_app  # noqa: E402
from server.config import SAMPLE_SITE, load_config  # noqa: E402
from server.hub import Hub  # noqa: E402
from server.stats.records import DeviceStatusRecord, write_device_status  # noqa: E402
from server.store import SQLiteStore  # noqa: E402
from toolkit.broker import free_port  # noqa: E402

OUT = Path(__file__).resolve().parent
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


def main() -> int:
    folder = Path(tempfile.mkdtemp(prefix="vuoro-charts-"))
    db = folder / "hub.sqlite3"
    generate(db, 70_000)
    config = load_config(SAMPLE_SITE)
    store = SQLiteStore(db, config.site_id)
    for device, at, online, printer in [
        ("kiosk1", "2026-11-01T07:00:00+00:00", True, "ok"), ("kiosk1", "2026-11-12T10:05:00+00:00", True, "paper_out"),
        ("kiosk1", "2026-11-12T10:27:00+00:00", True, "ok"), ("kiosk1", "2026-11-19T08:00:00+00:00", False, None),
        ("kiosk1", "2026-11-19T09:40:00+00:00", True, "ok"), ("kiosk2", "2026-11-01T07:00:00+00:00", True, "ok"),
        ("screen1", "2026-11-01T07:00:00+00:00", True, None), ("screen1", "2026-11-25T13:00:00+00:00", False, None),
        ("screen1", "2026-11-25T13:12:00+00:00", True, None)]:
        write_device_status(store.db, DeviceStatusRecord(config.site_id, device, "display" if device.startswith(
            "screen") else "kiosk", at, online, printer))
    hub = Hub(config, store, clock=lambda: datetime(2026, 12, 1, 9, 0, tzinfo=UTC)).start()
    port = free_port()
    app = create_app(hub, plugins=("server.stats", "server.feedback"))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    url = f"http://127.0.0.1:{port}"
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1320, "height": 1000}, device_scale_factor=1)
            page.goto(f"{url}/stats/?from=2026-11-01&to=2026-11-30")
            page.wait_for_selector("#login:not([hidden])")
            page.screenshot(path=str(OUT / "stats-login.png"))
            page.fill("#token", "demo-staff-token-change-me")
            page.click("#token-form button")
            page.wait_for_selector("#chart-wait svg")
            page.screenshot(path=str(OUT / "stats-page.png"), full_page=True)
            for name in ("wait", "day", "level", "feedback"):
                page.locator(f"#chart-{name}").screenshot(path=str(OUT / f"chart-{name}.png"))
            page.goto(f"{url}/stats/?from=2026-01-01&to=2026-12-31")
            page.wait_for_selector("#chart-day svg")
            page.locator("#chart-day").screenshot(path=str(OUT / "chart-year-per-month.png"))
            tablet = browser.new_page(viewport={"width": 1280, "height": 800})
            tablet.goto(f"{url}/feedback/?lang=sv#token=demo-kiosk2-token-change-me")
            tablet.wait_for_selector("#faces button")
            tablet.screenshot(path=str(OUT / "feedback-tablet-sv.png"))
            tablet.click("#faces button[data-rating='4']")
            tablet.wait_for_selector("#thanks:not([hidden])")
            tablet.screenshot(path=str(OUT / "feedback-thanks-sv.png"))
            browser.close()
    finally:
        server.should_exit = True
        thread.join(10)
        hub.stop()
    for f in sorted(OUT.glob("*.png")):
        print(f.relative_to(ROOT))
    return 0


if __name__ == "__main__":
    sys.exit(main())
