"""The embedded broker the demo falls back on where Mosquitto is not installed."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import requests

from toolkit.broker import EmbeddedBroker
from toolkit.fixtures import MakeHub
from toolkit.mqtt_watch import Watch


def test_the_hub_works_through_the_embedded_broker_retained_state_and_last_will(tmp_path: Path,
                                                                              make_hub: MakeHub) -> None:
    with EmbeddedBroker(workdir=tmp_path / "broker") as broker:
        hub = make_hub(tmp_path / "hub", broker=broker, topic_root="emb").start()
        try:
            requests.post(f"{hub.url}/api/v1/tickets", json={"service": "kvik"}, timeout=10,
                          headers={"Authorization": "Bearer demo-kiosk1-token-change-me",
                                   "Idempotency-Key": uuid.uuid4().hex})
            screen = Watch(broker, "emb/sonderbro/#")  # a screen that connects late
            try:
                screen.wait_for(lambda w: (w.json("emb/sonderbro/queue/kvik/state") or {}).get("waiting") == 1)
                assert json.loads(screen.latest["emb/sonderbro/hub/status"])["online"] is True
                hub.kill()  # no goodbye: the broker speaks the hub's last will
                screen.wait_for(lambda w: (w.json("emb/sonderbro/hub/status") or {}).get("online") is False,
                                timeout=60)
            finally:
                screen.close()
        finally:
            hub.stop()
