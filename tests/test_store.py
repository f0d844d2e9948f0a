"""The SQLite store: durable settings, migrations, and the constraint that guards numbers."""

from __future__ import annotations

import itertools
import sqlite3
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from server.config import load_config
from server.engine import QueueEngine
from server.store import MIGRATIONS, SQLiteStore

ALWAYS_OPEN = Path(__file__).parent / "sites" / "always_open.toml"
NOW = datetime(2026, 11, 23, 11, 0, tzinfo=ZoneInfo("Europe/Copenhagen")).astimezone(UTC)
DAY = date(2026, 11, 23)


def engine_on(store: SQLiteStore, now: datetime = NOW, prefix: str = "") -> QueueEngine:
    ids = itertools.count(1)
    config = load_config(ALWAYS_OPEN)
    return QueueEngine(config, store.load(DAY, now), new_id=lambda: f"{prefix}{now.timestamp()}-{next(ids)}",
                       new_token=lambda: f"{prefix}tok{next(ids)}")


def test_the_file_is_durable_and_versioned(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "hub.sqlite3", "sonderbro")
    assert store.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert store.db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    assert store.db.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert store.schema_version == len(MIGRATIONS)
    store.close()
    again = SQLiteStore(tmp_path / "hub.sqlite3", "sonderbro")  # re-opening applies nothing twice
    assert again.schema_version == len(MIGRATIONS)


def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "hub.sqlite3"
    SQLiteStore(path, "sonderbro").close()
    sqlite3.connect(path).execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    with pytest.raises(RuntimeError, match="newer than this hub knows"):
        SQLiteStore(path, "sonderbro")


def test_the_database_itself_refuses_a_number_twice_a_day(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "hub.sqlite3", "sonderbro")
    engine = engine_on(store)
    store.save([engine.issue("kvik", "da", NOW)])
    # A second engine that believes it is starting from scratch (a bug, or a second hub):
    rogue = engine_on(store, prefix="rogue-")
    rogue.next_numbers = {}
    with pytest.raises(sqlite3.IntegrityError, match=r"UNIQUE constraint failed: tickets.site, tickets.letter"):
        store.save([rogue.issue("kvik", "da", NOW + timedelta(seconds=1))])
    assert [t.label for t in store.tickets_of_day(DAY)] == ["K001"]


def test_a_restarted_engine_carries_on_where_it_stopped(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "hub.sqlite3", "sonderbro")
    engine = engine_on(store)
    outcomes = [engine.issue("kvik", "da", NOW + timedelta(minutes=i), idempotency_key=f"k:{i}") for i in range(3)]
    outcomes.append(engine.call_next("kvik1", NOW + timedelta(minutes=4)))
    outcomes.append(engine.call_next("kvik1", NOW + timedelta(minutes=10)))
    store.save(outcomes)
    store.close()

    store = SQLiteStore(tmp_path / "hub.sqlite3", "sonderbro")
    later = NOW + timedelta(minutes=11)
    restarted = engine_on(store, later, prefix="after-")
    assert restarted.counters["kvik1"].ticket_id == outcomes[4].ticket.id
    assert [t.label for t in restarted.waiting("kvik")] == ["K003"]
    assert restarted.issue("kvik", "da", later).ticket.label == "K004"
    assert restarted.issue("kvik", "da", later, idempotency_key="k:1").ticket.label == "K002"
    assert restarted.average_service_seconds("kvik") == 360
    assert [c.ticket for c in restarted.recent_calls] == ["K002", "K001"]


def test_the_store_remembers_its_business_day(tmp_path: Path) -> None:
    """What a restart, a restored backup or a clock step rolls from: the store's day, not the wall clock's."""
    store = SQLiteStore(tmp_path / "hub.sqlite3", "sonderbro")
    assert store.business_day() is None  # a new store: the hub starts on today
    engine = engine_on(store)
    store.save([engine.issue("kvik", "da", NOW)])
    assert store.business_day() == DAY  # a store with tickets but no record yet: the latest ticket's day
    wednesday = NOW + timedelta(days=2)
    store.save([engine.roll_day(wednesday)])
    assert store.business_day() == DAY + timedelta(days=2)  # recorded, though no ticket was issued that day
    store.save([QueueEngine(engine.config, store.load(DAY, NOW)).roll_day(NOW + timedelta(days=1))])
    assert store.business_day() == DAY + timedelta(days=2)  # an older day is never written over a later one


def test_a_failed_transaction_leaves_nothing_behind(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "hub.sqlite3", "sonderbro")
    engine = engine_on(store)
    good = engine.issue("kvik", "da", NOW)
    clash = engine.issue("kvik", "da", NOW)
    clash.ticket.number = good.ticket.number  # force the unique constraint to fire mid-batch
    with pytest.raises(sqlite3.IntegrityError):
        store.save([good, clash])
    assert store.tickets_of_day(DAY) == []


# -- who touches the database ---------------------------------------------------------------------------------


def test_only_the_hubs_writer_thread_uses_the_stores_connection(tmp_path: Path) -> None:
    """The writer owns the connection (Datasette's _execute_writes): any other thread is refused, and a
    long read gets a read-only connection of its own that sees what was committed."""
    from server.hub import Hub
    from server.store import WrongThread

    config = load_config(ALWAYS_OPEN)
    hub = Hub(config, SQLiteStore(tmp_path / "hub.sqlite3", config.site_id), clock=lambda: NOW).start()
    try:
        hub.call(lambda engine, now: engine.issue("kvik", "da", now))
        with pytest.raises(WrongThread):
            hub.store.rows("SELECT COUNT(*) FROM tickets")
        with pytest.raises(WrongThread):
            hub.store.save([])
        assert hub.call(lambda engine, now: hub.store.rows("SELECT COUNT(*) FROM tickets")) == [(1,)]
        with hub.store.reader() as db:
            assert db.execute("SELECT label FROM tickets").fetchall() == [("K001",)]
            with pytest.raises(sqlite3.OperationalError, match="readonly"):
                db.execute("DELETE FROM tickets")
    finally:
        hub.stop()


def test_no_module_but_the_store_opens_the_database() -> None:
    """The rule at the top of server/store.py, kept by every room of the hub (bookings, events, statistics)."""
    import re

    server = Path(__file__).resolve().parent.parent / "server"
    offenders = [str(path.relative_to(server)) for path in sorted(server.rglob("*.py")) if path.name != "store.py"
                 and re.search(r"sqlite3\.connect\(|\bstore\.db\b|\.store\.db\b", path.read_text(encoding="utf-8"))]
    assert offenders == []
