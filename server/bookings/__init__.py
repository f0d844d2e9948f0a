"""Booked times: slots, capacity, check-in at the kiosk, no-shows, imports, retention (docs/bookings.md).

A hub plugin (its hooks: ``server/hookspecs.py``). One module per concept:

- ``settings``: the ``[bookings]`` section and each service's ``[services.<id>.booking]``;
- ``records``: the rows (``Booking`` and the records a change travels in), their tables, how they are
  written and read;
- ``imports``: a booking system's CSV or iCalendar export, read into rows;
- ``slots``: the slot grid of a service and who holds each place;
- ``book``: ``BookingBook``, the rules, run on the hub's writer thread;
- ``routes``: the HTTP API (staff bookings, imports, check-in, slots, booking at the kiosk);
- ``public``: the public booking page ``/book/`` (citizens book, move and cancel; no login).

This module plugs them into the hub: the tables, how the records are written, the no-show and
retention jobs, the booking codes' share of the one code space, and the wrong-code alerts.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from server.bookings import records
from server.bookings.book import BookingBook
from server.bookings.settings import parse_settings
from server.code_guard import CodeGuard
from server.config import SiteConfig
from server.engine import Outcome, QueueEngine
from server.hookspecs import hookimpl

if TYPE_CHECKING:
    from fastapi import FastAPI

    from server.hub import Hub


@hookimpl
def check_config(config: SiteConfig) -> None:
    parse_settings(config)


@hookimpl
def store_schema() -> tuple[str, list[str]]:
    return "bookings", records.SCHEMA


@hookimpl
def record_writers() -> dict[type, Any]:
    return {records.BookingRow: records.write_booking, records.PurgePersonalData: records.write_purge,
            records.OldNoShows: records.write_old_no_shows, records.OwnedDay: records.write_owned_day,
            records.CentreAhead: records.write_centre_ahead}


@hookimpl
def install(app: FastAPI, hub: Hub) -> None:
    from server.bookings import public, routes  # the web stack only where there is an app: the rules need none

    bookings = Bookings(hub)
    hub.plugins.register(bookings)
    app.state.bookings = bookings.book
    app.state.code_guard = bookings.guard
    app.state.calendar_link = bookings.calendar_link  # its state in /api/v1/health (None: no centre calendar)
    routes.add_routes(app, hub, bookings.book, bookings.guard)
    public.add_public_pages(app, hub, bookings.book, bookings.guard)


class Bookings:
    """The bookings of one hub: the book, the wrong-code guard, and the hooks they answer."""

    def __init__(self, hub: Hub):
        self.book = BookingBook(hub.config, parse_settings(hub.config), hub.store,
                                code_in_use=lambda code: any(hub.plugins.hook.code_in_use(code=code)))
        self.guard = CodeGuard(hub.store.path.parent)
        hub.call(self.book.sync)
        self.calendar_link = None
        if self.book.settings.centre_calendar and hub.config.central is not None:
            from server.uplink.calendar_link import CalendarLink  # requests only where a centre keeps the calendar

            self.calendar_link = CalendarLink(hub, hub.config.central, self.book,
                                              poll_s=self.book.settings.calendar_poll_s).start()

    @hookimpl
    def stop(self) -> None:
        if self.calendar_link is not None:
            self.calendar_link.stop()

    @hookimpl
    def tick(self, engine: QueueEngine, now: datetime) -> tuple[Outcome, Outcome]:
        return self.book.mark_no_shows(engine, now), self.book.purge(engine, now)

    @hookimpl
    def check_in(self, engine: QueueEngine, now: datetime, code: str, language: str,
                 key: str) -> tuple[Outcome, dict[str, Any]] | None:
        return self.book.checkin(engine, now, code, language, key)

    @hookimpl
    def code_in_use(self, code: str) -> bool:
        return self.book.has_code(code)

    @hookimpl
    def device_alerts(self) -> dict[str, list[dict[str, Any]]]:
        return self.guard.alerts()
