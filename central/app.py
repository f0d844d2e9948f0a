"""The centre's HTTP app: the branches' ingest, the overview API and the overview page.

- ``POST /api/v1/ingest``: a branch's batch of outbox rows (``Authorization: Bearer <the branch's token>``),
  stored in one transaction (``central/ingest.py``); answers ``{"shipped": n}``, the stream's position;
- ``GET /api/v1/numbering?day=``: a branch's next number per letter on that day (its own token), for a hub
  that starts on a wiped or replaced disk;
- ``GET /api/v1/branches``: every branch's last contact, backlog, lag and today's tickets per service;
- ``GET /api/v1/branches/{id}/summary``: one branch's statistics, the branch's own definitions;
- ``GET /api/v1/summary?start=&end=&branches=``: every branch's figures side by side, and all branches as one;
- ``GET /``: the overview as a page, in the centre's languages (``?lang=``);
- ``GET /api/v1/health``: whether the database answers.

Reading needs the centre's admin token (``Bearer``, or HTTP Basic with any user name and the token as the
password, so a browser asks for it): staff logins shared with the branches are still to come.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hmac
import logging
from collections.abc import AsyncIterator
from datetime import date
from typing import Annotated, Any

import psycopg
from fastapi import FastAPI, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse
from psycopg_pool import ConnectionPool, PoolTimeout

from central import figures, page
from central.config import Branch, CentreConfig
from central.ingest import BatchRefused, parse_body, store_batch
from server.stats.figures import DIMENSIONS
from vuoro import __version__, sd_notify

log = logging.getLogger("vuoro.central")

MAX_BATCH_BYTES = 32 * 1024 * 1024
# A cross-branch summary first aggregates its period's newest rows for at most this long; the rest is the
# background refresher's (every 15 s) and the answer's pending_days says so.
SUMMARY_REFRESH_BUDGET_S = 1.0  # 10,000 rows of a few hundred bytes, with room


def _error(status: int, code: str, message: str, **extra: Any) -> JSONResponse:
    headers = {"WWW-Authenticate": 'Basic realm="Vuoro centre"'} if status == 401 else None
    return JSONResponse({"error": code, "message": message, **extra}, status_code=status, headers=headers)


def create_app(config: CentreConfig, pool: ConnectionPool) -> FastAPI:
    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        heartbeat = asyncio.create_task(_heartbeat()) if sd_notify.enabled() else None
        sd_notify.ready(f"centre {config.name}: {len(config.branches)} branches")
        yield
        sd_notify.stopping()
        if heartbeat:
            heartbeat.cancel()

    app = FastAPI(title="Vuoro centre", version=__version__, docs_url=None, redoc_url=None, lifespan=lifespan)

    @app.exception_handler(psycopg.OperationalError)
    @app.exception_handler(PoolTimeout)
    async def database_away(request: Request, exc: Exception) -> JSONResponse:
        # PostgreSQL down or restarting: say so plainly; a branch keeps its rows and sends them again.
        return _error(503, "database_unavailable", "The centre's database cannot be reached just now; nothing was "
                                                   "stored. Branches keep their rows and send them again.")

    def bearer(request: Request) -> str:
        header = request.headers.get("authorization", "")
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "bearer":
            return value.strip()
        if scheme.lower() == "basic":
            try:
                return base64.b64decode(value.strip()).decode().partition(":")[2]
            except (ValueError, UnicodeDecodeError):
                return ""
        return ""

    def is_admin(request: Request) -> bool:
        return hmac.compare_digest(bearer(request).encode(), config.admin_token.encode())

    @app.post("/api/v1/ingest")
    async def ingest(request: Request) -> JSONResponse:
        branch = config.branch_by_token(bearer(request))
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
        return JSONResponse({"shipped": stored.shipped, "applied": stored.applied})

    def _store(branch: Branch, batch: Any) -> Any:
        with pool.connection() as db:
            return store_batch(db, branch.id, batch)

    @app.get("/api/v1/numbering")
    async def numbering(request: Request, day: Annotated[date, Query()]) -> JSONResponse:
        """A branch hub starting on a wiped or replaced disk asks where its numbers stand on its business day,
        so it never gives a number twice (``server/uplink/numbering.py``)."""
        branch = config.branch_by_token(bearer(request))
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

        try:
            database = await run_in_threadpool(probe)
        except Exception as exc:  # the page says what is wrong rather than a bare 500
            database = f"error: {exc}"
        ok = database == "ok"
        return JSONResponse({"status": "ok" if ok else "degraded", "database": database, "version": __version__,
                             "branches": len(config.branches)}, status_code=200 if ok else 503)

    def read_overview() -> list[dict[str, Any]]:
        with pool.connection() as db:
            return figures.overview(db, config, figures.utc_now())

    @app.get("/api/v1/branches")
    async def branches(request: Request) -> JSONResponse:
        if not is_admin(request):
            return _error(401, "unauthorized", "The centre's admin token is needed.")
        return JSONResponse({"centre": config.name, "branches": await run_in_threadpool(read_overview)})

    @app.get("/api/v1/branches/{branch_id}/summary")
    async def summary(request: Request, branch_id: str, start: Annotated[date | None, Query()] = None,
                      end: Annotated[date | None, Query()] = None, by: str = "") -> JSONResponse:
        if not is_admin(request):
            return _error(401, "unauthorized", "The centre's admin token is needed.")
        branch = config.branches.get(branch_id)
        if branch is None:
            return _error(404, "unknown_branch", f"There is no branch {branch_id!r}.")
        dims = tuple(d for d in by.split(",") if d)
        if any(d not in DIMENSIONS for d in dims):
            return _error(400, "by", f"by is a comma-separated list of {', '.join(DIMENSIONS)}.")
        today = figures.utc_now().astimezone(branch.site.timezone).date()
        lo, hi = start or today, end or start or today

        def compute() -> dict[str, Any]:
            with pool.connection() as db:
                result = figures.branch_summary(db, branch, lo, hi, dims)
            return {"branch": branch.id, "start": lo.isoformat(), "end": hi.isoformat(), "by": list(dims),
                    "total": result.total, "groups": result.groups}

        return JSONResponse(await run_in_threadpool(compute))

    @app.get("/api/v1/summary")
    async def all_summary(request: Request, start: Annotated[date | None, Query()] = None,
                          end: Annotated[date | None, Query()] = None, branches: str = "") -> JSONResponse:
        """Every branch (or ``branches=a,b``) side by side and all as one, by the branches' own definitions, from
        the per-day aggregates (central/rollup.py)."""
        if not is_admin(request):
            return _error(401, "unauthorized", "The centre's admin token is needed.")
        chosen = [b for b in branches.split(",") if b] or None
        unknown = [b for b in chosen or [] if b not in config.branches]
        if unknown:
            return _error(404, "unknown_branch", f"There is no branch {unknown[0]!r}.")
        zone = next(iter(config.branches.values())).site.timezone if config.branches else None
        today = figures.utc_now().astimezone(zone).date()
        lo, hi = start or today, end or start or today

        def compute() -> dict[str, Any]:
            with pool.connection() as db:
                return figures.all_branches_summary(db, config, lo, hi, chosen, budget_s=SUMMARY_REFRESH_BUDGET_S)

        return JSONResponse(await run_in_threadpool(compute))

    @app.get("/", response_class=HTMLResponse)
    async def overview_page(request: Request, lang: str | None = None) -> HTMLResponse:
        if not is_admin(request):
            return HTMLResponse(page.login_needed(config, lang), status_code=401,
                                headers={"WWW-Authenticate": 'Basic realm="Vuoro centre"'})
        return HTMLResponse(page.render(config, await run_in_threadpool(read_overview), lang),
                            headers=page.HEADERS)

    return app


async def _heartbeat() -> None:
    """Feed systemd's watchdog while the event loop AND the worker threads (where every database call runs)
    answer. Not the database itself: PostgreSQL away is answered 503 and a restart would not bring it back."""
    interval = sd_notify.watchdog_interval() or 10.0
    while True:
        try:
            await asyncio.wait_for(run_in_threadpool(lambda: None), interval)
            sd_notify.watchdog()
        except TimeoutError:
            log.error("the worker threads did not answer within %.0f s; not feeding the watchdog", interval)
        await asyncio.sleep(interval)
