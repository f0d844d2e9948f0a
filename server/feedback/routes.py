"""Feedback over HTTP: ``POST /api/v1/feedback`` (a kiosk's token, rate-limited per device) and the
``/feedback/`` page for a tablet by the exit."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Header
from pydantic import BaseModel, Field

from server.api import device_key, optional_key, run
from server.auth import Principal, require
from server.engine import Outcome
from server.errors import ApiError
from server.feedback import FeedbackRecord
from server.hub import Hub
from server.pages import add_pages
from server.store import ts
from server.throttle import Bucket
from vuoro import refusals

WEB_DIR = Path(__file__).resolve().parent / "web"
FEEDBACK_BURST, FEEDBACK_EVERY_S = 5, 6.0


class FeedbackRequest(BaseModel):
    rating: int = Field(ge=1, le=5, description="1 = very unhappy … 5 = very happy (three faces send 1, 3, 5)")
    faces: int = Field(default=5, description="how many faces the screen showed: 3 or 5")
    service: str | None = Field(default=None, max_length=40, description="the service just used, if known")
    device: str | None = Field(default=None, max_length=40,
                               description="the screen the rating came from (staff tokens only; a kiosk is itself)")


def add_routes(app: FastAPI, hub: Hub) -> None:
    config = hub.config
    limiter = Bucket(FEEDBACK_BURST, 3600 / FEEDBACK_EVERY_S)
    app.state.feedback_limiter = limiter

    @app.post("/api/v1/feedback", status_code=201, tags=["feedback"])
    async def feedback(body: FeedbackRequest,
                       who: Annotated[Principal, Depends(require("kiosk", "staff"))],
                       idempotency_key: Annotated[str | None, Header(
                           description="8–64 characters, unique per rating: sent again, it counts once")] = None,
                       ) -> dict[str, Any]:
        """One visitor's rating after service. No personal data is taken or kept."""
        key = optional_key(idempotency_key)
        if body.faces not in (3, 5):
            raise ApiError(422, refusals.INVALID, "faces: expected 3 or 5", "faces")
        if body.faces == 3 and body.rating not in (1, 3, 5):
            raise ApiError(422, refusals.INVALID, "rating: a three-face screen sends 1, 3 or 5", "rating")
        if body.service is not None and body.service not in config.services:
            raise ApiError(404, refusals.UNKNOWN_SERVICE, f"There is no service {body.service!r}.", "service")
        device = (body.device or who.name) if who.is_staff else who.name
        wait = limiter.take(device)
        if wait:
            raise ApiError(429, refusals.TOO_MANY, f"Too many ratings from this screen; try again in {wait:.0f} s.",
                           retry_after_s=round(wait, 1))

        def command(engine: Any, now: datetime) -> Outcome:
            return Outcome(records=[FeedbackRecord(config.site_id, ts(now), body.rating, body.faces, body.service,
                                                   device, device_key(who, key) if key else None)])

        await run(hub, command)
        return {"ok": True, "rating": body.rating}

    add_pages(app, "/feedback", WEB_DIR, "feedback.html")
