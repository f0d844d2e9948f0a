"""Texts and e-mails when the turn nears (issue 21, docs/phone.md): through a real SMTP server (aiosmtpd) and a
local HTTP endpoint standing in for the SMS gateway, both on loopback — nothing leaves the machine.

Sent once per threshold, never to someone who did not ask, never after the contact is forgotten; a gateway
that is down delays and retries with back-off, and the hub keeps handing out tickets meanwhile.
"""

from __future__ import annotations

import json
import threading
import time
import tomllib
from collections.abc import Iterator
from email import message_from_bytes, policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller

from server.config import SAMPLE_SITE, parse_config
from toolkit.broker import Broker, free_port
from toolkit.hub_in_process import DEMO_STAFF_BLOCK, RunningHub, running_hub
from toolkit.polling import wait_until

STAFF = {"Authorization": "Bearer demo-staff-token-change-me"}


class Inbox:
    """aiosmtpd's handler: every message the real SMTP server received."""

    def __init__(self) -> None:
        self.messages: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's name
        self.messages.append(message_from_bytes(envelope.content, policy=policy.default))
        return "250 OK"


class Gateway(ThreadingHTTPServer):
    """A stand-in for the SMS gateway: records each POST; answers 503 while ``down``; holds each request until
    ``release`` is set (a gateway that hangs)."""

    def __init__(self) -> None:
        self.texts: list[dict[str, Any]] = []
        self.tries = 0
        self.down = 0  # answer 503 to this many requests first
        self.release = threading.Event()
        self.release.set()
        self.auth: list[str | None] = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(handler) -> None:  # noqa: N802, N805 - http.server's name; the server is self
                body = json.loads(handler.rfile.read(int(handler.headers["Content-Length"])))
                self.tries += 1
                self.auth.append(handler.headers.get("Authorization"))
                self.release.wait(20)
                if self.down > 0:
                    self.down -= 1
                    handler.send_response(503)
                    handler.end_headers()
                    return
                self.texts.append(body)
                handler.send_response(200)
                handler.send_header("Content-Type", "application/json")
                handler.end_headers()
                handler.wfile.write(b'{"ok": true}')

            def log_message(handler, *args: Any) -> None:  # noqa: N805
                pass

        super().__init__(("127.0.0.1", free_port()), Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/send"


@pytest.fixture()
def smtp() -> Iterator[tuple[Inbox, int]]:
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield inbox, port
    controller.stop()


@pytest.fixture()
def gateway() -> Iterator[Gateway]:
    server = Gateway()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture()
def notify_hub(live_broker: Broker, tmp_path: Path, smtp: tuple[Inbox, int],
               gateway: Gateway) -> Iterator[RunningHub]:
    data = tomllib.loads(SAMPLE_SITE.read_text(encoding="utf-8"))
    data["hub"]["broker"] = live_broker.url
    data["hub"]["database"] = f"sqlite:///{tmp_path / 'hub.sqlite3'}"
    data["staff"] = DEMO_STAFF_BLOCK
    data["notify"] = {"sms_url": gateway.url, "sms_token": "gateway-secret", "smtp_host": "127.0.0.1",
                      "smtp_port": smtp[1], "smtp_from": "ko@sonderbro.example"}
    with running_hub(parse_config(data, tmp_path / "site.toml")) as running:
        running.app.state.notifier.first_retry_s = 0.2  # the back-off's shape, at test speed
        yield running


def ticket(running: RunningHub, lang: str = "da") -> tuple[str, str]:
    made = running.hub.call(lambda engine, now: engine.issue("kvik", lang, now)).ticket
    return made.label, made.track_token


def ask(url: str, token: str, channel: str, to: str) -> httpx.Response:
    return httpx.post(f"{url}/api/v1/track/{token}/notify", json={"channel": channel, "to": to}, timeout=10)


def call_next(url: str) -> None:
    import uuid

    answer = httpx.post(f"{url}/api/v1/counters/kvik1/next", headers={**STAFF, "Idempotency-Key": uuid.uuid4().hex},
                        timeout=10)
    assert answer.status_code == 200, answer.text


def test_near_and_called_are_sent_once_each_and_only_to_who_asked(notify_hub: RunningHub, smtp: tuple[Inbox, int],
                                                                   gateway: Gateway) -> None:
    inbox, _ = smtp
    url = notify_hub.url
    assert httpx.get(f"{url}/api/v1/phone/notify", timeout=10).json() == {"channels": ["sms", "email"]}
    labels = [ticket(notify_hub)[0] for _ in range(4)]  # four before: not near (kvik near_turn = 3)
    mine, token = ticket(notify_hub, "sv")
    silent, _ = ticket(notify_hub)  # someone who gave nothing
    assert ask(url, token, "email", "anna@example.org").status_code == 200
    assert ask(url, token, "sms", "not a number").status_code == 422
    time.sleep(0.5)
    assert inbox.messages == []  # not near yet
    call_next(url)  # three before: near
    wait_until(lambda: len(inbox.messages) == 1, "the near e-mail")
    near = inbox.messages[0]
    assert near["To"] == "anna@example.org" and near["From"] == "ko@sonderbro.example"
    assert near["Subject"] == f"{mine}: Snart din tur. Kom till väntområdet."  # in the ticket's language
    for _ in range(2):
        call_next(url)  # still near: nothing more
    time.sleep(0.5)
    assert len(inbox.messages) == 1
    for _ in range(2):
        call_next(url)
    wait_until(lambda: len(inbox.messages) == 2, "the called e-mail")
    assert inbox.messages[1]["Subject"] == f"{mine}: Du är kallad till Skranke 1"
    assert "Sønderbro" in inbox.messages[1].get_content()
    call_next(url)  # the silent one is called too: nothing, to no one
    time.sleep(0.5)
    assert len(inbox.messages) == 2 and gateway.texts == [] and silent not in str([m["Subject"] for m in
                                                                                   inbox.messages])
    assert labels[0] not in str([m["Subject"] for m in inbox.messages])


def test_a_contact_is_forgotten_with_the_visit_and_nothing_is_sent_after(notify_hub: RunningHub,
                                                                          gateway: Gateway) -> None:
    url = notify_hub.url
    for _ in range(5):
        ticket(notify_hub)
    label, token = ticket(notify_hub)
    assert ask(url, token, "sms", "+45 12 34 56 78").status_code == 200
    notifier = notify_hub.app.state.notifier
    assert len(notifier.contacts) == 1
    assert httpx.post(f"{url}/api/v1/track/{token}/leave", timeout=10).json()["status"] == "left"
    assert notifier.contacts == {}  # deleted with the ticket
    for _ in range(6):
        call_next(url)
    time.sleep(0.5)
    assert gateway.texts == [] and gateway.tries == 0
    # Asking on a ticket that no longer waits is refused; so is a channel the site does not send by.
    assert ask(url, token, "sms", "+45 12 34 56 78").status_code == 409


def test_a_gateway_that_is_down_delays_retries_and_never_blocks_the_queue(notify_hub: RunningHub,
                                                                           gateway: Gateway) -> None:
    url = notify_hub.url
    label, token = ticket(notify_hub)
    gateway.down = 2  # two refusals
    gateway.release.clear()  # ... and the first request hangs until the test lets it go
    assert ask(url, token, "sms", "+4512345678").status_code == 200  # no one before: near at once
    wait_until(lambda: gateway.tries == 1, "the sender reaching the hanging gateway")
    # While the gateway holds the sender, the hub hands out tickets as usual (a blocked writer would time out).
    for i in range(10):
        made = httpx.post(f"{url}/api/v1/tickets", json={"service": "kvik", "language": "da"}, timeout=5,
                          headers={"Authorization": "Bearer demo-kiosk1-token-change-me",
                                   "Idempotency-Key": f"kiosk-during-outage-{i:02d}"})
        assert made.status_code == 201
    assert gateway.tries == 1 and gateway.texts == []
    gateway.release.set()
    wait_until(lambda: len(gateway.texts) == 1, "the text after two refusals", timeout=15)
    assert gateway.tries == 3 and gateway.texts[0] == {"to": "+4512345678",
                                                       "text": f"{label}: Din tur nærmer sig. Kom hen til "
                                                               f"venteområdet. — Sønderbro Bibliotek & Borgerservice"}
    assert gateway.auth[-1] == "Bearer gateway-secret"
    devices = httpx.get(f"{url}/api/v1/devices", headers=STAFF, timeout=10).json()
    alerts = next(d for d in devices if d["device"] == "notify")["alerts"]
    assert [a["code"] for a in alerts] == ["notify_retry", "notify_retry"]
    assert alerts[0]["message"] == f"Could not send a sms for {label}: HTTP 503; trying again."
    assert "4512345678" not in str(alerts)  # the number never reaches the staff page


@pytest.mark.browser
def test_the_visitor_asks_on_the_phone_page_and_gets_the_e_mail(notify_hub: RunningHub, smtp: tuple[Inbox, int],
                                                                 browser: Any) -> None:
    from playwright.sync_api import expect

    from toolkit.accessibility import PHONE, assert_accessible

    inbox, _ = smtp
    url = notify_hub.url
    for _ in range(4):
        ticket(notify_hub)
    label, token = ticket(notify_hub, "nl")
    page = browser.new_context(viewport=PHONE, locale="en-GB").new_page()
    page.goto(f"{url}/signage/ticket.html?t={token}")
    expect(page.locator("#notify-h")).to_have_text("Krijg een bericht als u bijna aan de beurt bent")
    page.get_by_label("E-mail").check()
    page.get_by_label("Uw e-mailadres").fill("jan@example.nl")
    assert_accessible(page, "the phone's ticket with the message form (nl)")
    from tests.test_phone import SHOTS as shots  # $VUORO_PHONE_SCREENSHOTS, else a temporary folder

    shots.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(shots / "notify-form-nl.png"), full_page=True)
    page.get_by_role("button", name="Stuur mij een bericht").click()
    expect(page.locator("#notify-done-text")).to_have_text(
        "We sturen een bericht naar jan@example.nl als u bijna aan de beurt bent en als u wordt opgeroepen.")
    page.screenshot(path=str(shots / "notify-nl.png"), full_page=True)
    call_next(url)
    wait_until(lambda: len(inbox.messages) == 1, "the near e-mail")
    assert inbox.messages[0]["To"] == "jan@example.nl"
    assert inbox.messages[0]["Subject"] == f"{label}: U bent bijna aan de beurt. Kom naar de wachtruimte."
