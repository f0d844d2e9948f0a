"""Storing a branch's batch: ONE PostgreSQL transaction, so a batch is stored whole or not at all.

The transaction locks the branch's stream row (``FOR UPDATE``: two deliveries of one branch are stored one
after the other), skips every row at or below the stream's shipped position, upserts a ticket only
with a newer revision (its outbox ``seq``), inserts a history line or a call only if its key is new,
and moves the position to the batch's last ``seq``. Hence exactly once: a re-sent batch (the branch
crashed after this COMMIT, before it marked the rows shipped) finds every row at or below the
position, or already there, and changes nothing; a batch lost on the way is sent again because the
branch trims only what this function acknowledged.

A batch that says the centre has more than it has (``after`` above the position: the centre's database
was restored from an older backup) is refused with 409 and the position, so the gap is loud, never
silently skipped over. So is a batch whose row at the centre's position differs from the row stored
there (its digest): the branch's own file went back to a backup and numbered new rows again. Either
409 makes the branch begin a new stream and ship its whole store again.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg

from central.rollup import mark_ingested
from server.uplink.outbox import (
    BOOKING,
    CALL,
    DEVICE_STATUS,
    EVENT,
    FEEDBACK,
    ROW_KINDS,
    SIGNUP,
    STAFF_EVENT,
    TICKET,
)

_TICKET_FIELDS = ("service", "letter", "number", "day", "label", "language", "status", "origin", "queued_at",
                  "issued_at", "due_at", "counter", "called_at", "finished_at", "recalls", "transfers", "channel")
_UPSERT_TICKET = (
    f"INSERT INTO tickets (branch, id, stream, revision, {', '.join(_TICKET_FIELDS)}, committed_at) "
    f"VALUES (%s, %s, %s, %s, {', '.join('%s' for _ in _TICKET_FIELDS)}, %s) "
    f"ON CONFLICT (branch, id) DO UPDATE SET stream = excluded.stream, revision = excluded.revision, "
    f"{', '.join(f'{f} = excluded.{f}' for f in _TICKET_FIELDS)}, committed_at = excluded.committed_at, "
    "stored_at = clock_timestamp() "
    # A newer revision of the same stream, or the first of a newer stream (a re-snapshot, a replaced hub).
    "WHERE tickets.stream <> excluded.stream OR tickets.revision < excluded.revision"
)
_INSERT_EVENT = ("INSERT INTO ticket_events (branch, key, ticket_id, kind, at, service, counter, detail, committed_at) "
                 "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (branch, key) DO NOTHING")
_INSERT_CALL = ("INSERT INTO calls (branch, id, ticket_id, ticket, service, counter, at, recall, committed_at) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (branch, id) DO NOTHING")
_INSERT_FEEDBACK = ("INSERT INTO feedback (branch, key, at, rating, faces, service, device, committed_at) "
                    "VALUES (%s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (branch, key) DO NOTHING")
_INSERT_DEVICE = ("INSERT INTO device_status (branch, key, device, kind, at, online, printer, detail, committed_at) "
                  "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (branch, key) DO NOTHING")


# What's on (migration 8): each row at its newest revision, like a ticket; a sign-up given up is deleted.
_NEWER = "WHERE {t}.stream <> excluded.stream OR {t}.revision < excluded.revision"
_STAFF_EVENT_FIELDS = ("title", "start_at", "end_at", "room", "state", "seats", "waiting_list", "created_at")
_UPSERT_STAFF_EVENT = (
    f"INSERT INTO staff_events (branch, id, stream, revision, {', '.join(_STAFF_EVENT_FIELDS)}, committed_at) "
    f"VALUES ({', '.join('%s' for _ in range(5 + len(_STAFF_EVENT_FIELDS)))}) ON CONFLICT (branch, id) DO UPDATE SET "
    f"stream = excluded.stream, revision = excluded.revision, "
    f"{', '.join(f'{f} = excluded.{f}' for f in _STAFF_EVENT_FIELDS)}, committed_at = excluded.committed_at, "
    f"stored_at = clock_timestamp() {_NEWER.format(t='staff_events')}")
_SIGNUP_FIELDS = ("event_id", "seat", "waiting_place", "language", "created_at", "attended_at")
_UPSERT_SIGNUP = (
    f"INSERT INTO event_signups (branch, id, stream, revision, {', '.join(_SIGNUP_FIELDS)}, committed_at) "
    f"VALUES ({', '.join('%s' for _ in range(5 + len(_SIGNUP_FIELDS)))}) ON CONFLICT (branch, id) DO UPDATE SET "
    f"stream = excluded.stream, revision = excluded.revision, "
    f"{', '.join(f'{f} = excluded.{f}' for f in _SIGNUP_FIELDS)}, committed_at = excluded.committed_at, "
    f"stored_at = clock_timestamp() {_NEWER.format(t='event_signups')}")
_DELETE_SIGNUP = "DELETE FROM event_signups WHERE branch = %s AND id = %s"


class BatchRefused(Exception):
    def __init__(self, status: int, code: str, message: str, shipped: int | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.shipped = status, code, message, shipped


@dataclass(frozen=True)
class Stored:
    shipped: int  # every row of the stream up to here is stored (at most the stream's position)
    applied: int  # rows of the batch that were new here


def _check(batch: Any) -> tuple[str, int, int, list[dict[str, Any]]]:
    """The batch's shape, or a 422 that says what is wrong (a branch of another version, a bug)."""
    if not isinstance(batch, dict):
        raise BatchRefused(422, "batch", "The batch must be a JSON object.")
    stream, after, backlog, rows = batch.get("stream"), batch.get("after"), batch.get("backlog", 0), batch.get("rows")
    if not isinstance(stream, str) or not stream or not isinstance(after, int) or after < 0 \
            or not isinstance(backlog, int) or not isinstance(rows, list):
        raise BatchRefused(422, "batch", "The batch needs stream (text), after (a whole number ≥ 0), backlog and "
                                         "rows (a list).")
    last = after
    for i, row in enumerate(rows):
        if not isinstance(row, dict) or row.get("kind") not in ROW_KINDS or not isinstance(row.get("seq"), int) \
                or not isinstance(row.get("key"), str) or not isinstance(row.get("body"), dict) \
                or not isinstance(row.get("at"), str):
            raise BatchRefused(422, "batch", f"rows[{i}] is not an outbox row (seq, kind, key, at, body).")
        if row["seq"] <= last:
            raise BatchRefused(422, "batch", f"rows[{i}]: seq {row['seq']} is not above {last}: rows go in order.")
        last = row["seq"]
    return stream, after, backlog, rows


def _ticket_values(branch: str, stream: str, row: dict[str, Any]) -> tuple[Any, ...]:
    body = row["body"]
    return (branch, row["key"], stream, row["seq"], *(body.get(f) for f in _TICKET_FIELDS), row["at"])


def store_batch(db: psycopg.Connection, branch: str, batch: Any) -> Stored:
    """Store one batch of ``branch`` in one transaction; the stream's position after it."""
    stream, after, backlog, rows = _check(batch)
    with db.transaction():
        db.execute("INSERT INTO streams (branch, stream) VALUES (%s, %s) ON CONFLICT DO NOTHING", (branch, stream))
        shipped, last_digest = db.execute(  # type: ignore[misc]
            "SELECT shipped, last_digest FROM streams WHERE branch = %s AND stream = %s FOR UPDATE",
            (branch, stream)).fetchone()
        if after > shipped:
            raise BatchRefused(409, "gap", f"The centre has this branch's rows only up to {shipped}, not {after}: "
                                           "its database lost rows (a restored backup?). Nothing was stored.",
                               shipped)
        # A re-send carries the very rows the centre has. A different row at the centre's position means the
        # branch's store went back (its file restored from a backup) and numbered new rows again: begin anew.
        at_position = next((r for r in rows if r["seq"] == shipped), None)
        if at_position is not None and last_digest is not None and digest(at_position) != last_digest:
            raise BatchRefused(409, "diverged", f"Row {shipped} of this stream is not the row the centre stored "
                                                "under that number: the branch's store went back (a restored "
                                                "backup?). Nothing was stored.", 0)
        new = [r for r in rows if r["seq"] > shipped]
        tickets = [_ticket_values(branch, stream, r) for r in new if r["kind"] == TICKET]
        events = [(branch, r["key"], b.get("ticket_id"), b.get("kind"), b.get("at"), b.get("service"),
                   b.get("counter"), b.get("detail"), r["at"]) for r in new if r["kind"] == EVENT
                  for b in (r["body"],)]
        calls = [(branch, r["key"], b.get("ticket_id"), b.get("ticket"), b.get("service"), b.get("counter"),
                  b.get("at"), bool(b.get("recall")), r["at"]) for r in new if r["kind"] == CALL
                 for b in (r["body"],)]
        feedback = [(branch, r["key"], b.get("at"), b.get("rating"), b.get("faces", 5), b.get("service"),
                     b.get("device"), r["at"]) for r in new if r["kind"] == FEEDBACK for b in (r["body"],)]
        devices = [(branch, r["key"], b.get("device"), b.get("kind"), b.get("at"), bool(b.get("online")),
                    b.get("printer"), b.get("detail"), r["at"]) for r in new if r["kind"] == DEVICE_STATUS
                   for b in (r["body"],)]
        staff_events = [(branch, r["key"], stream, r["seq"], b.get("title"), b.get("start"), b.get("end"),
                         b.get("room"), b.get("state"), b.get("seats"), b.get("waiting_list") or 0,
                         b.get("created_at"), r["at"]) for r in new if r["kind"] == STAFF_EVENT for b in (r["body"],)]
        # the last row of each sign-up in this batch is its state now: kept, or given up (deleted)
        last = {r["key"]: r for r in new if r["kind"] == SIGNUP}
        signups = [(branch, key, stream, r["seq"], *(r["body"].get(f) for f in _SIGNUP_FIELDS), r["at"])
                   for key, r in last.items() if not r["body"].get("cancelled")]
        gone = [(branch, key) for key, r in last.items() if r["body"].get("cancelled")]
        with db.cursor() as cur:
            for sql, values in ((_UPSERT_TICKET, tickets), (_INSERT_EVENT, events), (_INSERT_CALL, calls),
                                (_INSERT_FEEDBACK, feedback), (_INSERT_DEVICE, devices),
                                (_UPSERT_STAFF_EVENT, staff_events), (_UPSERT_SIGNUP, signups),
                                (_DELETE_SIGNUP, gone)):
                if values:
                    cur.executemany(sql, values)
        bookings = [r for r in new if r["kind"] == BOOKING]
        if bookings:  # the municipality's calendar (central/calendar.py): the same transaction as the position
            from central.calendar import merge_branch_rows

            merge_branch_rows(db, branch, bookings)
        # the local days these rows touch need their statistics aggregated again (central/rollup.py)
        mark_ingested(db, branch, [b["issued_at"] for r in new if r["kind"] == TICKET for b in (r["body"],)
                                   if b.get("issued_at")],
                      [e[2] for e in events if e[3] == "called" and e[2]], [f[2] for f in feedback if f[2]])
        position = max(shipped, rows[-1]["seq"]) if rows else shipped
        oldest = min((r["at"] for r in rows), default=None)
        if rows and rows[-1]["seq"] > shipped:
            db.execute("UPDATE streams SET shipped = %s, last_digest = %s WHERE branch = %s AND stream = %s",
                       (position, digest(rows[-1]), branch, stream))
        db.execute("UPDATE branches SET stream = %s, last_seen = clock_timestamp(), backlog = %s, lag_ms = "
                   "CASE WHEN %s::timestamptz IS NULL THEN lag_ms ELSE "
                   "EXTRACT(EPOCH FROM clock_timestamp() - %s::timestamptz) * 1000 END WHERE id = %s",
                   (stream, max(0, backlog - len(rows)), oldest, oldest, branch))
    # The answer is how far THIS batch reaches, not the stream's position: a branch re-sending below the position
    # (after a crash, or from a restored file) must go on sending up to it, so the row at the position is checked.
    return Stored(shipped=rows[-1]["seq"] if rows else after, applied=len(new))


def register_branches(db: psycopg.Connection, branches: dict[str, str], zones: dict[str, str] | None = None) -> None:
    """The centre's branches (id → name) as its config names them: added or renamed, never dropped; ``zones``
    (id → IANA zone) lets the ingest mark the local days a batch touches (central/rollup.py)."""
    with db.transaction():
        for bid, name in branches.items():
            db.execute("INSERT INTO branches (id, name, zone) VALUES (%s, %s, %s) ON CONFLICT (id) DO UPDATE SET "
                       "name = excluded.name, zone = COALESCE(excluded.zone, branches.zone)",
                       (bid, name, (zones or {}).get(bid)))


def digest(row: dict[str, Any]) -> str:
    """A row's fingerprint: the same outbox row sent twice has the same one (the branch never changes a row)."""
    canonical = json.dumps([row["seq"], row["kind"], row["key"], row["body"]], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def parse_body(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise BatchRefused(422, "batch", "The batch is not JSON.") from None


def ts_text(value: datetime | None) -> str | None:
    """A PostgreSQL timestamp as the branch's store writes it (UTC ISO 8601): the statistics parse that."""
    from datetime import UTC

    return value.astimezone(UTC).isoformat() if value else None
