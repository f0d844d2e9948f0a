"""The words and numbers a screen draws, in its language.

``present(state, ...)`` turns a ``SignageState`` into plain strings: the
Kivy app only copies them into labels, and the tests read them without a
window. Service names come from the hub's payloads (``names[lang]``); every
other word comes from the gettext catalogs in ``display/locale``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import Any

from vuoro.i18n import LANGUAGES, translator
from vuoro.payloads import parse_time

from .state import SignageState

LOCALE_DIR = Path(__file__).parent / "locale"
TICKET_PATTERN = re.compile(r"^([A-Za-z]+)0*(\d+)$")


def _(message: str) -> str:
    """Marks a msgid for extraction; the real lookup happens per screen language."""
    return message


# Every msgid the screens use (the web page too), so tests can prove each
# language has them all.
MSGIDS = [
    _("Now serving"),
    _("Recent calls"),
    _("Queues"),
    _("{n} waiting"),
    _("about {n} min"),
    _("No wait"),
    _("Closed"),
    _("Opens {time}"),
    _("Booking only"),
    _("What's on"),
    _("Sold out"),
    _("Cancelled"),
    _("{n} seats left"),
    _("Nothing more today"),
    _("Staff are here now"),
    _("Self-service only"),
    _("Staff back at {time}"),
    _("Staff back tomorrow at {time}"),
    _("Staff back {date} at {time}"),
    _("Building open {hours}"),
    _("Building closed"),
    _("Offline"),
    _("Waiting for the hub…"),
    _("No calls yet"),
    _("No calls yet today"),
    _("To be confirmed"),
    _("{day}/{month}"),
    _("Number {letter} {number}, {counter}"),
    # the "your place" page
    _("Your number"),
    _("{n} before you"),
    _("You are next"),
    _("Estimated wait"),
    _("You are called to {counter}"),
    _("You have been served. Thank you!"),
    _("Your turn has passed. Please ask at the desk."),
    _("Ticket not found"),
    _("Keep this page open — it updates by itself."),
    # the phone ticket page, leaving the queue, the poster (issue 21; docs/phone.md)
    _("Take a queue number"),
    _("Choose what you need help with"),
    _("Scan the code on the screen by the entrance to take a number."),
    _("This code is old: it changes every minute. Scan the code on the screen by the entrance again."),
    _("Taking your number…"),
    _("By appointment only. Book a time at the kiosk, on the web or by phone."),
    _("Closed now. Opens {time}."),
    _("Closed now."),
    _("Many numbers were taken from this connection. Please wait about {n} min, or take a number at the kiosk."),
    _("Something went wrong. Please try again, or take a number at the kiosk."),
    _("You already have a number today: {ticket}"),
    _("Show my number"),
    _("No service takes walk-in visitors right now."),
    _("Language"),
    _("No app, no account: your place in the queue stays on this page."),
    _("I no longer need help"),
    _("Leave the queue? Your place goes to the next person."),
    _("Yes, leave the queue"),
    _("No, keep my place"),
    _("You have left the queue. Thank you for letting us know."),
    _("Your turn is near. Please come to the waiting area."),
    _("Soon"),
    _("Take a queue number on your phone"),
    _("Point your phone's camera at the code on the screen by the entrance."),
    _("Point your phone's camera at this code."),
    _("This code works today only: {date}"),
    _("Scan to take a number"),
    _("Get a message when your turn is near"),
    _("Text message"),
    _("E-mail"),
    _("Your mobile number"),
    _("Your e-mail address"),
    _("Send me a message"),
    _("Used only for this ticket, and deleted when your visit ends."),
    _("We will send a message to {to} when your turn is near and when you are called."),
    _("Stop the messages"),
    _("Please check the number or address."),
]


@dataclass(frozen=True)
class QueueRow:
    service: str
    name: str
    waiting: str  # "4 waiting"
    wait: str  # "about 8 min" / "Closed · Opens 10:00" / "Booking only"
    open: bool
    mode: str = "walk_in"  # walk_in / booking_only (a booking-only row says only that)


@dataclass(frozen=True)
class EventRow:
    time: str  # "16:00–17:30"
    title: str
    room: str
    status: str  # "", "Sold out", "Cancelled", "To be confirmed", "3 seats left"
    kind: str  # scheduled / sold_out / cancelled
    tentative: bool = False


@dataclass(frozen=True)
class ScreenText:
    site_name: str
    clock: str
    offline: bool
    offline_text: str
    heading_call: str
    call_ticket: str  # "K042", "" when no call yet
    call_counter: str  # "Skranke 3"
    highlight: bool
    heading_recent: str
    recent: list[tuple[str, str]] = field(default_factory=list)  # (ticket, counter name)
    heading_queues: str = ""
    queues: list[QueueRow] = field(default_factory=list)
    heading_events: str = ""
    events: list[EventRow] = field(default_factory=list)
    no_events: str = ""
    no_recent: str = ""  # the empty recent-calls box ("" before the hub has spoken)
    fixed_lang: str = ""  # the language of the fixed texts (headings, the empty boxes' words) this time
    staffed: bool = True
    hours: str = ""
    building: str = ""
    message: str = ""
    door_url: str = ""  # a door screen's QR: the phone page with the current code ("" for none)
    door_text: str = ""


def site_zone(state: SignageState) -> tzinfo:
    """The site's zone from its payload; the Pi's own zone if tzdata lacks it."""
    name = (state.site or {}).get("timezone")
    if name:
        try:
            from zoneinfo import ZoneInfo

            return ZoneInfo(name)
        except Exception:  # noqa: BLE001 - no tzdata: the local clock is the next best thing
            pass
    return datetime.now().astimezone().tzinfo or UTC


def service_name(names: dict[str, Any] | None, lang: str, fallback: str) -> str:
    names = names or {}
    for key in (lang, "en"):
        if isinstance(names.get(key), str) and names[key]:
            return names[key]
    return next((v for v in names.values() if isinstance(v, str) and v), fallback)


def spoken_call(call: dict[str, Any], lang: str) -> str:
    """What the announcer says: "Nummer K 42, Skranke 3" (letters apart, no leading zeros)."""
    _t = translator(LOCALE_DIR, lang)
    match = TICKET_PATTERN.match(call["ticket"])
    letter, number = (match.group(1).upper(), match.group(2)) if match else ("", call["ticket"])
    counter = call.get("counter_name") or call["counter"]
    return _t("Number {letter} {number}, {counter}").format(letter=letter, number=number, counter=counter).strip()


def _hhmm(moment: datetime, zone: tzinfo) -> str:
    return moment.astimezone(zone).strftime("%H:%M")


def _when(text: str | None, now: datetime, zone: tzinfo, _t: Callable[[str], str]) -> tuple[str, int]:
    """A time as HH:MM and how many days from today it is (0 today, 1 tomorrow...)."""
    if not text:
        return "", -1
    moment = parse_time(text).astimezone(zone)
    days = (moment.date() - now.astimezone(zone).date()).days
    return moment.strftime("%H:%M"), days


def _date(text: str, zone: tzinfo, _t: Callable[[str], str]) -> str:
    moment = parse_time(text).astimezone(zone)
    return _t("{day}/{month}").format(day=moment.day, month=moment.month)


def fixed_languages(state: SignageState, lang: str) -> list[str]:
    """The languages the fixed texts take turns in: the screen's own, then the site's others in its order."""
    site = (state.site or {}).get("languages") or []
    return [lang] + [code for code in site if code != lang and code in LANGUAGES]


def present(
    state: SignageState,
    lang: str,
    *,
    now: datetime | None = None,
    mono: float | None = None,
    event_limit: int = 5,
    fixed_lang: str | None = None,
) -> ScreenText:
    """Everything a screen shows right now, as text in ``lang``; headings and the words of an empty box in
    ``fixed_lang`` (the language whose turn it is, see ``fixed_languages``)."""
    _t = translator(LOCALE_DIR, lang)
    fixed_lang = fixed_lang or lang
    _f = translator(LOCALE_DIR, fixed_lang)
    zone = site_zone(state)
    now = now or datetime.now(UTC)
    site = state.site or {}

    queues = []
    for service in state.service_order():
        q = state.queues[service]
        name = service_name(q.get("names"), lang, service)
        waiting = _t("{n} waiting").format(n=q["waiting"])
        if q.get("mode") == "booking_only":
            wait = _t("Booking only")
        elif not q["open"]:
            wait = _t("Closed")
            if q.get("opens_at"):
                time_text, days = _when(q["opens_at"], now, zone, _t)
                when = time_text if days == 0 else f"{_date(q['opens_at'], zone, _t)} {time_text}"
                wait += " · " + _t("Opens {time}").format(time=when)
        elif q["waiting"] == 0:
            wait = _t("No wait")
        else:
            wait = _t("about {n} min").format(n=int(q.get("estimated_wait_min") or 0))
        queues.append(QueueRow(service, name, waiting, wait, bool(q["open"]), str(q.get("mode") or "walk_in")))

    events = []
    for event in state.upcoming_events(now, limit=event_limit):
        start = _hhmm(parse_time(event["start"]), zone)
        span = f"{start}–{_hhmm(parse_time(event['end']), zone)}" if event.get("end") else start
        kind = event.get("state", "scheduled")
        status = {"sold_out": _t("Sold out"), "cancelled": _t("Cancelled")}.get(kind, "")
        if not status and event.get("tentative"):
            status = _t("To be confirmed")
        seats = event.get("seats_left")
        if not status and isinstance(seats, int) and not isinstance(seats, bool) and 0 < seats <= 10:
            status = _t("{n} seats left").format(n=seats)
        events.append(EventRow(span, event["title"], event.get("room") or "", status, kind,
                               bool(event.get("tentative"))))

    hours = site.get("hours") or {}
    staffed = bool(hours.get("staffed_now", True))
    if not hours:
        hours_text = ""
    elif staffed:
        hours_text = _t("Staff are here now")
    else:
        hours_text = _t("Self-service only")
        time_text, days = _when(hours.get("next_staffed_at"), now, zone, _t)
        if days == 0:
            hours_text += " · " + _t("Staff back at {time}").format(time=time_text)
        elif days == 1:
            hours_text += " · " + _t("Staff back tomorrow at {time}").format(time=time_text)
        elif days > 1:
            date = _date(hours["next_staffed_at"], zone, _t)
            hours_text += " · " + _t("Staff back {date} at {time}").format(date=date, time=time_text)
    building_hours = (hours.get("today") or {}).get("building")
    if not hours:
        building = ""
    elif hours.get("building_open") is False and not building_hours:
        building = _t("Building closed")
    else:
        building = _t("Building open {hours}").format(hours=", ".join(building_hours or [])).strip()

    current = state.current_call
    return ScreenText(
        site_name=site.get("name", ""),
        clock=now.astimezone(zone).strftime("%H:%M"),
        offline=state.offline,
        offline_text=_t("Offline"),
        heading_call=_f("Now serving"),
        call_ticket=current["ticket"] if current else "",
        call_counter=(current.get("counter_name") or current["counter"]) if current else (
            _f("No calls yet") if state.site else _t("Waiting for the hub…")
        ),
        highlight=state.highlighted(mono),
        heading_recent=_f("Recent calls"),
        recent=[(c["ticket"], c.get("counter_name") or c["counter"]) for c in state.recent[1:]],
        heading_queues=_f("Queues"),
        queues=queues,
        heading_events=_f("What's on"),
        events=events,
        no_events=_f("Nothing more today"),
        no_recent=_f("No calls yet today") if state.site else "",
        fixed_lang=fixed_lang,
        staffed=staffed,
        hours=hours_text,
        building=building,
        message=state.message,
        # A door screen's QR: only with the whole address (the site's public_url); a Kivy screen knows the
        # broker, not the address phones reach the hub by.
        door_url=(state.phone_door or {}).get("url") or "" if state.door and state.phone_door else "",
        door_text=_f("Scan to take a number"),
    )
