"""Statistics: the figures a site shares with its municipality (docs/statistics.md).

A hub plugin (its hooks: ``server/hookspecs.py``). One module per concept:

- ``figures``: the definitions, computed from rows (pure), and their CSV;
- ``reading``: the rows, read on a read-only connection of their own (``store.reader()``);
- ``records``: statistics' own tables and the device status history (downtime);
- ``routes``: the HTTP API and the ``/stats/`` page.

The figures' functions are also reachable from here (``stats.summarize``, ``stats.read_tickets``), as
gpiozero's package names its devices. This module plugs statistics into the hub: its tables, how a
device status change is written, and the ``device_status`` hook that records every change.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from server.engine import Outcome
from server.hookspecs import hookimpl
from server.stats import records
from server.stats.figures import (
    DEFAULT_TARGET_MIN,
    DIMENSIONS,
    FEEDBACK_DIMENSIONS,
    PRINTER_DOWN,
    SUMMARY_CSV_FIGURES,
    TICKET_CSV_COLUMNS,
    TICKET_FIELDS,
    DeviceChange,
    Feedback,
    LocalTime,
    Summary,
    TicketFacts,
    csv_text,
    day_hours,
    downtime,
    nearest_rank,
    period_utc,
    summarize,
    summarize_many,
    summary_csv_rows,
    ticket_csv_rows,
    ticket_facts,
)
from server.stats.reading import (
    read_bookings,
    read_device_changes,
    read_events,
    read_feedback,
    read_first_calls,
    read_tickets,
    table_exists,
)
from server.store import ts

if TYPE_CHECKING:
    from fastapi import FastAPI

    from server.hub import Hub

__all__ = [
    "DEFAULT_TARGET_MIN", "DIMENSIONS", "FEEDBACK_DIMENSIONS", "PRINTER_DOWN", "SUMMARY_CSV_FIGURES",
    "TICKET_CSV_COLUMNS", "TICKET_FIELDS", "DeviceChange", "Feedback", "LocalTime", "Summary", "TicketFacts",
    "csv_text", "day_hours", "downtime", "nearest_rank", "period_utc", "summarize", "summarize_many",
    "summary_csv_rows", "ticket_csv_rows", "ticket_facts", "read_bookings", "read_device_changes", "read_events",
    "read_feedback", "read_first_calls", "read_tickets", "table_exists",
]


@hookimpl
def store_schema() -> tuple[str, list[str]]:
    return records.SCHEMA_NAME, records.SCHEMA_STEPS


@hookimpl
def record_writers() -> dict[type, Any]:
    return {records.DeviceStatusRecord: records.write_device_status}


@hookimpl
def install(app: FastAPI, hub: Hub) -> None:
    from server.stats import routes  # the web stack only where there is an app: the figures need none

    site = hub.config.site_id

    def on_device_change(status: dict[str, Any]) -> None:
        record = records.DeviceStatusRecord(site=site, device=str(status.get("device")),
                                            kind=str(status.get("kind") or ""), at="",
                                            online=bool(status.get("online")), printer=status.get("printer"),
                                            detail=status.get("detail"))
        hub.submit(lambda engine, now: Outcome(records=[replace(record, at=ts(now))]))

    changes = records.DeviceChanges(hub.call(lambda engine, now: records.last_device_states(hub.store, site)),
                                    on_device_change)
    hub.plugins.register(changes)  # the device_status hook: every change of a device's state is recorded
    for status in list(hub.devices.values()):  # anything seen before the plugin was installed
        changes(status)
    routes.add_routes(app, hub)
