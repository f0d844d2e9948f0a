"""Every web page the hub serves, checked by axe-core in Debian's Chromium at desktop and phone size.

WCAG 2.1 A and AA plus axe's best practices (docs/accessibility.md, "Web pages"): no violation of any
impact, on a real hub with real data — visitors waiting, a desk serving, a day of figures — in each
state a person meets: logged out and in, a feedback tablet set up and not, a phone page waiting and
called. Screenshots of each page go to ``$VUORO_A11Y_SCREENSHOTS`` when set, else a temporary folder.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from toolkit.accessibility import SIZES, axe_violations, describe
from toolkit.hub_in_process import DEMO_PASSWORD, DEMO_USER, RunningHub

pytestmark = [pytest.mark.browser]
KIOSK_TOKEN = "demo-kiosk1-token-change-me"


@pytest.fixture()
def shots(tmp_path: Path) -> Path:
    target = Path(os.environ.get("VUORO_A11Y_SCREENSHOTS") or tmp_path / "shots")
    target.mkdir(parents=True, exist_ok=True)
    return target


def log_in(page: Any, url: str) -> None:
    page.goto(url + "/staff/login?lang=en")
    page.fill("#username", DEMO_USER)
    page.fill("#password", DEMO_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(url + "/staff/")


@pytest.mark.parametrize("size", sorted(SIZES))
def test_every_page_has_no_axe_violations(hub_in_process: RunningHub, browser: Any, shots: Path, size: str) -> None:
    from playwright.sync_api import expect

    url = hub_in_process.url
    hub_in_process.issue("kvik", 3)
    ticket = hub_in_process.hub.call(lambda engine, now: engine.issue("kvik", "sv", now)).ticket
    found: dict[str, list[dict[str, Any]]] = {}

    def check(page: Any, name: str) -> None:
        page.screenshot(path=str(shots / f"{name}-{size}.png"), full_page=True)
        violations = axe_violations(page)
        if violations:
            found[name] = violations

    context = browser.new_context(viewport=SIZES[size])
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))

    page.goto(url + "/")
    check(page, "start")
    page.goto(url + "/stats/")
    expect(page.locator("#login")).to_be_visible()
    check(page, "stats-logged-out")
    page.goto(url + "/staff/login")
    check(page, "login")
    log_in(page, url)
    page.select_option("[data-testid=desk]", "kvik1")
    page.click("#act-next")
    expect(page.locator("[data-testid=current]")).to_have_text("K001")
    expect(page.locator("[data-testid=waiting] [data-service=kvik] li")).to_have_count(3)
    check(page, "staff")
    day = hub_in_process.hub.clock().date().isoformat()  # the hub's day (its test clock), not the browser's
    page.goto(url + f"/stats/?from={day}&to={day}")
    expect(page.locator("#figures")).to_be_visible()
    expect(page.locator("#chart-wait svg")).to_be_visible()
    expect(page.locator("#tiles .tile").first).to_be_visible()
    check(page, "stats")

    tablet = browser.new_context(viewport=SIZES[size])
    feedback = tablet.new_page()
    feedback.goto(url + "/feedback/")
    check(feedback, "feedback-not-set-up")
    feedback.goto(url + f"/feedback/?device=exit1#token={KIOSK_TOKEN}")
    check(feedback, "feedback")

    visitor = browser.new_context(viewport=SIZES[size])
    phone = visitor.new_page()
    phone.goto(url + f"/signage/ticket.html?t={ticket.track_token}")
    expect(phone.locator("#ticket")).to_have_text(ticket.label)
    check(phone, "phone-waiting")
    page.goto(url + "/staff/")
    page.click("#act-finish")
    page.click("#act-next")
    page.click("#act-finish")
    page.click("#act-next")
    page.click("#act-finish")
    page.click("#act-next")
    expect(page.locator("[data-testid=current]")).to_have_text(ticket.label)
    expect(phone.locator("#called")).to_be_visible()
    check(phone, "phone-called")

    screen = visitor.new_page()
    screen.goto(url + "/signage/")
    expect(screen.locator("#call-ticket")).to_have_text(ticket.label)
    check(screen, "signage")

    docs = visitor.new_page()
    docs.goto(url + "/api/v1/docs")
    expect(docs.locator(".opblock").first).to_be_visible()
    check(docs, "api-docs")
    docs.locator("#operations-tickets-issue_api_v1_tickets_post .opblock-summary-control").click()
    docs.locator(".try-out__btn").click()  # an operation opened and being tried: its fields and buttons too
    expect(docs.locator("textarea.body-param__text")).to_be_visible()
    check(docs, "api-docs-try-it-out")

    for c in (context, tablet, visitor):
        c.close()
    report = "\n\n".join(f"{name}:\n{describe(v)}" for name, v in found.items())
    assert not found, f"axe-core found violations at {size} size:\n{report}"
    assert not errors, errors
