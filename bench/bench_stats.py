"""Benchmark: statistics for a year of a busy site (≈ 300,000 tickets), target ≤ 5 s.

Generates a year of the sample site's tickets (with their ticket_log lines,
transfers, no-shows, expired tickets, bookings and feedback) into a real
SQLite file through the real store (``SQLiteStore.save``), then times what
``GET /api/v1/stats/summary`` does for a whole year: read the rows on a
read-only connection and compute the summary by day, by service, by hour
and by day × service. Also times the floor (a bare SELECT of the same rows)
and prints the ratio.

    .venv/bin/python bench/bench_stats.py [--tickets 300000] [--db PATH] [--keep]
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from server import stats  # noqa: E402
from server.config import SAMPLE_SITE, load_config  # noqa: E402
from server.engine import LogEntry, Outcome, Ticket  # noqa: E402
from server.feedback import FeedbackRecord, write_feedback  # noqa: E402
from server.stats.records import SCHEMA_NAME, SCHEMA_STEPS  # noqa: E402
from server.store import SQLiteStore  # noqa: E402

YEAR = 2026
TARGET_S = 5.0
# share of tickets, and counters that serve them
SERVICES = {"kvik": (0.60, ("kvik1", "kvik2", "borger1")), "bibliotekar": (0.15, ("bib1",)),
            "it": (0.10, ("kvik1", "bib1")), "borgerservice": (0.15, ("borger1",))}
HOUR_WEIGHTS = {10: 9, 11: 12, 12: 13, 13: 12, 14: 10, 15: 11, 16: 9, 17: 6}


def generate(path: Path, tickets: int, seed: int = 8) -> int:
    config = load_config(SAMPLE_SITE)
    tz = config.timezone
    rng = random.Random(seed)
    store = SQLiteStore(path, config.site_id)
    store.migrate_plugin(SCHEMA_NAME, SCHEMA_STEPS)
    store.writers[FeedbackRecord] = write_feedback
    days = [date(YEAR, 1, 1) + timedelta(days=i) for i in range(365)]
    days = [d for d in days if d.weekday() != 6]  # closed on Sundays
    per_day = tickets / len(days)
    services, weights = list(SERVICES), [SERVICES[s][0] for s in SERVICES]
    hours, hour_w = list(HOUR_WEIGHTS), list(HOUR_WEIGHTS.values())
    made = 0
    serial = 0
    for day in days:
        count = int(round(per_day * rng.uniform(0.8, 1.2)))
        numbers: dict[str, int] = {}
        outcome = Outcome()
        for _ in range(count):
            serial += 1
            service = rng.choices(services, weights)[0]
            letter = config.services[service].letter
            numbers[letter] = numbers.get(letter, 0) + 1
            hour = rng.choices(hours, hour_w)[0]
            issued = datetime(day.year, day.month, day.day, hour, rng.randrange(60), rng.randrange(60),
                              rng.randrange(1_000_000), tz).astimezone(UTC)
            origin, due = "walk_in", None
            if service == "borgerservice":
                origin = "booking"
                due = issued + timedelta(minutes=rng.choice((0, 5, 10)))
            wait = timedelta(seconds=rng.expovariate(1 / 360))
            start = max(issued, due) if due else issued
            called = start + wait
            counter = rng.choice(SERVICES[service][1])
            roll = rng.random()
            status, finished, transfers = "done", called + timedelta(
                seconds=rng.expovariate(1 / (config.services[service].typical_service_min * 60))), 0
            log = [LogEntry(f"t{serial}", "issued", issued, service, detail=origin)]
            if roll < 0.02:
                status, called, counter = "expired", None, None
                finished = datetime(day.year, day.month, day.day, tzinfo=tz).astimezone(UTC) + timedelta(days=1)
                log.append(LogEntry(f"t{serial}", "expired", finished, service))
            elif roll < 0.07:
                status, finished = "no_show", called + timedelta(minutes=2)
                log += [LogEntry(f"t{serial}", "called", called, service, counter),
                        LogEntry(f"t{serial}", "no_show", finished, service, counter)]
            elif roll < 0.10 and service == "kvik":
                first = called
                log += [LogEntry(f"t{serial}", "called", first, "kvik", counter),
                        LogEntry(f"t{serial}", "transferred", first + timedelta(minutes=2), "it", counter, "kvik")]
                service, transfers, counter = "it", 1, "bib1"
                called = first + timedelta(minutes=2) + timedelta(seconds=rng.expovariate(1 / 600))
                finished = called + timedelta(minutes=10)
                log += [LogEntry(f"t{serial}", "called", called, service, counter),
                        LogEntry(f"t{serial}", "finished", finished, service, counter)]
            else:
                log += [LogEntry(f"t{serial}", "called", called, service, counter),
                        LogEntry(f"t{serial}", "finished", finished, service, counter)]
            outcome.created.append(Ticket(
                id=f"t{serial}", service=service, letter=letter, number=numbers[letter], day=day, language="da",
                status=status, queued_at=issued, issued_at=issued, track_token=f"tok{serial}", origin=origin,
                due_at=due, counter=counter, called_at=called, finished_at=finished, transfers=transfers))
            outcome.log.extend(log)
            if rng.random() < 0.08:
                outcome.records.append(FeedbackRecord(config.site_id, (finished or issued).isoformat(),
                                                      rng.choices((1, 2, 3, 4, 5), (2, 3, 10, 35, 50))[0], 5,
                                                      service if rng.random() < 0.7 else None, "exit1"))
            made += 1
        store.save([outcome])
    store.close()
    return made


def compute(path: Path, site: str) -> dict[str, float]:
    config = load_config(SAMPLE_SITE)
    tz = config.timezone
    targets = {sid: s.target_wait_min for sid, s in config.services.items()}
    lo_day, hi_day = date(YEAR, 1, 1), date(YEAR, 12, 31)
    times: dict[str, float] = {}

    began = time.perf_counter()
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    db.execute("SELECT * FROM tickets WHERE site = ? AND day BETWEEN ? AND ?",
               (site, lo_day.isoformat(), hi_day.isoformat())).fetchall()
    times["floor: bare SELECT of the year's tickets"] = time.perf_counter() - began
    db.close()

    for by in (("day",), ("service",), ("hour",), ("day", "service")):
        began = time.perf_counter()
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        rows = stats.read_tickets(db, site, lo_day, hi_day, lean=True)
        first = stats.read_first_calls(db, site, lo_day, hi_day)
        ulo, uhi = stats.period_utc(lo_day, hi_day, tz)
        feedback = stats.read_feedback(db, site, ulo, uhi)
        db.close()
        read = time.perf_counter() - began
        result = stats.summarize(rows, tz, by, targets=targets, first_calls=first, feedback=feedback,
                                 start=lo_day, end=hi_day)
        times[f"summary by {','.join(by)} ({len(result.groups)} groups, {result.total['issued']} tickets; "
              f"read {read:.2f} s)"] = time.perf_counter() - began
    began = time.perf_counter()
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    rows = stats.read_tickets(db, site, lo_day, hi_day, lean=True)
    first = stats.read_first_calls(db, site, lo_day, hi_day)
    feedback = stats.read_feedback(db, site, ulo, uhi)
    db.close()
    groupings = [("hour",), ("day", "service"), ("service",), ("counter",)]
    stats.summarize_many(rows, tz, groupings, targets=targets, first_calls=first, feedback=feedback, start=lo_day,
                         end=hi_day)
    times["the /stats/ page's report: hour, day×service, service, counter in one pass"] = (
        time.perf_counter() - began)
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=300_000)
    parser.add_argument("--db", type=Path, help="reuse or create this file (default: a temporary one)")
    parser.add_argument("--keep", action="store_true", help="keep the generated file")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="vuoro-bench-stats-"))
    path = args.db or folder / "hub.sqlite3"
    if not path.exists():
        began = time.perf_counter()
        made = generate(path, args.tickets)
        print(f"generated {made} tickets for {YEAR} into {path} in {time.perf_counter() - began:.1f} s "
              f"({path.stat().st_size / 1e6:.0f} MB)")
    times = compute(path, "sonderbro")
    floor = next(iter(times.values()))
    for name, seconds in times.items():
        verdict = "" if name.startswith("floor") else (
            f"  target ≤ {TARGET_S:.0f} s: {'OK' if seconds <= TARGET_S else 'MISSED'}; {seconds / floor:.1f}× floor")
        print(f"{seconds:7.2f} s  {name}{verdict}")
    if not args.keep and not args.db:
        path.unlink()
        for extra in folder.iterdir():
            extra.unlink()
        folder.rmdir()
    return 0 if all(s <= TARGET_S for n, s in times.items() if not n.startswith("floor")) else 1


if __name__ == "__main__":
    sys.exit(main())
