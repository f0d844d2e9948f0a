"""Online booking benchmark: the morning release (issue 17; ../shared/targets.md "Online booking").

At 08:00 a new day's times open on the public booking page and ``--citizens`` people (500) try to book at once.
The real ``vuoro hub`` process (its test clock set half a minute before 08:00), a private Mosquitto, the durable
store (WAL, synchronous FULL). Each citizen, released together at 08:00: asks for the new day's free times
(``GET /api/v1/public/slots``), picks one at random and books it (``POST /api/v1/public/bookings`` with a name, a
phone number and an Idempotency-Key); told "full", they ask again and pick another time, up to 5 tries. The
citizens are served by ``--concurrency`` keep-alive connections (a browser keeps one). The client shares the 2
cores with the hub, so it must cost little: by default (``--client asyncio``) one asyncio loop speaking raw
HTTP/1.1 on its connections; ``--client threads`` is the older client (a thread and a ``requests`` session per
connection), which spent much of the machine on itself. The run prints the CPU seconds the client and the hub
each used, so a figure can be read as "the hub got this share of the machine". ``--pin`` runs the client on
CPU 0 and the hub on CPU 1 (taskset / sched_setaffinity).

The site is the test site with citizen service booked online (a name and a phone, ``opens_at = "08:00"``,
28 days ahead) and 8 places per 15-minute slot, 10:00–18:00 (256 places: fewer than the citizens, so many
lose and must be told so). All citizens come from 127.0.0.1 here, so the per-address limit is raised for the
run (``[bookings] online_burst``); a real morning has one address per household.

    .venv/bin/python bench/bench_booking.py [--citizens 500] [--concurrency 16] [--client asyncio|threads] [--pin]

Prints bookings/s (bookings made / seconds from the release to the last answer), the booking requests'
latency p50/p99 (every POST, won or lost), the listing's p99, and checks afterwards, through the staff API and
in the store, that no place holds more bookings than it has places. Floor in the same run: a bare SQLite
durable commit.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import re
import sqlite3
import sys
import tempfile
import threading
import time
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from toolkit.broker import Broker  # noqa: E402
from toolkit.hub_process import HubProcess  # noqa: E402

TZ = ZoneInfo("Europe/Copenhagen")
STAFF = {"Authorization": "Bearer demo-staff-token-change-me"}
PLACES = 8


def site(folder: Path) -> Path:
    text = (ROOT / "tests" / "sites" / "always_open.toml").read_text(encoding="utf-8")
    text = text.replace("[bookings]\nretention_days = 30", "[bookings]\nretention_days = 30\n"
                        "online_burst = 100000\nonline_per_hour = 100000")
    section = re.search(r"\[services\.borgerservice\.booking\]\n(?:.+\n)+", text)
    assert section, "the test site has no citizen service booking rules"
    text = text.replace(section.group(0), (
        "[services.borgerservice.booking]\nslot_min = 15\nearly_min = 15\nlate_min = 10\ndays_ahead = 28\n"
        "self_booking = true\n"
        'online = { asks = ["name", "phone"], opens_at = "08:00", until_min = 60, per_day = 1 }\n'
        f'capacity = [ {{ days = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"], hours = "10:00-18:00", '
        f"staff = {PLACES} }} ]\n"))
    path = folder / "site.toml"
    path.write_text(text, encoding="utf-8")
    return path


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered) + 0.5) - 1))] if ordered else float("nan")


def floor_sqlite(folder: Path, n: int = 1000) -> float:
    db = sqlite3.connect(folder / "floor.sqlite3", isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
    began = time.perf_counter()
    for i in range(n):
        db.execute("BEGIN")
        db.execute("INSERT INTO t (v) VALUES (?)", (str(i),))
        db.execute("COMMIT")
    return n / (time.perf_counter() - began)


def morning(url: str, day: str, citizens: int, concurrency: int, release_at: float) -> dict:  # type: ignore
    """The citizens, served by ``concurrency`` client threads (each with its own keep-alive connection, as a
    browser has): a thread takes the next citizen as soon as its last one is done."""
    posts: list[float] = []
    gets: list[float] = []
    outcome: dict = {"booked": 0, "full": 0, "gave_up": 0, "other": {}}  # type: ignore[type-arg]
    plain: set[str] = set()
    lock = threading.Lock()
    queue = list(range(citizens))

    def citizen(session: requests.Session, i: int) -> None:
        for _ in range(5):
            t0 = time.perf_counter()
            listing = session.get(f"{url}/api/v1/public/slots", params={"service": "borgerservice", "day": day},
                                  timeout=60).json()
            took = time.perf_counter() - t0
            free = listing.get("slots") or []
            with lock:
                gets.append(took)
                if not free:
                    outcome["gave_up"] += 1  # the day is full: the page says "no free times on this day"
                    return
            body = {"service": "borgerservice", "start": random.choice(free)["start"], "name": f"Borger {i}",
                    "phone": f"+45 {40000000 + i}"}
            t0 = time.perf_counter()
            answer = session.post(f"{url}/api/v1/public/bookings", json=body,
                                  headers={"Idempotency-Key": uuid.uuid4().hex}, timeout=60)
            took = time.perf_counter() - t0
            error = answer.json().get("error", {}) if answer.status_code != 201 else {}
            with lock:
                posts.append(took)
                if answer.status_code == 201:
                    outcome["booked"] += 1
                    return
                if answer.status_code == 409 and error.get("code") == "full":
                    outcome["full"] += 1
                    plain.add(error.get("message", ""))
                    continue
                what = f"{answer.status_code} {error.get('code')}"
                outcome["other"][what] = outcome["other"].get(what, 0) + 1
                return
        with lock:
            outcome["gave_up"] += 1

    def worker() -> None:
        session = requests.Session()
        session.get(f"{url}/book/book.css", timeout=60)  # the page is open: the connection is there
        time.sleep(max(0.0, release_at - time.monotonic()))
        while True:
            with lock:
                if not queue:
                    return
                i = queue.pop()
            citizen(session, i)

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for t in threads:
        t.start()
    time.sleep(max(0.0, release_at - time.monotonic()))
    began = time.perf_counter()
    for t in threads:
        t.join()
    took = time.perf_counter() - began
    return {**outcome, "posts": posts, "gets": gets, "seconds": took, "messages": sorted(plain)}


def tickets(url: str, concurrency: int, seconds: float = 3.0) -> tuple[float, float]:
    """The same client on the same hub issuing kiosk tickets (the hub's fastest write) for ``seconds``: the
    reference the booking figures are read against on a machine whose speed changes by the minute."""
    latencies: list[float] = []
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def worker() -> None:
        session = requests.Session()
        headers = {"Authorization": "Bearer demo-kiosk1-token-change-me"}
        while time.monotonic() < stop:
            t0 = time.perf_counter()
            answer = session.post(f"{url}/api/v1/tickets", json={"service": "kvik"},
                                  headers={**headers, "Idempotency-Key": uuid.uuid4().hex}, timeout=60)
            took = time.perf_counter() - t0
            if answer.status_code == 201:
                with lock:
                    latencies.append(took)

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    began = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return len(latencies) / (time.perf_counter() - began), pct(latencies, 99)


class Connection:
    """One keep-alive HTTP/1.1 connection, raw: a request out, the status and body back. Costs the client a
    fraction of what ``requests`` does, so the hub gets the machine."""

    def __init__(self, host: str, port: int):
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(self, method: str, path: str, body: dict | None = None,  # type: ignore[type-arg]
                      headers: dict[str, str] | None = None) -> tuple[int, dict]:  # type: ignore[type-arg]
        data = json.dumps(body).encode() if body is not None else b""
        head = [f"{method} {path} HTTP/1.1", f"Host: {self.host}:{self.port}", f"Content-Length: {len(data)}"]
        if body is not None:
            head.append("Content-Type: application/json")
        head += [f"{k}: {v}" for k, v in (headers or {}).items()]
        request = ("\r\n".join(head) + "\r\n\r\n").encode() + data
        for _ in range(2):  # the hub closes a connection idle for 5 s (uvicorn's keep-alive): open it again, once
            if self.writer is None:
                self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
            assert self.reader is not None
            self.writer.write(request)
            line = await self.reader.readline()
            if line:
                break
            self.writer.close()
            self.writer = None
        status = int(line.split()[1])
        assert self.reader is not None
        length, chunked = 0, False
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding" and b"chunked" in value.lower():
                chunked = True
        if chunked:
            parts = []
            while (size := int((await self.reader.readline()).strip(), 16)) > 0:
                parts.append(await self.reader.readexactly(size))
                await self.reader.readline()
            await self.reader.readline()
            payload = b"".join(parts)
        else:
            payload = await self.reader.readexactly(length)
        return status, (json.loads(payload) if payload[:1] in (b"{", b"[") else {})


def morning_async(url: str, day: str, citizens: int, concurrency: int, release_at: float) -> dict:  # type: ignore
    """``morning`` with the light client: ``concurrency`` connections on one asyncio loop."""
    host, _, port = url.removeprefix("http://").partition(":")
    posts: list[float] = []
    gets: list[float] = []
    outcome: dict = {"booked": 0, "full": 0, "gave_up": 0, "other": {}}  # type: ignore[type-arg]
    plain: set[str] = set()
    queue = list(range(citizens))
    listing_path = f"/api/v1/public/slots?service=borgerservice&day={day}"

    async def citizen(conn: Connection, i: int) -> None:
        for _ in range(5):
            t0 = time.perf_counter()
            _, listing = await conn.request("GET", listing_path)
            gets.append(time.perf_counter() - t0)
            free = listing.get("slots") or []
            if not free:
                outcome["gave_up"] += 1  # the day is full: the page says "no free times on this day"
                return
            body = {"service": "borgerservice", "start": random.choice(free)["start"], "name": f"Borger {i}",
                    "phone": f"+45 {40000000 + i}"}
            t0 = time.perf_counter()
            status, answer = await conn.request("POST", "/api/v1/public/bookings", body,
                                                {"Idempotency-Key": uuid.uuid4().hex})
            posts.append(time.perf_counter() - t0)
            error = answer.get("error", {}) if status != 201 else {}
            if status == 201:
                outcome["booked"] += 1
                return
            if status == 409 and error.get("code") == "full":
                outcome["full"] += 1
                plain.add(error.get("message", ""))
                continue
            what = f"{status} {error.get('code')}"
            outcome["other"][what] = outcome["other"].get(what, 0) + 1
            return
        outcome["gave_up"] += 1

    async def worker(conn: Connection) -> None:
        while queue:
            await citizen(conn, queue.pop())

    async def run() -> float:
        conns = [Connection(host, int(port)) for _ in range(concurrency)]
        for conn in conns:  # the page is open: the connection is there
            await conn.request("GET", "/api/v1/health")
        await asyncio.sleep(max(0.0, release_at - time.monotonic()))
        began = time.perf_counter()
        await asyncio.gather(*(worker(conn) for conn in conns))
        return time.perf_counter() - began

    took = asyncio.run(run())
    return {**outcome, "posts": posts, "gets": gets, "seconds": took, "messages": sorted(plain)}


def tickets_async(url: str, concurrency: int, seconds: float = 3.0) -> tuple[float, float]:
    """``tickets`` with the light client."""
    host, _, port = url.removeprefix("http://").partition(":")
    latencies: list[float] = []

    async def worker(stop: float) -> None:
        conn = Connection(host, int(port))
        headers = {"Authorization": "Bearer demo-kiosk1-token-change-me"}
        while time.monotonic() < stop:
            t0 = time.perf_counter()
            status, _ = await conn.request("POST", "/api/v1/tickets", {"service": "kvik"},
                                           {**headers, "Idempotency-Key": uuid.uuid4().hex})
            if status == 201:
                latencies.append(time.perf_counter() - t0)

    async def run() -> float:
        began = time.perf_counter()
        await asyncio.gather(*(worker(time.monotonic() + seconds) for _ in range(concurrency)))
        return time.perf_counter() - began

    took = asyncio.run(run())
    return len(latencies) / took, pct(latencies, 99)


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process (all its threads) has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--citizens", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=16, help="client connections")
    parser.add_argument("--client", choices=("asyncio", "threads"), default="asyncio")
    parser.add_argument("--pin", action="store_true", help="the client on CPU 0, the hub on CPU 1")
    args = parser.parse_args()
    if args.pin:
        os.sched_setaffinity(0, {0})
    print(f"# bench_booking — {datetime.now(ZoneInfo('UTC')):%Y-%m-%d %H:%M} UTC, {platform.node()}, "
          f"{os.cpu_count()} cores, load {' '.join(Path('/proc/loadavg').read_text().split()[:3])}")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        broker = Broker(workdir=folder / "broker").start()
        # Monday 2026-11-23, half a minute before 08:00 (a busy machine may take seconds to start the hub):
        # Sunday 2026-12-20, the 28th day, is not open yet.
        release = datetime(2026, 11, 23, 8, 0, tzinfo=TZ)
        hub = HubProcess(site(folder), folder / "hub", broker.url, clock=release - timedelta(seconds=30),
                         wrap=["taskset", "-c", "1"] if args.pin else None)
        try:
            hub.start()
            day = (release.date() + timedelta(days=27)).isoformat()
            early = requests.post(f"{hub.url}/api/v1/public/bookings", json={
                "service": "borgerservice", "start": f"{day}T10:00", "name": "Tidlig", "phone": "+45 11111111"},
                headers={"Idempotency-Key": uuid.uuid4().hex}, timeout=10)
            assert early.status_code == 409 and early.json()["error"]["code"] == "not_open_yet", early.text
            print(f"before 08:00: {day} refused plainly: {early.json()['error']['message']}")
            wait = (release - hub.clock_now()).total_seconds() + 0.2
            pid = hub.process.pid  # type: ignore[union-attr]
            hub_cpu, client_cpu = cpu_seconds(pid), time.process_time()
            result = (morning_async if args.client == "asyncio" else morning)(
                hub.url, day, args.citizens, args.concurrency, time.monotonic() + wait)
            hub_cpu, client_cpu = cpu_seconds(pid) - hub_cpu, time.process_time() - client_cpu
            ticket_rate, ticket_p99 = (tickets_async if args.client == "asyncio" else tickets)(
                hub.url, args.concurrency)
            listing = requests.get(f"{hub.url}/api/v1/bookings", params={"day": day}, headers=STAFF,
                                   timeout=30).json()["bookings"]
            held: dict[str, int] = {}
            for b in listing:
                if b["status"] == "booked":
                    held[b["start"]] = held.get(b["start"], 0) + 1
            over = sum(1 for n in held.values() if n > PLACES)
            flagged = sum(1 for b in listing if b.get("overbooked"))
            db = sqlite3.connect(folder / "hub" / "hub.sqlite3")
            claims_over = db.execute("SELECT COUNT(*) FROM (SELECT slot_start FROM booking_claims WHERE service = "
                                     "'borgerservice' GROUP BY slot_start HAVING COUNT(*) > ?)", (PLACES,)).fetchone()
            places_max = db.execute("SELECT MAX(place) FROM booking_claims").fetchone()[0]
            db.close()
        finally:
            hub.stop()
            broker.stop()
        floor = floor_sqlite(folder)
    booked, posts = result["booked"], result["posts"]
    rate = booked / result["seconds"]
    print(f"citizens {args.citizens} ({args.client} client, {args.concurrency} connections, pinned: {args.pin}); "
          f"places on the day {32 * PLACES}")
    print(f"booked {booked}, told 'full' {result['full']} times (then chose again), gave up (day full) "
          f"{result['gave_up']}, other answers {result['other'] or 'none'}")
    print(f"what a loser is told: {result['messages']}")
    print(f"bookings/s {rate:.0f} (target >= 200) over {result['seconds']:.2f} s; booking requests {len(posts)}: "
          f"p50 {pct(posts, 50) * 1000:.1f} ms, p99 {pct(posts, 99) * 1000:.1f} ms (target <= 200 ms), "
          f"max {max(posts) * 1000:.1f} ms")
    gets = result["gets"]
    print(f"free-times requests {len(gets)}: p50 {pct(gets, 50) * 1000:.1f} ms, p99 {pct(gets, 99) * 1000:.1f} ms")
    seconds, requests_made = result["seconds"], len(posts) + len(gets)
    print(f"CPU during the morning ({seconds:.2f} s, 2 cores = {2 * seconds:.2f} CPU s): hub {hub_cpu:.2f} s "
          f"({100 * hub_cpu / seconds:.0f} % of one core; {1000 * hub_cpu / requests_made:.2f} ms per request), "
          f"client {client_cpu:.2f} s ({100 * client_cpu / seconds:.0f} % of one core); the rest of the machine's "
          f"time went to its other work (load {Path('/proc/loadavg').read_text().split()[0]})")
    print(f"double-booked places: {over} by the staff list, {flagged} flagged overbooked, {claims_over[0]} slots "
          f"over capacity in the store (highest place number {places_max}, places per slot {PLACES})")
    print(f"floor: bare SQLite durable commit {floor:.0f}/s; the same client issuing kiosk tickets on the same hub "
          f"right after: {ticket_rate:.0f} tickets/s, p99 {ticket_p99 * 1000:.1f} ms (a booking is a look-up and a "
          f"write: bookings/s / tickets/s = {rate / ticket_rate:.2f})")
    ok = rate >= 200 and pct(posts, 99) <= 0.2 and over == flagged == claims_over[0] == 0
    print("targets met" if ok else "targets NOT met")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
