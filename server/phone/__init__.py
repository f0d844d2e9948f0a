"""A ticket from the visitor's own phone: a QR by the door, a page in the visitor's language, no app.

A hub plugin (its hooks: ``server/hookspecs.py``; the visitor's side: docs/phone.md):

- the screens show a QR of ``/phone/?d=<door code>``; the code changes every ``[phone] code_every_s``
  (``door.py``), published as the retained ``phone/door`` topic, so only someone in the house has one;
- ``POST /api/v1/phone/tickets`` takes a ticket with a current code, through the engine's ``issue`` (the
  kiosk's opening hours and booking-only rules), once per Idempotency-Key, a few per address (``routes.py``);
- the ticket then lives on the "your place" page (``/signage/ticket.html``), which can also leave the
  queue (``POST /api/v1/track/<token>/leave``, the engine's ``leave``) and says when the turn is near.

The site's secret for the codes is made once at random in the store (``phone_secret``), so codes survive a
restart and every worker of the hub agrees on them.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from server.hookspecs import hookimpl
from server.phone.settings import parse_settings

if TYPE_CHECKING:
    from fastapi import FastAPI

    from server.config import SiteConfig
    from server.hub import Hub

SCHEMA = [
    """
    CREATE TABLE phone_secret (
        secret BLOB NOT NULL CHECK (length(secret) = 32)
    );
    INSERT INTO phone_secret (secret) VALUES (randomblob(32));
    """,
]


@hookimpl
def check_config(config: SiteConfig) -> None:
    from server.config import ConfigError
    from server.phone import notify

    problems: list[str] = []
    for check in (parse_settings, notify.parse_settings):  # every problem of both sections at once
        try:
            check(config)
        except ConfigError as exc:
            problems += exc.problems
    if problems:
        raise ConfigError(problems, str(config.path))


@hookimpl
def store_schema() -> tuple[str, list[str]]:
    return "phone", SCHEMA


@hookimpl
def install(app: FastAPI, hub: Hub) -> None:
    from server.phone import routes  # the web stack only where there is an app

    door = routes.add_routes(app, hub)
    hub.plugins.register(DoorState(door))
    notifier = routes.add_notify_routes(app, hub)
    if notifier is not None:
        hub.plugins.register(NotifyHooks(notifier))


class DoorState:
    """Publishes the current door code as ``phone/door`` (the hub announces it only when it changes)."""

    def __init__(self, door: Any):
        self.door = door

    @hookimpl
    def retained_state(self, now: datetime) -> dict[str, dict[str, Any]]:
        from vuoro.protocol import PHONE_DOOR_SUFFIX

        return {PHONE_DOOR_SUFFIX: self.door.payload(now)}


class NotifyHooks:
    """The notifier's part in a running hub: decide after each batch, alert staff, stop with the hub."""

    def __init__(self, notifier: Any):
        self.notifier = notifier

    @hookimpl
    def retained_state(self, engine: Any) -> dict[str, dict[str, Any]]:
        # Called on the writer thread after every batch that may have changed something: the moment to see
        # who is now near or called. Publishes no topic of its own.
        self.notifier.watch(engine)
        return {}

    @hookimpl
    def device_alerts(self) -> dict[str, list[dict[str, Any]]]:
        failures = list(self.notifier.failures)
        return {"notify": failures} if failures else {}

    @hookimpl
    def stop(self) -> None:
        self.notifier.stop()
