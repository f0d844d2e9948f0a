"""What the kiosk says, in pure functions: hub JSON in, translated words out.

No Kivy here, so every sentence a visitor can read is tested without a
window. ``_`` is a translator from ``vuoro.i18n.translator``; every msgid is
written literally as ``_("...")`` so the i18n test can find it by scanning.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from server import codes  # standard library only: the one rule for codes, the hub's and the kiosk's
from vuoro import refusals

Translate = Callable[[str], str]


def weekday_name(_: Translate, index: int) -> str:
    names = (_("Monday"), _("Tuesday"), _("Wednesday"), _("Thursday"), _("Friday"), _("Saturday"), _("Sunday"))
    return names[index]


def parse_time(text: Any) -> datetime | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


def when(_: Translate, moment: datetime, today: datetime | None) -> str:
    """"10:00" today, "Tuesday 10:00" later this week, "24/12 10:00" beyond."""
    clock = moment.strftime("%H:%M")
    if today is None or moment.date() == today.date():
        return clock
    days = (moment.date() - today.date()).days
    if 0 < days < 7:
        return f"{weekday_name(_, moment.weekday())} {clock}"
    return f"{moment.day}/{moment.month} {clock}"


def said_when(_: Translate, moment: Any, now: datetime | None, known: str, unknown: str) -> str:
    """``known`` with its ``{when}`` filled in from a hub time (ISO text), or ``unknown`` without one."""
    at = parse_time(moment)
    return known.format(when=when(_, at, now or at)) if at is not None else unknown


def wait_text(_: Translate, minutes: Any, waiting: Any = None) -> str:
    if not isinstance(minutes, int | float) or minutes <= 0 or waiting == 0:
        return _("No wait")
    return _("About {minutes} min").format(minutes=int(round(minutes)))


@dataclass(frozen=True)
class Tile:
    """One service button on the home screen."""

    service: str
    title: str
    line: str  # the wait, or why there is no queue ticket
    kind: str  # "walk_in", "booking_only" or "closed": picks the tile's colours
    waiting: int = 0


def service_name(names: Any, language: str, fallback: str) -> str:
    if isinstance(names, dict):
        return str(names.get(language) or names.get("en") or next(iter(names.values()), fallback))
    return fallback


def tiles(_: Translate, site: dict[str, Any], queues: dict[str, dict[str, Any]], language: str,
          now: datetime | None = None) -> list[Tile]:
    """The home screen's services, in the site's order, with their live state."""
    out = []
    for service in site.get("services") or []:
        if not isinstance(service, dict) or not service.get("id"):
            continue
        sid = str(service["id"])
        queue = queues.get(sid, {})
        title = service_name(queue.get("names") or service.get("names"), language, sid)
        mode = queue.get("mode") or service.get("mode") or "walk_in"
        is_open = queue.get("open", True)
        if mode == "booking_only":
            kind, line = "booking_only", _("Booking only – book a time")
        elif not is_open:
            kind = "closed"
            opens = parse_time(queue.get("opens_at"))
            if opens is None:
                line = _("Closed today")
            else:
                line = _("Closed – opens {when}").format(when=when(_, opens, now or opens))
        else:
            kind = "walk_in"
            line = wait_text(_, queue.get("estimated_wait_min"), queue.get("waiting"))
        waiting = queue.get("waiting") if isinstance(queue.get("waiting"), int) else 0
        out.append(Tile(sid, title, line, kind, waiting))
    return out


def position_text(_: Translate, position: Any) -> str:
    if not isinstance(position, int) or position <= 0:
        return _("You are next")
    if position == 1:
        return _("1 person before you")
    return _("{n} people before you").format(n=position)


@dataclass(frozen=True)
class Notice:
    """A refusal or problem, said plainly, with what the visitor can do next."""

    title: str
    body: str
    actions: tuple[str, ...] = ()  # "checkin", "walk_in", "events", "book"
    service: str | None = None  # for "walk_in": the service to take a ticket for


def hub_down(_: Translate) -> Notice:
    return Notice(_("Sorry"), _("The queue system is not reachable right now. Please ask at the desk."))


def ticket_refusal(_: Translate, code: str, answer_detail: Callable[[str], Any], service_title: str,
                   now: datetime | None = None) -> Notice:
    """Why the hub would not give a walk-in ticket, and what to do instead."""
    if code == refusals.BOOKING_ONLY:
        return Notice(service_title,
                      _("This service is by appointment only. If you have a booking, check in here. "
                        "You can book a time at the desk, on the web or by phone."), ("checkin",))
    if code == refusals.CLOSED:
        return Notice(service_title, said_when(_, answer_detail("opens_at"), now,
                                               _("This service is closed now. It opens {when}."),
                                               _("This service is closed now. Please ask at the desk.")))
    if code == refusals.UNREACHABLE or code.startswith(refusals.HTTP_PREFIX + "5") \
            or code == refusals.STORE_UNAVAILABLE:
        return hub_down(_)
    return Notice(_("Sorry"), _("We could not make a ticket just now. Please ask at the desk."))


def checkin_refusal(_: Translate, code: str, answer_detail: Callable[[str], Any], typed: str,
                    now: datetime | None = None) -> Notice:
    """Each check-in answer in plain words (the bookings API of issue 7)."""
    event = answer_detail("event")
    if isinstance(event, dict):  # a sign-up's code: the event's own words
        return event_checkin_refusal(_, code, event, answer_detail("signup"), now)
    if code == refusals.NOT_FOUND:
        return Notice(_("Code not found"),
                      _("We could not find a booking or sign-up with the code {code}. Check the code and try again, "
                        "or ask at the desk.").format(code=codes.pretty(typed)), ("checkin",))
    if code == refusals.SLOW_DOWN:  # too many wrong codes here: the hub asks for a pause (docs/bookings.md)
        wait = answer_detail("retry_after")
        minutes = max(1, -(-int(wait) // 60)) if isinstance(wait, int | float) and wait > 0 else 5
        return Notice(_("Please wait a little"),
                      _("Too many wrong codes have been typed here. Please try again in {minutes} min, "
                        "or ask at the desk.").format(minutes=minutes))
    if code == refusals.HTTP_NOT_FOUND:  # the hub does not have /checkins yet
        return Notice(_("Check-in"), _("Check-in is not available here yet. Please ask at the desk."))
    if code == refusals.TOO_EARLY:
        return Notice(_("You are early"), said_when(
            _, answer_detail("come_back_at"), now, _("You are early. Please come back at {when} and check in again."),
            _("You are early. Please come back a little before your time and check in again.")))
    if code == refusals.TOO_LATE:
        service = answer_detail("service")
        return Notice(_("Your time has passed"),
                      _("Your booking time has passed. You can take a ticket and wait in the queue instead."),
                      ("walk_in",), service if isinstance(service, str) else None)
    if code == refusals.OTHER_DAY:
        return Notice(_("Not today"), _("Your booking is for another day. Please check the date of your booking."))
    if code == refusals.OTHER_SITE:
        return Notice(_("Wrong place"),
                      _("Your booking is at another library or service centre. Please check the address."))
    if code == refusals.ALREADY_CHECKED_IN:
        return Notice(_("Already checked in"),
                      _("You have already checked in. Please watch the screen for your number."))
    if code == refusals.UNREACHABLE or code.startswith(refusals.HTTP_PREFIX + "5") \
            or code == refusals.STORE_UNAVAILABLE:
        return hub_down(_)
    return Notice(_("Sorry"), _("We could not check you in just now. Please ask at the desk."))


def _seat_or_place(_: Translate, signup: Any) -> str:
    """A sign-up's place as it is now: "Your seat: 3", or "Waiting list: place 2"."""
    if not isinstance(signup, dict):
        return ""
    if signup.get("seat") is not None:
        return _("Your seat: {seat}").format(seat=signup["seat"])
    if signup.get("waiting_place") is not None:
        return _("Waiting list: place {place}").format(place=signup["waiting_place"])
    return ""


def attendance(_: Translate, body: dict[str, Any]) -> Notice:
    """Checked in for an event with a sign-up code: "You are checked in for Sprogcafé at 17:00." and the seat
    (read as it is now: a visitor who moved up from the waiting list sees their seat)."""
    event = body.get("event") if isinstance(body.get("event"), dict) else {}
    start = parse_time(event.get("start"))
    said = (_("You are already checked in for {event} at {time}.") if body.get("already")
            else _("You are checked in for {event} at {time}.")).format(
        event=str(event.get("title") or ""), time=start.strftime("%H:%M") if start else "")
    seat = _seat_or_place(_, body.get("signup"))
    return Notice(_("Welcome"), said + ("\n" + seat if seat else ""), ("events",))


def event_checkin_refusal(_: Translate, code: str, event: dict[str, Any], signup: Any,
                          now: datetime | None = None) -> Notice:
    """Why a sign-up's code does not check the visitor in: another day, cancelled, over, on the waiting list."""
    name = str(event.get("title") or "")
    start = parse_time(event.get("start"))
    if code == refusals.OTHER_DAY and start is not None:
        place = _seat_or_place(_, signup)
        return Notice(_("Not today"), _("Your sign-up is for {event}, {when}. Please check in on that day.").format(
            event=name, when=when(_, start, now or start)) + ("\n" + place if place else ""), ("events",))
    if code == refusals.CANCELLED:
        return Notice(_("Cancelled"), _("Sorry, {event} has been cancelled.").format(event=name), ("events",))
    if code == refusals.TOO_LATE:
        return Notice(_("Sorry"), _("Sorry, {event} is already over.").format(event=name), ("events",))
    if code == refusals.WAITING_LIST:
        place = signup.get("waiting_place") if isinstance(signup, dict) else None
        return Notice(_("You are on the waiting list"), _(
            "You are on the waiting list for {event} at {time}: place {place}. You do not have a seat yet. "
            "Please ask at the desk.").format(event=name, time=start.strftime("%H:%M") if start else "",
                                             place=place if place is not None else "–"), ("events",))
    return Notice(_("Sorry"), _("We could not check you in just now. Please ask at the desk."))


def print_problem(_: Translate, state: str | None) -> str:
    """Why there is no paper ticket, in the visitor's words."""
    reasons = {
        "paper_out": _("The printer is out of paper."),
        "cover_open": _("The printer is open."),
        "offline": _("The printer is not working right now."),
        "error": _("The printer is not working right now."),
    }
    return reasons.get(state or "", _("The ticket could not be printed."))


def after_printing(_: Translate, printed: bool, state: str | None, *, done: str, no_printer: str,
                   keep: str) -> tuple[str, bool]:
    """What a screen says once the printer has answered, and whether that is a problem.

    ``done``: it printed; ``no_printer``: this kiosk has none; otherwise why it did not, then
    ``keep`` (what to keep in mind instead: the number, the code).
    """
    if printed:
        return done, False
    if state is None:
        return no_printer, False
    return print_problem(_, state) + " " + keep, True


EVENT_STATES = ("scheduled", "sold_out", "cancelled")


def event_line(_: Translate, event: dict[str, Any], now: datetime | None = None) -> tuple[str, str, str]:
    """(time, title, room and state) for one event of GET /events."""
    start, end = parse_time(event.get("start")), parse_time(event.get("end"))
    span = when(_, start, now or start) if start else ""
    if start and end:
        span += "–" + end.strftime("%H:%M")
    state = event.get("state")
    parts = [str(event.get("room") or "")]
    seats = event.get("seats_left")
    if state == "cancelled":
        parts.append(_("Cancelled"))
    elif state == "sold_out" or (isinstance(seats, int) and seats <= 0):
        parts.append(_("Fully booked – waiting list open") if signup_kind(event) == "waiting" else _("Fully booked"))
    elif isinstance(seats, int) and event.get("signup"):
        parts.append(_("1 seat left") if seats == 1 else _("{n} seats left").format(n=seats))
    if event.get("tentative") and state != "cancelled":  # TENTATIVE in the library's feed
        parts.append(_("To be confirmed"))
    return span, str(event.get("title") or ""), " · ".join(p for p in parts if p)


def follow_programme(shown: list[dict[str, Any]], live: dict[str, Any], now: datetime) -> list[dict[str, Any]]:
    """The programme on screen brought up to date by the hub's retained ``events/today``.

    That payload holds every event of its day and then the next few, soonest first, so it is the truth for
    every event up to its last one (a new one appears, a cancelled one says so, seats left change, a
    deleted one goes); what the list holds beyond it (``GET /events``' week) stays. Events that are over
    are left out, as ``GET /events`` leaves them out.
    """
    items = [e for e in live.get("events") or [] if isinstance(e, dict) and parse_time(e.get("start"))]
    starts = [parse_time(e["start"]) for e in items]
    try:
        day = date.fromisoformat(str(live.get("day")))
        horizon = datetime.combine(day + timedelta(days=1), datetime.min.time(), now.tzinfo)
    except ValueError:
        horizon = now
    horizon = max([horizon, *(s for s in starts if s is not None)])
    later = [e for e in shown if (parse_time(e.get("start")) or horizon) > horizon]
    current = [e for e in items if (parse_time(e.get("end")) or now) >= now]
    return sorted(current + later, key=lambda e: (parse_time(e["start"]), str(e.get("title") or "")))


def signup_kind(event: dict[str, Any]) -> str | None:
    """"seat" or "waiting" when the kiosk can sign a visitor up for the event; None when not."""
    if not event.get("signup") or event.get("state") == "cancelled" or not event.get("id"):
        return None
    seats, waiting = event.get("seats_left"), event.get("waiting_list_left")
    if isinstance(seats, int) and seats > 0 and event.get("state") != "sold_out":
        return "seat"
    if isinstance(waiting, int) and waiting > 0:
        return "waiting"
    return None


@dataclass(frozen=True)
class SignupResult:
    title: str  # "You have a seat" / "You are on the waiting list"
    place: str  # "Seat 12" / "Waiting list: place 2"
    event: str  # "Tuesday 17:00 · Language café · Salen"


def signup_result(_: Translate, body: dict[str, Any], now: datetime | None = None) -> SignupResult:
    event = body.get("event") if isinstance(body.get("event"), dict) else {}
    span, title, _extra = event_line(_, {**event, "state": "scheduled", "seats_left": None}, now)
    about = " · ".join(p for p in (span, title, str(event.get("room") or "")) if p)
    if body.get("seat") is not None:
        return SignupResult(_("You have a seat"), _("Seat {seat}").format(seat=body["seat"]), about)
    place = body.get("waiting_place")
    return SignupResult(_("You are on the waiting list"),
                        _("Waiting list: place {place}").format(place=place if place is not None else "–"), about)


def signup_refusal(_: Translate, code: str) -> Notice:
    if code == refusals.FULL:
        return Notice(_("Fully booked"),
                      _("Sorry, this event is fully booked, and so is its waiting list."), ("events",))
    if code == refusals.CANCELLED:
        return Notice(_("Cancelled"), _("Sorry, this event has been cancelled."), ("events",))
    if code == refusals.STARTED:
        return Notice(_("Sorry"), _("This event has already started. Sign-up is closed."), ("events",))
    if code == refusals.NO_SIGNUP:
        return Notice(_("Sorry"), _("You cannot sign up for this event here. Ask at the desk."), ("events",))
    if code == refusals.UNREACHABLE or code.startswith(refusals.HTTP_PREFIX + "5") \
            or code == refusals.STORE_UNAVAILABLE:
        return hub_down(_)
    return Notice(_("Sorry"), _("We could not sign you up just now. Please ask at the desk."), ("events",))


# -- book a time ------------------------------------------------------------------------------


def weekday_short(_: Translate, index: int) -> str:
    """For narrow places such as the day tabs: "keskiviikkona" does not fit a tab, "ke" does."""
    names = (_("Mon"), _("Tue"), _("Wed"), _("Thu"), _("Fri"), _("Sat"), _("Sun"))
    return names[index]


def day_label(_: Translate, day: date, today: date, *, short: bool = False) -> str:
    """"Today", "Tomorrow", or "Thursday 26/11" ("Thu 26/11" when short)."""
    if day == today:
        return _("Today")
    if day == today + timedelta(days=1):
        return _("Tomorrow")
    name = weekday_short(_, day.weekday()) if short else weekday_name(_, day.weekday())
    return f"{name} {day.day}/{day.month}"


def day_heading(_: Translate, day: date, today: date) -> str:
    """The chosen day above its times, in full: "Today, Monday 30/11", "Thursday 3/12"."""
    dated = f"{weekday_name(_, day.weekday())} {day.day}/{day.month}"
    if day == today:
        return _("Today, {date}").format(date=dated)
    if day == today + timedelta(days=1):
        return _("Tomorrow, {date}").format(date=dated)
    return dated[:1].upper() + dated[1:]


def slot_days(slots: Any, length: int = 1) -> list[tuple[date, list[dict[str, Any]]]]:
    """GET /slots' free slots grouped by their local day, in order.

    ``length`` 2: a double slot (30 minutes of 15-minute slots): only the starts whose next slot is free too
    (the hub's ``double``), each ending where that next slot ends and marked ``"slots": 2``.
    """
    free = [slot for slot in slots or [] if isinstance(slot, dict) and parse_time(slot.get("start")) is not None
            and (slot.get("free") or 0) > 0]
    if length == 2:
        free = [{**slot, "end": after["end"], "slots": 2} for slot, after in zip(free, free[1:], strict=False)
                if slot.get("double") and after.get("start") == slot.get("end") and after.get("end")]
    days: dict[date, list[dict[str, Any]]] = {}
    for slot in free:
        days.setdefault(parse_time(slot["start"]).date(), []).append(slot)  # type: ignore[union-attr]
    return sorted(days.items())


def time_rows(slots: list[dict[str, Any]], slot_min: Any) -> tuple[int, list[dict[str, Any] | None]]:
    """One day's free times as a timetable: (columns, cells left to right, top to bottom; None is a gap).

    A row is an hour where the slots divide it (15-minute slots: :00 :15 :30 :45), so a time taken or past
    leaves its gap and every column keeps its minute; an hour with nothing free is left out. Other slot
    lengths fill rows of four.
    """
    per_hour = 60 // slot_min if isinstance(slot_min, int) and slot_min > 0 and 60 % slot_min == 0 else 0
    if not 3 <= per_hour <= 6:
        return 4, list(slots)
    rows: dict[int, list[dict[str, Any] | None]] = {}
    for slot in slots:
        start = parse_time(slot.get("start"))
        if start is not None:
            rows.setdefault(start.hour, [None] * per_hour)[start.minute // slot_min] = slot
    return per_hour, [cell for hour in sorted(rows) for cell in rows[hour]]


def booking_when(_: Translate, start: datetime, end: datetime | None, today: date) -> str:
    """"Today 14:30–14:45", "Thursday 26/11 10:15–10:30"."""
    span = start.strftime("%H:%M") + ("–" + end.strftime("%H:%M") if end is not None else "")
    return f"{day_label(_, start.date(), today)} {span}"


TAKEN = (refusals.FULL, refusals.NO_SLOT, refusals.NOT_FREE, refusals.NOT_A_SLOT)


def booking_refusal(_: Translate, code: str) -> Notice:
    """Why the hub would not book the time. ``TAKEN`` codes are said on the refreshed list instead."""
    if code in TAKEN:
        return Notice(_("Sorry"), _("Someone else has just booked that time. Please choose another time."))
    if code == refusals.NO_SELF_BOOKING:
        return Notice(_("Book a time"), _("Times for this service are booked at the desk, on the web or by phone."))
    if code == refusals.UNREACHABLE or code.startswith(refusals.HTTP_PREFIX + "5") \
            or code == refusals.STORE_UNAVAILABLE:
        return hub_down(_)
    return Notice(_("Sorry"), _("We could not book the time just now. Please ask at the desk."))


_CODE_RUN = re.compile(r"[A-Z0-9]{" + str(codes.MIN_LENGTH) + ",40}")


def clean_code(raw: str) -> str | None:
    """A booking or sign-up code from what a scanner or the keypad gave, as ``server.codes`` reads it
    (case, dashes and spaces ignored: ``7kq-3mz`` is ``7KQ3MZ``; an address gives its last part).

    Anything else a scanner sends gives its last code-like run.
    """
    code = codes.normalise(raw)
    if not (code.isascii() and code.isalnum()):
        runs = _CODE_RUN.findall(code)
        code = runs[-1] if runs else ""
    return code if codes.MIN_LENGTH <= len(code) <= 40 else None
