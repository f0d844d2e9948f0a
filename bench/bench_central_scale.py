"""The centre's statistics at municipal scale: 50 branches × 1 year ≈ 15 million tickets.

A private PostgreSQL (``toolkit/postgres.py``; fsync off: the figures are about reading), the centre's own
migrations, then the branches' history generated straight into it with COPY (``toolkit/central_data.py``),
the per-day aggregates built (``central/rollup.py``), and the cross-branch summary timed as the centre's
``GET /api/v1/summary`` computes it (``central.figures.all_branches_summary``): every branch side by side
and all as one, for a month and a year, for one branch and for all. Beside it the old way (every ticket row
through Python, ``all_branches_summary_from_rows``) for one branch, as the floor we left.

    .venv/bin/python bench/bench_central_scale.py                     # 50 × 365 × ≈822 a day ≈ 15 M tickets
    .venv/bin/python bench/bench_central_scale.py --branches 5 --days 60 --per-day 300   # a quick look
    .venv/bin/python bench/bench_central_scale.py --keep /work/scale       # keep the cluster, then later:
    .venv/bin/python bench/bench_central_scale.py --reuse /work/scale      # the summaries again, on that data

Target (../shared/targets.md, the centre): cross-branch statistics summary, 50 branches × 1 year ≤ 2 s.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from central import figures, rollup  # noqa: E402
from central.app import SUMMARY_REFRESH_BUDGET_S  # noqa: E402
from central.config import CentreConfig, load_centre  # noqa: E402
from central.schema import migrate  # noqa: E402
from toolkit.central_data import generate  # noqa: E402
from toolkit.postgres import PostgresCluster  # noqa: E402

SITE = ROOT / "tests" / "sites" / "always_open.toml"
BUDGET = SUMMARY_REFRESH_BUDGET_S


def load() -> str:
    return "load {:.1f} {:.1f} {:.1f}".format(*os.getloadavg())


def write_config(folder: Path, database: str, ids: list[str]) -> Path:
    lines = ["[centre]", 'name = "Bench Kommune"', f'database = "{database}"', 'admin_token = "bench-admin-0123456789"']
    for bid in ids:
        site = SITE.read_text(encoding="utf-8").replace('id = "sonderbro"', f'id = "{bid}"', 1)
        (folder / f"{bid}.toml").write_text(site, encoding="utf-8")
        lines += [f"[branches.{bid}]", f'token = "{bid}-bench-token-0123456789"', f'site = "{bid}.toml"']
    path = folder / "centre.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def vacuum(database: str) -> None:
    with psycopg.connect(database, autocommit=True) as db:
        db.execute("VACUUM ANALYZE")


def timed(fn, repeat: int = 3) -> tuple[float, object]:  # type: ignore[no-untyped-def]
    times, result = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), result


def ingest_cost(batches: int = 40, rows: int = 500) -> None:
    """What marking the touched days costs the ingest: batches of ``rows`` new tickets stored with the mark and
    without it (the mark replaced by nothing), interleaved A/B on one cluster, median per batch."""
    import json

    from central import ingest
    from server.uplink.outbox import batch_json

    with PostgresCluster() as cluster:
        database = cluster.create_database("ingest")
        migrate(database)
        with psycopg.connect(database) as db:
            ingest.register_branches(db, {"north": "North"}, {"north": "Europe/Copenhagen"})
            times: dict[str, list[float]] = {"with the mark": [], "without": []}
            real = ingest.mark_ingested
            seq = 0
            for i in range(batches):
                mode = ("with the mark", "without")[i % 2]
                ingest.mark_ingested = real if mode == "with the mark" else (lambda *a: None)  # type: ignore
                body = []
                for _ in range(rows):
                    seq += 1
                    at = f"2026-11-{1 + seq % 28:02d}T10:00:00+00:00"
                    body.append((seq, "ticket", f"t{seq}", json.dumps({
                        "service": "kvik", "letter": "K", "number": seq, "day": at[:10], "label": f"K{seq}",
                        "language": "da", "status": "waiting", "origin": "walk_in", "queued_at": at, "issued_at": at,
                        "due_at": None, "counter": None, "called_at": None, "finished_at": None, "recalls": 0,
                        "transfers": 0}), at))
                batch = json.loads(batch_json("north", "s", seq - rows, body, 0))
                t0 = time.perf_counter()
                ingest.store_batch(db, "north", batch)
                times[mode].append(time.perf_counter() - t0)
            ingest.mark_ingested = real
    for mode, values in times.items():
        print(f"| ingest of a {rows}-row batch, {mode} | {statistics.median(values) * 1000:.1f} ms (median of "
              f"{len(values)}) |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--branches", type=int, default=50)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--per-day", type=int, default=822, help="tickets a branch-day, ±20 %% (822 ≈ 15 M a year)")
    parser.add_argument("--raw-all-month", action="store_true", help="also time all branches' month row by row")
    parser.add_argument("--ingest-cost", action="store_true", help="only: what marking the days costs the ingest")
    parser.add_argument("--reuse", type=Path, help="a cluster directory made before (its database 'scale', "
                                                   "e.g. a pg_basebackup of a run): time the summaries only")
    parser.add_argument("--keep", type=Path, help="an empty folder: the generated cluster stays there, so a later "
                                                  "--reuse of it times the summaries again (on a quieter machine)")
    args = parser.parse_args()
    if args.ingest_cost:
        print(f"# ingest cost, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; {load()}")
        ingest_cost()
        print(load())
        return 0
    end = date(2026, 11, 30)
    start = end - timedelta(days=args.days - 1)
    print(f"# bench_central_scale {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {platform.node()}, "
          f"{os.cpu_count()} cores, Python {platform.python_version()}; {load()}")
    print(f"{args.branches} branches × {args.days} days ({start} … {end}) × ≈{args.per_day} tickets a day")
    with tempfile.TemporaryDirectory(prefix="vuoro-scale-") as tmp, \
            PostgresCluster(workdir=args.reuse or args.keep) as cluster:
        database = cluster.dsn("scale") if args.reuse else cluster.create_database("scale")
        migrate(database)
        ids = [f"b{i:02d}" for i in range(1, args.branches + 1)]
        config = load_centre(write_config(Path(tmp), database, ids))
        with psycopg.connect(database) as db:
            if args.reuse:
                summaries(db, config, ids, start, end, args)
                return 0
            t0 = time.perf_counter()
            made = generate(db, {b: f"Branch {b}" for b in ids}, start, args.days, args.per_day, seed=16)
            generated = time.perf_counter() - t0
            print(f"generated (COPY) {made.tickets:,} tickets, {made.events:,} history lines, {made.feedback:,} "
                  f"ratings in {generated:.0f} s ({made.tickets / generated:,.0f} tickets/s); {load()}")
            vacuum(database)
            t0 = time.perf_counter()
            days = sum(rollup.refresh(db, b) for b in config.branches.values())
            built = time.perf_counter() - t0
            print(f"aggregates built: {days:,} branch-days in {built:.0f} s ({built / args.branches:.1f} s a branch); "
                  f"{load()}")
            vacuum(database)
            size = db.execute("SELECT pg_database_size(current_database())").fetchone()[0]
            sizes = {t: db.execute("SELECT pg_total_relation_size(%s)", (t,)).fetchone()[0] / 2**20
                     for t in ("tickets", "stats_day", "stats_day_hist", "stats_month_hist")}
            print(f"database {size / 2**30:.2f} GiB; " + ", ".join(f"{t} {mib:,.0f} MiB" for t, mib in sizes.items()))
            summaries(db, config, ids, start, end, args)
    return 0


def summaries(db: psycopg.Connection, config: CentreConfig, ids: list[str], start: date, end: date,
              args: argparse.Namespace) -> None:
    month = (date(2026, 6, 1), date(2026, 6, 30))
    year = (start, end)
    ragged = (date(2026, 1, 15), date(2026, 7, 14))
    one = [ids[0]]
    print(f"\n| summary ({load()}) | branches | period | median of 3 | target |\n|---|---|---|---|---|")
    cases = (("month", month, None), ("year", year, None), ("15 Jan–14 Jul", ragged, None),
             ("month", month, one), ("year", year, one))
    for label, (lo, hi), which in cases:
        seconds, result = timed(lambda lo=lo, hi=hi, which=which:
                                figures.all_branches_summary(db, config, lo, hi, which, budget_s=BUDGET))
        n = len(which or ids)
        target = "≤ 2 s" if n == len(ids) and label == "year" else ""
        issued = result["all"]["issued"]  # type: ignore[index]
        print(f"| aggregates, side by side + all | {n} | {label} ({issued:,} tickets) | {seconds:.3f} s "
              f"| {target} |")
    # a day of ingest: today marked at every branch (as every batch does), then the summary refreshes it
    for b in ids:
        db.execute("INSERT INTO stats_dirty (branch, day) VALUES (%s, %s) ON CONFLICT (branch, day) DO UPDATE "
                   "SET version = stats_dirty.version + 1", (b, end))
    db.commit()
    t0 = time.perf_counter()
    pending = figures.all_branches_summary(db, config, *year, budget_s=BUDGET)["pending_days"]
    print(f"| aggregates, today marked at all {len(ids)} branches first (the API's {BUDGET:g} s budget) | "
          f"{len(ids)} | year | {time.perf_counter() - t0:.3f} s (once; {pending} days left pending) | ≤ 2 s |")
    t0 = time.perf_counter()
    done = sum(rollup.refresh(db, b) for b in config.branches.values())
    print(f"| the refresher's round after that: {done} branch-days aggregated again | {len(ids)} | | "
          f"{time.perf_counter() - t0:.3f} s | |")
    one_config = load_centre(write_config(config.path.parent, config.database, one))
    for label, (lo, hi) in (("month", month), ("year", year)):
        seconds, _ = timed(lambda lo=lo, hi=hi: figures.all_branches_summary_from_rows(db, one_config, lo, hi),
                           repeat=1)
        print(f"| every row through Python (before) | 1 | {label} | {seconds:.3f} s | |")
    if args.raw_all_month:
        seconds, _ = timed(lambda: figures.all_branches_summary_from_rows(db, config, *month), repeat=1)
        print(f"| every row through Python (before) | {len(ids)} | month | {seconds:.3f} s | |")
    print(f"\n{load()}")


if __name__ == "__main__":
    sys.exit(main())
