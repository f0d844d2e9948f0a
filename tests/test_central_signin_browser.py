"""The centre's pages in Chromium: a person signs in with a staff account the centre holds, sees the branches the
account works at (all of them, or only their own), signs out; the pages pass axe-core with no violation.

A real centre process on a private PostgreSQL (no branch hubs needed: the page lists the branches the centre
knows). Screenshots land in ``docs/screenshots/central/`` when ``VUORO_SCREENSHOTS`` is set.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.test_central_e2e import BRANCHES, branch_site
from toolkit.accessibility import assert_accessible
from toolkit.broker import free_port
from toolkit.central_process import ADMIN_TOKEN

pytestmark = [pytest.mark.browser]
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
SHOTS = Path(__file__).resolve().parent.parent / "docs" / "screenshots" / "central"


def shot(page: Any, name: str) -> None:
    if os.environ.get("VUORO_SCREENSHOTS"):
        page.screenshot(path=str(SHOTS / name), full_page=True)


def test_staff_sign_in_to_the_centre_and_see_their_branches(tmp_path: Path, make_central: Any,
                                                            browser: Any) -> None:
    port = free_port()
    sites = {bid: branch_site(tmp_path, bid, name, port) for bid, name in BRANCHES.items()}
    centre = make_central(sites, port=port).start()
    for name, branches in (("kommune", []), ("nordby", ["north"])):
        requests.put(f"{centre.url}/api/v1/staff/{name}", json={"role": "admin" if not branches else "staff",
                                                                 "password": f"{name}-kodeord-1",
                                                                 "branches": branches},
                     headers=ADMIN, timeout=30).raise_for_status()
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.goto(f"{centre.url}/?lang=da")
    assert page.url.endswith("/login?lang=da")  # a person is sent to sign in
    assert_accessible(page, "the centre's sign-in page")
    shot(page, "centre-login-da.png")

    page.fill("#username", "nordby")
    page.fill("#password", "forkert-kode")
    page.click("button[type=submit]")
    assert page.locator("[role=alert]").inner_text() == "Forkert brugernavn eller adgangskode."
    assert_accessible(page, "the sign-in page with its error")

    page.fill("#password", "nordby-kodeord-1")
    page.click("button[type=submit]")
    page.wait_for_selector("h2")
    headings = page.locator("h2").all_inner_texts()
    assert headings == ["Nordby Bibliotek"]  # one branch's staff: only their branch
    assert "Logget ind som nordby" in page.inner_text("body")
    assert_accessible(page, "the overview for one branch's staff")
    shot(page, "centre-overview-one-branch-da.png")

    page.click("form.who button")  # sign out
    page.wait_for_url("**/login")
    page.goto(f"{centre.url}/login?lang=en")
    page.fill("#username", "kommune")
    page.fill("#password", "kommune-kodeord-1")
    page.click("button[type=submit]")
    page.wait_for_selector("h2")
    assert sorted(page.locator("h2").all_inner_texts()) == ["Nordby Bibliotek", "Sydby Bibliotek"]
    assert_accessible(page, "the overview for the municipality")

    # A refused version, as a branch reports it (its own token; tests/test_central_config.py makes real ones)
    text = sites["north"][1].read_text(encoding="utf-8").replace('letter = "K"', 'letter = "kv"', 1)
    requests.post(f"{centre.url}/api/v1/branches/north/config", data=text.encode(), headers=ADMIN,
                  timeout=30).raise_for_status()
    problem = "services.kvik.letter: expected one capital letter A–Z, got 'kv'"
    requests.post(f"{centre.url}/api/v1/branch/config/report", timeout=10,
                  headers={"Authorization": f"Bearer {sites['north'][0]}"},
                  json={"running": {"version": 0, "checksum": None},
                        "refused": {"version": 1, "checksum": "x", "problems": [problem]}}).raise_for_status()
    page.reload()
    assert "Version 1 was refused by the branch:" in page.inner_text("body") and problem in page.inner_text("body")
    assert_accessible(page, "the overview with a refused config")
    shot(page, "centre-overview-refused-en.png")
    context.close()


def test_chromium_signs_in_to_the_centre_through_the_municipalitys_provider(tmp_path: Path, make_central: Any,
                                                                            browser: Any) -> None:
    """Centre → provider's login → back on the overview: the session cookie (SameSite=Strict) survives the
    cross-site return because the callback moves on by a same-site page of its own."""
    from tests.test_central_directory import CLIENT_ID, CLIENT_SECRET, OIDC_ACCOUNTS, oidc_toml
    from toolkit.oidc_provider import Provider

    provider = Provider(CLIENT_ID, CLIENT_SECRET, OIDC_ACCOUNTS).start()
    try:
        port = free_port()
        sites = {bid: branch_site(tmp_path, bid, name, port) for bid, name in BRANCHES.items()}
        centre = make_central(sites, port=port, extra=oidc_toml(provider.issuer)).start()
        context = browser.new_context(viewport={"width": 1280, "height": 800})
        page = context.new_page()
        page.goto(f"{centre.url}/login?lang=da")
        assert_accessible(page, "the centre's sign-in page with the provider's button")
        shot(page, "centre-login-oidc-da.png")
        page.get_by_role("link", name="Log ind med kommunens login").click()
        page.wait_for_url(provider.issuer + "/authorize?*")
        page.fill("#u", "anna@kommune.test")
        page.fill("#p", "anna-provider-pw")
        page.click("button[type=submit]")
        page.wait_for_selector("h2")
        assert page.locator("h2").all_inner_texts() == ["Nordby Bibliotek"]  # her group: north only
        assert "Logget ind som anna@kommune.test" in page.inner_text("body")
        shot(page, "centre-overview-oidc-da.png")
        context.close()
    finally:
        provider.stop()
