"""The kiosk's MQTT link: live queue states in, presence and printer health out.

The kiosk subscribes to the hub's retained ``queue/+/state``,
``events/today`` and ``hub/status``, so the home screen shows the current
waits and an open "What's on" follows the programme without polling, and at
once after a (re)connect. It publishes its own retained
``devices/<id>/status`` with a last will (``online: false``), and its
printer's health through ``hardware.status.StatusPublisher`` so staff see
"kiosk1: out of paper".

paho runs its own network thread; callbacks here hand messages to the app
through ``post`` (the app's UI-thread hop).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt

from vuoro.mqtt import BrokerSettings, Will, make_client, settings_for
from vuoro.protocol import PayloadError, Topics, decode, offline_will

log = logging.getLogger("vuoro.kiosk.link")


class KioskLink:
    def __init__(self, broker: str | BrokerSettings, topics: Topics, device: str, *,
                 on_queue: Callable[[dict[str, Any]], None],
                 on_hub: Callable[[bool], None] | None = None,
                 on_events: Callable[[dict[str, Any]], None] | None = None,
                 username: str | None = None, password: str | None = None) -> None:
        from hardware.status import StatusPublisher

        self.topics, self.device = topics, device
        self.on_queue, self.on_hub, self.on_events = on_queue, on_hub, on_events
        # The last will tells staff the kiosk vanished (power cut, crash, network).
        self.client = make_client(settings_for(broker, username, password), client_id=f"vuoro-kiosk-{device}",
                                  name=f"kiosk {device}", keepalive=15, reconnect=(0.5, 5),
                                  will=Will(topics.device_status(device), offline_will(device, "kiosk")))
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.client.on_disconnect = self._on_disconnect
        self.publisher = StatusPublisher(self.client, topics, device, kind="kiosk")
        self.printer_health: Any = None  # the last hardware Health, published again on every connect
        self.connected = False  # while True the retained queue states arrive here: no need to ask GET /site

    def start(self) -> KioskLink:
        self.client.start()
        return self

    def stop(self) -> None:
        # A clean stop says "offline" itself: a will is only sent on an unclean loss.
        try:
            if self.connected:
                self.publisher.update(self.printer_health, online=False, force=True)
            self.client.disconnect()
        finally:
            self.client.loop_stop()

    def printer(self, health: Any) -> None:
        """Called with each printer reading (any thread): publish when it changes."""
        self.printer_health = health
        self.publisher.update(health)

    # -- paho callbacks (network thread) ---------------------------------------------
    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        if reason.is_failure:
            log.warning("broker refused the kiosk: %s", reason)
            return
        self.connected = True
        # Subscriptions are not kept by a restarted broker: subscribe on every connect.
        client.subscribe([(self.topics.queue_state("+"), 1), (self.topics.hub_status, 1),
                          (self.topics.events_today, 1)])
        self.publisher.update(self.printer_health, online=True, force=True)

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        self.connected = False  # paho reconnects by itself; until then the app asks GET /site

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        try:
            body = decode(message.payload)
        except PayloadError as exc:
            log.warning("ignoring %s: %s", message.topic, exc)
            return
        if message.topic == self.topics.hub_status:
            if self.on_hub is not None:
                self.on_hub(bool(body.get("online")))
        elif message.topic == self.topics.events_today:
            if self.on_events is not None and isinstance(body.get("events"), list):
                self.on_events(body)
        elif message.topic.endswith("/state") and isinstance(body.get("service"), str):
            self.on_queue(body)
