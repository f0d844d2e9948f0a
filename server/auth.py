"""Who is asking, and what they may do: the part of the API that plugins import.

- ``Principal``: a device (kiosk, display, button) or a person (staff, admin), by name;
- ``current_principal``: a FastAPI dependency, the principal of a request or None. A bearer token
  from the site config (``[devices]``, ``[api_tokens]``) first; without one, the plugins'
  ``authenticate`` hook (the staff page's session cookie, ``server/hookspecs.py``);
- ``require(*kinds)``: a dependency that lets only these kinds through (staff and admin pass
  wherever "staff" is named). The app's route class (``server.guard.AuthFirstRoute``) runs the
  same check before a byte of the body is read.
"""

# No ``from __future__ import annotations``: FastAPI reads the dependencies' annotations at run time.

import hmac
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Header, Request

from server.config import SiteConfig
from server.errors import ApiError
from server.guard import needs_token
from vuoro import refusals


@dataclass(frozen=True)
class Principal:
    name: str
    kind: str  # kiosk | display | button | staff | admin
    counters: tuple[str, ...] = ()

    @property
    def is_staff(self) -> bool:
        return self.kind in ("staff", "admin")


def tokens_of(config: SiteConfig) -> dict[str, Principal]:
    """Every bearer token of the site config, with whom it stands for."""
    tokens = {device.token: Principal(device.id, device.kind, device.counters) for device in config.devices.values()}
    tokens.update((token.token, Principal(token.name, token.role)) for token in config.api_tokens.values())
    return tokens


async def current_principal(request: Request,
                            authorization: Annotated[str | None, Header()] = None) -> Principal | None:
    """Who is asking: a bearer token from the site config, or a plugin's login (the staff page).

    ``async`` although it awaits nothing: FastAPI runs a plain ``def`` dependency in its thread
    pool, and two thread hops per request cost more than the whole ticket."""
    if authorization:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise ApiError(401, refusals.UNAUTHORIZED, "Send the token as 'Authorization: Bearer <token>'.")
        for known, who in request.app.state.tokens.items():
            if hmac.compare_digest(known.encode(), token.strip().encode()):
                return who
        raise ApiError(401, refusals.UNAUTHORIZED, "This token is not known to the hub.")
    return request.app.state.hub.plugins.hook.authenticate(request=request)  # type: ignore[no-any-return]


def require(*kinds: str) -> Callable[..., Principal]:
    """A dependency that lets only these kinds through (staff/admin pass wherever 'staff' is named).

    The app's route class (server.guard.AuthFirstRoute) runs the same check before the body is read."""

    async def check(who: Annotated[Principal | None, Depends(current_principal)]) -> Principal:
        if who is None:
            raise ApiError(401, refusals.UNAUTHORIZED, "This needs a device or staff token.")
        if who.kind not in kinds and not (who.is_staff and "staff" in kinds):
            raise ApiError(403, refusals.FORBIDDEN, f"A {who.kind} may not do this.")
        return who

    async def before_the_body(request: Request) -> None:
        await check(await current_principal(request, request.headers.get("authorization")))

    return needs_token(check, before_the_body)
