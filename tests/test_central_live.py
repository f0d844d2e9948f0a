"""The centre's overview live: real branch hubs ship to the real centre on a private PostgreSQL, and an overview open
in Chromium follows them without reloading (the worker's once-a-second read of the branches' states → its event
stream → the branch's section read again and put in place).

- a ticket taken at a branch hub appears on the open page, and so does the hub's refusal of a config version; a
  branch killed is marked "not heard from" on it after the threshold; PostgreSQL restarted under it, the page
  catches up with what was shipped meanwhile. Each time the page is the one first loaded (a marker set on
  ``window`` would be gone after a reload; one navigation entry);
- the stream names only the viewer's own branches, ends when its viewer signs out, and ends cleanly at once when
  the centre stops;
- a busy branch makes at most one event a second; a worker at its limit refuses one stream more.
"""

from __future__ import annotations

import re
import threading
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.test_central_e2e import Setup
from toolkit.accessibility import assert_accessible
from toolkit.central_process import ADMIN_TOKEN
from toolkit.polling import wait_until

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
SHOTS = Path(__file__).resolve().parent.parent / "docs" / "screenshots" / "central"


def add_account(centre_url: str, name: str, branches: list[str]) -> str:
    password = f"{name}-kodeord-1"
    requests.put(f"{centre_url}/api/v1/staff/{name}", headers=ADMIN, timeout=30,
                 json={"role": "admin" if not branches else "staff", "password": password,
                       "branches": branches}).raise_for_status()
    return password


def section(page: Any, branch: str) -> Any:
    return page.locator(f'section[data-branch="{branch}"]')


def tickets_today(page: Any, branch: str) -> str:
    """The "Tickets today" figure of a branch's section as the page shows it now."""
    return str(section(page, branch).locator("dl dd").nth(3).inner_text())


def same_page(page: Any) -> bool:
    """The page first loaded, never reloaded: its marker is there and it has one navigation."""
    return bool(page.evaluate("window.__firstLoad === 1 && performance.getEntriesByType('navigation').length === 1"))


@pytest.mark.browser
def test_the_open_overview_follows_the_branches_without_a_reload(tmp_path: Path, make_hub: Any, make_central: Any,
                                                                 postgres: Any, postgres_db: str,
                                                                 browser: Any) -> None:
    setup = Setup(tmp_path, make_hub, make_central, postgres_db)
    setup.centre.start()
    for hub in setup.hubs.values():
        hub.start()
    add_account(setup.centre.url, "kommune", [])
    wait_until(lambda: all(b["seconds_since_seen"] is not None for b in setup.centre.get(
        "/api/v1/branches").json()["branches"]), "both branches to be heard from", 60)

    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.goto(f"{setup.centre.url}/login?lang=en")
    page.fill("#username", "kommune")
    page.fill("#password", "kommune-kodeord-1")
    page.click("button[type=submit]")
    page.wait_for_selector('section[data-branch="north"]')
    page.evaluate("window.__firstLoad = 1")
    assert page.locator("#live").is_visible() and page.locator("#live").is_checked()  # the script runs
    assert tickets_today(page, "north") == "0"
    wait_until(lambda: "stale" not in (section(page, "south").get_attribute("class") or ""),
               "south to show as heard from", 60)

    # a ticket at a real branch hub: on the open page, without a reload
    setup.issue("north")
    wait_until(lambda: tickets_today(page, "north") == "1", "north's ticket on the open overview", 60)
    assert page.locator('section[data-branch="north"] tbody tr').first.locator("td").nth(1).inner_text() == "1"
    assert same_page(page)
    assert page.locator("#live-status").inner_text().startswith("Updated ")
    assert_accessible(page, "the live overview after an update")
    page.screenshot(path=str(tmp_path / "live.png"), full_page=True)

    # a config version published for north, which the real hub refuses with its own loader and reports: on the page
    text = setup.sites["north"][1].read_text(encoding="utf-8").replace('letter = "K"', 'letter = "kv"', 1)
    requests.post(f"{setup.centre.url}/api/v1/branches/north/config", data=text.encode(), headers=ADMIN,
                  timeout=30).raise_for_status()
    wait_until(lambda: "Version 1 was refused by the branch:" in section(page, "north").inner_text(),
               "north's refusal on the open overview", 90)
    assert same_page(page)

    # a branch gone (power cut): marked "not heard from" once the threshold has passed, with no batch to tell of it
    setup.hubs["south"].kill()
    wait_until(lambda: "stale" in (section(page, "south").get_attribute("class") or ""),
               "south marked as not heard from on the open page", 150)
    assert "Not heard from for over a minute" in section(page, "south").inner_text()
    assert "stale" not in (section(page, "north").get_attribute("class") or "")
    assert same_page(page)

    # PostgreSQL restarted under the centre, a ticket shipped meanwhile: the page catches up
    postgres.stop()
    setup.issue("north")  # the branch keeps it in its outbox until the centre's database is back
    postgres.start()
    wait_until(lambda: tickets_today(page, "north") == "2", "the page to catch up after PostgreSQL's restart", 120)
    assert same_page(page)
    setup.issue("north")  # and it goes on following
    wait_until(lambda: tickets_today(page, "north") == "3", "a ticket after the restart on the open page", 60)
    assert same_page(page)
    context.close()


def signed_in(centre_url: str, name: str, password: str) -> requests.Session:
    """A requests session signed in to the centre's pages as a person (the sign-in form, its CSRF cookie)."""
    session = requests.Session()
    form = session.get(f"{centre_url}/login", timeout=30).text
    csrf = re.search(r'name="csrf" value="([^"]+)"', form)
    assert csrf, form
    answer = session.post(f"{centre_url}/login", data={"username": name, "password": password, "csrf": csrf[1]},
                          timeout=30, allow_redirects=False)
    assert answer.status_code == 303, answer.text
    return session


class Reader:
    """An event stream read in a thread: the events' (name, data), and how it ended."""

    def __init__(self, response: requests.Response):
        self.response, self.events, self.ended_cleanly, self.error = response, [], False, None
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        name = ""
        try:
            for line in self.response.iter_lines(decode_unicode=True):
                if line.startswith("event: "):
                    name = line[7:]
                elif line.startswith("data: "):
                    self.events.append((name, line[6:]))
            self.ended_cleanly = True
        except Exception as exc:  # a stream cut off rather than ended
            self.error = exc


def test_the_stream_names_only_the_viewers_branches_and_ends_when_the_centre_stops(
        tmp_path: Path, make_hub: Any, make_central: Any, postgres_db: str) -> None:
    setup = Setup(tmp_path, make_hub, make_central, postgres_db)
    setup.centre.start()
    for hub in setup.hubs.values():
        hub.start()
    password = add_account(setup.centre.url, "nordby", ["north"])
    nordby = signed_in(setup.centre.url, "nordby", password)
    stream_url = f"{setup.centre.url}/api/v1/overview/stream"
    assert requests.get(stream_url, timeout=10).status_code == 401  # no one signed in: nothing to hear
    mine = Reader(nordby.get(stream_url, stream=True, timeout=(10, None)))
    everyone = Reader(requests.get(stream_url, headers=ADMIN, stream=True, timeout=(10, None)))
    assert mine.response.headers["content-type"].startswith("text/event-stream")

    setup.issue("south")
    wait_until(lambda: ("branch", "south") in everyone.events, "the admin's stream to name south", 60)
    setup.issue("north")
    wait_until(lambda: ("branch", "north") in mine.events, "north's viewer to hear of north", 60)
    wait_until(lambda: ("branch", "north") in everyone.events, "the admin's stream to name north", 60)
    assert all(data == "north" for name, data in mine.events if name == "branch"), mine.events

    # a branch's report of the config it runs (or refused) changes its section too: its viewers hear of it
    mine.events.clear()
    requests.post(f"{setup.centre.url}/api/v1/branch/config/report", timeout=10,
                  headers={"Authorization": f"Bearer {setup.sites['north'][0]}"},
                  json={"running": {"version": 0, "checksum": None},
                        "refused": {"version": 7, "checksum": "x", "problems": ["services.kvik.letter: …"]}},
                  ).raise_for_status()
    wait_until(lambda: ("branch", "north") in mine.events, "north's viewer to hear of north's report", 60)

    # the section it is told to read: its own branch, never another's
    assert 'data-branch="north"' in nordby.get(f"{setup.centre.url}/overview/branches?branch=north", timeout=30).text
    assert nordby.get(f"{setup.centre.url}/overview/branches?branch=south", timeout=30).status_code == 404
    assert 'data-branch="south"' not in nordby.get(f"{setup.centre.url}/overview/branches", timeout=30).text

    # signed out (another tab, or the account ended): its stream ends at its next keep-alive, not hours later
    leaving = signed_in(setup.centre.url, "nordby", password)
    gone = Reader(leaving.get(stream_url, stream=True, timeout=(10, None)))
    csrf = re.search(r'name="csrf" value="([^"]+)"', leaving.get(f"{setup.centre.url}/", timeout=30).text)
    assert csrf
    leaving.post(f"{setup.centre.url}/logout", data={"csrf": csrf[1]}, timeout=30, allow_redirects=False)
    gone.thread.join(60)
    assert gone.ended_cleanly, gone.error
    assert mine.thread.is_alive() and everyone.thread.is_alive()  # the others go on

    setup.centre.stop()  # SIGTERM: every open stream is ended at once, not cut off after uvicorn's grace
    mine.thread.join(30)
    everyone.thread.join(30)
    assert mine.ended_cleanly and everyone.ended_cleanly, (mine.error, everyone.error)


def test_a_busy_branch_is_told_of_at_most_once_a_second_and_a_full_worker_refuses_more_streams() -> None:
    """The worker's streams in its own event loop (central/live.py): ten batches of one branch at once make one event
    now and one when the second is over, never ten; a worker at its limit opens no stream more."""
    import asyncio

    from central.live import COALESCE_S, LiveOverview

    async def run() -> None:
        async def nothing_changes() -> dict[str, tuple[bool, int]]:
            return {}

        live = LiveOverview(nothing_changes, limit=2)
        north_only = live.open(lambda branch: branch == "north")
        everyone = live.open(lambda branch: True)
        assert north_only is not None and everyone is not None
        assert live.open(lambda branch: True) is None  # the limit: refused, not queued
        await live.opened()
        for _ in range(10):
            live.branch_changed("north")
            live.branch_changed("south")
        assert north_only.take() == b"event: branch\ndata: north\n\n"  # south is not its viewer's
        assert everyone.take() == b"event: branch\ndata: north\n\nevent: branch\ndata: south\n\n"
        await asyncio.sleep(COALESCE_S * 3)  # the changes held back meanwhile: one event each, once it is over
        assert north_only.take() == b"event: branch\ndata: north\n\n"
        assert everyone.take() == b"event: branch\ndata: north\n\nevent: branch\ndata: south\n\n"
        assert north_only.take() == b""
        live.end_all()
        assert north_only.ended and everyone.ended and live.open(lambda branch: True) is None

    # a thread of its own: in this process Playwright's sync API may already run a loop on this thread
    failure: list[BaseException] = []
    thread = threading.Thread(target=lambda: _catch(failure, lambda: asyncio.run(run())))
    thread.start()
    thread.join(60)
    if failure:
        raise failure[0]
    assert not thread.is_alive()


def _catch(into: list[BaseException], work: Any) -> None:
    try:
        work()
    except BaseException as exc:  # handed to the test's own thread
        into.append(exc)
