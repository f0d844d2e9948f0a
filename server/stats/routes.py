"""Statistics over HTTP: figures, CSV exports and the ``/stats/`` page (docs/statistics.md).

- ``GET /api/v1/stats/summary``, ``/report``, ``/summary.csv``, ``/tickets.csv`` (staff and admin only);
- ``/stats/``: the page; it fetches the JSON with the staff login's cookie or a bearer token, and says
  "please log in" on 401.

Statistics are read on a read-only connection of their own (``store.reader()``) in a worker thread,
never on the writer thread: a year's report takes a second or two and must not hold up a ticket.
"""

from __future__ import annotations

import sqlite3
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends, FastAPI, Query
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from server import stats
from server.auth import require
from server.errors import ApiError
from server.pages import add_pages
from server.stats.page import stats_page
from vuoro import refusals

if TYPE_CHECKING:
    from server.hub import Hub

WEB_DIR = Path(__file__).resolve().parent / "web"
MAX_DAYS = 1100  # three years in one request is plenty; more would only tie up the hub
REPORT_GROUPINGS = (("hour",), ("day", "service"), ("service",), ("counter",))


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
        raise ApiError(422, refusals.INVALID, f"{name}: expected a date like 2026-10-25, got {value!r}", name) from None


def add_routes(app: FastAPI, hub: Hub) -> None:
    config = hub.config
    site, tz = config.site_id, config.timezone
    store = hub.store

    def period(start: str | None, end: str | None) -> tuple[date, date]:
        today = hub.clock().astimezone(tz).date()
        lo = _parse_day(start, "from", today)
        hi = _parse_day(end, "to", lo if start else today)
        if hi < lo:
            raise ApiError(422, refusals.INVALID, "to: must not be before from", "to")
        if (hi - lo).days >= MAX_DAYS:
            raise ApiError(422, refusals.INVALID, f"to: at most {MAX_DAYS} days in one request", "to")
        return lo, hi

    def dimensions(by: str | None) -> tuple[str, ...]:
        if not by:
            return ()
        dims = tuple(d.strip() for d in by.split(",") if d.strip())
        for d in dims:
            if d not in stats.DIMENSIONS:
                raise ApiError(422, refusals.INVALID, f"by: {d!r} is not one of {', '.join(stats.DIMENSIONS)}", "by")
        if len(set(dims)) != len(dims) or len(dims) > 3:
            raise ApiError(422, refusals.INVALID, "by: up to three different dimensions, e.g. day,service", "by")
        return dims

    def targets() -> dict[str, float]:
        return {sid: s.target_wait_min for sid, s in config.services.items()}

    def summary_rows(db: sqlite3.Connection, lo: date, hi: date) -> tuple[Any, dict[str, str], Any]:
        """What a summary counts: the tickets (lean), the first calls of transferred ones, and the ratings."""
        ulo, uhi = stats.period_utc(lo, hi, tz)
        return (stats.read_tickets(db, site, lo, hi, lean=True), stats.read_first_calls(db, site, lo, hi),
                stats.read_feedback(db, site, ulo, uhi))

    def compute(lo: date, hi: date, by: tuple[str, ...], target_min: float | None,
                report: tuple[tuple[str, ...], ...] = ()) -> dict[str, Any]:
        now = hub.clock()
        ulo, uhi = stats.period_utc(lo, hi, tz)
        with store.reader() as db:
            rows, first, feedback = summary_rows(db, lo, hi)
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
                rows, first, feedback = summary_rows(db, lo, hi)
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

    add_pages(app, "/stats", WEB_DIR, "stats.html",
              render_index=stats_page((WEB_DIR / "stats.html").read_text(encoding="utf-8"), config))
