"""End to end: the hub as a site runs it (own process, real Mosquitto, SQLite file) with the statistics plugin.

Tickets are issued, called and finished through the HTTP API; a kiosk reports its status over MQTT;
then the summary, the CSV exports and the pages are checked.
"""

from __future__ import annotations

import csv
import io
import time
import uuid

import paho.mqtt.client as mqtt
import requests
from paho.mqtt.enums import CallbackAPIVersion

from toolkit.broker import Broker
from toolkit.hub_process import HubProcess
from vuoro import protocol

KIOSK = {"Authorization": "Bearer demo-kiosk1-token-change-me"}
STAFF = {"Authorization": "Bearer demo-staff-token-change-me"}


def post(hub: HubProcess, path: str, headers: dict[str, str], **kwargs: object) -> requests.Response:
    return requests.post(f"{hub.url}{path}", headers=headers, timeout=10, **kwargs)  # type: ignore[arg-type]


def test_figures_and_exports_from_a_running_hub(hub: HubProcess, live_broker: Broker) -> None:
    for service in ("kvik", "kvik", "kvik", "bibliotekar"):
        answer = post(hub, "/api/v1/tickets", {**KIOSK, "Idempotency-Key": uuid.uuid4().hex},
                      json={"service": service, "language": "da"})
        assert answer.status_code == 201, answer.text
    assert post(hub, "/api/v1/counters/kvik1/next", STAFF).json()["call"]["ticket"] == "K001"
    assert post(hub, "/api/v1/counters/kvik2/next", STAFF).json()["call"]["ticket"] == "K002"
    assert post(hub, "/api/v1/counters/kvik1/finish", STAFF).status_code == 200
    assert post(hub, "/api/v1/counters/kvik2/no-show", STAFF).status_code == 200
    assert post(hub, "/api/v1/counters/bib1/next", STAFF).json()["call"]["ticket"] == "L001"
    assert post(hub, "/api/v1/counters/bib1/finish", STAFF).status_code == 200
    assert post(hub, "/api/v1/feedback", KIOSK, json={"rating": 5, "service": "kvik"}).status_code == 201

    # a kiosk goes offline and comes back, over MQTT as a real one would
    client = mqtt.Client(CallbackAPIVersion.VERSION2)
    client.connect("127.0.0.1", live_broker.port)
    client.loop_start()
    topic = f"{hub.topic_root}/sonderbro/devices/kiosk1/status"
    try:
        for online, printer in ((True, "ok"), (False, None), (True, "paper_out")):
            status = protocol.DeviceStatus(device="kiosk1", kind="kiosk", online=online, printer=printer)
            client.publish(topic, status.to_payload(), qos=1).wait_for_publish(5)
            time.sleep(0.05)  # keep the three changes in order on the hub's clock
    finally:
        client.disconnect()
        client.loop_stop()

    def summary() -> dict:
        answer = requests.get(f"{hub.url}/api/v1/stats/summary", params={"by": "service"}, headers=STAFF,
                              timeout=10)
        assert answer.status_code == 200, answer.text
        return answer.json()

    deadline = time.monotonic() + 10
    body = summary()
    while len(body["devices"]) < 1 and time.monotonic() < deadline:
        time.sleep(0.1)
        body = summary()
    total = body["total"]
    assert (total["issued"], total["served"], total["no_show"], total["open"], total["called"]) == (4, 2, 1, 1, 3)
    assert {g["service"]: (g["issued"], g["served"]) for g in body["groups"]} == {
        "kvik": (3, 1), "bibliotekar": (1, 1)}
    assert total["feedback_count"] == 1 and total["wait_max_s"] >= total["wait_median_s"] >= 0
    assert body["now"]["waiting"] == 1
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        stored = summary()["devices"]
        if stored and stored[0]["outages"] == 1 and stored[0]["printer_down_s"] > 0:
            break
        time.sleep(0.1)
    assert stored[0]["device"] == "kiosk1" and stored[0]["outages"] == 1

    tickets = requests.get(f"{hub.url}/api/v1/stats/tickets.csv", headers=STAFF, timeout=10)
    assert tickets.status_code == 200
    rows = list(csv.DictReader(io.StringIO(tickets.text)))
    assert [r["ticket"] for r in rows] == ["K001", "K002", "K003", "L001"]
    assert [r["status"] for r in rows] == ["done", "no_show", "waiting", "done"]
    personal = {"id", "track_token", "token", "name", "email", "phone", "cpr", "personnummer"}
    assert not personal & set(rows[0])
    issued = [post(hub, "/api/v1/tickets", {**KIOSK, "Idempotency-Key": uuid.uuid4().hex}, json={"service": "it"})]
    assert issued[0].json()["track_token"] not in requests.get(f"{hub.url}/api/v1/stats/tickets.csv",
                                                               headers=STAFF, timeout=10).text
    by_counter = requests.get(f"{hub.url}/api/v1/stats/summary.csv", params={"by": "counter"}, headers=STAFF,
                              timeout=10).text
    table = list(csv.reader(io.StringIO(by_counter)))
    assert table[0][:3] == ["counter", "issued", "served"]
    assert {r[0]: r[2] for r in table[1:]} == {"": "0", "bib1": "1", "kvik1": "1", "kvik2": "0", "total": "2"}

    assert requests.get(f"{hub.url}/api/v1/stats/summary", timeout=10).status_code == 401
    assert requests.get(f"{hub.url}/stats/", timeout=10).status_code == 200
    assert requests.get(f"{hub.url}/feedback/", timeout=10).status_code == 200
    spec = requests.get(f"{hub.url}/api/v1/openapi.json", timeout=10).json()
    assert {"/api/v1/stats/summary", "/api/v1/stats/tickets.csv", "/api/v1/feedback"} <= set(spec["paths"])
