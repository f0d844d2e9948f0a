"""What the hub does before any handler runs: the token first, then at most so many bytes of body.

Two parts (issue 13, item 4; docs/protocol.md "Limits"):

- :class:`AuthFirstRoute` is the route class of the hub's app. A route that
  needs a token (its endpoint depends on ``server.api.require``) checks it
  *before* FastAPI reads and parses the body, so a client without a token gets
  ``401`` and never costs the hub the memory of its body, and a malformed
  anonymous request is ``401``, not ``422``.
- :class:`BodyLimit` is a pure ASGI middleware that counts the bytes of every
  request body as they arrive and answers ``413`` the moment a body is over
  its limit: at once when ``Content-Length`` says so, or when the running count
  passes it (chunked bodies, or a client whose header lies). It never holds
  more than the limit. A route may have its own limit (``set_body_limit``:
  the booking import takes files).

When the hub answers before it has read a large or chunked body (401, 403,
413), the answer carries ``Connection: close`` and the server closes the
connection instead of reading and throwing away the rest of what the client
keeps sending.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.routing import APIRoute
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from server.errors import error_body
from vuoro import refusals

# Every JSON body the API takes is a few hundred bytes; 64 KiB leaves room for any of them.
BODY_LIMIT = 64 * 1024
# An unread rest of a body up to this size is read and dropped by the server (keep-alive lives on); a larger
# one, or a chunked one of unknown size, closes the connection instead.
DRAIN_MAX = 64 * 1024


class BodyTooLarge(Exception):
    """Raised into the handler that is reading a body past its limit; BodyLimit answers 413."""


def set_body_limit(app: FastAPI, path: str, limit: int) -> None:
    """Let the route at exactly ``path`` take bodies of up to ``limit`` bytes (instead of BODY_LIMIT)."""
    app.state.body_limits[path] = limit


def _too_large(limit: int) -> bytes:
    size = f"{limit // (1024 * 1024)} MB" if limit >= 1024 * 1024 else f"{limit // 1024} KB"
    return json.dumps(error_body(refusals.TOO_LARGE, f"The request is larger than the hub takes here ({size}).",
                                 limit_bytes=limit)).encode()


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value)
    return None


class BodyLimit:
    """Answer 413 as soon as a request body is over its limit; close connections whose body was not read."""

    def __init__(self, app: ASGIApp, limits: dict[str, int], default: int = BODY_LIMIT):
        self.app = app
        self.limits = limits  # path → bytes, filled in by set_body_limit (also after start-up)
        self.default = default

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limits.get(scope["path"], self.default)
        length = _header(scope, b"content-length")
        chunked = (_header(scope, b"transfer-encoding") or b"").lower() == b"chunked"
        declared = int(length) if length and length.isdigit() else None
        if declared is not None and declared > limit:
            await self._refuse(send, limit)  # without reading a byte of it
            return
        has_body = chunked or bool(declared)
        received = 0
        body_done = not has_body
        over = False
        started = False

        async def counting_receive() -> Message:
            nonlocal received, body_done, over
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    over = True
                    raise BodyTooLarge
                body_done = not message.get("more_body", False)
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if over:
                return  # the handler's answer to a cut-off body (a 400 or 422) is replaced by the 413
            if message["type"] == "http.response.start":
                started = True
                if not body_done and (chunked or (declared or 0) - received > DRAIN_MAX):
                    # Answered without the body (401, 403…): do not read a large or endless rest just to throw
                    # it away. A small rest the server reads and drops, and the connection lives on.
                    message = {**message, "headers": [*message.get("headers", []), (b"connection", b"close")]}
            await send(message)

        try:
            await self.app(scope, counting_receive, guarded_send)
        except BodyTooLarge:
            pass
        except Exception:
            if not over:
                raise
        if over and not started:
            await self._refuse(send, limit)

    @staticmethod
    async def _refuse(send: Send, limit: int) -> None:
        body = _too_large(limit)
        await send({"type": "http.response.start", "status": 413, "headers": [
            (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
            (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})


# -- the token before the body -----------------------------------------------------------------

Check = Callable[[Request], Awaitable[Any]]


def needs_token(check: Callable[..., Any], run_first: Check) -> Callable[..., Any]:
    """Mark a dependency (``server.api.require``'s check) to be run by AuthFirstRoute before the body is read.

    ``run_first(request)`` must raise the same refusal the dependency would."""
    check.run_first = run_first  # type: ignore[attr-defined]
    return check


class AuthFirstRoute(APIRoute):
    """An APIRoute whose token checks run before FastAPI reads the body (see the module's docstring)."""

    def get_route_handler(self) -> Callable[[Request], Awaitable[Response]]:
        handler = super().get_route_handler()
        checks = [first for d in self.dependant.dependencies if (first := getattr(d.call, "run_first", None))]
        if not checks:
            return handler

        async def checked(request: Request) -> Response:
            for check in checks:
                await check(request)
            return await handler(request)

        return checked
