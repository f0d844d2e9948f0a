"""What's on over HTTP (details and examples in docs/bookings.md, "What's on").

- ``GET /api/v1/events`` (anyone): today's and the coming days' events with their sign-up state;
- ``POST /api/v1/events`` / ``DELETE /api/v1/events/{id}`` (staff): events entered by staff;
- ``POST /api/v1/events/{id}/signups`` (kiosk, staff): a seat, else a waiting-list place;
- ``GET /api/v1/events/{id}/signups`` / ``DELETE /api/v1/events/{id}/signups/{code}`` (staff): who signed up, and
  a sign-up given up (its seat goes to the first on the waiting list);
- ``GET /api/v1/events/feeds`` (staff): how each feed is doing.

Every state change runs as one command on the hub's writer thread (``server.api.run``).
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends, FastAPI, Header, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from server import codes
from server.api import language_of, retry_key, run, site_time
from server.auth import Principal, require
from server.errors import ApiError
from server.events.records import SCHEDULED, Event
from server.hub import Hub
from vuoro import refusals

if TYPE_CHECKING:
    from server.events import Events


class EventRequest(BaseModel):
    title: str = Field(min_length=1, max_length=200)
    start: datetime
    end: datetime | None = None
    room: str | None = Field(default=None, max_length=100)
    seats: int | None = Field(default=None, ge=0, le=10000, description="sign-ups at the kiosk when set")
    waiting_list: int | None = Field(default=None, ge=0, le=1000)
    description: str | None = Field(default=None, max_length=2000)


class SignupRequest(BaseModel):
    language: str = Field(default="", max_length=5)
    name: str | None = Field(default=None, max_length=100,
                             description="staff only (a caller signed up at the desk); never shown beyond staff")



def add_routes(app: FastAPI, hub: Hub, events: Events) -> None:
    config = hub.config
    tz = config.timezone

    @app.get("/api/v1/events", tags=["events"])
    async def listing(days: Annotated[int, Query(ge=1, le=31)] = 7) -> dict[str, Any]:
        """Today's and the coming days' events (not yet over), with their sign-up state."""
        return await run(hub, lambda engine, now: events.programme.listing(engine, now, days), read_only=True)

    @app.get("/api/v1/events/feeds", tags=["events"])
    async def feeds(who: Annotated[Principal, Depends(require("staff"))]) -> dict[str, Any]:
        """How each feed is doing: last success, last error, events read."""
        return {"feeds": [s.json() for s in events.fetcher.status.values()]}

    @app.post("/api/v1/events", status_code=201, tags=["events"])
    async def add_event(body: EventRequest, who: Annotated[Principal, Depends(require("staff"))]) -> dict[str, Any]:
        start = site_time(config, body.start)
        end = site_time(config, body.end, "end") if body.end else start + timedelta(hours=1)
        if end <= start:
            raise ApiError(422, refusals.INVALID, "end: expected a time after the start", "end")
        waiting = body.waiting_list if body.waiting_list is not None else (
            events.settings.waiting_list if body.seats is not None else 0)
        event = Event(uuid.uuid4().hex, "staff", " ".join(body.title.split()), start.astimezone(tz),
                      end.astimezone(tz), body.room, SCHEDULED, False, body.seats, waiting, None, body.description)
        _, answer = await run(hub, lambda engine, now: events.programme.add(engine, now, event))
        return answer

    @app.delete("/api/v1/events/{event_id}", tags=["events"])
    async def cancel_event(event_id: Annotated[str, Field(max_length=64)],
                           who: Annotated[Principal, Depends(require("staff"))]) -> dict[str, Any]:
        _, answer = await run(hub, lambda engine, now: events.programme.cancel(engine, now, event_id))
        return answer

    @app.post("/api/v1/events/{event_id}/signups", status_code=201, tags=["events"])
    async def signup(event_id: Annotated[str, Field(max_length=64)],
                     who: Annotated[Principal, Depends(require("kiosk", "staff"))],
                     idempotency_key: Annotated[str | None, Header()] = None,
                     body: SignupRequest | None = None) -> JSONResponse:
        """Sign up for an event: a seat, else a waiting-list place, else 409 full."""
        key = retry_key(who, idempotency_key, "signs up twice")
        language = language_of(config, body.language if body else "")
        name = body.name if body else None
        if name and not who.is_staff:
            raise ApiError(403, refusals.FORBIDDEN, "name: only staff write a name with a sign-up.", "name")
        _, answer = await run(hub, lambda engine, now: events.programme.signup(engine, now, event_id, language, key,
                                                                              name))
        replay = answer.pop("replay")
        return JSONResponse(answer, status_code=200 if replay else 201)

    @app.get("/api/v1/events/{event_id}/signups", tags=["events"])
    async def signups(event_id: Annotated[str, Field(max_length=64)],
                      who: Annotated[Principal, Depends(require("staff"))]) -> dict[str, Any]:
        """Who signed up (staff only): code, name if staff wrote one, seated or waiting (``position`` on the
        waiting list), checked in or not."""
        return await run(hub, lambda engine, now: events.programme.signups_of(engine, event_id), read_only=True)

    @app.delete("/api/v1/events/{event_id}/signups/{code}", tags=["events"])
    async def cancel_signup(event_id: Annotated[str, Field(max_length=64)], code: Annotated[str, Field(max_length=40)],
                            who: Annotated[Principal, Depends(require("staff"))]) -> dict[str, Any]:
        """Give up a sign-up. A seat given up goes to the first on the waiting list in the same transaction;
        ``moved_up`` is that visitor's sign-up, now seated."""
        wanted = codes.normalise(code)
        _, answer = await run(hub, lambda engine, now: events.programme.cancel_signup(engine, now, event_id, wanted))
        return answer
