"""The book: the rules of booked times (slots, capacity, check-in, no-shows, imports, retention).

Pure rules plus the writer thread's picture of the bookings. Everything here
runs on the hub's writer thread (as hub commands ``fn(engine, now)``), so two
kiosks taking the last place of a slot are served one after the other; the
store's UNIQUE (site, service, slot_start, place) constraint on
``booking_claims`` is the last line of defence, as UNIQUE (site, letter, day,
number) is for tickets.

A check-in makes the queue ticket (``engine.issue(..., origin="booking",
due_at=start)``) and updates the booking in the SAME command, so both are
written in one transaction (the booking row travels in ``Outcome.records``).

If a commit fails the hub reloads its engine from the store; the book sees
the new engine object and reloads itself too, so memory never runs ahead of
the disk.

Personal data (name, phone, note) is for staff only: it never appears in a
kiosk answer, a receipt or MQTT, and it is set to NULL once the booking is
older than ``[bookings] retention_days`` (a tick job).

The citizens' online rules (window, release, reserve, per-day limit) live in ``online.py``, shared with the
centre's calendar (``central/calendar.py``); this class adds the hub's picture and its commands.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from server import codes, views
from server.bookings import records
from server.bookings.imports import ImportRow
from server.bookings.online import ACTIVE, EMAIL, PHONE, OnlineCalendar, same_contact  # noqa: F401 - callers
from server.bookings.records import (
    BOOKED,
    CANCELLED,
    CHECKED_IN,
    NO_SHOW,
    Booking,
    BookingRow,
    OldNoShows,
    PurgePersonalData,
)
from server.bookings.settings import BookingSettings, ServiceBooking
from server.config import SiteConfig
from server.engine import Outcome, QueueEngine
from server.errors import ApiError
from server.store import SQLiteStore
from vuoro import refusals

PURGE_EVERY = timedelta(minutes=10)
AHEAD_REWRITE = timedelta(minutes=5)  # the centre's unchanged answer is written again this often (its "as of")




# -- the book --------------------------------------------------------------------------------


class BookingBook(OnlineCalendar):
    """The writer thread's picture of bookings from yesterday on, with their slot places."""

    def __init__(self, config: SiteConfig, settings: BookingSettings, store: SQLiteStore,
                 code_in_use: Callable[[str], bool] | None = None):
        super().__init__(config, settings)
        self.store = store  # read on the writer thread only, like every command here
        # Booking codes and event sign-up codes are one code space: is a code anyone's? (default: ours)
        self.code_in_use = code_in_use or self.has_code
        self.engine: QueueEngine | None = None
        self.by_code: dict[tuple[str, str], str] = {}
        self.by_external: dict[str, str] = {}
        self.by_idem: dict[str, str] = {}
        self.by_ticket: dict[str, str] = {}
        self.loaded_from: date | None = None
        self.issued_codes: set[str] = set()
        self.last_purge: datetime | None = None
        # Days the centre handed over to this branch (a branch of a centre's calendar): then the whole day is ours.
        # Kept in the store too (``booking_owned_days``, written with the handover's bookings), so a branch
        # restarted while cut off from the centre still sells its own day (docs/bookings.md "One calendar").
        self.owned_days: set[date] = set()
        # The centre's bookings of this branch on days not taken over yet, as the centre last answered (and when):
        # the staff page shows them beside the branch's own, also while the centre cannot be reached.
        self.centre_ahead: list[dict[str, Any]] = []
        self.centre_ahead_at: datetime | None = None
        self.centre_ahead_disk: list[dict[str, Any]] = []  # what the store holds, and when it was written
        self.centre_ahead_written: datetime | None = None
        if settings.centre_calendar:
            self.places.owner_limit = self._owner_limit

    # -- memory ------------------------------------------------------------------------------

    def sync(self, engine: QueueEngine, now: datetime) -> None:
        """Reload after a failed commit (the hub then has a new engine) and at a new day."""
        today = engine.local(now).date()
        if engine is not self.engine or self.loaded_from is None or today - self.loaded_from > timedelta(days=1):
            self.load(today - timedelta(days=1))
            self.engine = engine

    def load(self, since: date) -> None:
        self.bookings.clear()
        self.by_code.clear()
        self.by_external.clear()
        self.by_idem.clear()
        self.by_ticket.clear()
        self.places.claims.clear()
        for booking in records.bookings_since(self.store, since):
            self._remember(booking)
        for service, slot, place, booking_id in records.claims_since(
                self.store, self.site, datetime.combine(since, time.min, self.config.timezone)):
            self.places.claims.setdefault((service, slot), {})[place] = booking_id
            if booking_id in self.bookings:
                self.bookings[booking_id].claims.append((slot, place))
        if self.settings.centre_calendar:
            self.owned_days = records.owned_days_since(self.store, self.site, since)
            self.centre_ahead, self.centre_ahead_at = records.centre_ahead(self.store, self.site)
            self.centre_ahead_disk, self.centre_ahead_written = list(self.centre_ahead), self.centre_ahead_at
            self.forget_plans()  # the owned days decide a slot's places: what was derived from them is stale
        self.loaded_from = since

    def _remember(self, booking: Booking) -> None:
        self.bookings[booking.id] = booking
        self.by_code[(booking.site, booking.code)] = booking.id
        if booking.external_id:
            self.by_external[booking.external_id] = booking.id
        if booking.idem_key:
            self.by_idem[booking.idem_key] = booking.id
        if booking.ticket_id:
            self.by_ticket[booking.ticket_id] = booking.id

    def find_code(self, code: str) -> Booking | None:
        """This site's booking with the code first, then another branch's (a shared import)."""
        booking_id = self.by_code.get((self.site, code))
        if booking_id:
            return self.bookings[booking_id]
        found = records.find(self.store, "site = ? AND code = ?", self.site, code)
        if found:
            return found
        other = [b for (s, c), bid in self.by_code.items() if c == code and s != self.site
                 for b in (self.bookings[bid],)]
        return other[0] if other else records.find(self.store, "code = ?", code)

    def has_code(self, code: str) -> bool:
        """Whether a booking of this site has the code (or is about to: made in this batch)."""
        return (code in self.issued_codes or (self.site, code) in self.by_code
                or records.code_in_use(self.store, self.site, code))

    def new_code(self) -> str:
        code = codes.new_code(self.code_in_use)
        self.issued_codes.add(code)
        return code

    # -- slots ---------------------------------------------------------------------------------

    def here_and_now(self, engine: QueueEngine, now: datetime, rules: ServiceBooking) -> dict[str, Any] | None:
        """A time from now to the grid (``SlotPlaces.here_and_now``) if a librarian is free: the service open,
        a place left in every slot it holds, no one waiting."""
        if not rules.here_and_now or not engine.is_open(rules.service, now) or engine.waiting(rules.service):
            return None
        local = engine.local(now).replace(second=0, microsecond=0)
        grid, end = self.places.here_and_now(rules, local)
        if any(self.places.free(rules, slot) <= 0 for slot in grid):
            return None
        return {"start": local.isoformat(timespec="minutes"), "end": end.isoformat(timespec="minutes")}

    def free_slots(self, engine: QueueEngine, now: datetime, service: str, days: int,
                   staff: bool = False) -> dict[str, Any]:
        """Free times of a service; staff (booking for a caller) see every bookable service, kiosks only those
        visitors book themselves."""
        if service not in self.config.services:
            raise ApiError(404, refusals.UNKNOWN_SERVICE, f"There is no service {service!r}.", field="service")
        rules = self.rules(service)
        if not (rules.self_booking or staff and service in self.settings.services):
            raise ApiError(409, refusals.NO_SELF_BOOKING, "This service's times are booked at the desk or by phone.",
                           field="service")
        days = min(days, rules.days_ahead)
        tz = self.config.timezone
        today = engine.local(now).date()
        slots: list[dict[str, Any]] = []
        for offset in range(days):
            day = today + timedelta(days=offset)
            start = datetime.combine(day, time.min, tz)
            end = datetime.combine(day + timedelta(days=1), time.min, tz)
            grid = [s for s in self.places.grid(rules, start, end) if s > now]
            free = {s: self.places.free(rules, s) for s in grid}
            for i, slot in enumerate(grid):
                if free[slot] <= 0:
                    continue
                nxt = grid[i + 1] if i + 1 < len(grid) else None
                double = rules.max_slots >= 2 and nxt is not None and free.get(nxt, 0) > 0
                slots.append({"start": slot.isoformat(timespec="minutes"),
                              "end": (slot.astimezone(ZoneInfo("UTC")) + rules.slot).astimezone(tz).isoformat(
                                  timespec="minutes"),
                              "free": free[slot], "double": double})
        return {"service": service, "slot_min": rules.slot_min, "max_slots": rules.max_slots,
                "here_and_now": self.here_and_now(engine, now, rules), "slots": slots}

    # -- answers ---------------------------------------------------------------------------------

    def booking_json(self, engine: QueueEngine, booking: Booking, *, staff: bool,
                     with_code: bool = True) -> dict[str, Any]:
        service = self.config.services.get(booking.service)
        body: dict[str, Any] = {
            "id": booking.id,
            "service": booking.service,
            "service_names": dict(service.names) if service else {},
            "start": views.iso(engine, booking.start),
            "end": views.iso(engine, booking.end),
            "day": booking.day.isoformat(),
            "slots": booking.slots,
            "status": booking.status,
        }
        if with_code:
            body["code"] = booking.code
            body["code_display"] = codes.pretty(booking.code)
        if staff:
            ticket = engine.tickets.get(booking.ticket_id or "")
            body.update({
                "origin": booking.origin, "external_id": booking.external_id, "site": booking.site,
                "name": booking.name, "phone": booking.phone, "email": booking.email, "note": booking.note,
                "checked_in_at": views.iso(engine, booking.checked_in_at),
                "ticket": {"id": ticket.id, "ticket": ticket.label, "status": ticket.status} if ticket else None,
                "created_at": views.iso(engine, booking.created_at),
                "cancelled_at": views.iso(engine, booking.cancelled_at),
                "overbooked": any(p > self.places.capacity(self.rules(booking.service), datetime.fromisoformat(s))
                                  for s, p in booking.claims),
            })
        return body

    def _short(self, engine: QueueEngine, booking: Booking) -> dict[str, Any]:
        return {"service": booking.service, "start": views.iso(engine, booking.start),
                "end": views.iso(engine, booking.end)}

    def list_day(self, engine: QueueEngine, now: datetime, day: date, staff: bool) -> dict[str, Any]:
        self.sync(engine, now)
        if self.loaded_from and day >= self.loaded_from:
            items = [b for b in self.bookings.values() if b.day == day and b.site == self.site]
        else:
            items = records.bookings_on(self.store, self.site, day)
        items.sort(key=lambda b: (b.start, b.service))
        # The centre's bookings of a day not taken over yet (its copy, kept offline too): one calendar to look at
        centre = [r for r in self.centre_ahead if r["day"] == day.isoformat() and r["id"] not in self.bookings
                  and r["status"] != CANCELLED]
        if staff:
            mine = [self.booking_json(engine, b, staff=True) for b in items]
            theirs = [self.centre_json(engine, r) for r in centre]
            answer: dict[str, Any] = {"day": day.isoformat(),
                                      "bookings": sorted(mine + theirs, key=lambda b: (b["start"], b["service"]))}
            if self.settings.centre_calendar:
                answer["centre_as_of"] = views.iso(engine, self.centre_ahead_at)
            return answer
        short = [{**self._short(engine, b), "status": b.status} for b in items if b.status != CANCELLED]
        short += [{"service": r["service"], "start": views.iso(engine, datetime.fromisoformat(r["start"])),
                   "end": views.iso(engine, datetime.fromisoformat(r["end"])), "status": r["status"]} for r in centre]
        return {"day": day.isoformat(), "bookings": sorted(short, key=lambda b: (b["start"], b["service"]))}

    def centre_json(self, engine: QueueEngine, row: dict[str, Any]) -> dict[str, Any]:
        """A centre's booking of a later day for the staff page: as staff see the branch's own, marked
        ``side: "centre"`` (moved and cancelled on the centre's calendar: the centre owns its places)."""
        service = self.config.services.get(row["service"])
        return {"id": row["id"], "service": row["service"], "service_names": dict(service.names) if service else {},
                "start": views.iso(engine, datetime.fromisoformat(row["start"])),
                "end": views.iso(engine, datetime.fromisoformat(row["end"])), "day": row["day"],
                "slots": row["slots"], "status": row["status"], "code": row["code"],
                "code_display": codes.pretty(row["code"]), "origin": row.get("origin") or "web", "site": self.site,
                "name": row.get("name"), "phone": row.get("phone"), "email": row.get("email"),
                "note": row.get("note"), "checked_in_at": None, "ticket": None,
                "created_at": row.get("created_at"), "cancelled_at": row.get("cancelled_at"), "overbooked": False,
                "side": "centre"}

    # -- commands ----------------------------------------------------------------------------------

    def _new_booking(self, now: datetime, service: str, start: datetime, slots: int, origin: str,
                     **extra: Any) -> Booking:
        rules = self.rules(service)
        end = (start.astimezone(ZoneInfo("UTC")) + rules.slot * slots)
        return Booking(id=uuid.uuid4().hex, site=extra.pop("site", None) or self.site, code=extra.pop("code", None)
                       or self.new_code(), service=service, start=start.astimezone(ZoneInfo("UTC")),
                       end=extra.pop("end", None) or end, day=start.astimezone(self.config.timezone).date(),
                       slots=slots, status=BOOKED, origin=origin, created_at=now, **extra)

    def _check_places(self, rules: ServiceBooking, grid: list[datetime], force: bool) -> None:
        for slot in grid:
            capacity = self.places.capacity(rules, slot)
            if capacity <= 0 and not force:
                raise ApiError(409, refusals.NO_SLOT, f"No one takes bookings at {slot.strftime('%H:%M')} on "
                               f"{slot.date().isoformat()}.", field="start")
            if len(self.places.taken(rules.service, slot)) >= capacity and not force:
                raise ApiError(409, refusals.FULL,
                               f"The time {slot.strftime('%H:%M')} is fully booked. Choose another time.",
                               field="start")

    def create(self, engine: QueueEngine, now: datetime, *, service: str, start: datetime, slots: int,
               origin: str, force: bool = False, name: str | None = None, phone: str | None = None,
               note: str | None = None, language: str | None = None, idem_key: str | None = None) -> Outcome:
        """A staff or kiosk booking. A kiosk books whole grid slots in the future; staff may force."""
        self.sync(engine, now)
        if service not in self.config.services:
            raise ApiError(404, refusals.UNKNOWN_SERVICE, f"There is no service {service!r}.", field="service")
        rules = self.rules(service)
        if not 1 <= slots <= rules.max_slots and not force:
            raise ApiError(422, refusals.SLOTS, f"This service takes bookings of 1 to {rules.max_slots} slot(s) of "
                           f"{rules.slot_min} minutes.", field="slots")
        end = start.astimezone(ZoneInfo("UTC")) + rules.slot * slots
        if origin == "kiosk":
            if not rules.self_booking:
                raise ApiError(409, refusals.NO_SELF_BOOKING,
                               "This service's times are booked at the desk or by phone.",
                               field="service")
            grid = self.places.grid(rules, start, end)
            if not grid or grid[0] != start.astimezone(self.config.timezone):
                raise ApiError(422, refusals.NOT_A_SLOT, "Choose one of the offered times.", field="start")
            if start <= now or start.astimezone(self.config.timezone).date() > (
                    engine.local(now).date() + timedelta(days=rules.days_ahead)):
                raise ApiError(409, refusals.NO_SLOT, "That time can no longer be booked. Choose another time.",
                               field="start")
        elif end <= now and not force:
            raise ApiError(409, refusals.PAST, "That time has passed.", field="start")
        grid = self.places.grid(rules, start, end)
        self._check_places(rules, grid, force)
        booking = self._new_booking(now, service, start, slots, origin, name=name, phone=phone, note=note,
                                    language=language, idem_key=idem_key)
        self.places.claim(booking, grid)
        self._remember(booking)
        return Outcome(records=[BookingRow(replace(booking, claims=list(booking.claims)), tuple(booking.claims))])

    def made_with(self, key: str) -> Booking | None:
        """The booking made with this Idempotency-Key (``<caller>:<key>``), if any: a retried request's."""
        booking_id = self.by_idem.get(key)
        if booking_id is not None:
            return self.bookings[booking_id]
        found = records.find(self.store, "site = ? AND idem_key = ?", self.site, key)
        if found is not None:
            self._remember(found)
        return found

    def book_self(self, engine: QueueEngine, now: datetime, *, service: str, start: datetime | None, slots: int,
                  language: str, key: str) -> tuple[Outcome, dict[str, Any]]:
        """The kiosk's "book a time": a slot later, or here-and-now (booked and checked in at once)."""
        self.sync(engine, now)
        existing = self.by_idem.get(key)
        if existing is None:
            found = records.find(self.store, "site = ? AND idem_key = ?", self.site, key)
            existing = found.id if found else None
            if found:
                self._remember(found)
        if existing is not None:
            booking = self.bookings[existing]
            ticket = engine.tickets.get(booking.ticket_id or "")
            return Outcome(replay=True), {"replay": True, "booking": self.booking_json(engine, booking, staff=False),
                                          "ticket": views.ticket_json(engine, ticket) if ticket else None}
        if start is None:
            if service not in self.config.services:
                raise ApiError(404, refusals.UNKNOWN_SERVICE, f"There is no service {service!r}.", field="service")
            rules = self.rules(service)
            if self.here_and_now(engine, now, rules) is None:
                raise ApiError(409, refusals.NOT_FREE, "No one is free right now. Choose a time or take a ticket.")
            local = engine.local(now).replace(second=0, microsecond=0)
            grid, end = self.places.here_and_now(rules, local)
            booking = self._new_booking(now, service, local, len(grid), "here_and_now", language=language,
                                        idem_key=key, end=end.astimezone(ZoneInfo("UTC")))
            self.places.claim(booking, grid)
            self._remember(booking)
            outcome = engine.issue(service, language, now, idempotency_key=key, origin="booking",
                                   due_at=booking.start)
            assert outcome.ticket is not None
            booking.status, booking.ticket_id, booking.checked_in_at = CHECKED_IN, outcome.ticket.id, now
            self._remember(booking)
            outcome.records.append(BookingRow(replace(booking, claims=list(booking.claims)), tuple(booking.claims)))
            return outcome, {"replay": False, "booking": self.booking_json(engine, booking, staff=False),
                             "ticket": views.ticket_json(engine, outcome.ticket)}
        outcome = self.create(engine, now, service=service, start=start, slots=slots, origin="kiosk",
                              language=language, idem_key=key)
        booking = self.bookings[self.by_idem[key]]
        return outcome, {"replay": False, "booking": self.booking_json(engine, booking, staff=False), "ticket": None}

    def move(self, engine: QueueEngine, now: datetime, booking_id: str, start: datetime, slots: int | None = None,
             force: bool = False) -> tuple[Outcome, dict[str, Any]]:
        """Staff move a booking to another time (the visitor rang): its places are given up and the new ones
        taken in one command, so the old time is free again and no one else can take the new one in between.
        The code stays the same. A refusal (the new time is full) leaves the booking where it was."""
        self.sync(engine, now)
        booking = self.bookings.get(booking_id) or records.find(self.store, "id = ?", booking_id)
        if booking is None or booking.site != self.site:
            raise ApiError(404, refusals.UNKNOWN_BOOKING, "There is no such booking.", field="id")
        if booking.status == CANCELLED:
            raise ApiError(409, refusals.CANCELLED, "This booking was cancelled. Make a new booking instead.")
        if booking.status == CHECKED_IN:
            raise ApiError(409, refusals.CHECKED_IN,
                           "The visitor has already checked in; serve or finish the ticket instead.")
        rules = self.rules(booking.service)
        slots = slots or booking.slots
        if not 1 <= slots <= rules.max_slots and not force:
            raise ApiError(422, refusals.SLOTS, f"This service takes bookings of 1 to {rules.max_slots} slot(s) of "
                           f"{rules.slot_min} minutes.", field="slots")
        end = start.astimezone(ZoneInfo("UTC")) + rules.slot * slots
        if end <= now and not force:
            raise ApiError(409, refusals.PAST, "That time has passed.", field="start")
        if booking.id not in self.bookings:
            self._remember(booking)
        held = list(booking.claims)
        self.places.release(booking)
        grid = self.places.grid(rules, start, end)
        try:
            self._check_places(rules, grid, force)
        except ApiError:
            for slot, place in held:  # back to its own places: nothing changed
                self.places.claims.setdefault((booking.service, slot), {})[place] = booking.id
            booking.claims = held
            raise
        booking.start, booking.end, booking.slots = start.astimezone(ZoneInfo("UTC")), end, slots
        booking.day, booking.status = start.astimezone(self.config.timezone).date(), BOOKED
        self.places.claim(booking, grid)
        return (Outcome(records=[BookingRow(replace(booking, claims=list(booking.claims)), tuple(booking.claims))]),
                self.booking_json(engine, booking, staff=True))

    def cancel(self, engine: QueueEngine, now: datetime, booking_id: str) -> tuple[Outcome, dict[str, Any]]:
        self.sync(engine, now)
        booking = self.bookings.get(booking_id) or records.find(self.store, "id = ?", booking_id)
        if booking is None or booking.site != self.site:
            raise ApiError(404, refusals.UNKNOWN_BOOKING, "There is no such booking.", field="id")
        if booking.status == CANCELLED:
            return Outcome(), self.booking_json(engine, booking, staff=True)
        if booking.status == CHECKED_IN:
            raise ApiError(409, refusals.CHECKED_IN,
                           "The visitor has already checked in; serve or finish the ticket instead.")
        booking.status, booking.cancelled_at = CANCELLED, now
        self.places.release(booking)
        return (Outcome(records=[BookingRow(replace(booking, claims=[]), ())]),
                self.booking_json(engine, booking, staff=True))

    def checkin(self, engine: QueueEngine, now: datetime, code: str, language: str,
                key: str) -> tuple[Outcome, dict[str, Any]] | None:
        """Check a visitor in with their code (normalised: ``server.codes``): a queue ticket due at the booked
        time, in one transaction. None when no booking has the code (it may be an event sign-up's)."""
        self.sync(engine, now)
        if key in engine.idempotency:
            ticket = engine.tickets.get(engine.idempotency[key][0])
            booking_id = self.by_ticket.get(ticket.id) if ticket else None
            if ticket is not None and booking_id:
                booking = self.bookings[booking_id]
                return Outcome(replay=True), {"replay": True, "ticket": views.ticket_json(engine, ticket),
                                              "booking": self._short(engine, booking)}
        booking = self.find_code(code)
        if booking is None:
            return None
        short = self._short(engine, booking)
        if booking.site != self.site:
            raise ApiError(409, refusals.OTHER_SITE, f"This booking is at another branch ({booking.site}).",
                           site=booking.site, booking=short)
        if booking.status == CANCELLED:
            raise ApiError(409, refusals.CANCELLED,
                           "This booking was cancelled. Please ask at the desk.", booking=short)
        if booking.ticket_id:
            ticket = engine.tickets.get(booking.ticket_id)
            raise ApiError(409, refusals.ALREADY_CHECKED_IN,
                           "You have already checked in. Watch the screen for your number.",
                           booking=short, ticket=views.ticket_json(engine, ticket) if ticket else None)
        local_start = engine.local(booking.start)
        if local_start.date() != engine.local(now).date():
            raise ApiError(409, refusals.OTHER_DAY, f"This booking is for {local_start.date().isoformat()}.",
                           date=local_start.date().isoformat(), booking=short)
        rules = self.rules(booking.service)
        opens = booking.start - timedelta(minutes=rules.early_min)
        if now < opens:
            raise ApiError(409, refusals.TOO_EARLY,
                           f"You are early. Check in from {engine.local(opens).strftime('%H:%M')}.",
                           come_back_at=views.iso(engine, opens), booking=short)
        if booking.status == NO_SHOW or now > booking.start + timedelta(minutes=rules.late_min):
            raise ApiError(409, refusals.TOO_LATE, "Your booking time has passed. You can take a ticket instead.",
                           service=booking.service, booking=short)
        outcome = engine.issue(booking.service, language, now, idempotency_key=key, origin="booking",
                               due_at=booking.start)
        assert outcome.ticket is not None
        if booking.id not in self.bookings:
            self._remember(booking)
        booking.status, booking.ticket_id, booking.checked_in_at = CHECKED_IN, outcome.ticket.id, now
        if language and not booking.language:
            booking.language = language
        self._remember(booking)
        outcome.records.append(BookingRow(replace(booking, claims=list(booking.claims))))
        return outcome, {"replay": False, "ticket": views.ticket_json(engine, outcome.ticket), "booking": short}

    def import_rows(self, engine: QueueEngine, now: datetime, rows: list[ImportRow],
                    dry_run: bool = False) -> tuple[Outcome, dict[str, Any]]:
        """Create, move or cancel bookings by their external id; the same file twice changes nothing."""
        self.sync(engine, now)
        outcome = Outcome()
        report: dict[str, Any] = {"created": 0, "updated": 0, "cancelled": 0, "unchanged": 0, "other_site": 0,
                                  "warnings": []}
        for row in rows:
            existing_id = self.by_external.get(row.external_id)
            existing = self.bookings.get(existing_id or "") or records.find(
                self.store, "site IN (?, ?) AND external_id = ?", self.site, row.site or self.site, row.external_id)
            rules = self.rules(row.service)
            end = row.end or row.start + rules.slot
            slots = max(1, math.ceil((end - row.start) / rules.slot))
            ours = row.site in (None, "", self.site)
            if existing is None:
                if row.cancelled:
                    report["unchanged"] += 1
                    continue
                if row.code and self.code_in_use(row.code):
                    report["warnings"].append({"row": row.row, "field": "code",
                                               "message": f"The code {row.code} is taken here; a new one was made."})
                    row.code = None
                booking = self._new_booking(now, row.service, row.start, slots, "import", end=end.astimezone(
                    ZoneInfo("UTC")), external_id=row.external_id, site=None if ours else row.site, code=row.code,
                    name=row.name if ours else None, phone=row.phone if ours else None,
                    note=row.note if ours else None)
                if dry_run:
                    report["created"] += 1
                    continue
                if ours:
                    grid = self.places.grid(rules, booking.start, booking.end)
                    self.places.claim(booking, grid)
                    if any(p > self.places.capacity(rules, datetime.fromisoformat(s)) for s, p in booking.claims):
                        report["warnings"].append({"row": row.row, "field": "start",
                                                   "message": "More bookings than places at this time (imported "
                                                              "anyway: the booking system is in charge)."})
                else:
                    report["other_site"] += 1
                self._remember(booking)
                outcome.records.append(BookingRow(replace(booking, claims=list(booking.claims)),
                                                  tuple(booking.claims)))
                report["created"] += 1
                continue
            if existing.id not in self.bookings:
                self._remember(existing)
            if row.cancelled:
                if existing.status in (CANCELLED, CHECKED_IN):
                    report["unchanged"] += 1
                    continue
                if not dry_run:
                    existing.status, existing.cancelled_at = CANCELLED, now
                    self.places.release(existing)
                    outcome.records.append(BookingRow(replace(existing, claims=[]), ()))
                report["cancelled"] += 1
                continue
            same = (existing.start == row.start.astimezone(ZoneInfo("UTC")) and existing.end == end
                    and existing.service == row.service and existing.status != CANCELLED
                    and (not ours or (existing.name, existing.phone) == (row.name, row.phone)))
            if same or existing.status == CHECKED_IN:
                report["unchanged"] += 1
                continue
            if not dry_run:
                self.places.release(existing)
                existing.service, existing.start, existing.end = row.service, row.start.astimezone(ZoneInfo("UTC")), \
                    end.astimezone(ZoneInfo("UTC"))
                existing.day, existing.slots = row.start.astimezone(self.config.timezone).date(), slots
                existing.status, existing.cancelled_at = BOOKED, None
                if ours:
                    existing.name, existing.phone, existing.note = row.name, row.phone, row.note
                    self.places.claim(existing, self.places.grid(rules, existing.start, existing.end))
                outcome.records.append(BookingRow(replace(existing, claims=list(existing.claims)),
                                                  tuple(existing.claims)))
            report["updated"] += 1
        return outcome, report

    # -- the public booking page (server/bookings/public.py): citizens book, move and cancel themselves ---------

    def online_slots(self, engine: QueueEngine, now: datetime, service: str, day: date | None) -> dict[str, Any]:
        """The days a citizen may book now and one day's free times (``OnlineCalendar.listing``), after a sync."""
        self.sync(engine, now)
        return self.listing(now, service, day)

    def book_online(self, engine: QueueEngine, now: datetime, *, service: str, start: datetime, slots: int,
                    key: str, language: str, name: str | None = None, phone: str | None = None,
                    email: str | None = None) -> tuple[Outcome, dict[str, Any]]:
        """A citizen's booking on the public page. ``key`` (its Idempotency-Key) makes a double submit one
        booking: the second answers the first. Only what the service asks for is kept."""
        self.sync(engine, now)
        earlier = self.made_with(key)
        if earlier is not None:
            return Outcome(replay=True), {"replay": True, **self.booking_json(engine, earlier, staff=False)}
        rules, online = self.online_rules(service)
        kept = self.check_details(online, name, phone, email)
        grid = self.check_online(now, rules, start, slots)
        self.check_per_day(online, service, start, kept[online.identifies] if online.identifies else None)
        booking = self._new_booking(now, service, start, slots, "web", name=kept["name"], phone=kept["phone"],
                                    email=kept["email"], language=language, idem_key=key)
        self.places.claim(booking, grid)
        self._remember(booking)
        outcome = Outcome(records=[BookingRow(replace(booking, claims=list(booking.claims)), tuple(booking.claims))])
        return outcome, {"replay": False, **self.booking_json(engine, booking, staff=False)}

    def find_online(self, code: str) -> Booking:
        """This site's booking with the code (any origin: a phone booking can be managed online too)."""
        booking_id = self.by_code.get((self.site, code))
        booking = self.bookings.get(booking_id or "") or records.find(self.store, "site = ? AND code = ?",
                                                                       self.site, code)
        if booking is None:
            raise ApiError(404, refusals.NOT_FOUND, "There is no booking with this code. Check the code.",
                           field="code")
        return booking

    def move_online(self, engine: QueueEngine, now: datetime, code: str, start: datetime,
                    slots: int | None = None) -> tuple[Outcome, dict[str, Any]]:
        """The citizen moves their own booking: the online rules for the new time; the old one is kept if the
        new one cannot be had (``move`` does the swap in one command)."""
        self.sync(engine, now)
        booking = self.find_online(code)
        if booking.status != BOOKED:
            raise ApiError(409, refusals.CANCELLED if booking.status == CANCELLED else refusals.CHECKED_IN,
                           "This booking can no longer be changed.")
        rules, _ = self.online_rules(booking.service)
        if booking.start < now + timedelta(minutes=rules.online.until_min if rules.online else 0):
            raise ApiError(409, refusals.TOO_SOON, "Your time is too soon to change online. Please call us.")
        self.check_online(now, rules, start, slots or booking.slots, booking.id)
        if rules.online and rules.online.identifies:
            self.check_per_day(rules.online, booking.service, start, getattr(booking, rules.online.identifies),
                                moving=booking.id)
        outcome, _ = self.move(engine, now, booking.id, start, slots)
        return outcome, self.booking_json(engine, booking, staff=False)

    def cancel_online(self, engine: QueueEngine, now: datetime, code: str) -> tuple[Outcome, dict[str, Any]]:
        """The citizen cancels: the place is free again at once."""
        self.sync(engine, now)
        booking = self.find_online(code)
        if booking.status == CANCELLED:
            return Outcome(), self.booking_json(engine, booking, staff=False)
        if booking.status != BOOKED or booking.end <= now:
            raise ApiError(409, refusals.CHECKED_IN if booking.status == CHECKED_IN else refusals.PAST,
                           "This booking can no longer be cancelled.")
        outcome, _ = self.cancel(engine, now, booking.id)
        return outcome, self.booking_json(engine, booking, staff=False)

    # -- the centre's calendar (server/uplink/calendar_link.py): the day handed over at opening -----------------

    def _owner_limit(self, rules: ServiceBooking, day: date, places: int) -> int:
        """Places of a slot this branch may fill: all on a day handed over to it (or of a service the centre does
        not sell), else only the walk-in reserve (the centre sells the rest)."""
        if rules.online is None or day in self.owned_days:
            return places
        return min(places, rules.online.reserve)

    def accept_handover(self, engine: QueueEngine, now: datetime, day: date,
                        rows: list[dict[str, Any]]) -> tuple[Outcome, dict[str, Any]]:
        """The centre handed ``day`` over (in its own transaction): its bookings of the day, with their status.
        New ones take their places; known ones merge their status by the one rule (``merged_status``); the day
        is ours from now on. Asked again on every poll, so a cut that lost an answer, or a cancellation made at
        the centre during a cut, arrives with the next one; the same rows twice change nothing."""
        self.sync(engine, now)
        outcome = Outcome()
        added = merged = 0
        tz = self.config.timezone
        for row in rows:
            incoming = _from_centre(row, self.site, tz)
            booking = self.bookings.get(incoming.id) or records.find(self.store, "id = ?", incoming.id)
            if booking is None:
                if incoming.status == BOOKED:
                    rules = self.rules(incoming.service)
                    # force: the centre sold these places on its side of the partition; they are there
                    self.places.claim(incoming, self.places.grid(rules, incoming.start, incoming.end))
                self._remember(incoming)
                outcome.records.append(BookingRow(replace(incoming, claims=list(incoming.claims)),
                                                  tuple(incoming.claims)))
                added += 1
                continue
            if booking.id not in self.bookings:
                self._remember(booking)
            status = merged_status(booking.status, incoming.status)
            if status == booking.status:
                continue
            if status == CANCELLED:  # cancelled at the centre, not checked in here: the place is free again
                booking.status, booking.cancelled_at = CANCELLED, incoming.cancelled_at or now
                self.places.release(booking)
                outcome.records.append(BookingRow(replace(booking, claims=[]), ()))
                merged += 1
        if day not in self.owned_days:  # on disk with the day's bookings, in the same transaction
            outcome.records.append(records.OwnedDay(self.site, day, now))
        self.owned_days.add(day)
        self.forget_plans()  # the day's places changed owner: the remembered plans are stale
        return outcome, {"day": day.isoformat(), "added": added, "merged": merged}

    def accept_ahead(self, engine: QueueEngine, now: datetime, rows: list[dict[str, Any]]) -> Outcome:
        """The centre's bookings of later days, as it answered now: kept (on disk) only when they changed."""
        self.sync(engine, now)
        rows = [r for r in rows if isinstance(r, dict) and {"id", "day", "start", "end", "service"} <= set(r)]
        written = self.centre_ahead_written
        self.centre_ahead, self.centre_ahead_at = rows, now
        if rows == self.centre_ahead_disk and written is not None and now - written < AHEAD_REWRITE:
            return Outcome()  # the same answer: nothing to write (the time on disk moves every few minutes)
        self.centre_ahead_disk, self.centre_ahead_written = rows, now
        return Outcome(records=[records.CentreAhead(self.site, tuple(rows), now)])

    # -- tick jobs ----------------------------------------------------------------------------------

    def mark_no_shows(self, engine: QueueEngine, now: datetime) -> Outcome:
        """Bookings nobody checked in for by the end of the late window become no-shows (slots stay taken)."""
        self.sync(engine, now)
        outcome = Outcome()
        for booking in self.bookings.values():
            if booking.status == BOOKED and booking.site == self.site and \
                    now > booking.start + timedelta(minutes=self.rules(booking.service).late_min):
                booking.status = NO_SHOW
                outcome.records.append(BookingRow(replace(booking, claims=list(booking.claims))))
        before = (self.loaded_from or engine.local(now).date()).isoformat()
        if records.booked_before(self.store, self.site, before):
            outcome.records.append(OldNoShows(self.site, before))
        return outcome

    def purge(self, engine: QueueEngine, now: datetime, force: bool = False) -> Outcome:
        """Personal data of bookings older than the retention period is set to NULL."""
        if not force and self.last_purge is not None and now - self.last_purge < PURGE_EVERY:
            return Outcome()
        self.last_purge = now
        before = (engine.local(now).date() - timedelta(days=self.settings.retention_days)).isoformat()
        found = records.personal_data_before(self.store, self.site, before) or any(
            r["day"] < before for r in self.centre_ahead)
        self.centre_ahead = [r for r in self.centre_ahead if r["day"] >= before]
        for booking in self.bookings.values():
            if booking.day.isoformat() < before:
                booking.name = booking.phone = booking.note = booking.email = None
        return Outcome(records=[PurgePersonalData(self.site, before)]) if found else Outcome()


STATUS_RANK = {BOOKED: 0, NO_SHOW: 1, CANCELLED: 2, CHECKED_IN: 3}


def merged_status(ours: str, theirs: str) -> str:
    """The one rule for a booking changed on both sides of a cut: checked in beats cancelled beats (no-show
    beats) booked. The centre's ingest applies the same order (``central/calendar.py``)."""
    return ours if STATUS_RANK.get(ours, 0) >= STATUS_RANK.get(theirs, 0) else theirs


def _from_centre(row: dict[str, Any], site: str, tz: Any) -> Booking:
    """A booking the centre sold (its JSON), as this branch keeps it."""
    def when(value: Any) -> datetime | None:
        return datetime.fromisoformat(value) if value else None

    start = datetime.fromisoformat(row["start"]).astimezone(ZoneInfo("UTC"))
    return Booking(id=row["id"], site=site, code=row["code"], service=row["service"], start=start,
                   end=datetime.fromisoformat(row["end"]).astimezone(ZoneInfo("UTC")), day=start.astimezone(tz).date(),
                   slots=int(row["slots"]), status=row["status"] if row["status"] in STATUS_RANK else BOOKED,
                   origin=row.get("origin") if row.get("origin") in records.ORIGINS else "web",
                   created_at=when(row.get("created_at")) or start, name=row.get("name"),
                   phone=row.get("phone"), email=row.get("email"), note=row.get("note"), language=row.get("language"),
                   cancelled_at=when(row.get("cancelled_at")), idem_key=f"centre:{row['id']}")

