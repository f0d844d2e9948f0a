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

A sale holds the branch's advisory lock shared (sales side by side; the handover, a move and a cancel hold it
exclusively), reads the day's ownership and the places taken after taking it, and writes the booking and its places
in the same transaction; ``calendar_claims``' primary key keeps two sales off one place (``Calendar.book`` says why
that is enough), as ``booking_claims`` does at a branch. The rules (window, release, reserve, double slots,
per-day limit) are the branch's own: ``server.bookings.online.OnlineCalendar`` over the rows just read.

Status travels both ways and merges by one rule: checked in beats cancelled beats (no-show beats) booked
(``merge_branch_rows`` here for the branch's uplink rows; ``BookingBook.accept_handover`` at the branch).
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import threading
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

from central.config import Branch, CentreConfig
from central.joined_reads import JoinedReads
from central.notice_plan import NoticePlan
from server import codes
from server.bookings.online import EMAIL, PHONE, OnlineCalendar, same_contact
from server.bookings.records import BOOKED, CANCELLED, Booking
from server.bookings.settings import BookingSettings, ServiceBooking, parse_settings
from server.errors import ApiError
from server.store import ts
from vuoro import refusals
from vuoro.clock import ENV as CLOCK_ENV
from vuoro.clock import FileClock, clock_from_env

CENTRE_CODE_LENGTH = codes.CENTRE_LENGTH  # a branch mints 6: the code spaces never collide (docs/bookings.md)
AWAY_S = 60.0  # a branch not heard from (uplink heartbeat or calendar poll) for this long is unreachable
BRANCH_AWAY, BRANCH_OWNS = "branch_away", "branch_owns"
SALE_TRIES = 8  # a sale that lost its chosen place to another reads again this often, then is told "full"
PURGE_EVERY_S = 600.0  # the retention purge: at start, then this often
log = logging.getLogger("vuoro.central.calendar")
_RANK_SQL = ("CASE {} WHEN 'checked_in' THEN 3 WHEN 'cancelled' THEN 2 WHEN 'no_show' THEN 1 ELSE 0 END")
# The free times' three reads in one statement: the places taken per slot (two arrays in slot order), the days
# handed over, and whether the branch was heard from (as ``Calendar._reachable_query``).
_LISTING_SQL = (
    "SELECT c.slots, c.taken, (SELECT array_agg(day) FROM calendar_handovers WHERE branch = %(branch)s AND "
    "day >= %(today)s), (SELECT GREATEST(last_seen, calendar_seen) > clock_timestamp() - make_interval(secs => "
    "%(away)s) FROM branches WHERE id = %(branch)s) FROM (SELECT array_agg(slot_start ORDER BY slot_start) AS slots, "
    "array_agg(n ORDER BY slot_start) AS taken FROM (SELECT slot_start, count(*)::integer AS n FROM calendar_claims "
    "WHERE branch = %(branch)s AND service = %(service)s AND slot_start >= %(start)s AND slot_start < %(end)s "
    "GROUP BY slot_start) AS per_slot) AS c")
_COLUMNS = ("id", "branch", "side", "code", "service", "start_at", "end_at", "day", "slots", "status", "origin",
            "name", "phone", "email", "note", "language", "ticket_id", "checked_in_at", "created_at",
            "cancelled_at", "idem_key")


_test_clock: tuple[str | None, FileClock | None] = (None, None)


def utc_now() -> datetime:
    global _test_clock
    path = os.environ.get(CLOCK_ENV)  # tests only (VUORO_TEST_CLOCK), as at a hub
    if path is None:
        return datetime.now(UTC)
    if _test_clock[0] != path:  # one clock per file (it reads the file again only when it changed)
        _test_clock = (path, clock_from_env())
    clock = _test_clock[1]
    return clock() if clock else datetime.now(UTC)


@dataclass(frozen=True)
class Sale:
    """A branch's calendar as the centre may sell it now: of one version of its site (central/branch_sites.py). A
    new version makes a new Sale with caches of its own, so a request still on the old one never fills the new
    one's caches with the old rules."""

    branch: Branch
    settings: BookingSettings
    # Its day plans (the grid and places per day) and what the listing derives from them (the times' text,
    # whether a day is booked online), from this version alone, kept across requests as the hub's book keeps
    # them: the listing asks for four weeks of them at every look.
    plans: dict[Any, Any] = field(default_factory=dict, compare=False, repr=False)
    times: dict[Any, Any] = field(default_factory=dict, compare=False, repr=False)
    online_days: dict[Any, Any] = field(default_factory=dict, compare=False, repr=False)


def _lock(db: psycopg.Connection, branch: str, shared: bool = False) -> None:
    """A branch's handover, moves and cancels one after the other, and never during a sale (sales hold it shared,
    side by side); never another branch's."""
    db.execute(f"SELECT pg_advisory_xact_lock{'_shared' if shared else ''}(hashtext(%s))",
               (f"vuoro-calendar:{branch}",))


def _true(query: psycopg.Cursor[Any]) -> bool:
    row = query.fetchone()
    return bool(row and row[0])


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
        body.update({"name": row["name"], "phone": row["phone"], "email": row["email"], "note": row["note"],
                     "origin": row["origin"], "side": row["side"]})
    return body


def as_booking(row: dict[str, Any]) -> Booking:
    return Booking(id=row["id"], site=row["branch"], code=row["code"], service=row["service"],
                   start=row["start_at"].astimezone(UTC), end=row["end_at"].astimezone(UTC), day=row["day"],
                   slots=row["slots"], status=row["status"], origin=row["origin"], created_at=row["created_at"],
                   name=row["name"], phone=row["phone"], email=row["email"], note=row["note"],
                   language=row["language"], cancelled_at=row["cancelled_at"])


class Calendar:
    """The centre's calendar over its pool; every method is one transaction."""

    def __init__(self, config: CentreConfig, pool: ConnectionPool, away_s: float = AWAY_S):
        self.config, self.pool, self.away_s = config, pool, away_s
        self.sales = {bid: Sale(b, parse_settings(b.site)) for bid, b in config.branches.items()}
        self._listings: JoinedReads[dict[str, Any]] = JoinedReads()
        # Confirmations and reminders (each branch's [notify]): planned in the booking change's own transaction
        self.notices = NoticePlan(config)

    # -- reading -------------------------------------------------------------------------------------------------

    def sale(self, branch: str) -> Sale:
        """The branch's Sale of the version the centre uses for it now: a new one (whole, never edited) as soon as
        ``config.branches`` holds another version (central/branch_sites.py). What was sold stays sold."""
        sale = self.sales.get(branch)
        if sale is None:
            raise ApiError(404, refusals.HTTP_NOT_FOUND, "There is no such page.")
        current = self.config.branches.get(branch, sale.branch)
        if current is not sale.branch:
            sale = self.sales[branch] = Sale(current, parse_settings(current.site))
        return sale

    def services(self, branch: str) -> list[str]:
        sale = self.sale(branch)
        return [sid for sid in sale.branch.site.services if sale.settings.rules(sid).online is not None]

    def reachable(self, db: psycopg.Connection, branch: str) -> bool:
        """Heard from within ``away_s`` (an uplink batch or a calendar poll), by the database's own clock: both
        times are its, so a centre whose clock is set differently (or a test's) does not matter."""
        return _true(self._reachable_query(db, branch))

    def _reachable_query(self, db: psycopg.Connection, branch: str) -> psycopg.Cursor[Any]:
        return db.execute("SELECT GREATEST(last_seen, calendar_seen) > clock_timestamp() - make_interval(secs => %s) "
                          "FROM branches WHERE id = %s", (self.away_s, branch))

    def day_owner(self, db: psycopg.Connection, branch: str, day: date, now: datetime) -> str | None:
        """None when the centre may sell ``day``'s places; else why not (``BRANCH_OWNS`` / ``BRANCH_AWAY``)."""
        handed = db.execute("SELECT 1 FROM calendar_handovers WHERE branch = %s AND day = %s",
                            (branch, day)).fetchone() is not None
        today = now.astimezone(self.sale(branch).branch.site.timezone).date()
        return self._owner(branch, day, now, handed, day > today or self.reachable(db, branch))

    def _owner(self, branch: str, day: date, now: datetime, handed: bool, reachable: bool,
               today: date | None = None) -> str | None:
        """The one ownership rule (see the module's doc), over what was read (``today``: the branch's, if known)."""
        if handed:
            return BRANCH_OWNS
        if day <= (today or now.astimezone(self.sale(branch).branch.site.timezone).date()) and not reachable:
            return BRANCH_AWAY
        return None

    def _picture(self, db: psycopg.Connection, branch: str, service: str, since: date,
                 until: date | None = None) -> OnlineCalendar:
        """The branch's rules over the places and bookings the centre holds from ``since`` on (to ``until``)."""
        claims, bookings = self._picture_queries(db, branch, service, since, until)
        return self._picture_from(branch, service, claims.fetchall(), bookings)

    def _picture_queries(self, db: psycopg.Connection, branch: str, service: str, since: date,
                         until: date | None) -> tuple[psycopg.Cursor[Any], psycopg.Cursor[Any]]:
        """The two reads of a picture (the places taken and the bookings), sent (in a pipeline, not yet answered)."""
        start, end = self._span(branch, since, until)
        claims = db.execute("SELECT slot_start, place, booking_id FROM calendar_claims WHERE branch = %s AND "
                            "service = %s AND slot_start >= %s AND slot_start < %s", (branch, service, start, end))
        found = db.cursor(row_factory=dict_row).execute(
            "SELECT * FROM calendar_bookings WHERE branch = %s AND service = %s AND day >= %s AND day <= %s AND "
            "side = 'centre' AND status IN ('booked', 'checked_in')", (branch, service, since, until or date.max))
        return claims, found

    def _span(self, branch: str, since: date, until: date | None) -> tuple[datetime, datetime]:
        """The moments from the start of ``since`` to the end of ``until`` (no end: the last day there is)."""
        tz = self.sale(branch).branch.site.timezone
        return (datetime.combine(since, datetime.min.time(), tz),
                datetime.combine((until or date.max - timedelta(days=1)) + timedelta(days=1), datetime.min.time(), tz))

    def _picture_from(self, branch: str, service: str, claims: list[tuple[Any, ...]],
                      bookings: psycopg.Cursor[Any] | None, counts: bool = False) -> OnlineCalendar:
        """The rules over what was read; ``counts``: the claims are (slot, places taken) rows (the free times)."""
        sale = self.sale(branch)
        cal = OnlineCalendar(sale.branch.site, sale.settings)
        cal._plans, cal._times, cal._online_days = sale.plans, sale.times, sale.online_days
        claimed = cal.places.claims
        if counts:  # that many places taken, by no one in particular
            for slot, taken in claims:
                claimed[(service, ts(slot))] = dict.fromkeys(range(taken), "")
        else:
            for slot, place, booking_id in claims:
                claimed.setdefault((service, ts(slot)), {})[place] = booking_id
        for row in bookings.fetchall() if bookings is not None else ():
            cal.bookings[row["id"]] = as_booking(row)
        return cal

    def listing(self, branch: str, service: str, day: date | None) -> dict[str, Any]:
        """The days and free times a citizen may book at the centre now: the branch's own rules, less the days
        the centre does not own now (with a ``notice`` saying why today is missing). Asked at the same moment
        by many (a morning release), one read answers all who asked while the previous one was under way
        (``JoinedReads``: never an answer read before its caller asked)."""
        return dict(self._listings.run((branch, service, day), lambda: self._listing(branch, service, day)))

    def _listing(self, branch: str, service: str, day: date | None) -> dict[str, Any]:
        now = utc_now()
        today = now.astimezone(self.sale(branch).branch.site.timezone).date()
        start, end = self._span(branch, today, None)
        # All three reads in ONE statement (one round trip, one snapshot, no BEGIN/COMMIT: the free times are the
        # busiest request of a morning release), then the branch's rules in Python over them. What it reads only
        # counts places (whoever holds them); a sale reads again under its locks before it writes.
        with self.pool.connection() as db:
            db.autocommit = True
            try:
                slots, taken, handed_days, reachable = db.execute(_LISTING_SQL, {
                    "branch": branch, "service": service, "start": start, "end": end, "today": today,
                    "away": self.away_s}).fetchone()
            finally:
                with contextlib.suppress(psycopg.Error):  # a broken connection: the pool drops it, the error stands
                    db.autocommit = False
        cal = self._picture_from(branch, service, list(zip(slots or (), taken or (), strict=True)), None, counts=True)
        handed, reachable = set(handed_days or ()), bool(reachable)
        cal.online_rules(service)  # 404 / 409 for a service that is not booked online
        first = cal.listing(now, service, None if day is None else day)
        allowed = [d for d in first["days"]
                   if self._owner(branch, date.fromisoformat(d), now, date.fromisoformat(d) in handed, reachable,
                                  today) is None]
        notice = self._owner(branch, today, now, today in handed, reachable, today)
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
                found.append({"branch": bid, "name": self.sale(bid).branch.name, "day": listing["day"],
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
             name: str | None = None, phone: str | None = None, email: str | None = None,
             note: str | None = None, staff: bool = False,
             contact: tuple[str, str] | None = None) -> tuple[bool, dict]:
        """A citizen's booking at ``branch`` in one transaction; (made now?, the row). The same ``key`` again
        answers the first booking. ``contact``: (channel, address) the citizen gave for a confirmation and a
        reminder (``notice_parts.contact_of``), planned in the same transaction.

        Sales of one branch run side by side (each commit's fsync is no longer every other sale's wait); what
        makes that safe, rule by rule:
        - ownership: a sale holds the branch's lock SHARED; the handover (and a move or a cancel) holds it
          exclusively, so a day never changes hands in the middle of a sale;
        - places: a sale takes the lowest free place numbers of its picture after checking a place is free for it
          online, so every place number it writes is <= places - reserve; ``calendar_claims``' primary key makes
          them distinct, so a slot never holds more than it may, however stale the picture: the loser of the same
          place gets the key's error, reads again and takes the next place or is told "full";
        - the per-day limit: one citizen's sales (by the contact the service identifies) one after the other,
          under a lock of its own;
        - the same ``key`` twice at once: the second waits on the unique key and answers the first.

        ``staff``: centre staff booking for a caller (``staff_grid``): the service's grid and the centre's places,
        not the citizen's window, release, per-day limit or required details; a note may be kept.
        """
        sale = self.sale(branch)
        online = sale.settings.rules(service).online if service in sale.branch.site.services else None
        identity = (phone if online.identifies == "phone" else email) if online and online.identifies else None
        for _ in range(SALE_TRIES):
            try:
                return self._sell(branch, service, start, slots, key, language, name, phone, email,
                                  "" if staff else same_contact(identity or ""), note, staff, contact)
            except psycopg.errors.UniqueViolation as exc:
                if exc.diag.constraint_name != "calendar_claims_pkey":
                    raise
                # Another sale took a place this one chose from its picture: read again (now it is counted)
        raise ApiError(409, refusals.FULL, "Sorry, someone else has just booked that time. Choose another time.",
                       field="start")

    def _sell(self, branch: str, service: str, start: datetime, slots: int, key: str, language: str,
              name: str | None, phone: str | None, email: str | None, who: str, note: str | None = None,
              staff: bool = False, contact: tuple[str, str] | None = None) -> tuple[bool, dict]:
        now = utc_now()
        day = start.astimezone(self.sale(branch).branch.site.timezone).date()
        with self.pool.connection() as db, db.pipeline(), db.transaction():
            # Every read of the sale goes out in one round trip behind the locks (a pipeline: the server runs them
            # in order); the writes go in a second, the commit in a third.
            _lock(db, branch, shared=True)
            if who:
                db.execute("SELECT pg_advisory_xact_lock(hashtext(%s))",
                           (f"vuoro-calendar:{branch}:{service}:{day}:{who}",))
            earlier_q = db.cursor(row_factory=dict_row).execute(
                "SELECT * FROM calendar_bookings WHERE idem_key = %s", (key,))
            handed_q = db.execute("SELECT 1 FROM calendar_handovers WHERE branch = %s AND day = %s", (branch, day))
            reachable_q = self._reachable_query(db, branch)
            # Only what the rules look at: the places of the booking's own slots (a double booking's two; more
            # slots than a service allows are refused below, so the read is bounded), and the day's bookings of
            # the same contact, for the per-day limit (the contact as same_contact() keeps it, contact_key; rows
            # from before it was kept are read too, and check_per_day judges every row read).
            sale = self.sale(branch)
            length = sale.settings.rules(service).slot if service in sale.branch.site.services else timedelta(0)
            claims_q = db.execute("SELECT slot_start, place, booking_id FROM calendar_claims WHERE branch = %s AND "
                                  "service = %s AND slot_start >= %s AND slot_start < %s",
                                  (branch, service, start, start + length * max(1, min(slots, 16))))
            bookings_q = db.cursor(row_factory=dict_row).execute(
                "SELECT * FROM calendar_bookings WHERE branch = %s AND service = %s AND day = %s AND side = 'centre' "
                "AND status IN ('booked', 'checked_in') AND (contact_key = %s OR contact_key IS NULL)",
                (branch, service, day, who)) if who else None
            earlier = earlier_q.fetchone()
            if earlier is not None:
                return False, earlier
            owner = self._owner(branch, day, now, handed_q.fetchone() is not None, _true(reachable_q))
            if owner == BRANCH_OWNS:
                raise ApiError(409, BRANCH_OWNS, "Today's times at this branch are booked at the branch itself.",
                               field="start")
            if owner == BRANCH_AWAY:
                raise ApiError(409, BRANCH_AWAY, "Same-day times at this branch cannot be booked online just now: "
                               "the branch cannot be reached.", field="start")
            cal = self._picture_from(branch, service, claims_q.fetchall(), bookings_q)
            rules, online = cal.online_rules(service)
            if staff:
                kept = staff_details(name, phone, email, note)
                grid = staff_grid(cal, now, rules, start, slots)
            else:
                kept = {**cal.check_details(online, name, phone, email), "note": None}
                grid = cal.check_online(now, rules, start, slots)
                cal.check_per_day(online, service, start, kept[online.identifies] if online.identifies else None)
            booking = Booking(id=uuid.uuid4().hex, site=branch, code="", service=service,
                              start=start.astimezone(UTC), end=start.astimezone(UTC) + rules.slot * slots, day=day,
                              slots=slots, status=BOOKED, origin="staff" if staff else "web", created_at=now,
                              name=kept["name"], phone=kept["phone"], email=kept["email"], note=kept["note"],
                              language=language, idem_key=key)
            _claim_free_places(cal, rules, booking, grid)
            row = None
            while row is None:  # a fresh code until one is free (the centre's codes' unique index decides)
                row = self._insert_sale(db, booking, codes.new_code(lambda _code: False, CENTRE_CODE_LENGTH), who)
                if row is None:
                    earlier = db.cursor(row_factory=dict_row).execute(
                        "SELECT * FROM calendar_bookings WHERE idem_key = %s", (key,)).fetchone()
                    if earlier is not None:  # the same key, sold at the same moment: its answer
                        return False, earlier
            self.notices.plan(db, row, "booked", now, contact, language)
        return True, row

    def _insert_sale(self, db: psycopg.Connection, booking: Booking, code: str,
                     contact_key: str = "") -> dict[str, Any] | None:
        """The booking and its places in one statement; None when ``code`` or the key is taken already (nothing
        written). A place taken already fails on ``calendar_claims``' primary key (the caller reads again)."""
        starts = [datetime.fromisoformat(s) for s, _ in booking.claims]
        places = [p for _, p in booking.claims]
        values = (booking.id, booking.site, "centre", code, booking.service, booking.start, booking.end, booking.day,
                  booking.slots, BOOKED, booking.origin, booking.name, booking.phone, booking.email, booking.note,
                  booking.language, None, None, booking.created_at, None, booking.idem_key, contact_key or None)
        with db.cursor(row_factory=dict_row) as cur:
            return cur.execute(
                f"WITH sold AS (INSERT INTO calendar_bookings ({', '.join(_COLUMNS)}, contact_key) VALUES "
                f"({', '.join('%s' for _ in _COLUMNS)}, %s) ON CONFLICT DO NOTHING "
                "RETURNING *), placed AS (INSERT INTO calendar_claims (branch, service, slot_start, place, booking_id) "
                "SELECT sold.branch, sold.service, u.slot, u.place, sold.id FROM sold, "
                "unnest(%s::timestamptz[], %s::integer[]) AS u(slot, place)) SELECT * FROM sold",
                (*values, starts, places)).fetchone()

    def by_id(self, booking_id: str) -> dict[str, Any]:
        """A booking the centre sold, by its id (staff at the centre: ``central/staff_calendar.py``)."""
        with self.pool.connection() as db, db.cursor(row_factory=dict_row) as cur:
            row = cur.execute("SELECT * FROM calendar_bookings WHERE id = %s AND side = 'centre'",
                              (booking_id,)).fetchone()
        if row is None:
            raise ApiError(404, refusals.UNKNOWN_BOOKING, "There is no such booking.", field="id")
        return row

    def move(self, code: str, start: datetime) -> dict[str, Any]:
        """The citizen moves a booking the centre sold to another free time (the online rules)."""
        return self._move(self.find(code), start, None, staff=False)

    def staff_move(self, booking_id: str, start: datetime, slots: int | None = None) -> dict[str, Any]:
        """Centre staff move a booking the centre sold (the caller rang): ``staff_grid``, the same code."""
        return self._move(self.by_id(booking_id), start, slots, staff=True)

    def _move(self, row: dict[str, Any], start: datetime, slots: int | None, staff: bool) -> dict[str, Any]:
        """In one transaction under the branch's lock: the new places taken and the old ones let go together, or
        nothing changes. Both days must be the centre's to sell (a handed-over day is changed at the branch)."""
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
            slots = slots or row["slots"]
            if staff:
                grid = staff_grid(cal, now, rules, start, slots, row["id"])
            else:
                if row["start_at"] < now + timedelta(minutes=online.until_min):
                    raise ApiError(409, refusals.TOO_SOON, "Your time is too soon to change online. Please call us.")
                grid = cal.check_online(now, rules, start, slots, row["id"])
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
                moved_row = cur.execute("UPDATE calendar_bookings SET start_at = %s, end_at = %s, day = %s, "
                                        "slots = %s, updated_at = clock_timestamp() WHERE id = %s RETURNING *",
                                        (start.astimezone(UTC), start.astimezone(UTC) + rules.slot * slots, day, slots,
                                         row["id"])).fetchone()
            self.notices.plan(db, moved_row, "moved", now)
            return moved_row

    def cancel(self, code: str) -> dict[str, Any]:
        """The citizen cancels a booking the centre sold. Its places are free again here at once; if the day was
        handed over already, the branch learns it at its next poll (and a check-in there beats it)."""
        return self._cancel(self.find(code))

    def staff_cancel(self, booking_id: str) -> dict[str, Any]:
        """Centre staff cancel a booking the centre sold (the caller asked), as the citizen could."""
        return self._cancel(self.by_id(booking_id))

    def _cancel(self, row: dict[str, Any]) -> dict[str, Any]:
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
                cancelled = cur.execute("UPDATE calendar_bookings SET status = 'cancelled', cancelled_at = %s, "
                                        "updated_at = clock_timestamp() WHERE id = %s RETURNING *",
                                        (now, row["id"])).fetchone()
            self.notices.plan(db, cancelled, "cancelled", now)
            return cancelled

    # -- staff at the centre (central/staff_calendar.py) ----------------------------------------------------------

    def day_view(self, branch: str, day: date) -> dict[str, Any]:
        """Every booking of ``branch`` on ``day`` as the centre holds it (its own sales and the branch's rows,
        personal fields included: for signed-in staff only), and who owns the day's places now."""
        now = utc_now()
        with self.pool.connection() as db, db.transaction():
            with db.cursor(row_factory=dict_row) as cur:
                rows = cur.execute("SELECT * FROM calendar_bookings WHERE branch = %s AND day = %s "
                                   "ORDER BY start_at, service, created_at", (branch, day)).fetchall()
            handed = db.execute("SELECT handed_at FROM calendar_handovers WHERE branch = %s AND day = %s",
                                (branch, day)).fetchone()
            reachable = self.reachable(db, branch)
        today = now.astimezone(self.sale(branch).branch.site.timezone).date()
        return {"day": day, "today": today, "bookings": rows, "handed_at": handed[0] if handed else None,
                "owner": self._owner(branch, day, now, handed is not None, day > today or reachable),
                "past": day < today}

    def staff_times(self, branch: str, service: str, day: date, moving: str | None = None) -> list[dict[str, Any]]:
        """The free times of the centre's places of ``service`` on ``day`` for staff (``staff_grid``): every
        grid slot not yet begun with a place the centre owns free (``moving``: that booking's own place counts
        as free)."""
        now = utc_now()
        with self.pool.connection() as db, db.transaction():
            cal = self._picture(db, branch, service, day, day)
        rules, online = cal.online_rules(service)
        plan, texts = cal.day_plan(rules, day), cal.day_times(rules, day)
        free = [places - online.reserve - len([b for b in cal.places.claims.get((service, key), {}).values()
                                              if b != moving]) for _, key, places in plan]
        times = []
        for i, ((slot, _, _), (start, end, joined)) in enumerate(zip(plan, texts, strict=True)):
            if slot <= now or free[i] <= 0:
                continue
            times.append({"start": start, "end": end, "free": free[i],
                          "double": rules.max_slots >= 2 and i + 1 < len(plan) and free[i + 1] > 0 and joined})
        return times

    def handover_states(self, db: psycopg.Connection, now: datetime) -> dict[str, dict[str, Any]]:
        """Per branch of the calendar (``[bookings] centre_calendar``): today's handover, for the overview —
        ``handed_over`` (with ``handed_at``), ``not_yet`` (the centre sells today's places until the branch
        opens), or ``unreachable`` (not handed over and not heard from: the centre sells none of today)."""
        states: dict[str, dict[str, Any]] = {}
        for bid in self.sales:
            sale = self.sale(bid)
            if not sale.settings.centre_calendar:
                continue
            today = now.astimezone(sale.branch.site.timezone).date()
            handed = db.execute("SELECT handed_at FROM calendar_handovers WHERE branch = %s AND day = %s",
                                (bid, today)).fetchone()
            if handed is not None:
                states[bid] = {"state": "handed_over", "day": today.isoformat(),
                               "handed_at": handed[0].astimezone(UTC).isoformat()}
            else:
                states[bid] = {"state": "not_yet" if self.reachable(db, bid) else "unreachable",
                               "day": today.isoformat(), "handed_at": None}
        return states

    # -- retention ---------------------------------------------------------------------------------------------

    def purge(self) -> int:
        """Name, phone, e-mail and note of bookings on days older than their branch's ``[bookings] retention_days``
        set to NULL (times and status stay, for statistics), as the branch does with its own, and any contact for
        confirmations of them deleted; how many rows."""
        now = utc_now()
        emptied = 0
        with self.pool.connection() as db, db.transaction():
            for bid in self.sales:
                sale = self.sale(bid)
                before = now.astimezone(sale.branch.site.timezone).date() - timedelta(days=sale.settings.retention_days)
                emptied += db.execute(
                    "UPDATE calendar_bookings SET name = NULL, phone = NULL, email = NULL, note = NULL "
                    "WHERE branch = %s AND day < %s AND (name IS NOT NULL OR phone IS NOT NULL OR email IS NOT NULL "
                    "OR note IS NOT NULL)",
                    (bid, before)).rowcount
                # a confirmation's contact left behind (normally deleted once nothing is left to send)
                emptied += db.execute("DELETE FROM calendar_contacts c USING calendar_bookings b WHERE b.id = "
                                      "c.booking_id AND b.branch = %s AND b.day < %s", (bid, before)).rowcount
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
            # handed_at by the centre's clock (the overview shows it): the same clock its pages read
            db.execute("INSERT INTO calendar_handovers (branch, day, handed_at) VALUES (%s, %s, %s) "
                       "ON CONFLICT DO NOTHING", (branch, day, utc_now()))
            db.execute("UPDATE branches SET calendar_seen = clock_timestamp() WHERE id = %s", (branch,))
            with db.cursor(row_factory=dict_row) as cur:
                rows = cur.execute("SELECT * FROM calendar_bookings WHERE branch = %s AND day = %s AND side = 'centre' "
                                   "ORDER BY start_at", (branch, day)).fetchall()
        return [booking_json(r, staff=True) for r in rows]

    def ahead(self, branch: str) -> list[dict[str, Any]]:
        """The centre's bookings of ``branch`` on days it has not taken over (today on), personal fields included:
        the branch's staff page shows them beside its own, so staff see one calendar from every branch. Asked by
        the branch with its token on every calendar poll (``server/uplink/calendar_link.py``), so it counts as
        hearing from the branch."""
        today = utc_now().astimezone(self.sale(branch).branch.site.timezone).date()
        with self.pool.connection() as db, db.transaction():
            db.execute("UPDATE branches SET calendar_seen = clock_timestamp() WHERE id = %s", (branch,))
            with db.cursor(row_factory=dict_row) as cur:
                rows = cur.execute(
                    "SELECT * FROM calendar_bookings b WHERE branch = %s AND side = 'centre' AND day >= %s AND "
                    "status <> 'cancelled' AND NOT EXISTS (SELECT 1 FROM calendar_handovers h WHERE h.branch = "
                    "b.branch AND h.day = b.day) ORDER BY start_at, id", (branch, today)).fetchall()
        return [booking_json(r, staff=True) for r in rows]


def _claim_free_places(cal: OnlineCalendar, rules: ServiceBooking, booking: Booking, grid: list[datetime]) -> None:
    """As ``SlotPlaces.claim``, but of each slot a place number chosen at random among those free in the picture,
    from 1 to the slot's places less the walk-in reserve (the checks before made sure one is free): sales side by
    side on one slot then seldom choose the same number, and a loser (``calendar_claims``' key) reads again — a
    whole sale more, the tail of a morning release. The bound and the key still keep a slot to its places."""
    reserve = rules.online.reserve if rules.online else 0
    for slot in grid:
        key = (booking.service, ts(slot))
        places = cal.places.claims.setdefault(key, {})
        free = [p for p in range(1, cal.places.capacity(rules, slot) - reserve + 1) if p not in places]
        if not free:  # not reached: check_online / staff_grid refused a full slot
            raise ApiError(409, refusals.FULL, "That time is fully booked. Choose another time.", field="start")
        place = random.choice(free)
        places[place] = booking.id
        booking.claims.append((key[1], place))


def staff_details(name: str | None, phone: str | None, email: str | None, note: str | None) -> dict[str, str | None]:
    """What centre staff wrote for a caller: all optional (the caller may not want to give any); a phone or an
    e-mail given must look like one (the branch's staff page and the confirmations read them)."""
    kept = {"name": (name or "").strip()[:100] or None, "phone": (phone or "").strip()[:40] or None,
            "email": (email or "").strip()[:254] or None, "note": (note or "").strip()[:500] or None}
    if kept["phone"] and not PHONE.fullmatch(kept["phone"]):
        raise ApiError(422, refusals.INVALID, "phone: expected a phone number, like +45 12 34 56 78.", field="phone")
    if kept["email"] and not EMAIL.fullmatch(kept["email"]):
        raise ApiError(422, refusals.INVALID, "email: expected an e-mail address, like name@example.dk.",
                       field="email")
    return kept


def staff_grid(cal: OnlineCalendar, now: datetime, rules: ServiceBooking, start: datetime, slots: int,
               booking_id: str | None = None) -> list[datetime]:
    """The staff rules at the centre (docs/bookings.md "Staff at the centre"): a whole grid slot of the service
    that has not begun, 1 to ``max_slots`` slots, each with a free place **the centre owns** — never the branch's
    walk-in reserve (its kiosks and desks sell those at the same moment without asking the centre, so one
    place would have two sellers) and never more than the slot's places (no overbooking here). Not the
    citizen's window, morning release, per-day limit or required details: staff decide for the caller."""
    if not 1 <= slots <= rules.max_slots:
        raise ApiError(422, refusals.SLOTS, f"This service takes bookings of 1 to {rules.max_slots} slot(s) of "
                       f"{rules.slot_min} minutes.", field="slots")
    tz = cal.config.timezone
    grid = cal.places.grid(rules, start, start.astimezone(UTC) + rules.slot * slots)
    if not grid or grid[0] != start.astimezone(tz):
        raise ApiError(422, refusals.NOT_A_SLOT, "Choose one of the offered times.", field="start")
    if start <= now:
        raise ApiError(409, refusals.PAST, "That time has passed.", field="start")
    for slot in grid:
        if cal.places.capacity(rules, slot) <= 0:
            raise ApiError(409, refusals.NO_SLOT, "No one takes bookings at that time.", field="start")
        if cal.online_free(rules, slot, booking_id) <= 0:
            raise ApiError(409, refusals.FULL, "That time is fully booked. Choose another time.", field="start")
    return grid


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

