"""One branch in the harness: its namespace, its Mosquitto, its hub (with or without ``[central]``) and its
visitors (``load.py``), all inside the namespace; only the WAN (the veth pair) leads out.

The hub listens on 0.0.0.0 *inside* the namespace: its kiosks reach it on 127.0.0.1 whatever happens to the
WAN, and the harness reaches it on the namespace's address while the WAN is up (statistics, health).
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

from toolkit.hub_process import HubProcess
from toolkit.netns import Namespace, Network
from toolkit.netns_mosquitto import Mosquitto

ROOT = Path(__file__).resolve().parents[2]
SITE = ROOT / "tests" / "sites" / "always_open.toml"
HUB_PORT = 8400
BROKER_PORT = 18830
STAFF = {"Authorization": "Bearer demo-staff-token-change-me"}


def site_file(folder: Path, bid: str, centre_url: str | None) -> tuple[str, Path]:
    """The test site (every service staffed round the clock) as branch ``bid``; with ``[central]`` when a centre
    is given. (its token, its file)"""
    token = f"{bid}-harness-token-0123456789"
    text = SITE.read_text(encoding="utf-8").replace('id = "sonderbro"', f'id = "{bid}"', 1)
    text = text.replace('name = "Sønderbro Bibliotek & Borgerservice"', f'name = "Filial {bid}"', 1)
    if centre_url:
        text += f'\n[central]\nurl = "{centre_url}"\ntoken = "{token}"\n'
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{bid}{'' if centre_url else '-alone'}.toml"
    path.write_text(text, encoding="utf-8")
    return token, path


class Branch:
    def __init__(self, network: Network, bid: str, work: Path, centre_url: str, central_broker: str):
        self.id = bid
        self.ns: Namespace = network.add(bid)
        self.dir = work / bid
        self.token, self.site = site_file(self.dir, bid, centre_url)
        self.alone_site = site_file(self.dir, bid, None)[1]
        self.broker = Mosquitto(self.dir / "mqtt", "127.0.0.1", BROKER_PORT, ns=self.ns, bridge_to=central_broker,
                                prefix=bid)
        self.hub = self.make_hub(self.site, self.dir / "hub")
        self.load: subprocess.Popen[bytes] | None = None
        self.load_file: Path | None = None
        self.seed = sum(map(ord, bid))

    def broker_alive(self) -> str | None:
        """Start the branch's Mosquitto again if it has exited (a full run once lost one, with no word in its log,
        on the shared machine); what happened, or None."""
        process = self.broker.process
        if process is not None and process.poll() is None:
            return None
        code = process.returncode if process is not None else None
        self.broker.start()
        return f"{self.id}'s Mosquitto had exited (code {code}); started again"

    def make_hub(self, site: Path, data: Path) -> HubProcess:
        return HubProcess(site, data, f"mqtt://127.0.0.1:{BROKER_PORT}", port=HUB_PORT, wrap=self.ns.wrap(),
                          listen_host="0.0.0.0", host=self.ns.address)

    def start(self) -> Branch:
        self.broker.start()
        self.hub.start(timeout=60)
        return self

    # -- visitors and staff ---------------------------------------------------------

    def start_load(self, phase: str, rate: float, call_every: float) -> Path:
        self.stop_load()
        healed = self.broker_alive()
        if healed:
            print(f"  NOTE: {healed}", flush=True)
        self.load_file = self.dir / "load" / f"{phase}.jsonl"
        self.load_file.parent.mkdir(parents=True, exist_ok=True)
        self.seed += 1
        self.load = subprocess.Popen(
            [*self.ns.wrap(), sys.executable, "-m", "bench.central_harness.load", "--url", f"http://127.0.0.1:{HUB_PORT}",
             "--out", str(self.load_file), "--rate", str(rate), "--call-every", str(call_every),
             "--seed", str(self.seed)], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=open(self.dir / "load.err", "ab"))  # noqa: SIM115
        return self.load_file

    def stop_load(self) -> None:
        if self.load and self.load.poll() is None:
            self.load.terminate()
            try:
                self.load.wait(15)
            except subprocess.TimeoutExpired:
                self.load.kill()
                self.load.wait(5)
        self.load = None

    # -- what the branch holds ------------------------------------------------------

    @property
    def store(self) -> Path:
        return self.hub.data_dir / "hub.sqlite3"

    def position(self) -> tuple[str, int]:
        """(this store's stream, the last outbox seq it committed): what the centre must reach."""
        with sqlite3.connect(f"file:{self.store}?mode=ro", uri=True, timeout=10) as db:
            stream = db.execute("SELECT stream FROM uplink_state").fetchone()[0]
            row = db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'outbox'").fetchone()
        return stream, int(row[0]) if row else 0

    def stop(self) -> None:
        self.stop_load()
        self.hub.stop()
        self.broker.stop()
