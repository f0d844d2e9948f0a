"""A branch on a network of its own, its WAN cut: TCP left half-open, as a real outage leaves it.

A killed process closes its sockets (the kernel sends FIN or RST), so the centre killed in
test_central_e2e.py never shows what a cut line does: the uplink's request goes out on a connection
whose other end never answers, and nothing says so. Here the branch's hub, its Mosquitto and its kiosk
live in a network namespace (``toolkit/netns.py``), the centre on the WAN bridge, and the WAN side of
the veth is set down under load: the kiosk goes on (every ticket 201), the hub's health says the rows
wait on the centre (never "idle" with rows waiting), the uplink gives up the dead connection by its
timeouts, and after the link is back every row reaches the centre exactly once.

Needs root (``ip netns``): CI runs as root; elsewhere the test says why it cannot run.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import requests

from tests.conftest import TEST_SITE
from tests.test_central_e2e import KIOSK
from toolkit.broker import free_port
from toolkit.netns import Namespace, Network, unavailable
from toolkit.netns_mosquitto import Mosquitto
from toolkit.polling import wait_until

pytestmark = pytest.mark.skipif(unavailable() is not None, reason=str(unavailable()))
HUB_PORT, BROKER_PORT = 8400, 18830


@pytest.fixture()
def network() -> Iterator[Network]:
    with Network() as net:
        yield net


class Branch:
    """One branch inside its namespace: reached from inside (its kiosk) whatever the WAN does."""

    def __init__(self, ns: Namespace, hub: Any):
        self.ns, self.hub = ns, hub

    def inside(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        url = f"http://127.0.0.1:{HUB_PORT}{path}"
        return self.ns.run(lambda: requests.request(method, url, timeout=15, **kwargs))

    def issue(self) -> str:
        answer = self.inside("POST", "/api/v1/tickets", json={"service": "kvik", "language": "da"},
                             headers={**KIOSK, "Idempotency-Key": uuid.uuid4().hex})
        assert answer.status_code == 201, answer.text
        return str(answer.json()["ticket"])

    def uplink(self) -> dict[str, Any]:
        return dict(self.inside("GET", "/api/v1/health").json()["uplink"])


def in_step(database: str, store: Path) -> bool:
    import sqlite3

    with sqlite3.connect(f"file:{store}?mode=ro", uri=True) as db:
        branch = (set(db.execute("SELECT id, status FROM tickets")),
                  {f"{t}/{i}/{at}" for t, i, at in db.execute("SELECT ticket_id, id, at FROM ticket_log")})
    with psycopg.connect(database) as db:
        central = (set(db.execute("SELECT id, status FROM tickets WHERE branch = 'north'")),
                   [r[0] for r in db.execute("SELECT key FROM ticket_events WHERE branch = 'north'")])
    return branch[0] == central[0] and branch[1] == set(central[1]) and len(central[1]) == len(branch[1])


def test_a_wan_cut_leaves_tcp_half_open_the_branch_serves_on_and_ships_everything_once_after(
        tmp_path: Path, network: Network, make_hub: Any, make_central: Any, postgres_db: str) -> None:
    ns = network.add("north")
    port = free_port()
    token = "north-uplink-token-0123456789"
    text = TEST_SITE.read_text(encoding="utf-8").replace('id = "sonderbro"', 'id = "north"', 1)
    site = tmp_path / "north.toml"
    site.write_text(text + f'\n[central]\nurl = "http://{network.gateway}:{port}"\ntoken = "{token}"\n'
                    'heartbeat_s = 1\n', encoding="utf-8")
    Mosquitto(tmp_path / "mqtt", "127.0.0.1", BROKER_PORT, ns=ns).start()  # inside: deleted with the namespace
    make_central({"north": (token, site)}, port=port, host=network.gateway).start()
    hub = make_hub(tmp_path / "north", site=site, broker=f"mqtt://127.0.0.1:{BROKER_PORT}", port=HUB_PORT,
                   wrap=ns.wrap(), listen_host="0.0.0.0", host=ns.address).start()
    branch = Branch(ns, hub)
    store = hub.data_dir / "hub.sqlite3"
    assert [branch.issue() for _ in range(2)] == ["K001", "K002"]
    wait_until(lambda: in_step(postgres_db, store), "the centre to hold the branch's first tickets")

    ns.cut()  # the WAN side down: no FIN, no RST; the uplink's connection is left half-open
    seen: list[dict[str, Any]] = []

    def given_up_on_the_dead_line() -> bool:
        branch.issue()  # the kiosk goes on, on its own network: 201 (asserted in issue)
        seen.append(branch.uplink())
        return seen[-1]["state"] == "unreachable" and seen[-1]["backlog"] > 0

    wait_until(given_up_on_the_dead_line, "the uplink to give up the half-open connection and say the centre is "
                                          "unreachable", timeout=60)
    # The dead line was visible: a request waiting on the centre, then given up; once rows waited, never "idle"
    states = [s["state"] for s in seen]
    assert any(s["state"] == "sending" and s["waiting_s"] for s in seen) or states[0] == "unreachable", states
    waiting = next(i for i, state in enumerate(states) if state != "idle")
    assert "idle" not in states[waiting:], states
    # A few more tries on the cut line: each is logged once per kind of trouble, not once per try (urllib3 names a
    # new connection object in each timeout's text, which made every try read as new: 120 lines in a 10-min cut)
    wait_until(lambda: branch.uplink()["failures"] >= 5, "five tries in a row not reaching the centre", timeout=60)
    branch.issue()
    tickets_in_cut = len(seen) + 1
    logged = [line for line in hub.log_path.read_text(encoding="utf-8").splitlines() if "cannot be reached" in line]
    assert 1 <= len(logged) <= 3, logged  # no route / connect timed out / the dead request's read timeout
    assert "0x" not in logged[-1]

    ns.restore()
    wait_until(lambda: in_step(postgres_db, store), "every row of the cut at the centre, once", timeout=60)
    with psycopg.connect(postgres_db) as db:
        labels = [r[0] for r in db.execute("SELECT label FROM tickets WHERE branch = 'north' ORDER BY label")]
    assert labels == [f"K{n:03d}" for n in range(1, 3 + tickets_in_cut)]
    wait_until(lambda: branch.uplink()["state"] == "idle" and branch.uplink()["backlog"] == 0,
               "the uplink to be idle with nothing waiting")
