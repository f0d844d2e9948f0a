"""The figures a site shares with its municipality, computed from stored rows, and their CSV.

Pure computation: no SQL (``reading.py`` reads the rows), no web, no hub. ``docs/statistics.md``
defines every figure; the short version:

- a ticket belongs to the local day and hour (site time zone) it was *issued*;
- wait = first call − place in line (``queued_at``; for a booking, its due time
  if that is later), for every ticket that was called (served, no-show, or
  being served); service time = finish − last call, for served tickets;
- percentiles are **nearest-rank**: the p-th percentile of n sorted values is
  the value at rank ⌈p·n/100⌉ (1-based), so it is always a real, observed wait;
  the median is the 50th percentile (for even n the lower middle value);
- service level = tickets called within the service's target wait, divided
  by tickets called plus tickets that expired uncalled.

Local time is worked out per timestamp with ``zoneinfo``, so a day is 23,
24 or 25 hours long as the calendar says; wall-clock hour 02 on the last
Sunday of October holds two real hours, and on the last Sunday of March
it does not exist.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from operator import itemgetter
from typing import Any
from zoneinfo import ZoneInfo

DIMENSIONS = ("day", "hour", "weekday", "month", "service", "counter", "origin")
# Dimensions a feedback rating can be grouped by (it has no counter or origin).
FEEDBACK_DIMENSIONS = frozenset({"day", "hour", "weekday", "month", "service"})
PRINTER_DOWN = frozenset({"paper_out", "cover_open", "offline", "error"})
DEFAULT_TARGET_MIN = 15.0

# The ticket columns read for statistics, in this order.
TICKET_FIELDS = ("id", "label", "service", "day", "status", "origin", "language", "queued_at", "issued_at",
                 "due_at", "counter", "called_at", "finished_at", "recalls", "transfers", "channel")
(_ID, _LABEL, _SERVICE, _DAY, _STATUS, _ORIGIN, _LANGUAGE, _QUEUED, _ISSUED, _DUE, _COUNTER, _CALLED, _FINISHED,
 _RECALLS, _TRANSFERS, _CHANNEL) = range(len(TICKET_FIELDS))
# How a ticket was taken (tickets.channel); rows from before it was kept (NULL) were a kiosk's or a check-in's.
CHANNELS = ("kiosk", "phone", "staff", "booking")


def channel_of(row: Sequence[Any]) -> str:
    # A row without the field (a reader or a test written before it) counts as a NULL one.
    channel = row[_CHANNEL] if len(row) > _CHANNEL else None
    return channel or ("booking" if row[_ORIGIN] == "booking" else "kiosk")


# -- percentiles --------------------------------------------------------------------------


def nearest_rank(sorted_values: Sequence[float], p: int) -> float | None:
    """The p-th percentile (0 < p ≤ 100) by the nearest-rank method: value at rank ⌈p·n/100⌉."""
    n = len(sorted_values)
    if n == 0:
        return None
    if not 0 < p <= 100:
        raise ValueError("p must be in (0, 100]")
    rank = -(-p * n // 100)  # integer ceiling, no float rounding
    return sorted_values[rank - 1]


# -- local time ------------------------------------------------------------------------------


class LocalTime:
    """UTC ISO timestamps → the site's local (day, hour), with a cache per UTC hour.

    The store writes UTC as ``YYYY-MM-DDTHH:MM:SS[.ffffff]+00:00``. A UTC hour's local bucket is cached
    only when the zone's offset is the same at its start and end and is a whole number of hours (true
    for the Nordic and Dutch zones except across a change, which happens on the hour); otherwise each
    timestamp is converted on its own. Anything not in the store's form is parsed in full.
    """

    def __init__(self, tz: ZoneInfo):
        self.tz = tz
        self._cache: dict[str, tuple[str, int, int] | None] = {}

    def _hour(self, key: str) -> tuple[str, int, int] | None:
        start = datetime.fromisoformat(key + ":00:00+00:00")
        a, b = start.astimezone(self.tz), (start + timedelta(seconds=3599)).astimezone(self.tz)
        offset = a.utcoffset()
        whole = offset is not None and offset == b.utcoffset() and offset.total_seconds() % 3600 == 0
        hit = self._cache[key] = (a.date().isoformat(), a.hour, a.isoweekday()) if whole else None
        return hit

    def bucket(self, stamp: str) -> tuple[str, int, int]:
        """(local date 'YYYY-MM-DD', local hour 0–23, ISO weekday 1–7) of an ISO 8601 timestamp."""
        if stamp.endswith("+00:00") and len(stamp) >= 25:
            key = stamp[:13]
            local = self._cache[key] if key in self._cache else self._hour(key)
            if local is not None:
                return local
        moment = datetime.fromisoformat(stamp).astimezone(self.tz)
        return moment.date().isoformat(), moment.hour, moment.isoweekday()

    def local_iso(self, stamp: str | None) -> str:
        if not stamp:
            return ""
        return datetime.fromisoformat(stamp).astimezone(self.tz).isoformat(timespec="seconds")


def period_utc(start: date, end: date, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """The UTC instants of local midnight at the start of ``start`` and after ``end`` (inclusive days)."""
    lo = datetime.combine(start, datetime.min.time(), tz).astimezone(UTC)
    hi = datetime.combine(end + timedelta(days=1), datetime.min.time(), tz).astimezone(UTC)
    return lo, hi


def day_hours(day: date, tz: ZoneInfo) -> float:
    """How many hours the local calendar day has (23, 24 or 25 where DST changes)."""
    lo, hi = period_utc(day, day, tz)
    return (hi - lo).total_seconds() / 3600


# -- the figures -------------------------------------------------------------------------------


def _left_late(row: Sequence[Any], target: float | None) -> bool:
    """A visitor who left the queue (from the phone page) after waiting past the service's target counts as
    missed in the service level, as an expired ticket does; one who left sooner is no wait of ours."""
    if target is None or row[_STATUS] != "left" or not row[_FINISHED]:
        return False
    return (_parse(row[_FINISHED]) - _parse(row[_QUEUED])).total_seconds() > target * 60


class _Group:
    __slots__ = ("issued", "served", "no_show", "expired", "left", "open", "transferred", "transfers",
                 "walk_in", "booking", "booking_kept", "booking_no_show", "waits", "service_times", "within", "sl_base",
                 "ratings", "channels")

    def __init__(self) -> None:
        self.issued = self.served = self.no_show = self.expired = self.left = self.open = 0
        self.transferred = self.transfers = self.walk_in = self.booking = 0
        self.booking_kept = self.booking_no_show = self.within = self.sl_base = 0
        self.waits: list[float] = []
        self.service_times: list[float] = []
        self.ratings = [0, 0, 0, 0, 0]
        self.channels = dict.fromkeys(CHANNELS, 0)

    @classmethod
    def merge(cls, parts: Iterable[_Group]) -> _Group:
        total = cls()
        for part in parts:
            for name in ("issued", "served", "no_show", "expired", "left", "open", "transferred", "transfers",
                         "walk_in", "booking", "booking_kept", "booking_no_show", "within", "sl_base"):
                setattr(total, name, getattr(total, name) + getattr(part, name))
            for channel, n in part.channels.items():
                total.channels[channel] = total.channels.get(channel, 0) + n
            total.waits.extend(part.waits)
            total.service_times.extend(part.service_times)
        return total

    def figures(self) -> dict[str, Any]:
        waits = sorted(self.waits)
        services = sorted(self.service_times)
        rated = sum(self.ratings)
        return {
            "issued": self.issued,
            "served": self.served,
            "no_show": self.no_show,
            "expired": self.expired,
            "left": self.left,
            "open": self.open,
            "transferred": self.transferred,
            "transfers": self.transfers,
            "walk_in": self.walk_in,
            "booking": self.booking,
            "bookings_kept": self.booking_kept,
            "bookings_no_show": self.booking_no_show,
            **{f"from_{channel}": n for channel, n in self.channels.items()},
            "called": len(waits),
            "wait_median_s": _r(nearest_rank(waits, 50)),
            "wait_p90_s": _r(nearest_rank(waits, 90)),
            "wait_max_s": _r(waits[-1] if waits else None),
            "wait_mean_s": _r(sum(waits) / len(waits) if waits else None),
            "service_median_s": _r(nearest_rank(services, 50)),
            "service_p90_s": _r(nearest_rank(services, 90)),
            "within_target": self.within,
            "service_level": round(self.within / self.sl_base, 4) if self.sl_base else None,
            "feedback_count": rated,
            "feedback_mean": round(sum((i + 1) * n for i, n in enumerate(self.ratings)) / rated, 2) if rated else None,
            "feedback_ratings": list(self.ratings),
        }


def _r(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


_parse = datetime.fromisoformat


@dataclass
class TicketFacts:
    """What one ticket contributes: its buckets and its durations (None where not applicable)."""

    day: str
    hour: int
    weekday: int
    wait_s: float | None
    service_s: float | None
    within_target: bool | None


def ticket_facts(row: Sequence[Any], local: LocalTime, targets: dict[str, float], first_calls: dict[str, str],
                 target_override: float | None = None) -> TicketFacts:
    """One ticket's buckets and durations (see the module docstring for the definitions)."""
    day, hour, weekday = local.bucket(row[_ISSUED])
    wait = service = None
    within: bool | None = None
    called = first_calls.get(row[_ID]) if row[_TRANSFERS] else None
    called = called or row[_CALLED]
    if called:
        start = _parse(row[_QUEUED])
        if row[_ORIGIN] == "booking" and row[_DUE]:
            start = max(start, _parse(row[_DUE]))  # an early arrival for a booking is not our wait
        wait = max(0.0, (_parse(called) - start).total_seconds())
    if row[_STATUS] == "done" and row[_CALLED] and row[_FINISHED]:
        service = max(0.0, (_parse(row[_FINISHED]) - _parse(row[_CALLED])).total_seconds())
    target = target_override if target_override is not None else targets.get(row[_SERVICE])
    if target is not None:
        if wait is not None:
            within = wait <= target * 60
        elif row[_STATUS] == "expired" or _left_late(row, target):
            within = False
    return TicketFacts(day, hour, weekday, wait, service, within)


@dataclass
class Feedback:
    at: str  # UTC ISO
    rating: int  # 1..5
    service: str | None = None
    device: str | None = None


@dataclass
class Summary:
    by: tuple[str, ...]
    total: dict[str, Any]
    groups: list[dict[str, Any]] = field(default_factory=list)


def summarize(rows: Iterable[Sequence[Any]], tz: ZoneInfo, by: Sequence[str] = (), *,
              targets: dict[str, float] | None = None, target_override: float | None = None,
              first_calls: dict[str, str] | None = None, feedback: Iterable[Feedback] = (),
              start: date | None = None, end: date | None = None) -> Summary:
    """Group tickets (rows in ``TICKET_FIELDS`` order) by ``by`` and compute every figure per group.

    ``start``/``end`` (local days, inclusive) drop tickets whose local issue day falls outside:
    the caller may read a day more on either side to be safe.
    """
    return summarize_many(rows, tz, [tuple(by)], targets=targets, target_override=target_override,
                          first_calls=first_calls, feedback=feedback, start=start, end=end)[tuple(by)]


_ORDER = ("day", "hour", "weekday", "month", "service", "counter", "origin")


def _key_picker(by: tuple[str, ...]) -> Callable[[tuple[Any, ...]], tuple[Any, ...]]:
    """The key of a row's group, picked (in C) from (day, hour, weekday, month, service, counter, origin)."""
    picks = [_ORDER.index(d) for d in by]
    if len(picks) > 1:
        return itemgetter(*picks)
    if not picks:
        return lambda values: ()
    single = itemgetter(picks[0])
    return lambda values: (single(values),)


def summarize_many(rows: Iterable[Sequence[Any]], tz: ZoneInfo, groupings: Sequence[tuple[str, ...]], *,
                   targets: dict[str, float] | None = None, target_override: float | None = None,
                   first_calls: dict[str, str] | None = None, feedback: Iterable[Feedback] = (),
                   start: date | None = None, end: date | None = None) -> dict[tuple[str, ...], Summary]:
    """Several groupings in one pass over the rows (the page's report needs five)."""
    for by in groupings:
        for dim in by:
            if dim not in DIMENSIONS:
                raise ValueError(f"unknown dimension {dim!r} (one of {', '.join(DIMENSIONS)})")
    local = LocalTime(tz)
    targets = targets or {}
    first_calls = first_calls or {}
    lo, hi = (start.isoformat() if start else None), (end.isoformat() if end else None)
    tables: list[tuple[Callable[[tuple[Any, ...]], tuple[Any, ...]], dict[tuple[Any, ...], _Group]]] = [
        (_key_picker(by), {}) for by in groupings]
    parse, bucket = _parse, local.bucket
    # The hot loop of a year's report (≈ 300,000 rows): plain locals, no per-row objects.
    for row in rows:
        day, hour, weekday = bucket(row[_ISSUED])
        if (lo and day < lo) or (hi and day > hi):
            continue
        status, origin, transfers, called = row[_STATUS], row[_ORIGIN], row[_TRANSFERS], row[_CALLED]
        channel = channel_of(row)
        service_s = wait = None
        if status == "done" and called and row[_FINISHED]:
            service_s = max(0.0, (parse(row[_FINISHED]) - parse(called)).total_seconds())
        if transfers:
            called = first_calls.get(row[_ID]) or called
        target = target_override if target_override is not None else targets.get(row[_SERVICE])
        if called:
            begin = parse(row[_QUEUED])
            if origin == "booking" and row[_DUE]:
                begin = max(begin, parse(row[_DUE]))  # an early arrival for a booking is not our wait
            wait = (parse(called) - begin).total_seconds()
            if wait < 0:
                wait = 0.0
        counts_for_level = target is not None and (wait is not None or status == "expired"
                                                   or (status == "left" and _left_late(row, target)))
        within = counts_for_level and wait is not None and wait <= target * 60  # type: ignore[operator]
        values = (day, hour, weekday, day[:7], row[_SERVICE], row[_COUNTER] or "", origin)
        for getkey, groups in tables:
            key = getkey(values)
            g = groups.get(key)
            if g is None:
                g = groups[key] = _Group()
            g.issued += 1
            g.channels[channel] = g.channels.get(channel, 0) + 1
            if status == "done":
                g.served += 1
                if service_s is not None:
                    g.service_times.append(service_s)
            elif status == "no_show":
                g.no_show += 1
            elif status == "expired":
                g.expired += 1
            elif status == "left":
                g.left += 1
            else:
                g.open += 1
            if transfers:
                g.transferred += 1
                g.transfers += transfers
            if origin == "booking":
                g.booking += 1
                if status == "done":
                    g.booking_kept += 1
                elif status == "no_show":
                    g.booking_no_show += 1
            else:
                g.walk_in += 1
            if wait is not None:
                g.waits.append(wait)
            if counts_for_level:
                g.sl_base += 1
                if within:
                    g.within += 1
    total_ratings = [0, 0, 0, 0, 0]
    rated = []
    for item in feedback:
        if not 1 <= item.rating <= 5:
            continue
        day, hour, weekday = local.bucket(item.at)
        if (lo and day < lo) or (hi and day > hi):
            continue
        total_ratings[item.rating - 1] += 1
        rated.append(((day, hour, weekday, day[:7], item.service, None, None), item.rating))
    result: dict[tuple[str, ...], Summary] = {}
    for by, (getkey, groups) in zip(groupings, tables, strict=True):
        if by and all(d in FEEDBACK_DIMENSIONS for d in by):
            for values, rating in rated:
                if "service" in by and not values[4]:
                    continue  # a rating not tied to a service counts in the total only
                key = getkey(values)
                g = groups.get(key)
                if g is None:
                    g = groups[key] = _Group()
                g.ratings[rating - 1] += 1
        total = _Group.merge(groups.values())
        total.ratings = list(total_ratings)
        summary = result[by] = Summary(by=by, total=total.figures())
        if not by:
            continue
        for key in sorted(groups, key=lambda k: tuple(str(x).zfill(2) if isinstance(x, int) else x for x in k)):
            summary.groups.append({**dict(zip(by, key, strict=True)), **groups[key].figures()})
        if "day" in by:
            hours: dict[str, float] = {}
            for group in summary.groups:
                d = group["day"]
                if d not in hours:
                    hours[d] = day_hours(date.fromisoformat(d), tz)
                group["day_hours"] = hours[d]
    return result


# -- device downtime -------------------------------------------------------------------------


@dataclass(frozen=True)
class DeviceChange:
    device: str
    kind: str
    at: str  # UTC ISO
    online: bool
    printer: str | None


def downtime(changes: Iterable[DeviceChange], lo: datetime, hi: datetime) -> list[dict[str, Any]]:
    """Seconds each device was offline, and its printer unusable while the device was online, within [lo, hi).

    ``changes`` are every recorded status change up to ``hi`` (including the last before ``lo``, which
    gives the state at the start), in time order. A device's state holds until its next change.
    Time before a device's first record is not counted (we do not know it).
    """
    per: dict[str, list[DeviceChange]] = {}
    for change in changes:
        per.setdefault(change.device, []).append(change)
    span = (hi - lo).total_seconds()
    result = []
    for device, items in sorted(per.items()):
        items.sort(key=lambda c: c.at)
        offline = printer_down = known = 0.0
        outages = 0
        for i, change in enumerate(items):
            begin = max(datetime.fromisoformat(change.at), lo)
            finish = datetime.fromisoformat(items[i + 1].at) if i + 1 < len(items) else hi
            finish = min(finish, hi)
            if finish <= begin:
                continue
            seconds = (finish - begin).total_seconds()
            known += seconds
            if not change.online:
                offline += seconds
                if i == 0 or items[i - 1].online or datetime.fromisoformat(change.at) < lo:
                    outages += 1
            elif change.printer in PRINTER_DOWN:
                printer_down += seconds
        result.append({
            "device": device, "kind": items[-1].kind, "offline_s": round(offline, 1),
            "printer_down_s": round(printer_down, 1), "outages": outages, "known_s": round(known, 1),
            "availability": round(1 - (offline + printer_down) / known, 4) if known else None,
            "period_s": span,
        })
    return result


# -- CSV -------------------------------------------------------------------------------------------

# One row per ticket, nothing that could identify a person: no id, no tracking token.
TICKET_CSV_COLUMNS = ("day", "ticket", "service", "origin", "status", "counter", "language", "issued_local",
                      "called_local", "finished_local", "hour", "wait_s", "service_s", "within_target", "recalls",
                      "transfers", "channel")


def ticket_csv_rows(rows: Iterable[Sequence[Any]], tz: ZoneInfo, *, targets: dict[str, float],
                    first_calls: dict[str, str], target_override: float | None = None,
                    start: date | None = None, end: date | None = None) -> Iterator[list[Any]]:
    local = LocalTime(tz)
    lo, hi = (start.isoformat() if start else None), (end.isoformat() if end else None)
    for row in rows:
        facts = ticket_facts(row, local, targets, first_calls, target_override)
        if (lo and facts.day < lo) or (hi and facts.day > hi):
            continue
        yield [facts.day, row[_LABEL], row[_SERVICE], row[_ORIGIN], row[_STATUS], row[_COUNTER] or "",
               row[_LANGUAGE], local.local_iso(row[_ISSUED]), local.local_iso(row[_CALLED]),
               local.local_iso(row[_FINISHED]), facts.hour, _csv_num(facts.wait_s), _csv_num(facts.service_s),
               "" if facts.within_target is None else int(facts.within_target), row[_RECALLS], row[_TRANSFERS],
               channel_of(row)]


SUMMARY_CSV_FIGURES = ("issued", "served", "no_show", "expired", "left", "open", "transferred", "transfers", "walk_in",
                       "booking", "bookings_kept", "bookings_no_show", "from_kiosk", "from_phone", "from_staff",
                       "from_booking", "called", "wait_median_s", "wait_p90_s",
                       "wait_max_s", "wait_mean_s", "service_median_s", "service_p90_s", "within_target",
                       "service_level", "feedback_count", "feedback_mean")


def summary_csv_rows(summary: Summary) -> Iterator[list[Any]]:
    yield [*summary.by, *SUMMARY_CSV_FIGURES]
    for group in summary.groups:
        yield [group[d] for d in summary.by] + [_csv_num(group[f]) for f in SUMMARY_CSV_FIGURES]
    yield ["total"] + [""] * (len(summary.by) - 1) + [_csv_num(summary.total[f]) for f in SUMMARY_CSV_FIGURES] \
        if summary.by else [_csv_num(summary.total[f]) for f in SUMMARY_CSV_FIGURES]


def _csv_num(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def csv_text(rows: Iterable[Sequence[Any]], delimiter: str = ",") -> Iterator[str]:
    """Rows as CSV text, in chunks (for a streamed response)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=delimiter, lineterminator="\r\n")
    for i, row in enumerate(rows, 1):
        writer.writerow(row)
        if i % 2000 == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()
