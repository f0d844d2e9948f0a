"""Broker outage while desks call: how soon is the screen right, and is anything spoken late?

    .venv/bin/python bench/bench_outage.py [--outage 30] [--interval 0.5]

A real hub process and a real Mosquitto; the screen is the real signage client
(``SignageClient`` + ``SignageState``, default 5 s age limit) with the real
announcer (espeak-ng renders each call; a recording player keeps what would be
played and when). Desks call every ``interval`` seconds, round the four
counters, before and during an outage of ``outage`` seconds; when the broker
is back the desks stop until the screen shows the hub's state, then call on
for a few seconds more.

Figures, beside shared/targets.md ("broker down 30 s while desks call →
screens right ≤ 2 s after; no call spoken that is older than 5 s"):

- broker back → the screen shows every desk's ticket and the latest call as
  the hub has them; floor: broker back → a new paho client has connected,
  subscribed and received a message (the screen cannot be faster than that);
- calls spoken, and the oldest at the moment it began to play (hub and screen
  share this machine's clock, so the age is exact).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import requests  # noqa: E402

from display.announce import Announcer, RecordingPlayer  # noqa: E402
from display.client import SignageClient  # noqa: E402
from display.state import ANNOUNCE_MAX_AGE_S, SignageState  # noqa: E402
from toolkit.broker import Broker  # noqa: E402
from toolkit.hub_process import HubProcess  # noqa: E402
from vuoro.mqtt import BrokerSettings, make_client  # noqa: E402
from vuoro.protocol import Topics  # noqa: E402

SITE = ROOT / "tests" / "sites" / "always_open.toml"
KIOSK = {"Authorization": "Bearer demo-kiosk1-token-change-me"}
STAFF = {"Authorization": "Bearer demo-staff-token-change-me"}
COUNTERS = ("kvik1", "kvik2", "borger1", "bib1")


class Desks:
    """Staff calling next, round the counters, from a thread; every call's ticket and time kept."""

    def __init__(self, hub: HubProcess, interval: float):
        self.hub, self.interval = hub, interval
        self.calls: dict[str, datetime] = {}  # ticket → the hub's "at"
        self.running = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        n = 0
        while not self._stop.is_set():
            if self.running.is_set():
                answer = requests.post(f"{self.hub.url}/api/v1/counters/{COUNTERS[n % 4]}/next", headers=STAFF,
                                       timeout=10).json()
                if answer.get("call"):
                    self.calls[answer["call"]["ticket"]] = datetime.fromisoformat(answer["call"]["at"])
                n += 1
            time.sleep(self.interval)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)


def hub_picture(hub: HubProcess) -> tuple[dict[str, Any], str | None]:
    counters = requests.get(f"{hub.url}/api/v1/counters", timeout=5).json()
    calls = requests.get(f"{hub.url}/api/v1/calls", timeout=5).json()["calls"]
    return ({c["counter"]: (c["serving"] or {}).get("ticket") for c in counters},
            calls[0]["ticket"] if calls else None)


def screen_picture(client: SignageClient) -> tuple[dict[str, Any], str | None]:
    with client.lock:
        state = client.state
        serving = {cid: ((state.counter_states.get(cid) or {}).get("serving") or {}).get("ticket")
                   for cid in COUNTERS}
        return serving, (state.current_call or {}).get("ticket")


def fresh_round_trip(broker: Broker) -> float:
    """Floor: the broker just (re)started → a new paho client has connected, subscribed and received a
    message (its own). What a screen could do with no reconnect back-off at all; the screen's figure adds
    its own 0.5–2 s back-off and the hub's reconnect and republish."""
    broker.stop()
    broker.start()  # returns once the port is open, as the screen's measurement starts
    got = threading.Event()
    started = time.monotonic()
    client = make_client(BrokerSettings(broker.url), name="the floor's client")
    client.on_connect = lambda c, *a: c.subscribe("floor/#", qos=1)
    client.on_subscribe = lambda c, *a: c.publish("floor/x", b"1", qos=1)
    client.on_message = lambda *a: got.set()
    client.connect_now(10)
    client.loop_start()
    got.wait(30)
    took = time.monotonic() - started
    client.disconnect()
    client.loop_stop()
    return took


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--outage", type=float, default=30.0)
    parser.add_argument("--interval", type=float, default=0.5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="vuoro-bench-outage-") as tmp, Broker() as broker:
        root = "b" + uuid.uuid4().hex[:8]
        hub = HubProcess(SITE, Path(tmp) / "hub", broker.url, topic_root=root).start()
        player = RecordingPlayer(Path(tmp), time_scale=0)
        announcer = Announcer("da", player, workdir=Path(tmp))
        played_at: dict[str, float] = {}  # ticket → wall time it began to play
        original_play = player.play

        def play(path: Path, label: str) -> None:
            played_at.setdefault(label, time.time())
            original_play(path, label)

        player.play = play  # type: ignore[method-assign]
        client = SignageClient(broker.url, SignageState(Topics("sonderbro", root)), device="screen1",
                               on_call=announcer.announce).start()
        desks = Desks(hub, args.interval)
        try:
            for service in ("kvik", "kvik", "kvik", "it") * 60:  # bib1 serves IT help, the others KVIK
                requests.post(f"{hub.url}/api/v1/tickets", json={"service": service},
                              headers={**KIOSK, "Idempotency-Key": uuid.uuid4().hex}, timeout=10)
            desks.running.set()
            time.sleep(3)
            broker.stop()
            down = time.time()
            time.sleep(args.outage)
            desks.running.clear()
            time.sleep(args.interval + 0.5)  # the last call answered before the broker comes back
            during = {t for t, at in desks.calls.items() if at.timestamp() >= down}
            broker.start()
            back = time.monotonic()
            want = hub_picture(hub)
            while screen_picture(client) != want:
                if time.monotonic() - back > 30:
                    raise TimeoutError(f"the screen never showed {want}; it shows {screen_picture(client)}")
                time.sleep(0.01)
            right = time.monotonic() - back
            desks.running.set()
            time.sleep(5)
            desks.running.clear()
            time.sleep(2)
            after = list(desks.calls)[-1]
            deadline = time.monotonic() + 30
            while after not in played_at and time.monotonic() < deadline:
                time.sleep(0.05)
            ages = {t: played_at[t] - desks.calls[t].timestamp() for t in played_at if t in desks.calls}
            floor = fresh_round_trip(broker)
        finally:
            desks.close()
            client.stop()
            announcer.close()
            hub.stop()
    late = [t for t, age in ages.items() if age > ANNOUNCE_MAX_AGE_S]
    print(f"outage {args.outage:.0f} s, a call every {args.interval} s: {len(desks.calls)} calls, "
          f"{len(during)} during the outage")
    print(f"broker back → screen right          {right:5.2f} s   (target ≤ 2 s; floor, a new client's first "
          f"message: {floor * 1000:.1f} ms; the rest is reconnect back-off)")
    print(f"calls spoken                        {len(ages):5d}     (of them made during the outage: "
          f"{len(set(ages) & during)})")
    print(f"oldest call when it began to play   {max(ages.values()):5.2f} s   (target ≤ {ANNOUNCE_MAX_AGE_S:g} s; "
          f"spoken older than that: {len(late)})")


if __name__ == "__main__":
    main()
