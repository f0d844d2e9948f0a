"""The slot grid of each bookable service, and who holds each place of each slot.

A service's day is cut into slots of ``slot_min`` minutes from local midnight; a slot has as many
places as staff on the capacity spans that cover it (none while the service is closed). A booking
holds one place in each slot it touches. This is the writer thread's picture of the
``booking_claims`` table, whose UNIQUE (site, service, slot_start, place) is the last line of
defence against two visitors in one place.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from server.bookings.records import Booking
from server.bookings.settings import ServiceBooking
from server.config import SiteConfig
from server.store import ts


class SlotPlaces:
    """Places taken, by (service, slot start in UTC ISO 8601), then by place number: the booking's id."""

    def __init__(self, config: SiteConfig):
        self.config = config
        self.claims: dict[tuple[str, str], dict[int, str]] = {}
        # A branch of a centre's calendar (``[bookings] centre_calendar``) holds only its walk-in reserve on days
        # the centre has not handed over yet: ``owner_limit(rules, local day, places)`` says how many it may use.
        self.owner_limit: Callable[[ServiceBooking, date, int], int] | None = None

    def grid(self, rules: ServiceBooking, start: datetime, end: datetime) -> list[datetime]:
        """Grid slot starts (aware, local) that [start, end) touches."""
        tz = self.config.timezone
        local = start.astimezone(tz)
        midnight = datetime.combine(local.date(), time.min, tz)
        minutes = (local - midnight).total_seconds() // 60
        first = midnight + timedelta(minutes=minutes - minutes % rules.slot_min)
        slots, cursor = [], first
        while cursor < end:
            slots.append(cursor)
            cursor = (cursor.astimezone(ZoneInfo("UTC")) + rules.slot).astimezone(tz)
        return slots

    def here_and_now(self, rules: ServiceBooking, local_now: datetime) -> tuple[list[datetime], datetime]:
        """The grid slots a here-and-now booking starting at ``local_now`` holds, and when it ends.

        It ends on the grid, never inside the next slot: at the end of the current slot, or of the next
        one too when less than half a slot is left of this one (09:50 → 10:00; 09:53 → 10:15). A time that
        ran on past the grid would hold one place while its visitor sat in the next slot's place too.
        """
        grid = self.grid(rules, local_now, local_now + rules.slot / 2)
        tz = self.config.timezone
        return grid, (grid[-1].astimezone(ZoneInfo("UTC")) + rules.slot).astimezone(tz)

    def capacity(self, rules: ServiceBooking, slot_start: datetime) -> int:
        """Places of one grid slot: staff on the capacity spans, none when the service is closed that day."""
        tz = self.config.timezone
        local = slot_start.astimezone(tz)
        end = (local.astimezone(ZoneInfo("UTC")) + rules.slot).astimezone(tz)
        service = self.config.services.get(rules.service)
        if service is not None and not any(
                s.start <= local.time() and (end.time() <= s.end or end.date() > local.date())
                for s in service.hours.spans_on(local.date())):
            return 0
        places = rules.staff_for(local, end)
        return self.owner_limit(rules, local.date(), places) if self.owner_limit else places

    def taken(self, service: str, slot_start: datetime) -> dict[int, str]:
        return self.claims.get((service, ts(slot_start) or ""), {})

    def free(self, rules: ServiceBooking, slot_start: datetime) -> int:
        return self.capacity(rules, slot_start) - len(self.taken(rules.service, slot_start))

    def claim(self, booking: Booking, slot_starts: Iterable[datetime]) -> None:
        for slot in slot_starts:
            key = (booking.service, ts(slot) or "")
            places = self.claims.setdefault(key, {})
            place = next(p for p in range(1, len(places) + 2) if p not in places)
            places[place] = booking.id
            booking.claims.append((key[1], place))

    def release(self, booking: Booking) -> None:
        for slot, place in booking.claims:
            places = self.claims.get((booking.service, slot), {})
            if places.get(place) == booking.id:
                del places[place]
        booking.claims = []
