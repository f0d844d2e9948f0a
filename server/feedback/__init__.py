"""Visitor feedback: a tablet by the exit (``/feedback/``) and ``POST /api/v1/feedback``; counted in statistics.

A hub plugin (its hooks: ``server/hookspecs.py``). A rating is one tap on a face (1 = very unhappy …
5 = very happy; a three-face screen sends 1, 3 and 5), an optional service, the device it came from
and a time: no personal data is taken or kept. It travels as a ``FeedbackRecord`` in
``Outcome.records`` and is committed by the writer like a ticket, into statistics' table
``stats_feedback`` (statistics' schema, ``server/stats/records.py``, which this plugin applies too,
so either plugin may be installed alone). Each device may rate ``FEEDBACK_BURST`` times at once,
then once every ``FEEDBACK_EVERY_S`` seconds (``routes.py``, on ``server.throttle.Bucket``). A rating sent
with an ``Idempotency-Key`` and sent again with it (the tablet's answer was lost with its connection) counts once.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from server.hookspecs import hookimpl
from server.stats.records import SCHEMA_NAME, SCHEMA_STEPS

if TYPE_CHECKING:
    from fastapi import FastAPI

    from server.hub import Hub


@dataclass(frozen=True)
class FeedbackRecord:
    site: str
    at: str  # ISO 8601 UTC
    rating: int
    faces: int = 5
    service: str | None = None
    device: str | None = None
    request_key: str | None = None  # ``<who>:<Idempotency-Key>``: the same rating sent again is not counted again


def write_feedback(db: sqlite3.Connection, r: FeedbackRecord) -> None:
    db.execute("INSERT INTO stats_feedback (site, at, rating, faces, service, device, request_key) "
               "VALUES (?, ?, ?, ?, ?, ?, ?) "
               "ON CONFLICT (request_key) WHERE request_key IS NOT NULL DO NOTHING",
               (r.site, r.at, r.rating, r.faces, r.service, r.device, r.request_key))


@hookimpl
def store_schema() -> tuple[str, list[str]]:
    return SCHEMA_NAME, SCHEMA_STEPS


@hookimpl
def record_writers() -> dict[type, Any]:
    return {FeedbackRecord: write_feedback}


@hookimpl
def install(app: FastAPI, hub: Hub) -> None:
    from server.feedback import routes  # the web stack only where there is an app: the records need none

    routes.add_routes(app, hub)
