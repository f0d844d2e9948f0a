"""The screen's MQTT link: retained state in, presence out. Never polls.

One paho client per screen. It subscribes to what a screen draws
(``Topics.screen``: calls, the board, the site, events, the message, the hub's status) in
``on_connect`` (so a broker restart, which forgets subscriptions, is healed
by the reconnect itself), folds every message into a ``SignageState`` and
tells the UI and the announcer through callbacks. paho's own reconnect loop
retries every 0.5–2 s: the target is the full picture within 2 s of the
broker coming back.

Callbacks run on paho's network thread; the Kivy app hops to its main
thread itself.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt

from vuoro.mqtt import BrokerSettings, Will, make_client, settings_for
from vuoro.protocol import DeviceStatus, Topics, offline_will

from .state import SignageState, Update

log = logging.getLogger(__name__)

RECONNECT_MIN_S = 0.5
RECONNECT_MAX_S = 2.0


class SignageClient:
    """Keeps a ``SignageState`` in step with the broker, and says the screen is alive."""

    def __init__(
        self,
        broker: str | BrokerSettings,
        state: SignageState,
        *,
        device: str | None = None,
        on_update: Callable[[Update | None], None] | None = None,
        on_call: Callable[[dict[str, Any]], None] | None = None,
        username: str | None = None,
        password: str | None = None,
    ):
        self.state = state
        self.topics: Topics = state.topics
        self.device = device
        self.on_update = on_update
        self.on_call = on_call
        # The state is read by the UI thread while paho writes it: one lock.
        self.lock = threading.RLock()
        self.connected = threading.Event()
        self.connects = 0
        self._stopping = False
        self.client = make_client(
            settings_for(broker, username, password),
            client_id=f"vuoro-display-{device}" if device else "",
            name=f"screen {device}" if device else "the screen",
            keepalive=10,
            reconnect=(RECONNECT_MIN_S, RECONNECT_MAX_S),
            clean_session=True,  # missed calls are not replayed: the retained recent list tells them
            will=Will(self.topics.device_status(device), offline_will(device, "display")) if device else None,
        )
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message

    # -- lifecycle --------------------------------------------------------------
    def start(self) -> SignageClient:
        # connect_async + loop_start: the first connect is retried like any
        # reconnect, so a screen that boots before the broker just waits.
        self.client.start()
        return self

    def stop(self) -> None:
        self._stopping = True
        if self.device and self.client.is_connected():
            info = self.client.publish(
                self.topics.device_status(self.device),
                DeviceStatus(self.device, "display", online=False, detail="stopped").to_payload(),
                qos=1,
                retain=True,
            )
            with contextlib.suppress(RuntimeError, ValueError):
                info.wait_for_publish(2)
        self.client.disconnect()
        self.client.loop_stop()

    def wait_connected(self, timeout: float) -> bool:
        return self.connected.wait(timeout)

    # -- paho callbacks ------------------------------------------------------------
    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        if reason.is_failure:
            log.warning("broker refused the connection: %s", reason)
            return
        self.connects += 1
        # Subscribing here (not once at start) is what makes a broker restart
        # harmless: the retained messages come again with the new subscription.
        # Only what a screen draws (vuoro.protocol.SCREEN_SUFFIXES): per call, the call and (shortly after,
        # shared with the changes around it) one board, not the five messages of the whole tree.
        client.subscribe([(topic, 1) for topic in self.topics.screen])
        if self.device:
            client.publish(
                self.topics.device_status(self.device),
                DeviceStatus(self.device, "display", online=True).to_payload(),
                qos=1,
                retain=True,
            )
        with self.lock:
            self.state.link_online = True
        self.connected.set()
        log.info("connected to %s", self.client.address)
        self._notify(None)

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        self.connected.clear()
        with self.lock:
            self.state.link_online = False
        if not self._stopping:
            log.warning("lost the broker (%s); showing the last state and retrying", reason)
        self._notify(None)

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        try:
            with self.lock:
                update = self.state.apply(message.topic, message.payload, time.monotonic())
        except Exception:  # noqa: BLE001 - whatever a payload does, the screen keeps running
            log.exception("dropped a message on %s", message.topic)
            return
        if update is None:
            return
        if update.announce and update.call and self.on_call:
            try:
                self.on_call(update.call)
            except Exception:  # noqa: BLE001
                log.exception("announcer failed")
        self._notify(update)

    def _notify(self, update: Update | None) -> None:
        if self.on_update:
            try:
                self.on_update(update)
            except Exception:  # noqa: BLE001
                log.exception("screen update failed")
