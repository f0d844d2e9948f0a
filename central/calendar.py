"""The municipality's one booking calendar, kept by the centre in PostgreSQL (docs/bookings.md "One calendar").

Ownership of free places: every place has one owner at a time.

- A branch always owns its walk-in reserve (``[services.<id>.booking.online].reserve`` places of every slot): its
  kiosks and desks book them, online booking never does.
- The centre owns every other place of days the branch has not taken over, and sells them here.
- At its opening the branch takes its day over (``handover``): in ONE transaction, under the branch's lock, the day
  is marked branch-owned and the centre's bookings of it are answered; from then on the centre sells none of the
  day's places, and the branch sells all of them.
- Before the handover the centre sells a branch's same-day places only while the branch is reachable (heard from
  within ``AWAY_S``): a branch that cannot be reached may be past its opening already, about to take the day; the
  page says plainly why same-day times there cannot be booked online.

Every sale runs under the branch's advisory lock, reads the day's ownership and the places taken after taking it,
and writes the booking and its places in the same transaction; ``calendar_claims``' primary key is the last line of
defence, as ``booking_claims`` is at a branch. The rules (window, release, reserve, double slots, per-day limit)
are the branch's own: ``server.bookings.online.OnlineCalendar`` over the rows just read.

Status travels both ways and merges by one rule: checked in beats cancelled beats (no-show beats) booked
(``merge_branch_rows`` here for the branch's uplink rows; ``BookingBook.accept_handover`` at the branch).
"""

from __future__ import annotations

import logging
import threading
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

from central.config import Branch, CentreConfig
from server import codes
from server.bookings.online import OnlineCalendar
from server.bookings.records import BOOKED, CANCELLED, Booking
from server.bookings.settings import BookingSettings, parse_settings
from server.errors import ApiError
from server.store import ts
from vuoro import refusals
from vuoro.clock import clock_from_env

CENTRE_CODE_LENGTH = codes.CENTRE_LENGTH  # a branch mints 6: the code spaces never collide (docs/bookings.md)
AWAY_S = 60.0  # a branch not heard from (uplink heartbeat or calendar poll) for this long is unreachable
BRANCH_AWAY, BRANCH_OWNS = "branch_away", "branch_owns"
PURGE_EVERY_S = 600.0  # the retention purge: at start, then this often
log = logging.getLogger("vuoro.central.calendar")
_RANK_SQL = ("CASE {} WHEN 'checked_in' THEN 3 WHEN 'cancelled' THEN 2 WHEN 'no_show' THEN 1 ELSE 0 END")
_COLUMNS = ("id", "branch", "side", "code", "service", "start_at", "end_at", "day", "slots", "status", "origin",
            "name", "phone", "email", "note", "language", "ticket_id", "checked_in_at", "created_at",
            "cancelled_at", "idem_key")


def utc_now() -> datetime:
    clock = clock_from_env()  # tests only (VUORO_TEST_CLOCK), as at a hub
    return clock() if clock else datetime.now(UTC)


@dataclass(frozen=True)
class Sale:
    """A branch's calendar as the centre may sell it now."""

    branch: Branch
    settings: BookingSettings


def _lock(db: psycopg.Connection, branch: str) -> None:
    """One branch's sales and its handover, one after the other (never two branches' sales)."""
    db.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"vuoro-calendar:{branch}",))


def booking_json(row: dict[str, Any], staff: bool = False) -> dict[str, Any]:
    """A centre row as the branch's handover and the pages read it (the shape of ``records.booking_body``)."""
    def iso(value: Any) -> str | None:
        return value.astimezone(UTC).isoformat() if value else None

    body = {"id": row["id"], "branch": row["branch"], "code": row["code"], "code_display": codes.pretty(row["code"]),
            "service": row["service"], "start": iso(row["start_at"]), "end": iso(row["end_at"]),
            "day": row["day"].isoformat(), "slots": row["slots"], "status": row["status"],
            "language": row["language"], "created_at": iso(row["created_at"]),
            "cancelled_at": iso(row["cancelled_at"])}
    if staff:
        body.update({"name": row["name"], "phone": row["phone"], "email": row["email"], "note": row["note"]})
    return body


def as_booking(row: dict[str, Any]) -> Booking:
    return Booking(id=row["id"], site=row["branch"], code=row["code"], service=row["service"],
                   start=row["start_at"].astimezone(UTC), end=row["end_at"].astimezone(UTC), day=row["day"],
                   slots=row["slots"], status=row["status"], origin=row["origin"], created_at=row["created_at"],
                   name=row["name"], phone=row["phone"], email=row["email"], language=row["language"],
                   cancelled_at=row["cancelled_at"])


class Calendar:
    """The centre's calendar over its pool; every method is one transaction."""

    def __init__(self, config: CentreConfig, pool: ConnectionPool, away_s: float = AWAY_S):
        self.config, self.pool, self.away_s = config, pool, away_s
        self.sales = {bid: Sale(b, parse_settings(b.site)) for bid, b in config.branches.items()}
        # Each branch's day plans (its grid and places per day, from its config alone) kept across requests, as
        # the hub's book keeps them: the listing asks for four weeks of them at every look.
        self._plans: dict[str, dict[Any, Any]] = {bid: {} for bid in self.sales}

    # -- reading -------------------------------------------------------------------------------------------------

    def sale(self, branch: str) -> Sale:
        sale = self.sales.get(branch)
        if sale is None:
            raise ApiError(404, refusals.HTTP_NOT_FOUND, "There is no such page.")
        return sale

    def services(self, branch: str) -> list[str]:
        sale = self.sale(branch)
        return [sid for sid in sale.branch.site.services if sale.settings.rules(sid).online is not None]

    def reachable(self, db: psycopg.Connection, branch: str) -> bool:
        """Heard from within ``away_s`` (an uplink batch or a calendar poll), by the database's own clock: both
        times are its, so a centre whose clock is set differently (or a test's) does not matter."""
        row = db.execute("SELECT GREATEST(last_seen, calendar_seen) > clock_timestamp() - make_interval(secs => %s) "
                         "FROM branches WHERE id = %s", (self.away_s, branch)).fetchone()
        return bool(row and row[0])

    def day_owner(self, db: psycopg.Connection, branch: str, day: date, now: datetime) -> str | None:
        """None when the centre may sell ``day``'s places; else why not (``BRANCH_OWNS`` / ``BRANCH_AWAY``)."""
        if db.execute("SELECT 1 FROM calendar_handovers WHERE branch = %s AND day = %s", (branch, day)).fetchone():
            return BRANCH_OWNS
        today = now.astimezone(self.sale(branch).branch.site.timezone).date()
        if day <= today and not self.reachable(db, branch):
            return BRANCH_AWAY
        return None

    def owners(self, db: psycopg.Connection, branch: str, days: list[date], now: datetime) -> dict[date, str | None]:
        """``day_owner`` of several days with two queries (the listing's four weeks)."""
        if not days:
            return {}
        handed = {d for d, in db.execute("SELECT day FROM calendar_handovers WHERE branch = %s AND day BETWEEN %s "
                                         "AND %s", (branch, min(days), max(days)))}
        today = now.astimezone(self.sale(branch).branch.site.timezone).date()
        away = min(days) <= today and not self.reachable(db, branch)
        return {d: BRANCH_OWNS if d in handed else BRANCH_AWAY if away and d <= today else None for d in days}

    def _picture(self, db: psycopg.Connection, branch: str, service: str, since: date,
                 until: date | None = None) -> OnlineCalendar:
        """The branch's rules over the places and bookings the centre holds from ``since`` on (to ``until``)."""
        sale = self.sale(branch)
        cal = OnlineCalendar(sale.branch.site, sale.settings)
        cal._plans = self._plans[branch]
        tz = sale.branch.site.timezone
        start = datetime.combine(since, datetime.min.time(), tz)
        end = datetime.combine((until or date.max - timedelta(days=1)) + timedelta(days=1), datetime.min.time(), tz)
        for slot, place, booking_id in db.execute(
                "SELECT slot_start, place, booking_id FROM calendar_claims WHERE branch = %s AND service = %s AND "
                "slot_start >= %s AND slot_start < %s", (branch, service, start, end)):
            cal.places.claims.setdefault((service, ts(slot)), {})[place] = booking_id
        with db.cursor(row_factory=dict_row) as cur:
            for row in cur.execute("SELECT * FROM calendar_bookings WHERE branch = %s AND service = %s AND day >= %s "
                                   "AND day <= %s AND side = 'centre' AND status IN ('booked', 'checked_in')",
                                   (branch, service, since, until or date.max)):
                cal.bookings[row["id"]] = as_booking(row)
        return cal

    def listing(self, branch: str, service: str, day: date | None) -> dict[str, Any]:
        """The days and free times a citizen may book at the centre now: the branch's own rules, less the days
        the centre does not own now (with a ``notice`` saying why today is missing)."""
        now = utc_now()
        today = now.astimezone(self.sale(branch).branch.site.timezone).date()
        with self.pool.connection() as db, db.transaction():
            cal = self._picture(db, branch, service, today)
            cal.online_rules(service)  # 404 / 409 for a service that is not booked online
            first = cal.listing(now, service, None if day is None else day)
            by_day = self.owners(db, branch, sorted({today, *(date.fromisoformat(d) for d in first["days"])}), now)
            owners = {d: by_day[date.fromisoformat(d)] for d in first["days"]}
            notice = by_day[today]
            allowed = [d for d in first["days"] if owners[d] is None]
            wanted = day.isoformat() if day else None
            if wanted not in allowed:
                wanted = None
            if wanted is None:  # the first allowed day with a free time, as the branch's page does
                shown = None
                for d in allowed:
                    candidate = cal.listing(now, service, date.fromisoformat(d))
                    if candidate["slots"] or shown is None:
                        shown = candidate
                    if candidate["slots"]:
                        break
                result = shown or {**first, "day": None, "slots": []}
            else:
                result = first if first["day"] == wanted else cal.listing(now, service, date.fromisoformat(wanted))
        return {**result, "days": allowed, "branch": branch, "notice": notice}

    def nearest(self, service: str) -> list[dict[str, Any]]:
        """"The nearest free time at any branch": each branch's first free time of the service, soonest first."""
        found = []
        for bid in self.sales:
            if service not in self.services(bid):
                continue
            listing = self.listing(bid, service, None)
            if listing["slots"]:
                found.append({"branch": bid, "name": self.sales[bid].branch.name, "day": listing["day"],
                              "start": listing["slots"][0]["start"], "end": listing["slots"][0]["end"]})
        return sorted(found, key=lambda f: datetime.fromisoformat(f["start"]))

    def find(self, code: str) -> dict[str, Any]:
        """A booking the centre sold, by its code (only the centre's 7-character codes are looked up here)."""
        with self.pool.connection() as db, db.cursor(row_factory=dict_row) as cur:
            row = cur.execute("SELECT * FROM calendar_bookings WHERE code = %s AND side = 'centre'",
                              (code,)).fetchone()
        if row is None:
            raise ApiError(404, refusals.NOT_FOUND, "There is no booking with this code. Check the code.",
                           field="code")
        return row

    # -- selling -------------------------------------------------------------------------------------------------

    def book(self, branch: str, *, service: str, start: datetime, slots: int, key: str, language: str,
             name: str | None = None, phone: str | None = None, email: str | None = None) -> tuple[bool, dict]:
        """A citizen's booking at ``branch``, in one transaction under the branch's lock; (made now?, the row).
        The same ``key`` again answers the first booking."""
        now = utc_now()
        sale = self.sale(branch)
        tz = sale.branch.site.timezone
        day = start.astimezone(tz).date()
        with self.pool.connection() as db, db.transaction():
            _lock(db, branch)
            with db.cursor(row_factory=dict_row) as cur:
                earlier = cur.execute("SELECT * FROM calendar_bookings WHERE idem_key = %s", (key,)).fetchone()
            if earlier is not None:
                return False, earlier
            owner = self.day_owner(db, branch, day, now)
            if owner == BRANCH_OWNS:
                raise ApiError(409, BRANCH_OWNS, "Today's times at this branch are booked at the branch itself.",
                               field="start")
            if owner == BRANCH_AWAY:
                raise ApiError(409, BRANCH_AWAY, "Same-day times at this branch cannot be booked online just now: "
                               "the branch cannot be reached.", field="start")
            cal = self._picture(db, branch, service, day, day)  # a booking's slots and per-day limit: its own day
            rules, online = cal.online_rules(service)
            kept = cal.check_details(online, name, phone, email)
            grid = cal.check_online(now, rules, start, slots)
            cal.check_per_day(online, service, start, kept[online.identifies] if online.identifies else None)
            code = self._new_code(db)
            booking = Booking(id=uuid.uuid4().hex, site=branch, code=code, service=service,
                              start=start.astimezone(UTC), end=start.astimezone(UTC) + rules.slot * slots, day=day,
                              slots=slots, status=BOOKED, origin="web", created_at=now, name=kept["name"],
                              phone=kept["phone"], email=kept["email"], language=language, idem_key=key)
            cal.places.claim(booking, grid)
            db.execute(f"INSERT INTO calendar_bookings ({', '.join(_COLUMNS)}) VALUES "
                       f"({', '.join('%s' for _ in _COLUMNS)})",
                       (booking.id, branch, "centre", code, service, booking.start, booking.end, day, slots, BOOKED,
                        "web", booking.name, booking.phone, booking.email, None, language, None, None, now, None,
                        key))
            with db.cursor() as cur:
                cur.executemany("INSERT INTO calendar_claims (branch, service, slot_start, place, booking_id) "
                                "VALUES (%s, %s, %s, %s, %s)",
                                [(branch, service, datetime.fromisoformat(s), p, booking.id)
                                 for s, p in booking.claims])
            with db.cursor(row_factory=dict_row) as cur:
                row = cur.execute("SELECT * FROM calendar_bookings WHERE id = %s", (booking.id,)).fetchone()
        return True, row

    def _new_code(self, db: psycopg.Connection) -> str:
        def taken(code: str) -> bool:
            return db.execute("SELECT 1 FROM calendar_bookings WHERE code = %s AND side = 'centre'",
                              (code,)).fetchone() is not None

        return codes.new_code(taken, CENTRE_CODE_LENGTH)

    def move(self, code: str, start: datetime) -> dict[str, Any]:
        """The citizen moves a booking the centre sold to another free time, in one transaction under the branch's
        lock: the new places taken and the old ones let go together, or nothing changes. Both days must be the
        centre's to sell (a handed-over day is changed at the branch)."""
        row = self.find(code)
        now = utc_now()
        branch = row["branch"]
        tz = self.sale(branch).branch.site.timezone
        with self.pool.connection() as db, db.transaction():
            _lock(db, branch)
            with db.cursor(row_factory=dict_row) as cur:
                row = cur.execute("SELECT * FROM calendar_bookings WHERE id = %s FOR UPDATE", (row["id"],)).fetchone()
            if row["status"] != BOOKED:
                raise ApiError(409, refusals.CANCELLED if row["status"] == CANCELLED else refusals.CHECKED_IN,
                               "This booking can no longer be changed.")
            day = start.astimezone(tz).date()
            for d in (row["day"], day):
                owner = self.day_owner(db, branch, d, now)
                if owner is not None:
                    raise ApiError(409, owner, "Same-day times at this branch are changed at the branch itself.",
                                   field="start")
            cal = self._picture(db, branch, row["service"], day, day)
            rules, online = cal.online_rules(row["service"])
            if row["start_at"] < now + timedelta(minutes=online.until_min):
                raise ApiError(409, refusals.TOO_SOON, "Your time is too soon to change online. Please call us.")
            grid = cal.check_online(now, rules, start, row["slots"], row["id"])
            contact = row[online.identifies] if online.identifies else None
            cal.check_per_day(online, row["service"], start, contact, moving=row["id"])
            moved = as_booking(row)
            moved.claims = []
            for places in cal.places.claims.values():  # its own old places are free for it (a move within the day)
                for place in [p for p, b in places.items() if b == row["id"]]:
                    del places[place]
            cal.places.claim(moved, grid)
            db.execute("DELETE FROM calendar_claims WHERE booking_id = %s", (row["id"],))
            with db.cursor() as cur:
                cur.executemany("INSERT INTO calendar_claims (branch, service, slot_start, place, booking_id) "
                                "VALUES (%s, %s, %s, %s, %s)",
                                [(branch, row["service"], datetime.fromisoformat(s), p, row["id"])
                                 for s, p in moved.claims])
            with db.cursor(row_factory=dict_row) as cur:
                return cur.execute("UPDATE calendar_bookings SET start_at = %s, end_at = %s, day = %s, "
                                   "updated_at = clock_timestamp() WHERE id = %s RETURNING *",
                                   (start.astimezone(UTC), start.astimezone(UTC) + rules.slot * row["slots"], day,
                                    row["id"])).fetchone()

    def cancel(self, code: str) -> dict[str, Any]:
        """The citizen cancels a booking the centre sold. Its places are free again here at once; if the day was
        handed over already, the branch learns it at its next poll (and a check-in there beats it)."""
        row = self.find(code)
        now = utc_now()
        with self.pool.connection() as db, db.transaction():
            _lock(db, row["branch"])
            with db.cursor(row_factory=dict_row) as cur:
                row = cur.execute("SELECT * FROM calendar_bookings WHERE id = %s FOR UPDATE", (row["id"],)).fetchone()
                if row["status"] == CANCELLED:
                    return row
                if row["status"] != BOOKED or row["end_at"] <= now:
                    raise ApiError(409, refusals.CHECKED_IN if row["status"] == "checked_in" else refusals.PAST,
                                   "This booking can no longer be cancelled.")
                cur.execute("DELETE FROM calendar_claims WHERE booking_id = %s", (row["id"],))
                return cur.execute("UPDATE calendar_bookings SET status = 'cancelled', cancelled_at = %s, "
                                   "updated_at = clock_timestamp() WHERE id = %s RETURNING *",
                                   (now, row["id"])).fetchone()

    # -- retention ---------------------------------------------------------------------------------------------

    def purge(self) -> int:
        """Name, phone, e-mail and note of bookings on days older than their branch's ``[bookings] retention_days``
        set to NULL (times and status stay, for statistics), as the branch does with its own; how many rows."""
        now = utc_now()
        emptied = 0
        with self.pool.connection() as db, db.transaction():
            for bid, sale in self.sales.items():
                before = now.astimezone(sale.branch.site.timezone).date() - timedelta(days=sale.settings.retention_days)
                emptied += db.execute(
                    "UPDATE calendar_bookings SET name = NULL, phone = NULL, email = NULL, note = NULL "
                    "WHERE branch = %s AND day < %s AND (name IS NOT NULL OR phone IS NOT NULL OR email IS NOT NULL "
                    "OR note IS NOT NULL)",
                    (bid, before)).rowcount
        return emptied

    def keep_purging(self, every_s: float = PURGE_EVERY_S) -> threading.Event:
        """The purge at start and every ``every_s`` on a thread of its own; set the event to stop it."""
        stop = threading.Event()

        def run() -> None:
            while not stop.is_set():
                try:
                    emptied = self.purge()
                    if emptied:
                        log.info("calendar: personal fields of %d old bookings emptied", emptied)
                except Exception as exc:  # the database away: next time
                    log.warning("calendar: the retention purge failed (%s); trying again later", exc)
                stop.wait(every_s)

        threading.Thread(target=run, name="vuoro-calendar-purge", daemon=True).start()
        return stop

    # -- the branches' side ----------------------------------------------------------------------------------------

    def handover(self, branch: str, day: date) -> list[dict[str, Any]]:
        """The branch takes ``day`` over (at its opening; asked again on every poll): in one transaction the day
        is marked branch-owned and the centre's bookings of it are answered, personal fields included (staff at
        the branch see them). Repeating it changes nothing but the answer's statuses."""
        with self.pool.connection() as db, db.transaction():
            _lock(db, branch)
            db.execute("INSERT INTO calendar_handovers (branch, day) VALUES (%s, %s) ON CONFLICT DO NOTHING",
                       (branch, day))
            db.execute("UPDATE branches SET calendar_seen = clock_timestamp() WHERE id = %s", (branch,))
            with db.cursor(row_factory=dict_row) as cur:
                rows = cur.execute("SELECT * FROM calendar_bookings WHERE branch = %s AND day = %s AND side = 'centre' "
                                   "ORDER BY start_at", (branch, day)).fetchall()
        return [booking_json(r, staff=True) for r in rows]


def merge_branch_rows(db: psycopg.Connection, branch: str, rows: list[dict[str, Any]]) -> None:
    """The branch's booking rows (its uplink, inside the ingest's transaction): its own bookings are stored as it
    has them; a booking the centre sold takes the branch's status where the rule says so (checked in beats
    cancelled beats booked) and its check-in. Rows of one batch come in order, so the last state wins."""
    for row in rows:
        b = row["body"]
        if db.execute("SELECT 1 FROM calendar_bookings WHERE id = %s AND side = 'centre'", (b["id"],)).fetchone():
            # Staff at the branch may have moved it (the branch holds it only on a day it owns): its time is the
            # branch's; the centre's places of the old time are let go (the branch places it now).
            moved = db.execute("SELECT start_at <> %s::timestamptz OR slots <> %s FROM calendar_bookings WHERE id = %s",
                               (b["start"], b["slots"], b["id"])).fetchone()[0]
            db.execute(
                f"UPDATE calendar_bookings SET status = CASE WHEN {_RANK_SQL.format('%s::text')} >= "
                f"{_RANK_SQL.format('status')} THEN %s ELSE status END, ticket_id = COALESCE(%s, ticket_id), "
                "checked_in_at = COALESCE(%s, checked_in_at), start_at = %s, end_at = %s, day = %s, slots = %s, "
                "updated_at = clock_timestamp() WHERE id = %s",
                (b["status"], b["status"], b.get("ticket_id"), b.get("checked_in_at"), b["start"], b["end"], b["day"],
                 b["slots"], b["id"]))
            db.execute("DELETE FROM calendar_claims WHERE booking_id = %s AND (%s OR (SELECT status FROM "
                       "calendar_bookings WHERE id = %s) = 'cancelled')", (b["id"], moved, b["id"]))
            continue
        values = (b["id"], branch, "branch", b["code"], b["service"], b["start"], b["end"], b["day"], b["slots"],
                  b["status"], b["origin"], b.get("name"), b.get("phone"), b.get("email"), b.get("note"),
                  b.get("language"), b.get("ticket_id"), b.get("checked_in_at"), b.get("created_at") or row["at"],
                  b.get("cancelled_at"), None)
        db.execute(
            f"INSERT INTO calendar_bookings ({', '.join(_COLUMNS)}) VALUES ({', '.join('%s' for _ in _COLUMNS)}) "
            "ON CONFLICT (id) DO UPDATE SET start_at = excluded.start_at, end_at = excluded.end_at, "
            "day = excluded.day, slots = excluded.slots, service = excluded.service, status = excluded.status, "
            "name = excluded.name, phone = excluded.phone, email = excluded.email, note = excluded.note, "
            "ticket_id = excluded.ticket_id, checked_in_at = excluded.checked_in_at, "
            "cancelled_at = excluded.cancelled_at, updated_at = clock_timestamp()", values)

