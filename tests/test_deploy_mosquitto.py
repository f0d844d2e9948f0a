"""A real Mosquitto with the shipped config and the generated ACLs, passwords and TLS listener.

Each role may do what docs/protocol.md gives it and nothing else. "Not
delivered" is proved without waiting for a timeout: the forbidden message is
followed, from the same client, by an allowed one (the sentinel); Mosquitto
delivers one client's messages to a subscriber in order, so when the sentinel
arrives, the forbidden message would already have arrived had it got through.

Over 500 lines on purpose: one deployed broker (generated users, ACL, TLS) is
started once for the module and every role's rights are proved against it.
"""

from __future__ import annotations

import getpass
import json
import queue
import re
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # deploy/ is not an installed package: import it from the checkout

from certs import TestCA  # noqa: E402

from deploy import mosquitto_acl  # noqa: E402
from server.config import SAMPLE_SITE, load_config, parse_config  # noqa: E402
from toolkit.broker import free_port, mosquitto_path, wait_for_port  # noqa: E402
from toolkit.hub_process import HubProcess  # noqa: E402
from vuoro.protocol import Topics  # noqa: E402

SHIPPED_CONF = REPO / "deploy" / "mosquitto" / "mosquitto.conf"
WAIT = 10.0  # generous upper bound for an event that must happen; never a measured duration

CONFIG = load_config(SAMPLE_SITE)
T = Topics(site=CONFIG.site_id, root=CONFIG.topic_root)


def localise(conf: str, port: int, workdir: Path) -> str:
    """The shipped config with only what a test must change: port, paths, no pid file, no privilege drop."""
    replacements = [
        (r"(?m)^listener 1883$", f"listener {port} 127.0.0.1"),
        (r"/etc/mosquitto/vuoro/", f"{workdir}/"),
        (r"/var/lib/mosquitto/", f"{workdir}/"),
        (r"(?m)^pid_file .*$", "# pid_file (test: none)"),
    ]
    for pattern, new in replacements:
        conf, count = re.subn(pattern, new, conf)
        assert count, f"the shipped mosquitto.conf no longer has {pattern!r}: update this test with it"
    # Run as whoever runs the tests: as root Mosquitto would switch to the user "mosquitto",
    # who may not read the temporary folder.
    return conf + f"\nuser {getpass.getuser()}\n"


@dataclass
class Site:
    port: int
    hub_password: str
    tls_port: int  # the TLS listener the generator added (mqtts://)
    ca: TestCA  # the CA that signed the broker's certificate

    @property
    def hub_env(self) -> dict[str, str]:
        """What the installers put in /etc/vuoro/hub.env."""
        return {"VUORO_MQTT_USERNAME": "hub", "VUORO_MQTT_PASSWORD": self.hub_password}


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    exe = mosquitto_path()
    assert exe, "mosquitto is not installed (apt-get install mosquitto): the ACL tests need a real broker"
    workdir = tmp_path_factory.mktemp("mosquitto")
    ca = TestCA.create(workdir / "ca")
    broker_cert = ca.issue("broker")
    tls_port = free_port()
    written = mosquitto_acl.generate(CONFIG, workdir, group=None,
                                     tls=mosquitto_acl.TlsListener(broker_cert.cert, broker_cert.key, port=tls_port))
    port = free_port()
    conf = workdir / "mosquitto.conf"
    conf.write_text(localise(SHIPPED_CONF.read_text(), port, workdir))
    proc = subprocess.Popen([exe, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_for_port(port)
        wait_for_port(tls_port)
        yield Site(port=port, hub_password=written["hub_password"].read_text().strip(), tls_port=tls_port, ca=ca)
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=10)
        assert proc.returncode == 0, f"mosquitto failed: {err.decode(errors='replace')}"


class Client:
    """A paho client that connects synchronously and queues what it receives.

    Raw paho, not ``vuoro.mqtt.make_client``, on purpose: it plays devices, intruders and clients
    that reuse another's id against the deployed broker's logins and ACL."""

    def __init__(self, port: int, username: str | None, password: str | None, client_id: str | None = None):
        self.messages: queue.Queue[mqtt.MQTTMessage] = queue.Queue()
        self.connected = threading.Event()
        self.reason: mqtt.ReasonCode | None = None
        self.subscribed = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311,
                                  client_id=client_id or f"test-{username}-{uuid.uuid4().hex[:6]}")
        if username is not None:
            self.client.username_pw_set(username, password)
        self.client.on_connect = self._on_connect
        self.client.on_message = lambda _c, _u, msg: self.messages.put(msg)
        self.client.on_subscribe = lambda *_a: self.subscribed.set()
        self.client.connect("127.0.0.1", port, keepalive=30)
        self.client.loop_start()
        assert self.connected.wait(WAIT), "no CONNACK from the broker"

    def _on_connect(self, _c, _u, _flags, reason_code, _props) -> None:
        self.reason = reason_code
        self.connected.set()

    @property
    def accepted(self) -> bool:
        return self.reason is not None and not self.reason.is_failure

    def subscribe(self, topic: str) -> None:
        self.subscribed.clear()
        self.client.subscribe(topic, qos=1)
        assert self.subscribed.wait(WAIT), f"no SUBACK for {topic}"

    def publish(self, topic: str, payload: dict, retain: bool = False) -> None:
        info = self.client.publish(topic, json.dumps(payload), qos=1, retain=retain)
        info.wait_for_publish(WAIT)  # the broker acknowledges even what its ACL then drops
        assert info.is_published(), f"no PUBACK for {topic}"

    def next_message(self) -> mqtt.MQTTMessage:
        try:
            return self.messages.get(timeout=WAIT)
        except queue.Empty:
            raise AssertionError("an allowed message was not delivered") from None

    def received_until(self, sentinel_topic: str) -> list[str]:
        """Topics received live up to and including the sentinel (retained ones from earlier tests skipped)."""
        topics = []
        while True:
            msg = self.next_message()
            if msg.retain:  # stored before we subscribed: not what this test published
                continue
            topics.append(msg.topic)
            if msg.topic == sentinel_topic:
                return topics

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture()
def connect(site: Site) -> Iterator:
    clients: list[Client] = []

    def _connect(user: str | None, password: str | None = ...,  # type: ignore[assignment]
                 client_id: str | None = None) -> Client:
        if password is ...:
            password = site.hub_password if user in ("hub", "hub.check") else CONFIG.devices[user].token
        client = Client(site.port, user, password, client_id)
        clients.append(client)
        return client

    yield _connect
    for client in clients:
        client.close()


def status(device: str) -> dict:
    return {"v": 1, "device": device, "kind": CONFIG.devices[device].kind, "online": True, "at": 1.0}


def test_every_configured_device_and_the_hub_may_connect(connect) -> None:
    for user in ["hub", "hub.check", *CONFIG.devices]:
        assert connect(user).accepted, f"{user} was refused with its own password"


def test_wrong_password_unknown_user_and_anonymous_are_refused(connect) -> None:
    assert not connect("kiosk1", "not-the-kiosk1-token").accepted
    assert not connect("hub", CONFIG.devices["kiosk1"].token).accepted
    assert not connect("intruder", "whatever-password-123").accepted
    assert not connect(None, None).accepted


def test_hub_publishes_state_and_screens_and_kiosks_receive_it(connect) -> None:
    screen = connect("screen1")
    kiosk = connect("kiosk1")
    for client in (screen, kiosk):
        client.subscribe(T.everything)
    hub = connect("hub")
    published = [T.hub_status, T.site_info, T.queue_state("kvik"), T.counter_state("kvik1"), T.recent_calls,
                 T.board, T.events_today, T.message, T.calls]
    for topic in published:
        hub.publish(topic, {"v": 1}, retain=topic != T.calls)
    for client in (screen, kiosk):
        assert client.received_until(T.calls) == published


def test_a_kiosk_cannot_publish_another_kiosks_status(connect) -> None:
    hub = connect("hub")
    hub.subscribe(T.all_device_status)
    kiosk = connect("kiosk1")
    kiosk.publish(T.device_status("kiosk2"), status("kiosk2"))  # forbidden
    kiosk.publish(T.device_status("kiosk1"), status("kiosk1"))  # its own: allowed, the sentinel
    assert hub.received_until(T.device_status("kiosk1")) == [T.device_status("kiosk1")]


def test_a_kiosk_cannot_publish_calls_or_presses(connect) -> None:
    observer = connect("kiosk2")
    observer.subscribe(T.everything)
    kiosk = connect("kiosk1")
    kiosk.publish(T.calls, {"v": 1, "ticket": "K666"})
    kiosk.publish(T.button_press("kvik1"), {"v": 1})
    kiosk.publish(T.device_status("kiosk1"), status("kiosk1"))
    assert observer.received_until(T.device_status("kiosk1")) == [T.device_status("kiosk1")]


def test_a_screen_cannot_publish_calls_or_state(connect) -> None:
    observer = connect("kiosk1")
    observer.subscribe(T.everything)
    screen = connect("screen1")
    screen.publish(T.calls, {"v": 1, "ticket": "K666"})
    screen.publish(T.queue_state("kvik"), {"v": 1}, retain=True)
    screen.publish(T.board, {"v": 1, "states": {}, "calls": [{"ticket": "K666"}]}, retain=True)
    screen.publish(T.message, {"v": 1, "text": "hacked"}, retain=True)
    screen.publish(T.device_status("screen1"), status("screen1"))
    assert observer.received_until(T.device_status("screen1")) == [T.device_status("screen1")]


def test_a_button_box_presses_only_its_own_counters(connect) -> None:
    hub = connect("hub")
    hub.subscribe(T.all_button_presses)
    box = connect("buttons1")
    assert CONFIG.devices["buttons1"].counters == ("kvik1", "kvik2")
    box.publish(T.button_press("borger1"), {"v": 1})  # not its counter
    box.publish(T.button_press("kvik1"), {"v": 1})
    box.publish(T.button_press("bib1"), {"v": 1})  # not its counter
    box.publish(T.button_press("kvik2"), {"v": 1})
    assert hub.received_until(T.button_press("kvik2")) == [T.button_press("kvik1"), T.button_press("kvik2")]


def test_a_button_box_reads_only_its_results(connect) -> None:
    box = connect("buttons1")
    box.subscribe(T.everything)  # asks for everything; the ACL lets only its results through
    hub = connect("hub")
    hub.publish(T.calls, {"v": 1})
    hub.publish(T.button_result("borger1"), {"v": 1})
    hub.publish(T.button_result("kvik1"), {"v": 1})
    assert box.received_until(T.button_result("kvik1")) == [T.button_result("kvik1")]


def test_only_the_hub_answers_presses(connect) -> None:
    box = connect("buttons1")
    box.subscribe(T.button_result("kvik1"))
    impostor = connect("kiosk1")
    impostor.publish(T.button_result("kvik1"), {"v": 1, "ok": True})
    hub = connect("hub")
    hub.publish(T.button_result("kvik1"), {"v": 1, "ok": False})
    message = box.next_message()
    assert json.loads(message.payload) == {"v": 1, "ok": False}


def test_a_device_cannot_impersonate_the_hub(connect) -> None:
    observer = connect("screen1")
    observer.subscribe(T.everything)
    box = connect("buttons1")
    box.publish(T.hub_status, {"v": 1, "online": False}, retain=True)
    box.publish(T.site_info, {"v": 1}, retain=True)
    box.publish(T.device_status("buttons1"), status("buttons1"))
    assert observer.received_until(T.device_status("buttons1")) == [T.device_status("buttons1")]


def test_the_generated_acl_names_every_device_and_nothing_else() -> None:
    acl = mosquitto_acl.render_acl(CONFIG)
    users = re.findall(r"(?m)^user (\S+)$", acl)
    assert sorted(users) == sorted(["hub", "hub.check", *CONFIG.devices])
    # No rule for a whole tree except reading it, and no pattern rules (which would apply to every user).
    assert "pattern" not in acl
    assert not re.search(r"(?m)^topic (write|readwrite) \S*#$", acl.replace("/queue/#", "").replace(
        "/counters/#", "").replace("/events/#", ""))


def test_generator_keeps_the_hub_password_and_refuses_a_device_called_hub(tmp_path: Path) -> None:
    first = mosquitto_acl.generate(CONFIG, tmp_path, group=None)
    password = first["hub_password"].read_text()
    assert first["hub_password"].stat().st_mode & 0o077 == 0
    mosquitto_acl.generate(CONFIG, tmp_path, group=None)
    assert first["hub_password"].read_text() == password
    assert "hub:" in (tmp_path / "passwd").read_text() and password.strip() not in (tmp_path / "passwd").read_text()

    raw = dict(CONFIG.raw)
    raw["devices"] = {**raw["devices"], "hub": {"kind": "kiosk", "token": "a-token-of-its-own-0001"}}
    with pytest.raises(ValueError, match="hub"):
        mosquitto_acl.render_acl(parse_config(raw, CONFIG.path))


def test_generator_command_line_reports_config_problems(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    bad = tmp_path / "site.toml"
    bad.write_text('[site]\nid = "Bad Id"\nname = "x"\n')
    assert mosquitto_acl.main(["--config", str(bad), "--out", str(tmp_path / "out")]) == 1
    assert "site.id" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_the_real_hub_and_kiosk_log_in_with_their_deployed_credentials(
        site: Site, connect, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Not a test client with the right password: the hub process and the kiosk's own MQTT link,
    given what the installers give them (hub.env; the kiosk's device id and token)."""
    import requests

    from kiosk.link import KioskLink
    from toolkit.hub_process import HubProcess

    staff_view = connect("hub")
    staff_view.subscribe("vuoro/sonderbro/devices/kiosk1/status")
    link = KioskLink(f"mqtt://127.0.0.1:{site.port}", Topics("sonderbro"), "kiosk1", on_queue=lambda body: None,
                     username="kiosk1", password=CONFIG.devices["kiosk1"].token).start()
    try:
        arrived = staff_view.next_message()  # the kiosk's retained presence, accepted by the ACL
        assert json.loads(arrived.payload)["device"] == "kiosk1" and json.loads(arrived.payload)["online"]
    finally:
        link.stop()

    monkeypatch.setenv("VUORO_MQTT_USERNAME", "hub")
    monkeypatch.setenv("VUORO_MQTT_PASSWORD", site.hub_password)
    hub = HubProcess(SAMPLE_SITE, tmp_path, f"mqtt://127.0.0.1:{site.port}").start()
    try:
        watcher = connect("screen1")
        watcher.subscribe("vuoro/sonderbro/hub/status")
        while not json.loads(watcher.next_message().payload).get("online"):
            pass
        assert requests.get(f"{hub.url}/api/v1/health", timeout=10).json()["broker"] == "connected"
    finally:
        hub.stop()


# -- one connection per login: no device can drop the hub (issue 13, item 5) ------------------------


def deployed_hub(site: Site, data_dir: Path, config: Path = SAMPLE_SITE, broker: str | None = None) -> HubProcess:
    """The real hub process with what the installers give it (hub.env), on the deployed broker."""
    return HubProcess(config, data_dir, broker or f"mqtt://127.0.0.1:{site.port}", env=site.hub_env)


def watch_the_hub(connect) -> Client:  # type: ignore[no-untyped-def]
    """A screen that has seen the hub online, and listens on for the sentinel (below)."""
    watcher = connect("screen1")
    watcher.subscribe(T.hub_status)
    while not json.loads(watcher.next_message().payload).get("online"):
        pass
    watcher.subscribe(T.device_status("kiosk1"))
    return watcher


def hub_messages_until_sentinel(watcher: Client, connect) -> list[str]:
    """Every live message the watcher got on hub/status, up to a sentinel published now by kiosk1.

    A hub knocked off the broker shows there: its last will (online false) and, when it comes back,
    its online status. The broker sends both before it answers the connect that caused them, so
    they are in the watcher's queue before the sentinel."""
    kiosk = connect("kiosk1")
    kiosk.publish(T.device_status("kiosk1"), status("kiosk1"))
    return [t for t in watcher.received_until(T.device_status("kiosk1")) if t == T.hub_status]


def test_a_device_using_the_hubs_client_id_cannot_drop_the_hub(site: Site, connect, tmp_path: Path) -> None:
    import requests

    hub = deployed_hub(site, tmp_path).start()
    try:
        watcher = watch_the_hub(connect)
        for _ in range(10):  # the attack from the issue: 10 kicks in a row
            intruder = connect("kiosk1", client_id="vuoro-hub-sonderbro")
            assert intruder.accepted  # a device may log in; it just cannot take the hub's session
            intruder.close()
        assert hub_messages_until_sentinel(watcher, connect) == []  # no last will, no reconnect
        assert requests.get(f"{hub.url}/api/v1/health", timeout=10).json()["broker"] == "connected"
    finally:
        hub.stop()


def test_a_second_hub_for_the_site_refuses_to_start_and_the_first_keeps_running(
        site: Site, connect, tmp_path: Path) -> None:
    import requests

    first = deployed_hub(site, tmp_path / "first").start()
    try:
        watcher = watch_the_hub(connect)
        second = deployed_hub(site, tmp_path / "second")  # another machine's hub: its own database
        try:
            with pytest.raises(RuntimeError, match="exited with 2"):
                second.start()
        finally:
            second.stop()
        said = second.log_path.read_text()
        assert "Another hub for site 'sonderbro' is already running" in said
        assert f"{tmp_path / 'first'}" in said and "systemctl disable --now vuoro-hub" in said
        assert hub_messages_until_sentinel(watcher, connect) == []  # the look never dropped the first hub
        assert requests.get(f"{first.url}/api/v1/health", timeout=10).json()["broker"] == "connected"
    finally:
        first.stop()


def test_the_doctor_looks_with_the_hubs_login_without_dropping_the_hub(
        site: Site, connect, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from toolkit import doctor

    hub = deployed_hub(site, tmp_path).start()
    try:
        watcher = watch_the_hub(connect)
        code = doctor.main(["--config", str(SAMPLE_SITE), "--hub", hub.url, "--broker", f"mqtt://127.0.0.1:{site.port}",
                            "--mqtt-user", "hub", f"--mqtt-password={site.hub_password}"])
        out = capsys.readouterr().out
        assert code == 0, out
        assert "the hub is online" in out
        assert hub_messages_until_sentinel(watcher, connect) == []
    finally:
        hub.stop()


def test_the_hubs_look_only_login_may_only_look(connect) -> None:
    observer = connect("screen1")
    observer.subscribe(T.everything)
    check = connect("hub.check")
    check.publish(T.hub_status, {"v": 1, "online": False}, retain=True)
    check.publish(T.calls, {"v": 1, "ticket": "K666"})
    kiosk = connect("kiosk1")
    kiosk.publish(T.device_status("kiosk1"), status("kiosk1"))
    assert observer.received_until(T.device_status("kiosk1")) == [T.device_status("kiosk1")]


# -- MQTT over TLS: the generated listener, every client through the one factory ------------------------


def tls_site(folder: Path, broker: str, ca: Path) -> Path:
    """The sample site with its broker on mqtts:// and the site's CA, as hub.broker_ca."""
    text = SAMPLE_SITE.read_text().replace('broker = "mqtt://127.0.0.1:1883"',
                                           f'broker = "{broker}"\nbroker_ca = "{ca}"')
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "site.toml"
    path.write_text(text)
    return path


class Face:
    """A button box face with no hardware: it remembers what the LEDs would show."""

    def __init__(self) -> None:
        self.shown: queue.Queue[tuple[str, str | None]] = queue.Queue()

    def start(self, on_event) -> None:  # type: ignore[no-untyped-def]
        pass

    def show(self, button: str, feedback: str, ticket: str | None = None) -> None:
        if feedback != "pending":
            self.shown.put((feedback, ticket))

    def close(self) -> None:
        pass


def test_hub_kiosk_screen_and_button_box_all_connect_over_mqtts(site: Site, tmp_path: Path) -> None:
    """Each part through vuoro.mqtt with the site's CA: the hub process (hub.broker_ca), the kiosk's link,
    the screen's client and a button box, whose press goes through the hub and back over TLS."""
    import requests

    from display.client import SignageClient
    from display.state import SignageState
    from hardware.buttons import ButtonBox
    from kiosk.link import KioskLink
    from vuoro.mqtt import broker_settings

    url = f"mqtts://127.0.0.1:{site.tls_port}"
    ca = str(site.ca.cert)

    def login(device: str):  # type: ignore[no-untyped-def]
        return broker_settings(url, username=device, password=CONFIG.devices[device].token, ca_file=ca, env={})

    hub = deployed_hub(site, tmp_path / "hub", tls_site(tmp_path, url, site.ca.cert), url).start()
    hub_seen = threading.Event()
    link = KioskLink(login("kiosk1"), T, "kiosk1", on_queue=lambda body: None,
                     on_hub=lambda online: online and hub_seen.set())
    screen = SignageClient(login("screen1"), SignageState(T), device="screen1")
    face = Face()
    box = ButtonBox(face, broker=login("buttons1"), site="sonderbro", device="buttons1", counters={"1": "kvik1"})
    try:
        link.start(), screen.start(), box.start()
        assert hub_seen.wait(WAIT), "the kiosk never heard the hub over TLS"
        assert screen.wait_connected(WAIT) and screen.client.address.tls
        assert box.connected.wait(WAIT)
        assert requests.get(f"{hub.url}/api/v1/health", timeout=10).json()["broker"] == "connected"
        box.press("1")
        feedback, _ = face.shown.get(timeout=WAIT)  # the hub's answer, whatever it is, came back over TLS
        assert feedback in ("serving", "empty"), box.results
    finally:
        box.stop()
        screen.stop()
        link.stop()
        hub.stop()


def test_a_broker_signed_by_another_ca_is_refused_with_a_clear_log_line(
        site: Site, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from kiosk.link import KioskLink
    from vuoro.mqtt import broker_settings

    url = f"mqtts://127.0.0.1:{site.tls_port}"
    stranger = TestCA.create(tmp_path / "other", "Someone else's CA")
    for ca_file, trusted in ((str(stranger.cert), f"the CA in {stranger.cert}"), (None, "the system's CAs")):
        caplog.clear()
        settings = broker_settings(url, username="kiosk1", password=CONFIG.devices["kiosk1"].token, ca_file=ca_file,
                                   env={})
        link = KioskLink(settings, T, "kiosk1", on_queue=lambda body: None).start()
        try:
            deadline = time.monotonic() + WAIT
            while not any("not trusted" in r.getMessage() for r in caplog.records) and time.monotonic() < deadline:
                time.sleep(0.05)
            lines = [r.getMessage() for r in caplog.records if "not trusted" in r.getMessage()]
            assert lines == [f"kiosk kiosk1 cannot connect to the broker at {url}: the broker's TLS certificate is "
                             f"not trusted (unable to get local issuer certificate): is it signed by {trusted}, and "
                             "does it name 127.0.0.1?"]
            assert not link.connected
        finally:
            link.stop()


def test_the_generator_writes_and_removes_the_tls_listener(tmp_path: Path) -> None:
    ca = TestCA.create(tmp_path / "ca")
    cert = ca.issue("broker")
    out = tmp_path / "out"
    written = mosquitto_acl.generate(CONFIG, out, group=None, tls=mosquitto_acl.TlsListener(cert.cert, cert.key))
    text = written["tls"].read_text()
    assert "listener 8883\n" in text and f"certfile {cert.cert}" in text and f"keyfile {cert.key}" in text
    assert "require_certificate" not in text
    mosquitto_acl.generate(CONFIG, out, group=None)  # the installers re-run it without TLS options: kept
    assert written["tls"].read_text() == text
    mosquitto_acl.generate(CONFIG, out, group=None, no_tls=True)
    assert not written["tls"].exists() and written["tls"].parent.is_dir()  # mosquitto.conf includes the folder
    with pytest.raises(ValueError, match="does not exist"):
        mosquitto_acl.generate(CONFIG, out, group=None, tls=mosquitto_acl.TlsListener(tmp_path / "no.crt", cert.key))
