"""The centre's API for central configuration and staff accounts.

For the municipality (the admin token; automation, or an admin's script):

- ``POST /api/v1/branches/{id}/config``: publish a new version of the branch's site file (the TOML text as the
  body). Refused (422) only when no branch could take it (not TOML, another site's id, over 256 kB); otherwise
  stored as the next version, with what the centre's own run of the hub's loader found as ``advice``: the branch
  runs its own loader, on its own machine, and is the judge;
- ``GET /api/v1/branches/{id}/config?version=``: a version's text;
- ``PUT /api/v1/staff/{name}`` (``{role, password_hash | password, branches, desks, disabled}``),
  ``DELETE /api/v1/staff/{name}``, ``GET /api/v1/staff`` (without hashes).

For everyone who may read (the token, or a signed-in account for its branches):

- ``GET /api/v1/configs``: per branch the version wanted, the version it runs on, a refusal and its reasons.

For the branches (each with its own token):

- ``GET /api/v1/branch/config``: the newest version for this branch (404 when none was published);
- ``POST /api/v1/branch/config/report``: which version it runs on, and a refusal with its key-path problems;
- ``GET /api/v1/branch/staff``: the accounts that work at this branch, with their hashes, and the revision;
- ``GET /api/v1/branch/changes?config=<version>&staff=<revision>``: a long poll. Answers at once when the
  newest config version or the staff revision differs from the ones given, else when one changes (a publish or
  an account change sends ``NOTIFY`` in its transaction: every worker process hears it, ``central/coordination.py``,
  and wakes its polls, which read again), else after ``LONG_POLL_S`` with the same. This is how a connected branch
  hears of a new version within a moment, without waiting for its next uplink round trip.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from psycopg_pool import ConnectionPool

from central import configs
from central import staff as accounts
from central.config import CentreConfig

LONG_POLL_S = 25.0  # a branch's long poll answers after this at the latest (its read timeout is longer)


def _error(status: int, code: str, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": code, "message": message, **extra}, status_code=status)


def install(app: FastAPI, config: CentreConfig, pool: ConnectionPool) -> None:
    def branch_of(request: Request) -> Any:
        return config.branch_by_token(token(request))

    def token(request: Request) -> str:
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        return value.strip() if scheme.lower() == "bearer" else ""

    def run(work: Any, *args: Any) -> Any:
        def inner() -> Any:
            with pool.connection() as db:
                return work(db, *args)

        return run_in_threadpool(inner)

    waiting: set[asyncio.Event] = set()  # this worker's long polls of the branches

    def changed() -> None:
        """Wake every long poll of this worker: it reads again (a change here or, through ``NOTIFY``, anywhere)."""
        for event in list(waiting):
            event.set()

    app.state.wake_long_polls = changed  # called (in the loop) when the worker's coordinator hears a change
    stopping: list[bool] = []

    def stop_long_polls() -> None:
        """The worker is stopping: answer every long poll now with what is current. Held to its 25 s, each
        made uvicorn's graceful stop wait its whole 3 s and then cut the branch off without an answer."""
        stopping.append(True)
        changed()

    app.state.stop_long_polls = stop_long_polls  # called (in the loop) as the worker's server begins to stop

    async def signed_out(name: str) -> None:
        """An account changed or gone: its sessions on the centre's pages end (it signs in again, as it now is)."""
        await run_in_threadpool(app.state.centre_sessions.end_for, name)

    async def admin_only(request: Request) -> JSONResponse | None:
        who = await app.state.viewer(request)
        if who is None or not who.admin:
            return _error(401, "unauthorized", "Publishing configs and changing accounts needs the centre's admin "
                                               "token.")
        return None

    # -- the municipality --------------------------------------------------------------------------

    @app.post("/api/v1/branches/{branch_id}/config")
    async def publish(request: Request, branch_id: str) -> JSONResponse:
        if (refused := await admin_only(request)) is not None:
            return refused
        branch = config.branches.get(branch_id)
        if branch is None:
            return _error(404, "unknown_branch", f"There is no branch {branch_id!r}.")
        raw = await request.body()
        if len(raw) > configs.MAX_CONFIG_BYTES:
            return _error(422, "not_publishable", "The site file is too large.", problems=["too large"])
        try:
            text = raw.decode("utf-8")
            if request.headers.get("content-type", "").startswith("application/json"):
                text = json.loads(text)["text"]
            advice = await run_in_threadpool(configs.centre_check, text, branch_id, branch.site.path)
        except configs.NotPublishable as exc:
            return _error(422, "not_publishable", "No branch could take this site file.", problems=exc.problems)
        except (UnicodeDecodeError, ValueError, KeyError, TypeError):
            return _error(422, "not_publishable", "Send the site file's TOML text (UTF-8) as the body, or JSON "
                                                  "{\"text\": …}.", problems=["body"])
        published = await run(configs.publish, branch_id, text, "admin token", advice)
        changed()
        return JSONResponse({"branch": branch_id, "version": published.version, "checksum": published.checksum,
                             "advice": advice}, status_code=201)

    @app.get("/api/v1/branches/{branch_id}/config")
    async def read_version(request: Request, branch_id: str, version: int | None = None) -> Response:
        if (refused := await admin_only(request)) is not None:
            return refused
        found = await run(configs.newest, branch_id, version)
        if found is None:
            return _error(404, "no_config", "No such version was published for this branch.")
        return JSONResponse(found)

    @app.get("/api/v1/configs")
    async def config_states(request: Request) -> JSONResponse:
        who = await app.state.viewer(request)
        if who is None:
            return _error(401, "unauthorized", "The centre's admin token or a staff sign-in is needed.")
        states = await run(configs.status, [b for b in config.branches if who.sees(b)])
        return JSONResponse({"branches": states})

    @app.put("/api/v1/staff/{name}")
    async def put_account(request: Request, name: str) -> JSONResponse:
        if (refused := await admin_only(request)) is not None:
            return refused
        try:
            account = await run_in_threadpool(accounts.parse_account, name, await request.json(),
                                              set(config.branches))
        except ValueError as exc:
            return _error(422, "invalid_account", str(exc))
        revision = await run(accounts.put, account)
        changed()
        await signed_out(name)
        return JSONResponse({"name": name, "revision": revision})

    @app.delete("/api/v1/staff/{name}")
    async def delete_account(request: Request, name: str) -> JSONResponse:
        if (refused := await admin_only(request)) is not None:
            return refused
        if not await run(accounts.delete, name):
            return _error(404, "unknown_account", f"There is no account {name!r}.")
        changed()
        await signed_out(name)
        return JSONResponse({"name": name, "deleted": True})

    @app.get("/api/v1/staff")
    async def list_accounts(request: Request) -> JSONResponse:
        if (refused := await admin_only(request)) is not None:
            return refused
        return JSONResponse({"accounts": await run(accounts.listing)})

    # -- the branches ---------------------------------------------------------------------------

    @app.get("/api/v1/branch/config")
    async def branch_config(request: Request) -> JSONResponse:
        branch = config.branch_by_token(token(request))
        if branch is None:
            return _error(401, "unauthorized", "This token is no branch's.")
        found = await run(configs.newest, branch.id)
        if found is None:
            return _error(404, "no_config", "No config was published for this branch: it runs on its own file.")
        return JSONResponse(found)

    @app.post("/api/v1/branch/config/report")
    async def branch_report(request: Request) -> JSONResponse:
        branch = config.branch_by_token(token(request))
        if branch is None:
            return _error(401, "unauthorized", "This token is no branch's.")
        try:
            report = configs.parse_report(await request.json())
        except (ValueError, json.JSONDecodeError) as exc:
            return _error(422, "invalid_report", str(exc))
        await run(configs.store_report, branch.id, report)
        return JSONResponse({"branch": branch.id, "stored": True})

    @app.get("/api/v1/branch/staff")
    async def branch_staff(request: Request) -> JSONResponse:
        branch = config.branch_by_token(token(request))
        if branch is None:
            return _error(401, "unauthorized", "This token is no branch's.")
        return JSONResponse(await run(accounts.for_branch, branch.id))

    def current(db: Any, branch: str) -> tuple[dict[str, Any] | None, int]:
        return configs.wanted(db, branch), accounts.revision(db)

    @app.get("/api/v1/branch/changes")
    async def branch_changes(request: Request, config: int = -1, staff: int = -1) -> JSONResponse:
        branch = branch_of(request)
        if branch is None:
            return _error(401, "unauthorized", "This token is no branch's.")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + LONG_POLL_S
        while True:
            event = asyncio.Event()
            waiting.add(event)  # before reading: a change after the read wakes us
            try:
                wanted, revision = await run(current, branch.id)
                version = wanted["version"] if wanted else 0
                left = deadline - loop.time()
                if version != config or revision != staff or left <= 0 or stopping or await request.is_disconnected():
                    return JSONResponse({"config": wanted, "staff": revision})
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(event.wait(), timeout=left)
            finally:
                waiting.discard(event)
