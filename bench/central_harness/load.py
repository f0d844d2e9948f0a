"""One branch's visitors and staff: run inside the branch's network namespace, against its hub on loopback.

A kiosk takes ``--rate`` tickets a second (mostly the quick desk, some IT help and librarians); three
desks call the next visitor every ``--call-every`` seconds (calling next finishes the one before), the
librarian a third as often, and now and then a desk marks a no-show. Every request is one JSON line in
``--out``: wall time, what, HTTP status (0: no answer), milliseconds, the ticket's label. It runs until
SIGTERM and flushes each line, so a SIGKILLed run still leaves what it did.

Inside the namespace on purpose: a WAN cut must not cut the kiosk from its hub, as in a real branch.

The kiosk and the desks use the products' HTTP session (``vuoro.http_client``: idle connections dropped before the
hub drops them, a request whose connection ended before the answer sent once more) and every desk action carries
an Idempotency-Key, as the staff page's do: with the plain ``requests.Session`` of before, 5 of ≈ 13,000 desk calls
were lost at the hub's keep-alive edge (bench/RESULTS.md).

    python -m bench.central_harness.load --url http://127.0.0.1:8400 --out kiosk.jsonl
"""

from __future__ import annotations

import argparse
import json
import random
import signal
import threading
import time
import uuid
from typing import IO, Any

import requests

from vuoro.http_client import session as keep_alive_session

KIOSK = {"Authorization": "Bearer demo-kiosk1-token-change-me"}
STAFF = {"Authorization": "Bearer demo-staff-token-change-me"}
SERVICES = ["kvik"] * 8 + ["it", "bibliotekar"]
DESKS = {"kvik1": 1.0, "kvik2": 1.0, "borger1": 1.0, "bib1": 3.0}  # desk: its call interval, × --call-every
TIMEOUT_S = 10.0


class Recorder:
    def __init__(self, out: IO[str]):
        self.out = out
        self.lock = threading.Lock()

    def record(self, what: str, status: int, ms: float, **extra: Any) -> None:
        line = json.dumps({"t": time.time(), "what": what, "status": status, "ms": round(ms, 3), **extra})
        with self.lock:
            self.out.write(line + "\n")
            self.out.flush()


def timed(session: requests.Session, url: str, **kwargs: Any) -> tuple[int, float, Any]:
    started = time.perf_counter()
    try:
        answer = session.post(url, timeout=TIMEOUT_S, **kwargs)
        body = answer.json() if answer.headers.get("content-type", "").startswith("application/json") else None
        return answer.status_code, (time.perf_counter() - started) * 1000, body
    except (requests.RequestException, ValueError) as exc:
        return 0, (time.perf_counter() - started) * 1000, {"error": str(exc)[:200]}


def kiosk(url: str, rate: float, stop: threading.Event, rec: Recorder, seed: int) -> None:
    rng = random.Random(seed)
    session = keep_alive_session()
    due = time.monotonic()
    while not stop.is_set():
        stop.wait(max(0.0, due - time.monotonic()))
        if stop.is_set():
            return
        status, ms, body = timed(session, f"{url}/api/v1/tickets",
                                 json={"service": rng.choice(SERVICES), "language": "da"},
                                 headers={**KIOSK, "Idempotency-Key": uuid.uuid4().hex})
        rec.record("ticket", status, ms, label=(body or {}).get("ticket"),
                   error=None if status == 201 else str(body)[:200])
        # open loop: the next visitor comes when due, whether or not the hub was slow (no coordinated omission)
        due += 1.0 / rate
        if due < time.monotonic() - 5:
            due = time.monotonic()


def desk(url: str, counter: str, every: float, stop: threading.Event, rec: Recorder, seed: int) -> None:
    rng = random.Random(seed)
    session = keep_alive_session()
    stop.wait(rng.uniform(0, every))
    while not stop.is_set():
        action = "no-show" if rng.random() < 0.05 else "next"
        # the key makes a repeat safe: the hub answers it with the first call, never a second visitor
        status, ms, body = timed(session, f"{url}/api/v1/counters/{counter}/{action}",
                                 headers={**STAFF, "Idempotency-Key": uuid.uuid4().hex})
        rec.record(action, status, ms, counter=counter, error=str(body)[:200] if status == 0 else None)
        stop.wait(every)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--rate", type=float, default=2.0, help="tickets per second")
    parser.add_argument("--call-every", type=float, default=1.5, help="seconds between one desk's calls")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    with open(args.out, "a", encoding="utf-8") as out:
        rec = Recorder(out)
        threads = [threading.Thread(target=kiosk, args=(args.url, args.rate, stop, rec, args.seed))]
        threads += [threading.Thread(target=desk, args=(args.url, counter, factor * args.call_every, stop, rec,
                                                        args.seed * 100 + i))
                    for i, (counter, factor) in enumerate(DESKS.items())]
        for thread in threads:
            thread.start()
        while not stop.is_set():
            stop.wait(0.5)
        for thread in threads:
            thread.join(TIMEOUT_S + 1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
