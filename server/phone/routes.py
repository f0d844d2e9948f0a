"""The phone's routes: the door QR, the page's view of the services, a ticket, and leaving the queue."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import FastAPI, Header, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from pydantic import BaseModel, Field

from server import views
from server.api import IDEMPOTENCY_KEY, language_of, request_digest, run
from server.config import SiteConfig
from server.engine import Outcome, QueueEngine
from server.errors import ApiError
from server.hub import Hub
from server.pages import SECURITY_HEADERS
from server.phone.door import DoorCodes
from server.phone.settings import PhoneSettings, parse_settings
from server.throttle import Bucket
from vuoro import payloads, refusals

PAGE = "/signage/phone.html"
TRACK_PAGE = "/signage/ticket.html"


class PhoneTicketRequest(BaseModel):
    service: str = Field(min_length=1, max_length=40, description="a walk-in service's id, e.g. 'kvik'")
    language: str = Field(default="", max_length=5, description="the visitor's language (da, sv, fi, nl, en)")
    door: str = Field(default="", max_length=40,
                      description="the door code from the QR on a screen, or the pass GET /api/v1/phone gave for it")


class NotifyRequest(BaseModel):
    channel: str = Field(pattern="^(sms|email)$", description="sms or email")
    to: str = Field(min_length=3, max_length=254, description="the number or address, for this ticket only")


class Door:
    """The site's door codes and what a screen or a poster shows of them."""

    def __init__(self, codes: DoorCodes, settings: PhoneSettings, config: SiteConfig):
        self.codes, self.settings, self.config = codes, settings, config

    def path(self, code: str) -> str:
        return f"/phone/?d={code}" if code else "/phone/"

    def payload(self, now: datetime) -> dict[str, Any]:
        if not self.settings.enabled:
            return payloads.PhoneDoor(code="", path="").to_json()
        code = self.codes.current(now)
        public = self.config.public_url
        return payloads.PhoneDoor(code=code, path=self.path(code), url=f"{public}{self.path(code)}" if public else None,
                                  qr=f"/phone/door.svg?d={code}",
                                  changes_at=self.codes.changes_at(now).astimezone(self.config.timezone)
                                  .isoformat(timespec="seconds")).to_json()

    def accepts(self, code: str, now: datetime) -> bool:
        day = now.astimezone(self.config.timezone).date() if self.settings.poster == "daily" else None
        return self.codes.accepts(code, now, local_day=day)

    def poster_code(self, now: datetime) -> str:
        """What the poster carries: today's code, or none (it sends visitors to a screen's code)."""
        return self.codes.daily(now.astimezone(self.config.timezone).date()) if self.settings.poster == "daily" else ""


def qr_svg(text: str) -> Response:
    import qrcode  # only when a QR is drawn: qrcode pulls in Pillow, ≈ 5 MB an idle hub need not hold
    import qrcode.image.svg

    image = qrcode.make(text, image_factory=qrcode.image.svg.SvgPathImage, border=4,
                        error_correction=qrcode.constants.ERROR_CORRECT_M)
    return Response(image.to_string(), media_type="image/svg+xml", headers=SECURITY_HEADERS)


def add_routes(app: FastAPI, hub: Hub) -> Door:
    config = hub.config
    settings = parse_settings(config)
    secret = hub.call(lambda engine, now: hub.store.rows("SELECT secret FROM phone_secret"))[0][0]
    door = Door(DoorCodes(bytes(secret), config.site_id, settings.code_every_s), settings, config)
    limiter = Bucket(settings.tickets_burst, settings.tickets_per_hour)
    app.state.phone_limiter = limiter
    app.state.phone_door = door

    def base(request: Request) -> str:
        return config.public_url or str(request.base_url).rstrip("/")

    def enabled() -> None:
        if not settings.enabled:
            raise ApiError(404, refusals.PHONE_OFF, "This library does not hand out queue numbers to phones. "
                           "Please take one at the kiosk.")

    @app.get("/phone", include_in_schema=False)
    @app.get("/phone/", include_in_schema=False)
    async def phone_page(request: Request) -> RedirectResponse:
        query = request.url.query
        return RedirectResponse(PAGE + (f"?{query}" if query else ""), status_code=307)

    @app.get("/phone/door.svg", include_in_schema=False)
    async def door_qr(request: Request) -> Response:
        """The QR a screen shows: the current code (whatever ``d`` says: it only keeps caches apart)."""
        enabled()
        return qr_svg(base(request) + door.path(door.codes.current(hub.clock())))

    @app.get("/phone/poster.svg", include_in_schema=False)
    async def poster_qr(request: Request) -> Response:
        enabled()
        return qr_svg(base(request) + door.path(door.poster_code(hub.clock())))

    @app.get("/api/v1/phone", tags=["phone"])
    async def phone_view(d: str = "") -> dict[str, Any]:
        """What the phone page shows before a ticket: whether its door code is current, and the walk-in
        services with their waits (the same ``queue_state`` as the screens)."""
        enabled()
        now = hub.clock()
        view = hub.view
        ok = door.accepts(d, now)
        return {
            "site": view.site.get("name", config.name),
            "languages": list(config.languages),
            "timezone": str(config.timezone),
            "day": now.astimezone(config.timezone).date().isoformat(),
            "door": "ok" if ok else ("old" if d else "none"),
            "pass": door.codes.pass_for(now) if ok else None,  # the page sends this from now on
            "poster": settings.poster,
            "services": [q for q in view.queues.values() if q.get("mode") == "walk_in"],
        }

    @app.post("/api/v1/phone/tickets", status_code=201, tags=["phone"],
              responses={403: {"description": "the door code is missing or old: scan the screen's code again"},
                         409: {"description": "the service is closed now, or by appointment only"},
                         429: {"description": "this address took as many tickets as it may for now"}})
    async def phone_ticket(
        body: PhoneTicketRequest, request: Request,
        idempotency_key: Annotated[str | None, Header(description="8–64 characters, one per tap")] = None,
    ) -> JSONResponse:
        """A ticket for a visitor's phone: same rules as the kiosk's, with a current door code."""
        enabled()
        if not idempotency_key or not IDEMPOTENCY_KEY.match(idempotency_key):
            raise ApiError(400, refusals.IDEMPOTENCY_KEY, "Send an Idempotency-Key header of 8–64 letters, "
                           "digits or . _ : - so a double tap never makes a second ticket.", "Idempotency-Key")
        if not door.accepts(body.door, hub.clock()):
            raise ApiError(403, refusals.DOOR_CODE, "This code is old or missing. Scan the code on the screen by "
                           "the entrance again: it changes every minute.", "door")
        key = f"phone:{idempotency_key}"
        digest = request_digest(body)
        language = language_of(config, body.language)
        address = request.client.host if request.client else "?"

        def replayed(engine: QueueEngine, now: datetime) -> dict[str, Any] | None:
            known = engine.idempotency.get(key)
            if known is None or (known[2] and known[2] != digest):
                return None  # a new request; or the key reused for another, which the engine refuses
            ticket = engine.tickets.get(known[0])
            return None if ticket is None else answer(engine, ticket)

        def answer(engine: QueueEngine, ticket: Any) -> dict[str, Any]:
            return {**views.track_json(engine, ticket), "track_token": ticket.track_token,
                    "track_path": f"{TRACK_PAGE}?t={ticket.track_token}"}

        # A second tap (or a retry after a lost answer) costs no try of the address's.
        again = await run(hub, replayed, read_only=True)
        if again is not None:
            return JSONResponse(again, status_code=200)
        wait = limiter.take(address)
        if wait:
            minutes = max(1, round(wait / 60))
            raise ApiError(429, refusals.TOO_MANY, f"Many queue numbers were taken from this connection. Please "
                           f"wait about {minutes} min, or take a number at the kiosk.", retry_after=round(wait))

        def command(engine: QueueEngine, now: datetime) -> tuple[Outcome, dict[str, Any]]:
            outcome = engine.issue(body.service, language, now, idempotency_key=key, request_digest=digest,
                                   channel="phone")
            assert outcome.ticket is not None
            return outcome, {"replay": outcome.replay, **answer(engine, outcome.ticket)}

        try:
            _, ticket = await run(hub, command)
        except Exception:
            limiter.give_back(address)  # closed, booking only, the store down: no ticket, no try spent
            raise
        replay = ticket.pop("replay")
        return JSONResponse(ticket, status_code=200 if replay else 201)

    @app.post("/api/v1/track/{token}/leave", tags=["phone"])
    async def leave(token: Annotated[str, Field(max_length=64)]) -> dict[str, Any]:
        """The visitor no longer needs help: their place is freed (the engine's ``leave``). Again: no change."""

        def command(engine: QueueEngine, now: datetime) -> tuple[Outcome, dict[str, Any]]:
            outcome = engine.leave(token, now)
            assert outcome.ticket is not None
            return outcome, views.track_json(engine, outcome.ticket)

        _, ticket = await run(hub, command)
        return ticket

    return door


def add_notify_routes(app: FastAPI, hub: Hub) -> Any:
    """``[notify]``: a text or an e-mail when the turn nears and when called, for a visitor who asks."""
    from server.phone.notify import Notifier
    from server.phone.notify import parse_settings as notify_settings

    settings = notify_settings(hub.config)
    notifier = Notifier(settings, hub.config.name) if settings.channels else None
    app.state.notifier = notifier

    @app.get("/api/v1/phone/notify", tags=["phone"])
    async def channels() -> dict[str, Any]:
        """Which channels the site sends by (none: the page offers nothing)."""
        return {"channels": settings.channels}

    @app.post("/api/v1/track/{token}/notify", tags=["phone"])
    async def ask(token: Annotated[str, Field(max_length=64)], body: NotifyRequest) -> dict[str, Any]:
        """Send this ticket's "near" and "called" to this number or address; kept in memory, forgotten with
        the visit."""
        if notifier is None or body.channel not in settings.channels:
            raise ApiError(404, refusals.PHONE_OFF, "This library does not send texts or e-mails.", "channel")
        try:
            to = notifier.check_address(body.channel, body.to)
        except ValueError:
            what = "a phone number (digits, + and spaces)" if body.channel == "sms" else "an e-mail address"
            raise ApiError(422, refusals.INVALID, f"to: expected {what}", "to") from None

        def command(engine: QueueEngine, now: datetime) -> dict[str, Any]:
            ticket = engine.ticket_by_token(token)
            if ticket is None:
                raise ApiError(404, refusals.UNKNOWN_TICKET, "This ticket is not in today's queue.", "token")
            if ticket.status != "waiting":
                raise ApiError(409, refusals.NOT_WAITING, "This ticket is no longer waiting.", "token")
            notifier.remember(engine, ticket.id, body.channel, to)
            return {"channel": body.channel, "ok": True}

        return await run(hub, command, read_only=True)

    @app.delete("/api/v1/track/{token}/notify", tags=["phone"])
    async def stop_asking(token: Annotated[str, Field(max_length=64)]) -> dict[str, Any]:
        """Forget this ticket's number or address now."""

        def command(engine: QueueEngine, now: datetime) -> dict[str, Any]:
            ticket = engine.ticket_by_token(token)
            if ticket is not None and notifier is not None:
                notifier.forget(ticket.id)
            return {"ok": True}

        return await run(hub, command, read_only=True)

    return notifier
