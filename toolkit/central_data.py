"""Generated branch history straight into the centre's PostgreSQL (COPY): for the statistics at municipal scale.

50 branches × a year ≈ 15 million tickets is far more than any test can push through real hubs, so
the rows the centre's statistics read are written as the ingest would have stored them: ``tickets``
(every status: served, not shown up, expired, left from the phone, transferred, bookings early and
late, and, on ``open_day``, some still waiting or at a desk), the ``called`` history lines of
transferred tickets (their first call is their wait's end) and ``feedback`` ratings. Nothing else of
a branch's history (issued lines, calls, devices) is made: the statistics do not read it.

Seeded, so a run is repeatable; timestamps in whole microseconds, as the branches' stores keep them.
Opening hours 09:00–18:00 in the branch's zone, so DST days are ordinary days here too.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import psycopg

_COLUMNS = ("branch", "id", "stream", "revision", "service", "letter", "number", "day", "label", "language", "status",
            "origin", "queued_at", "issued_at", "due_at", "counter", "called_at", "finished_at", "recalls",
            "transfers", "committed_at")
US = 1_000_000
_minute_cache: dict[int, str] = {}


def _ts(us: int | None) -> str:
    """Microseconds since the epoch as PostgreSQL's text for timestamptz (UTC)."""
    if us is None:
        return "\\N"
    seconds, micro = divmod(us, US)
    minute, sec = divmod(seconds, 60)
    prefix = _minute_cache.get(minute)
    if prefix is None:
        prefix = _minute_cache[minute] = time.strftime("%Y-%m-%d %H:%M:", time.gmtime(minute * 60))
    return f"{prefix}{sec:02d}.{micro:06d}+00"


@dataclass(frozen=True)
class Service:
    id: str
    letter: str
    weight: float
    counter: str


DEFAULT_SERVICES = (Service("kvik", "K", 0.5, "kvik1"), Service("bibliotekar", "L", 0.25, "bib1"),
                    Service("it", "H", 0.15, "it1"), Service("borgerservice", "B", 0.10, "borger1"))


@dataclass
class Made:
    tickets: int = 0
    events: int = 0
    feedback: int = 0


def generate(db: psycopg.Connection, branches: dict[str, str], start: date, days: int, per_day: int, *,
             zone: str = "Europe/Copenhagen", services: tuple[Service, ...] = DEFAULT_SERVICES, seed: int = 16,
             open_day: date | None = None, progress: bool = False) -> Made:
    """Write ``days`` days from ``start`` of each branch (id → name), ≈ ``per_day`` tickets a day each (±20 %).
    One transaction per branch. The branches are registered with their zone."""
    tz = ZoneInfo(zone)
    made = Made()
    rng = random.Random(seed)
    weights = [s.weight for s in services]
    for bid, name in branches.items():
        with db.transaction():
            # Generated rows are consistent by construction (their branch is written first): skip the foreign
            # key triggers, a third of COPY's time. Needs the superuser the test kit's cluster gives.
            db.execute("SET LOCAL session_replication_role = replica")
            db.execute("INSERT INTO branches (id, name, zone) VALUES (%s, %s, %s) ON CONFLICT (id) DO UPDATE SET "
                       "zone = excluded.zone", (bid, name, zone))
            db.execute("INSERT INTO streams (branch, stream) VALUES (%s, 'generated') ON CONFLICT DO NOTHING", (bid,))
            events: list[str] = []
            ratings: list[str] = []
            serial = 0
            with db.cursor() as cur, cur.copy(f"COPY tickets ({', '.join(_COLUMNS)}) FROM STDIN") as copy:
                chunk: list[str] = []
                for k in range(days):
                    day = start + timedelta(days=k)
                    opens = int(datetime.combine(day, datetime.min.time().replace(hour=9), tz).timestamp()) * US
                    closes = int(datetime.combine(day, datetime.min.time().replace(hour=18), tz).timestamp()) * US
                    n = int(per_day * rng.uniform(0.8, 1.2))
                    issued_times = sorted(rng.randrange(opens, closes) for _ in range(n))
                    numbers = dict.fromkeys((s.letter for s in services), 0)
                    for issued in issued_times:
                        serial += 1
                        service = rng.choices(services, weights)[0]
                        numbers[service.letter] += 1
                        number = numbers[service.letter]
                        row = _ticket(rng, bid, serial, service, number, day, issued, open_day == day, events)
                        chunk.append(row)
                    for _ in range(max(0, int(n * 0.08))):
                        rating = rng.choices((1, 2, 3, 4, 5), (5, 7, 15, 33, 40))[0]
                        at = rng.randrange(opens, closes)
                        service_id = rng.choice((None, services[0].id))
                        ratings.append("\t".join((bid, f"gen/{day}/{len(ratings)}", _ts(at), str(rating), "5",
                                                  service_id or "\\N", "exit1", _ts(at))) + "\n")
                    if len(chunk) > 5000:
                        copy.write("".join(chunk))
                        made.tickets += len(chunk)
                        chunk = []
                copy.write("".join(chunk))
                made.tickets += len(chunk)
            with db.cursor() as cur:
                with cur.copy("COPY ticket_events (branch, key, ticket_id, kind, at, service, counter, detail, "
                              "committed_at) FROM STDIN") as copy:
                    copy.write("".join(events))
                with cur.copy("COPY feedback (branch, key, at, rating, faces, service, device, committed_at) "
                              "FROM STDIN") as copy:
                    copy.write("".join(ratings))
            made.events += len(events)
            made.feedback += len(ratings)
        if progress:
            print(f"  {bid}: {made.tickets:,} tickets so far", flush=True)
    return made


def _ticket(rng: random.Random, bid: str, serial: int, service: Service, number: int, day: date, issued: int,
            open_day: bool, events: list[str]) -> str:
    """One ticket's row (COPY text); the history lines of a transferred ticket's calls go to ``events``."""
    tid = f"{bid}-{serial:08x}"
    queued = issued
    due = None
    origin = "walk_in"
    if rng.random() < 0.08:  # a booking: checked in up to 10 min early or late
        origin = "booking"
        due = issued + rng.randrange(-600 * US, 600 * US)
    begin = max(queued, due) if due is not None else queued
    wait = int(rng.expovariate(1 / 420) * US)
    if rng.random() < 0.03:
        wait += rng.randrange(3600 * US, 3 * 3600 * US)  # the long tail: a desk closed, a queue forgotten
    r = rng.random()
    called = finished = counter = None
    transfers = 0
    status = "done"
    if open_day and r > 0.93:
        status = "waiting" if r > 0.97 else "called"
    elif r < 0.04:
        status = "expired"
    elif r < 0.05:
        status = "left"
        finished = queued + rng.randrange(US, 1800 * US)
    elif r < 0.10:
        status = "no_show"
    if status in ("done", "no_show", "called"):
        counter = service.counter
        called = begin + wait
        if status == "done" and rng.random() < 0.04:  # transferred once: the first call ends the wait
            transfers = 1
            first = called
            called = first + rng.randrange(60 * US, 300 * US)
            for k, at in enumerate((first, called)):
                events.append("\t".join((bid, f"{tid}/{k}/{at}", tid, "called", _ts(at), service.id, counter,
                                         "\\N", _ts(at))) + "\n")
        if status == "done":
            finished = called + int(rng.expovariate(1 / 300) * US)
        elif status == "no_show":
            finished = called + 60 * US
    last = max(t for t in (issued, called, finished) if t is not None)
    return "\t".join((bid, tid, "generated", str(serial), service.id, service.letter, str(number), day.isoformat(),
                      f"{service.letter}{number:03d}", "da", status, origin, _ts(queued), _ts(issued), _ts(due),
                      counter or "\\N", _ts(called), _ts(finished), "0", str(transfers), _ts(last))) + "\n"

