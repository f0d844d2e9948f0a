"""Benchmark: the phone ticket page's first load, and notifications sent per second without slowing tickets.

A real hub in this process (SQLite file, writer thread, Mosquitto on a free port, uvicorn on loopback) and
Debian's Chromium at phone size: each run is a fresh browser context (nothing cached), from ``/phone/?d=<code>``
to the services drawn; bytes are every response body the page loaded. Then the notifier (``server/phone/
notify.py``) sends e-mails to a real SMTP server (aiosmtpd) and texts to a local HTTP gateway stand-in, while
the writer hands out tickets: tickets' time per command with and without the storm.

    .venv/bin/python bench/bench_phone.py [--loads 10] [--messages 300]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import tomllib
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from server.config import SAMPLE_SITE, parse_config  # noqa: E402
from server.phone.notify import Contact, Message  # noqa: E402
from toolkit.broker import Broker, free_port  # noqa: E402
from toolkit.fixtures import CHROMIUM, CHROMIUM_FLAGS  # noqa: E402
from toolkit.hub_in_process import DEMO_STAFF_BLOCK, running_hub  # noqa: E402


def main() -> int:
    args = argparse.ArgumentParser()
    args.add_argument("--loads", type=int, default=10)
    args.add_argument("--messages", type=int, default=300)
    args.add_argument("--throttle", action="store_true",
                      help="also load over an emulated mobile link (1.6 Mbit/s down, 150 ms round trip)")
    opts = args.parse_args()
    from aiosmtpd.controller import Controller
    from playwright.sync_api import sync_playwright

    class Inbox:
        count = 0

        async def handle_DATA(self, server, session, envelope):  # noqa: N802, ANN001, ANN201
            Inbox.count += 1
            return "250 OK"

    smtp_port = free_port()
    controller = Controller(Inbox(), hostname="127.0.0.1", port=smtp_port)
    controller.start()
    with tempfile.TemporaryDirectory() as tmp, Broker() as broker:
        broker.start()
        data = tomllib.loads(SAMPLE_SITE.read_text(encoding="utf-8"))
        data["hub"]["broker"] = broker.url
        data["hub"]["database"] = f"sqlite:///{Path(tmp) / 'hub.sqlite3'}"
        data["staff"] = DEMO_STAFF_BLOCK
        data["notify"] = {"smtp_host": "127.0.0.1", "smtp_port": smtp_port}
        with running_hub(parse_config(data, Path(tmp) / "site.toml")) as hub:
            code = hub.app.state.phone_door.codes.current(hub.hub.clock())
            # A/B, interleaved: "system" is the page as shipped (the phone's own fonts); "roboto" puts the screens'
            # web font back on the phone page (as before 2026-11-30) by appending the old rule to signage.css.
            old_rule = 'html.phone-page, html.phone-page body { font-family: "Vuoro Roboto", sans-serif; }'
            links = [("loopback", None)] + ([("mobile", {"offline": False, "latency": 150,
                                                         "downloadThroughput": 1_600_000 / 8,
                                                         "uploadThroughput": 750_000 / 8})] if opts.throttle else [])
            with sync_playwright() as p:
                chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS, headless=True)
                for link, conditions in links:
                    got: dict[str, tuple[list[float], list[int], list[int]]] = {"system": ([], [], []),
                                                                                "roboto": ([], [], [])}
                    for i in range(opts.loads * 2):
                        variant = ("system", "roboto")[i % 2]
                        times, sizes, font_sizes = got[variant]
                        context = chromium.new_context(viewport={"width": 390, "height": 844})
                        page = context.new_page()
                        if conditions:
                            cdp = context.new_cdp_session(page)
                            cdp.send("Network.enable")
                            cdp.send("Network.emulateNetworkConditions", conditions)
                        if variant == "roboto":
                            page.route("**/signage.css", lambda route: route.fulfill(
                                response=route.fetch(), body=route.fetch().text() + old_rule))
                        loaded: list[tuple[str, int]] = []
                        page.on("response", lambda r, loaded=loaded: loaded.append(
                            (r.url, len(r.body()) if r.ok else 0)))
                        began = time.perf_counter()
                        page.goto(f"{hub.url}/phone/?d={code}")
                        page.wait_for_selector("button.service")
                        page.evaluate("document.fonts.ready.then(() => 1)")  # drawn in its final letters
                        times.append(time.perf_counter() - began)
                        page.wait_for_load_state("networkidle")
                        sizes.append(sum(n for _, n in loaded))
                        font_sizes.append(sum(n for url, n in loaded if url.endswith((".ttf", ".woff", ".woff2"))))
                        context.close()
                    for variant, (times, sizes, font_sizes) in got.items():
                        print(f"phone page first load, {link}, {variant} fonts (fresh context): median "
                              f"{statistics.median(times) * 1000:.0f} ms, max {max(times) * 1000:.0f} ms over "
                              f"{len(times)}; {statistics.median(sizes) / 1024:.0f} KiB, of which fonts "
                              f"{statistics.median(font_sizes) / 1024:.0f} KiB")
                chromium.close()

            ids: list[str] = []

            def issue_times(n: int) -> list[float]:
                spent = []
                for _ in range(n):
                    began = time.perf_counter()
                    ids.append(hub.hub.call(lambda engine, now: engine.issue("kvik", "da", now)).ticket.id)
                    spent.append(time.perf_counter() - began)
                return spent

            quiet = issue_times(max(200, opts.messages))
            notifier = hub.app.state.notifier
            # Contacts on waiting tickets far from the front (a contact on a ticket that is gone is forgotten).
            chosen = ids[-opts.messages:]
            for i, tid in enumerate(chosen):
                notifier.contacts[tid] = Contact(tid, "email", f"v{i}@example.org", sent={"near", "called"})
            began = time.perf_counter()
            for i, tid in enumerate(chosen):
                notifier.outbox.put(Message(tid, "email", f"v{i}@example.org", "K001: test", "K001: test"))
            busy = issue_times(200)
            while Inbox.count < opts.messages and time.perf_counter() - began < 120:
                time.sleep(0.01)
            spent = time.perf_counter() - began
            print(f"e-mails through a local SMTP server: {Inbox.count} in {spent:.2f} s = {Inbox.count / spent:.0f}/s "
                  f"(one connection per message, one sending thread)")
            print(f"a ticket on the writer: median {statistics.median(quiet) * 1000:.2f} ms quiet, "
                  f"{statistics.median(busy) * 1000:.2f} ms while the e-mails went out")
    controller.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
