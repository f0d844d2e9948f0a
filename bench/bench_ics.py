"""ICS import of a 2,000-event feed with recurrences (target: ≤ 2 s).

Generates a library-like feed in Europe/Copenhagen (with its VTIMEZONE):
1,600 single events and 400 weekly series (some with EXDATEs and a moved
occurrence by RECURRENCE-ID), spread over autumn 2026 so the window crosses
the end of summer time. Measures what the hub's feed thread does on each
refresh: parse the feed and expand every occurrence in the hub's window
(yesterday + 31 days), as ``server.events.feeds.parse_ics``. The floor is the
bare ``icalendar`` parse of the same bytes, without expansion.

    .venv/bin/python bench/bench_ics.py [--events 2000] [--runs 5]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from server.events.feeds import parse_ics  # noqa: E402

TARGET_S = 2.0
TZ = ZoneInfo("Europe/Copenhagen")
VTIMEZONE = """BEGIN:VTIMEZONE
TZID:Europe/Copenhagen
BEGIN:DAYLIGHT
TZOFFSETFROM:+0100
TZOFFSETTO:+0200
TZNAME:CEST
DTSTART:19700329T020000
RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU
END:DAYLIGHT
BEGIN:STANDARD
TZOFFSETFROM:+0200
TZOFFSETTO:+0100
TZNAME:CET
DTSTART:19701025T030000
RRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU
END:STANDARD
END:VTIMEZONE"""
TITLES = ["Sprogcafé", "Strikkecafé", "IT-café for seniorer", "Læseklub", "Babysalmesang", "Lektiecafé",
          "Foredrag", "Forfatteraften", "Filmklub", "Brætspilsaften", "Digital hjælp", "Højtlæsning"]
ROOMS = ["Salen", "Læsesalen", "Mødelokale 2", "Børneafdelingen", "Foyeren"]


def generate(n: int, seed: int = 7) -> bytes:
    rnd = random.Random(seed)
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//Vuoro bench//DA", VTIMEZONE]
    first = datetime(2026, 9, 1, tzinfo=TZ)
    series = n // 5
    for i in range(n):
        day = first + timedelta(days=rnd.randrange(0, 120))
        start = day.replace(hour=rnd.choice([10, 13, 14, 16, 17, 19]), minute=rnd.choice([0, 30]))
        end = start + timedelta(minutes=rnd.choice([60, 90, 120]))
        fmt = "%Y%m%dT%H%M%S"
        lines += ["BEGIN:VEVENT", f"UID:bench-{i}@sonderbro.example", "DTSTAMP:20260901T080000Z",
                  f"SUMMARY:{rnd.choice(TITLES)} {i}", f"LOCATION:{rnd.choice(ROOMS)}",
                  f"DTSTART;TZID=Europe/Copenhagen:{start.strftime(fmt)}",
                  f"DTEND;TZID=Europe/Copenhagen:{end.strftime(fmt)}"]
        if i < series:
            lines.append("RRULE:FREQ=WEEKLY;COUNT=20")
            if i % 4 == 0:
                lines.append(f"EXDATE;TZID=Europe/Copenhagen:{(start + timedelta(weeks=2)).strftime(fmt)}")
        lines.append("END:VEVENT")
        if i < series and i % 10 == 0:  # a moved occurrence
            moved = start + timedelta(weeks=3)
            lines += ["BEGIN:VEVENT", f"UID:bench-{i}@sonderbro.example", "DTSTAMP:20260901T080000Z",
                      f"RECURRENCE-ID;TZID=Europe/Copenhagen:{moved.strftime(fmt)}",
                      f"SUMMARY:{TITLES[0]} {i} (flyttet)",
                      f"DTSTART;TZID=Europe/Copenhagen:{(moved + timedelta(days=1)).strftime(fmt)}",
                      f"DTEND;TZID=Europe/Copenhagen:{(moved + timedelta(days=1, hours=1)).strftime(fmt)}",
                      "END:VEVENT"]
    lines.append("END:VCALENDAR")
    return ("\r\n".join(lines) + "\r\n").encode()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    from icalendar import Calendar

    body = generate(args.events)
    # the hub's window on a day in late October: yesterday + 31 days, across the DST change
    start = datetime(2026, 10, 19, tzinfo=TZ)
    end = start + timedelta(days=32)
    floor, full, occurrences = [], [], 0
    for _ in range(args.runs):
        t0 = time.perf_counter()
        Calendar.from_ical(body)
        floor.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        events = parse_ics(body, TZ, start, end, "bench")
        full.append(time.perf_counter() - t0)
        occurrences = len(events)
    best, median = min(full), statistics.median(full)
    print(f"feed: {args.events} VEVENTs ({args.events // 5} weekly series), {len(body) / 1024:.0f} KiB; "
          f"{occurrences} occurrences in the 32-day window")
    print(f"floor (icalendar parse only): median {statistics.median(floor):.3f} s")
    print(f"ICS import (parse + expand):  median {median:.3f} s, best {best:.3f} s   target ≤ {TARGET_S:.1f} s   "
          f"{'OK' if median <= TARGET_S else 'MISSED'} (ratio to floor {median / statistics.median(floor):.1f}×)")
    return 0 if median <= TARGET_S else 1


if __name__ == "__main__":
    sys.exit(main())
