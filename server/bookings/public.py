"""The public booking page, ``/book/``: citizens book, see, move and cancel a time themselves, without a login.

Phone first, plain HTML forms and links that work without any script (the page has none), so a keyboard and a
screen reader use the browser's own radio buttons, fieldsets and headings. The rules are the book's
(``BookingBook.online_slots`` / ``book_online`` / ``move_online`` / ``cancel_online``, from the site config's
``[services.<id>.booking.online]``); this module only draws and reads forms.

Addresses (a centre serving many branches adds more ``{site}``s; the manage address needs no branch, as a code
is unique in its code space):

- ``/book/``: the branches' services that can be booked online, and "find my booking";
- ``/book/{site}/{service}/?day=&slots=``: the free times of a day, and the booking form;
- ``/book/b/{code}``: the booking, its QR (the kiosk's scanner reads the code from it) and its calendar file
  (``/book/b/{code}/calendar.ics``); ``…/move`` and ``…/cancel``.

Against abuse: every form carries a CSRF token (double submit: a cookie and a hidden field, and the Origin
must be this hub); a booking form carries an idempotency key, so a double click books once; bookings per
address are limited (``[bookings] online_burst``, ``online_per_hour``) and code look-ups go through the
check-in's ``CodeGuard`` (one site-wide bucket with the kiosks), so the chance of guessing a code stays below
one in a million a day (server/code_guard.py). No personal data is put in a URL.

The page's forms, its five languages' words and the .ics answer; no rule lives here (they are in book.py).
What the centre's page (central/booking_pages.py) draws alike is in page_parts.py.
"""

from __future__ import annotations

import math
import secrets
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import FastAPI, Header, Query, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from pydantic import BaseModel, Field

from server import codes
from server.api import IDEMPOTENCY_KEY, run, site_time
from server.bookings import notice_parts, page_parts
from server.bookings import notices as booking_notices
from server.bookings.book import BookingBook
from server.bookings.page_parts import (
    Shell,
    day_nav,
    details_fieldset,
    e,
    fitting_times,
    length_nav,
    page_language,
    parse_day,
    parse_slots,
    times_fieldset,
)
from server.bookings.records import BOOKED, CANCELLED, Booking
from server.code_guard import CodeGuard
from server.engine import Outcome
from server.errors import ApiError
from server.hub import Hub
from server.throttle import Bucket
from vuoro import refusals
from vuoro.i18n import translator

LOCALE_DIR = Path(__file__).resolve().parent / "locale"
WEB_DIR = Path(__file__).resolve().parent / "web"
WEB_DEVICE = "web"  # the code guard's device name for look-ups from the public page

MSGIDS: tuple[str, ...] = (
    "Book a time", "Choose what you need help with.", "Only with a booking", "Find your booking",
    "Booking code", "Like 7KQ-3MZ. It is in your confirmation.", "Find", "Language", "Skip to the content",
    "Choose a day", "Choose a time", "Length", "{n} minutes", "Free times on {day}", "No free times on this day.",
    "Try another day, or come by and take a ticket.", "No times can be booked online at the moment.",
    "Your details", "We ask for nothing else. Your name is shown to the staff only.",
    "Name", "Phone", "E-mail", "Book this time", "Back",
    "Why we ask: to contact you if your time has to be changed, and to keep to one booking per person a day. "
    "It is deleted {days} days after your time.",
    "Why we ask: to tell the staff who you are. It is deleted {days} days after your time.",
    "You need no name or contact details to book this service.",
    "Your booking", "You have booked a time.", "Write down the code or keep this page.",
    "Service", "Place", "When", "Code", "Status", "Booked", "Cancelled", "Checked in", "Not shown up",
    "At the library: scan the QR code or type the code at the kiosk.",
    "Check in from {time}.", "QR code with the booking code {code}", "Add to your calendar (.ics)",
    "Move the booking", "Cancel the booking", "Do you want to cancel this booking?", "Yes, cancel",
    "No, keep it", "The booking is cancelled. The time is free for someone else.", "Moved to {time}.",
    "Move to this time", "Choose a new time", "Book another time",
    "There is a problem", "Booking times", "Choose a time first.",
    "The form had expired. Try again.", "Something went wrong. Try again.",
    # refusals, by their code, in the citizen's words
    "Sorry, someone else has just booked that time. Choose another time.",
    "That time is too soon to book online. Choose a later time, or come by and take a ticket.",
    "That day cannot be booked yet. Times open {opens}.",
    "That time has passed.", "Choose one of the offered times.",
    "This service is not booked online. Ask at the desk or call us.",
    "You already have a booking for this service on that day. Change or cancel it with its code.",
    "Please fill in: {field}.", "Please check: {field}.",
    "There is no booking with this code. Check the code.",
    "Too many tries from your connection. Wait {min} minutes and try again.",
    "This booking can no longer be changed.", "There is no such page.",
    "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday",
    "January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
    "November", "December", "{weekday} {day} {month}", "today", "tomorrow", "{day}/{month}", "Earlier days",
    "Later days",
)
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December")
REFUSALS = {
    refusals.FULL: "Sorry, someone else has just booked that time. Choose another time.",
    refusals.NO_SLOT: "Sorry, someone else has just booked that time. Choose another time.",
    refusals.TOO_SOON: "That time is too soon to book online. Choose a later time, or come by and take a ticket.",
    refusals.PAST: "That time has passed.",
    refusals.NOT_A_SLOT: "Choose one of the offered times.",
    refusals.SLOTS: "Choose one of the offered times.",
    refusals.NOT_ONLINE: "This service is not booked online. Ask at the desk or call us.",
    refusals.PER_DAY: "You already have a booking for this service on that day. Change or cancel it with its code.",
    refusals.NOT_FOUND: "There is no booking with this code. Check the code.",
    refusals.CANCELLED: "This booking can no longer be changed.",
    refusals.CHECKED_IN: "This booking can no longer be changed.",
}


class OnlineBookingRequest(BaseModel):
    service: str = Field(min_length=1, max_length=40)
    start: datetime = Field(description="one of GET /api/v1/public/slots' starts")
    slots: int = Field(default=1, ge=1, le=8, description="2 for a double slot")
    name: str | None = Field(default=None, max_length=100, description="only where the service asks for it")
    phone: str | None = Field(default=None, max_length=40, description="only where the service asks for it")
    email: str | None = Field(default=None, max_length=254, description="only where the service asks for it")
    language: str = Field(default="", max_length=5)
    remind_to: str | None = Field(default=None, max_length=254,
                                  description="opt-in: a mobile number or an e-mail address for a confirmation and a "
                                              "reminder ([notify]); deleted once nothing is left to send")


class Words:
    """The page's words in one language."""

    def __init__(self, language: str):
        self.language = language
        self._ = translator(LOCALE_DIR, language)

    def __call__(self, msgid: str, **values: Any) -> str:
        text = self._(msgid)
        return text.format(**values) if values else text

    def day(self, day: date, capital: bool = True) -> str:
        """``Mandag 23. november``; inside a sentence (``capital=False``) as the language writes it there."""
        text = self("{weekday} {day} {month}", weekday=self(WEEKDAYS[day.weekday()]), day=day.day,
                    month=self(MONTHS[day.month - 1]))
        return text[:1].upper() + text[1:] if capital else text

    def short_day(self, day: date, label: str | None = None) -> str:
        """A day's button: ``I dag 23.11.``, ``tirsdag 24.11.``."""
        text = f"{label or self(WEEKDAYS[day.weekday()])} {self('{day}/{month}', day=day.day, month=day.month)}"
        return text[:1].upper() + text[1:]


def add_public_pages(app: FastAPI, hub: Hub, book: BookingBook, guard: CodeGuard) -> None:
    config = hub.config
    tz = config.timezone
    limiter = Bucket(book.settings.online_burst, float(book.settings.online_per_hour))  # per client address
    css = (WEB_DIR / "book.css").read_bytes()

    # -- helpers -------------------------------------------------------------------------------------------------

    def notices() -> booking_notices.Notices | None:
        return getattr(app.state, "booking_notices", None)  # set by its own plugin; None where nothing is sent

    def settings() -> notice_parts.NoticeSettings | None:
        found = notices()
        return found.settings if found else None

    def followed(result: tuple[Outcome, dict[str, Any]], now: datetime, kind: str,
                 contact: tuple[str, str] | None = None, language: str | None = None) -> tuple[Outcome, dict[str, Any]]:
        """A booking change with its confirmation and reminder planned in the same command (one transaction)."""
        if notices() is not None:
            notices().follow(result[0], now, kind, contact, language)  # type: ignore[union-attr]
        return result

    def words_for(request: Request) -> Words:
        return Words(page_language(request, config.languages))

    def address(request: Request) -> str:
        return request.client.host if request.client else "?"

    def base_url(request: Request) -> str:
        return (config.public_url or str(request.base_url)).rstrip("/")

    def service_name(sid: str, w: Words) -> str:
        return config.services[sid].name(w.language, config.default_language)

    def local(value: datetime) -> datetime:
        return value.astimezone(tz)

    def today() -> date:
        return hub.clock().astimezone(tz).date()

    def when(w: Words, start: datetime, end: datetime) -> str:
        return f"{w.day(local(start).date())}, {local(start):%H:%M}–{local(end):%H:%M}"

    shell = Shell(config.name, config.languages)
    page = shell.page
    csrf_token = page_parts.csrf_token
    form_of = page_parts.checked_form
    problem_box = page_parts.problem_box

    def refusal_words(w: Words, refused: ApiError) -> str:
        field = refused.details.get("field")
        if refused.code == refusals.INVALID and field == "remind_to":
            return notice_parts.words(w.language, notice_parts.NO_CONTACT)
        return page_parts.refusal_words(w, refused, REFUSALS)

    async def listing_for(service: str, day: date | None) -> dict[str, Any]:
        return await run(hub, lambda engine, now: book.online_slots(engine, now, service, day), read_only=True)

    def check_site(site: str) -> None:
        if site != config.site_id:
            raise ApiError(404, refusals.HTTP_NOT_FOUND, "There is no such page.")

    # -- pages ---------------------------------------------------------------------------------------------------

    @app.get("/book/book.css", include_in_schema=False)
    async def stylesheet() -> Response:
        return page_parts.stylesheet(css)

    @app.get("/book", include_in_schema=False)
    @app.get("/book/", include_in_schema=False)
    async def start_page(request: Request) -> Response:
        w = words_for(request)
        items = []
        for sid in book.online_services():
            items.append(page_parts.service_choice(w, f"/book/{config.site_id}/{sid}/", service_name(sid, w),
                                                   config.services[sid].mode == "booking_only"))
        body = (f'<h1>{e(w("Book a time"))}</h1>'
                f'<section aria-labelledby="branch-h"><h2 id="branch-h">{e(config.name)}</h2>'
                f'<p>{e(w("Choose what you need help with."))}</p><ul class="choices">{"".join(items)}</ul></section>'
                f'{page_parts.find_section(w, w("Like 7KQ-3MZ. It is in your confirmation."))}')
        return page(request, w, w("Book a time"), body)

    @app.get("/book/b/", include_in_schema=False)
    async def find_booking(request: Request, code: str = "") -> Response:
        return RedirectResponse(f"/book/b/{codes.normalise(code) or '-'}", status_code=303)

    async def looked_up(request: Request, code: str) -> Booking:
        """The booking with ``code``, through the code guard (wrong codes count against this address)."""
        async def find(normal: str) -> Booking:
            return await run(hub, lambda engine, now: book.find_online(normal), read_only=True)

        return await page_parts.looked_up(guard, WEB_DEVICE, address(request), code, find)

    def refused_page(request: Request, w: Words, refused: ApiError) -> Response:
        return shell.refused(request, w, refused, refusal_words(w, refused))

    def booking_summary(w: Words, booking: Booking) -> str:
        return page_parts.summary(w, service_name(booking.service, w), config.name,
                                  when(w, booking.start, booking.end), booking.code, booking.status)

    @app.get("/book/b/{code}", include_in_schema=False)
    async def booking_page(request: Request, code: str) -> Response:
        w = words_for(request)
        try:
            booking = await looked_up(request, code)
        except ApiError as refused:
            return refused_page(request, w, refused)
        notice = page_parts.done_notice(w, bool(request.query_params.get("new")),
                                        bool(request.query_params.get("moved")), booking.status == CANCELLED,
                                        when(w, booking.start, booking.end))
        manage = ""
        if booking.status == BOOKED:
            opens = local(booking.start - timedelta(minutes=book.rules(booking.service).early_min))
            manage = page_parts.manage_parts(w, booking.code, f"{opens:%H:%M}",
                                             f"{base_url(request)}/book/b/{booking.code}")
        body = page_parts.booking_body(w, notice, booking_summary(w, booking), manage)
        return page(request, w, w("Your booking"), body)

    @app.get("/book/b/{code}/calendar.ics", include_in_schema=False)
    async def booking_calendar(request: Request, code: str) -> Response:
        w = words_for(request)
        try:
            booking = await looked_up(request, code)
        except ApiError as refused:
            return refused_page(request, w, refused)
        text = ics(booking, service_name(booking.service, w), config.name, f"{base_url(request)}/book/b/{booking.code}",
                   w("Code") + f": {codes.pretty(booking.code)}. "
                   + w("At the library: scan the QR code or type the code at the kiosk."), hub.clock())
        return page_parts.ics_response(text, booking.code)

    @app.get("/book/b/{code}/cancel", include_in_schema=False)
    async def cancel_page(request: Request, code: str) -> Response:
        w = words_for(request)
        try:
            booking = await looked_up(request, code)
        except ApiError as refused:
            return refused_page(request, w, refused)
        token = csrf_token(request)
        body = page_parts.cancel_body(w, booking_summary(w, booking), booking.code, token)
        return page(request, w, w("Cancel the booking"), body, csrf=token)

    @app.post("/book/b/{code}/cancel", include_in_schema=False)
    async def cancel_booking(request: Request, code: str) -> Response:
        w = words_for(request)
        try:
            await form_of(request)
            booking = await looked_up(request, code)
            await run(hub, lambda engine, now: followed(book.cancel_online(engine, now, booking.code), now,
                                                        "cancelled"))
        except ApiError as refused:
            return refused_page(request, w, refused)
        return RedirectResponse(f"/book/b/{booking.code}", status_code=303)

    @app.get("/book/b/{code}/move", include_in_schema=False)
    async def move_page(request: Request, code: str) -> Response:
        w = words_for(request)
        try:
            booking = await looked_up(request, code)
            if booking.status != BOOKED:
                raise ApiError(409, refusals.CHECKED_IN, "This booking can no longer be changed.")
            listing = await listing_for(booking.service, parse_day(request.query_params.get("day")))
        except ApiError as refused:
            return refused_page(request, w, refused)
        return move_form(request, w, booking, listing)

    def move_form(request: Request, w: Words, booking: Booking, listing: dict[str, Any], problem: str = "",
                  status: int = 200) -> Response:
        token = csrf_token(request)
        path = f"/book/b/{booking.code}/move"
        body = (f'<h1>{e(w("Choose a new time"))}</h1>{problem_box(w, problem) if problem else ""}'
                f'{booking_summary(w, booking)}{day_nav(w, path, listing, booking.slots, today())}'
                f'<form method="post" action="{e(path)}"><input type="hidden" name="csrf" value="{e(token)}">'
                f'{times_fieldset(w, listing, booking.slots, None)}'
                f'<button type="submit">{e(w("Move to this time"))}</button></form>'
                f'<p><a href="/book/b/{e(booking.code)}">{e(w("Back"))}</a></p>')
        title = f'{w("There is a problem")}: {w("Choose a new time")}' if problem else w("Choose a new time")
        return page(request, w, title, body, status=status, csrf=token)

    @app.post("/book/b/{code}/move", include_in_schema=False)
    async def move_booking(request: Request, code: str) -> Response:
        w = words_for(request)
        try:
            form = await form_of(request)
            booking = await looked_up(request, code)
        except ApiError as refused:
            return refused_page(request, w, refused)
        try:
            start = datetime.fromisoformat(form.get("start", "")) if form.get("start") else None
            if start is None or start.tzinfo is None:
                raise ApiError(422, refusals.NOT_A_SLOT, "Choose a time first.")
            await run(hub, lambda engine, now: followed(book.move_online(engine, now, booking.code, start), now,
                                                        "moved"))
        except (ApiError, ValueError) as refused:
            if not isinstance(refused, ApiError):
                refused = ApiError(422, refusals.NOT_A_SLOT, "Choose one of the offered times.")
            day = parse_day(form.get("start", "")[:10])
            listing = await listing_for(booking.service, day)
            return move_form(request, w, booking, listing, refusal_words(w, refused), refused.status)
        return RedirectResponse(f"/book/b/{booking.code}?moved=1", status_code=303)

    @app.get("/book/{site}/{service}/", include_in_schema=False)
    @app.get("/book/{site}/{service}", include_in_schema=False)
    async def service_page(request: Request, site: str, service: str) -> Response:
        w = words_for(request)
        try:
            check_site(site)
            listing = await listing_for(service, parse_day(request.query_params.get("day")))
        except ApiError as refused:
            return refused_page(request, w, refused)
        return booking_form(request, w, service, listing, parse_slots(request.query_params.get("slots")), {})

    def booking_form(request: Request, w: Words, service: str, listing: dict[str, Any], slots: int,
                     form: dict[str, str], problem: str = "", status: int = 200) -> Response:
        token = csrf_token(request)
        path = f"/book/{config.site_id}/{service}/"
        fitting = fitting_times(listing, slots)
        submit = (f'<button type="submit">{e(w("Book this time"))}</button>' if fitting else "")
        body = (f'<h1>{e(service_name(service, w))}</h1>{problem_box(w, problem) if problem else ""}'
                f'<p class="branch">{e(config.name)}</p>'
                f'{length_nav(w, path, listing, slots)}{day_nav(w, path, listing, slots, today())}'
                f'<form method="post" action="{e(path)}" class="book">'
                f'<input type="hidden" name="csrf" value="{e(token)}">'
                f'<input type="hidden" name="idem" value="{e(form.get("idem") or secrets.token_urlsafe(16))}">'
                f'<input type="hidden" name="slots" value="{slots}">'
                f'{times_fieldset(w, listing, slots, form.get("start"))}'
                f'{details_fieldset(w, listing, form) if fitting else ""}'
                f'{notice_parts.opt_in_html(settings(), w.language, service, form) if fitting else ""}{submit}</form>'
                f'<p><a href="/book/">{e(w("Back"))}</a></p>')
        # Without a script nothing moves the focus to the problem: the title (read first) says there is one.
        title = f'{w("There is a problem")}: {service_name(service, w)}' if problem else service_name(service, w)
        return page(request, w, title, body, status=status, csrf=token)

    async def make_booking(request: Request, body: OnlineBookingRequest, key: str) -> dict[str, Any]:
        """One booking from the page or the API: the address's allowance, then the book's rules."""
        who = address(request)
        wait = limiter.take(who)
        if wait:
            raise ApiError(429, refusals.SLOW_DOWN, "Too many bookings from this address. Wait "
                           f"{math.ceil(wait / 60)} min and try again.", retry_after=math.ceil(wait))
        start = site_time(config, body.start)  # local without an offset; 422 outside 2000–2100
        language = body.language if body.language in config.languages else config.default_language
        made = False
        try:
            contact = notice_parts.contact_of(settings(), body.remind_to is not None, body.remind_to)
            _, answer = await run(hub, lambda engine, now: followed(book.book_online(
                engine, now, service=body.service, start=start, slots=body.slots, key=f"web:{key}",
                language=language, name=body.name, phone=body.phone, email=body.email), now, "booked", contact,
                language))
            made = not answer["replay"]
            return answer
        finally:
            if not made:
                limiter.give_back(who)

    @app.post("/book/{site}/{service}/", include_in_schema=False)
    async def book_time(request: Request, site: str, service: str) -> Response:
        w = words_for(request)
        form: dict[str, str] = {}
        try:
            check_site(site)
            form = await form_of(request)
            if not form.get("start"):
                raise ApiError(422, refusals.NOT_A_SLOT, "Choose a time first.")
            remind_to = notice_parts.ticked_contact(form)
            key = form.get("idem", "")
            if not 8 <= len(key) <= 64:
                raise ApiError(403, refusals.CSRF, "The form had expired. Try again.")
            try:
                body = OnlineBookingRequest(service=service, start=form["start"], slots=parse_slots(form.get("slots")),
                                            name=form.get("name") or None, phone=form.get("phone") or None,
                                            email=form.get("email") or None, language=w.language,
                                            remind_to=remind_to)
            except ValueError:
                raise ApiError(422, refusals.NOT_A_SLOT, "Choose one of the offered times.") from None
            answer = await make_booking(request, body, key)
        except ApiError as refused:
            if refused.code in (refusals.HTTP_NOT_FOUND, refusals.NOT_ONLINE, refusals.UNKNOWN_SERVICE):
                return refused_page(request, w, refused)
            message = (w("Choose a time first.") if refused.message == "Choose a time first."
                       else refusal_words(w, refused))
            day = parse_day(form.get("start", "")[:10])
            listing = await listing_for(service, day)
            kept = {k: v for k, v in form.items() if k in ("name", "phone", "email", "remind", "remind_to")}
            if refused.code not in (refusals.FULL, refusals.NO_SLOT, refusals.PAST, refusals.TOO_SOON):
                kept["start"] = form.get("start", "")  # the time was not the problem: keep it chosen
            return booking_form(request, w, service, listing, parse_slots(form.get("slots")), kept, message,
                                refused.status)
        return RedirectResponse(f"/book/b/{answer['code']}?new=1", status_code=303)

    # -- the same for programs (a centre's page, the bench) ------------------------------------------------------

    @app.get("/api/v1/public/slots", tags=["online booking"], response_model=dict[str, Any])
    async def public_slots(service: Annotated[str, Query(min_length=1, max_length=40)],
                           day: Annotated[str | None, Query(max_length=10)] = None) -> Response:
        """The days a citizen may book a service online now, and one day's free times (the walk-in reserve and
        the booking windows taken off). No login."""
        # Answered as it is (plain JSON types), not validated again against dict[str, Any] by FastAPI: the
        # morning release asks for this more than for anything else (bench/bench_booking.py).
        return JSONResponse(await listing_for(service, parse_day(day)))

    @app.post("/api/v1/public/bookings", status_code=201, tags=["online booking"],
              responses={429: {"description": "too many bookings from this address: wait `retry_after` seconds"}})
    async def public_booking(request: Request, body: OnlineBookingRequest,
                             idempotency_key: Annotated[str | None, Header()] = None) -> Response:
        """A citizen's booking, with only what the service asks for. Needs an ``Idempotency-Key`` header: the same
        key again answers the first booking (200)."""
        key = idempotency_key or ""
        if not IDEMPOTENCY_KEY.match(key):
            raise ApiError(400, refusals.IDEMPOTENCY_KEY, "Send an Idempotency-Key header of 8–64 letters, digits or "
                           ". _ : - so a retry never books twice.", "Idempotency-Key")
        answer = await make_booking(request, body, key)
        replay = answer.pop("replay")
        return JSONResponse(answer, status_code=200 if replay else 201)


def ics_text(value: str) -> str:
    """A TEXT value (RFC 5545 3.3.11): backslash, semicolon, comma and new lines escaped."""
    return value.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,").replace("\n", "\\n")


def ics_fold(line: str) -> str:
    """Lines longer than 75 octets folded (RFC 5545 3.1), never inside a UTF-8 character."""
    out, current = [], ""
    for ch in line:
        if len((current + ch).encode("utf-8")) > (75 if not out else 74):
            out.append(current)
            current = ""
        current += ch
    out.append(current)
    return "\r\n ".join(out)


def ics(booking: Booking, service: str, site: str, url: str, description: str, now: datetime) -> str:
    """The booking as an iCalendar file: times in UTC (``Z``), which every calendar shows in its own zone."""
    def utc(value: datetime) -> str:
        return value.astimezone(ZoneInfo("UTC")).strftime("%Y%m%dT%H%M%SZ")

    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//Vuoro//Online booking//EN", "CALSCALE:GREGORIAN",
             "METHOD:PUBLISH", "BEGIN:VEVENT", f"UID:{booking.id}@vuoro", f"DTSTAMP:{utc(now)}",
             f"DTSTART:{utc(booking.start)}", f"DTEND:{utc(booking.end)}",
             f"SUMMARY:{ics_text(f'{service} – {site}')}", f"LOCATION:{ics_text(site)}",
             f"DESCRIPTION:{ics_text(description + ' ' + url)}", f"URL:{url}",
             f"STATUS:{'CANCELLED' if booking.status == CANCELLED else 'CONFIRMED'}",
             "BEGIN:VALARM", "ACTION:DISPLAY", "TRIGGER:-PT1H", f"DESCRIPTION:{ics_text(service)}", "END:VALARM",
             "END:VEVENT", "END:VCALENDAR"]
    return "".join(ics_fold(line) + "\r\n" for line in lines)

