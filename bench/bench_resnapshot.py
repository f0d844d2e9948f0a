"""Benchmark: the uplink's re-snapshot of a year of a busy branch (≈ 300,000 tickets), chunk by chunk.

After a 409 the branch ships its whole store again in a new stream (server/uplink/outbox.py). It used to be one
transaction (4.85 s for this store, every kiosk waiting); now ``Resnapshot`` plans it and ``SnapshotChunk`` copies
``SNAPSHOT_CHUNK_ROWS`` source rows per transaction. This generates the year's store (bench/bench_stats.py's
generator, through the real store), opens it for a centre, marks the joining copy shipped, then times the
re-snapshot the way the writer runs it (``SQLiteStore.save`` of each record, one transaction each): the longest
a chunk held the writer (what a kiosk may wait, plus its own commit), the median, and the whole copy.

    .venv/bin/python bench/bench_resnapshot.py [--tickets 300000] [--chunk 1000]
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_stats import generate  # noqa: E402

from server.config import SAMPLE_SITE, load_config  # noqa: E402
from server.engine import Outcome  # noqa: E402
from server.store import SQLiteStore  # noqa: E402
from server.uplink import outbox  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tickets", type=int, default=300_000)
    parser.add_argument("--chunk", type=int, default=outbox.SNAPSHOT_CHUNK_ROWS, help="source rows per transaction")
    args = parser.parse_args()
    outbox.SNAPSHOT_CHUNK_ROWS = args.chunk
    site = load_config(SAMPLE_SITE).site_id
    print(f"# bench_resnapshot {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, load "
          f"{' '.join(Path('/proc/loadavg').read_text().split()[:3])}")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "hub.sqlite3"
        made = generate(path, args.tickets)
        began = time.perf_counter()
        store = SQLiteStore(path, site, outbox=True)  # joining a centre: the history copied in one transaction
        joined = time.perf_counter() - began
        top = store.db.execute("SELECT MAX(seq), COUNT(*) FROM outbox").fetchone()
        store.save([Outcome(records=[outbox.ShippedMark(site, top[0], datetime.now(UTC).isoformat())])])
        print(f"store: {made:,} tickets; joining a centre copied {top[1]:,} rows in one transaction: {joined:.2f} s")
        held: list[float] = []
        began = time.perf_counter()
        for record in [outbox.Resnapshot(site)]:
            t0 = time.perf_counter()
            store.save([Outcome(records=[record])])
            held.append(time.perf_counter() - t0)
        while outbox.snapshot_left(store.db, site):
            t0 = time.perf_counter()
            store.save([Outcome(records=[outbox.SnapshotChunk(site)])])
            held.append(time.perf_counter() - t0)
        total = time.perf_counter() - began
        rows = store.db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0]
        store.close()
        floor_db = sqlite3.connect(Path(tmp) / "floor.sqlite3", isolation_level=None)
        floor_db.execute("PRAGMA journal_mode=WAL")
        floor_db.execute("PRAGMA synchronous=FULL")
        floor_db.execute("CREATE TABLE t (v)")
        t0 = time.perf_counter()
        for i in range(200):
            floor_db.execute("BEGIN")
            floor_db.execute("INSERT INTO t VALUES (?)", (i,))
            floor_db.execute("COMMIT")
        floor = (time.perf_counter() - t0) / 200
    ordered = sorted(held)
    print(f"re-snapshot: {rows:,} rows in {len(held):,} transactions ({outbox.SNAPSHOT_CHUNK_ROWS} source rows each), "
          f"{total:.2f} s in all; the writer held per transaction: median {ordered[len(ordered) // 2] * 1000:.1f} ms, "
          f"p99 {ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000:.1f} ms, "
          f"longest {ordered[-1] * 1000:.1f} ms (was one transaction of 4.85 s for 301,890 tickets)")
    print(f"floor: a bare durable commit {floor * 1000:.2f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
