"""The HTTP API (``/api/v1``) for kiosks, the staff page and integrations.

Handlers are ``async`` and never touch the store themselves: each hands a
command to the hub's writer thread and awaits its future, so an fsync never
stalls the event loop (stack-notes: that is what ruins p99).

Every error is ``{"error": {"code", "message", "field"}}`` with words a
person understands; anything a client can send gets a 4xx, never a 500.
Who may do what is ``server/auth.py``; the error shape is ``server/errors.py``.
"""

# No ``from __future__ import annotations``: FastAPI reads the handlers' annotations at run time.

import asyncio
import contextlib
import hashlib
import json
import logging
import re
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Header, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from server import views
from server.auth import Principal, require, tokens_of
from server.config import SiteConfig
from server.engine import Outcome, QueueEngine, Refusal, Ticket
from server.errors import ApiError, error_body
from server.front_pages import add_front_pages
from server.guard import AuthFirstRoute, BodyLimit
from server.hub import Hub, StoreUnavailable
from server.plugins import DEFAULT_PLUGINS, install_plugins
from server.stream import FILES_RESERVE, EventStreamResponse, StreamRefused, Streams, open_files_limit
from vuoro import __version__, refusals, sd_notify

log = logging.getLogger("vuoro.api")

IDEMPOTENCY_KEY = re.compile(r"^[A-Za-z0-9._:-]{8,64}$")


def request_digest(body: BaseModel) -> str:
    """What a request asked for, in 16 hex characters: kept with its Idempotency-Key, so the same key
    sent again with a different body is refused (409 idempotency_key_reused) instead of replayed."""
    canonical = json.dumps(body.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


WEB_SIGNAGE_DIR = Path(__file__).resolve().parent.parent / "display" / "web"


# -- for the handlers here and the plugins' ----------------------------------------------------------


def device_key(who: Principal, key: str) -> str:
    """An Idempotency-Key kept apart per device (``kiosk1:<key>``): two devices may send the same one."""
    return f"{who.name}:{key}"


def retry_key(who: Principal, header: str | None, what_it_prevents: str) -> str:
    """The request's Idempotency-Key, kept apart per device (``kiosk1:<key>``); 400 without a well-formed one."""
    if not header or not IDEMPOTENCY_KEY.match(header):
        raise ApiError(400, refusals.IDEMPOTENCY_KEY,
                       "Send an Idempotency-Key header of 8–64 letters, digits or . _ : -"
                       f" so a retry never {what_it_prevents}.", "Idempotency-Key")
    return device_key(who, header)


def optional_key(header: str | None) -> str | None:
    """An Idempotency-Key a request may send (then a repeat is answered, not done again); 400 when malformed."""
    if header is not None and not IDEMPOTENCY_KEY.match(header):
        raise ApiError(400, refusals.IDEMPOTENCY_KEY,
                       "The Idempotency-Key must be 8–64 letters, digits or . _ : -", "Idempotency-Key")
    return header


def site_time(config: SiteConfig, value: datetime, name: str = "start") -> datetime:
    """A time from a request: in the site's zone when it came without an offset; 422 outside 2000–2100."""
    if not 2000 <= value.year <= 2100:
        raise ApiError(422, refusals.INVALID, f"{name}: expected a time between the years 2000 and 2100", name)
    return value.replace(tzinfo=config.timezone) if value.tzinfo is None else value


def language_of(config: SiteConfig, value: str) -> str:
    """A visitor's language if the site speaks it, else the site's first."""
    return value if value in config.languages else config.default_language


def _error(status: int, code: str, message: str, field: str | None = None, **details: Any) -> JSONResponse:
    wait = details.get("retry_after")
    return JSONResponse(error_body(code, message, field, **details), status_code=status,
                        headers={"Retry-After": str(wait)} if wait else None)


class TicketRequest(BaseModel):
    service: str = Field(min_length=1, max_length=40, description="the service id, e.g. 'kvik'")
    language: str = Field(default="", max_length=5, description="the visitor's language (da, sv, fi, nl, en)")


class TransferRequest(BaseModel):
    service: str = Field(min_length=1, max_length=40, description="the service to send the visitor to")


class MessageRequest(BaseModel):
    text: str = Field(max_length=200, description="one line for the screens; empty to clear")


COUNTER_ACTIONS = ("next", "recall", "no-show", "finish", "pause", "resume")
BUTTON_ACTIONS = ("next", "recall")


async def run(hub: Hub, command: Callable[[QueueEngine, datetime], Any], *, read_only: bool = False) -> Any:
    """Run a command on the hub's writer thread without blocking the event loop."""
    return await asyncio.wrap_future(hub.submit(command, read_only=read_only))


def create_app(hub: Hub, *, broker_connected: Callable[[], bool] = lambda: False,
               plugins: tuple[str, ...] = DEFAULT_PLUGINS,
               uplink_status: Callable[[], dict[str, Any]] | None = None) -> FastAPI:
    """The hub's app, with these plugins (``server/plugins.py``; their hooks: ``server/hookspecs.py``).

    ``uplink_status``: a branch of a centre says in its health how far the centre is behind (not a fault of
    the branch: its status stays ok while the centre is away)."""
    config = hub.config

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        heartbeat = asyncio.create_task(_heartbeat(hub)) if sd_notify.enabled() else None
        sd_notify.ready(f"serving site {config.site_id}")
        yield
        if getattr(app.state, "restarting", False):  # on the centre's new config (server/main.py): back in a moment
            sd_notify.reloading("restarting on the centre's new site config")
        else:
            sd_notify.stopping()
        if heartbeat:
            heartbeat.cancel()

    app = FastAPI(
        lifespan=lifespan,
        title="Vuoro hub",
        version=__version__,
        description="Queue tickets, calls and signage state for one site. See docs/protocol.md.",
        openapi_url="/api/v1/openapi.json",
        docs_url=None,  # served from the package, not a CDN (server/front_pages.py)
        redoc_url=None,
    )
    app.router.route_class = AuthFirstRoute  # every route added from here on, plugins' too
    app.state.body_limits = {}  # path → bytes (server.guard.set_body_limit), else guard.BODY_LIMIT
    app.add_middleware(BodyLimit, limits=app.state.body_limits)
    app.state.hub = hub
    app.state.tokens = tokens_of(config)

    # -- errors -------------------------------------------------------------------

    @app.exception_handler(Refusal)  # the engine's, and ApiError (a Refusal with its own status)
    async def refusal(request: Request, exc: Refusal) -> JSONResponse:
        status = exc.status if isinstance(exc, ApiError) else 404 if exc.code.startswith("unknown_") else 409
        details = {k: v for k, v in exc.details.items() if k != "field"}
        return _error(status, exc.code, exc.message, exc.details.get("field"), **details)

    @app.exception_handler(StoreUnavailable)
    async def store_down(request: Request, exc: StoreUnavailable) -> JSONResponse:
        return _error(503, refusals.STORE_UNAVAILABLE, str(exc))

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        what = first.get("msg", "invalid input")
        return _error(422, refusals.INVALID, f"{where or 'request'}: {what}", where or None)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        messages = {404: "There is nothing at this address.", 405: "This address does not take that method."}
        return _error(exc.status_code, refusals.HTTP_PREFIX + str(exc.status_code),
                      messages.get(exc.status_code, str(exc.detail)))

    # -- reading ------------------------------------------------------------------

    @app.get("/api/v1/health", tags=["health"])
    async def health() -> JSONResponse:
        try:
            store = await asyncio.wait_for(run(hub, lambda engine, now: hub.store.check(now), read_only=True), 5)
        except Exception as exc:
            store = f"error: {exc}"
        broker = "connected" if broker_connected() else "disconnected"
        ok = store == "ok"
        body = {"status": "ok" if ok and broker == "connected" else "degraded", "store": store, "broker": broker,
                "version": __version__, "site": config.site_id}
        if uplink_status:
            body["uplink"] = uplink_status()
        calendar = getattr(app.state, "calendar_link", None)  # a branch of the centre's calendar: has it its day?
        if calendar is not None:
            body["calendar"] = dict(calendar.state)
        return JSONResponse(body, status_code=200 if ok else 503)

    @app.get("/api/v1/site", tags=["reading"])
    async def site() -> dict[str, Any]:
        view = hub.view
        return {**view.site, "queues": list(view.queues.values()), "counters_state": list(view.counters.values()),
                "message": hub.message.get("text", "")}

    @app.get("/api/v1/queues", tags=["reading"])
    async def queues() -> list[dict[str, Any]]:
        return list(hub.view.queues.values())

    @app.get("/api/v1/counters", tags=["reading"])
    async def counters() -> list[dict[str, Any]]:
        return list(hub.view.counters.values())

    @app.get("/api/v1/calls", tags=["reading"])
    async def calls() -> dict[str, Any]:
        return hub.view.recent_calls

    async def one_ticket(find: Callable[[QueueEngine], Ticket | None],
                         show: Callable[[QueueEngine, Ticket], dict[str, Any]], missing: str,
                         field: str) -> dict[str, Any]:
        def read(engine: QueueEngine, now: datetime) -> dict[str, Any]:
            ticket = find(engine)
            if ticket is None:
                raise ApiError(404, refusals.UNKNOWN_TICKET, missing, field)
            return show(engine, ticket)

        return await run(hub, read, read_only=True)

    @app.get("/api/v1/tickets/{ticket_id}", tags=["tickets"])
    async def get_ticket(ticket_id: Annotated[str, Field(max_length=64)]) -> dict[str, Any]:
        return await one_ticket(lambda engine: engine.tickets.get(ticket_id), views.ticket_json,
                                "There is no such ticket today.", "ticket_id")

    @app.get("/api/v1/track/{token}", tags=["tickets"])
    async def track(token: Annotated[str, Field(max_length=64)]) -> dict[str, Any]:
        """The phone page's view of one ticket (the token is printed as a QR code)."""
        return await one_ticket(lambda engine: engine.ticket_by_token(token), views.track_json,
                                "This ticket is not in today's queue.", "token")

    @app.get("/api/v1/devices", tags=["staff"])
    async def devices(who: Annotated[Principal, Depends(require("staff"))]) -> list[dict[str, Any]]:
        """The last status of every device, with ``alerts`` where a plugin has one (docs/protocol.md)."""
        found = {name: dict(status) for name, status in hub.devices.items()}
        for alerts in hub.plugins.hook.device_alerts():  # e.g. booking codes being guessed at a kiosk
            for name, items in alerts.items():
                kind = config.devices[name].kind if name in config.devices else "staff"
                entry = found.setdefault(name, {"device": name, "kind": kind, "online": None})
                entry["alerts"] = [*entry.get("alerts", []), *items]
        return sorted(found.values(), key=lambda d: d["device"])

    # The total stays below the open-file limit the process runs with (raised at start: server.main).
    streams = Streams(hub.retained_state, per_address=config.streams_per_address,
                      total=max(1, min(config.streams_total, open_files_limit() - FILES_RESERVE)))
    if streams.total < config.streams_total:
        log.warning("serving at most %d streams, not hub.streams_total = %d: the open-files limit is too low "
                    "(LimitNOFILE in the systemd unit)", streams.total, config.streams_total)
    hub.plugins.register(streams)  # announce: every change after a commit reaches the open streams
    app.state.streams = streams

    @app.get("/api/v1/stream", tags=["reading"], response_class=EventStreamResponse, status_code=200,
             responses={429: {"description": "this address has as many streams open as it may"},
                        503: {"description": "the hub has as many streams open as it serves"}})
    async def stream(request: Request) -> EventStreamResponse:
        """Server-sent events for the web signage, the staff page and the phone page: every retained state
        first, then changes. Limited per client address and in total (docs/protocol.md)."""
        try:
            opened = streams.admit(request.client.host if request.client else "?")
        except StreamRefused as refused:
            raise ApiError(refused.status, refused.code, refused.message, retry_after=refused.retry_after) from None
        return EventStreamResponse(streams, opened)

    # -- tickets ------------------------------------------------------------------

    @app.post("/api/v1/tickets", status_code=201, tags=["tickets"])
    async def issue(
        body: TicketRequest,
        who: Annotated[Principal, Depends(require("kiosk", "staff"))],
        idempotency_key: Annotated[str | None, Header(description="8–64 characters, unique per request")] = None,
    ) -> JSONResponse:
        key = retry_key(who, idempotency_key, "makes a second ticket")
        language = body.language or config.default_language
        digest = request_digest(body)

        def command(engine: QueueEngine, now: datetime) -> tuple[Outcome, dict[str, Any]]:
            outcome = engine.issue(body.service, language, now, idempotency_key=key, request_digest=digest,
                                   channel="staff" if who.is_staff else "kiosk")
            assert outcome.ticket is not None
            return outcome, {"replay": outcome.replay, **views.ticket_json(engine, outcome.ticket)}

        _, ticket = await run(hub, command)
        replay = ticket.pop("replay")
        return JSONResponse(ticket, status_code=200 if replay else 201)

    # -- counters -------------------------------------------------------------------

    def counter_answer(engine: QueueEngine, counter: str, outcome: Outcome, message: str) -> dict[str, Any]:
        return {
            "counter": views.counter_state(engine, counter),
            "call": views.call_json(engine, outcome.call) if outcome.call else None,
            "message": message,
        }

    async def counter_action(counter: str, who: Principal, action: str, service: str | None = None,
                             request_id: str | None = None) -> dict[str, Any]:
        if counter not in config.counters:
            raise ApiError(404, refusals.UNKNOWN_COUNTER, f"There is no counter {counter!r}.", "counter")
        if not who.is_staff and not (who.kind == "button" and counter in who.counters and action in BUTTON_ACTIONS):
            raise ApiError(403, refusals.FORBIDDEN, f"A {who.kind} may not do this at counter {counter!r}.")
        if who.is_staff and who.counters and counter not in who.counters:  # a directory group that names desks
            raise ApiError(403, refusals.FORBIDDEN, f"{who.name} may not call at counter {counter!r}.")

        def command(engine: QueueEngine, now: datetime) -> tuple[Outcome, dict[str, Any]]:
            def act() -> Outcome:
                if action == "transfer":
                    return engine.transfer(counter, service or "", now)
                return {"next": engine.call_next, "recall": engine.recall, "no-show": engine.no_show,
                        "finish": engine.finish, "pause": engine.pause, "resume": engine.resume}[action](counter, now)

            def describe(outcome: Outcome) -> dict[str, Any]:
                message = {"next": "Called" if outcome.call else "No one is waiting", "recall": "Called again",
                           "no-show": "Marked as not shown up", "finish": "Finished", "transfer": "Transferred",
                           "pause": "Counter paused", "resume": "Counter open"}[action]
                return counter_answer(engine, counter, outcome, message)

            if request_id:
                outcome = engine.act_once(device_key(who, request_id), act, describe, now)
                return outcome, outcome.result or {}
            outcome = act()
            return outcome, describe(outcome)

        _, answer = await run(hub, command)
        return answer

    for action in COUNTER_ACTIONS:

        def make(action: str) -> Callable[..., Any]:
            async def endpoint(
                counter: str,
                who: Annotated[Principal, Depends(require("button", "staff"))],
                idempotency_key: Annotated[str | None, Header()] = None,
            ) -> dict[str, Any]:
                return await counter_action(counter, who, action, request_id=optional_key(idempotency_key))

            endpoint.__name__ = f"counter_{action.replace('-', '_')}"
            return endpoint

        app.post(f"/api/v1/counters/{{counter}}/{action}", tags=["counters"],
                 summary=f"{action} at a counter")(make(action))

    @app.post("/api/v1/counters/{counter}/transfer", tags=["counters"])
    async def transfer(counter: str, body: TransferRequest, who: Annotated[Principal, Depends(require("staff"))],
                       idempotency_key: Annotated[str | None, Header()] = None) -> dict[str, Any]:
        return await counter_action(counter, who, "transfer", service=body.service,
                                    request_id=optional_key(idempotency_key))

    @app.put("/api/v1/message", tags=["staff"])
    async def put_message(body: MessageRequest, who: Annotated[Principal, Depends(require("staff"))]) -> dict[str, Any]:
        text = " ".join(body.text.split())
        hub.set_message(text)
        return {"text": text}

    # -- the web signage page (display/web) -------------------------------------------

    install_plugins(app, hub, plugins)

    if WEB_SIGNAGE_DIR.is_dir():
        app.mount("/signage", StaticFiles(directory=WEB_SIGNAGE_DIR, html=True), name="signage")

    add_front_pages(app, config, openapi_url="/api/v1/openapi.json")

    return app


async def _heartbeat(hub: Hub) -> None:
    """Tell systemd's watchdog we are alive, but only while the event loop AND the writer answer:
    a hub whose writer thread hung serves nothing and should be restarted."""
    interval = sd_notify.watchdog_interval() or 10.0
    while True:
        try:
            await asyncio.wait_for(run(hub, lambda engine, now: None, read_only=True), interval)
            sd_notify.watchdog()
        except TimeoutError:
            log.error("the writer did not answer within %.0f s; not feeding the watchdog", interval)
        await asyncio.sleep(interval)

