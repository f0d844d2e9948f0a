"""Bookings from another system: a CSV export or an iCalendar feed, read into rows to import.

Parsing only: every bad row is reported with its number and field, and the good ones are
returned; ``BookingBook.import_rows`` decides what each row does to the book.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from server import codes
from server.config import SiteConfig

MAX_BOOKING = timedelta(hours=8)


@dataclass
class ImportRow:
    row: int
    external_id: str
    service: str
    start: datetime
    end: datetime | None = None
    name: str | None = None
    phone: str | None = None
    note: str | None = None
    site: str | None = None
    code: str | None = None
    cancelled: bool = False


_HEADER_ALIASES = {
    "external_id": ("external_id", "id", "booking_id", "uid", "reference"),
    "service": ("service", "service_id", "ydelse", "tjänst", "palvelu", "dienst"),
    "start": ("start", "start_time", "starttid", "begin", "time"),
    "end": ("end", "end_time", "sluttid", "einde"),
    "minutes": ("minutes", "duration", "varighed", "duration_min"),
    "name": ("name", "navn", "namn", "nimi", "naam"),
    "phone": ("phone", "telefon", "tel", "puhelin", "telefoon"),
    "note": ("note", "notes", "bemærkning", "comment"),
    "site": ("site", "branch", "location", "filial"),
    "code": ("code", "booking_code"),
    "status": ("status", "state"),
}


def _local_time(text: str, tz: ZoneInfo) -> datetime:
    value = datetime.fromisoformat(text.strip().replace(" ", "T", 1) if "T" not in text else text.strip())
    return value.replace(tzinfo=tz) if value.tzinfo is None else value


def _match_service(value: str, config: SiteConfig) -> str | None:
    wanted = value.strip().casefold()
    for sid, service in config.services.items():
        if wanted == sid.casefold() or wanted in (n.casefold() for n in service.names.values()):
            return sid
    return None


def parse_csv(text: str, config: SiteConfig) -> tuple[list[ImportRow], list[dict[str, Any]]]:
    """Rows of a booking system's CSV export (comma or semicolon), with an error per bad row.

    Row numbers count lines as a spreadsheet shows them: the header is row 1.
    """
    text = text.lstrip("\ufeff").replace("\x00", "")
    errors: list[dict[str, Any]] = []
    try:
        dialect = csv.Sniffer().sniff(text.split("\n", 1)[0], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel  # type: ignore[assignment]
    reader = csv.reader(io.StringIO(text), dialect)
    try:
        header = [h.strip().casefold() for h in next(reader)]
    except StopIteration:
        return [], [{"row": 1, "field": None, "message": "The file is empty."}]
    columns: dict[str, int] = {}
    for key, names in _HEADER_ALIASES.items():
        for i, h in enumerate(header):
            if h in names:
                columns[key] = i
                break
    missing = [k for k in ("external_id", "service", "start") if k not in columns]
    if missing:
        return [], [{"row": 1, "field": ",".join(missing),
                     "message": f"The header needs the column(s) {', '.join(missing)}; it has {', '.join(header)}."}]
    rows: list[ImportRow] = []
    tz = config.timezone
    for number, values in enumerate(reader, start=2):
        if not any(v.strip() for v in values):
            continue

        def get(key: str, values: list[str] = values) -> str:
            i = columns.get(key)
            return values[i].strip() if i is not None and i < len(values) else ""

        def bad(fieldname: str, message: str, number: int = number) -> None:
            errors.append({"row": number, "field": fieldname, "message": message})

        external_id = get("external_id")
        if not external_id:
            bad("external_id", "The booking's id in the other system is missing.")
            continue
        service = _match_service(get("service"), config)
        if service is None:
            bad("service", f"There is no service {get('service')!r} (known: {', '.join(config.services)}).")
            continue
        try:
            start = _local_time(get("start"), tz)
            if not 2000 <= start.year <= 2100:
                raise ValueError
        except ValueError:
            bad("start", f"Expected a time like 2026-11-23 10:15, got {get('start')!r}.")
            continue
        end: datetime | None = None
        if get("end"):
            try:
                end = _local_time(get("end"), tz)
                if len(get("end")) <= 5:  # just "10:30"
                    raise ValueError
            except ValueError:
                try:
                    end = datetime.combine(start.date(), time.fromisoformat(get("end")), start.tzinfo)
                except ValueError:
                    bad("end", f"Expected a time like 2026-11-23 10:30 or 10:30, got {get('end')!r}.")
                    continue
        elif get("minutes"):
            if not get("minutes").isdigit() or not 1 <= int(get("minutes")) <= 480:
                bad("minutes", f"Expected minutes from 1 to 480, got {get('minutes')!r}.")
                continue
            end = start + timedelta(minutes=int(get("minutes")))
        if end is not None and not timedelta(0) < end - start <= MAX_BOOKING:
            bad("end", "The end must be after the start, and a booking at most 8 hours long.")
            continue
        code = codes.normalise(get("code")) if get("code") else None
        if code and codes.problem(code):
            bad("code", f"{get('code')!r} is not a booking code: {codes.problem(code)}")
            continue
        status = get("status").casefold()
        rows.append(ImportRow(number, external_id, service, start, end, get("name") or None, get("phone") or None,
                              get("note") or None, get("site") or None, code,
                              status in ("cancelled", "canceled", "aflyst", "annulleret", "avbokad", "peruttu")))
    return rows, errors


def parse_ics_bookings(text: str, config: SiteConfig,
                       default_service: str | None) -> tuple[list[ImportRow], list[dict[str, Any]]]:
    """VEVENTs of a booking system's calendar export: UID is the external id.

    The service is ``X-VUORO-SERVICE``, else a CATEGORIES value naming a service, else ``default_service``.
    The visitor's name is the ATTENDEE's CN; ``X-VUORO-PHONE`` a phone. STATUS:CANCELLED cancels.
    Rows are numbered by VEVENT, 1 for the first.
    """
    from icalendar import Calendar

    try:
        calendar = Calendar.from_ical(text)
    except Exception as exc:  # icalendar raises several kinds on broken input
        return [], [{"row": 0, "field": None, "message": f"This is not an iCalendar file: {exc}"}]
    rows: list[ImportRow] = []
    errors: list[dict[str, Any]] = []
    tz = config.timezone
    for number, event in enumerate(calendar.walk("VEVENT"), start=1):
        uid = str(event.get("UID", "")).strip()
        if not uid:
            errors.append({"row": number, "field": "UID", "message": "The event has no UID."})
            continue
        service = None
        if event.get("X-VUORO-SERVICE"):
            service = _match_service(str(event.get("X-VUORO-SERVICE")), config)
        if service is None:
            cats = event.get("CATEGORIES")
            for cat in cats if isinstance(cats, list) else [cats] if cats else []:
                for value in getattr(cat, "cats", [cat]):
                    service = service or _match_service(str(value), config)
        service = service or default_service
        if service is None or service not in config.services:
            errors.append({"row": number, "field": "X-VUORO-SERVICE",
                           "message": f"Event {uid}: no known service (X-VUORO-SERVICE, CATEGORIES or ?service=)."})
            continue
        start_prop = event.get("DTSTART")
        value = getattr(start_prop, "dt", None)
        if not isinstance(value, datetime):
            errors.append({"row": number, "field": "DTSTART", "message": f"Event {uid}: a booking needs a start time."})
            continue
        start = value.replace(tzinfo=tz) if value.tzinfo is None else value
        if not 2000 <= start.year <= 2100:
            errors.append({"row": number, "field": "DTSTART", "message": f"Event {uid}: the start is out of range."})
            continue
        end_value = getattr(event.get("DTEND"), "dt", None)
        end = None
        if isinstance(end_value, datetime):
            end = end_value.replace(tzinfo=tz) if end_value.tzinfo is None else end_value
        elif event.get("DURATION") is not None:
            end = start + event.get("DURATION").dt
        if end is not None and not timedelta(0) < end - start <= MAX_BOOKING:
            errors.append({"row": number, "field": "DTEND",
                           "message": f"Event {uid}: the end must be after the start, at most 8 hours later."})
            continue
        name = None
        attendee = event.get("ATTENDEE")
        if attendee is not None:
            first = attendee[0] if isinstance(attendee, list) else attendee
            name = first.params.get("CN") or None
        phone = str(event.get("X-VUORO-PHONE")) if event.get("X-VUORO-PHONE") else None
        site = str(event.get("X-VUORO-SITE")) if event.get("X-VUORO-SITE") else None
        status = str(event.get("STATUS", "")).upper()
        rows.append(ImportRow(number, uid, service, start, end, name, phone, None, site, None, status == "CANCELLED"))
    return rows, errors
