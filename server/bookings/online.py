"""The online booking rules, in one place for the hub's public page and the centre's calendar.

``OnlineCalendar`` holds a site's config, its ``[bookings]`` settings and a picture of the places taken
(``SlotPlaces``) and of the bookings (for the per-citizen limit). The hub's ``BookingBook`` is one (its picture is
the writer thread's, kept from the SQLite store); the centre (``central/calendar.py``) builds one per request
from the rows it has just locked in PostgreSQL. Either way the same rules decide: the booking window, the
morning release, the walk-in reserve, double slots and the per-day limit. Nothing here writes.
"""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from server.bookings.records import BOOKED, CHECKED_IN, Booking
from server.bookings.settings import BookingSettings, OnlineBooking, ServiceBooking
from server.bookings.slots import SlotPlaces
from server.config import SiteConfig
from server.errors import ApiError
from server.store import ts
from vuoro import refusals

ACTIVE = (BOOKED, CHECKED_IN)
PHONE = re.compile(r"\+?[0-9][0-9 ()./-]{5,24}")
EMAIL = re.compile(r"[^@\s<>\"]{1,64}@[^@\s<>\"]{1,190}\.[^@\s<>\".]{2,}")


def same_contact(value: str | None) -> str:
    """A phone number or an e-mail address as compared for the per-day limit: digits only, or lower case."""
    if not value:
        return ""
    return value.strip().lower() if "@" in value else re.sub(r"\D", "", value)[-8:]


class OnlineCalendar:
    """A site's online booking rules over a picture of its places and bookings (read, never written, here)."""

    def __init__(self, config: SiteConfig, settings: BookingSettings):
        self.config = config
        self.settings = settings
        self.site = config.site_id
        self.places = SlotPlaces(config)
        self.bookings: dict[str, Booking] = {}
        self._plans: dict[tuple[str, date], list[tuple[datetime, str, int]]] = {}
        # What the free-times listing derives from a day's plan alone (config, not bookings): remembered like it.
        self._times: dict[tuple[str, date], list[tuple[str, str, bool]]] = {}
        self._online_days: dict[tuple[str, date], bool] = {}

    def rules(self, service: str) -> ServiceBooking:
        return self.settings.rules(service)

    def forget_plans(self) -> None:
        """Drop what was derived from the day plans: a day's places changed (a branch took its day over)."""
        self._plans.clear()
        self._times.clear()
        self._online_days.clear()

    def online_rules(self, service: str) -> tuple[ServiceBooking, OnlineBooking]:
        if service not in self.config.services:
            raise ApiError(404, refusals.UNKNOWN_SERVICE, f"There is no service {service!r}.", field="service")
        rules = self.rules(service)
        if rules.online is None:
            raise ApiError(409, refusals.NOT_ONLINE, "This service is not booked online. Ask at the desk or call us.",
                           field="service")
        return rules, rules.online

    def online_services(self) -> list[str]:
        """The services citizens may book on the public page, in the site config's order."""
        return [sid for sid in self.config.services if self.rules(sid).online is not None]

    def online_window(self, now: datetime, rules: ServiceBooking) -> tuple[datetime, datetime]:
        """[first, last): the times a citizen may book online now. ``until_min`` before a time online booking
        closes; the last of the ``days_ahead`` days opens at ``opens_at`` (the morning release)."""
        online = rules.online or OnlineBooking()
        local = now.astimezone(self.config.timezone)
        ahead = rules.days_ahead - (1 if local.time() >= online.opens_at else 2)
        last_day = local.date() + timedelta(days=max(ahead, -1))
        return (now + timedelta(minutes=online.until_min),
                datetime.combine(last_day + timedelta(days=1), time.min, self.config.timezone))

    def day_plan(self, rules: ServiceBooking, day: date) -> list[tuple[datetime, str, int]]:
        """The day's grid slots that have places: (start, its key in ``SlotPlaces.claims``, places). From the
        config alone (hours, exceptions, capacity), so remembered per day: the page asks for it at every look."""
        key = (rules.service, day)
        plan = self._plans.get(key)
        if plan is None:
            tz = self.config.timezone
            start = datetime.combine(day, time.min, tz)
            grid = self.places.grid(rules, start, datetime.combine(day + timedelta(days=1), time.min, tz))
            plan = [(slot, ts(slot) or "", places) for slot in grid
                    if (places := self.places.capacity(rules, slot)) > 0]
            if len(self._plans) > 2000:
                self._plans.clear()
                self._times.clear()
                self._online_days.clear()
            self._plans[key] = plan
        return plan

    def day_times(self, rules: ServiceBooking, day: date) -> list[tuple[str, str, bool]]:
        """For each slot of ``day_plan``: its start and end as the listing shows them, and whether the next slot
        of the plan starts where it ends. Remembered per day like the plan: at the morning release this text was
        most of the listing's cost on the writer (bench/bench_booking.py)."""
        key = (rules.service, day)
        texts = self._times.get(key)
        if texts is None:
            tz, utc, plan = self.config.timezone, ZoneInfo("UTC"), self.day_plan(rules, day)
            ends = [(slot.astimezone(utc) + rules.slot).astimezone(tz) for slot, _, _ in plan]
            texts = [(slot.isoformat(timespec="minutes"), end.isoformat(timespec="minutes"),
                      i + 1 < len(plan) and plan[i + 1][0] == end)
                     for i, ((slot, _, _), end) in enumerate(zip(plan, ends, strict=True))]
            self._times[key] = texts
        return texts

    def online_day(self, rules: ServiceBooking, day: date) -> bool:
        """Whether anyone takes online bookings of the service that day (more places than the reserve)."""
        key = (rules.service, day)
        known = self._online_days.get(key)
        if known is None:
            reserve = rules.online.reserve if rules.online else 0
            known = self._online_days[key] = any(places > reserve for _, _, places in self.day_plan(rules, day))
        return known

    def online_free(self, rules: ServiceBooking, slot: datetime, booking_id: str | None = None) -> int:
        """Places of a slot a citizen may take online: the slot's places less the walk-in reserve and those taken
        (by anyone but ``booking_id``: a booking being moved keeps its own place)."""
        reserve = rules.online.reserve if rules.online else 0
        taken = [b for b in self.places.taken(rules.service, slot).values() if b != booking_id]
        capacity = self.places.capacity(rules, slot)
        return 0 if capacity <= 0 else capacity - reserve - len(taken)

    def listing(self, now: datetime, service: str, day: date | None) -> dict[str, Any]:
        """The days a citizen may book now, and the free times of one of them (the first with a free time when
        ``day`` is None). A double time is offered where the next slot is free too."""
        rules, online = self.online_rules(service)
        first, last = self.online_window(now, rules)
        tz = self.config.timezone
        days = []
        cursor = max(now.astimezone(tz).date(), first.astimezone(tz).date())
        while datetime.combine(cursor, time.min, tz) < last:  # only days on which someone takes bookings online
            if self.online_day(rules, cursor):
                days.append(cursor)
            cursor += timedelta(days=1)
        by_day: dict[str, list[dict[str, Any]]] = {}
        reserve, claims, doubles = online.reserve, self.places.claims, rules.max_slots >= 2
        for d in ([day] if day in days else []) if day is not None else days:
            plan, texts = self.day_plan(rules, d), self.day_times(rules, d)
            past = next((i for i, p in enumerate(plan) if p[0] >= first), len(plan))  # the plan is in time order
            plan, texts = plan[past:], texts[past:]
            free = [places - reserve - len(claims.get((service, key), ())) for _, key, places in plan]
            times = []
            for i, (start, end, joined) in enumerate(texts):
                if free[i] <= 0:
                    continue
                times.append({"start": start, "end": end, "free": free[i],
                              "double": doubles and i + 1 < len(plan) and free[i + 1] > 0 and joined})
            by_day[d.isoformat()] = times
            if day is None and times:
                break
        shown = day.isoformat() if day is not None else next((d for d, t in by_day.items() if t),
                                                              days[0].isoformat() if days else None)
        return {"site": self.site, "service": service, "slot_min": rules.slot_min, "max_slots": rules.max_slots,
                "asks": list(online.asks), "per_day": online.per_day if online.identifies else None,
                "retention_days": self.settings.retention_days,
                "days": [d.isoformat() for d in days], "day": shown, "slots": by_day.get(shown or "", []),
                "opens_at": online.opens_at.strftime("%H:%M"), "until_min": online.until_min}

    def check_online(self, now: datetime, rules: ServiceBooking, start: datetime, slots: int,
                      booking_id: str | None = None) -> list[datetime]:
        """The grid slots of an online booking at ``start``, or the refusal that says why it cannot be made."""
        if not 1 <= slots <= rules.max_slots:
            raise ApiError(422, refusals.SLOTS, f"This service takes bookings of 1 to {rules.max_slots} slot(s) of "
                           f"{rules.slot_min} minutes.", field="slots")
        end = start.astimezone(ZoneInfo("UTC")) + rules.slot * slots
        grid = self.places.grid(rules, start, end)
        if not grid or grid[0] != start.astimezone(self.config.timezone):
            raise ApiError(422, refusals.NOT_A_SLOT, "Choose one of the offered times.", field="start")
        first, last = self.online_window(now, rules)
        if start < now:
            raise ApiError(409, refusals.PAST, "That time has passed.", field="start")
        if start < first:
            raise ApiError(409, refusals.TOO_SOON, "That time is too soon to book online. Choose a later time, or come "
                           "by and take a ticket.", field="start", until_min=rules.online.until_min
                           if rules.online else 0)
        if start >= last:
            opens = datetime.combine(start.astimezone(self.config.timezone).date() - timedelta(
                days=rules.days_ahead - 1), rules.online.opens_at if rules.online else time.min, self.config.timezone)
            raise ApiError(409, refusals.NOT_OPEN_YET, f"Times on {start.date().isoformat()} can be booked from "
                           f"{opens.strftime('%Y-%m-%d %H:%M')}.", field="start",
                           opens_at=opens.isoformat(timespec="minutes"))
        for slot in grid:
            if self.places.capacity(rules, slot) <= 0:
                raise ApiError(409, refusals.NO_SLOT, "No one takes bookings at that time. Choose another time.",
                               field="start")
            if self.online_free(rules, slot, booking_id) <= 0:
                raise ApiError(409, refusals.FULL, "Sorry, someone else has just booked that time. Choose another "
                               "time.", field="start")
        return grid


    def check_per_day(self, online: OnlineBooking, service: str, start: datetime, contact: str | None,
                       moving: str | None = None) -> None:
        """One citizen (the same phone or e-mail) has at most ``per_day`` bookings of a service on a day."""
        if not online.identifies or not online.per_day or not contact:
            return
        day, who = start.astimezone(self.config.timezone).date(), same_contact(contact)
        mine = [b for b in self.bookings.values() if b.site == self.site and b.service == service and b.day == day
                and b.status in ACTIVE and b.id != moving and same_contact(getattr(b, online.identifies)) == who]
        if len(mine) >= online.per_day:
            raise ApiError(409, refusals.PER_DAY, f"There is already a booking for this {online.identifies} on that "
                           "day. Change or cancel it with its code instead.", field=online.identifies,
                           per_day=online.per_day)

    def check_details(self, online: OnlineBooking, name: str | None, phone: str | None,
                      email: str | None) -> dict[str, str | None]:
        """What the citizen gave, checked, and kept only where the service asks for it (never more)."""
        given = {"name": (name or "").strip(), "phone": (phone or "").strip(), "email": (email or "").strip()}
        for field_name in online.asks:
            if not given[field_name]:
                raise ApiError(422, refusals.INVALID, f"{field_name}: this service needs it for the booking.",
                               field=field_name)
        if "phone" in online.asks and not PHONE.fullmatch(given["phone"]):
            raise ApiError(422, refusals.INVALID, "phone: expected a phone number, like +45 12 34 56 78.",
                           field="phone")
        if "email" in online.asks and not EMAIL.fullmatch(given["email"]):
            raise ApiError(422, refusals.INVALID, "email: expected an e-mail address, like name@example.dk.",
                           field="email")
        return {k: (v if k in online.asks else None) for k, v in given.items()}

