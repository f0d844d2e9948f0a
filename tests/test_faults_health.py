"""Health that lies, devices that pose (issue 13, item 9), through a real hub process.

The full disk is real: the hub runs in a mount namespace of its own
(``unshare``) with a 4 MB tmpfs as its data directory, and the test fills
that filesystem to the last byte from outside (through ``/proc/<pid>/root``).
"""

from __future__ import annotations

import contextlib
import errno
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import requests

from toolkit.fixtures import MakeHub
from toolkit.hub_process import HubProcess
from vuoro import protocol

KIOSK = {"Authorization": "Bearer demo-kiosk1-token-change-me"}
STAFF = {"Authorization": "Bearer demo-staff-token-change-me"}
# Run the hub with a small filesystem of its own mounted on its data directory ("$0").
SMALL_DISK = ["unshare", "--user", "--map-root-user", "--mount",
              "sh", "-c", 'mount -t tmpfs -o size=4m vuoro-disk "$0" && exec "$@"']


def small_disks_possible(where: Path) -> bool:
    where.mkdir(exist_ok=True)
    probe = subprocess.run([*SMALL_DISK, str(where), "true"], capture_output=True, timeout=10)
    return probe.returncode == 0


def health(hub: HubProcess) -> tuple[int, dict[str, Any]]:
    answer = requests.get(f"{hub.url}/api/v1/health", timeout=10)
    return answer.status_code, answer.json()


def until_health(hub: HubProcess, condition: Any, timeout: float = 20.0) -> tuple[int, dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while not condition(*(answer := health(hub))):
        assert time.monotonic() < deadline, f"health kept saying {answer}"
        time.sleep(0.1)
    return answer


def issue(hub: HubProcess) -> requests.Response:
    return requests.post(f"{hub.url}/api/v1/tickets", json={"service": "kvik"},
                         headers={**KIOSK, "Idempotency-Key": uuid.uuid4().hex}, timeout=10)


def fill(path: Path) -> int:
    """Write until the filesystem says it is full; return how many bytes went in."""
    written = 0
    with open(path, "wb") as filler:
        try:
            while True:
                filler.write(b"\0" * 65536)
                filler.flush()
                written += 65536
        except OSError as exc:
            assert exc.errno == errno.ENOSPC, exc
    return written


def test_with_the_disk_full_health_says_the_store_cannot_commit(tmp_path: Path, make_hub: MakeHub) -> None:
    disk = tmp_path / "disk"
    if not small_disks_possible(disk):
        pytest.skip("this kernel refuses unprivileged user and mount namespaces (unshare -rm): no small disk")
    hub = make_hub(disk,
                     log_path=tmp_path / "hub.log", wrap=[*SMALL_DISK, str(disk)]).start()
    assert hub.process is not None
    filler = Path(f"/proc/{hub.process.pid}/root") / disk.relative_to("/") / "filler"
    try:
        assert health(hub)[1]["store"] == "ok"
        tickets = [issue(hub).json() for _ in range(3)]
        assert [t["ticket"] for t in tickets] == ["K001", "K002", "K003"]

        assert fill(filler) > 0
        # Nothing is written meanwhile: health's own probe must find out (it probes when the last commit
        # is older than a second, so a flood of health requests cannot turn into a flood of writes).
        status, body = until_health(hub, lambda status, body: status == 503)
        assert body["status"] == "degraded", body
        assert body["store"].startswith("cannot commit") and "full" in body["store"], body
        refused = issue(hub)
        assert refused.status_code == 503, refused.text
        assert refused.json()["error"]["code"] == "store_unavailable"
        assert health(hub)[1]["store"] != "ok"  # the failed commit itself

        filler.unlink()
        until_health(hub, lambda status, body: body["store"] == "ok")
        assert issue(hub).json()["ticket"] == "K004"  # nothing lost, no number skipped or repeated
        for ticket in tickets:
            assert requests.get(f"{hub.url}/api/v1/tickets/{ticket['id']}", headers=KIOSK, timeout=5).ok
    finally:
        with contextlib.suppress(OSError):
            filler.unlink()
        hub.stop()


def test_a_device_is_what_the_site_config_says_not_what_it_claims(hub: HubProcess, watch: Any) -> None:
    base = f"{hub.topic_root}/sonderbro"
    box = watch(f"{base}/#")
    posing = protocol.DeviceStatus("kiosk1", "printer", True, printer="ok")  # a kiosk saying it is a printer
    stranger = protocol.DeviceStatus("intruder", "kiosk", True)  # not a device of this site at all
    for status in (stranger, posing):
        box.client.publish(f"{base}/devices/{status.device}/status", status.to_payload(), qos=1,
                           retain=True).wait_for_publish(5)
    deadline = time.monotonic() + 10
    devices: list[dict[str, Any]] = []
    while not devices:
        assert time.monotonic() < deadline, "the hub never listed kiosk1"
        devices = requests.get(f"{hub.url}/api/v1/devices", headers=STAFF, timeout=5).json()
        time.sleep(0.05)
    assert [(d["device"], d["kind"]) for d in devices] == [("kiosk1", "kiosk")]
