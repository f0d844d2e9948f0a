"""The hub's plugin hooks: everything a plugin may add to the hub, declared in one file.

A plugin is a module named in ``server.plugins.DEFAULT_PLUGINS`` (or in ``create_app(plugins=…)``)
whose functions carry ``@hookimpl`` and are named after the hooks below; pluggy checks them
against these specifications when the module is registered, as pytest and Datasette do. The
staff page, bookings, events, statistics and feedback are plugins; so are the MQTT link and
the SSE streams, for ``announce``.

A plugin that keeps state for one hub (a book of bookings, a feed thread) makes an object in
its ``install`` and registers it with ``hub.plugins.register(obj)``; the object's
``@hookimpl`` methods then answer the hooks called on that hub (pytest's plugins do the same
in ``pytest_configure``).

When each hook is called, and on which thread, is said with each one. A hook may take fewer
arguments than its specification names (pluggy passes only those the implementation asks for).
The hub calls the hooks of a running site (``retained_state``, ``tick``, ``announce``,
``device_status``, ``stop``) one plugin at a time and logs a plugin that fails, so one
plugin's bug never silences another, nor stops the writer (``server.plugins.call_each``).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from fastapi import FastAPI, Request

    from server.auth import Principal
    from server.config import SiteConfig
    from server.engine import Outcome, QueueEngine
    from server.hub import Hub

PROJECT = "vuoro"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


# -- before anything starts -------------------------------------------------------------------------------------


@hookspec
def check_config(config: SiteConfig) -> None:
    """Check the plugin's own sections of the site config (``[bookings]``, ``[events]``, ``[staff]``): raise
    ``server.config.ConfigError`` with every problem, each with its key path.

    ``vuoro hub`` (and ``--check``) reports every plugin's problems with the core's, all at once, and refuses
    to start.
    """


@hookspec
def store_schema() -> tuple[str, list[str]]:
    """The plugin's tables: a schema name and its migration steps, applied in order and versioned apart from
    the core's (``SQLiteStore.migrate_plugin``). Applied on the writer thread before ``install``."""


@hookspec
def record_writers() -> dict[type, Callable[[sqlite3.Connection, Any], None]]:
    """How the plugin's records are written: ``{record type: fn(connection, record)}``.

    A command returns its records in ``Outcome.records``; the store's writer calls ``fn`` inside the batch's
    transaction, so a record is committed with the tickets of that batch or not at all. ``fn`` is the only
    code of a plugin that is handed the connection, and only by the writer (Datasette's ``execute_write_fn``).
    """


# -- when the app is made (server.api.create_app, main thread) --------------------------------------------------


@hookspec
def install(app: FastAPI, hub: Hub) -> None:
    """Add the plugin's routes and make its state for this hub.

    Runs once per app, after the plugin's tables exist. Anything that reads or writes the store goes through
    the writer (``hub.call``); routes hand their work to it with ``server.api.run`` and authenticate with
    ``server.auth``. State kept per hub lives in an object registered with ``hub.plugins.register``.
    """


@hookspec(firstresult=True)
def authenticate(request: Request) -> Principal | None:
    """Who sent a request that has no bearer token (the staff page's session cookie); None when it is not this
    plugin's to say. The first answer wins. May raise ``server.errors.ApiError`` (403) for a request it
    recognises and refuses (a change without the page's CSRF token)."""


@hookspec
def device_alerts() -> dict[str, list[dict[str, Any]]]:
    """Alerts to show with ``GET /api/v1/devices``, by device (principal) name: e.g. booking codes being guessed
    at a kiosk. Called on the event loop: answer from memory."""


# -- on the hub's writer thread ---------------------------------------------------------------------------------


@hookspec
def retained_state(engine: QueueEngine, now: datetime) -> dict[str, dict[str, Any]]:
    """Retained topics the plugin publishes, by topic suffix (``{"events/today": payload}``).

    Called after every batch that may have changed something; a payload is announced only when it differs
    from the last one, so return the same content when nothing changed (and keep it cheap: cache it).
    """


@hookspec
def tick(engine: QueueEngine, now: datetime) -> Outcome | tuple[Outcome, ...] | None:
    """Time-driven changes (no-shows, purging personal data): every ``TICK_SECONDS``, a command of its own for
    each plugin, committed like any other."""


@hookspec(firstresult=True)
def check_in(engine: QueueEngine, now: datetime, code: str, language: str,
             key: str) -> tuple[Outcome, dict[str, Any]] | None:
    """A visitor's code at the kiosk (``POST /api/v1/checkins``, normalised by ``server/codes.py``): the plugin
    whose code it is checks the visitor in and answers ``(outcome, answer)`` (``answer["replay"]``: the same
    check-in again, 200 rather than 201), or raises the refusal; None when the code is not the plugin's. Codes
    are one code space (``code_in_use``), so one plugin answers: a booking makes a queue ticket, an event
    sign-up records attendance. ``key`` is the request's Idempotency-Key."""


@hookspec
def code_in_use(code: str) -> bool:
    """Whether a short code (``server/codes.py``) is already the plugin's. Booking codes and event sign-up codes
    are one code space: a new code is one no plugin has."""


# -- on other threads -------------------------------------------------------------------------------------------


@hookspec
def announce(kind: str, name: str, payload: dict[str, Any]) -> None:
    """What the hub tells the outside after a commit: ``kind`` ``"state"`` (a retained topic suffix such as
    ``queue/kvik/state`` and its payload) or ``"call"`` (``calls`` and one call). Called on the writer thread
    after the COMMIT: be quick and never block (the MQTT link and the SSE streams only queue it)."""


@hookspec
def device_status(status: dict[str, Any]) -> None:
    """A device reported its presence or health (``devices/<id>/status``): called on the MQTT link's thread."""


@hookspec
def stop() -> None:
    """The hub is stopping: end the plugin's threads. Called on the main thread before the writer stops."""
