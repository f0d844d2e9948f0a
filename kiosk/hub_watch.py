"""The kiosk's picture of the hub: its services and queue states, and whether it answers.

``GET /site`` once at start (the services, their names, the site's id for
the MQTT topics). After that the queue states arrive over MQTT (the hub's
retained ``queue/+/state``), so ``GET /site`` is asked again only while
MQTT is not delivering them — no broker configured, or the link down:
every ``refresh_seconds``, and after each ticket or refusal. While the hub
does not answer, a health probe every ``probe_seconds``; when it answers,
``GET /site`` brings everything back.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .client import HubAnswer
from .session import Session, every


class HubWatch:
    def __init__(self, session: Session, *, mqtt_up: Callable[[], bool], on_site: Callable[[], None]) -> None:
        self.session = session
        self.mqtt_up = mqtt_up  # True while the MQTT link is connected and so delivering queue states
        self.on_site = on_site
        self._refresh: Any = None
        self._probe: Any = None
        self._stopped = False

    def start(self) -> None:
        self.session.bind(hub_ok=self._hub_ok, on_queues_changed=lambda *_a: self.refresh_unless_mqtt())
        self._refresh = every(self.session.config.refresh_seconds, self.refresh_unless_mqtt)
        self.refresh()

    def stop(self) -> None:
        self._stopped = True
        for event in (self._refresh, self._probe):
            if event is not None:
                event.cancel()
        self._refresh = self._probe = None

    def refresh_unless_mqtt(self) -> None:
        if not self.mqtt_up():
            self.refresh()

    def refresh(self) -> None:
        self.session.run(self.session.client.site, self._answered)

    def _answered(self, answer: HubAnswer | None) -> None:
        session = self.session
        if answer is None or answer.broken or not isinstance(answer.body, dict):
            session.hub_down()
            return
        session.site = answer.body
        queues = {q["service"]: q for q in answer.body.get("queues") or []
                  if isinstance(q, dict) and isinstance(q.get("service"), str)}
        session.queues = {**session.queues, **queues}
        session.hub_up()
        self.on_site()

    # -- while the hub does not answer ----------------------------------------------------------
    def _hub_ok(self, _session: Session, ok: bool) -> None:
        if not ok and self._probe is None and not self._stopped:
            self._probe = every(self.session.config.probe_seconds, self._probe_once)
        elif ok and self._probe is not None:
            self._probe.cancel()
            self._probe = None

    def _probe_once(self) -> None:
        self.session.run(self.session.client.health, self._probed)

    def _probed(self, answer: HubAnswer | None) -> None:
        if answer is not None and answer.status is not None and answer.status < 500:
            self.refresh()  # the hub is up once GET /site has answered
