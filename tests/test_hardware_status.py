"""The status publisher against a real Mosquitto, and the `vuoro printer` command."""

from __future__ import annotations

import queue
import threading
import uuid

import paho.mqtt.client as mqtt
import pytest

from hardware.cli import main
from hardware.health import Health
from hardware.printer import Printer
from hardware.samples import queue_ticket
from hardware.status import StatusPublisher
from hardware.virtual import VirtualPrinter
from vuoro.mqtt import BrokerSettings, Will, make_client
from vuoro.protocol import Topics, offline_will, parse_device_status


def _client(broker, on_message=None, *, client_id: str = "", will: Will | None = None) -> mqtt.Client:
    client = make_client(BrokerSettings(broker.url), client_id=client_id or f"t-{uuid.uuid4().hex[:8]}",
                         name="a test client", will=will)
    if on_message:
        client.on_message = on_message
    client.connect_now(10)
    client.loop_start()
    return client


def test_publishes_retained_status_only_when_it_changes(live_broker) -> None:
    topics = Topics(f"s{uuid.uuid4().hex[:6]}")
    kiosk = _client(live_broker, client_id="kiosk-1",
                    will=Will(topics.device_status("kiosk-1"), offline_will("kiosk-1", "kiosk")))
    publisher = StatusPublisher(kiosk, topics, "kiosk-1")
    try:
        with VirtualPrinter(0) as vp:
            printer = Printer(vp.url)
            printer.on_health(publisher.update)
            assert printer.print_receipt(queue_ticket()).printed  # ok → one publish (first state)
            assert printer.print_receipt(queue_ticket()).printed  # ok again → nothing new
            vp.set_paper("near_end")
            printer.status()
            printer.status()
            vp.set_paper("out")
            assert not printer.print_receipt(queue_ticket()).printed
        assert publisher.update(Health("paper_out", "out of paper")) is False  # unchanged: not sent again
        # update() only hands the message to paho's network thread: under load a watcher subscribing now could
        # still get the broker's earlier retained status ("ok"), with "out of paper" following live, unretained
        assert publisher.wait_acknowledged(10)

        seen: queue.Queue = queue.Queue()
        watcher = _client(live_broker, lambda c, u, m: seen.put(m))
        watcher.subscribe(topics.all_device_status, qos=1)
        message = seen.get(timeout=5)  # the retained one, as a staff page joining late gets it
        assert message.retain
        status = parse_device_status(message.payload)
        assert (status.device, status.kind, status.online) == ("kiosk-1", "kiosk", True)
        assert (status.printer, status.detail) == ("paper_out", "out of paper")
        watcher.disconnect()  # before loop_stop: the loop then exits at once
        watcher.loop_stop()
    finally:
        kiosk.disconnect()
        kiosk.loop_stop()


def test_publish_history_is_one_message_per_change(live_broker) -> None:
    topics = Topics(f"s{uuid.uuid4().hex[:6]}")
    seen: queue.Queue = queue.Queue()
    watcher = _client(live_broker, lambda c, u, m: seen.put(parse_device_status(m.payload)))
    subscribed = threading.Event()
    watcher.on_subscribe = lambda *_: subscribed.set()
    watcher.subscribe(topics.device_status("printer-2"), qos=1)
    # subscribe() only queues the request: under load the three changes could all be published before the broker
    # has it, and the watcher would get only the last, retained one
    assert subscribed.wait(10)
    sender = _client(live_broker)
    publisher = StatusPublisher(sender, topics, "printer-2", kind="printer")
    steps = [Health("ok", "ready"), Health("ok", "ready"), Health("paper_low", "paper low"),
             Health("paper_low", "paper low"), Health("ok", "ready")]
    sent = [publisher.update(h) for h in steps]
    assert sent == [True, False, True, False, True]
    got = [seen.get(timeout=5) for _ in range(3)]
    assert [(s.printer, s.detail) for s in got] == [("ok", None), ("paper_low", "paper low"), ("ok", None)]
    assert all(s.kind == "printer" for s in got)
    assert publisher.republish()
    assert seen.get(timeout=5).printer == "ok"
    for client in (watcher, sender):
        client.disconnect()
        client.loop_stop()
    with pytest.raises(ValueError):
        StatusPublisher(sender, topics, "x", kind="display")


def test_cli_status_and_test_print(capsys: pytest.CaptureFixture[str]) -> None:
    with VirtualPrinter(0, width=58) as vp:
        assert main(["status", vp.url]) == 0
        assert "ready (ok)" in capsys.readouterr().out
        assert main(["test", vp.url + "?paper=58"]) == 0
        assert "printed a test receipt" in capsys.readouterr().out
        (receipt,) = vp.wait_for(1)
        assert "æøå ÆØÅ äöü ÄÖÜ é É ë" in receipt.lines
        vp.set_paper("out")
        assert main(["test", vp.url]) == 1
        assert "not printed: out of paper" in capsys.readouterr().out
    assert main(["status", "tcp://127.0.0.1:1"]) == 1
    assert "printer not reachable" in capsys.readouterr().out
    assert main(["status", "nonsense://x"]) == 2
