"""The centre's HTTP app: the branches' ingest, the overview API and the overview page.

- ``POST /api/v1/ingest``: a branch's batch of outbox rows (``Authorization: Bearer <the branch's token>``),
  stored in one transaction (``central/ingest.py``); answers ``{"shipped": n}``, the stream's position;
- ``GET /api/v1/numbering?day=``: a branch's next number per letter on that day (its own token), for a hub
  that starts on a wiped or replaced disk;
- ``GET /api/v1/branches``: every branch's last contact, backlog, lag and today's tickets per service;
- ``GET /api/v1/branches/{id}/summary``: one branch's statistics, the branch's own definitions;
- ``GET /api/v1/summary?start=&end=&branches=&by=``: every branch's figures side by side, and all branches as one
  (``by=day|weekday|month|service``: and per group);
- ``GET /``: the overview as a page, in the centre's languages (``?lang=``), kept live by
  ``GET /api/v1/overview/stream`` (server-sent events naming the branches that changed, central/live.py) and
  ``GET /overview/branches?branch=`` (their sections again, as HTML);
- ``/statistics``, ``/configuration``, ``/accounts``: the pages for people (``central/stats_page.py``,
  ``central/config_page.py``, ``central/accounts_page.py``);
- ``GET /api/v1/health``: whether the database answers (and, with ``[broker]``, the link that publishes the nudges).

- ``/login``, ``/logout``: staff sign in to the pages with the accounts the centre holds (``central/signin.py``);
- ``/calendar/{branch}``: the staff calendar of a branch's bookings (``central/staff_calendar.py``);
- configs and staff accounts: ``central/config_api.py``.

Reading needs the centre's admin token (``Bearer``, or HTTP Basic with any user name and the token as the
password) or a signed-in staff account, which sees only the branches it works at.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator, Callable
from datetime import date
from typing import Annotated, Any

import psycopg
from fastapi import FastAPI, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from psycopg_pool import ConnectionPool, PoolTimeout

from central import accounts_page, config_api, config_page, figures, page, rollup, signin, staff_calendar, stats_page
from central import configs as site_configs
from central import staff as staff_accounts
from central.booking_pages import add_booking_pages
from central.calendar import Calendar
from central.calendar import utc_now as calendar_now
from central.config import Branch, CentreConfig
from central.coordination import RECONNECTED, Coordinator, changed_branch
from central.ingest import BatchRefused, parse_body, store_batch
from central.live import EventStream, LiveOverview
from central.notice_sender import owner_job as notice_sender
from central.nudges import NudgePublisher
from central.nudges import read_state as read_nudge_link
from central.refresher import StatsRefresher
from central.shared_state import keep_tidying
from central.workers import HEARTBEAT_S, SILENT_S, ParentLink
from server.errors import ApiError, error_body
from server.stats.figures import DIMENSIONS
from vuoro import __version__

log = logging.getLogger("vuoro.central")

MAX_BATCH_BYTES = 32 * 1024 * 1024
# A cross-branch summary first aggregates its period's newest rows for at most this long; the rest is the
# background refresher's (every 15 s) and the answer's pending_days says so.
SUMMARY_REFRESH_BUDGET_S = 1.0  # 10,000 rows of a few hundred bytes, with room


def _error(status: int, code: str, message: str, **extra: Any) -> JSONResponse:
    headers = {"WWW-Authenticate": 'Basic realm="Vuoro centre"'} if status == 401 else None
    return JSONResponse({"error": code, "message": message, **extra}, status_code=status, headers=headers)


def create_app(config: CentreConfig, pool: ConnectionPool, *, parent: ParentLink | None = None,
               background: bool = False) -> FastAPI:
    """The app of one worker process (central/workers.py): ``parent`` hears that it serves and that it answers;
    ``background``: hear the other workers' changes and compete for the background work (central/coordination.py).
    Without them (the tests' app in their own process) nothing runs beside the requests."""
    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        loop = asyncio.get_running_loop()

        def heard(what: str) -> None:  # the coordinator's thread: a change somewhere, or the connection back
            branch = changed_branch(what)
            if branch is not None:  # a branch's config report: the overview's streams only (not the long polls)
                loop.call_soon_threadsafe(live.branch_changed, branch)
                return
            config.branches.heard(pool, what)  # a branch runs another version: this worker sells by it from now
            loop.call_soon_threadsafe(app.state.wake_long_polls)
            publisher = nudges[0] if nudges else None
            if publisher is not None:  # this worker owns the background work: the branches' nudges too
                publisher.changed(what)
            if what.startswith("config:"):  # a version published: the branch's section says so
                loop.call_soon_threadsafe(live.branch_changed, what.partition(":")[2])
            if what == RECONNECTED:  # NOTIFYs may have been missed meanwhile: every live page reads all again
                loop.call_soon_threadsafe(live.everything_changed)

        coordinator = Coordinator(config.database, heard, owner_jobs).start() if background else None
        heartbeat = asyncio.create_task(_heartbeat(parent)) if parent else None
        if coordinator:
            # Each branch on the version it runs before this worker serves; read once LISTEN is on (or given up
            # waiting), so a report committed between the read and the LISTEN is not missed.
            await run_in_threadpool(coordinator.connected.wait, 10.0)
            await run_in_threadpool(config.branches.heard, pool, RECONNECTED)
        if parent:
            parent.ready()
        yield
        if heartbeat:
            heartbeat.cancel()
        if coordinator:
            await run_in_threadpool(coordinator.stop)

    nudges: list[NudgePublisher] = []  # the owner's publisher, while this worker owns the work (central/nudges.py)

    def owner_jobs() -> Callable[[], None]:
        """The background work, in the one worker that holds the owner's lock: the statistics refresher, the
        calendar's retention purge, the shared state's clean-up, the branches' nudges on the broker (one MQTT client
        per centre; it publishes every branch's nudge as it connects, so nothing changed before it owned the work is
        missed: central/nudges.py), the bookings' confirmations and reminders (central/notice_sender.py). Returns
        what stops them."""
        refresher = StatsRefresher(config, pool).start()
        purge = calendar.keep_purging()  # personal fields after retention_days, as at a branch
        tidy = keep_tidying(pool)
        if config.broker is not None:
            nudges.append(NudgePublisher(config.broker, pool, config.branches).start())
        stop_sending = notice_sender(calendar.notices, pool)  # at most once: only the owner sends

        def stop() -> None:
            stop_sending()  # first: a message in flight is settled while the lock is still ours
            purge.set()
            tidy.set()
            refresher.stop()
            while nudges:
                nudges.pop().stop()

        return stop

    app = FastAPI(title="Vuoro centre", version=__version__, docs_url=None, redoc_url=None, lifespan=lifespan)
    if os.environ.get(SHOW_WORKER_ENV):  # tests only: which worker process answered
        app.add_middleware(ShowWorker)

    @app.exception_handler(psycopg.OperationalError)
    @app.exception_handler(PoolTimeout)
    async def database_away(request: Request, exc: Exception) -> JSONResponse:
        # PostgreSQL down or restarting: say so plainly; a branch keeps its rows and sends them again.
        return _error(503, "database_unavailable", "The centre's database cannot be reached just now; nothing was "
                                                   "stored. Branches keep their rows and send them again.")

    @app.exception_handler(ApiError)
    async def refused(request: Request, exc: ApiError) -> JSONResponse:
        # The calendar's refusals (central/calendar.py): the branches' own codes and words
        return JSONResponse(error_body(exc.code, exc.message, **exc.details), status_code=exc.status)

    # The municipality's booking calendar and its public page (central/calendar.py, central/booking_pages.py)
    calendar = Calendar(config, pool, away_s=config.calendar_away_s)
    add_booking_pages(app, config, calendar)

    signin.install(app, config, pool)
    config_api.install(app, config, pool)
    # the pages for people: statistics across branches; configuration and accounts for admins
    stats_page.install(app, config, pool)
    config_page.install(app, config, pool)
    accounts_page.install(app, config, pool)
    staff_calendar.install(app, config, calendar)  # staff book, move and cancel per branch and day

    async def viewer(request: Request) -> signin.Viewer | None:
        return await app.state.viewer(request)  # type: ignore[no-any-return]

    # The overview's live streams (central/live.py); a stopping worker ends them with the branches' long polls.
    async def read_states() -> dict[str, tuple[bool, int]]:
        return await run_in_threadpool(branch_states)

    def branch_states() -> dict[str, tuple[bool, int]]:
        """Per branch: (silent?, how many rows stored in all) — what a change of its section follows."""
        now = figures.utc_now()
        with pool.connection(timeout=2) as db:
            rows = db.execute("SELECT b.id, b.last_seen, COALESCE(SUM(s.shipped), 0) FROM branches b "
                              "LEFT JOIN streams s ON s.branch = b.id GROUP BY b.id, b.last_seen").fetchall()
        seen = {b: (last, int(stored)) for b, last, stored in rows}
        return {b: (seen.get(b, (None, 0))[0] is None
                    or (now - seen[b][0]).total_seconds() > page.STALE_AFTER_S, seen.get(b, (None, 0))[1])
                for b in config.branches}

    live = LiveOverview(read_states)
    stop_long_polls = app.state.stop_long_polls

    def stopping() -> None:
        stop_long_polls()
        live.end_all()

    app.state.stop_long_polls = stopping

    @app.post("/api/v1/ingest")
    async def ingest(request: Request) -> JSONResponse:
        branch = config.branch_by_token(signin.token_of(request))
        if branch is None:
            return _error(401, "unauthorized", "This token is no branch's: check [central].token at the branch "
                                               "and [branches.<site id>].token here.")
        length = request.headers.get("content-length")
        if length is None or not length.isdigit() or int(length) > MAX_BATCH_BYTES:
            return _error(413, "too_large", f"A batch is at most {MAX_BATCH_BYTES} bytes, with its length given.")
        raw = await request.body()
        try:
            batch = parse_body(raw)
            if isinstance(batch, dict) and batch.get("branch") not in (None, branch.id):
                raise BatchRefused(403, "forbidden", f"This token is branch {branch.id!r}'s, not "
                                                     f"{batch.get('branch')!r}'s.")
            stored = await run_in_threadpool(_store, branch, batch)
        except BatchRefused as refused:
            extra = {"shipped": refused.shipped} if refused.shipped is not None else {}
            return _error(refused.status, refused.code, refused.message, **extra)
        shipped, config_wanted, staff_revision = stored
        # Every answer says which config version and staff accounts the branch should have: the branch fetches
        # them when they differ from its own (server/uplink/follow.py), so a round trip is the poll.
        return JSONResponse({"shipped": shipped.shipped, "applied": shipped.applied, "config": config_wanted,
                             "staff": staff_revision})

    def _store(branch: Branch, batch: Any) -> Any:
        with pool.connection() as db:
            stored = store_batch(db, branch.id, batch)
            return stored, site_configs.wanted(db, branch.id), staff_accounts.revision(db)

    @app.get("/api/v1/numbering")
    async def numbering(request: Request, day: Annotated[date, Query()]) -> JSONResponse:
        """A branch hub starting on a wiped or replaced disk asks where its numbers stand on its business day,
        so it never gives a number twice (``server/uplink/numbering.py``)."""
        branch = config.branch_by_token(signin.token_of(request))
        if branch is None:
            return _error(401, "unauthorized", "This token is no branch's.")

        def read() -> dict[str, int]:
            with pool.connection() as db:
                return {letter: top + 1 for letter, top in db.execute(
                    "SELECT letter, MAX(number) FROM tickets WHERE branch = %s AND day = %s GROUP BY letter",
                    (branch.id, day))}

        return JSONResponse({"branch": branch.id, "day": day.isoformat(), "next": await run_in_threadpool(read)})

    @app.get("/api/v1/health")
    async def health() -> JSONResponse:
        def probe() -> str:
            with pool.connection(timeout=5) as db:
                db.execute("SELECT 1")
            return "ok"

        def broker() -> dict[str, Any]:
            with pool.connection(timeout=5) as db:
                return read_nudge_link(db) or {"connected": False, "detail": "no worker has published yet"}

        try:
            database = await run_in_threadpool(probe)
        except Exception as exc:  # the page says what is wrong rather than a bare 500
            database = f"error: {exc}"
        ok = database == "ok"
        body = {"status": "ok" if ok else "degraded", "database": database, "version": __version__,
                "branches": len(config.branches)}
        if config.broker is not None and ok:
            # Shown, never a reason for "degraded": the nudges are hints, the branches follow over HTTPS.
            body["broker"] = {"url": config.broker.url, **await run_in_threadpool(broker)}
        return JSONResponse(body, status_code=200 if ok else 503)

    def read_overview(who: signin.Viewer, only: str | None = None) -> list[dict[str, Any]]:
        now = figures.utc_now()

        def shown(branch: str) -> bool:  # the viewer's branches (``only``: one of them)
            return who.sees(branch) and only in (None, branch)

        with pool.connection() as db:
            handovers = calendar.handover_states(db, calendar_now())  # the calendar's clock (a test's too)
            # Today's handover of the booking calendar (None: the branch is not in the centre's calendar)
            return [{**b, "calendar": handovers.get(b["branch"])} for b in figures.overview(db, config, now, shown)]

    def read_configs(who: signin.Viewer, only: str | None = None) -> dict[str, dict[str, Any]]:
        with pool.connection() as db:
            return {c["branch"]: c for c in site_configs.status(
                db, [b for b in config.branches if who.sees(b) and only in (None, b)])}

    @app.get("/api/v1/branches")
    async def branches(request: Request) -> JSONResponse:
        who = await viewer(request)
        if who is None:
            return _error(401, "unauthorized", "The centre's admin token or a staff sign-in is needed.")
        return JSONResponse({"centre": config.name, "branches": await run_in_threadpool(read_overview, who)})

    @app.get("/api/v1/branches/{branch_id}/summary")
    async def summary(request: Request, branch_id: str, start: Annotated[date | None, Query()] = None,
                      end: Annotated[date | None, Query()] = None, by: str = "") -> JSONResponse:
        who = await viewer(request)
        if who is None:
            return _error(401, "unauthorized", "The centre's admin token or a staff sign-in is needed.")
        branch = config.branches.get(branch_id)
        if branch is None or not who.sees(branch_id):
            return _error(404, "unknown_branch", f"There is no branch {branch_id!r}.")
        dims = tuple(d for d in by.split(",") if d)
        if any(d not in DIMENSIONS for d in dims):
            return _error(400, "by", f"by is a comma-separated list of {', '.join(DIMENSIONS)}.")
        today = figures.utc_now().astimezone(branch.site.timezone).date()
        lo, hi = start or today, end or start or today

        def compute() -> dict[str, Any]:
            with pool.connection() as db:
                result = figures.branch_summary(db, branch, lo, hi, dims)
                events = figures.read_events(db, branch, lo, hi)
            return {"branch": branch.id, "start": lo.isoformat(), "end": hi.isoformat(), "by": list(dims),
                    "total": result.total, "groups": result.groups, "events": events}

        return JSONResponse(await run_in_threadpool(compute))

    @app.get("/api/v1/summary")
    async def all_summary(request: Request, start: Annotated[date | None, Query()] = None,
                          end: Annotated[date | None, Query()] = None, branches: str = "",
                          by: str = "") -> JSONResponse:
        """Every branch (or ``branches=a,b``) side by side and all as one, by the branches' own definitions, from
        the per-day aggregates (central/rollup.py); ``by=day|weekday|month|service`` adds each one's groups."""
        who = await viewer(request)
        if who is None or who.branches is not None:  # all as one: for those who see every branch
            return _error(401, "unauthorized", "The centre's admin token or a sign-in that sees every branch is "
                                               "needed.")
        chosen = [b for b in branches.split(",") if b] or None
        unknown = [b for b in chosen or [] if b not in config.branches]
        if unknown:
            return _error(404, "unknown_branch", f"There is no branch {unknown[0]!r}.")
        if by and by not in rollup.GROUPINGS:
            return _error(400, "by", f"by is one of {', '.join(rollup.GROUPINGS)} across branches (the day "
                                     "aggregates keep no hour, desk or origin: a branch's own summary has those).")
        today = figures.utc_now().astimezone(figures.centre_zone(config)).date()
        lo, hi = start or today, end or start or today
        if hi < lo:
            return _error(400, "period", "end is before start.")

        def compute() -> dict[str, Any]:
            with pool.connection() as db:
                return figures.all_branches_summary(db, config, lo, hi, chosen, budget_s=SUMMARY_REFRESH_BUDGET_S,
                                                    by=by or None)

        return JSONResponse(await run_in_threadpool(compute))

    @app.get("/static/centre.js")
    async def live_script() -> Response:
        return Response(page.LIVE_JS, media_type="text/javascript; charset=utf-8",
                        headers={"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"})

    @app.get("/api/v1/overview/stream")
    async def overview_stream(request: Request) -> Response:
        """Server-sent events naming the viewer's branches as they change (central/live.py)."""
        who = await viewer(request)
        if who is None:
            return _error(401, "unauthorized", "The centre's admin token or a staff sign-in is needed.")
        listener = live.open(who.sees)
        if listener is None:
            return _error(503, "streams_full", f"This worker of the centre serves {live.limit} live overviews, as "
                                               "many as it takes at once (or it is stopping). Try again in a minute.")

        async def still_allowed() -> bool:
            try:
                now = await viewer(request)
            except Exception:  # the database away: the stream goes on (it reads nothing itself)
                return True
            return now is not None and now.branches == who.branches

        return EventStream(live, listener, still_allowed)

    @app.get("/overview/branches", response_class=HTMLResponse)
    async def overview_sections(request: Request, lang: str | None = None, branch: str = "") -> Response:
        """The overview's sections as HTML (``branch=``: that one only), for the live page to put in place."""
        who = await viewer(request)
        if who is None:
            return _error(401, "unauthorized", "Sign in again.")
        if branch and (branch not in config.branches or not who.sees(branch)):
            return _error(404, "unknown_branch", f"There is no branch {branch!r}.")
        now = figures.utc_now()
        rows = await run_in_threadpool(read_overview, who, branch or None)
        states = await run_in_threadpool(read_configs, who, branch or None)
        html = page.branch_sections(config, rows, page.language(config, lang), states, now)
        return HTMLResponse(html, headers={**page.HEADERS,
                                           "X-Vuoro-Updated": page.clock(figures.centre_zone(config), now)})

    @app.get("/", response_class=HTMLResponse)
    async def overview_page(request: Request, lang: str | None = None) -> Response:
        who = await viewer(request)
        if who is None:  # a person: to the sign-in page (automation uses the token)
            return RedirectResponse(f"/login?lang={page.language(config, lang)}", status_code=303)
        rows = await run_in_threadpool(read_overview, who)
        states = await run_in_threadpool(read_configs, who)
        lang = page.language(config, lang)
        top = signin.sign_out_form(who, lang) + page.menu(lang, "/", configure=signin.configures_any(who, config),
                                                          accounts=who.may_manage_accounts)
        return HTMLResponse(page.render(config, rows, lang, top=top, configs=states), headers=page.HEADERS_LIVE)

    return app


async def _heartbeat(parent: ParentLink) -> None:
    """Tell the parent (which feeds systemd's watchdog and replaces a worker that goes silent) that this worker's
    event loop AND its threads (where every database call runs) answer. Not the database itself: PostgreSQL away
    is answered 503 and a restart would not bring it back."""
    while True:
        try:
            await asyncio.wait_for(run_in_threadpool(lambda: None), SILENT_S / 2)
            parent.alive()
        except TimeoutError:
            log.error("the worker threads did not answer within %.0f s; not telling the parent", SILENT_S / 2)
        await asyncio.sleep(HEARTBEAT_S)


SHOW_WORKER_ENV = "VUORO_TEST_SHOW_WORKER"


class ShowWorker:
    """Tests only (``$VUORO_TEST_SHOW_WORKER``): every answer names the worker process's pid (``X-Vuoro-Worker``),
    so a test can prove two requests went to two workers."""

    def __init__(self, app: Any):
        self.app = app
        self.header = (b"x-vuoro-worker", str(os.getpid()).encode())

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)  # type: ignore[no-any-return]

        async def named(message: Any) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), self.header]
            await send(message)

        await self.app(scope, receive, named)
