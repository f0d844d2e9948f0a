"""Fault: power cut during writes (issue 10), the repeated-cycle and cut-disk variant.

tests/test_hub.py kills the hub once under load. Here the hub is killed
again and again (``CYCLES`` times) while kiosks issue tickets and a desk
calls and finishes, each time at a random moment, and restarted on a WAL
that was never checkpointed cleanly. In every cycle the process is also
frozen mid-write (SIGSTOP) and its database + WAL copied as they lie on
disk, like the image of a disk whose power was cut at that instant; the
copy is opened on its own (SQLite recovers from the WAL) and must hold
every ticket answered before the freeze.

What must hold at the end, and for every cut-disk copy:
- ``PRAGMA integrity_check`` = ok, ``PRAGMA foreign_key_check`` empty;
- every acknowledged ticket is present, with the number the kiosk was given;
- numbers are unique and gap-free per letter (targets.md: 0 repeated);
- every retry (same Idempotency-Key) after a restart gets its original ticket.
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import signal
import sqlite3
import threading
import time
import uuid
from pathlib import Path

import pytest
import requests

from toolkit.fixtures import MakeHub
from toolkit.hub_process import HubProcess

SITE = Path(__file__).parent / "sites" / "always_open.toml"
KIOSKS = [{"Authorization": f"Bearer demo-kiosk{n}-token-change-me"} for n in (1, 2)]
STAFF = {"Authorization": "Bearer demo-staff-token-change-me"}
CYCLES = 5
SERVICES = {"kvik": "K", "it": "H"}


class Load:
    """Kiosks issuing and a desk calling, against whatever hub is up; remembers what was answered."""

    def __init__(self, hub: HubProcess, rng: random.Random):
        self.hub, self.rng = hub, rng
        self.acked: dict[tuple[int, str], dict] = {}  # (kiosk, key) → the ticket that kiosk was given
        self.attempted: list[tuple[int, str, str]] = []  # (kiosk, key, service)
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.threads: list[threading.Thread] = []

    def kiosk(self, n: int) -> None:
        i = 0
        while not self.stop.is_set():
            key, service = f"pc-{n}-{uuid.uuid4().hex[:12]}-{i}", ("kvik", "it")[i % 2]
            with self.lock:
                self.attempted.append((n % 2, key, service))
            with contextlib.suppress(requests.RequestException):
                answer = requests.post(f"{self.hub.url}/api/v1/tickets", json={"service": service},
                                       headers={**KIOSKS[n % 2], "Idempotency-Key": key}, timeout=2)
                if answer.status_code in (200, 201):
                    with self.lock:
                        self.acked[(n % 2, key)] = answer.json()
            i += 1

    def desk(self) -> None:
        actions = ["next", "next", "finish", "no-show", "recall"]
        while not self.stop.is_set():
            action = self.rng.choice(actions)
            with contextlib.suppress(requests.RequestException):
                requests.post(f"{self.hub.url}/api/v1/counters/kvik1/{action}", headers=STAFF, timeout=2)

    def start(self) -> None:
        self.stop.clear()
        self.threads = [threading.Thread(target=self.kiosk, args=(n,), daemon=True) for n in range(3)]
        self.threads.append(threading.Thread(target=self.desk, daemon=True))
        for t in self.threads:
            t.start()

    def halt(self) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(15)

    def count(self) -> int:
        with self.lock:
            return len(self.acked)

    def snapshot(self) -> dict[tuple[int, str], dict]:
        with self.lock:
            return dict(self.acked)


def check_store(path: Path, must_hold: dict[tuple[int, str], dict], what: str) -> dict[str, list[int]]:
    """Integrity, foreign keys, every acknowledged ticket, gap-free numbers. Returns numbers per letter."""
    db = sqlite3.connect(path)
    try:
        assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)], f"{what}: integrity_check failed"
        assert db.execute("PRAGMA foreign_key_check").fetchall() == [], f"{what}: foreign keys broken"
        stored = {tid: label for tid, label in db.execute("SELECT id, label FROM tickets")}
        missing = [t["ticket"] for t in must_hold.values() if stored.get(t["id"]) != t["ticket"]]
        assert not missing, f"{what}: {len(missing)} acknowledged tickets missing or changed, e.g. {missing[:5]}"
        numbers: dict[str, list[int]] = {}
        for letter in SERVICES.values():
            numbers[letter] = [n for (n,) in db.execute(
                "SELECT number FROM tickets WHERE letter = ? ORDER BY number", (letter,))]
            assert numbers[letter] == list(range(1, len(numbers[letter]) + 1)), \
                f"{what}: {letter} numbers repeat or leave a gap"
        return numbers
    finally:
        db.close()


def cut_disk_copy(hub: HubProcess, data: Path, into: Path) -> None:
    """Freeze the hub mid-write and copy database + WAL as they are on disk at that instant.

    The -shm index is left behind on purpose: it is memory, not disk, and SQLite rebuilds it."""
    assert hub.process is not None
    os.kill(hub.process.pid, signal.SIGSTOP)
    try:
        into.mkdir(parents=True)
        for name in ("hub.sqlite3", "hub.sqlite3-wal"):
            if (data / name).exists():
                shutil.copyfile(data / name, into / name)
    finally:
        os.kill(hub.process.pid, signal.SIGCONT)


@pytest.mark.slow
def test_repeated_power_cuts_under_load_lose_nothing_committed(tmp_path: Path, make_hub: MakeHub) -> None:
    seed = int.from_bytes(os.urandom(4), "big")
    rng = random.Random(seed)
    data = tmp_path / "hub"
    hub = make_hub(data)
    load = Load(hub, rng)
    copies = 0
    try:
        for cycle in range(CYCLES):
            hub.start()
            load.start()
            # a random moment: after a random number of further answers
            target = load.count() + rng.randint(20, 150)
            deadline = time.monotonic() + 30
            while load.count() < target and time.monotonic() < deadline:
                time.sleep(0.005)
            assert load.count() >= target, f"seed {seed}: the load never got going in cycle {cycle}"
            before_freeze = load.snapshot()  # answered, so committed: must be in the copy
            copy = tmp_path / f"cut-{cycle}"
            cut_disk_copy(hub, data, copy)
            check_store(copy / "hub.sqlite3", before_freeze, f"seed {seed}, cut-disk copy {cycle}")
            copies += 1
            time.sleep(rng.uniform(0, 0.2))  # and the real cut a moment later, wherever the writer is
            hub.kill()
            load.halt()
        hub.start()
        # every retry, from the kiosk that sent it, answered with its original ticket; in-flight ones once
        acked = load.snapshot()
        session = requests.Session()
        for kiosk, key, service in load.attempted:
            again = session.post(f"{hub.url}/api/v1/tickets", json={"service": service},
                                 headers={**KIOSKS[kiosk], "Idempotency-Key": key}, timeout=10)
            assert again.status_code in (200, 201), again.text
            if (kiosk, key) in acked:
                original = acked[(kiosk, key)]
                assert again.status_code == 200, f"seed {seed}: {key} was answered before a cut, now made anew"
                assert (again.json()["id"], again.json()["ticket"]) == (original["id"], original["ticket"])
            else:
                acked[(kiosk, key)] = again.json()
        hub.stop()
    finally:
        load.halt()
        hub.kill()
    assert copies == CYCLES
    numbers = check_store(data / "hub.sqlite3", acked, f"seed {seed}, after {CYCLES} cuts")
    # each attempted key holds exactly one ticket, and no ticket exists that no key asked for
    assert sum(len(n) for n in numbers.values()) == len({(k, key) for k, key, _ in load.attempted})
