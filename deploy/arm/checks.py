"""The ARM proof's checks that talk to the guest's hub from the host, over forwarded ports.

Run by deploy/arm/prove.sh with the project's .venv (paho-mqtt)::

    python deploy/arm/checks.py --site SITE.toml --http PORT --mqtt PORT COMMAND [ARGS]

Commands print one line saying what they saw and exit 0 when it is right:

    site             write the proof's site config (the example branch, every service open all day)
    health           /api/v1/health says store ok and broker connected
    http-ticket      a kiosk takes a ticket over HTTP; the hub answers 201 with a number
    mqtt             the retained hub status and queue state arrive; a button box's press over MQTT
                     calls the next visitor and the call is published
    tickets N FILE   take N tickets and write their ids to FILE (the power cut follows at once)
    tickets-kept FILE  every ticket in FILE is still known to the hub
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import threading
import time
import tomllib
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
from vuoro import protocol  # noqa: E402  (the contract: topic names and payloads)

EXAMPLE_SITE = REPO / "deploy" / "ansible" / "inventory" / "example" / "site.toml"
ALL_DAY = '["00:00-24:00"]'
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class Failed(Exception):
    pass


def write_site(path: Path) -> None:
    """The example branch with every service and the building open round the clock, so the
    proof can take tickets whatever the hour it runs (holiday exceptions dropped too)."""
    lines = []
    for line in EXAMPLE_SITE.read_text(encoding="utf-8").splitlines():
        if line.startswith("hours ="):
            line = "hours = { " + ", ".join(f"{day} = {ALL_DAY}" for day in WEEKDAYS) + " }"
        elif re.match(r"^(mon|tue|wed|thu|fri|sat|sun) = \[", line):
            line = f"{line.split(' =')[0]} = {ALL_DAY}"
        elif line.startswith(("exceptions = [", "  { date =")) or line == "]":
            continue  # holidays: the proof must be able to take a ticket on any date
        lines.append(line)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    tomllib.loads(path.read_text(encoding="utf-8"))  # still TOML


class Guest:
    def __init__(self, site: Path, http: int, mqtt_port: int) -> None:
        self.config = tomllib.loads(site.read_text(encoding="utf-8"))
        self.base = f"http://127.0.0.1:{http}"
        self.mqtt_port = mqtt_port
        self.topics = protocol.Topics(self.config["site"]["id"], self.config["hub"].get("topic_root", "vuoro"))

    def device(self, kind: str) -> tuple[str, dict[str, Any]]:
        return next((name, d) for name, d in self.config["devices"].items() if d["kind"] == kind)

    def http(self, method: str, path: str, body: dict[str, Any] | None = None, token: str | None = None,
             headers: dict[str, str] | None = None) -> tuple[int, dict[str, Any]]:
        request = urllib.request.Request(self.base + path, method=method,
                                         data=json.dumps(body).encode() if body is not None else None)
        request.add_header("Content-Type", "application/json")
        if token:
            request.add_header("Authorization", f"Bearer {token}")
        for key, value in (headers or {}).items():
            request.add_header(key, value)
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return response.status, json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"{}")

    def take_ticket(self, service: str = "kvik") -> dict[str, Any]:
        _, kiosk = self.device("kiosk")
        status, body = self.http("POST", "/api/v1/tickets", {"service": service, "language": "da"},
                                 token=kiosk["token"], headers={"Idempotency-Key": uuid.uuid4().hex})
        if status != 201:
            raise Failed(f"POST /api/v1/tickets answered {status}: {body}")
        return body

    def spare(self, kind: str) -> tuple[str, dict[str, Any]]:
        """The last device of that kind: not one the guest's own services log in as (prove.sh runs the
        first of each: kiosk1, screen1, buttons1). The broker allows one connection per login
        (use_username_as_clientid), so the checks and the running button box, both as buttons1,
        knocked each other off and the press's result never came back."""
        return [(name, d) for name, d in self.config["devices"].items() if d["kind"] == kind][-1]

    def mqtt_client(self, kind: str) -> mqtt.Client:
        name, device = self.spare(kind)
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"arm-proof-{name}-{uuid.uuid4().hex[:6]}")
        client.username_pw_set(name, device["token"])
        return client


def health(guest: Guest) -> str:
    status, body = guest.http("GET", "/api/v1/health")
    if status != 200 or body.get("store") != "ok" or body.get("broker") != "connected":
        raise Failed(f"/api/v1/health answered {status}: {body}")
    return f"store {body['store']}, broker {body['broker']}"


def http_ticket(guest: Guest) -> str:
    ticket = guest.take_ticket()
    return f"ticket {ticket['ticket']} for {ticket['service']}, position {ticket['position']}"


def mqtt_round(guest: Guest) -> str:
    """As a kiosk: read the retained state. As a button box: call the next visitor."""
    seen: dict[str, dict[str, Any]] = {}
    arrived = threading.Condition()

    def on_message(client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        with arrived:
            seen[message.topic] = json.loads(message.payload or b"{}")
            arrived.notify_all()

    def wait_for(topic: str, test: Any = lambda body: True, timeout: float = 60) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        with arrived:
            while not (topic in seen and test(seen[topic])):
                if not arrived.wait(max(0.0, deadline - time.monotonic())):
                    raise Failed(f"nothing (right) on {topic} within {timeout:.0f} s; saw {sorted(seen)}")
            return seen[topic]

    reader = guest.mqtt_client("kiosk")
    reader.on_message = on_message
    reader.connect("127.0.0.1", guest.mqtt_port)
    reader.subscribe(guest.topics.everything, qos=1)
    reader.loop_start()
    try:
        wait_for(guest.topics.hub_status, lambda body: body.get("online") is True)
        ticket = guest.take_ticket()
        queue = wait_for(guest.topics.queue_state("kvik"))
        button_name, button = guest.spare("button")
        counter = button["counters"][0]
        press = protocol.ButtonPress(press_id=uuid.uuid4().hex[:12], counter=counter, action="next",
                                     device=button_name, sent_at=time.time())
        box = guest.mqtt_client("button")
        box.on_message = on_message
        box.connect("127.0.0.1", guest.mqtt_port)
        box.subscribe(guest.topics.button_result(counter), qos=1)
        box.loop_start()
        try:
            time.sleep(1)  # the subscription is in place before the press
            box.publish(guest.topics.button_press(counter), press.to_payload(), qos=1).wait_for_publish(30)
            result = wait_for(guest.topics.button_result(counter), lambda body: body.get("press_id") == press.press_id)
        finally:
            box.loop_stop()
            box.disconnect()
        if not result.get("ok"):
            raise Failed(f"the press at {counter} was refused: {result}")
        call = wait_for(guest.topics.calls, lambda body: body.get("ticket") == result.get("ticket"))
    finally:
        reader.loop_stop()
        reader.disconnect()
    return (f"hub online; ticket {ticket['ticket']} -> queue/kvik/state ({len(json.dumps(queue))} bytes); "
            f"{button_name} pressed next at {counter} -> called {call.get('ticket')}")


def take_tickets(guest: Guest, count: int, out: Path) -> str:
    ids = [guest.take_ticket()["id"] for _ in range(count)]
    out.write_text("\n".join(ids) + "\n", encoding="utf-8")
    return f"{count} tickets taken, the last one answered 201"


def tickets_kept(guest: Guest, path: Path) -> str:
    ids = path.read_text(encoding="utf-8").split()
    _, kiosk = guest.device("kiosk")
    missing = [tid for tid in ids if guest.http("GET", f"/api/v1/tickets/{tid}", token=kiosk["token"])[0] != 200]
    if missing:
        raise Failed(f"{len(missing)} of {len(ids)} tickets are gone after the power cut: {missing[:5]}")
    return f"all {len(ids)} tickets taken before the power cut are there"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--site", type=Path, required=True)
    parser.add_argument("--http", type=int, default=0)
    parser.add_argument("--mqtt", type=int, default=0)
    parser.add_argument("command", choices=["site", "health", "http-ticket", "mqtt", "tickets", "tickets-kept"])
    parser.add_argument("args", nargs="*")
    args = parser.parse_args(argv)
    if args.command == "site":
        write_site(args.site)
        print(f"wrote {args.site}")
        return 0
    guest = Guest(args.site, args.http, args.mqtt)
    try:
        if args.command == "health":
            print(health(guest))
        elif args.command == "http-ticket":
            print(http_ticket(guest))
        elif args.command == "mqtt":
            print(mqtt_round(guest))
        elif args.command == "tickets":
            print(take_tickets(guest, int(args.args[0]), Path(args.args[1])))
        else:
            print(tickets_kept(guest, Path(args.args[0])))
    except (Failed, OSError) as error:
        print(error)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
