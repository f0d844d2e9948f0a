"""A page whose request's connection ended before the answer (a hub restart, an idle connection the hub had just
closed: docs/protocol.md, "Connections") sends it once more, and the hub does it once.

Debian's Chromium against a whole hub in this process. Playwright's routing ends the browser's side of the first
request without an answer (``route.abort()``), after letting it through to the hub (``route.fetch()``: the hub acted,
the answer was lost) or not (the hub never read it). The page must thank, or say the place is given up, and the hub's
store must hold the act once.
"""

from __future__ import annotations

from typing import Any

import pytest

from toolkit.accessibility import PHONE
from toolkit.hub_in_process import RunningHub

KIOSK_TOKEN = "demo-kiosk1-token-change-me"


def lose_the_first_answer(page: Any, url_glob: str, *, reaches_the_hub: bool) -> list[str]:
    """The first request to ``url_glob`` gets no answer (reaching the hub first, or not); later ones pass.
    Returns each request's Idempotency-Key as it is sent."""
    seen: list[str] = []

    def handle(route: Any) -> None:
        seen.append(route.request.headers.get("idempotency-key", ""))
        if len(seen) == 1:
            if reaches_the_hub:
                route.fetch()  # the hub gets it and acts
            route.abort("connectionreset")  # the page gets no answer
        else:
            route.continue_()

    page.route(url_glob, handle)
    return seen


@pytest.mark.browser
def test_a_rating_whose_answer_was_lost_is_sent_again_and_counted_once(hub_in_process: RunningHub,
                                                                         browser: Any) -> None:
    from playwright.sync_api import expect

    hub = hub_in_process.hub
    page = browser.new_context(viewport=PHONE).new_page()
    page.goto(f"{hub_in_process.url}/feedback/?lang=en&device=exit1#token={KIOSK_TOKEN}")
    sent = lose_the_first_answer(page, "**/api/v1/feedback", reaches_the_hub=True)
    page.locator("#faces button").nth(3).click()
    expect(page.locator("#thanks-text")).to_have_text("Thank you for your feedback!")
    expect(page.locator("#error")).to_be_hidden()
    assert len(sent) == 2 and sent[0] == sent[1] and sent[0].startswith("rating-")  # the same key, twice
    stored = hub.call(lambda engine, now: hub.store.db.execute(
        "SELECT rating, device FROM stats_feedback").fetchall())
    assert stored == [(4, "kiosk1")]


@pytest.mark.browser
def test_leaving_the_queue_on_a_connection_that_ended_is_sent_again_and_the_page_says_so(
        hub_in_process: RunningHub, browser: Any) -> None:
    """Here the hub never read the first leave: without the page's repeat the visitor would see their place still
    kept and have to try again (a leave the hub did act on is found by the page's refresh anyway)."""
    from playwright.sync_api import expect

    hub = hub_in_process.hub
    ticket = hub.call(lambda engine, now: engine.issue("kvik", "en", now)).ticket
    page = browser.new_context(viewport=PHONE, locale="en-GB").new_page()
    page.goto(f"{hub_in_process.url}/signage/ticket.html?t={ticket.track_token}&lang=en")
    sent = lose_the_first_answer(page, f"**/api/v1/track/{ticket.track_token}/leave", reaches_the_hub=False)
    page.locator("#leave-open").click()
    page.locator("#leave-yes").click()
    expect(page.locator("#final")).to_be_visible()
    expect(page.locator("#leave")).to_be_hidden()
    assert len(sent) == 2
    status = hub.call(lambda engine, now: hub.store.db.execute(
        "SELECT status FROM tickets WHERE id = ?", (ticket.id,)).fetchone())
    assert status == ("left",)
