"""Screenshots of the centre's overview page, for the docs (``docs/screenshots/central/``).

Starts what a municipality runs, on this machine: a private PostgreSQL, a Mosquitto, the centre and two
branch hubs with ``[central]``; issues and calls tickets at both, reports a kiosk out of paper over MQTT
at one, SIGKILLs the other and waits a minute (so the page marks it), then photographs the page in
Chromium in a few languages, and once more after a ticket has reached the open page live::

    .venv/bin/python -m toolkit.central_screenshots docs/screenshots/central
"""

from __future__ import annotations

import sys
import tempfile
import time
import uuid
from pathlib import Path

import requests

from toolkit.broker import Broker, free_port, fresh_root
from toolkit.central_process import ADMIN_TOKEN, CentralProcess, write_centre_config
from toolkit.hub_process import HubProcess
from toolkit.polling import wait_until
from toolkit.postgres import PostgresCluster

ROOT = Path(__file__).resolve().parent.parent
SITE = ROOT / "tests" / "sites" / "always_open.toml"
KIOSK = {"Authorization": "Bearer demo-kiosk1-token-change-me"}
STAFF = {"Authorization": "Bearer demo-staff-token-change-me"}
BRANCHES = {"north": "Nordby Bibliotek", "south": "Sydby Bibliotek & Borgerservice"}


def branch_site(folder: Path, site_id: str, name: str, centre_port: int) -> tuple[str, Path]:
    token = f"{site_id}-uplink-token-0123456789"
    text = SITE.read_text(encoding="utf-8").replace('id = "sonderbro"', f'id = "{site_id}"', 1)
    text = text.replace('name = "Sønderbro Bibliotek & Borgerservice"', f'name = "{name}"', 1)
    text += f'\n[central]\nurl = "http://127.0.0.1:{centre_port}"\ntoken = "{token}"\nheartbeat_s = 1\n'
    path = folder / f"{site_id}.toml"
    path.write_text(text, encoding="utf-8")
    return token, path


def kiosk_out_of_paper(broker: Broker, hub: HubProcess, site_id: str) -> None:
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    from vuoro import protocol

    client = mqtt.Client(CallbackAPIVersion.VERSION2)
    client.connect("127.0.0.1", broker.port)
    client.loop_start()
    status = protocol.DeviceStatus(device="kiosk1", kind="kiosk", online=True, printer="paper_out")
    client.publish(f"{hub.topic_root}/{site_id}/devices/kiosk1/status", status.to_payload(), qos=1).wait_for_publish(5)
    time.sleep(2)
    client.loop_stop()
    client.disconnect()


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    out = Path(args[0] if args else "docs/screenshots/central")
    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="vuoro-central-shots-"))
    with PostgresCluster() as pg, Broker() as broker:
        port = free_port()
        sites = {bid: branch_site(work, bid, name, port) for bid, name in BRANCHES.items()}
        config = write_centre_config(work / "centre.toml", pg.create_database("central"), sites,
                                     name="Sønderbro Kommune")
        centre = CentralProcess(config, port=port).start()
        hubs = {bid: HubProcess(path, work / bid, broker.url, topic_root=fresh_root()).start()
                for bid, (_, path) in sites.items()}
        try:
            for bid, hub in hubs.items():
                for service in ["kvik"] * (7 if bid == "north" else 4) + ["bibliotekar", "it"]:
                    requests.post(f"{hub.url}/api/v1/tickets", json={"service": service, "language": "da"},
                                  headers={**KIOSK, "Idempotency-Key": uuid.uuid4().hex}, timeout=10).raise_for_status()
                for _ in range(2):
                    requests.post(f"{hub.url}/api/v1/counters/kvik1/next", headers=STAFF, timeout=10).raise_for_status()
            kiosk_out_of_paper(broker, hubs["north"], "north")
            hubs["south"].kill()  # a branch cut off: the page marks it after a minute
            time.sleep(62)
            from playwright.sync_api import sync_playwright

            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--headless", "--no-sandbox"])
                pages = {}
                for lang in ("da", "en", "fi"):
                    page = pages[lang] = browser.new_page(
                        viewport={"width": 1100, "height": 900},
                        extra_http_headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
                    page.goto(f"{centre.url}/?lang={lang}")
                    page.screenshot(path=str(out / f"centre-overview-{lang}.png"), full_page=True)
                # the English page left open: a ticket at the north branch reaches it live, with no reload
                requests.post(f"{hubs['north'].url}/api/v1/tickets", json={"service": "it", "language": "da"},
                              headers={**KIOSK, "Idempotency-Key": uuid.uuid4().hex}, timeout=10).raise_for_status()
                page = pages["en"]
                today = page.locator('section[data-branch="north"] dl dd').nth(3)  # tickets today (9 before)
                wait_until(lambda: today.inner_text() == "10", "the ticket on the open page", 60)
                page.screenshot(path=str(out / "centre-overview-live-en.png"), full_page=True)
                browser.close()
        finally:
            for hub in hubs.values():
                hub.stop()
            centre.stop()
    print(f"screenshots in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
