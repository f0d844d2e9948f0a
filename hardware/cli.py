"""``vuoro printer``: a virtual printer, a test print, a status reading."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path

from .health import WORDS


def _virtual(args: argparse.Namespace) -> int:
    from .virtual import VirtualPrinter

    printer = VirtualPrinter(args.port, host=args.host, out=Path(args.out), width=args.width).start()
    if args.paper_out:
        printer.set_paper("out")
    elif args.paper_low:
        printer.set_paper("near_end")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    # SIGUSR1 cycles the paper ok → near end → out → ok, to rehearse staff alerts without a real roll.
    order = ["ok", "near_end", "out"]

    def cycle(*_: object) -> None:
        state = order[(order.index(printer.emulator.paper) + 1) % 3]
        printer.set_paper(state)
        print(f"paper: {state}", flush=True)

    signal.signal(signal.SIGUSR1, cycle)
    print(f"virtual printer on {printer.url} ({args.width} mm), receipts in {args.out}; "
          "SIGUSR1 cycles the paper state, Ctrl-C stops", flush=True)
    seen = 0
    while not stop.wait(0.2):
        receipts = printer.receipts
        for receipt in receipts[seen:]:
            state = "" if receipt.complete else " (paper ran out)"
            print(f"receipt {receipt.index}: {len(receipt.raw)} bytes{state}", flush=True)
        seen = len(receipts)
    printer.stop()
    return 0


def _test(args: argparse.Namespace) -> int:
    from .printer import Printer

    printer = Printer.from_url(args.url, **({"paper": args.width} if args.width else {}))
    result = printer.test_print()
    printer.close()
    if result.printed:
        print(f"printed a test receipt ({result.bytes_sent} bytes). Printer: {result.detail}.")
        return 0
    print(f"not printed: {result.reason}. Printer: {WORDS.get(result.state, result.state)}.")
    return 1


def _status(args: argparse.Namespace) -> int:
    from .printer import Printer

    printer = Printer.from_url(args.url)
    health = printer.status()
    printer.close()
    print(f"{args.url}: {health.detail} ({health.state})")
    return 0 if health.state in ("ok", "paper_low", "unknown") else 1


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="vuoro printer", description="Receipt printers: test, status, virtual.")
    sub = parser.add_subparsers(dest="command", required=True)
    virtual = sub.add_parser("virtual", help="run a virtual network printer that saves receipts as PNG")
    virtual.add_argument("--port", type=int, default=9100)
    virtual.add_argument("--host", default="127.0.0.1")
    virtual.add_argument("--out", default="receipts", help="folder for receipt PNG, text and raw bytes")
    virtual.add_argument("--width", type=int, choices=(80, 58), default=80)
    virtual.add_argument("--paper-out", action="store_true", help="start with no paper")
    virtual.add_argument("--paper-low", action="store_true", help="start with the paper near its end")
    test = sub.add_parser("test", help="print a test receipt with all Nordic characters")
    test.add_argument("url", help="e.g. tcp://10.0.0.40:9100, serial:///dev/ttyUSB0?baudrate=19200, usb://04b8:0e15")
    test.add_argument("--width", type=int, choices=(80, 58))
    status = sub.add_parser("status", help="read the printer's status (DLE EOT) and say it in words")
    status.add_argument("url")
    args = parser.parse_args(argv)
    try:
        return {"virtual": _virtual, "test": _test, "status": _status}[args.command](args)
    except ValueError as exc:  # a malformed URL or option
        print(f"vuoro printer: {exc}", file=sys.stderr)
        return 2
