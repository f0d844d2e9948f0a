"""The bookings' HTTP API (details and examples in docs/bookings.md).

- ``POST /api/v1/bookings`` (staff), ``GET /api/v1/bookings?day=`` (anyone; staff see everything),
  ``PATCH /api/v1/bookings/{id}`` (staff: move), ``DELETE /api/v1/bookings/{id}`` (staff),
  ``POST /api/v1/bookings/import`` (staff, CSV or iCalendar);
- ``POST /api/v1/checkins`` (kiosk), ``GET /api/v1/slots`` (anyone), ``POST /api/v1/bookings/self`` (kiosk).

Every state change runs as one command on the hub's writer thread (``server.api.run``).
"""

from __future__ import annotations

import math
from datetime import date, datetime
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Header, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from server import codes
from server.api import language_of, retry_key, run, site_time
from server.auth import Principal, current_principal, require
from server.bookings.book import BookingBook
from server.bookings.imports import parse_csv, parse_ics_bookings
from server.bookings.notice_parts import contact_of as notices_contact
from server.code_guard import CodeGuard
from server.engine import Outcome, QueueEngine
from server.errors import ApiError
from server.guard import set_body_limit
from server.hub import Hub
from vuoro import refusals

MAX_IMPORT_BYTES = 5 * 1024 * 1024  # an export of a year of bookings is well under 1 MB


class BookingRequest(BaseModel):
    service: str = Field(min_length=1, max_length=40)
    start: datetime = Field(description="local time (site zone) or ISO 8601 with an offset")
    slots: int = Field(default=1, ge=1, le=8, description="2 for a double slot")
    name: str | None = Field(default=None, max_length=100, description="staff only; deleted after retention")
    phone: str | None = Field(default=None, max_length=40, description="staff only; deleted after retention")
    note: str | None = Field(default=None, max_length=500, description="staff only; deleted after retention")
    language: str = Field(default="", max_length=5)
    force: bool = Field(default=False, description="book even when the time is full or outside booking hours")
    notify_to: str | None = Field(default=None, max_length=254,
                                  description="when the caller asks: a mobile number or an e-mail address for a "
                                              "confirmation now and a reminder ([notify]); deleted once sent")


class MoveRequest(BaseModel):
    start: datetime = Field(description="the new time: local time (site zone) or ISO 8601 with an offset")
    slots: int | None = Field(default=None, ge=1, le=8, description="2 for a double slot; default: as booked")
    force: bool = Field(default=False, description="move even when the time is full or outside booking hours")


class SelfBookingRequest(BaseModel):
    service: str = Field(min_length=1, max_length=40)
    start: datetime | None = Field(default=None, description="one of GET /slots' starts")
    here_and_now: bool = Field(default=False, description="the slot starting now (GET /slots' here_and_now)")
    slots: int = Field(default=1, ge=1, le=8)
    language: str = Field(default="", max_length=5)


class CheckinRequest(BaseModel):
    code: str = Field(min_length=1, max_length=200, description="as typed or scanned")
    language: str = Field(default="", max_length=5)


def add_routes(app: FastAPI, hub: Hub, book: BookingBook, guard: CodeGuard) -> None:
    config = hub.config

    def told(result: tuple[Outcome, dict[str, Any]], now: datetime, kind: str) -> tuple[Outcome, dict[str, Any]]:
        """A staff move or cancel confirmed to a citizen who asked for messages (server/bookings/notices.py)."""
        notices = getattr(app.state, "booking_notices", None)
        if notices is not None:
            notices.follow(result[0], now, kind)
        return result

    # -- bookings -----------------------------------------------------------------------------

    @app.post("/api/v1/bookings", status_code=201, tags=["bookings"])
    async def create_booking(body: BookingRequest, who: Annotated[Principal, Depends(require("staff"))],
                             idempotency_key: Annotated[str | None, Header()] = None) -> JSONResponse:
        """A booking made by staff (the contact centre books by phone). The answer carries the code. With an
        ``Idempotency-Key`` (the staff page sends one) a retried request answers the first booking (200)."""
        key = retry_key(who, idempotency_key, "books twice") if idempotency_key is not None else None
        notices = getattr(app.state, "booking_notices", None)  # server/bookings/notices.py, where messages go
        contact = notices_contact(notices.settings if notices else None, body.notify_to is not None, body.notify_to,
                                  "notify_to")

        def command(engine: QueueEngine, now: datetime) -> tuple[Any, dict[str, Any], bool]:
            book.sync(engine, now)
            earlier = book.made_with(key) if key else None
            if earlier is not None:
                return Outcome(replay=True), book.booking_json(engine, earlier, staff=True), True
            outcome = book.create(engine, now, service=body.service, start=site_time(config, body.start),
                                  slots=body.slots, origin="staff", force=body.force, name=body.name,
                                  phone=body.phone, note=body.note, language=language_of(config, body.language),
                                  idem_key=key)
            booking = outcome.records[0].booking
            if notices is not None:
                notices.follow(outcome, now, "booked", contact, language_of(config, body.language))
            return outcome, book.booking_json(engine, book.bookings[booking.id], staff=True), False

        _, answer, replay = await run(hub, command)
        return JSONResponse(answer, status_code=200 if replay else 201)

    @app.get("/api/v1/bookings", tags=["bookings"])
    async def list_bookings(who: Annotated[Principal | None, Depends(current_principal)],
                            day: Annotated[str | None, Query(max_length=10)] = None) -> dict[str, Any]:
        """One day's bookings: staff see codes, names, phones and check-in; others only times and states."""
        try:
            wanted = date.fromisoformat(day) if day else None
        except ValueError:
            raise ApiError(422, refusals.INVALID, "day: expected a date like 2026-11-23", "day") from None
        staff = who is not None and who.is_staff

        def command(engine: QueueEngine, now: datetime) -> dict[str, Any]:
            return book.list_day(engine, now, wanted or engine.local(now).date(), staff)

        return await run(hub, command, read_only=True)

    @app.delete("/api/v1/bookings/{booking_id}", tags=["bookings"])
    async def cancel_booking(booking_id: Annotated[str, Field(max_length=64)],
                             who: Annotated[Principal, Depends(require("staff"))]) -> dict[str, Any]:
        _, answer = await run(hub, lambda engine, now: told(book.cancel(engine, now, booking_id), now, "cancelled"))
        return answer

    @app.patch("/api/v1/bookings/{booking_id}", tags=["bookings"])
    async def move_booking(booking_id: Annotated[str, Field(max_length=64)], body: MoveRequest,
                           who: Annotated[Principal, Depends(require("staff"))]) -> dict[str, Any]:
        """Move a booking to another time (same code); 409 ``full`` leaves it where it was."""
        start = site_time(config, body.start)
        _, answer = await run(hub, lambda engine, now: told(book.move(engine, now, booking_id, start, body.slots,
                                                                      body.force), now, "moved"))
        return answer

    set_body_limit(app, "/api/v1/bookings/import", MAX_IMPORT_BYTES)

    @app.post("/api/v1/bookings/import", tags=["bookings"])
    async def import_bookings(request: Request, who: Annotated[Principal, Depends(require("staff"))],
                              format: Annotated[str | None, Query(pattern="^(csv|ics)$")] = None,
                              service: Annotated[str | None, Query(max_length=40)] = None,
                              dry_run: bool = False) -> dict[str, Any]:
        """A booking system's export (CSV or iCalendar), at most 5 MB. Good rows are imported, bad ones reported
        by row."""
        raw = await request.body()  # at most MAX_IMPORT_BYTES: the hub's BodyLimit answers 413 beyond
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            text = raw.decode("cp1252", errors="replace")  # a spreadsheet saved on Windows
        kind = format or ("ics" if "calendar" in request.headers.get("content-type", "")
                          or text.lstrip().upper().startswith("BEGIN:VCALENDAR") else "csv")
        if service is not None and service not in config.services:
            raise ApiError(404, refusals.UNKNOWN_SERVICE, f"There is no service {service!r}.", "service")
        try:
            if kind == "ics":
                rows, errors = await run_in_threadpool(parse_ics_bookings, text, config, service)
            else:
                rows, errors = await run_in_threadpool(parse_csv, text, config)
        except Exception as exc:  # never a 500 for a file someone uploads
            raise ApiError(422, refusals.UNREADABLE, f"The file could not be read as {kind.upper()}: {exc}") from None
        _, report = await run(hub, lambda engine, now: book.import_rows(engine, now, rows, dry_run))
        return {"format": kind, "rows": len(rows) + len(errors), "dry_run": dry_run, **report, "errors": errors}

    # -- the kiosk: check-in and book a time --------------------------------------------------------

    @app.post("/api/v1/checkins", status_code=201, tags=["bookings"],
              responses={429: {"description": "too many wrong codes: wait `retry_after` seconds"}})
    async def checkin(request: Request, body: CheckinRequest,
                      who: Annotated[Principal, Depends(require("kiosk", "staff"))],
                      idempotency_key: Annotated[str | None, Header()] = None) -> JSONResponse:
        """Check in with a booking code (a queue ticket that is called first once the booking is due) or an
        event sign-up code (attendance is recorded: the events plugin answers through the ``check_in`` hook).

        Wrong codes are limited per device, per address and for the site (server/code_guard.py)."""
        key = retry_key(who, idempotency_key, "books twice")
        language = language_of(config, body.language)
        address = request.client.host if request.client else "?"
        wait = guard.take(who.name, address)
        if wait:
            raise ApiError(429, refusals.SLOW_DOWN, "Too many wrong booking codes have been tried here. Wait "
                           f"{math.ceil(wait / 60)} min and try again, or ask at the desk.", "code",
                           retry_after=wait)
        code = codes.normalise(body.code)

        def command(engine: QueueEngine, now: datetime) -> tuple[Any, dict[str, Any]]:
            problem = codes.problem(code)
            if problem:
                raise ApiError(404, refusals.NOT_FOUND, problem, field="code")
            # Codes are one code space: the plugin whose code it is answers (a booking here, a sign-up in events).
            answered = hub.plugins.hook.check_in(engine=engine, now=now, code=code, language=language, key=key)
            if answered is None:
                raise ApiError(404, refusals.NOT_FOUND, "There is no booking or sign-up with this code. Check the "
                               "code or ask at the desk.", field="code")
            return answered

        wrong_code = False
        try:
            _, answer = await run(hub, command)
        except ApiError as refused:
            # A code that was looked up and is nobody's; a typo that cannot be a code costs nothing.
            wrong_code = refused.code == refusals.NOT_FOUND and codes.problem(code) is None
            raise
        finally:
            guard.settle(who.name, address, wrong_code=wrong_code)
        replay = answer.pop("replay")
        return JSONResponse(answer, status_code=200 if replay else 201)

    @app.get("/api/v1/slots", tags=["bookings"])
    async def slots(service: Annotated[str, Query(min_length=1, max_length=40)],
                    who: Annotated[Principal | None, Depends(current_principal)],
                    days: Annotated[int, Query(ge=1, le=62)] = 7) -> dict[str, Any]:
        """The next free times of a service, and a here-and-now slot when someone is free now. Staff see the
        services booked only at the desk or by phone too."""
        staff = who is not None and who.is_staff
        return await run(hub, lambda engine, now: book.free_slots(engine, now, service, days, staff), read_only=True)

    @app.post("/api/v1/bookings/self", status_code=201, tags=["bookings"])
    async def book_self(body: SelfBookingRequest, who: Annotated[Principal, Depends(require("kiosk", "staff"))],
                        idempotency_key: Annotated[str | None, Header()] = None) -> JSONResponse:
        """An anonymous booking at the kiosk; here-and-now is checked in at once and carries its ticket."""
        key = retry_key(who, idempotency_key, "books twice")
        if body.start is None and not body.here_and_now:
            raise ApiError(422, refusals.INVALID, "start: choose a time, or here_and_now", "start")
        start = None if body.here_and_now else site_time(config, body.start)  # type: ignore[arg-type]

        def command(engine: QueueEngine, now: datetime) -> tuple[Any, dict[str, Any]]:
            return book.book_self(engine, now, service=body.service, start=start, slots=body.slots,
                                  language=language_of(config, body.language), key=key)

        _, answer = await run(hub, command)
        replay = answer.pop("replay")
        return JSONResponse(answer, status_code=200 if replay else 201)

