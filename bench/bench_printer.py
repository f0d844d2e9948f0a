"""Receipt size and print latency against the virtual printer over real TCP.

    .venv/bin/python bench/bench_printer.py [--n 300]

Prints bytes per receipt for each layout (target: ≤ 1 KB per queue ticket,
no logo) and, for a queue ticket sent N times to the virtual printer on
loopback: time from ``print_receipt()`` to the first receipt byte and to the
last byte handed to the socket (p50/p95), with the floor measured in the
same run (a bare status round trip and a bare ``sendall`` on loopback).
"""

from __future__ import annotations

import argparse
import socket
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hardware.health import QUERY_ALL  # noqa: E402
from hardware.layout import render  # noqa: E402
from hardware.printer import Printer  # noqa: E402
from hardware.samples import all_samples, queue_ticket  # noqa: E402
from hardware.virtual import VirtualPrinter  # noqa: E402


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def ms(value: float) -> str:
    return f"{value * 1000:.2f} ms"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=300)
    n = parser.parse_args().n

    print("bytes per receipt (no logo; text + native QR/barcode commands)")
    for name, (receipt, mm) in all_samples().items():
        size = len(render(receipt, mm))
        target = "  target ≤ 1024: " + ("met" if size <= 1024 else "MISSED") if name.startswith("queue") else ""
        print(f"  {name:28s} {size:5d} B{target}")
    plain = len(render(queue_ticket("da", url=False), 80))
    print(f"  {'queue_ticket_80_da (no QR)':28s} {plain:5d} B")

    ticket = queue_ticket("da")
    t0 = time.perf_counter()
    for _ in range(200):
        render(ticket, 80)
    layout_each = (time.perf_counter() - t0) / 200

    with VirtualPrinter(0, render=False) as vp:
        printer = Printer(vp.url)
        first: list[float] = []
        last: list[float] = []
        total: list[float] = []
        conn = printer.connection
        original_write = conn.write
        mark: dict[str, float] = {}

        def timed_write(data: bytes) -> None:
            if data != QUERY_ALL and "first" not in mark:
                mark["first"] = time.perf_counter()
            original_write(data)

        conn.write = timed_write  # type: ignore[method-assign]
        printer.print_receipt(ticket)  # connect outside the measurement
        for _ in range(n):
            mark.clear()
            start = time.perf_counter()
            result = printer.print_receipt(ticket)
            end = time.perf_counter()
            assert result.printed, result.reason
            first.append(mark["first"] - start)
            last.append(result.seconds)
            total.append(end - start)
        vp.wait_for(n + 1, timeout=30)

        # Floor: one status round trip and one bare sendall of the same bytes on loopback.
        data = render(ticket, 80)
        sock = socket.create_connection(("127.0.0.1", vp.port))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        rtt: list[float] = []
        send: list[float] = []
        for _ in range(n):
            s = time.perf_counter()
            sock.sendall(QUERY_ALL)
            got = b""
            while len(got) < 4:
                got += sock.recv(4 - len(got))
            rtt.append(time.perf_counter() - s)
            s = time.perf_counter()
            sock.sendall(data)
            send.append(time.perf_counter() - s)
        sock.close()
        printer.close()

    print(f"\nqueue ticket to the virtual printer over TCP loopback, n={n} ({len(data)} B each)")
    print(f"  layout (render to bytes)          p50 {ms(layout_each)}")
    print(f"  call → first receipt byte sent    p50 {ms(statistics.median(first))}  p95 {ms(pct(first, 95))}"
          "   (target: touch → first byte p95 ≤ 150 ms)")
    print(f"  call → last byte sent             p50 {ms(statistics.median(last))}  p95 {ms(pct(last, 95))}")
    print(f"  call → result (with after-status) p50 {ms(statistics.median(total))}  p95 {ms(pct(total, 95))}")
    print(f"  floor: bare status round trip     p50 {ms(statistics.median(rtt))}  p95 {ms(pct(rtt, 95))}")
    print(f"  floor: bare sendall of the bytes  p50 {ms(statistics.median(send))}  p95 {ms(pct(send, 95))}")
    floor = statistics.median(rtt) + statistics.median(send)
    print(f"  ratio last-byte p50 / floor (1 round trip + 1 send) = {statistics.median(last) / floor:.1f}×")
    return 0


if __name__ == "__main__":
    sys.exit(main())
