"""The web signage page and the "your place" page in headless Chromium.

First against a tiny replaying SSE server (the hub's stream shape, under our
control: we can cut it), then against the real hub process.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import requests

from display import sample
from display.client import SignageClient
from display.state import SignageState
from display.webstrings import OUT, build
from toolkit.broker import Broker
from toolkit.fake_hub import Replay, Waiter
from vuoro.protocol import Topics

pytestmark = pytest.mark.browser

TIMEOUT_MS = 10_000


def test_the_web_strings_match_the_po_catalogs() -> None:
    assert OUT.read_text(encoding="utf-8") == build(), "run: python -m display.webstrings"


def test_web_signage_shows_the_state_and_a_call_arrives_without_reload(browser: Any, replay: Replay) -> None:
    page = browser.new_page(viewport={"width": 1920, "height": 1080})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    loads: list[str] = []
    page.on("load", lambda *_: loads.append("load"))
    try:
        page.goto(f"{replay.url}/signage/index.html?lang=da")
        page.wait_for_function("document.getElementById('call-ticket').textContent === 'K041'", timeout=TIMEOUT_MS)
        body = page.inner_text("body")
        for expected in ("Sønderbro Bibliotek", "Nu betjenes", "KVIK – hurtig hjælp", "4 venter", "ca. 8 min",
                         "Udsolgt", "Aflyst", "Personale til stede nu", "Borgerservice lukker kl. 16"):
            assert expected in body, expected
        assert page.is_hidden("#offline")
        page.evaluate("window.__sameDocument = true")

        replay.call(sample.call("K042", "borger1"))
        page.wait_for_function("document.getElementById('call-ticket').textContent === 'K042'", timeout=TIMEOUT_MS)
        assert page.inner_text("#call-counter") == "Skranke 3"
        assert "highlight" in (page.get_attribute("#call", "class") or "")
        assert page.evaluate("window.__sameDocument === true") and loads == ["load"]

        # The hub goes away: the last picture stays, marked offline; it comes back by itself.
        replay.cut()
        page.wait_for_selector("#offline", state="visible", timeout=TIMEOUT_MS)
        assert page.inner_text("#offline").strip().endswith("Ingen forbindelse")
        assert page.inner_text("#call-ticket") == "K042"
        replay.up = True
        replay.publish("queue/kvik/state", sample.queue_state("kvik", 9, 18))
        page.wait_for_selector("#offline", state="hidden", timeout=TIMEOUT_MS)
        page.wait_for_function("document.querySelector('#queues li').innerText.includes('9 venter')",
                               timeout=TIMEOUT_MS)
        replay.call(sample.call("K043", "kvik1"))
        page.wait_for_function("document.getElementById('call-ticket').textContent === 'K043'", timeout=TIMEOUT_MS)
        assert page.evaluate("window.__sameDocument === true") and errors == []
    finally:
        page.close()


def test_web_signage_reads_no_field_the_contract_does_not_define(browser: Any, replay: Replay) -> None:
    """Every field signage.js reads is in display/web/contract.json (written from vuoro/payloads.py):
    the page counts a read of any other in Vuoro.misreads. Drawn with staff gone, a closed queue and a call."""
    page = browser.new_page(viewport={"width": 1920, "height": 1080})
    try:
        for suffix, payload in sample.retained(staffed=False, message="Lukket i dag").items():
            replay.publish(suffix, payload)
        page.goto(f"{replay.url}/signage/index.html?lang=da")
        page.wait_for_function("document.querySelectorAll('#queues li').length === 4", timeout=TIMEOUT_MS)
        replay.call(sample.call("K042", "borger1", recall=True))
        page.wait_for_function("document.getElementById('call-ticket').textContent === 'K042'", timeout=TIMEOUT_MS)
        assert "personale igen" in page.inner_text("#hours")
        assert page.evaluate("Vuoro.misreads") == []
        # ... and the count is real: a field the contract does not define is caught.
        page.evaluate("Vuoro.state.queues.kvik.crowding")
        assert page.evaluate("Vuoro.misreads") == ["queue_state.crowding"]
    finally:
        page.close()


def test_web_signage_portrait_in_finnish_with_filters(browser: Any, replay: Replay) -> None:
    page = browser.new_page(viewport={"width": 1080, "height": 1920})
    try:
        page.goto(f"{replay.url}/signage/index.html?lang=fi&services=kvik,it&orientation=portrait")
        page.wait_for_function("document.querySelectorAll('#queues li').length === 2", timeout=TIMEOUT_MS)
        assert "portrait" in (page.get_attribute("body", "class") or "")
        assert [s.split("\n")[0] for s in page.locator("#queues li").all_inner_texts()] == ["KVIK – pikapalvelu",
                                                                                          "IT-apu"]
        assert "Nyt palvellaan" in page.inner_text("body")
        replay.call(sample.call("L005", "bib1"))  # not this screen's service: ignored
        replay.call(sample.call("K044", "kvik2"))
        page.wait_for_function("document.getElementById('call-ticket').textContent === 'K044'", timeout=TIMEOUT_MS)
        assert "L005" not in page.inner_text("#recent")
    finally:
        page.close()


def test_ticket_page_counts_down_and_says_where_to_go(browser: Any, replay: Replay) -> None:
    names = sample.NAMES["kvik"]
    replay.track["tok123"] = {"ticket": "K045", "service": "kvik", "status": "waiting", "position": 3,
                              "estimated_wait_min": 8, "counter_name": None, "service_names": names}
    page = browser.new_page(viewport={"width": 390, "height": 844})
    try:
        page.goto(f"{replay.url}/signage/ticket.html?t=tok123&lang=da")
        page.wait_for_function("document.getElementById('ticket').textContent === 'K045'", timeout=TIMEOUT_MS)
        assert page.inner_text("#position") == "3 før dig"
        assert "ca. 8 min" in page.inner_text("#wait")
        replay.track["tok123"] = {**replay.track["tok123"], "position": 0, "estimated_wait_min": 1}
        replay.publish("queue/kvik/state", sample.queue_state("kvik", 1, 1))
        page.wait_for_function("document.getElementById('position').textContent === 'Du er den næste'",
                               timeout=TIMEOUT_MS)
        replay.track["tok123"] = {**replay.track["tok123"], "status": "called", "counter_name": "Skranke 3"}
        replay.call(sample.call("K045", "borger1"))
        page.wait_for_selector("#called", state="visible", timeout=TIMEOUT_MS)
        # visible can come a moment before its words: wait for the text itself
        page.wait_for_function("document.getElementById('called').textContent === 'Du er kaldt til Skranke 3'",
                               timeout=TIMEOUT_MS)
        page.goto(f"{replay.url}/signage/ticket.html?t=nope&lang=sv")
        page.wait_for_function("document.getElementById('final').textContent === 'Nummerlappen hittades inte'",
                               timeout=TIMEOUT_MS)
    finally:
        page.close()


# -- against the real hub ----------------------------------------------------------

KIOSK = {"Authorization": "Bearer demo-kiosk1-token-change-me"}
STAFF = {"Authorization": "Bearer demo-staff-token-change-me"}


def test_against_the_real_hub_web_page_phone_page_and_kivy_client(browser: Any, hub: Any,
                                                                   live_broker: Broker) -> None:
    issued = requests.post(f"{hub.url}/api/v1/tickets", json={"service": "kvik", "language": "da"},
                           headers={**KIOSK, "Idempotency-Key": uuid.uuid4().hex}, timeout=10)
    assert issued.status_code == 201, issued.text
    ticket = issued.json()
    # The screen's MQTT client, on the hub's own retained state.
    waiter = Waiter()
    screen = SignageClient(live_broker.url, SignageState(Topics("sonderbro", hub.topic_root)), on_update=waiter)
    screen.start()
    signage = browser.new_page(viewport={"width": 1920, "height": 1080})
    phone = browser.new_page(viewport={"width": 390, "height": 844})
    try:
        assert waiter.wait(lambda: screen.state.complete and "kvik" in screen.state.queues, timeout=15)
        assert screen.state.queues["kvik"]["waiting"] >= 1
        signage.goto(f"{hub.url}/signage/index.html?lang=da")
        phone.goto(f"{hub.url}/signage/ticket.html?t={ticket['track_token']}&lang=da")
        signage.wait_for_function("document.querySelectorAll('#queues li').length > 0", timeout=TIMEOUT_MS)
        phone.wait_for_function(f"document.getElementById('ticket').textContent === '{ticket['ticket']}'",
                                timeout=TIMEOUT_MS)
        called = requests.post(f"{hub.url}/api/v1/counters/kvik1/next", headers=STAFF, timeout=10)
        assert called.status_code == 200 and called.json()["call"]["ticket"] == ticket["ticket"], called.text
        signage.wait_for_function(f"document.getElementById('call-ticket').textContent === '{ticket['ticket']}'",
                                  timeout=TIMEOUT_MS)
        phone.wait_for_selector("#called", state="visible", timeout=TIMEOUT_MS)
        assert phone.inner_text("#called").startswith("Du er kaldt til ")
        assert waiter.wait(lambda: (screen.state.current_call or {}).get("ticket") == ticket["ticket"])
    finally:
        signage.close()
        phone.close()
        screen.stop()
