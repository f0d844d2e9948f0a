"""The centre's public booking page, ``/book/``: one calendar for all the municipality's branches.

The same words (``server.bookings.public.Words`` and its five languages), stylesheet, QR, ``.ics`` and CSRF and
rate-limit scheme as a branch's own page, and the same page parts (``server/bookings/page_parts.py``: the shell,
the refusal page, the booking's summary, notices and manage page); the rules are the branches' own
(``central/calendar.py`` over ``server.bookings.online.OnlineCalendar``). What is new here: choosing the branch,
"the nearest free time at any branch", and the plain notice when a branch's same-day times cannot be booked online.

- ``/book/``: every branch's services, the nearest free time of each service at any branch, "find my booking";
- ``/book/any/{service}/``: each branch's first free time of the service, soonest first;
- ``/book/{branch}/{service}/?day=&slots=``: a day's free times and the form;
- ``/book/b/{code}``: the booking (the centre's 7-character codes), its QR, ``calendar.ics``, ``move``, ``cancel``.

For programs (and the branches): ``GET /api/v1/calendar/slots``, ``GET /api/v1/calendar/nearest``,
``POST /api/v1/calendar/bookings`` (Idempotency-Key), ``POST /api/v1/calendar/handover`` and
``GET /api/v1/calendar/ahead`` (a branch's token).
"""

from __future__ import annotations

import math
import secrets
from datetime import date, datetime, timedelta
from typing import Annotated, Any

from fastapi import FastAPI, Header, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, RedirectResponse, Response

from central.calendar import BRANCH_AWAY, BRANCH_OWNS, Calendar, as_booking, booking_json, utc_now
from central.config import CentreConfig
from central.shared_state import SharedBucket
from server import codes
from server.bookings import notice_parts, page_parts
from server.bookings.page_parts import (
    Shell,
    csrf_token,
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
from server.bookings.public import REFUSALS, WEB_DIR, OnlineBookingRequest, Words, ics
from server.code_guard import CodeGuard
from server.errors import ApiError
from vuoro import refusals

WEB_DEVICE = "centre-web"
# Words only the centre's page says (translated in server/bookings/locale/*.po with the branch page's words).
NOTICES = {
    BRANCH_AWAY: "Same-day times at {branch} cannot be booked online just now, because the branch cannot be "
                 "reached. Later days can be booked here. For today, come by or call the branch.",
    BRANCH_OWNS: "Today's times at {branch} are booked at the branch itself: at its kiosk or by phone.",
}
CENTRE_MSGIDS: tuple[str, ...] = (
    "Choose a branch and what you need help with.", "Nearest free time at any branch", "It is in your confirmation.",
    "The first free time at each branch, soonest first.", *NOTICES.values())


def add_booking_pages(app: FastAPI, config: CentreConfig, calendar: Calendar) -> None:
    css = (WEB_DIR / "book.css").read_bytes()
    first = next(iter(calendar.sales.values()), None)
    limits = first.settings if first else None
    pool = calendar.pool
    # Counted in PostgreSQL, so each limit holds for all the centre's worker processes together
    # (central/shared_state.py): the online bookings per address, and the code look-ups (per address, and one
    # bucket for the whole centre, which is what the chance of guessing a code rests on).
    limiter = SharedBucket(pool, "booking/address", limits.online_burst if limits else 20,
                           float(limits.online_per_hour if limits else 60))
    guard = CodeGuard(None, make=lambda kind, burst, per_hour: SharedBucket(pool, f"codes/{kind}", burst, per_hour))

    def words_for(request: Request) -> Words:
        return Words(page_language(request, config.languages))

    def address(request: Request) -> str:
        return request.client.host if request.client else "?"

    def branch_name(bid: str) -> str:
        return calendar.sale(bid).branch.name

    def service_name(bid: str, sid: str, w: Words) -> str:
        site = calendar.sale(bid).branch.site
        return site.services[sid].name(w.language, site.default_language)

    shell = Shell(config.name, config.languages)
    page = shell.page
    problem_box = page_parts.problem_box
    form_of = page_parts.checked_form

    def refusal_words(w: Words, refused: ApiError, bid: str | None = None) -> str:
        if refused.code == refusals.INVALID and refused.details.get("field") == "remind_to":
            return notice_parts.words(w.language, notice_parts.NO_CONTACT)
        if refused.code in NOTICES:
            return w(NOTICES[refused.code], branch=branch_name(bid) if bid else "")
        return page_parts.refusal_words(w, refused, REFUSALS)

    def refused_page(request: Request, w: Words, refused: ApiError) -> Response:
        return shell.refused(request, w, refused, refusal_words(w, refused))

    def when(w: Words, bid: str, start: datetime, end: datetime) -> str:
        tz = calendar.sale(bid).branch.site.timezone
        return f"{w.day(start.astimezone(tz).date())}, {start.astimezone(tz):%H:%M}–{end.astimezone(tz):%H:%M}"

    # -- pages ---------------------------------------------------------------------------------------------------

    @app.get("/book/book.css", include_in_schema=False)
    async def stylesheet() -> Response:
        return page_parts.stylesheet(css)

    @app.get("/book", include_in_schema=False)
    @app.get("/book/", include_in_schema=False)
    async def start_page(request: Request) -> Response:
        w = words_for(request)
        sections, services = [], {}
        for bid in calendar.sales:
            items = []
            for sid in calendar.services(bid):
                services.setdefault(sid, service_name(bid, sid, w))
                booking_only = calendar.sale(bid).branch.site.services[sid].mode == "booking_only"
                items.append(page_parts.service_choice(w, f"/book/{bid}/{sid}/", service_name(bid, sid, w),
                                                       booking_only))
            sections.append(f'<section aria-labelledby="b-{e(bid)}"><h2 id="b-{e(bid)}">{e(branch_name(bid))}</h2>'
                            f'<ul class="choices">{"".join(items)}</ul></section>')
        nearest = "".join(f'<li><a class="choice" href="/book/any/{e(sid)}/">{e(name)}</a></li>'
                          for sid, name in services.items())
        body = (f'<h1>{e(w("Book a time"))}</h1><p>{e(w("Choose a branch and what you need help with."))}</p>'
                f'<section aria-labelledby="any-h"><h2 id="any-h">{e(w("Nearest free time at any branch"))}</h2>'
                f'<ul class="choices">{nearest}</ul></section>{"".join(sections)}'
                f'{page_parts.find_section(w, w("It is in your confirmation."))}')
        return page(request, w, w("Book a time"), body)

    @app.get("/book/any/{service}/", include_in_schema=False)
    async def nearest_page(request: Request, service: str) -> Response:
        w = words_for(request)
        found = await run_in_threadpool(calendar.nearest, service)
        items = []
        for f in found:
            start, end = datetime.fromisoformat(f["start"]), datetime.fromisoformat(f["end"])
            items.append(f'<li><a class="choice" href="/book/{e(f["branch"])}/{e(service)}/?day={e(f["day"])}">'
                         f'{e(when(w, f["branch"], start, end))} – {e(f["name"])}</a></li>')
        listing = (f'<ul class="choices">{"".join(items)}</ul>' if items
                   else f'<p>{e(w("No times can be booked online at the moment."))}</p>')
        body = (f'<h1>{e(w("Nearest free time at any branch"))}</h1>'
                f'<p>{e(w("The first free time at each branch, soonest first."))}</p>{listing}'
                f'<p><a href="/book/">{e(w("Back"))}</a></p>')
        return page(request, w, w("Nearest free time at any branch"), body)

    def today_at(bid: str) -> date:
        """Today in the branch's own zone ("today"/"tomorrow" on the day buttons)."""
        return utc_now().astimezone(calendar.sale(bid).branch.site.timezone).date()

    def booking_form(request: Request, w: Words, bid: str, sid: str, listing: dict[str, Any], slots: int,
                     form: dict[str, str], problem: str = "", status: int = 200) -> Response:
        token = csrf_token(request)
        path = f"/book/{bid}/{sid}/"
        notice = (f'<p class="notice" role="status">{e(w(NOTICES[listing["notice"]], branch=branch_name(bid)))}</p>'
                  if listing.get("notice") else "")
        fitting = fitting_times(listing, slots)
        times = times_fieldset(w, listing, slots, form.get("start"))
        details = details_fieldset(w, listing, form) if fitting else ""
        submit = f'<button type="submit">{e(w("Book this time"))}</button>' if fitting else ""
        # The branch's own opt-in box (its [notify]); nothing where the branch sends no messages
        opt_in = notice_parts.opt_in_html(calendar.notices.settings_for(bid), w.language, sid, form) if fitting else ""
        body = (f'<h1>{e(service_name(bid, sid, w))}</h1>{problem_box(w, problem) if problem else ""}'
                f'<p class="branch">{e(branch_name(bid))}</p>{notice}{length_nav(w, path, listing, slots)}'
                f'{day_nav(w, path, listing, slots, today_at(bid))}'
                f'<form method="post" action="{e(path)}" class="book">'
                f'<input type="hidden" name="csrf" value="{e(token)}">'
                f'<input type="hidden" name="idem" value="{e(form.get("idem") or secrets.token_urlsafe(16))}">'
                f'<input type="hidden" name="slots" value="{slots}">{times}{details}{opt_in}{submit}</form>'
                f'<p><a href="/book/">{e(w("Back"))}</a></p>')
        title = f'{w("There is a problem")}: {service_name(bid, sid, w)}' if problem else service_name(bid, sid, w)
        return page(request, w, title, body, status=status, csrf=token)

    @app.get("/book/{branch}/{service}/", include_in_schema=False)
    async def service_page(request: Request, branch: str, service: str) -> Response:
        w = words_for(request)
        try:
            listing = await run_in_threadpool(calendar.listing, branch, service,
                                              parse_day(request.query_params.get("day")))
        except ApiError as refused:
            return refused_page(request, w, refused)
        return booking_form(request, w, branch, service, listing, parse_slots(request.query_params.get("slots")), {})

    async def make_booking(request: Request, branch: str, body: OnlineBookingRequest, key: str) -> dict[str, Any]:
        who = address(request)
        site = calendar.sale(branch).branch.site
        start = body.start if body.start.tzinfo else body.start.replace(tzinfo=site.timezone)
        language = body.language if body.language in site.languages else site.default_language
        contact = notice_parts.contact_of(calendar.notices.settings_for(branch), body.remind_to is not None,
                                          body.remind_to)

        def sell() -> dict[str, Any]:
            wait = limiter.take(who)  # a try taken before the sale, given back unless it made a booking
            if wait:
                raise ApiError(429, refusals.SLOW_DOWN, "Too many bookings from this address.",
                               retry_after=math.ceil(wait))
            made = False
            try:
                made, row = calendar.book(branch, service=body.service, start=start, slots=body.slots,
                                          key=f"web:{key}", language=language, name=body.name, phone=body.phone,
                                          email=body.email, contact=contact)
                return {"replay": not made, **booking_json(row)}
            finally:
                if not made:
                    limiter.give_back(who)

        return await run_in_threadpool(sell)

    @app.post("/book/{branch}/{service}/", include_in_schema=False)
    async def book_time(request: Request, branch: str, service: str) -> Response:
        w = words_for(request)
        form: dict[str, str] = {}
        try:
            calendar.sale(branch)
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
            answer = await make_booking(request, branch, body, key)
        except ApiError as refused:
            if refused.code in (refusals.HTTP_NOT_FOUND, refusals.NOT_ONLINE, refusals.UNKNOWN_SERVICE):
                return refused_page(request, w, refused)
            listing = await run_in_threadpool(calendar.listing, branch, service, parse_day(form.get("start", "")[:10]))
            kept = {k: v for k, v in form.items() if k in ("name", "phone", "email", "remind", "remind_to")}
            return booking_form(request, w, branch, service, listing, parse_slots(form.get("slots")), kept,
                                refusal_words(w, refused, branch), refused.status)
        return RedirectResponse(f"/book/b/{answer['code']}?new=1", status_code=303)

    @app.get("/book/b/", include_in_schema=False)
    async def find_booking(code: str = "") -> Response:
        return RedirectResponse(f"/book/b/{codes.normalise(code) or '-'}", status_code=303)

    async def looked_up(request: Request, code: str) -> dict[str, Any]:
        """The booking with ``code``, through the centre's code guard (its buckets counted in PostgreSQL)."""
        async def find(normal: str) -> dict[str, Any]:
            return await run_in_threadpool(calendar.find, normal)

        return await page_parts.looked_up(guard, WEB_DEVICE, address(request), code, find)

    def summary(w: Words, row: dict[str, Any]) -> str:
        return page_parts.summary(w, service_name(row["branch"], row["service"], w), branch_name(row["branch"]),
                                  when(w, row["branch"], row["start_at"], row["end_at"]), row["code"], row["status"])

    @app.get("/book/b/{code}", include_in_schema=False)
    async def booking_page(request: Request, code: str) -> Response:
        w = words_for(request)
        try:
            row = await looked_up(request, code)
        except ApiError as refused:
            return refused_page(request, w, refused)
        notice = page_parts.done_notice(w, bool(request.query_params.get("new")),
                                        bool(request.query_params.get("moved")), row["status"] == "cancelled",
                                        when(w, row["branch"], row["start_at"], row["end_at"]))
        manage = ""
        if row["status"] == "booked":
            rules = calendar.sale(row["branch"]).settings.rules(row["service"])
            tz = calendar.sale(row["branch"]).branch.site.timezone
            opens = (row["start_at"] - timedelta(minutes=rules.early_min)).astimezone(tz)
            manage = page_parts.manage_parts(w, row["code"], f"{opens:%H:%M}",
                                             f"{str(request.base_url).rstrip('/')}/book/b/{row['code']}")
        body = page_parts.booking_body(w, notice, summary(w, row), manage)
        return page(request, w, w("Your booking"), body)

    @app.get("/book/b/{code}/calendar.ics", include_in_schema=False)
    async def booking_calendar(request: Request, code: str) -> Response:
        w = words_for(request)
        try:
            row = await looked_up(request, code)
        except ApiError as refused:
            return refused_page(request, w, refused)
        url = f"{str(request.base_url).rstrip('/')}/book/b/{row['code']}"
        text = ics(as_booking(row), service_name(row["branch"], row["service"], w), branch_name(row["branch"]), url,
                   w("Code") + f": {codes.pretty(row['code'])}. "
                   + w("At the library: scan the QR code or type the code at the kiosk."), datetime.now().astimezone())
        return page_parts.ics_response(text, row["code"])

    @app.get("/book/b/{code}/cancel", include_in_schema=False)
    async def cancel_page(request: Request, code: str) -> Response:
        w = words_for(request)
        try:
            row = await looked_up(request, code)
        except ApiError as refused:
            return refused_page(request, w, refused)
        token = csrf_token(request)
        body = page_parts.cancel_body(w, summary(w, row), row["code"], token)
        return page(request, w, w("Cancel the booking"), body, csrf=token)

    @app.post("/book/b/{code}/cancel", include_in_schema=False)
    async def cancel_booking(request: Request, code: str) -> Response:
        w = words_for(request)
        try:
            await form_of(request)
            row = await looked_up(request, code)
            await run_in_threadpool(calendar.cancel, row["code"])
        except ApiError as refused:
            return refused_page(request, w, refused)
        return RedirectResponse(f"/book/b/{row['code']}", status_code=303)

    def move_form(request: Request, w: Words, row: dict[str, Any], listing: dict[str, Any], problem: str = "",
                  status: int = 200) -> Response:
        token = csrf_token(request)
        path = f"/book/b/{row['code']}/move"
        fitting = fitting_times(listing, row["slots"])
        times = times_fieldset(w, listing, row["slots"], None)
        submit = f'<button type="submit">{e(w("Move to this time"))}</button>' if fitting else ""
        body = (f'<h1>{e(w("Choose a new time"))}</h1>{problem_box(w, problem) if problem else ""}{summary(w, row)}'
                f'{day_nav(w, path, listing, row["slots"], today_at(row["branch"]))}'
                f'<form method="post" action="{e(path)}"><input type="hidden" name="csrf" value="{e(token)}">'
                f'{times}{submit}</form><p><a href="/book/b/{e(row["code"])}">{e(w("Back"))}</a></p>')
        title = f'{w("There is a problem")}: {w("Choose a new time")}' if problem else w("Choose a new time")
        return page(request, w, title, body, status=status, csrf=token)

    @app.get("/book/b/{code}/move", include_in_schema=False)
    async def move_page(request: Request, code: str) -> Response:
        w = words_for(request)
        try:
            row = await looked_up(request, code)
            if row["status"] != "booked":
                raise ApiError(409, refusals.CHECKED_IN, "This booking can no longer be changed.")
            listing = await run_in_threadpool(calendar.listing, row["branch"], row["service"],
                                              parse_day(request.query_params.get("day")))
        except ApiError as refused:
            return refused_page(request, w, refused)
        return move_form(request, w, row, listing)

    @app.post("/book/b/{code}/move", include_in_schema=False)
    async def move_booking(request: Request, code: str) -> Response:
        w = words_for(request)
        try:
            form = await form_of(request)
            row = await looked_up(request, code)
        except ApiError as refused:
            return refused_page(request, w, refused)
        try:
            start = datetime.fromisoformat(form.get("start", "")) if form.get("start") else None
            if start is None or start.tzinfo is None:
                raise ApiError(422, refusals.NOT_A_SLOT, "Choose a time first.")
            await run_in_threadpool(calendar.move, row["code"], start)
        except (ApiError, ValueError) as refused:
            if not isinstance(refused, ApiError):
                refused = ApiError(422, refusals.NOT_A_SLOT, "Choose one of the offered times.")
            listing = await run_in_threadpool(calendar.listing, row["branch"], row["service"],
                                              parse_day(form.get("start", "")[:10]))
            return move_form(request, w, row, listing, refusal_words(w, refused, row["branch"]), refused.status)
        return RedirectResponse(f"/book/b/{row['code']}?moved=1", status_code=303)

    # -- for programs and the branches ---------------------------------------------------------------------------

    @app.get("/api/v1/calendar/slots", tags=["calendar"])
    async def slots(branch: Annotated[str, Query(max_length=40)], service: Annotated[str, Query(max_length=40)],
                    day: Annotated[date | None, Query()] = None) -> dict[str, Any]:
        return await run_in_threadpool(calendar.listing, branch, service, day)

    @app.get("/api/v1/calendar/nearest", tags=["calendar"])
    async def nearest(service: Annotated[str, Query(max_length=40)]) -> dict[str, Any]:
        return {"service": service, "branches": await run_in_threadpool(calendar.nearest, service)}

    @app.post("/api/v1/calendar/bookings", status_code=201, tags=["calendar"])
    async def public_booking(request: Request, body: OnlineBookingRequest,
                             branch: Annotated[str, Query(max_length=40)],
                             idempotency_key: Annotated[str | None, Header()] = None) -> Response:
        if not idempotency_key or not 8 <= len(idempotency_key) <= 64:
            raise ApiError(400, refusals.IDEMPOTENCY_KEY, "Send an Idempotency-Key header of 8–64 characters.")
        answer = await make_booking(request, branch, body, idempotency_key)
        replay = answer.pop("replay")
        return JSONResponse(answer, status_code=200 if replay else 201)

    def branch_of(request: Request) -> Any:
        header = request.headers.get("authorization", "")
        return config.branch_by_token(header.partition(" ")[2].strip()) if header.lower().startswith("bearer ") \
            else None

    @app.get("/api/v1/calendar/ahead", tags=["calendar"])
    async def ahead(request: Request) -> Response:
        """A branch (its token) reads the centre's bookings of it on days it has not taken over: its staff page
        shows them beside its own (personal fields included, as in the handover's answer)."""
        branch = branch_of(request)
        if branch is None:
            return JSONResponse({"error": "unauthorized", "message": "This token is no branch's."}, status_code=401)
        rows = await run_in_threadpool(calendar.ahead, branch.id)
        return JSONResponse({"branch": branch.id, "bookings": rows}, headers={"Cache-Control": "no-store"})

    @app.post("/api/v1/calendar/handover", tags=["calendar"])
    async def handover(request: Request) -> Response:
        branch = branch_of(request)
        if branch is None:
            return JSONResponse({"error": "unauthorized", "message": "This token is no branch's."}, status_code=401)
        try:
            day = date.fromisoformat(str((await request.json()).get("day")))
        except (ValueError, AttributeError):
            return JSONResponse({"error": "day", "message": "Send {\"day\": \"YYYY-MM-DD\"}."}, status_code=422)
        rows = await run_in_threadpool(calendar.handover, branch.id, day)
        return JSONResponse({"branch": branch.id, "day": day.isoformat(), "bookings": rows})
