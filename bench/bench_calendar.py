"""The morning release at the centre's calendar (issue 17; ../shared/targets.md "Online booking").

As ``bench_booking.py`` (the same citizens, the same site: citizen service, a name and a phone, 8 places per
15-minute slot 10:00–18:00, ``opens_at = "08:00"``), but booked at the centre: the real ``vuoro central`` process
(its test clock half a minute before 08:00) over a private PostgreSQL with fsync on, the branch's day 28 days ahead
(the centre's to sell). Each sale is one PostgreSQL transaction under the branch's advisory lock held shared
(sales side by side; ``calendar_claims``' key keeps two off one place, central/calendar.py).

    .venv/bin/python bench/bench_calendar.py [--citizens 500] [--concurrency 16] [--workers 1,2,3,4] [--rounds 2]

Prints bookings/s, the booking requests' p50/p99 (every POST, won or lost), the listing's p99, and checks in
PostgreSQL that no slot holds more bookings than it has places, and the CPU the centre (all its processes),
PostgreSQL and this client used. Floor in the same run: the same client asking the centre's health (one
``SELECT 1``), the cheapest database round trip through the same stack. ``--workers 1,2,3,4 --rounds 2`` runs the
centre with each number of worker processes in turn, twice (interleaved), each on a fresh database.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import signal
import sys
import tempfile
import threading
import time
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit
from zoneinfo import ZoneInfo

import psycopg
import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bench_booking import PLACES, pct, site  # noqa: E402
from toolkit.central_process import CentralProcess, write_centre_config  # noqa: E402
from toolkit.postgres import PostgresCluster  # noqa: E402
from vuoro.clock import ENV as CLOCK_ENV  # noqa: E402
from vuoro.clock import write_clock_file  # noqa: E402

TZ = ZoneInfo("Europe/Copenhagen")


def branch_site(folder: Path) -> Path:
    path = site(folder)
    text = path.read_text(encoding="utf-8").replace('id = "sonderbro"', 'id = "north"', 1)
    text = text.replace("[bookings]\n", "[bookings]\ncentre_calendar = true\n", 1)
    text += '\n[central]\nurl = "http://127.0.0.1:9"\ntoken = "north-uplink-token-0123456789"\n'
    path.write_text(text, encoding="utf-8")
    return path


def morning(url: str, day: str, citizens: int, concurrency: int, release_at: float) -> dict:  # type: ignore
    posts: list[float] = []
    gets: list[float] = []
    outcome: dict = {"booked": 0, "full": 0, "gave_up": 0, "other": {}}  # type: ignore[type-arg]
    plain: set[str] = set()
    lock = threading.Lock()
    queue = list(range(citizens))
    query = {"branch": "north", "service": "borgerservice", "day": day}

    def citizen(session: requests.Session, i: int) -> None:
        for _ in range(5):
            t0 = time.perf_counter()
            listing = session.get(f"{url}/api/v1/calendar/slots", params=query, timeout=60).json()
            with lock:
                gets.append(time.perf_counter() - t0)
            free = listing.get("slots") or []
            if not free:
                with lock:
                    outcome["gave_up"] += 1
                return
            body = {"service": "borgerservice", "start": random.choice(free)["start"], "name": f"Borger {i}",
                    "phone": f"+45 {40000000 + i}"}
            t0 = time.perf_counter()
            answer = session.post(f"{url}/api/v1/calendar/bookings", params={"branch": "north"}, json=body,
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
        session.get(f"{url}/book/book.css", timeout=60)
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
    return {**outcome, "posts": posts, "gets": gets, "seconds": time.perf_counter() - began,
            "messages": sorted(plain)}


class Connection:
    """One keep-alive HTTP/1.1 connection, raw over asyncio (the threaded ``requests`` client costs the 2-core
    machine the CPU the centre needs: ``--client asyncio`` measures the centre more than the client)."""

    def __init__(self, url: str):
        parts = urlsplit(url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(self, method: str, path: str, body: Any = None,
                      headers: dict[str, str] | None = None) -> tuple[int, Any]:
        for attempt in range(2):
            try:
                if self.writer is None:
                    self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
                return await self._exchange(method, path, body, headers or {})
            except (ConnectionError, asyncio.IncompleteReadError):
                self.writer = None  # the server closed an idle connection: once more on a new one
                if attempt:
                    raise
        raise AssertionError("unreachable")

    async def _exchange(self, method: str, path: str, body: Any, headers: dict[str, str]) -> tuple[int, Any]:
        assert self.reader is not None and self.writer is not None
        data = json.dumps(body).encode() if body is not None else b""
        head = f"{method} {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
        if body is not None:
            head += f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n"
        head += "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
        self.writer.write(head.encode() + data)
        status_line = await self.reader.readuntil(b"\r\n")
        status = int(status_line.split()[1])
        length, chunked = 0, False
        while (line := await self.reader.readuntil(b"\r\n")) != b"\r\n":
            name, _, value = line.decode("latin-1").partition(":")
            if name.lower() == "content-length":
                length = int(value)
            elif name.lower() == "transfer-encoding" and "chunked" in value:
                chunked = True
        if chunked:
            payload = b""
            while (size := int((await self.reader.readuntil(b"\r\n")).strip(), 16)):
                payload += (await self.reader.readexactly(size + 2))[:-2]
            await self.reader.readuntil(b"\r\n")
        else:
            payload = await self.reader.readexactly(length)
        return status, json.loads(payload) if payload else None


def morning_async(url: str, day: str, citizens: int, concurrency: int, release_at: float) -> dict:  # type: ignore
    """The same citizens as ``morning``, over ``concurrency`` raw keep-alive connections in one asyncio loop."""
    posts: list[float] = []
    gets: list[float] = []
    outcome: dict = {"booked": 0, "full": 0, "gave_up": 0, "other": {}}  # type: ignore[type-arg]
    plain: set[str] = set()
    queue = list(range(citizens))
    slots_path = f"/api/v1/calendar/slots?{urlencode({'branch': 'north', 'service': 'borgerservice', 'day': day})}"

    async def citizen(conn: Connection, i: int) -> None:
        for _ in range(5):
            t0 = time.perf_counter()
            _, listing = await conn.request("GET", slots_path)
            gets.append(time.perf_counter() - t0)
            free = listing.get("slots") or []
            if not free:
                outcome["gave_up"] += 1
                return
            body = {"service": "borgerservice", "start": random.choice(free)["start"], "name": f"Borger {i}",
                    "phone": f"+45 {40000000 + i}"}
            t0 = time.perf_counter()
            status, answer = await conn.request("POST", "/api/v1/calendar/bookings?branch=north", body,
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

    async def worker() -> None:
        conn = Connection(url)
        await conn.request("GET", "/api/v1/health")
        await asyncio.sleep(max(0.0, release_at - time.monotonic()))
        while queue:
            await citizen(conn, queue.pop())

    async def everyone() -> float:
        tasks = [asyncio.create_task(worker()) for _ in range(concurrency)]
        await asyncio.sleep(max(0.0, release_at - time.monotonic()))
        began = time.perf_counter()
        await asyncio.gather(*tasks)
        return time.perf_counter() - began

    seconds = asyncio.run(everyone())
    return {**outcome, "posts": posts, "gets": gets, "seconds": seconds, "messages": sorted(plain)}


def health_floor(url: str, concurrency: int, seconds: float = 3.0) -> tuple[float, float]:
    latencies: list[float] = []
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def worker() -> None:
        session = requests.Session()
        while time.monotonic() < stop:
            t0 = time.perf_counter()
            if session.get(f"{url}/api/v1/health", timeout=60).status_code == 200:
                with lock:
                    latencies.append(time.perf_counter() - t0)

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    began = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return len(latencies) / (time.perf_counter() - began), pct(latencies, 99)


def cpu_seconds(root: int) -> float:
    """CPU time of a process and everything under it: each live one's own and its reaped children's."""
    tick = os.sysconf("SC_CLK_TCK")
    stats: dict[int, list[str]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                text = (entry / "stat").read_text()
            except OSError:
                continue
            stats[int(entry.name)] = text[text.rindex(")") + 2:].split()
    children: dict[int, list[int]] = {}
    for pid, fields in stats.items():
        children.setdefault(int(fields[1]), []).append(pid)
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        if pid in stats:
            total += sum(int(v) for v in stats[pid][11:15])  # utime, stime, cutime, cstime
        todo += children.get(pid, [])
    return total / tick


def client_cpu() -> float:
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def one_run(pg: PostgresCluster, folder: Path, workers: int, citizens: int, concurrency: int,  # type: ignore
            client: str) -> dict:
    """A fresh database, the centre with ``workers`` processes, the morning, the floor; the figures."""
    release = datetime(2026, 11, 23, 8, 0, tzinfo=TZ)
    day = (release.date() + timedelta(days=27)).isoformat()
    database = str(pg.create_database())
    clock = folder / "clock"
    write_clock_file(clock, release - timedelta(seconds=30))
    config = write_centre_config(folder / "centre.toml", database, {
        "north": ("north-uplink-token-0123456789", branch_site(folder))}, languages=("en",))
    centre = CentralProcess(config, env={CLOCK_ENV: str(clock)}, workers=workers).start()
    try:
        early = requests.post(f"{centre.url}/api/v1/calendar/bookings", params={"branch": "north"}, json={
            "service": "borgerservice", "start": f"{day}T10:00", "name": "Tidlig", "phone": "+45 11111111"},
            headers={"Idempotency-Key": uuid.uuid4().hex}, timeout=10)
        assert early.status_code == 409 and early.json()["error"]["code"] == "not_open_yet", early.text
        from vuoro.clock import FileClock

        wait = (release - FileClock(clock)()).total_seconds() + 0.2
        assert centre.process is not None and pg.process is not None
        before = (cpu_seconds(centre.process.pid), cpu_seconds(pg.process.pid), client_cpu())
        run = morning_async if client == "asyncio" else morning
        result = run(centre.url, day, citizens, concurrency, time.monotonic() + wait)
        after = (cpu_seconds(centre.process.pid), cpu_seconds(pg.process.pid), client_cpu())
        if os.environ.get("VUORO_BENCH_PROFILE"):  # bench/profiling: the workers write their profiles now
            for pid in Path(f"/proc/{centre.process.pid}/task/{centre.process.pid}/children").read_text().split():
                os.kill(int(pid), signal.SIGUSR1)
            time.sleep(3)
        result["cpu"] = [(b - a) / result["seconds"] for a, b in zip(before, after, strict=True)]
        result["load"] = load()
        result["floor"] = health_floor(centre.url, concurrency)
        with psycopg.connect(database) as db:
            result["over"] = db.execute("SELECT count(*) FROM (SELECT slot_start FROM calendar_claims GROUP BY "
                                        "slot_start HAVING count(*) > %s) o", (PLACES,)).fetchone()[0]
            result["rows"] = db.execute("SELECT count(*) FROM calendar_bookings WHERE status = 'booked'").fetchone()[0]
            # Rolled back: the sales that lost a place to another (then read again) and the refusals ("full")
            result["rollbacks"] = db.execute("SELECT xact_rollback FROM pg_stat_database WHERE datname = "
                                             "current_database()").fetchone()[0]
    finally:
        centre.stop()
    result["early"] = early.json()["error"]["message"]
    return result


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--citizens", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--workers", default="2", help="the centre's worker processes; several, comma-separated "
                                                       "(1,2,3,4), are run one after the other, --rounds times")
    parser.add_argument("--rounds", type=int, default=1, help="run the list of --workers this often (interleaved)")
    parser.add_argument("--client", choices=("threads", "asyncio"), default="threads",
                        help="citizens as threads with requests (as before), or raw HTTP in one asyncio loop "
                             "(less of the machine's CPU for the client)")
    parser.add_argument("--profile", metavar="DIR", help="cProfile the centre's workers (all threads) and write "
                                                         "DIR/<pid>.txt after each morning (bench/profiling)")
    args = parser.parse_args()
    if args.profile:
        os.environ["VUORO_BENCH_PROFILE"] = str(Path(args.profile).resolve())
        os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "bench" / "profiling"),
                                                                 os.environ.get("PYTHONPATH")]))
    counts = [int(w) for w in args.workers.split(",")]
    print(f"# bench_calendar — {datetime.now(ZoneInfo('UTC')):%Y-%m-%d %H:%M} UTC, {platform.node()}, "
          f"{os.cpu_count()} cores, load {load()}")
    print(f"citizens {args.citizens} (concurrency {args.concurrency}, client {args.client}); places on the day "
          f"{32 * PLACES}; "
          f"CPU: cores busy during the morning (1.00 = one core)")
    rows = []
    with tempfile.TemporaryDirectory() as tmp, PostgresCluster(fsync=True) as pg:
        for round_ in range(args.rounds):
            for workers in counts:
                folder = Path(tmp) / f"r{round_}w{workers}"
                folder.mkdir()
                r = one_run(pg, folder, workers, args.citizens, args.concurrency, args.client)
                booked, posts = r["booked"], r["posts"]
                rate = booked / r["seconds"]
                floor_rate, floor_p99 = r["floor"]
                ok = rate >= 200 and pct(posts, 99) <= 0.2 and r["over"] == 0 and booked == r["rows"]
                print(f"\n## workers {workers} (round {round_ + 1}), load {r['load']} at the end of the morning")
                print(f"booked {booked} ({r['rows']} rows at the centre), told 'full' {r['full']} times (then chose "
                      f"again), gave up (day full) {r['gave_up']}, other answers {r['other'] or 'none'}")
                print(f"what a loser is told: {r['messages']}; before 08:00: {r['early']}")
                print(f"bookings/s {rate:.0f} (target >= 200) over {r['seconds']:.2f} s; booking requests "
                      f"{len(posts)}: p50 {pct(posts, 50) * 1000:.1f} ms, p99 {pct(posts, 99) * 1000:.1f} ms "
                      f"(target <= 200 ms)")
                gets = r["gets"]
                print(f"free-times requests {len(gets)}: p50 {pct(gets, 50) * 1000:.1f} ms, p99 "
                      f"{pct(gets, 99) * 1000:.1f} ms; HTTP requests/s {(len(gets) + len(posts)) / r['seconds']:.0f}")
                print(f"CPU: centre {r['cpu'][0]:.2f}, PostgreSQL {r['cpu'][1]:.2f}, client {r['cpu'][2]:.2f}")
                print(f"slots over capacity at the centre: {r['over']}; transactions rolled back {r['rollbacks']} "
                      f"(sales that lost a place to another and read again, and the refusals)")
                print(f"floor: the same client on the centre's health (SELECT 1): {floor_rate:.0f}/s, p99 "
                      f"{floor_p99 * 1000:.1f} ms; bookings/s / floor = {rate / floor_rate:.2f}")
                print("targets met" if ok else "targets NOT met")
                rows.append((workers, round_ + 1, r["load"], rate, pct(posts, 50) * 1000, pct(posts, 99) * 1000,
                             pct(gets, 99) * 1000, r["over"], r["cpu"], floor_rate))
    print("\n| workers | round | load after | bookings/s | booking p50 / p99 ms | free-times p99 ms | over capacity "
          "| CPU centre / PostgreSQL / client | floor /s |")
    print("|---|---|---|---|---|---|---|---|---|")
    for w, rnd, ld, rate, p50, p99, g99, over, cpu, floor in rows:
        print(f"| {w} | {rnd} | {ld.split()[0]} | {rate:.0f} | {p50:.0f} / {p99:.0f} | {g99:.0f} | {over} | "
              f"{cpu[0]:.2f} / {cpu[1]:.2f} / {cpu[2]:.2f} | {floor:.0f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
