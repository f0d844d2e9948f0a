"""What's on: events from iCalendar feeds, the DPL CMS events API and staff; sign-ups with a waiting list.

A hub plugin (its hooks: ``server/hookspecs.py``). One module per concept (docs/bookings.md, "What's on"):

- ``settings``: the ``[events]`` section (feeds, refresh, horizon, waiting lists);
- ``records``: ``Event`` and the sign-up rows, their tables, how they are written and read;
- ``feeds``: iCalendar and DPL CMS parsing, and the thread that fetches the feeds;
- ``programme``: ``Programme``, the events and sign-ups on the hub's writer thread;
- ``routes``: the HTTP API (the programme, staff events, sign-ups at the kiosk, feed health).

This module plugs them into the hub: the tables, how the records are written, the retained
``events/today`` topic, the sign-up codes' share of the one code space and their check-in (attendance), and the feed
thread's start and stop.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from server.config import SiteConfig
from server.engine import Outcome, QueueEngine
from server.events import records
from server.events.feeds import FeedFetcher
from server.events.programme import Programme
from server.events.records import Event
from server.events.settings import parse_settings
from server.hookspecs import hookimpl
from vuoro.protocol import EVENTS_TODAY_SUFFIX

FORGET_EVERY = timedelta(minutes=10)

if TYPE_CHECKING:
    from fastapi import FastAPI

    from server.hub import Hub


@hookimpl
def check_config(config: SiteConfig) -> None:
    parse_settings(config)


@hookimpl
def store_schema() -> tuple[str, list[str]]:
    return "events", records.SCHEMA


@hookimpl
def record_writers() -> dict[type, Any]:
    return {records.LocalEventRow: records.write_local_event, records.SignupRow: records.write_signup,
            records.SignupCancelRow: records.write_signup_cancel, records.AttendanceRow: records.write_attendance,
            records.ForgetSignupNames: records.write_forget_names}


@hookimpl
def install(app: FastAPI, hub: Hub) -> None:
    from server.events import routes  # the web stack only where there is an app: the programme needs none

    events = Events(hub)
    hub.plugins.register(events)
    app.state.programme = events.programme
    app.state.feeds = events.fetcher
    routes.add_routes(app, hub, events)
    events.fetcher.start()


class Events:
    """The programme of one hub, its feed thread, and the hooks they answer."""

    def __init__(self, hub: Hub):
        config = hub.config
        self.hub = hub
        self.settings = parse_settings(config)
        self.programme = Programme(config, self.settings, hub.store,
                                   code_in_use=lambda code: any(hub.plugins.hook.code_in_use(code=code)))
        self.fetcher = FeedFetcher(self.settings, config.timezone, hub.store.path.parent / "feeds", self._deliver,
                                   clock=hub.clock)
        self.last_forget: datetime | None = None
        hub.call(lambda engine, now: self.programme.sync(engine))

    def _deliver(self, name: str, events: list[Event]) -> None:
        """A feed's events, from the feed thread: applied by the writer, which republishes events/today."""
        self.hub.submit(lambda engine, now: self.programme.set_feed(name, events))

    @hookimpl
    def retained_state(self, engine: QueueEngine, now: datetime) -> dict[str, dict[str, Any]]:
        return {EVENTS_TODAY_SUFFIX: self.programme.today(engine, now)}

    @hookimpl
    def tick(self, engine: QueueEngine, now: datetime) -> Outcome:
        """Names written with sign-ups are forgotten once their event is over (at most every 10 minutes)."""
        if self.last_forget is not None and now - self.last_forget < FORGET_EVERY:
            return Outcome()
        self.last_forget = now
        return self.programme.forget_names(engine, now)

    @hookimpl
    def check_in(self, engine: QueueEngine, now: datetime, code: str) -> tuple[Outcome, dict[str, Any]] | None:
        return self.programme.check_in(engine, now, code)

    @hookimpl
    def code_in_use(self, code: str) -> bool:
        return self.programme.has_code(code)

    @hookimpl
    def stop(self) -> None:
        self.fetcher.stop()
