"""The hub's MQTT side: publish state and calls, take button presses and device status.

Retained state is republished whole on every (re)connect, so a broker that
restarted without persistence still ends up with the full picture. Calls go
out as QoS 1 events. Nothing is published while the broker is away: the
republish on reconnect carries every change, and calls made meanwhile show in
the retained recent list instead of being replayed as new events half a minute
late (screens would speak them). Anything malformed that arrives is logged and
dropped: a bad payload must never stop the hub.

The hub is one per site (server.presence): it says who it is in
``hub/status`` and ``hub/alive`` (every HUB_ALIVE_SECONDS), can look for
another hub before it connects, and gives way to one that started earlier.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

import paho.mqtt.client as mqtt

from server import presence
from server.config import SiteConfig
from server.engine import Outcome, QueueEngine, Refusal
from server.hookspecs import hookimpl
from server.hub import Hub
from vuoro import __version__, protocol
from vuoro.mqtt import BrokerSettings, BrokerUnavailable, Will, make_client
from vuoro.payloads import BOARD_SECONDS, in_board
from vuoro.protocol import BOARD_SUFFIX, HUB_ALIVE_SECONDS, HubStatus, PayloadError, Topics

log = logging.getLogger("vuoro.mqtt")

LOOK_RETRY_SECONDS = 2.0


class MqttLink:
    """``start(look_first=True)`` first checks that no other hub of the site is alive on the broker
    (server.presence), then connects; ``on_conflict`` hears it when this hub must give way."""

    def __init__(self, hub: Hub, config: SiteConfig, *, client_id: str | None = None,
                 identity: HubStatus | None = None, settings: BrokerSettings | None = None):
        self.hub = hub
        self.config = config
        self.topics = Topics(config.site_id, config.topic_root)
        # On a deployed broker (deploy/mosquitto) anonymous clients are refused: the installers
        # put the hub's user and password in /etc/vuoro/hub.env, which systemd hands us.
        self.settings = settings or config.mqtt_settings()
        self.address = self.settings.address
        self.me = identity or HubStatus(True, f"{socket.gethostname()}:{uuid.uuid4().hex}", time.time(), __version__)
        self.connected = threading.Event()
        self.conflict: str | None = None  # why this hub gave way to another, once it has
        self.on_conflict: list[Callable[[str], None]] = []
        # The centre's config/nudge, down the bridge (docs/central.md): whoever follows the centre's config
        # listens here to look sooner. Only a hint: what to fetch always comes from the centre over HTTPS.
        self.on_config_nudge: list[Callable[[protocol.ConfigNudge], None]] = []
        self._connects = 0
        self._stopping = threading.Event()
        # start() of the client and stop() one at a time: a stop right after the start (a restart in place onto the
        # centre's config) joined paho's loop thread before it was started (RuntimeError, the hub exited 1)
        self._client_lock = threading.Lock()
        self._lock = threading.Lock()  # publishing the full state and a change must not interleave
        self._board_due = threading.Event()  # a state the screens' board carries changed
        self._call_unseen = False  # a call went out and the hub's view does not show it yet
        # Back within a second of the broker: screens must be right ≤ 2 s after it returns (shared/targets.md).
        self.client = make_client(
            self.settings, client_id=client_id or f"{config.topic_root}-hub-{config.site_id}", name="the hub",
            will=Will(self.topics.hub_status, self._status(False)), keepalive=15, reconnect=(0.5, 1),
            max_queued=10000)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        hub.plugins.register(self)  # for announce: every change after a commit goes out (see _on_hub_change)

    def _status(self, online: bool) -> bytes:
        return HubStatus(online, self.me.instance, self.me.started, __version__).to_payload()

    def start(self, *, look_first: bool = False) -> None:
        # In the background: the hub starts and serves HTTP even if the broker is not up yet; paho
        # keeps trying. With look_first, the look for another hub comes before the first connect.
        threading.Thread(target=self._run, args=(look_first,), name="vuoro-mqtt-start", daemon=True).start()

    def _run(self, look_first: bool) -> None:
        while look_first and not self._stopping.is_set():
            try:
                presence.look_for_another_hub(self.settings, self.topics, self.me, zone=self.config.timezone)
                break
            except BrokerUnavailable:
                self._stopping.wait(LOOK_RETRY_SECONDS)
            except presence.AnotherHub as exc:
                self._give_way(str(exc))
                return
        if self._stopping.is_set():
            return
        threading.Thread(target=self._send_boards, name="vuoro-mqtt-board", daemon=True).start()
        with self._client_lock:
            if self._stopping.is_set():  # stop() came first: it has left no client behind, start none
                return
            self.client.start()
        while not self._stopping.wait(HUB_ALIVE_SECONDS):
            if self.connected.is_set():  # the heartbeat a starting hub listens for (server.presence)
                self.client.publish(self.topics.hub_alive, self._status(True), qos=0, retain=False)

    def stop(self) -> None:
        self._stopping.set()
        self._board_due.set()  # let the board thread see it
        if self.connected.is_set() and self.conflict is None:
            self.client.publish(self.topics.hub_status, self._status(False), qos=1, retain=True).wait_for_publish(2)
        with self._client_lock:
            self.client.disconnect()
            self.client.loop_stop()

    def _give_way(self, message: str) -> None:
        """Another hub keeps the site: leave the broker without a word (our status is not the truth)."""
        if self.conflict is not None:
            return
        self.conflict = message
        self._stopping.set()
        self._board_due.set()
        self.connected.clear()
        self.client.disconnect()
        log.critical("%s", message)
        for listener in list(self.on_conflict):
            listener(message)

    # -- paho callbacks (paho's network thread) --------------------------------------

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        if reason.is_failure:
            log.warning("broker refused the hub: %s", reason)
            return
        self._connects += 1
        client.subscribe([(self.topics.all_button_presses, 1), (self.topics.all_device_status, 1),
                          (self.topics.hub_status, 1), (self.topics.hub_alive, 0),
                          *([(self.topics.config_nudge, 0)] if self.config.central else [])])
        with self._lock:
            # Connected before the republish, under the lock: a change either is in it or follows it.
            self.connected.set()
            client.publish(self.topics.hub_status, self._status(True), qos=1, retain=True)
            client.publish(self.topics.hub_alive, self._status(True), qos=0, retain=False)
            for name, payload in self.hub.retained_state().items():
                self._publish_state(name, payload)
            self._publish_state(BOARD_SUFFIX, self.hub.board())
        log.info("connected to the broker at %s", self.address)

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        self.connected.clear()
        if not self._stopping.is_set():
            log.warning("lost the broker (%s); reconnecting", reason)

    def _on_hub_presence(self, message: mqtt.MQTTMessage) -> None:
        """Another instance's status: after a reconnect (it came while we were away) or live (both on)."""
        other = presence.rival(self.me, message.payload)
        if other is None or (message.retain and self._connects <= 1):
            return  # ourselves, or what the start-up look already judged (left over)
        if self.me.precedes(other):
            log.warning("another hub of this site (%s) is on the broker; it started later, so it will stop",
                        other.instance)
            return
        self._give_way(presence.another_hub_message(self.me, other, self.config.site_id, str(self.address),
                                                    self.config.timezone, running=True))

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        try:
            if message.topic in (self.topics.hub_status, self.topics.hub_alive):
                self._on_hub_presence(message)
            elif message.topic == self.topics.config_nudge:
                self._on_config_nudge(message)
            elif message.topic.endswith("/press"):
                self._on_press(message)
            elif message.topic.endswith("/status"):
                self._on_device_status(message)
        except PayloadError as exc:
            log.warning("dropped a malformed message on %s: %s", message.topic, exc)
            if message.topic.endswith("/press"):
                self._refuse_malformed_press(message, exc)
        except Exception:
            log.exception("dropped a message on %s", message.topic)

    # -- incoming ---------------------------------------------------------------------

    def _on_config_nudge(self, message: mqtt.MQTTMessage) -> None:
        if not message.payload:
            return  # the centre cleared its retained nudge
        nudge = protocol.parse_config_nudge(message.payload)
        log.info("the centre holds config version %d (%s) and staff revision %s for this branch", nudge.version,
                 nudge.checksum[:20], nudge.staff)
        for listener in list(self.on_config_nudge):
            listener(nudge)

    def _on_device_status(self, message: mqtt.MQTTMessage) -> None:
        status = protocol.parse_device_status(message.payload)
        if self.topics.segment(message.topic, 1) != status.device:
            raise PayloadError("device id in the payload does not match the topic")
        # What a device is comes from the site config, never from what it says of itself: a kiosk must
        # not pass for a printer on the staff page, and a stranger must not add itself to the list.
        known = self.config.devices.get(status.device)
        if known is None:
            raise PayloadError(f"{status.device!r} is not a device of this site")
        if status.kind != known.kind:
            log.warning("%s says it is a %s; the site config says %s", status.device, status.kind, known.kind)
        self.hub.record_device({
            "device": status.device, "kind": known.kind, "online": status.online, "printer": status.printer,
            "detail": status.detail, "at": status.at or time.time(),
        })

    def _refuse_malformed_press(self, message: mqtt.MQTTMessage, error: PayloadError) -> None:
        """Answer a press we could not take, when it says who it is: the box shows the failure at once
        instead of waiting out its timeout."""
        try:
            counter = self.topics.segment(message.topic, 1)
            press_id = protocol.decode(message.payload).get("press_id")
        except PayloadError:
            return
        if isinstance(press_id, str) and 1 <= len(press_id) <= 64 and protocol.ID_PATTERN.match(counter):
            self.client.publish(self.topics.button_result(counter),
                                protocol.button_result(press_id, False, reason=f"press refused: {error}"), qos=1)

    def _on_press(self, message: mqtt.MQTTMessage) -> None:
        press = protocol.parse_button_press(message.payload)
        if self.topics.segment(message.topic, 1) != press.counter:
            raise PayloadError("counter in the payload does not match the topic")
        result_topic = self.topics.button_result(press.counter)
        if press.age() > protocol.PRESS_TTL_SECONDS:
            # A press from before a broker outage must not call someone minutes later.
            self.client.publish(result_topic, protocol.button_result(press.press_id, False, reason="press expired"),
                                qos=1)
            return
        device = self.config.devices.get(press.device)
        if device is None or device.kind != "button" or press.counter not in device.counters:
            self.client.publish(result_topic, protocol.button_result(
                press.press_id, False, reason="this button box may not call for that counter"), qos=1)
            return

        def act(engine: QueueEngine, now: datetime) -> Any:
            action = engine.call_next if press.action == "next" else engine.recall

            def run() -> Any:
                try:
                    return action(press.counter, now)
                except Refusal as refusal:
                    # Remembered too, so a duplicate delivery gets the same refusal.
                    return Outcome(result={"ok": False, "reason": refusal.message})

            def describe(outcome: Any) -> dict[str, Any]:
                if outcome.result is not None:
                    return outcome.result
                if outcome.call is None:
                    return {"ok": False, "reason": "No one is waiting"}
                return {"ok": True, "ticket": outcome.call.ticket}

            return engine.act_once(f"press:{press.press_id}", run, describe, now)

        def answer(future: Any) -> None:
            try:
                result = future.result().result or {}
                payload = protocol.button_result(press.press_id, bool(result.get("ok")), ticket=result.get("ticket"),
                                                 reason=result.get("reason"))
            except Exception as exc:
                payload = protocol.button_result(press.press_id, False, reason=str(exc))
            self.client.publish(result_topic, payload, qos=1)

        self.hub.submit(act).add_done_callback(answer)

    # -- outgoing ---------------------------------------------------------------------

    def _publish_state(self, name: str, payload: dict[str, Any]) -> None:
        # The hub's clock, to the millisecond: screens judge a call's age against the "at" they see.
        at = self.hub.clock().astimezone(self.config.timezone).isoformat(timespec="milliseconds")
        self.client.publish(self.topics.under(name), protocol.encode({**payload, "at": at}), qos=1, retain=True)

    @hookimpl(specname="announce", tryfirst=True)  # before the SSE streams: a hall of screens is waiting
    def _on_hub_change(self, kind: str, name: str, payload: dict[str, Any]) -> None:
        with self._lock:
            if not self.connected.is_set():
                return  # not queued for later: the republish on reconnect says it all, and a late call is noise
            if kind == "call":
                self.client.publish(self.topics.calls, protocol.encode(payload), qos=1, retain=False)
                self._call_unseen = True
            else:
                self._call_unseen = False  # states come after the hub's view took in the calls before them
                self._publish_state(name, payload)
                if in_board(name):
                    self._board_due.set()

    def _send_boards(self) -> None:
        """The screens' board, BOARD_SECONDS after a change it carries, with every change made meanwhile:
        a call's fan-out to the screens is not slowed by the states it changed, and a rush of tickets sends
        each screen a few boards a second instead of one per commit (issue 19)."""
        while not self._stopping.is_set():
            self._board_due.wait()
            if self._stopping.wait(BOARD_SECONDS):
                return
            self._board_due.clear()  # a change from now on is in this board or makes the next one
            with self._lock:
                # Between a call and the states it changed, the hub's view does not have the call yet: a
                # board from it would take the call the screens just showed off their recent list again.
                # The states follow within the same commit and make the board due again.
                if self.connected.is_set() and not self._call_unseen:
                    self._publish_state(BOARD_SUFFIX, self.hub.board())
