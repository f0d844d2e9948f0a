"""Publish a kiosk's (or a stand-alone printer's) health for staff.

The kiosk owns the paho-mqtt client and its last will
(``vuoro.protocol.offline_will``); this only publishes the retained
``devices/<device>/status`` message when what staff should see changes, so
the staff page can say "kiosk 1: paper low". Hook it to a printer with
``printer.on_health(publisher.update)``.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from vuoro.protocol import DeviceStatus, Topics

from .health import Health

log = logging.getLogger(__name__)


class StatusPublisher:
    def __init__(self, client: Any, topics: Topics, device: str, kind: str = "kiosk", qos: int = 1) -> None:
        """``client``: a connected (or connecting) ``paho.mqtt.client.Client``, VERSION2 callbacks."""
        if kind not in ("kiosk", "printer"):
            raise ValueError("kind must be 'kiosk' or 'printer'")
        self.client, self.topics, self.device, self.kind, self.qos = client, topics, device, kind, qos
        self._last: tuple[bool, str | None, str | None] | None = None
        self._sent: Any = None  # paho's MQTTMessageInfo of the last publish
        self._lock = threading.Lock()

    @property
    def topic(self) -> str:
        return self.topics.device_status(self.device)

    def update(self, health: Health | None, *, online: bool = True, force: bool = False) -> bool:
        """Publish when (online, printer state, detail) differs from the last publish. True if sent."""
        state = health.state if health else None
        detail = None if health is None or health.state == "ok" else health.detail
        key = (online, state, detail)
        with self._lock:
            if key == self._last and not force:
                return False
            status = DeviceStatus(self.device, self.kind, online, state, detail, time.time())
            info = self.client.publish(self.topic, status.to_payload(), qos=self.qos, retain=True)
            if getattr(info, "rc", 0) != 0:  # not connected: try again on the next update
                log.warning("device status not published (rc=%s)", info.rc)
                return False
            self._last, self._sent = key, info
            return True

    def wait_acknowledged(self, timeout: float) -> bool:
        """Wait until the broker holds the last status published (its PUBACK at QoS 1; paho's network thread
        sends it some time after ``update`` returns). Only then does a client joining later read it as the
        retained message. True if it does, or if nothing was published yet."""
        with self._lock:
            sent = self._sent
        if sent is None:
            return True
        try:
            sent.wait_for_publish(timeout)
            return bool(sent.is_published())
        except (RuntimeError, ValueError):  # lost with the connection, or never queued
            return False

    def republish(self) -> bool:
        """Send the last status again, e.g. from the client's on_connect after a broker restart."""
        with self._lock:
            last = self._last
            self._last = None
        if last is None:
            return False
        online, state, detail = last
        health = Health(state, detail or "ready") if state else None
        return self.update(health, online=online, force=True)
