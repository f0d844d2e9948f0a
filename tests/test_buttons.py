"""Staff button boxes, end to end: gpiozero mock pins and a serial pty → real broker → real hub → result.

Waits below are bounded polls for something to happen (never "it took less than X ms").
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest

from hardware.button_cli import ButtonConfigError, parse_button_config
from hardware.buttons import (
    EMPTY,
    FAILED,
    SERVING,
    ButtonBox,
    ButtonEvent,
    GpioButtonBox,
    GpioPins,
    SerialButtonBox,
    box_command,
    parse_box_line,
)
from toolkit.broker import Broker
from toolkit.hub_in_process import RunningHub
from toolkit.mqtt_watch import Watch
from toolkit.polling import wait_until
from vuoro.protocol import ButtonPress, Topics


def serving(hub_in_process: RunningHub, counter: str) -> str | None:
    state = hub_in_process.hub.view.counters[counter]["serving"]
    return state["ticket"] if state else None


# -- the line protocol and the config, without hardware -------------------------------------------


def test_serial_line_protocol() -> None:
    assert parse_box_line("P1\r\n") == ButtonEvent("1", long=False)
    assert parse_box_line("l12") == ButtonEvent("12", long=True)
    assert parse_box_line("  ") is None and parse_box_line("# hello") is None
    for bad in ("X1", "P", "P0", "Pa", "P100"):
        with pytest.raises(ValueError):
            parse_box_line(bad)
    assert box_command("1", SERVING, "K013") == b"OK 1 K013\n"
    assert box_command("2", EMPTY) == b"EMPTY 2\n"
    assert box_command("2", FAILED, "K1") == b"ERR 2\n"


def test_button_config_lists_every_problem() -> None:
    with pytest.raises(ButtonConfigError) as caught:
        parse_button_config({"device": "Buttons 1", "site": "sonderbro", "kind": "gpio", "broker": "http://x",
                             "buttons": {"1": {"counter": "kvik1"}, "2": {"pin": 5}}, "colour": "red"})
    problems = "\n".join(caught.value.problems)
    for expected in ("colour: unknown key", "device: expected an id", "broker: expected mqtt://",
                     "buttons.1.pin: a GPIO button needs its pin", "buttons.2.counter"):
        assert expected in problems
    config = parse_button_config({"device": "buttons1", "site": "sonderbro", "kind": "serial",
                                  "serial": {"port": "loop://"}, "buttons": {"01": {"counter": "kvik1"}}})
    assert config.buttons["1"].counter == "kvik1" and config.serial_port == "loop://"


# -- GPIO box through the real broker to the real hub --------------------------------------------------


def gpio_box(hub_in_process: RunningHub, **options: Any) -> tuple[ButtonBox, GpioButtonBox]:
    face = GpioButtonBox({"1": GpioPins(17, serving_led=22, empty_led=23, failed_led=24),
                          "2": GpioPins(5, failed_led=6)}, long_press=0.3, bounce_time=None)
    box = ButtonBox(face, broker=hub_in_process.config.broker, site=hub_in_process.config.site_id, device="buttons1",
                    counters={"1": "kvik1", "2": "kvik2"}, client_id=f"test-box-{time.monotonic_ns()}", **options)
    box.start()
    assert box.connected.wait(10)
    return box, face


def click(face: GpioButtonBox, name: str, hold: float | None = None, box: ButtonBox | None = None) -> None:
    pin = face.buttons[name].pin
    pin.drive_low()
    if hold is not None and box is not None:
        wait_until(lambda: face.buttons[name].is_held, "the hold")
    pin.drive_high()


def test_gpio_press_calls_next_and_long_press_recalls(hub_in_process: RunningHub, live_broker: Broker,
                                                      pins: None) -> None:
    topics = Topics(hub_in_process.config.site_id, hub_in_process.config.topic_root)
    listener = Watch(live_broker, topics.calls, topics.device_status("buttons1"))
    box, face = gpio_box(hub_in_process)
    try:
        wait_until(lambda: any(p["online"] for p in listener.on(topics.device_status("buttons1"))),
                   "the box's presence")
        hub_in_process.issue("kvik", 2)
        click(face, "1")
        wait_until(lambda: face.shown["1"] == SERVING, "the serving LED")
        assert face.leds["1"][SERVING].is_lit and not face.leds["1"][FAILED].is_lit
        assert serving(hub_in_process, "kvik1") == "K001"
        assert box.results[-1]["ok"] is True and box.results[-1]["ticket"] == "K001"
        wait_until(lambda: listener.on(topics.calls), "the call on MQTT")
        assert [(c["ticket"], c["counter"], c["recall"]) for c in listener.on(topics.calls)] == [
            ("K001", "kvik1", False)]

        click(face, "1", hold=0.3, box=box)  # a long press: call the same visitor again
        wait_until(lambda: len(listener.on(topics.calls)) == 2, "the recall on MQTT")
        assert listener.on(topics.calls)[1]["ticket"] == "K001" and listener.on(topics.calls)[1]["recall"] is True
        assert serving(hub_in_process, "kvik1") == "K001"

        click(face, "2")  # the other desk takes the next
        wait_until(lambda: serving(hub_in_process, "kvik2") == "K002", "desk 2's call")
        click(face, "2")  # ... and then no one is waiting: the 'empty' answer, not a failure
        wait_until(lambda: len(box.results) == 4, "the fourth result")
        assert box.results[-1]["ok"] is False and box.results[-1]["reason"] == "No one is waiting"
        assert face.shown["2"] == EMPTY
    finally:
        box.stop()
        listener.close()


def test_duplicate_press_id_calls_once(hub_in_process: RunningHub, live_broker: Broker) -> None:
    topics = Topics(hub_in_process.config.site_id, hub_in_process.config.topic_root)
    listener = Watch(live_broker, topics.calls, topics.button_result("kvik1"))
    try:
        hub_in_process.issue("kvik", 2)
        press = ButtonPress("buttons1-dup-000001", "kvik1", "next", "buttons1", time.time())
        for _ in range(2):  # QoS 1 may deliver twice: the hub must act once
            listener.client.publish(topics.button_press("kvik1"), press.to_payload(), qos=1).wait_for_publish(5)
        wait_until(lambda: len(listener.on(topics.button_result("kvik1"))) == 2, "both answers")
        answers = listener.on(topics.button_result("kvik1"))
        assert [(a["press_id"], a["ok"], a["ticket"]) for a in answers] == [(press.press_id, True, "K001")] * 2
        assert len(listener.on(topics.calls)) == 1
        assert hub_in_process.hub.view.queues["kvik"]["waiting"] == 1  # K002 still waits
    finally:
        listener.close()


def test_press_while_broker_down_fails_and_is_never_delivered(hub_in_process: RunningHub, live_broker: Broker,
                                                              pins: None) -> None:
    topics = Topics(hub_in_process.config.site_id, hub_in_process.config.topic_root)
    box, face = gpio_box(hub_in_process, ttl=1.0)
    try:
        hub_in_process.issue("kvik", 2)
        live_broker.stop()
        wait_until(lambda: not box.connected.is_set(), "the box to notice the broker is gone")
        click(face, "1")
        wait_until(lambda: face.shown["1"] == FAILED, "the failure LED")
        fail_pin = face.leds["1"][FAILED].pin
        # Blinking: the pin goes on and off again by itself.
        wait_until(lambda: [s.state for s in fail_pin.states[-3:]] in ([1, 0, 1], [0, 1, 0]), "the LED to blink")
        assert not face.leds["1"][SERVING].is_lit
        live_broker.start()
        wait_until(box.connected.is_set, "the box to reconnect", timeout=15)
        wait_until(hub_in_process.link.connected.is_set, "the hub to reconnect", timeout=15)
        listener = Watch(live_broker, topics.calls)
        try:
            click(face, "1")  # staff press again
            wait_until(lambda: face.shown["1"] == SERVING, "the fresh press's answer")
            # The stale press was never delivered: the fresh one called the first visitor, and only once.
            assert serving(hub_in_process, "kvik1") == "K001"
            # The box's answer and the call event reach two clients in no set order: wait for the call.
            wait_until(lambda: listener.on(topics.calls), "the call on MQTT")
            assert [c["ticket"] for c in listener.on(topics.calls)] == ["K001"]
            assert hub_in_process.hub.view.queues["kvik"]["waiting"] == 1
            assert len(box.results) == 1
        finally:
            listener.close()
    finally:
        live_broker.start()
        box.stop()


# -- a USB-serial box on a pty, unplugged and plugged back -----------------------------------------------


class Pty:
    """A pseudo-terminal standing in for the box; ``link`` is the stable name (like a udev symlink)."""

    def __init__(self, link: Path):
        self.link = link
        self.master, slave = os.openpty()
        self.slave_path = os.ttyname(slave)
        os.close(slave)
        if link.is_symlink():
            link.unlink()
        link.symlink_to(self.slave_path)
        self.buffer = b""

    def send(self, line: bytes) -> None:
        os.write(self.master, line)

    def read_line(self, timeout: float = 10.0) -> bytes:
        import select

        deadline = time.monotonic() + timeout
        while b"\n" not in self.buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no line from the box (have {self.buffer!r})")
            ready, _, _ = select.select([self.master], [], [], left)
            if ready:
                self.buffer += os.read(self.master, 256)
        line, self.buffer = self.buffer.split(b"\n", 1)
        return line + b"\n"

    def unplug(self) -> None:
        os.close(self.master)


def test_serial_box_presses_and_survives_unplugging(hub_in_process: RunningHub, tmp_path: Path) -> None:
    pty = Pty(tmp_path / "vuoro-buttons")
    face = SerialButtonBox(str(pty.link), reopen_every=0.1)
    box = ButtonBox(face, broker=hub_in_process.config.broker, site=hub_in_process.config.site_id, device="buttons1",
                    counters={"1": "kvik1", "2": "kvik2"}, client_id=f"test-serial-{time.monotonic_ns()}")
    box.start()
    try:
        assert box.connected.wait(10) and face.connected.wait(10)
        hub_in_process.issue("kvik", 2)
        pty.send(b"P1\n")
        assert pty.read_line() == b"WAIT 1\n"
        assert pty.read_line() == b"OK 1 K001\n"
        pty.send(b"L1\r\n")  # long press: call again
        assert pty.read_line() == b"WAIT 1\n"
        assert pty.read_line() == b"OK 1 K001\n"
        pty.send(b"hello\n")
        assert pty.read_line() == b"?\n"

        pty.unplug()
        wait_until(lambda: not face.connected.is_set(), "the box to notice it was unplugged")
        pty = Pty(tmp_path / "vuoro-buttons")  # plugged back (a new tty behind the same name)
        wait_until(lambda: face.opened == 2 and face.connected.is_set(), "the box to reopen the port")
        pty.send(b"P2\n")
        assert pty.read_line() == b"WAIT 2\n"
        assert pty.read_line() == b"OK 2 K002\n"
        assert serving(hub_in_process, "kvik2") == "K002"
    finally:
        box.stop()
        os.close(pty.master)


def test_vuoro_button_tells_systemd_it_is_connected_and_alive(live_broker: Broker, tmp_path: Path) -> None:
    """Type=notify + WatchdogSec: READY=1 once the box is connected to the broker, WATCHDOG=1 from its main loop."""
    import socket
    import subprocess
    import sys

    config = tmp_path / "button.toml"
    config.write_text(f'device = "buttons1"\nsite = "sonderbro"\nkind = "gpio"\nbroker = "{live_broker.url}"\n'
                      '[buttons.1]\ncounter = "kvik1"\npin = 17\n', encoding="utf-8")
    address = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(address)
    sock.settimeout(30)
    env = {**os.environ, "GPIOZERO_PIN_FACTORY": "mock", "NOTIFY_SOCKET": address,
           "WATCHDOG_USEC": "400000"}  # WatchdogSec=0.4s → feed every 0.2 s
    env.pop("WATCHDOG_PID", None)
    process = subprocess.Popen([sys.executable, "-m", "hardware.button_cli", "--config", str(config)], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        seen: list[str] = []
        while "READY=1" not in seen or seen[seen.index("READY=1"):].count("WATCHDOG=1") < 2:
            seen += sock.recv(4096).decode().splitlines()
        assert seen.count("READY=1") == 1
        assert any(line.startswith("STATUS=button box buttons1 connected") for line in seen)
        process.terminate()  # SIGTERM, as systemd stops it: a clean stop says so
        assert process.wait(10) == 0, process.stderr.read() if process.stderr else ""
        while "STOPPING=1" not in seen:
            seen += sock.recv(4096).decode().splitlines()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
        sock.close()
