"""What axe-core cannot judge on the hub's web pages, checked by hand in Debian's Chromium against a real hub
(docs/accessibility.md, "Web pages"): the staff page's keys (WCAG 2.1.4), its skip link and focus outline
(2.4.1, 1.4.11); the phone page's live call (4.1.3) in the ticket's language; the feedback tablet that says it
is not set up; /stats/ in the staff page's languages; the start page, the favicon and the API docs offline.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from server.staff.strings import LOCALE_DIR, MSGIDS, START_MSGIDS
from server.stats.page import STATS_MSGIDS, page_msgids
from server.stats.routes import WEB_DIR as STATS_WEB
from toolkit.accessibility import DESKTOP, PHONE
from toolkit.hub_in_process import DEMO_PASSWORD, DEMO_USER, RunningHub
from vuoro.i18n import untranslated

KIOSK_TOKEN = "demo-kiosk1-token-change-me"


def log_in(page: Any, url: str, lang: str = "da") -> None:
    page.goto(f"{url}/staff/login?lang={lang}")
    page.fill("#username", DEMO_USER)
    page.fill("#password", DEMO_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(url + "/staff/")


def contrast(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    def lum(rgb: tuple[float, ...]) -> float:
        c = [v / 255 for v in rgb[:3]]
        c = [v / 12.92 if v <= 0.03928 else ((v + 0.055) / 1.055) ** 2.4 for v in c]
        return 0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2]

    hi, lo = sorted((lum(a), lum(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def rgb(css: str) -> tuple[float, ...]:
    return tuple(float(v) for v in css[css.index("(") + 1:css.index(")")].split(",")[:3])


@pytest.mark.browser
def test_the_axe_check_finds_what_it_should(browser: Any) -> None:
    """The helper the page tests stand on can fail: a page without lang, h1 or alt text breaks those rules."""
    from toolkit.accessibility import axe_violations

    page = browser.new_page()
    page.set_content('<html><head><title>x</title></head><body><main><img src="data:,"></main></body></html>')
    assert {"html-has-lang", "image-alt", "page-has-heading-one"} <= {v["id"] for v in axe_violations(page)}
    page.set_content('<html lang="en"><head><title>x</title></head><body><main><h1>Fine</h1></main></body></html>')
    assert axe_violations(page) == []
    page.close()


def test_every_word_of_the_stats_and_start_pages_is_a_msgid_translated_in_every_language() -> None:
    assert page_msgids(STATS_WEB) - set(STATS_MSGIDS) == set(), "add the page's new words to STATS_MSGIDS"
    for lang in ("da", "sv", "fi", "nl"):
        missing = untranslated(LOCALE_DIR, lang, list(STATS_MSGIDS + START_MSGIDS + MSGIDS))
        assert missing == [], (lang, missing)


@pytest.mark.browser
def test_stats_speaks_the_staff_pages_language_and_words_every_label(hub_in_process: RunningHub,
                                                                        browser: Any) -> None:
    from playwright.sync_api import expect

    url, day = hub_in_process.url, hub_in_process.hub.clock().date().isoformat()
    hub_in_process.issue("kvik", 2)
    page = browser.new_context(viewport=DESKTOP).new_page()
    page.goto(url + "/stats/")  # logged out: the site's first language (da), and no "Statistics statistics"
    expect(page.locator("h1")).to_have_text(f"Statistik: {hub_in_process.config.name}")
    expect(page.locator("#login h2")).to_have_text("Log ind")
    assert page.evaluate("document.documentElement.lang") == "da"
    log_in(page, url, "fi")  # the staff page's choice is remembered for /stats/ too
    page.goto(f"{url}/stats/?from={day}&to={day}")
    expect(page.locator("#tiles .tile .label").first).to_have_text("Vuoronumerot")
    assert page.evaluate("document.documentElement.lang") == "fi"
    expect(page.locator("#chart-day svg")).to_have_attribute("aria-label", f"Vuoronumerot päivittäin palveluittain. "
                                                               f"{day}: KVIK – pikapalvelu 2.")
    page.evaluate("extraTable({bookings: {by_status: {checked_in: 2, no_show: 1}}, events: null})")
    expect(page.locator("#table-extra td:first-child")).to_have_text(
        ["Varaukset, joihin on ilmoittauduttu", "Varaukset, joihin ei saavuttu"])
    page.goto(f"{url}/stats/?lang=sv&from={day}&to={day}")
    expect(page.locator("#h-service")).to_have_text("Per tjänst")
    expect(page.locator("#table-service th").first).to_have_text("Tjänst")


@pytest.mark.browser
def test_staff_keys_need_alt_shift_once_single_letters_are_off_and_the_choice_is_remembered(
        hub_in_process: RunningHub, browser: Any) -> None:
    from playwright.sync_api import expect

    url = hub_in_process.url
    hub_in_process.issue("kvik", 3)
    page = browser.new_context(viewport=DESKTOP).new_page()
    page.goto(url + "/staff/login?lang=fi")  # the login's language links are named in the page's language
    assert page.locator("nav.languages").get_attribute("aria-label") == "Kieli"
    log_in(page, url, "en")
    page.select_option("[data-testid=desk]", "kvik1")
    assert page.locator("h1").count() == 1

    # the skip link is the first tab stop and lands on "Call next"; the focus outline reaches 3:1 on white
    page.reload()  # the desk is remembered; the first Tab from the top of the page
    page.keyboard.press("Tab")
    expect(page.locator("#skip")).to_be_focused()
    expect(page.locator("#skip")).to_have_text("Skip to Call next")
    page.keyboard.press("Enter")
    expect(page.locator("#act-next")).to_be_focused()
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineColor")
    assert contrast(rgb(outline), (255, 255, 255)) >= 3, outline
    assert page.locator("#act-next").get_attribute("aria-keyshortcuts") == "N Alt+Shift+N"

    page.locator("#act-next").blur()
    page.keyboard.press("n")
    expect(page.locator("[data-testid=current]")).to_have_text("K001")
    page.uncheck("#single-keys")  # turned off (WCAG 2.1.4): a stray "f" or "n" does nothing
    page.locator("#single-keys").blur()
    page.keyboard.press("f")
    page.keyboard.press("n")
    page.wait_for_timeout(300)
    expect(page.locator("[data-testid=current]")).to_have_text("K001")
    page.keyboard.press("Alt+Shift+KeyF")
    expect(page.locator("[data-testid=message]")).to_have_text("Finished")
    page.reload()  # remembered in this browser
    expect(page.locator("#single-keys")).not_to_be_checked()
    assert page.locator("#act-next").get_attribute("aria-keyshortcuts") == "Alt+Shift+N"
    page.keyboard.press("n")
    page.wait_for_timeout(300)
    expect(page.locator("[data-testid=current]")).to_have_text("No one at the desk")
    page.keyboard.press("Alt+Shift+KeyN")
    expect(page.locator("[data-testid=current]")).to_have_text("K002")


@pytest.mark.browser
def test_the_phone_page_announces_the_call_in_the_tickets_language(hub_in_process: RunningHub,
                                                                     browser: Any) -> None:
    from playwright.sync_api import expect

    url = hub_in_process.url
    ticket = hub_in_process.hub.call(lambda engine, now: engine.issue("kvik", "fi", now)).ticket
    context = browser.new_context(viewport=PHONE, locale="en-GB")  # the phone is English, the ticket Finnish
    context.add_init_script("window.vibrations = []; navigator.vibrate = (p) => { window.vibrations.push(p); "
                            "return true; };")
    phone = context.new_page()
    phone.goto(f"{url}/signage/ticket.html?t={ticket.track_token}")
    expect(phone.locator("#h-number")).to_have_text("Vuoronumerosi")
    assert phone.evaluate("document.documentElement.lang") == "fi"
    expect(phone.locator("#announce")).to_have_text("")
    assert phone.title() == f"{ticket.label} · Vuoro"

    httpx.post(f"{url}/api/v1/counters/kvik1/next", timeout=10, headers={
        "Authorization": "Bearer demo-staff-token-change-me", "Idempotency-Key": "a11y-call-0001"})
    expect(phone.locator("#announce")).to_have_text(f"{ticket.label}: Sinut kutsutaan: Skranke 1")
    assert phone.locator("#announce").get_attribute("role") == "alert"
    expect(phone).to_have_title(f"▶ {ticket.label} · Sinut kutsutaan: Skranke 1")
    assert phone.evaluate("window.vibrations") == [[400, 200, 400]]
    assert phone.locator("h1").count() == 1


@pytest.mark.browser
def test_the_feedback_tablet_says_at_once_that_it_is_not_set_up(hub_in_process: RunningHub, browser: Any) -> None:
    from playwright.sync_api import expect

    url = hub_in_process.url
    page = browser.new_context(viewport=PHONE).new_page()
    page.goto(url + "/feedback/?lang=en")
    expect(page.locator("#not-set-up")).to_be_visible()
    expect(page.locator("#not-set-up-text")).to_have_text("This screen is not set up yet and cannot take ratings.")
    expect(page.locator("#not-set-up-how")).to_contain_text("/feedback/?device=NAME#token=KIOSK-TOKEN")
    expect(page.locator("#faces button")).to_have_count(5)
    expect(page.locator("#ask")).to_be_hidden()
    assert "user-scalable" not in page.locator("meta[name=viewport]").get_attribute("content")
    page.goto(url + f"/feedback/?lang=en&device=exit1#token={KIOSK_TOKEN}")
    expect(page.locator("#not-set-up")).to_be_hidden()
    page.locator("#faces button").nth(4).click()
    expect(page.locator("#thanks-text")).to_have_text("Thank you for your feedback!")


def test_the_start_page_lists_only_the_pages_this_hub_serves(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from server.api import create_app
    from server.config import load_config
    from server.hub import Hub
    from server.store import SQLiteStore

    config = load_config(Path(__file__).parent / "sites" / "always_open.toml")
    hub = Hub(config, SQLiteStore(tmp_path / "hub.sqlite3", config.site_id)).start()
    try:
        with TestClient(create_app(hub, plugins=("server.stats",))) as client:
            page = client.get("/?lang=en")
            assert page.status_code == 200 and '<html lang="en">' in page.text
            assert 'href="/stats/"' in page.text and 'href="/api/v1/docs"' in page.text
            assert 'href="/staff/"' not in page.text and 'href="/feedback/"' not in page.text  # not installed
            assert page.cookies.get("vuoro_staff_lang") == "en"
    finally:
        hub.stop()


@pytest.mark.browser
def test_start_page_favicon_and_api_docs_work_without_internet(hub_in_process: RunningHub, browser: Any) -> None:
    from playwright.sync_api import expect

    url = hub_in_process.url
    icon = httpx.get(url + "/favicon.ico", timeout=10)
    assert icon.status_code == 200 and icon.content[:4] == b"\x00\x00\x01\x00"  # an ICO file
    docs = httpx.get(url + "/api/v1/docs", timeout=10).text
    assert '<html lang="en">' in docs and "https://" not in docs and "http://" not in docs

    context = browser.new_context(viewport=DESKTOP)
    outside: list[str] = []

    def only_the_hub(route: Any) -> None:  # a site without internet: anything not from the hub fails
        if route.request.url.startswith(url):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    context.route("**/*", only_the_hub)
    page = context.new_page()
    page.goto(url + "/")
    expect(page.locator("h1")).to_have_text(f"Vuoro på {hub_in_process.config.name}")
    links = page.locator(".pages a")
    expect(links).to_have_count(6)  # staff, signage, statistics, online booking, feedback, API docs
    for href in links.evaluate_all("(links) => links.map((a) => a.getAttribute('href'))"):
        assert httpx.get(url + href, timeout=10, follow_redirects=True).status_code == 200, href
    page.locator(".pages a", has_text="API-dokumentation").click()
    expect(page.locator(".opblock").first).to_be_visible()
    expect(page.locator("h1")).to_have_count(1)
    assert not outside, outside
