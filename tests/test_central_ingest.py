"""The centre's half: a batch stored in one PostgreSQL transaction, exactly once, on a private cluster.

The batches are what a branch's outbox makes (``server.uplink.outbox``); the database is a real
PostgreSQL started by the test kit (``postgres_db``), migrated by the centre's own migrations.
"""

from __future__ import annotations

import json
from typing import Any

import psycopg
import pytest

from central.ingest import BatchRefused, register_branches, store_batch
from central.schema import MIGRATIONS, migrate
from server.uplink.outbox import batch_json

T1 = {"id": "t1", "service": "kvik", "letter": "K", "number": 1, "day": "2026-11-30", "label": "K001",
      "language": "da", "status": "waiting", "origin": "walk_in", "queued_at": "2026-11-30T09:00:00+00:00",
      "issued_at": "2026-11-30T09:00:00+00:00", "due_at": None, "counter": None, "called_at": None,
      "finished_at": None, "recalls": 0, "transfers": 0}
CALLED = {**T1, "status": "called", "counter": "kvik1", "called_at": "2026-11-30T09:05:00+00:00"}
EVENT = {"ticket_id": "t1", "kind": "issued", "at": "2026-11-30T09:00:00+00:00", "service": "kvik", "counter": None,
         "detail": "walk_in"}
AT = "2026-11-30T09:05:00.100000+00:00"


def batch(after: int, *rows: tuple[int, str, str, dict[str, Any]], stream: str = "s1", backlog: int = 0) -> Any:
    text = batch_json("north", stream, after, [(seq, kind, key, json.dumps(body), AT) for seq, kind, key, body in rows],
                      backlog or len(rows))
    return json.loads(text)


@pytest.fixture()
def db(postgres_db: str):
    assert migrate(postgres_db) == len(MIGRATIONS)
    with psycopg.connect(postgres_db) as connection:
        register_branches(connection, {"north": "North branch"})
        yield connection


def counts(db: psycopg.Connection) -> tuple[int, int, int]:
    return tuple(db.execute(f"SELECT COUNT(*) FROM {t} WHERE branch = 'north'").fetchone()[0]  # type: ignore[index]
                 for t in ("tickets", "ticket_events", "calls"))


def test_migrating_twice_changes_nothing(postgres_db: str) -> None:
    assert migrate(postgres_db) == migrate(postgres_db) == len(MIGRATIONS)


def test_a_batch_is_stored_and_a_resent_batch_changes_nothing(db: psycopg.Connection) -> None:
    first = batch(0, (1, "ticket", "t1", T1), (2, "event", "t1/1", EVENT), (3, "ticket", "t1", CALLED))
    stored = store_batch(db, "north", first)
    assert (stored.shipped, stored.applied) == (3, 3)
    assert counts(db) == (1, 1, 0)
    assert db.execute("SELECT status, revision FROM tickets").fetchone() == ("called", 3)
    # the branch crashed before it marked them shipped: it sends them again, from its own older position
    again = store_batch(db, "north", first)
    assert (again.shipped, again.applied) == (3, 0)
    assert counts(db) == (1, 1, 0)
    assert db.execute("SELECT status, revision FROM tickets").fetchone() == ("called", 3)


def test_an_older_revision_never_replaces_a_newer_one(db: psycopg.Connection) -> None:
    store_batch(db, "north", batch(0, (5, "ticket", "t1", CALLED)))
    # the same ticket's older state from another stream position cannot arrive later in order; from a
    # re-snapshot of the same stream it carries a lower seq and must lose
    db.execute("UPDATE streams SET shipped = 0")
    store_batch(db, "north", batch(0, (4, "ticket", "t1", T1)))
    assert db.execute("SELECT status, revision FROM tickets").fetchone() == ("called", 5)


def test_a_new_stream_starts_from_nothing_and_keeps_the_old_rows(db: psycopg.Connection) -> None:
    store_batch(db, "north", batch(0, (1, "ticket", "t1", T1), (2, "event", "t1/1", EVENT)))
    t2 = {**T1, "id": "t2", "number": 1, "day": "2026-12-01", "issued_at": "2026-12-01T09:00:00+00:00"}
    stored = store_batch(db, "north", batch(0, (1, "ticket", "t2", t2), stream="s2"))  # a replaced hub
    assert (stored.shipped, stored.applied) == (1, 1)
    assert counts(db) == (2, 1, 0)


def test_a_gap_is_refused_and_nothing_is_stored(db: psycopg.Connection) -> None:
    with pytest.raises(BatchRefused) as refused:
        store_batch(db, "north", batch(7, (8, "ticket", "t1", T1)))
    assert (refused.value.status, refused.value.code, refused.value.shipped) == (409, "gap", 0)
    assert counts(db) == (0, 0, 0)


def test_a_branch_whose_store_went_back_is_told_to_begin_anew(db: psycopg.Connection) -> None:
    first = batch(0, (1, "ticket", "t1", T1), (2, "event", "t1/1", EVENT), (3, "ticket", "t1", CALLED))
    store_batch(db, "north", first)
    # the branch's file restored from a backup taken after row 1: rows 2 and 3 are numbered again, for other things
    done = {**CALLED, "status": "done", "finished_at": "2026-11-30T09:09:00+00:00"}
    with pytest.raises(BatchRefused) as refused:
        store_batch(db, "north", batch(1, (2, "event", "t1/9", {**EVENT, "kind": "called"}), (3, "ticket", "t1", done)))
    assert (refused.value.status, refused.value.code) == (409, "diverged")
    assert db.execute("SELECT status FROM tickets").fetchone() == ("called",)  # nothing of it stored


@pytest.mark.parametrize("broken", [
    {"stream": "s1", "after": 0, "rows": [{"seq": 1, "kind": "bogus", "key": "x", "at": AT, "body": {}}]},
    {"stream": "s1", "after": 0, "rows": [{"seq": 2, "kind": "ticket", "key": "t1", "at": AT, "body": T1},
                                          {"seq": 1, "kind": "ticket", "key": "t1", "at": AT, "body": T1}]},
    {"stream": "", "after": 0, "rows": []},
    [],
])
def test_a_malformed_batch_is_refused_whole(db: psycopg.Connection, broken: Any) -> None:
    with pytest.raises(BatchRefused) as refused:
        store_batch(db, "north", broken)
    assert refused.value.status == 422
    assert counts(db) == (0, 0, 0)


def test_a_batch_that_fails_halfway_stores_nothing(db: psycopg.Connection) -> None:
    broken = {**T1, "id": "t2", "queued_at": None}  # NOT NULL: PostgreSQL refuses the second ticket
    with pytest.raises(psycopg.errors.NotNullViolation):
        store_batch(db, "north", batch(0, (1, "ticket", "t1", T1), (2, "ticket", "t2", broken)))
    assert counts(db) == (0, 0, 0)
    assert db.execute("SELECT shipped FROM streams").fetchall() in ([], [(0,)])


SIGNUP = {"id": "su1", "event_id": "ev1", "seat": None, "waiting_place": 1, "language": "da",
          "created_at": "2026-11-30T09:00:00+00:00", "attended_at": None}
SEATED = {**SIGNUP, "seat": 2, "waiting_place": None}
GONE = {"id": "su1", "event_id": "ev1", "cancelled_at": "2026-11-30T09:30:00+00:00", "cancelled": True}
CAFE = {"id": "ev1", "title": "Sprogcafé", "start": "2026-11-30T16:00:00+00:00", "end": "2026-11-30T17:30:00+00:00",
        "room": None, "state": "scheduled", "seats": 2, "waiting_list": 3, "created_at": "2026-11-30T08:00:00+00:00"}


def signups(db: psycopg.Connection) -> list[tuple[Any, ...]]:
    return db.execute("SELECT id, seat, waiting_place, revision FROM event_signups WHERE branch = 'north'").fetchall()


def test_sign_ups_and_staff_events_are_kept_at_their_newest_state_and_a_given_up_one_is_forgotten(
        db: psycopg.Connection) -> None:
    stored = store_batch(db, "north", batch(0, (1, "staff_event", "ev1", CAFE), (2, "signup", "su1", SIGNUP),
                                            (3, "signup", "su1", SEATED)))
    assert stored.applied == 3 and signups(db) == [("su1", 2, None, 3)]  # moved up in the same batch: the last
    assert db.execute("SELECT title, seats, waiting_list FROM staff_events").fetchall() == [("Sprogcafé", 2, 3)]
    store_batch(db, "north", batch(3, (4, "staff_event", "ev1", {**CAFE, "state": "cancelled"})))
    assert db.execute("SELECT state, revision FROM staff_events").fetchall() == [("cancelled", 4)]
    db.execute("UPDATE streams SET shipped = 0")  # an older state from a lower seq of the same stream loses
    store_batch(db, "north", batch(0, (2, "signup", "su1", SIGNUP)))
    assert signups(db) == [("su1", 2, None, 3)]
    store_batch(db, "north", batch(2, (5, "signup", "su1", GONE)))
    assert signups(db) == []
    again = store_batch(db, "north", batch(4, (5, "signup", "su1", GONE), (6, "signup", "su9", {**GONE, "id": "su9"})))
    assert again.applied == 1 and signups(db) == []  # a tombstone again, or of one never seen here: nothing
