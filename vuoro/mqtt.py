"""Every MQTT client in Vuoro is made here: broker address, TLS, login, client id, last will, timers.

The hub, the kiosk, the screen, the button box and the doctor each once set
up paho on their own, and drifted: one parsed ``mqtts://`` and never turned
TLS on. Now they call :func:`make_client` with a :class:`BrokerSettings`, so
a rule about connecting lives in one place. Standard library and paho only:
every device installs ``vuoro/``.

Broker addresses: ``mqtt://host:port`` (plain, default port 1883),
``mqtts://host:port`` (TLS, default port 8883), or ``host:port`` / ``host``
without a scheme (plain). TLS verifies the broker's certificate and its name
by default, against ``ca_file`` (the site's own CA) or the system's CAs;
``cert_file``/``key_file`` add a client certificate. A login not given in a
device's config comes from the environment (``VUORO_MQTT_USERNAME``,
``VUORO_MQTT_PASSWORD``, ``VUORO_MQTT_CA_FILE``, ``VUORO_MQTT_CERT_FILE``,
``VUORO_MQTT_KEY_FILE``), as the hub's unit gets it from ``/etc/vuoro/hub.env``.

On a deployed broker each login has one connection at a time: Mosquitto
replaces the client id with the user name (``use_username_as_clientid``,
deploy/mosquitto), so no device can take over the hub's session. A second
connection with the same login therefore drops the first; tools that only
look (``vuoro doctor``, the hub's start-up check) log in as
:func:`watcher_user` instead of the hub's own user.
"""

from __future__ import annotations

import logging
import os
import socket
import ssl
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlsplit

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

log = logging.getLogger("vuoro.mqtt")

DEFAULT_PORTS = {"mqtt": 1883, "mqtts": 8883}
HUB_USER = "hub"  # the hub's MQTT user on a deployed broker (deploy/mosquitto_acl.py)
WATCHER_SUFFIX = ".check"  # a read-only twin of a login; '.' is never in a device id, so no device can be one
ENV = {"username": "VUORO_MQTT_USERNAME", "password": "VUORO_MQTT_PASSWORD", "ca_file": "VUORO_MQTT_CA_FILE",
       "cert_file": "VUORO_MQTT_CERT_FILE", "key_file": "VUORO_MQTT_KEY_FILE"}


@dataclass(frozen=True)
class BrokerAddress:
    host: str
    port: int
    tls: bool

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'mqtts' if self.tls else 'mqtt'}://{host}:{self.port}"


def parse_broker_url(url: str) -> BrokerAddress:
    """``mqtt://host:port``, ``mqtts://host:port`` or ``host[:port]``; raises ValueError saying what is wrong."""
    text = str(url).strip()
    if "://" not in text:
        text = f"mqtt://{text}"
    scheme = text.split("://", 1)[0].lower()
    expected = f"expected mqtt://host:port or mqtts://host:port, got {url!r}"
    if scheme not in DEFAULT_PORTS:
        raise ValueError(f"{expected} (unknown scheme {scheme!r})")
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        raise ValueError(f"{expected} (the port must be a number from 1 to 65535)") from None
    if not parts.hostname or parts.path not in ("", "/") or parts.query or parts.fragment or parts.username:
        raise ValueError(expected)
    if port == 0:
        raise ValueError(f"{expected} (the port must be a number from 1 to 65535)")
    return BrokerAddress(parts.hostname, port or DEFAULT_PORTS[scheme], scheme == "mqtts")


@dataclass(frozen=True)
class BrokerSettings:
    """Where the broker is and how to log in: what every client needs."""

    url: str
    username: str | None = None
    password: str | None = None
    ca_file: str | None = None  # TLS: the CA that signed the broker's certificate (default: the system's CAs)
    cert_file: str | None = None  # TLS: a client certificate, when the broker asks for one
    key_file: str | None = None
    verify: bool = True  # TLS: check the broker's certificate and name (only a lab turns this off)

    @property
    def address(self) -> BrokerAddress:
        return parse_broker_url(self.url)

    def problems(self, names: Mapping[str, str] | None = None) -> list[str]:
        """What is wrong with these settings, for a config check; ``names`` maps a field (url, ca_file,
        cert_file, key_file) to its key in that config, so each problem names the key to fix."""
        key = {"url": "url", "ca_file": "ca_file", "cert_file": "cert_file", "key_file": "key_file", **(names or {})}
        try:
            address = self.address
        except ValueError as exc:
            return [f"{key['url']}: {exc}"]
        found: list[str] = []
        files = {"ca_file": self.ca_file, "cert_file": self.cert_file, "key_file": self.key_file}
        for field, path in files.items():
            if path and not os.access(path, os.R_OK):
                reason = "does not exist" if not os.path.exists(path) else "cannot be read by this user"
                found.append(f"{key[field]}: {path} {reason}")
        if bool(self.cert_file) != bool(self.key_file):
            found.append(f"{key['key_file' if self.cert_file else 'cert_file']}: a client certificate needs both "
                         f"{key['cert_file']} and {key['key_file']}")
        if not address.tls and any(files.values()):
            given = ", ".join(key[f] for f, v in files.items() if v)
            found.append(f"{key['url']}: {given} given, but {self.url!r} is not TLS: use mqtts://")
        if not found and address.tls:
            try:
                tls_context(self)
            except (OSError, ValueError) as exc:
                found.append(f"{key['ca_file']}: cannot use the TLS files ({exc})")
        return found


def broker_settings(url: str, *, username: str | None = None, password: str | None = None,
                    ca_file: str | None = None, cert_file: str | None = None, key_file: str | None = None,
                    verify: bool = True, env: Mapping[str, str] | None = None) -> BrokerSettings:
    """Settings from a device's config; what the config leaves out comes from ``VUORO_MQTT_*`` variables."""
    env = os.environ if env is None else env
    given = {"username": username, "password": password, "ca_file": ca_file, "cert_file": cert_file,
             "key_file": key_file}
    filled = {key: value if value else (env.get(ENV[key]) or None) for key, value in given.items()}
    if username and not password:
        filled["password"] = password  # a configured user never borrows the environment's password
    return BrokerSettings(url=url, verify=verify, **filled)


def settings_for(broker: str | BrokerSettings, username: str | None = None,
                 password: str | None = None) -> BrokerSettings:
    """A device's settings given either whole or as a URL and a login (the rest from the environment)."""
    if isinstance(broker, BrokerSettings):
        return broker
    return broker_settings(broker, username=username, password=password)


def watcher_user(username: str | None) -> str | None:
    """The look-only login beside the hub's (``hub`` → ``hub.check``), so looking never drops the hub."""
    if username == HUB_USER:
        return username + WATCHER_SUFFIX
    return username


def watcher_settings(settings: BrokerSettings) -> BrokerSettings:
    return replace(settings, username=watcher_user(settings.username))


@dataclass(frozen=True)
class Will:
    """A last will: what the broker publishes for a client that vanishes without saying goodbye."""

    topic: str
    payload: bytes
    qos: int = 1
    retain: bool = True


def tls_context(settings: BrokerSettings) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=settings.ca_file) if settings.ca_file \
        else ssl.create_default_context()
    if settings.cert_file:
        context.load_cert_chain(settings.cert_file, settings.key_file)
    if not settings.verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def describe_failure(exc: BaseException, settings: BrokerSettings) -> str:
    """Why a connection failed, in words an IT person can act on."""
    address = settings.address
    if isinstance(exc, ssl.SSLCertVerificationError):
        trusted = f"the CA in {settings.ca_file}" if settings.ca_file else "the system's CAs"
        return (f"the broker's TLS certificate is not trusted ({exc.verify_message}): is it signed by {trusted},"
                f" and does it name {address.host}?")
    if isinstance(exc, ssl.SSLError):
        return (f"the TLS handshake failed ({exc.reason or exc}): is {address.port} the broker's TLS port"
                " (listener 8883 in mosquitto.conf)?")
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, socket.gaierror):
        return f"the name {address.host!r} is not known (DNS)"
    if isinstance(exc, TimeoutError | socket.timeout):
        return "no answer"
    return getattr(exc, "strerror", None) or str(exc) or type(exc).__name__


class BrokerClient(mqtt.Client):
    """A paho client that knows its broker: ``start()`` connects in the background and keeps reconnecting.

    A failed attempt is logged once in plain words (and again only when the reason changes), so a
    wrong CA or a broker that is down shows in the journal instead of as a silent retry loop.
    """

    def __init__(self, settings: BrokerSettings, *, client_id: str, keepalive: int, name: str,
                 clean_session: bool) -> None:
        super().__init__(CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=clean_session,
                         protocol=mqtt.MQTTv311)
        self.settings = settings
        self.address = settings.address
        self.keepalive = keepalive
        self.name = name
        self.last_failure: str | None = None
        self._failure_lock = threading.Lock()

    def start(self) -> BrokerClient:
        """Connect in the background (a device that boots before the broker just waits) and stay connected."""
        self.connect_async(self.address.host, self.address.port, self.keepalive)
        self.loop_start()
        return self

    def connect_now(self, timeout: float) -> None:
        """Connect before returning (the TCP and TLS part; CONNACK comes to on_connect). Raises OSError."""
        self.connect_timeout = timeout
        self.connect(self.address.host, self.address.port, self.keepalive)

    def reconnect(self) -> mqtt.MQTTErrorCode:
        try:
            result = super().reconnect()
        except OSError as exc:
            self._report(describe_failure(exc, self.settings))
            raise
        with self._failure_lock:
            self.last_failure = None
        return result

    def _report(self, reason: str) -> None:
        with self._failure_lock:
            repeated, self.last_failure = reason == self.last_failure, reason
        if not repeated:
            log.warning("%s cannot connect to the broker at %s: %s", self.name, self.address, reason)


def make_client(settings: BrokerSettings, *, client_id: str = "", name: str = "this client",
                will: Will | None = None, keepalive: int = 15, reconnect: tuple[float, float] = (1.0, 5.0),
                clean_session: bool = True, max_queued: int = 0,
                on_connect: Callable[..., Any] | None = None) -> BrokerClient:
    """The one way to make an MQTT client in Vuoro (MQTT 3.1.1, so any broker serves).

    ``reconnect`` is paho's (min, max) delay between attempts; ``max_queued`` bounds what paho holds
    while the broker is away (0: no bound). Raises ValueError for an address or TLS file that cannot work.
    """
    client = BrokerClient(settings, client_id=client_id, keepalive=keepalive, name=name,
                          clean_session=clean_session)
    if settings.username:
        client.username_pw_set(settings.username, settings.password)
    if client.address.tls:
        try:
            client.tls_set_context(tls_context(settings))
        except (OSError, ValueError) as exc:
            raise ValueError(f"{name}: cannot set up TLS for {client.address}: {exc}") from exc
    if will is not None:
        client.will_set(will.topic, will.payload, qos=will.qos, retain=will.retain)
    client.reconnect_delay_set(min_delay=reconnect[0], max_delay=reconnect[1])  # type: ignore[arg-type]
    if max_queued:
        client.max_queued_messages_set(max_queued)
    if on_connect is not None:
        client.on_connect = on_connect
    return client


class BrokerUnavailable(Exception):
    """The broker could not be reached, or did not answer as a broker (the message says which)."""


class BrokerRefused(Exception):
    """The broker answered and refused the login (wrong user or password, not authorised)."""


class TopicWatch:
    """Look at topics without taking part: connect, subscribe, know when the retained messages are in.

    Mosquitto answers a SUBSCRIBE with its SUBACK and then the retained messages, in order; so
    subscribing once more and waiting for that second SUBACK tells, without guessing a wait, that
    every retained message has arrived. After that the watch keeps listening (and reconnecting).
    """

    def __init__(self, settings: BrokerSettings, topics: list[str], *, name: str, client_id: str = ""):
        self.settings = settings
        self.topics = list(topics)
        self.messages: list[mqtt.MQTTMessage] = []
        self.connects = 0  # accepted connections so far
        self.refusal: Any = None
        self._changed = threading.Condition()
        self._settle_mid: int | None = None
        self._settled = False
        self.client = make_client(settings, client_id=client_id or f"vuoro-watch-{os.getpid()}-{id(self):x}",
                                  name=name, keepalive=10, reconnect=(0.5, 2.0))
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = self._on_subscribe
        self.client.on_message = self._on_message

    def open(self, timeout: float) -> TopicWatch:
        """Connect and subscribe; raises BrokerUnavailable or BrokerRefused with the reason in words."""
        try:
            self.client.connect_now(timeout)
        except OSError as exc:
            raise BrokerUnavailable(describe_failure(exc, self.settings)) from exc
        self.client.loop_start()
        if not self.wait(lambda: self.connects > 0 or self.refusal is not None, timeout):
            self.close()
            raise BrokerUnavailable(f"something listens at {self.settings.address}, but it did not answer as an MQTT"
                                    f" broker within {timeout:g} s")
        if self.refusal is not None:
            reason = self.refusal
            self.close()
            raise BrokerRefused(str(reason))
        return self

    def wait(self, predicate: Callable[[], Any], timeout: float) -> Any:
        """Wait until ``predicate()`` is truthy (checked whenever something arrives); its value, or False."""
        with self._changed:
            return self._changed.wait_for(predicate, timeout)

    def settled(self, timeout: float) -> bool:
        """True once the retained messages of the current connection have all arrived."""
        return bool(self.wait(lambda: self._settled, timeout))

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def _on_connect(self, client: mqtt.Client, _userdata: Any, _flags: Any, reason: Any, _props: Any) -> None:
        with self._changed:
            if reason.is_failure:
                self.refusal = reason
            else:
                self.connects += 1
                self._settled = False
                client.subscribe([(topic, 1) for topic in self.topics])
                self._settle_mid = client.subscribe(self.topics[0], qos=1)[1]
            self._changed.notify_all()

    def _on_subscribe(self, _client: mqtt.Client, _userdata: Any, mid: int, _codes: Any, _props: Any) -> None:
        with self._changed:
            if mid == self._settle_mid:
                self._settled = True
                self._changed.notify_all()

    def _on_message(self, _client: mqtt.Client, _userdata: Any, message: mqtt.MQTTMessage) -> None:
        with self._changed:
            self.messages.append(message)
            self._changed.notify_all()
