"""Hostile clients against the real hub process (issue 13): memory under a body attack, kiosks beside 2,000 streams.

    .venv/bin/python bench/bench_hostile.py [--tickets 1000] [--streams 2000]

(a) Four 300 MB POSTs without a token at once (two with a Content-Length, two
chunked): the hub's resident memory sampled every 20 ms, its peak printed
beside the target (≤ 100 MB throughout), with what each client got in before
the hub hung up.

(b) Kiosk ticket latency, one kiosk issuing one ticket after another over a
keep-alive connection, first with no stream open (the floor, same run), then
with 2,000 server-sent-event streams open from twenty addresses and read by
one client thread, as screens that keep up. The hub is started with the soft
limit of 1,024 open files a service gets without LimitNOFILE, so the run also
shows it raises its own. Printed beside the target (p99 ≤ 50 ms).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import uuid
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from toolkit.broker import Broker  # noqa: E402
from toolkit.hostile import (  # noqa: E402
    MB,
    Drain,
    PeakRss,
    body_attack,
    open_files,
    open_files_of,
    open_stream,
    raise_own_open_files,
)
from toolkit.hub_process import HubProcess  # noqa: E402

SITE = ROOT / "tests" / "sites" / "always_open.toml"
KIOSK = {"Authorization": "Bearer demo-kiosk1-token-change-me"}


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered) + 0.5) - 1))]


def verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


def tickets(hub: HubProcess, n: int) -> list[float]:
    """Milliseconds per ticket, one kiosk, one after another."""
    session = requests.Session()
    times = []
    for _ in range(n):
        started = time.perf_counter()
        answer = session.post(f"{hub.url}/api/v1/tickets", json={"service": "kvik", "language": "da"},
                              headers={**KIOSK, "Idempotency-Key": uuid.uuid4().hex}, timeout=10)
        times.append((time.perf_counter() - started) * 1000)
        assert answer.status_code == 201, answer.text
    session.close()
    return times


def rss_under_body_attack(broker: Broker, folder: Path) -> None:
    hub = HubProcess(SITE, folder / "bodies", broker.url, topic_root="b" + uuid.uuid4().hex[:8]).start()
    try:
        tickets(hub, 20)  # warm, as a hub that has served a morning
        with PeakRss(hub.process.pid) as rss:  # type: ignore[union-attr]
            started = time.perf_counter()
            answers = body_attack(hub.port)
            took = time.perf_counter() - started
            time.sleep(0.5)  # and a moment after
        after = tickets(hub, 20)
        peak = rss.peak / MB
        print(f"4 × 300 MB bodies without a token: answers {sorted(a[0] for a in answers)} in {took * 1000:.0f} ms; "
              f"most any client got in {max(a[2] for a in answers) / MB:.0f} MB")
        print(f"  hub RSS before {rss.start / MB:.0f} MB, peak during {peak:.0f} MB   "
              f"[target ≤ 100 MB throughout: {verdict(peak <= 100)}]; tickets after: p50 {pct(after, 50):.2f} ms")
    finally:
        hub.stop()


def streams_and_kiosks(broker: Broker, folder: Path, n_tickets: int, n_streams: int) -> None:
    raise_own_open_files(n_streams + 500)
    with open_files(1024):
        hub = HubProcess(SITE, folder / "streams", broker.url, topic_root="s" + uuid.uuid4().hex[:8]).start()
    sockets = []
    drain = None
    try:
        soft, hard = open_files_of(hub.process.pid)  # type: ignore[union-attr]
        print(f"hub started with a soft limit of 1024 open files; it runs with {soft} (hard {hard})")
        tickets(hub, 50)
        floor = tickets(hub, n_tickets)
        rss_before = PeakRss(hub.process.pid).start  # type: ignore[union-attr]
        started = time.perf_counter()
        per_address = 100  # [hub] streams_per_address: twenty "screens' addresses" of 100 streams each
        for i in range(n_streams):
            address = f"127.0.{1 + i // (per_address * 250)}.{2 + i // per_address % 250}"
            status, sock, _ = open_stream(hub.port, address)
            assert status == 200, f"stream {i + 1} was refused ({status})"
            sockets.append(sock)
        opened = time.perf_counter() - started
        refused, extra, _ = open_stream(hub.port, "127.0.9.9")
        sockets.append(extra)
        drain = Drain(sockets)
        rss_open = PeakRss(hub.process.pid).start  # type: ignore[union-attr]
        with PeakRss(hub.process.pid) as rss:  # type: ignore[union-attr]
            loaded = tickets(hub, n_tickets)
        print(f"{n_streams} streams opened in {opened:.1f} s; one more answered {refused}; "
              f"hub RSS {rss_before / MB:.0f} MB → {rss_open / MB:.0f} MB with the streams, "
              f"peak {rss.peak / MB:.0f} MB while issuing")
        print(f"kiosk ticket, no stream open (floor):  p50 {pct(floor, 50):.2f} ms, p99 {pct(floor, 99):.2f} ms "
              f"(n = {n_tickets})")
        print(f"kiosk ticket, {n_streams} streams open:    p50 {pct(loaded, 50):.2f} ms, p99 {pct(loaded, 99):.2f} ms, "
              f"max {max(loaded):.1f} ms   [target p99 ≤ 50 ms: {verdict(pct(loaded, 99) <= 50)}]; "
              f"the streams read {drain.received / MB:.1f} MB")
    finally:
        if drain:
            drain.close()
        for sock in sockets:
            sock.close()
        hub.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=1000)
    parser.add_argument("--streams", type=int, default=2000)
    args = parser.parse_args()
    with Broker() as broker, tempfile.TemporaryDirectory(prefix="vuoro-bench-hostile-") as tmp:
        rss_under_body_attack(broker, Path(tmp))
        print()
        streams_and_kiosks(broker, Path(tmp), args.tickets, args.streams)
    return 0


if __name__ == "__main__":
    sys.exit(main())
