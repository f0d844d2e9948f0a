"""What the harness measures and compares: the visitors' own records, the lag read from the centre's rows, how
long a backlog takes to ship, and at the end the branches' files against the centre's database.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
import requests

from bench.central_harness.branch import STAFF, Branch

ADDITIVE = ("issued", "served", "no_show", "expired", "left", "open", "transferred", "transfers", "walk_in",
            "booking", "bookings_kept", "bookings_no_show", "called", "within_target", "feedback_count")


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))] if ordered else float("nan")


# -- the visitors' records (load.py) ----------------------------------------------

def records(paths: Iterable[Path]) -> list[dict[str, Any]]:
    out = []
    for path in paths:
        if path.exists():
            out += [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return out


def kiosk_figures(recs: list[dict[str, Any]]) -> dict[str, Any]:
    """Tickets taken: how many, how many failed (anything but 201, or no answer), p50/p99 ms; desks' failures
    (a 409 is an answer: nothing to call or nobody at the desk)."""
    tickets = [r for r in recs if r["what"] == "ticket"]
    failed = [r for r in tickets if r["status"] != 201]
    desk_failed = [r for r in recs if r["what"] != "ticket" and r["status"] not in (200, 409)]
    ms = [r["ms"] for r in tickets if r["status"] == 201]
    return {"tickets": len(tickets), "failed": len(failed), "desk_calls": len(recs) - len(tickets),
            "desk_failed": len(desk_failed), "p50": pct(ms, 50), "p99": pct(ms, 99),
            "first_failure": (failed or desk_failed or [{}])[0].get("error")}


# -- the centre -----------------------------------------------------------------

def lag_ms(db: psycopg.Connection, since: datetime, until: datetime) -> list[float]:
    """Committed at a branch → stored at the centre, for every row committed in this window (the centre's own
    ``stored_at`` minus the branch's ``committed_at``; one machine, one clock)."""
    return [float(row[0]) for table in ("tickets", "ticket_events", "calls") for row in db.execute(
        f"SELECT EXTRACT(EPOCH FROM stored_at - committed_at) * 1000 FROM {table} "  # noqa: S608 - our table names
        "WHERE committed_at >= %s AND committed_at < %s", (since, until))]


def centre_position(db: psycopg.Connection, bid: str, stream: str) -> int:
    row = db.execute("SELECT shipped FROM streams WHERE branch = %s AND stream = %s", (bid, stream)).fetchone()
    return int(row[0]) if row else 0


def wait_shipped(database: str, targets: dict[str, tuple[str, int]], timeout: float) -> dict[str, float | None]:
    """Seconds from now until the centre holds each branch's stream up to its target seq (None: not in time)."""
    started = time.monotonic()
    done: dict[str, float | None] = dict.fromkeys(targets)
    while time.monotonic() - started < timeout and any(v is None for v in done.values()):
        try:
            with psycopg.connect(database, connect_timeout=2) as db:
                for bid, (stream, seq) in targets.items():
                    if done[bid] is None and centre_position(db, bid, stream) >= seq:
                        done[bid] = time.monotonic() - started
        except psycopg.OperationalError:
            pass
        time.sleep(0.05)
    return done


# -- at the end: the branches' files against the centre ---------------------------

def branch_rows(store: Path) -> dict[str, set[Any]]:
    with sqlite3.connect(f"file:{store}?mode=ro", uri=True, timeout=10) as db:
        return {
            "tickets": set(db.execute("SELECT id, label, status, counter FROM tickets")),
            "events": {f"{t}/{i}/{at}" for t, i, at in db.execute("SELECT ticket_id, id, at FROM ticket_log")},
            "calls": {row[0] for row in db.execute("SELECT id FROM calls")},
        }


def central_rows(db: psycopg.Connection, bid: str) -> dict[str, set[Any]]:
    return {
        "tickets": set(db.execute("SELECT id, label, status, counter FROM tickets WHERE branch = %s", (bid,))),
        "events": {r[0] for r in db.execute("SELECT key FROM ticket_events WHERE branch = %s", (bid,))},
        "calls": {r[0] for r in db.execute("SELECT id FROM calls WHERE branch = %s", (bid,))},
    }


def missing_at_centre(db: psycopg.Connection, bid: str, stores: list[Path]) -> dict[str, int]:
    """Rows a branch holds (in all its files: a wiped hub's old one too) that the centre does not, by kind; and
    rows the centre holds that none of the branch's files has (``extra_*``)."""
    held: dict[str, set[Any]] = {"tickets": set(), "events": set(), "calls": set()}
    for store in stores:
        for kind, rows in branch_rows(store).items():
            held[kind] |= rows
    central = central_rows(db, bid)
    out = {kind: len(held[kind] - central[kind]) for kind in held}
    out.update({f"extra_{kind}": len(central[kind] - held[kind]) for kind in held})
    return out


def repeated_numbers(db: psycopg.Connection) -> list[tuple[Any, ...]]:
    """Ticket numbers given twice: per branch, letter and day (the label is letter + number)."""
    return list(db.execute("SELECT branch, day, label, COUNT(*) FROM tickets GROUP BY branch, day, label "
                           "HAVING COUNT(*) > 1 ORDER BY branch, day, label"))


def branch_summary(branch: Branch) -> dict[str, Any]:
    answer = requests.get(f"{branch.hub.url}/api/v1/stats/summary", headers=STAFF, timeout=30)
    answer.raise_for_status()
    return dict(answer.json()["total"])


def added(parts: list[dict[str, Any]]) -> dict[str, int]:
    return {name: sum(int(p.get(name) or 0) for p in parts) for name in ADDITIVE}
