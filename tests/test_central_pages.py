"""The centre's pages for people beyond the overview: statistics across branches, configuration and accounts.

A real centre process on a private PostgreSQL; ten days of two branches' tickets generated into its database
(``toolkit/central_data.py``, as the ingest would have stored them) for the statistics; configs reported by a
branch with its own token, accounts fetched by a branch with its own token, as the hubs do.

- the cross-branch summary's ``by=`` groups (day, weekday, month, service) against each branch's own figures
  computed from its rows (``/api/v1/branches/{id}/summary?by=``): every count, mean, maximum and service level
  equal, every percentile the true one rounded up to its bucket; all branches the sum of the branches;
- the forms refuse without the session's CSRF token (also for the admin token over HTTP Basic, which a browser
  sends by itself), a branch's staff reach neither configuration nor accounts and see only their branch;
- in Chromium: an admin adds, disables, enables and changes an account (the branch's copy follows), publishes
  a config (a mistake stopped by key path first), compares two versions, sees a branch's refusal, reads the
  statistics in five languages and downloads the CSV; axe-core finds no violation on any of these pages.
"""

from __future__ import annotations

import csv
import io
import os
import re
from datetime import date
from pathlib import Path
from typing import Any

import psycopg
import pytest
import requests

from central.rollup import bucket
from tests.test_central_e2e import BRANCHES, branch_site
from toolkit.accessibility import PHONE, assert_accessible
from toolkit.broker import free_port
from toolkit.central_data import generate
from toolkit.central_process import ADMIN_TOKEN

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
SHOTS = Path(__file__).resolve().parent.parent / "docs" / "screenshots" / "central"
START, DAYS = date(2026, 10, 24), 10  # across DST's end (25 Oct) and a month's turn
END = date(2026, 11, 2)
EXACT = ("issued", "served", "no_show", "expired", "left", "open", "transferred", "transfers", "walk_in", "booking",
         "bookings_kept", "bookings_no_show", "called", "from_kiosk", "from_phone", "from_staff", "from_booking",
         "wait_max_s", "wait_mean_s", "within_target", "service_level")
PERCENTILES = ("wait_median_s", "wait_p90_s", "service_median_s", "service_p90_s")


def shot(page: Any, name: str) -> None:
    if os.environ.get("VUORO_SCREENSHOTS"):
        page.screenshot(path=str(SHOTS / name), full_page=True)


def start_centre(tmp_path: Path, make_central: Any, *, data: bool = False) -> tuple[Any, dict[str, Any]]:
    port = free_port()
    sites = {bid: branch_site(tmp_path, bid, name, port) for bid, name in BRANCHES.items()}
    centre = make_central(sites, port=port).start()
    if data:
        database = Path(centre.config).read_text(encoding="utf-8").split('database = "')[1].split('"')[0]
        with psycopg.connect(database) as db:
            assert generate(db, BRANCHES, START, DAYS, 40).tickets > 500
    return centre, sites


def put_account(centre: Any, name: str, branches: list[str], role: str = "staff") -> None:
    requests.put(f"{centre.url}/api/v1/staff/{name}", headers=ADMIN, timeout=30,
                 json={"role": role, "password": f"{name}-kodeord-1", "branches": branches}).raise_for_status()


def signed_in(centre: Any, name: str, password: str) -> requests.Session:
    """A session signed in through the login form, as a browser does."""
    session = requests.Session()
    form = session.get(f"{centre.url}/login", timeout=10).text
    token = re.search(r'name="csrf" value="([^"]+)"', form)
    assert token
    answer = session.post(f"{centre.url}/login", data={"username": name, "password": password,
                                                       "csrf": token.group(1)}, allow_redirects=False, timeout=30)
    assert answer.status_code == 303, answer.text
    return session


def csrf_of(html_text: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html_text)
    assert found, "no form with the session's token on the page"
    return found.group(1)


def branch_accounts(centre: Any, sites: dict[str, Any], bid: str) -> dict[str, Any]:
    """What a branch fetches (its own token), as server/uplink/follow.py does."""
    answer = requests.get(f"{centre.url}/api/v1/branch/staff", timeout=10,
                          headers={"Authorization": f"Bearer {sites[bid][0]}"})
    answer.raise_for_status()
    return {a["name"]: a for a in answer.json()["accounts"]}


def test_the_summary_by_day_weekday_month_and_service_is_each_branchs_own_figures(tmp_path: Path,
                                                                                  make_central: Any) -> None:
    centre, _ = start_centre(tmp_path, make_central, data=True)
    assert centre.get("/api/v1/summary", start=START.isoformat(), end=END.isoformat(), by="hour").status_code == 400
    for by in ("day", "weekday", "month", "service"):
        answer = centre.get("/api/v1/summary", start=START.isoformat(), end=END.isoformat(), by=by)
        assert answer.status_code == 200, answer.text
        summary = answer.json()
        assert summary["pending_days"] == 0 and summary["by"] == [by]
        together: dict[Any, dict[str, int]] = {}
        for entry in summary["branches"]:
            own = centre.get(f"/api/v1/branches/{entry['branch']}/summary", start=START.isoformat(),
                             end=END.isoformat(), by=by).json()
            theirs = {g[by]: g for g in own["groups"]}
            mine = {g[by]: g for g in entry["groups"]}
            assert set(mine) == set(theirs) and len(mine) >= (4 if by != "month" else 2), (by, mine.keys())
            for key, group in mine.items():
                expected = theirs[key]
                for figure in EXACT:
                    assert group[figure] == expected[figure], (entry["branch"], by, key, figure)
                for figure in PERCENTILES:
                    if by == "service":  # the histograms are per day: not known by service, and said so
                        assert group[figure] is None and figure in summary["not_by_group"]
                    elif expected[figure] is None:
                        assert group[figure] is None
                    else:  # the true nearest-rank value (to 0.1 s) rounded up to its bucket
                        assert expected[figure] - 0.05 <= group[figure] <= bucket(expected[figure] + 0.05), \
                            (entry["branch"], by, key, figure, group[figure], expected[figure])
                if by != "service":
                    assert group["feedback_ratings"] == expected["feedback_ratings"]
                for figure in ("issued", "served", "called"):
                    together.setdefault(key, {}).setdefault(figure, 0)
                    together[key][figure] += group[figure]
        every = {g[by]: g for g in summary["all"]["groups"]}
        assert {k: {f: g[f] for f in ("issued", "served", "called")} for k, g in every.items()} == together


def test_the_pages_forms_need_the_sessions_token_and_a_branchs_staff_reach_only_their_branch(
        tmp_path: Path, make_central: Any) -> None:
    centre, sites = start_centre(tmp_path, make_central)
    put_account(centre, "kommune", [], role="admin")
    put_account(centre, "nordby", ["north"])
    admin = signed_in(centre, "kommune", "kommune-kodeord-1")
    listing = admin.get(f"{centre.url}/accounts", timeout=10)
    assert listing.status_code == 200 and "nordby" in listing.text
    new = {"name": "mallory", "role": "admin", "scope": "all", "password": "mallory-pw-123",
           "password2": "mallory-pw-123"}
    # without the session's token (a form on another site): refused, nothing stored
    assert admin.post(f"{centre.url}/accounts", data=new, allow_redirects=False, timeout=10).status_code == 403
    assert admin.post(f"{centre.url}/accounts", data={**new, "csrf": "guess"}, allow_redirects=False,
                      timeout=10).status_code == 403
    assert admin.post(f"{centre.url}/accounts/nordby/disable", data={}, allow_redirects=False,
                      timeout=10).status_code == 403
    text = sites["north"][1].read_text(encoding="utf-8")
    assert admin.post(f"{centre.url}/configuration?branch=north", data={"text": text, "base": "0"},
                      allow_redirects=False, timeout=10).status_code == 403
    # the admin token over HTTP Basic, which a browser sends by itself: the API's, never a form's
    basic = requests.post(f"{centre.url}/accounts", data={**new, "csrf": ""}, auth=("x", ADMIN_TOKEN),
                          allow_redirects=False, timeout=10)
    assert basic.status_code == 403
    names = {a["name"] for a in centre.get("/api/v1/staff").json()["accounts"]}
    assert names == {"kommune", "nordby"}
    assert centre.get("/api/v1/configs").json()["branches"][0]["wanted"] == 0
    # with it: stored
    token = csrf_of(listing.text)
    assert admin.post(f"{centre.url}/accounts", data={**new, "csrf": token}, allow_redirects=False,
                      timeout=30).status_code == 303
    assert "mallory" in {a["name"] for a in centre.get("/api/v1/staff").json()["accounts"]}

    staff = signed_in(centre, "nordby", "nordby-kodeord-1")
    for path in ("/accounts", "/configuration", "/configuration?branch=north", "/accounts/kommune"):
        answer = staff.get(centre.url + path, allow_redirects=False, timeout=10)
        assert answer.status_code == 403 and "Your account may not do this" in staff.get(
            centre.url + path + ("&" if "?" in path else "?") + "lang=en", timeout=10).text
    assert staff.post(f"{centre.url}/accounts/kommune/disable", data={"csrf": "x"}, allow_redirects=False,
                      timeout=10).status_code == 403
    overview = staff.get(f"{centre.url}/?lang=en", timeout=10).text
    assert 'href="/statistics?lang=en"' in overview and "/accounts" not in overview and "/configuration" not in overview
    stats = staff.get(f"{centre.url}/statistics?lang=en", timeout=10).text
    assert "Nordby Bibliotek" in stats and "Sydby Bibliotek" not in stats and "All branches" not in stats
    # signed out when the account changes: a staff session ends once the admin disables the account
    token = csrf_of(admin.get(f"{centre.url}/accounts", timeout=10).text)
    assert admin.post(f"{centre.url}/accounts/nordby/disable", data={"csrf": token}, allow_redirects=False,
                      timeout=30).status_code == 303
    assert staff.get(f"{centre.url}/statistics", allow_redirects=False, timeout=10).status_code == 303
    # and nobody disables themselves
    answer = admin.post(f"{centre.url}/accounts/kommune/disable?lang=en", data={"csrf": token}, timeout=10)
    assert answer.status_code == 422 and "You cannot disable your own account" in answer.text


@pytest.mark.browser
def test_an_admin_manages_accounts_and_configs_and_reads_the_statistics_in_chromium(
        tmp_path: Path, make_central: Any, browser: Any) -> None:
    centre, sites = start_centre(tmp_path, make_central, data=True)
    put_account(centre, "kommune", [], role="admin")
    context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    page = context.new_page()
    page.goto(f"{centre.url}/login?lang=en")
    page.fill("#username", "kommune")
    page.fill("#password", "kommune-kodeord-1")
    page.click("button[type=submit]")
    page.wait_for_selector("h2")

    # -- accounts ------------------------------------------------------------------------------------------
    page.get_by_role("navigation", name="Pages").get_by_role("link", name="Accounts").click()
    page.wait_for_url("**/accounts?lang=en")
    assert_accessible(page, "the accounts page")
    page.fill("#new-name", "Sydby-Anna")  # upper case: not a name
    page.select_option("#new-role", "staff")
    page.check("#new-b-south")
    page.fill("#new-pw", "anna-kodeord-1")
    page.fill("#new-pw2", "anna-kodeord-2")
    page.click("form.grid button[type=submit]")
    # a name is taken lower-case, so the first mistake is the passwords
    assert page.get_by_role("alert").inner_text() == "The two passwords differ."
    assert page.input_value("#new-name") == "sydby-anna" and page.is_checked("#new-b-south")
    assert_accessible(page, "the accounts page with a mistake")
    page.fill("#new-pw", "anna-kodeord-1")
    page.fill("#new-pw2", "anna-kodeord-1")
    page.click("form.grid button[type=submit]")
    page.wait_for_selector("p.ok")
    assert "sydby-anna is saved." in page.inner_text("p.ok")
    south = branch_accounts(centre, sites, "south")
    assert south["sydby-anna"]["password_hash"].startswith("$argon2id$") and south["sydby-anna"]["role"] == "staff"
    assert "sydby-anna" not in branch_accounts(centre, sites, "north")  # it works at Sydby only
    row = page.locator("tr", has_text="sydby-anna")
    assert "Sydby Bibliotek" in row.inner_text() and "active" in row.inner_text()
    shot(page, "centre-accounts-en.png")

    row.get_by_role("button", name="Disable sydby-anna").click()
    page.wait_for_selector("p.ok")
    assert "disabled" in page.locator("tr", has_text="sydby-anna").inner_text()
    assert "sydby-anna" not in branch_accounts(centre, sites, "south")  # travels to the branch: gone there
    page.locator("tr", has_text="sydby-anna").get_by_role("button", name="Enable sydby-anna").click()
    page.wait_for_selector("p.ok")
    assert "sydby-anna" in branch_accounts(centre, sites, "south")

    before = branch_accounts(centre, sites, "south")["sydby-anna"]["password_hash"]
    page.get_by_role("link", name="Change sydby-anna").click()
    page.wait_for_selector("#edit-pw")
    assert_accessible(page, "changing an account")
    page.check("#edit-b-north")
    page.fill("#edit-pw", "nyt-kodeord-99")
    page.fill("#edit-pw2", "nyt-kodeord-99")
    shot(page, "centre-account-change-en.png")
    page.click("form.grid button[type=submit]")
    page.wait_for_selector("p.ok")
    after = branch_accounts(centre, sites, "south")["sydby-anna"]["password_hash"]
    assert after != before and after.startswith("$argon2id$")
    assert "sydby-anna" in branch_accounts(centre, sites, "north")
    signed_in(centre, "sydby-anna", "nyt-kodeord-99")  # the new password signs in at the centre too

    # -- configuration -------------------------------------------------------------------------------------
    page.get_by_role("navigation", name="Pages").get_by_role("link", name="Configuration").click()
    page.get_by_role("navigation", name="Branch").get_by_role("link", name="Sydby Bibliotek").click()
    page.wait_for_url("**branch=south**")
    assert "none yet: the branch runs on its own file" in page.inner_text("body")
    assert_accessible(page, "the configuration page with nothing published")
    original = page.input_value("#text")
    assert 'id = "south"' in original
    page.fill("#text", original.replace('letter = "K"', 'letter = "kv"', 1))
    page.click("#s-publish button[type=submit]")
    alert = page.get_by_role("alert").inner_text()
    assert "Not published. The hub's loader found these problems:" in alert
    assert "services.kvik.letter: expected one capital letter A–Z, got 'kv'" in alert
    assert centre.get("/api/v1/configs").json()["branches"][1]["wanted"] == 0  # nothing published
    assert 'letter = "kv"' in page.input_value("#text")  # the text typed is kept
    assert_accessible(page, "the configuration page with the loader's problems")
    shot(page, "centre-config-problems-en.png")

    page.fill("#text", original.replace('name = "Sydby Bibliotek"', 'name = "Sydby Bibliotek og Kulturhus"', 1))
    page.click("#s-publish button[type=submit]")
    page.wait_for_selector("p.ok")
    assert "Version 1 is published." in page.inner_text("p.ok")
    page.fill("#text", page.input_value("#text").replace("target_wait_min = 10", "target_wait_min = 12", 1))
    page.click("#s-publish button[type=submit]")
    page.wait_for_selector("p.ok")
    published = requests.get(f"{centre.url}/api/v1/branches/south/config", headers=ADMIN, timeout=10).json()
    assert published["version"] == 2 and "\r" not in published["text"]
    assert "target_wait_min = 12" in published["text"]
    # the branch reports that it refused version 2 (as server/uplink/follow.py would) and runs on 1
    problem = "services.kvik.target_wait_min: expected a number from 1 to 240"
    requests.post(f"{centre.url}/api/v1/branch/config/report", timeout=10,
                  headers={"Authorization": f"Bearer {sites['south'][0]}"},
                  json={"running": {"version": 1, "checksum": "x"},
                        "refused": {"version": 2, "checksum": "y", "problems": [problem]}}).raise_for_status()
    page.goto(f"{centre.url}/configuration?branch=south&lang=en")
    body = page.inner_text("body")
    assert "Version 2 was refused by the branch:" in body and problem in body
    rows = page.locator("#s-versions tbody tr").all_inner_texts()
    assert len(rows) == 2 and "kommune" in rows[0] and "newest" in rows[0] and "refused" in rows[0]
    assert "running" in rows[1]
    diff = page.inner_text("pre.diff")  # the newest two compared at once
    assert "-target_wait_min = 10" in diff and "+target_wait_min = 12" in diff and "Kulturhus" not in diff
    assert_accessible(page, "the configuration page with versions, a refusal and a difference")
    shot(page, "centre-config-en.png")

    # -- statistics ----------------------------------------------------------------------------------------
    summary = centre.get("/api/v1/summary", start=START.isoformat(), end=END.isoformat(), by="weekday").json()
    issued = summary["all"]["issued"]
    mean = summary["all"]["wait_mean_s"] / 60
    for lang, all_name, group in (("da", "Alle filialer", "søndag"), ("sv", "Alla filialer", "söndag"),
                                  ("fi", "Kaikki toimipisteet", "sunnuntai"), ("nl", "Alle vestigingen", "zondag"),
                                  ("en", "All branches", "Sunday")):
        page.goto(f"{centre.url}/statistics?lang={lang}&period=range&from={START}&to={END}&by=weekday")
        table = page.locator("#s-total table")
        assert table.locator("thead th").all_inner_texts()[1:] == ["Nordby Bibliotek", "Sydby Bibliotek", all_name]
        tickets = table.locator("tbody tr").first.locator("td").all_inner_texts()
        thousands = {"da": ".", "sv": "\u00a0", "fi": "\u00a0", "nl": ".", "en": ","}[lang]
        assert tickets[2] == f"{issued:,}".replace(",", thousands), (lang, tickets)
        mark = "." if lang == "en" else ","
        assert f"{mean:.1f}".replace(".", mark) + "\u00a0min" in table.inner_text(), lang
        assert group in page.locator("#s-by").inner_text()
        assert_accessible(page, f"the statistics page in {lang}")
        if lang in ("da", "en"):
            shot(page, f"centre-statistics-{lang}.png")
    page.goto(f"{centre.url}/statistics?lang=da&period=month&month=2026-10&by=service&figure=served")
    assert "oktober 2026" in page.inner_text("#s-total h2")
    by_service = page.locator("#s-by").inner_text()
    assert "KVIK – hurtig hjælp" in by_service and "Efter ydelse kender centret ikke mediantider" in by_service
    page.goto(f"{centre.url}/statistics?lang=en&period=range&from=2026-11-05&to=2026-11-01")
    assert page.get_by_role("alert").inner_text() == "The period ends before it begins."

    # the CSV, downloaded as a person does, holds the same figures as the API
    page.goto(f"{centre.url}/statistics?lang=da&period=range&from={START}&to={END}&by=weekday")
    with page.expect_download() as download:
        page.get_by_role("button", name=re.compile("Download|Hent|CSV")).click()
    text = Path(download.value.path()).read_text(encoding="utf-8")
    rows = list(csv.reader(io.StringIO(text), delimiter=";"))  # Danish: semicolons, as Excel there wants
    assert rows[0][:3] == ["branch", "name", "weekday"]
    totals = {r[0]: r for r in rows[1:] if r[2] == "total"}
    assert int(totals["all"][3]) == issued
    assert int(totals["north"][3]) + int(totals["south"][3]) == issued
    groups = [r for r in rows[1:] if r[0] == "all" and r[2] != "total"]
    assert sum(int(r[3]) for r in groups) == issued and len(groups) == 7

    # a phone: the wide tables scroll sideways in a box the keyboard reaches
    page.set_viewport_size(PHONE)
    for path in (f"/statistics?lang=fi&period=range&from={START}&to={END}&by=day",
                 "/configuration?branch=south&lang=nl", "/accounts?lang=sv"):
        page.goto(centre.url + path)
        assert_accessible(page, f"{path} on a phone")
        if path.startswith("/statistics"):
            shot(page, "centre-statistics-phone-fi.png")
    context.close()
