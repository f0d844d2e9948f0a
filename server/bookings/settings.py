"""The ``[bookings]`` section and each service's ``[services.<id>.booking]``: slots, capacity, windows.

``parse_settings`` checks every key and reports every problem with its key path, as the core config
does (``server/config.py``); ``vuoro hub --check`` runs it before the hub starts.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any

from server.config import WEEKDAYS, ConfigError, SiteConfig, check_number, check_tables, check_unknown_keys

# A booking's personal fields are kept this long after its day where the site says nothing: what the commercial
# systems libraries know keep appointments for (Qmatic's 90); a site that needs less says so (the sample: 30).
DEFAULT_RETENTION_DAYS = 90

@dataclass(frozen=True)
class CapacitySpan:
    days: frozenset[int]  # 0 = Monday
    start: time
    end: time  # time.max for 24:00
    staff: int


CONTACTS = ("name", "phone", "email")


@dataclass(frozen=True)
class OnlineBooking:
    """``[services.<id>.booking.online]``: what the public booking page (``/book/``) may do for this service.

    The least personal data by default: nothing at all (``asks = []``); a name, a phone number or an e-mail
    address only where the service asks for it, and its purpose is said on the page."""

    asks: tuple[str, ...] = ()  # of CONTACTS, each one required when asked
    opens_at: time = time(0, 0)  # a day's times open at this local time, ``days_ahead`` days before
    until_min: int = 60  # no online booking later than this many minutes before the time
    reserve: int = 0  # places of every slot kept for walk-ins and the kiosk: never booked online
    per_day: int = 1  # bookings per citizen, service and day, counted by the phone or e-mail given (0: no limit)

    @property
    def identifies(self) -> str | None:
        """The contact a citizen is recognised by for ``per_day`` (None: nothing asked identifies anyone)."""
        return next((c for c in ("phone", "email") if c in self.asks), None)


@dataclass(frozen=True)
class ServiceBooking:
    service: str
    slot_min: int = 15
    max_slots: int = 1  # 2: a double slot may be booked
    early_min: int = 15
    late_min: int = 10
    days_ahead: int = 14
    self_booking: bool = False
    here_and_now: bool = False
    capacity: tuple[CapacitySpan, ...] = ()
    online: OnlineBooking | None = None  # None: citizens cannot book this service on the public page

    @property
    def slot(self) -> timedelta:
        return timedelta(minutes=self.slot_min)

    def staff_for(self, local_start: datetime, local_end: datetime) -> int:
        """How many places a grid slot has: the staff of every span covering it completely."""
        day = local_start.weekday()
        s, e = local_start.time(), local_end.time() if local_end.date() == local_start.date() else time.max
        return sum(c.staff for c in self.capacity if day in c.days and c.start <= s and e <= c.end)


@dataclass(frozen=True)
class BookingSettings:
    retention_days: int
    services: dict[str, ServiceBooking]
    # Online bookings a client address may make: ``online_burst`` at once, then ``online_per_hour`` (a library's
    # public PCs, or a family at home, share one address; a script filling the calendar is slowed at once).
    online_burst: int = 20
    online_per_hour: int = 60
    # The municipality's calendar is kept by the centre (docs/bookings.md "One calendar"): this branch sells only
    # its walk-in reserve on days the centre has not handed over, and takes its whole day at opening.
    centre_calendar: bool = False
    # How often such a branch asks the centre (handover, the centre's bookings ahead): the centre's new bookings
    # and cancellations reach the branch's desks within this. Each poll is two small requests.
    calendar_poll_s: int = 5

    def rules(self, service: str) -> ServiceBooking:
        return self.services.get(service) or ServiceBooking(service)


def _span(value: Any, path: str, problems: list[str]) -> tuple[time, time] | None:
    if not isinstance(value, str) or value.count("-") != 1:
        problems.append(f'{path}: expected a time span like "10:00-18:00", got {value!r}')
        return None
    a, b = value.split("-")
    try:
        start = time.fromisoformat(a.strip())
        end = time.max if b.strip() == "24:00" else time.fromisoformat(b.strip())
    except ValueError:
        problems.append(f'{path}: expected a time span like "10:00-18:00", got {value!r}')
        return None
    if end <= start:
        problems.append(f"{path}: expected an end after the start, got {value!r}")
        return None
    return start, end


def _int(table: dict[str, Any], key: str, path: str, default: int, low: int, high: int,
         problems: list[str]) -> int:
    return int(check_number(table, key, path, default, low, high, problems, whole=True))


def _bool(table: dict[str, Any], key: str, path: str, default: bool, problems: list[str]) -> bool:
    value = table.get(key, default)
    if not isinstance(value, bool):
        problems.append(f"{path}.{key}: expected true or false, got {value!r}")
        return default
    return value


def _online(value: Any, path: str, problems: list[str]) -> OnlineBooking | None:
    if value is None or value is False:
        return None
    if value is True:
        return OnlineBooking()
    if not isinstance(value, dict):
        problems.append(f"{path}: expected true, false or a table, got {value!r}")
        return None
    check_unknown_keys(value, {"asks", "opens_at", "until_min", "reserve", "per_day"}, path, problems)
    asks = value.get("asks", [])
    if not isinstance(asks, list) or any(a not in CONTACTS for a in asks) or len(set(asks)) != len(asks):
        problems.append(f"{path}.asks: expected a list of {', '.join(CONTACTS)} (each at most once; [] asks for "
                        f"nothing), got {asks!r}")
        asks = []
    opens = value.get("opens_at", "00:00")
    try:
        opens_at = time.fromisoformat(opens) if isinstance(opens, str) and len(opens) == 5 else None
    except ValueError:
        opens_at = None
    if opens_at is None:
        problems.append(f'{path}.opens_at: expected a time like "08:00", got {opens!r}')
        opens_at = time(0, 0)
    return OnlineBooking(asks=tuple(asks), opens_at=opens_at,
                         until_min=_int(value, "until_min", path, 60, 0, 7 * 1440, problems),
                         reserve=_int(value, "reserve", path, 0, 0, 100, problems),
                         per_day=_int(value, "per_day", path, 1, 0, 100, problems))


def parse_settings(config: SiteConfig) -> BookingSettings:
    """``[bookings]`` and each ``[services.<id>.booking]``; every problem with its key path."""
    raw = config.raw
    problems: list[str] = []
    top = raw.get("bookings", {})
    if not isinstance(top, dict):
        problems.append(f"bookings: expected a table, got {top!r}")
        top = {}
    check_unknown_keys(top, {"retention_days", "online_burst", "online_per_hour", "centre_calendar",
                             "calendar_poll_s"}, "bookings", problems)
    centre_calendar = _bool(top, "centre_calendar", "bookings", False, problems)
    calendar_poll_s = _int(top, "calendar_poll_s", "bookings", 5, 1, 300, problems)
    if centre_calendar and config.central is None:
        problems.append("bookings.centre_calendar: expected a [central] section: the calendar is kept by the centre")
    retention = _int(top, "retention_days", "bookings", DEFAULT_RETENTION_DAYS, 1, 3650, problems)
    burst = _int(top, "online_burst", "bookings", 20, 1, 1_000_000, problems)
    per_hour = _int(top, "online_per_hour", "bookings", 60, 1, 1_000_000, problems)
    services: dict[str, ServiceBooking] = {}
    for sid, table in (raw.get("services") or {}).items():
        if not isinstance(table, dict) or "booking" not in table:
            continue
        path = f"services.{sid}.booking"
        item = table["booking"]
        if not isinstance(item, dict):
            problems.append(f"{path}: expected a table, got {item!r}")
            continue
        check_unknown_keys(item, {"slot_min", "max_slots", "early_min", "late_min", "days_ahead", "self_booking",
                        "here_and_now", "capacity", "online"}, path, problems)
        slot_min = _int(item, "slot_min", path, 15, 5, 240, problems)
        if 1440 % slot_min:
            problems.append(f"{path}.slot_min: expected a length that divides a day (5, 10, 15, 20, 30, 60 …), "
                            f"got {slot_min!r}")
        spans: list[CapacitySpan] = []
        for cpath, entry in check_tables(item.get("capacity", []), f"{path}.capacity", {"days", "hours", "staff"},
                                         problems, listed="{days, hours, staff} tables", one="{days, hours, staff}"):
            days = entry.get("days")
            if not isinstance(days, list) or not days or any(d not in WEEKDAYS for d in days):
                problems.append(f"{cpath}.days: expected a list of {', '.join(WEEKDAYS)}, got {days!r}")
                continue
            hours = _span(entry.get("hours"), f"{cpath}.hours", problems)
            staff = _int(entry, "staff", cpath, 1, 1, 100, problems)
            if hours is None:
                continue
            for edge in hours:
                if edge != time.max and (edge.hour * 60 + edge.minute) % slot_min:
                    problems.append(f"{cpath}.hours: expected times on the {slot_min}-minute slot grid, "
                                    f"got {entry.get('hours')!r}")
                    break
            spans.append(CapacitySpan(frozenset(WEEKDAYS.index(d) for d in days), hours[0], hours[1], staff))
        services[sid] = ServiceBooking(
            service=sid,
            slot_min=slot_min,
            max_slots=_int(item, "max_slots", path, 1, 1, 8, problems),
            early_min=_int(item, "early_min", path, 15, 0, 240, problems),
            late_min=_int(item, "late_min", path, 10, 0, 240, problems),
            days_ahead=_int(item, "days_ahead", path, 14, 1, 365, problems),
            self_booking=_bool(item, "self_booking", path, False, problems),
            here_and_now=_bool(item, "here_and_now", path, False, problems),
            capacity=tuple(spans),
            online=_online(item.get("online"), f"{path}.online", problems),
        )
    if problems:
        raise ConfigError(problems, str(config.path))
    return BookingSettings(retention, services, burst, per_hour, centre_calendar, calendar_poll_s)
