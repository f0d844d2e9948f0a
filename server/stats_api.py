"""The statistics plugin: figures, CSV exports, visitor feedback and the /stats/ and /feedback/ pages.

``install(app, hub)`` (called by ``server.api.create_app``) does four things:

1. creates its tables through ``store.migrate_plugin("stats", …)`` and registers
   how its records are written (``store.writers``), so feedback and device status
   changes are committed in the hub's own transactions;
2. watches ``hub.device_listeners`` (fed by the MQTT link from ``devices/<id>/status``)
   and records every change of a device's online/printer state;
3. adds the API: ``GET /api/v1/stats/summary``, ``/summary.csv``, ``/tickets.csv``
   (staff/admin only) and ``POST /api/v1/feedback`` (a kiosk's token, rate-limited
   per device);
4. serves the pages ``/stats/`` (it fetches the JSON with the staff login's cookie or a
   bearer token, and says "please log in" on 401) and ``/feedback/`` (a tablet by the exit).

Statistics are read on a read-only connection of their own (``store.reader()``) in a worker thread,
never on the writer thread: a year's report takes a second or two and must not hold up a ticket.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends, FastAPI, Query
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from server import stats
from server.api import run
from server.auth import Principal, require
from server.engine import Outcome
from server.errors import ApiError
from server.feedback import (
    SCHEMA_NAME,
    SCHEMA_STEPS,
    DeviceChanges,
    DeviceStatusRecord,
    FeedbackRecord,
    RateLimiter,
    last_device_states,
    write_device_status,
    write_feedback,
)
from server.hookspecs import hookimpl

if TYPE_CHECKING:
    from server.hub import Hub

WEB_DIR = Path(__file__).resolve().parent / "stats_web"
STATIC_TYPES = {".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8",
                ".html": "text/html; charset=utf-8", ".svg": "image/svg+xml"}
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                               "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
MAX_DAYS = 1100  # three years in one request is plenty; more would only tie up the hub
FEEDBACK_BURST, FEEDBACK_EVERY_S = 5, 6.0
REPORT_GROUPINGS = (("hour",), ("day", "service"), ("service",), ("counter",))


class FeedbackRequest(BaseModel):
    rating: int = Field(ge=1, le=5, description="1 = very unhappy … 5 = very happy (three faces send 1, 3, 5)")
    faces: int = Field(default=5, description="how many faces the screen showed: 3 or 5")
    service: str | None = Field(default=None, max_length=40, description="the service just used, if known")
    device: str | None = Field(default=None, max_length=40,
                               description="the screen the rating came from (staff tokens only; a kiosk is itself)")


DayQuery = Annotated[str | None, Query(alias="from", max_length=10, description="first local day, YYYY-MM-DD")]
ToQuery = Annotated[str | None, Query(alias="to", max_length=10, description="last local day (inclusive)")]
ByQuery = Annotated[str | None, Query(max_length=60, description="day|hour|weekday|month|service|counter|origin, "
                                      "or up to three joined by commas, e.g. day,service")]
TargetQuery = Annotated[float | None, Query(ge=0, le=600, description="one target wait in minutes for every "
                                            "service, instead of each service's target_wait_min")]
SepQuery = Annotated[str, Query(pattern="^(comma|semicolon)$", description="CSV separator")]


def _parse_day(value: str | None, name: str, default: date) -> date:
    if not value:
        return default
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ApiError(422, "invalid", f"{name}: expected a date like 2026-10-25, got {value!r}", name) from None


@hookimpl
def store_schema() -> tuple[str, list[str]]:
    return SCHEMA_NAME, SCHEMA_STEPS


@hookimpl
def record_writers() -> dict[type, Any]:
    return {FeedbackRecord: write_feedback, DeviceStatusRecord: write_device_status}


@hookimpl
def install(app: FastAPI, hub: Hub) -> None:
    config = hub.config
    site, tz = config.site_id, config.timezone
    store = hub.store
    last = hub.call(lambda engine, now: last_device_states(store, site))

    # -- device status changes -------------------------------------------------------------

    def on_device_change(value: dict[str, Any]) -> None:
        record = DeviceStatusRecord(site=site, device=str(value.get("device")), kind=str(value.get("kind") or ""),
                                    at="", online=bool(value.get("online")), printer=value.get("printer"),
                                    detail=value.get("detail"))
        hub.submit(lambda engine, now: Outcome(records=[replace(record, at=now.astimezone(UTC).isoformat())]))

    changes = DeviceChanges(last, on_device_change)
    hub.plugins.register(changes)
    for value in list(hub.devices.values()):  # anything seen before the plugin was installed
        changes(value)

    # -- reading -----------------------------------------------------------------------------------

    def period(start: str | None, end: str | None) -> tuple[date, date]:
        today = hub.clock().astimezone(tz).date()
        lo = _parse_day(start, "from", today)
        hi = _parse_day(end, "to", lo if start else today)
        if hi < lo:
            raise ApiError(422, "invalid", "to: must not be before from", "to")
        if (hi - lo).days >= MAX_DAYS:
            raise ApiError(422, "invalid", f"to: at most {MAX_DAYS} days in one request", "to")
        return lo, hi

    def dimensions(by: str | None) -> tuple[str, ...]:
        if not by:
            return ()
        dims = tuple(d.strip() for d in by.split(",") if d.strip())
        for d in dims:
            if d not in stats.DIMENSIONS:
                raise ApiError(422, "invalid", f"by: {d!r} is not one of {', '.join(stats.DIMENSIONS)}", "by")
        if len(set(dims)) != len(dims) or len(dims) > 3:
            raise ApiError(422, "invalid", "by: up to three different dimensions, e.g. day,service", "by")
        return dims

    def targets() -> dict[str, float]:
        return {sid: s.target_wait_min for sid, s in config.services.items()}

    def compute(lo: date, hi: date, by: tuple[str, ...], target_min: float | None,
                report: tuple[tuple[str, ...], ...] = ()) -> dict[str, Any]:
        now = hub.clock()
        with store.reader() as db:
            rows = stats.read_tickets(db, site, lo, hi, lean=True)
            first = stats.read_first_calls(db, site, lo, hi)
            ulo, uhi = stats.period_utc(lo, hi, tz)
            feedback = stats.read_feedback(db, site, ulo, uhi)
            changes = stats.read_device_changes(db, site, ulo, min(uhi, now))
            bookings = stats.read_bookings(db, site, ulo, uhi)
            events = stats.read_events(db, site, ulo, uhi)
        groupings = report or (by,)
        results = stats.summarize_many(rows, tz, groupings, targets=targets(), target_override=target_min,
                                       first_calls=first, feedback=feedback, start=lo, end=hi)
        summary = results[groupings[0]]
        body: dict[str, Any] = {
            "site": site, "site_name": config.name, "timezone": str(tz.key), "from": lo.isoformat(),
            "to": hi.isoformat(), "by": list(by), "generated_at": now.astimezone(tz).isoformat(timespec="seconds"),
            "percentile_method": "nearest-rank", "target_min": target_min,
            "services": {sid: {"names": dict(s.names), "target_wait_min": s.target_wait_min, "letter": s.letter}
                         for sid, s in config.services.items()},
            "counters": {cid: c.name for cid, c in config.counters.items()},
            "total": summary.total,
            **({"report": {",".join(g): results[g].groups for g in report}} if report else {"groups": summary.groups}),
            "devices": stats.downtime(changes, ulo, max(ulo, min(uhi, now))),
            "bookings": bookings, "events": events,
        }
        today = now.astimezone(tz).date()
        if lo <= today <= hi:
            waiting = [r for r in rows if r[4] == "waiting"]
            oldest = min((r[7] for r in waiting), default=None)
            body["now"] = {
                "waiting": len(waiting),
                "being_served": sum(1 for r in rows if r[4] == "called"),
                "longest_wait_now_s": round((now - datetime.fromisoformat(oldest)).total_seconds())
                if oldest else None,
                "queues": {sid: {"waiting": q.get("waiting"), "open": q.get("open"),
                                 "counters_open": q.get("counters_open")} for sid, q in hub.view.queues.items()},
            }
        return body

    staff_only = Depends(require("staff"))

    @app.get("/api/v1/stats/summary", tags=["statistics"], dependencies=[staff_only])
    async def summary(start: DayQuery = None, end: ToQuery = None, by: ByQuery = None,
                      target_min: TargetQuery = None) -> dict[str, Any]:
        """Figures for a period of local days, in total and per group (see docs/statistics.md)."""
        lo, hi = period(start, end)
        return await run_in_threadpool(compute, lo, hi, dimensions(by), target_min)

    @app.get("/api/v1/stats/report", tags=["statistics"], dependencies=[staff_only])
    async def report(start: DayQuery = None, end: ToQuery = None, target_min: TargetQuery = None) -> dict[str, Any]:
        """Everything the /stats/ page shows, in one pass: totals and the groups by hour, day, day × service,
        service and counter (``report`` holds each grouping's list, keyed 'hour', 'day,service', …)."""
        lo, hi = period(start, end)
        return await run_in_threadpool(compute, lo, hi, (), target_min, REPORT_GROUPINGS)

    def csv_response(chunks: Any, name: str) -> StreamingResponse:
        return StreamingResponse(chunks, media_type="text/csv; charset=utf-8",
                                 headers={"Content-Disposition": f'attachment; filename="{name}"',
                                          "Cache-Control": "no-store"})

    @app.get("/api/v1/stats/summary.csv", tags=["statistics"], dependencies=[staff_only],
             response_class=StreamingResponse)
    async def summary_csv(start: DayQuery = None, end: ToQuery = None, by: ByQuery = "day",
                          target_min: TargetQuery = None, sep: SepQuery = "comma") -> StreamingResponse:
        """The grouped figures as CSV: one row per group and a last row 'total'."""
        lo, hi = period(start, end)
        dims = dimensions(by)

        def make() -> list[str]:
            with store.reader() as db:
                rows = stats.read_tickets(db, site, lo, hi, lean=True)
                first = stats.read_first_calls(db, site, lo, hi)
                ulo, uhi = stats.period_utc(lo, hi, tz)
                feedback = stats.read_feedback(db, site, ulo, uhi)
            result = stats.summarize(rows, tz, dims, targets=targets(), target_override=target_min,
                                     first_calls=first, feedback=feedback, start=lo, end=hi)
            return list(stats.csv_text(stats.summary_csv_rows(result), "," if sep == "comma" else ";"))

        chunks = await run_in_threadpool(make)
        return csv_response(iter(chunks), f"vuoro-{site}-summary-{lo}-{hi}.csv")

    @app.get("/api/v1/stats/tickets.csv", tags=["statistics"], dependencies=[staff_only],
             response_class=StreamingResponse)
    async def tickets_csv(start: DayQuery = None, end: ToQuery = None, target_min: TargetQuery = None,
                          sep: SepQuery = "comma") -> StreamingResponse:
        """One row per ticket, without anything that identifies a person (no ids, no tracking tokens)."""
        lo, hi = period(start, end)

        def make() -> list[str]:
            with store.reader() as db:
                rows = stats.read_tickets(db, site, lo, hi)
                first = stats.read_first_calls(db, site, lo, hi)
            body = stats.ticket_csv_rows(rows, tz, targets=targets(), first_calls=first, target_override=target_min,
                                         start=lo, end=hi)
            return list(stats.csv_text([list(stats.TICKET_CSV_COLUMNS), *body], "," if sep == "comma" else ";"))

        chunks = await run_in_threadpool(make)
        return csv_response(iter(chunks), f"vuoro-{site}-tickets-{lo}-{hi}.csv")

    # -- feedback --------------------------------------------------------------------------------

    limiter = RateLimiter(FEEDBACK_BURST, FEEDBACK_EVERY_S)
    app.state.feedback_limiter = limiter

    @app.post("/api/v1/feedback", status_code=201, tags=["feedback"])
    async def feedback(body: FeedbackRequest,
                       who: Annotated[Principal, Depends(require("kiosk", "staff"))]) -> dict[str, Any]:
        """One visitor's rating after service. No personal data is taken or kept."""
        if body.faces not in (3, 5):
            raise ApiError(422, "invalid", "faces: expected 3 or 5", "faces")
        if body.faces == 3 and body.rating not in (1, 3, 5):
            raise ApiError(422, "invalid", "rating: a three-face screen sends 1, 3 or 5", "rating")
        if body.service is not None and body.service not in config.services:
            raise ApiError(404, "unknown_service", f"There is no service {body.service!r}.", "service")
        device = (body.device or who.name) if who.is_staff else who.name
        allowed, wait = limiter.allow(device)
        if not allowed:
            raise ApiError(429, "too_many", f"Too many ratings from this screen; try again in {wait:.0f} s.",
                           retry_after_s=round(wait, 1))
        record = FeedbackRecord(site=site, at="", rating=body.rating, faces=body.faces, service=body.service,
                                device=device)

        def command(engine: Any, now: datetime) -> Outcome:
            return Outcome(records=[replace(record, at=now.astimezone(UTC).isoformat())])

        await run(hub, command)
        return {"ok": True, "rating": body.rating}

    # -- pages ---------------------------------------------------------------------------------------

    pages = {p.name: (p.read_bytes(), STATIC_TYPES[p.suffix]) for p in WEB_DIR.iterdir()
             if p.suffix in STATIC_TYPES} if WEB_DIR.is_dir() else {}

    def page(name: str) -> Response:
        if name not in pages:
            raise ApiError(404, "http_404", "There is nothing at this address.")
        content, media = pages[name]
        return Response(content, media_type=media, headers=SECURITY_HEADERS)

    @app.get("/stats", include_in_schema=False)
    @app.get("/stats/", include_in_schema=False)
    async def stats_page() -> Response:
        return page("stats.html")

    @app.get("/stats/{name}", include_in_schema=False)
    async def stats_static(name: str) -> Response:
        return page(name if not name.startswith("feedback") else "")

    @app.get("/feedback", include_in_schema=False)
    @app.get("/feedback/", include_in_schema=False)
    async def feedback_page() -> Response:
        return page("feedback.html")

    @app.get("/feedback/{name}", include_in_schema=False)
    async def feedback_static(name: str) -> Response:
        return page(name if name.startswith("feedback") else "")

