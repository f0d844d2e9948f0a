"""The morning release at the centre's calendar (issue 17; ../shared/targets.md "Online booking").

As ``bench_booking.py`` (the same citizens, the same site: citizen service, a name and a phone, 8 places per
15-minute slot 10:00–18:00, ``opens_at = "08:00"``), but booked at the centre: the real ``vuoro central`` process
(its test clock half a minute before 08:00) over a private PostgreSQL with fsync on, the branch's day 28 days ahead
(the centre's to sell). Each sale is one PostgreSQL transaction under the branch's advisory lock (one branch's
sales are serial by design: that is what makes "one owner per place" cheap to prove).

    .venv/bin/python bench/bench_calendar.py [--citizens 500] [--concurrency 16]

Prints bookings/s, the booking requests' p50/p99 (every POST, won or lost), the listing's p99, and checks in
PostgreSQL that no slot holds more bookings than it has places. Floor in the same run: the same client asking
the centre's health (one ``SELECT 1``), the cheapest database round trip through the same stack.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import sys
import tempfile
import threading
import time
import uuid
from datetime import datetime, timedelta
from pathlib import Path
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


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--citizens", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    print(f"# bench_calendar — {datetime.now(ZoneInfo('UTC')):%Y-%m-%d %H:%M} UTC, {platform.node()}, "
          f"{os.cpu_count()} cores, load {' '.join(Path('/proc/loadavg').read_text().split()[:3])}")
    release = datetime(2026, 11, 23, 8, 0, tzinfo=TZ)
    day = (release.date() + timedelta(days=27)).isoformat()
    with tempfile.TemporaryDirectory() as tmp, PostgresCluster(fsync=True) as pg:
        folder = Path(tmp)
        database = str(pg.create_database())
        clock = folder / "clock"
        write_clock_file(clock, release - timedelta(seconds=30))
        config = write_centre_config(folder / "centre.toml", database, {
            "north": ("north-uplink-token-0123456789", branch_site(folder))}, languages=("en",))
        centre = CentralProcess(config, env={CLOCK_ENV: str(clock)}).start()
        try:
            early = requests.post(f"{centre.url}/api/v1/calendar/bookings", params={"branch": "north"}, json={
                "service": "borgerservice", "start": f"{day}T10:00", "name": "Tidlig", "phone": "+45 11111111"},
                headers={"Idempotency-Key": uuid.uuid4().hex}, timeout=10)
            assert early.status_code == 409 and early.json()["error"]["code"] == "not_open_yet", early.text
            print(f"before 08:00: {day} refused plainly: {early.json()['error']['message']}")
            from vuoro.clock import FileClock

            wait = (release - FileClock(clock)()).total_seconds() + 0.2
            result = morning(centre.url, day, args.citizens, args.concurrency, time.monotonic() + wait)
            floor_rate, floor_p99 = health_floor(centre.url, args.concurrency)
            with psycopg.connect(database) as db:
                over = db.execute("SELECT count(*) FROM (SELECT slot_start FROM calendar_claims GROUP BY slot_start "
                                  "HAVING count(*) > %s) o", (PLACES,)).fetchone()[0]
                booked_rows = db.execute("SELECT count(*) FROM calendar_bookings WHERE status = 'booked'").fetchone()[0]
        finally:
            centre.stop()
    booked, posts = result["booked"], result["posts"]
    rate = booked / result["seconds"]
    print(f"citizens {args.citizens} (concurrency {args.concurrency}); places on the day {32 * PLACES}")
    print(f"booked {booked} ({booked_rows} rows at the centre), told 'full' {result['full']} times (then chose "
          f"again), gave up (day full) {result['gave_up']}, other answers {result['other'] or 'none'}")
    print(f"what a loser is told: {result['messages']}")
    print(f"bookings/s {rate:.0f} (target >= 200) over {result['seconds']:.2f} s; booking requests {len(posts)}: "
          f"p50 {pct(posts, 50) * 1000:.1f} ms, p99 {pct(posts, 99) * 1000:.1f} ms (target <= 200 ms)")
    gets = result["gets"]
    print(f"free-times requests {len(gets)}: p50 {pct(gets, 50) * 1000:.1f} ms, p99 {pct(gets, 99) * 1000:.1f} ms")
    print(f"slots over capacity at the centre: {over}")
    print(f"floor: the same client on the centre's health (SELECT 1): {floor_rate:.0f}/s, p99 {floor_p99 * 1000:.1f} "
          f"ms; bookings/s / floor = {rate / floor_rate:.2f}")
    ok = rate >= 200 and pct(posts, 99) <= 0.2 and over == 0 and booked == booked_rows
    print("targets met" if ok else "targets NOT met")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
