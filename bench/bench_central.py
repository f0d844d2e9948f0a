"""Centre benchmark: how long a row committed at a branch takes to be stored at the centre, and what the
uplink costs the branch's own ticket latency.

Real parts on this one machine: a private PostgreSQL (fsync on), a private Mosquitto, the centre
(``vuoro central``) and N branch hubs (``vuoro hub`` with ``[central]``). Each branch issues
``--rate`` tickets/s through its HTTP API while a desk calls the next visitor every second. Then the
same load runs on the same branches without ``[central]`` for the comparison.

Lag is read from the centre's own rows: ``stored_at`` (the centre's clock at its INSERT) minus
``committed_at`` (the branch's wall clock when it wrote the row, just before its COMMIT): it includes
the branch's fsync, the uplink's wait for its nudge, HTTP and the centre's transaction.

    .venv/bin/python bench/bench_central.py [--branches 2] [--seconds 30] [--rate 2]

Not yet measured here (docs/central.md): network namespaces with veth cuts, 7 branches in their own
namespaces (bench/bench_central_scale.py: the 50-branch statistics).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import psycopg
import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from toolkit.broker import Broker, free_port, fresh_root  # noqa: E402
from toolkit.central_process import CentralProcess, write_centre_config  # noqa: E402
from toolkit.hub_process import HubProcess  # noqa: E402
from toolkit.postgres import PostgresCluster  # noqa: E402

SITE = ROOT / "tests" / "sites" / "always_open.toml"
KIOSK = {"Authorization": "Bearer demo-kiosk1-token-change-me"}
STAFF = {"Authorization": "Bearer demo-staff-token-change-me"}


def site_file(folder: Path, bid: str, centre_port: int | None) -> tuple[str, Path]:
    token = f"{bid}-bench-token-0123456789"
    text = SITE.read_text(encoding="utf-8").replace('id = "sonderbro"', f'id = "{bid}"', 1)
    if centre_port:
        text += f'\n[central]\nurl = "http://127.0.0.1:{centre_port}"\ntoken = "{token}"\n'
    path = folder / f"{bid}{'' if centre_port else '-alone'}.toml"
    path.write_text(text, encoding="utf-8")
    return token, path


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))] if ordered else float("nan")


def drive(hubs: list[HubProcess], seconds: float, rate: float) -> list[float]:
    """Every branch: ``rate`` tickets/s and a call every second; the tickets' latencies in ms."""
    latencies: list[float] = []
    failures: list[str] = []
    stop = time.monotonic() + seconds

    def kiosk(hub: HubProcess) -> None:
        session = requests.Session()
        step = 1.0 / rate
        due = time.monotonic()
        while due < stop:
            time.sleep(max(0.0, due - time.monotonic()))
            started = time.perf_counter()
            answer = session.post(f"{hub.url}/api/v1/tickets", json={"service": "kvik", "language": "da"},
                                  headers={**KIOSK, "Idempotency-Key": uuid.uuid4().hex}, timeout=10)
            latencies.append((time.perf_counter() - started) * 1000)
            if answer.status_code != 201:
                failures.append(answer.text)
            due += step

    def desk(hub: HubProcess) -> None:
        session = requests.Session()
        while time.monotonic() < stop:
            session.post(f"{hub.url}/api/v1/counters/kvik1/next", headers=STAFF, timeout=10)
            time.sleep(1.0)

    threads = [threading.Thread(target=f, args=(h,)) for h in hubs for f in (kiosk, desk)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if failures:
        print(f"  {len(failures)} failed kiosk requests, e.g. {failures[0][:200]}")
    return latencies


def writer_cost(n: int = 500) -> tuple[float, float]:
    """The writer's own price of the outbox: median ms of one ticket's ``save`` (durable commit) without and with
    it, alternating on two stores in the same folder so both see the same disk and the same noise."""
    from datetime import UTC, datetime

    from server.config import load_config
    from server.engine import QueueEngine
    from server.store import SQLiteStore

    config = load_config(SITE)
    folder = Path(tempfile.mkdtemp(prefix="vuoro-bench-writer-"))
    stores = [SQLiteStore(folder / "alone.sqlite3", config.site_id),
              SQLiteStore(folder / "branch.sqlite3", config.site_id, outbox=True)]
    now = datetime.now(UTC)
    engines = [QueueEngine(config, s.load(now.astimezone(config.timezone).date(), now)) for s in stores]
    times: list[list[float]] = [[], []]
    for _ in range(n):
        for i in (0, 1):
            outcome = engines[i].issue("kvik", "da", datetime.now(UTC))
            started = time.perf_counter()
            stores[i].save([outcome])
            times[i].append((time.perf_counter() - started) * 1000)
    for store in stores:
        store.close()
    return statistics.median(times[0]), statistics.median(times[1])


def kill_rounds(rounds: int, work: Path, broker: Broker, database: str) -> None:
    """One branch whose hub SIGKILLs itself after the centre's commit of its first batch, before its own mark,
    ``rounds`` times; then every row must be at the centre exactly once."""
    import sqlite3

    port = free_port()
    token, site = site_file(work, "killed", port)
    centre = CentralProcess(write_centre_config(work / "centre-kill.toml", database, {"killed": (token, site)}),
                            port=port).start()
    hub = HubProcess(site, work / "killed", broker.url, topic_root=fresh_root())
    hits = 0
    started = time.monotonic()
    try:
        for _ in range(rounds):
            hub.env = {"VUORO_UPLINK_KILL_AFTER": "1"}
            hub.topic_root = fresh_root()
            hub.start(timeout=60)  # a loaded machine: 20 s was once too few
            key = uuid.uuid4().hex
            with contextlib.suppress(requests.RequestException):  # killed before it answered: the retry below
                requests.post(f"{hub.url}/api/v1/tickets", json={"service": "kvik", "language": "da"},
                              headers={**KIOSK, "Idempotency-Key": key}, timeout=10)
            assert hub.process is not None
            hub.process.wait(30)
            hits += hub.process.returncode == -9
            hub.process = None
            hub.env = {}
            hub.topic_root = fresh_root()
            hub.start(timeout=60)
            answer = requests.post(f"{hub.url}/api/v1/tickets", json={"service": "kvik", "language": "da"},
                                   headers={**KIOSK, "Idempotency-Key": key}, timeout=10)
            assert answer.status_code in (200, 201), answer.text
            hub.stop()
        hub.start(timeout=60)
        time.sleep(2)
        with sqlite3.connect(work / "killed" / "hub.sqlite3") as db:
            branch = (db.execute("SELECT COUNT(*) FROM tickets").fetchone()[0],
                      db.execute("SELECT COUNT(*) FROM ticket_log").fetchone()[0])
        with psycopg.connect(database) as db:
            central = (db.execute("SELECT COUNT(*) FROM tickets WHERE branch = 'killed'").fetchone()[0],  # type: ignore[index]
                       db.execute("SELECT COUNT(*) FROM ticket_events WHERE branch = 'killed'").fetchone()[0])  # type: ignore[index]
    finally:
        hub.stop()
        centre.stop()
    print(f"hub SIGKILLed between the centre's commit and its own mark: {hits} of {rounds} rounds hit the window "
          f"({time.monotonic() - started:.0f} s); tickets/history at the branch {branch}, at the centre {central}: "
          f"{'every row exactly once' if branch == central else 'MISMATCH'}")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--branches", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--rate", type=float, default=2.0, help="tickets per second per branch")
    parser.add_argument("--kills", type=int, default=0, help="also SIGKILL a hub between the centre's commit and "
                                                            "its own mark this many times")
    args = parser.parse_args()
    alone, branch = writer_cost()
    print(f"writer, one ticket's durable save: median {alone:.3f} ms alone, {branch:.3f} ms with the outbox "
          f"(+{(branch / alone - 1) * 100:.0f} %)")
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"load {os.getloadavg()[0]:.1f}")
    work = Path(tempfile.mkdtemp(prefix="vuoro-bench-central-"))
    ids = [f"branch{i + 1}" for i in range(args.branches)]
    with PostgresCluster(fsync=True) as pg, Broker() as broker:
        database = pg.create_database("central")
        port = free_port()
        sites = {bid: site_file(work, bid, port) for bid in ids}
        centre = CentralProcess(write_centre_config(work / "centre.toml", database, sites), port=port).start()
        hubs = [HubProcess(sites[bid][1], work / bid, broker.url, topic_root=fresh_root()).start() for bid in ids]
        try:
            with_uplink = drive(hubs, args.seconds, args.rate)
            time.sleep(3)  # the last rows arrive
            with psycopg.connect(database) as db:
                lags = [row[0] for table in ("tickets", "ticket_events", "calls") for row in db.execute(
                    f"SELECT EXTRACT(EPOCH FROM stored_at - committed_at) * 1000 FROM {table}")]
                counts = db.execute("SELECT COUNT(*) FROM tickets").fetchone()
        finally:
            for hub in hubs:
                hub.stop()
            centre.stop()
        alone = [HubProcess(site_file(work, bid, None)[1], work / f"{bid}-alone", broker.url,
                            topic_root=fresh_root()).start() for bid in ids]
        try:
            without = drive(alone, args.seconds, args.rate)
        finally:
            for hub in alone:
                hub.stop()
        if args.kills:
            kill_rounds(args.kills, work, broker, pg.create_database("central_kills"))
    lag_floats = [float(x) for x in lags]
    print(f"{args.branches} branches x {args.rate:g} tickets/s for {args.seconds:g} s, a call per branch per second; "
          f"{counts[0] if counts else 0} tickets at the centre, {len(lag_floats)} rows")
    print(f"committed at a branch -> stored at the centre: p50 {pct(lag_floats, 50):.1f} ms, "
          f"p99 {pct(lag_floats, 99):.1f} ms, max {max(lag_floats):.1f} ms   (target p50 <= 200 ms, p99 <= 1 s)")
    print(f"branch ticket latency with the uplink: p50 {statistics.median(with_uplink):.2f} ms, "
          f"p99 {pct(with_uplink, 99):.2f} ms (n = {len(with_uplink)})")
    print(f"branch ticket latency without it:      p50 {statistics.median(without):.2f} ms, "
          f"p99 {pct(without, 99):.2f} ms (n = {len(without)})   (target: p99 within 10 %)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
