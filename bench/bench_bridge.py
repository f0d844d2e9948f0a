"""Bridge benchmark: how long a branch's retained state takes to reach the centre's broker over the bridge,
to a central Mosquitto and to a three-node nats-server cluster, A/B interleaved in one run.

Real parts on this one machine, every file as deployed (toolkit/bridged_brokers.py): two branch
Mosquittos, each bridged over TLS (its generated bridge.conf), one to a central Mosquitto, one to the nats
cluster (the bridge on one node, the reader on another, so the message crosses the cluster). A publisher
at each branch sends a ``board`` (retained, ~1 KB, like a hall's) ``--rate`` times a second; the centre's
reader, in the same process, notes when each arrives (one monotonic clock). The floor is the same publish
and read on the branch's own broker, measured in the same rounds.

    .venv/bin/python bench/bench_bridge.py [--rounds 3] [--messages 200] [--rate 20] [--failovers 3]

``--failovers N`` then kills (SIGKILL) the nats node the bridge is connected to, N times, while boards go on
at ``--rate``: the gap is from the kill to the first board published after it that reaches the centre (a
reader on each node; the killed node is started again and the cluster left to settle between rounds).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from certs import TestCA  # noqa: E402

from server.config import load_config  # noqa: E402
from toolkit.bridged_brokers import (  # noqa: E402
    NatsCluster,
    branch_broker,
    branch_site,
    bridge_target,
    central_mosquitto,
    centre_config,
    centre_password,
    hub_password,
    login,
    wait_until,
)
from toolkit.broker import free_port  # noqa: E402
from vuoro.mqtt import BrokerSettings, make_client  # noqa: E402


class Reader:
    """Notes the arrival time of each numbered message on one topic."""

    def __init__(self, settings: BrokerSettings, topic: str):
        self.arrived: dict[int, float] = {}
        self.ready = threading.Event()
        self.client = make_client(settings, client_id=f"bench-{os.getpid()}-{topic.replace('/', '-')[-30:]}",
                                  name="bench reader")
        self.client.on_connect = lambda c, *_: c.subscribe(topic, 0)
        self.client.on_subscribe = lambda *_: self.ready.set()
        self.client.on_message = self._on
        self.client.connect_now(10)
        self.client.loop_start()
        if not self.ready.wait(20):
            raise TimeoutError(f"could not subscribe to {topic}")

    def _on(self, _c: object, _u: object, msg: object) -> None:
        now = time.perf_counter()
        seq = json.loads(msg.payload).get("seq")  # type: ignore[attr-defined]
        if isinstance(seq, int):
            self.arrived.setdefault(seq, now)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def board(seq: int) -> bytes:
    states = {f"queue/q{i}/state": {"service": f"q{i}", "waiting": seq % 17, "estimated_wait_min": 8,
                                    "open": True, "last_called": "K012"} for i in range(6)}
    return json.dumps({"v": 1, "seq": seq, "states": states, "at": time.time()}).encode()


def run_round(publisher: object, topic: str, readers: list[Reader], messages: int, rate: float,
              start: int) -> list[list[float]]:
    sent: dict[int, float] = {}
    for i in range(messages):
        seq = start + i
        sent[seq] = time.perf_counter()
        publisher.publish(topic, board(seq), qos=0, retain=True)  # type: ignore[attr-defined]
        time.sleep(1 / rate)
    time.sleep(2)  # let the last ones arrive
    return [[(r.arrived[s] - sent[s]) * 1000 for s in sent if s in r.arrived] for r in readers]


def failover_rounds(cluster: NatsCluster, branch: object, publisher: object, ca: Path, rounds: int,
                    rate: float) -> list[float]:
    """Kill the bridge's node while boards go on; the gap until one published after the kill arrives."""
    gaps: list[float] = []
    seq = [10_000_000]
    stop = threading.Event()

    def publish() -> None:
        while not stop.is_set():
            seq[0] += 1
            publisher.publish("vuoro/nats/board", board(seq[0]), qos=0, retain=True)  # type: ignore[attr-defined]
            time.sleep(1 / rate)

    thread = threading.Thread(target=publish, daemon=True)
    thread.start()
    try:
        for _ in range(rounds):
            node = cluster.node_of(bridge_target(branch))  # type: ignore[arg-type]
            assert node, "the bridge is not connected to any node"
            readers = [Reader(login(cluster.mqtts(n), "centre", centre_password(cluster.workdir), ca),
                              "branches/nats/board") for n in cluster.names if n != node]
            time.sleep(1)
            killed_at, after = time.perf_counter(), seq[0]
            cluster.kill(node)
            wait_until(lambda after=after, readers=readers: any(s > after for r in readers for s in r.arrived),
                       120, 0.01)
            first = min(t for r in readers for s, t in r.arrived.items() if s > after)
            gaps.append((first - killed_at) * 1000)
            print(f"  failover: killed {node}; the bridge went to "
                  f"{cluster.node_of(bridge_target(branch))}; gap {gaps[-1]:.0f} ms")  # type: ignore[arg-type]
            for reader in readers:
                reader.close()
            cluster.start(node)
            settings = login(cluster.mqtts(node), "centre", centre_password(cluster.workdir), ca)
            wait_until(lambda s=settings: _try(lambda: Reader(s, "branches/nats/board")), 60, 0.5).close()
            time.sleep(5)  # the streams catch up on the node that came back
    finally:
        stop.set()
        thread.join(5)
    return gaps


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))] if ordered else float("nan")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--messages", type=int, default=200)
    parser.add_argument("--rate", type=float, default=20.0)
    parser.add_argument("--failovers", type=int, default=0)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="vuoro-bench-bridge-"))
    ca = TestCA.create(work / "ca")
    cert = ca.issue("centre")
    mq_port, nats_ports = free_port(), [free_port() for _ in range(3)]
    sites = {"mq": branch_site(work, "mq", [f"mqtts://localhost:{mq_port}"], ca.cert),
             "nats": branch_site(work, "nats", [f"mqtts://localhost:{p}" for p in nats_ports], ca.cert)}
    config = centre_config(work, sites)
    central, _ = central_mosquitto(config, work / "central", cert.cert, cert.key, mq_port)
    cluster = NatsCluster(config, work / "cluster", cert.cert, cert.key)
    cluster.mqtt_ports = dict(zip(cluster.names, nats_ports, strict=True))
    branches = {bid: branch_broker(load_config(site), work / bid) for bid, site in sites.items()}
    clients: list[object] = []
    try:
        central.start()
        cluster.start()
        # The reader on n2: the bridge starts on n1 (its first address), so every message crosses the cluster.
        nats_login = login(cluster.mqtts("n2"), "centre", centre_password(cluster.workdir), ca.cert)
        nats_reader = wait_until(lambda: _try(lambda: Reader(nats_login, "branches/nats/board")), 60, 0.5)
        mq_reader = Reader(login(f"mqtts://localhost:{mq_port}", "centre", centre_password(central.workdir), ca.cert),
                           "branches/mq/board")
        for broker in branches.values():
            broker.start()
        pubs: dict[str, object] = {}
        floors: dict[str, Reader] = {}
        for bid, broker in branches.items():
            settings = login(broker.url, "hub", hub_password(broker.workdir), ca.cert)
            pubs[bid] = make_client(settings, client_id="hub", name="bench hub")
            pubs[bid].connect_now(10)
            pubs[bid].loop_start()
            kiosk = next(d for d in load_config(sites[bid]).devices.values() if d.kind == "kiosk")
            floors[bid] = Reader(login(broker.url, kiosk.id, kiosk.token, ca.cert), f"vuoro/{bid}/board")
            clients.append(pubs[bid])
        time.sleep(3)  # both bridges connected
        results: dict[str, list[float]] = {"mq": [], "nats": []}
        floor: list[float] = []
        seq = 0
        for _ in range(args.rounds):
            for bid, reader in (("mq", mq_reader), ("nats", nats_reader)):
                lat, local = run_round(pubs[bid], f"vuoro/{bid}/board", [reader, floors[bid]], args.messages,
                                       args.rate, seq)
                results[bid] += lat
                floor += local
                seq += args.messages
        load = os.getloadavg()
        print(f"bench_bridge: {platform.node()}, {os.cpu_count()} CPUs, load {load[0]:.1f} {load[1]:.1f} "
              f"{load[2]:.1f} (after the run), {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
        print(f"{args.rounds} rounds x {args.messages} boards (~{len(board(0))} B, retained, QoS 0) at "
              f"{args.rate:g}/s per broker, interleaved")
        for bid, name in (("mq", "central Mosquitto"), ("nats", "nats-server cluster (3 nodes, across)")):
            lat = results[bid]
            sent = args.rounds * args.messages
            print(f"  {name:40s} arrived {len(lat)}/{sent}  p50 {pct(lat, 50):6.2f} ms  p99 {pct(lat, 99):6.2f} ms"
                  f"  max {max(lat) if lat else float('nan'):6.2f} ms  mean {statistics.fmean(lat):6.2f} ms")
        print(f"  {'floor: the branch broker itself':40s} arrived {len(floor)}/{2 * sent}  p50 {pct(floor, 50):6.2f} ms"
              f"  p99 {pct(floor, 99):6.2f} ms")
        for reader in (mq_reader, nats_reader, *floors.values()):
            reader.close()
        if args.failovers:
            gaps = failover_rounds(cluster, branches["nats"], pubs["nats"], ca.cert, args.failovers, args.rate)
            print(f"  nats node lost under the bridge, {len(gaps)} times: gap p50 {pct(gaps, 50):.0f} ms, "
                  f"max {max(gaps):.0f} ms (load {os.getloadavg()[0]:.1f})")
    finally:
        for client in clients:
            client.disconnect()  # type: ignore[attr-defined]
            client.loop_stop()  # type: ignore[attr-defined]
        for broker in branches.values():
            broker.close()
        cluster.stop()
        central.close()
    return 0


def _try(make):  # type: ignore[no-untyped-def]
    try:
        return make()
    except (TimeoutError, OSError):
        return None


if __name__ == "__main__":
    sys.exit(main())
