"""The centre's per-day aggregates (central/rollup.py) against the figures computed from every ticket row.

A small municipality, generated into a real PostgreSQL (toolkit/central_data.py: served, not shown up,
expired, left, transferred, bookings early and late, tickets still open, ratings), over the last
Sunday of October (a 25-hour day in Copenhagen) and a month's turn. For each branch and all of them
as one, over periods that use day rows, month rows and both: every count, mean, maximum, service level
and rating is the one ``server.stats.figures`` computes from the rows; every percentile is the true
nearest-rank percentile rounded up to its bucket (the stated resolution). Then the ingest keeps it
fresh: a ticket's newer state, a new ticket and a new target each change the figures as the rows do.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import psycopg
import pytest

from central import figures, rollup
from central.config import CentreConfig, load_centre
from central.ingest import store_batch
from central.schema import migrate
from server.stats.figures import LocalTime, nearest_rank, ticket_facts
from server.uplink.outbox import batch_json
from tests.conftest import TEST_SITE
from toolkit.central_data import generate

BRANCHES = {"north": "Nordby Bibliotek", "south": "Sydby Bibliotek", "east": "Østby Bibliotek"}
START, DAYS = date(2026, 10, 24), 10  # Sat 24 Oct … Mon 2 Nov: DST ends on the 25th, November begins on the 1st
PERIODS = [(date(2026, 10, 25), date(2026, 10, 25)), (date(2026, 10, 24), date(2026, 11, 2)),
           (date(2026, 11, 1), date(2026, 11, 30)), (date(2026, 10, 1), date(2026, 10, 31))]


def write_config(folder: Path, database: str, text_change: tuple[str, str] | None = None) -> CentreConfig:
    lines = ["[centre]", 'name = "Test Kommune"', f'database = "{database}"',
             'admin_token = "test-admin-token-0123456"']
    for bid, name in BRANCHES.items():
        site = TEST_SITE.read_text(encoding="utf-8").replace('id = "sonderbro"', f'id = "{bid}"', 1)
        site = site.replace('name = "Sønderbro Bibliotek & Borgerservice"', f'name = "{name}"', 1)
        if text_change:
            site = site.replace(*text_change)
        (folder / f"{bid}.toml").write_text(site, encoding="utf-8")
        lines += [f"[branches.{bid}]", f'token = "{bid}-token-0123456789"', f'site = "{bid}.toml"']
    path = folder / "centre.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return load_centre(path)


@pytest.fixture()
def centre(tmp_path: Path, postgres_db: str) -> tuple[CentreConfig, psycopg.Connection]:
    migrate(postgres_db)
    config = write_config(tmp_path, postgres_db)
    with psycopg.connect(postgres_db) as db:
        made = generate(db, BRANCHES, START, DAYS, 60, open_day=date(2026, 11, 2))
        assert made.tickets > 1500 and made.events > 0 and made.feedback > 0
        yield config, db


def true_percentiles(db: psycopg.Connection, config: CentreConfig, bids: list[str], start: date,
                     end: date) -> dict[str, float | None]:
    """Nearest-rank percentiles of the raw waits and service times, unrounded, by the branch's own definitions
    (``ticket_facts``), rounded up to their bucket: what the aggregates must say."""
    waits: list[float] = []
    services: list[float] = []
    for bid in bids:
        branch = config.branches[bid]
        local = LocalTime(branch.site.timezone)
        targets = {sid: s.target_wait_min for sid, s in branch.site.services.items()}
        first = figures.read_first_calls(db, bid, start, end)
        for row in figures.read_branch_tickets(db, bid, start, end):
            facts = ticket_facts(row, local, targets, first)
            if not start.isoformat() <= facts.day <= end.isoformat():
                continue
            if facts.wait_s is not None:
                waits.append(facts.wait_s)
            if facts.service_s is not None:
                services.append(facts.service_s)
    waits.sort()
    services.sort()

    def up(values: list[float], p: int) -> float | None:
        value = nearest_rank(values, p)
        return None if value is None else float(rollup.bucket(value))

    return {"wait_median_s": up(waits, 50), "wait_p90_s": up(waits, 90), "service_median_s": up(services, 50),
            "service_p90_s": up(services, 90)}


PERCENTILES = ("wait_median_s", "wait_p90_s", "service_median_s", "service_p90_s")


def assert_same(aggregated: dict[str, Any], raw: dict[str, Any], percentiles: dict[str, float | None]) -> None:
    for key, value in raw.items():
        if key in PERCENTILES:
            assert aggregated[key] == percentiles[key], key
        else:
            assert aggregated[key] == value, key
    assert set(aggregated) == set(raw)


def test_the_aggregates_say_what_every_row_says(centre: tuple[CentreConfig, psycopg.Connection]) -> None:
    config, db = centre
    for start, end in PERIODS:
        fast = figures.all_branches_summary(db, config, start, end)
        slow = figures.all_branches_summary_from_rows(db, config, start, end)
        assert [b["branch"] for b in fast["branches"]] == list(BRANCHES)
        for mine, reference in zip(fast["branches"], slow["branches"], strict=True):
            assert_same(mine, reference, true_percentiles(db, config, [mine["branch"]], start, end))
        assert_same(fast["all"], slow["all"], true_percentiles(db, config, list(BRANCHES), start, end))
    # the checks above can fail: the period had tickets of every kind and the percentiles were real ones
    whole = figures.all_branches_summary(db, config, *PERIODS[1])["all"]
    assert min(whole[k] for k in ("served", "no_show", "expired", "left", "open", "transferred", "booking")) > 0
    assert 0 < whole["service_level"] < 1 and whole["feedback_count"] > 0
    assert whole["wait_median_s"] < whole["wait_p90_s"] < whole["wait_max_s"]
    # a year read from the month rows: October whole is one month row per branch and kind
    assert db.execute("SELECT COUNT(DISTINCT month) FROM stats_month_hist").fetchone() == (2,)


def test_the_percentile_is_the_true_one_rounded_up_to_its_bucket() -> None:
    assert [rollup.bucket(s) for s in (0, 0.2, 1, 59.000001, 120, 120.5, 599, 600.1, 3599, 3600.5, 7201)] == \
        [0, 1, 1, 60, 120, 125, 600, 610, 3600, 3660, 7260]
    waits = [0.5, 61.2, 61.9, 130.0, 700.2]  # nearest rank of 5: median rank 3 → 61.9 → bucket 62
    hist: dict[int, int] = {}
    for w in waits:
        hist[rollup.bucket(w)] = hist.get(rollup.bucket(w), 0) + 1
    assert rollup._percentile(hist, 50) == rollup.bucket(nearest_rank(sorted(waits), 50)) == 62
    assert rollup._percentile(hist, 90) == 710


def ticket_row(seq: int, tid: str, **changes: Any) -> tuple[int, str, str, str, str]:
    body = {"id": tid, "service": "kvik", "letter": "K", "number": seq, "day": "2026-11-02", "label": f"K{seq:03d}",
            "language": "da", "status": "waiting", "origin": "walk_in", "queued_at": "2026-11-02T10:00:00+00:00",
            "issued_at": "2026-11-02T10:00:00+00:00", "due_at": None, "counter": None, "called_at": None,
            "finished_at": None, "recalls": 0, "transfers": 0, **changes}
    return (seq, "ticket", tid, json.dumps(body), "2026-11-02T12:00:00+00:00")


def test_the_ingest_keeps_the_aggregates_fresh(centre: tuple[CentreConfig, psycopg.Connection], tmp_path: Path,
                                               postgres_db: str) -> None:
    config, db = centre
    day = date(2026, 11, 2)
    before = figures.all_branches_summary(db, config, day, day, ["north"])["branches"][0]
    marked = "SELECT COUNT(*) FROM stats_dirty WHERE branch = 'north' AND day = %s"
    assert db.execute(marked, (day,)).fetchone() == (0,)

    def ship(after: int, *rows: tuple[int, str, str, str, str]) -> None:
        store_batch(db, "north", json.loads(batch_json("north", "live", after, list(rows), 0)))

    ship(0, ticket_row(1, "live-1"))
    assert db.execute(marked, (day,)).fetchone() == (1,)  # marked in the batch's own commit
    now = figures.all_branches_summary(db, config, day, day, ["north"])["branches"][0]
    assert (now["issued"], now["open"]) == (before["issued"] + 1, before["open"] + 1)
    # its newer state: called after 3 h (past every percentile and the old maximum), then served
    ship(1, ticket_row(2, "live-1", status="done", counter="kvik1", called_at="2026-11-02T13:00:00.5+00:00",
                       finished_at="2026-11-02T13:05:00+00:00"))
    now = figures.all_branches_summary(db, config, day, day, ["north"])["branches"][0]
    assert (now["open"], now["served"], now["called"]) == (before["open"], before["served"] + 1, before["called"] + 1)
    assert now["wait_max_s"] == 10800.5
    reference = figures.all_branches_summary_from_rows(db, config, day, day)["branches"][0]
    assert_same(now, reference, true_percentiles(db, config, ["north"], day, day))

    # a new target in the site files: every day of every branch counted again against it
    longer = write_config(tmp_path, postgres_db, ('target_wait_min = 10', 'target_wait_min = 200'))
    relaxed = figures.all_branches_summary(db, longer, START, day)["all"]
    assert relaxed["within_target"] > figures.all_branches_summary(db, config, START, day)["all"]["within_target"]
    assert relaxed == figures.all_branches_summary(db, longer, START, day)["all"]  # and stable once counted
    assert_same(relaxed, figures.all_branches_summary_from_rows(db, longer, START, day)["all"],
                true_percentiles(db, longer, list(BRANCHES), START, day))
