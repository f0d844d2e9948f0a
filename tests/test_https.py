"""The hub over HTTPS (issue 13, item 5): kiosk tokens no longer cross the branch network in clear.

A real hub process serves HTTPS with a certificate from a test CA made with
``openssl`` (hub.tls_cert, hub.tls_key); the kiosk's own HTTP client takes a
ticket with that CA (kiosk.toml ``hub_ca``), and refuses a hub it cannot
verify. ``vuoro doctor`` checks the same hub with ``--hub-ca``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from certs import TestCA

from kiosk.client import HubClient
from toolkit.broker import Broker
from toolkit.fixtures import MakeHub
from toolkit.hub_process import HubProcess

SITE = Path(__file__).parent / "sites" / "always_open.toml"
KIOSK_TOKEN = "demo-kiosk1-token-change-me"


@dataclass
class SecureHub:
    process: HubProcess
    ca: TestCA
    site: Path


@pytest.fixture()
def secure_hub(tmp_path: Path, make_hub: MakeHub) -> SecureHub:
    ca = TestCA.create(tmp_path / "ca")
    issued = ca.issue("vuoro-hub")  # names localhost and 127.0.0.1
    site = tmp_path / "site.toml"
    site.write_text(SITE.read_text(encoding="utf-8").replace(
        'recent_calls = 8', f'recent_calls = 8\ntls_cert = "{issued.cert}"\ntls_key = "{issued.key}"'))
    hub = make_hub(tmp_path / "hub", site=site, tls_ca=ca.cert).start()
    return SecureHub(hub, ca, site)


def test_a_kiosk_takes_a_ticket_over_https_with_the_sites_ca(secure_hub: SecureHub) -> None:
    assert secure_hub.process.url.startswith("https://")
    kiosk = HubClient(secure_hub.process.url, KIOSK_TOKEN, ca_file=str(secure_hub.ca.cert))
    answer = kiosk.issue("kvik", "da")
    assert answer.status == 201, answer
    assert answer.body["ticket"].startswith("K")


def test_a_kiosk_refuses_a_hub_it_cannot_verify_and_plain_http_gets_nothing(secure_hub: SecureHub,
                                                                           tmp_path: Path) -> None:
    stranger = TestCA.create(tmp_path / "stranger", "Someone else's CA")
    for ca_file in (None, str(stranger.cert)):  # the system's CAs, another CA: verification is on
        answer = HubClient(secure_hub.process.url, KIOSK_TOKEN, ca_file=ca_file, retries=0).issue("kvik", "da")
        assert answer.unreachable and "CERTIFICATE_VERIFY_FAILED" in answer.error_text
    plain = secure_hub.process.url.replace("https://", "http://")
    with pytest.raises(requests.ConnectionError):
        requests.post(f"{plain}/api/v1/tickets", json={"service": "kvik"}, timeout=5,
                      headers={"Authorization": f"Bearer {KIOSK_TOKEN}"})


def test_the_doctor_checks_an_https_hub_with_its_ca(secure_hub: SecureHub, live_broker: Broker,
                                                    capsys: pytest.CaptureFixture) -> None:
    from toolkit import doctor

    url = secure_hub.process.url
    doctor.main(["--config", str(secure_hub.site), "--hub", url, "--hub-ca", str(secure_hub.ca.cert),
                 "--broker", live_broker.url])
    out = capsys.readouterr().out
    assert f"[ok  ] hub: The hub at {url} is healthy" in out
    doctor.main(["--config", str(secure_hub.site), "--hub", url, "--broker", live_broker.url])
    out = capsys.readouterr().out
    assert f"[FAIL] hub: The hub at {url} answers, but its HTTPS certificate is not trusted" in out
    assert "--hub-ca FILE" in out
