"""The staff page over HTTP: logins, sessions, CSRF, the rate limit, the waiting list, config errors."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from argon2 import PasswordHasher

from server.config import ConfigError
from server.staff.accounts import LoginGuard, parse_staff
from toolkit.broker import Broker
from toolkit.hub_in_process import DEMO_PASSWORD, DEMO_STAFF_BLOCK, DEMO_USER, RunningHub, running_hub, site_config


@pytest.fixture()
def hub_in_process(live_broker: Broker, tmp_path: Path) -> Iterator[RunningHub]:
    """The kit's in-process hub, with three login attempts before the back-off (the guard's tests)."""
    staff = {**DEMO_STAFF_BLOCK, "login_attempts": 3}
    with running_hub(site_config(tmp_path, live_broker.url, staff=staff)) as running:
        yield running


def login_form(client: httpx.Client) -> str:
    page = client.get("/staff/login")
    assert page.status_code == 200
    match = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert match
    return match.group(1)


def log_in(client: httpx.Client, user: str = DEMO_USER, password: str = DEMO_PASSWORD) -> httpx.Response:
    return client.post("/staff/login", data={"username": user, "password": password, "csrf": login_form(client)})


def test_login_sets_a_strict_session_and_csrf_guards_every_change(hub_in_process: RunningHub) -> None:
    with httpx.Client(base_url=hub_in_process.url) as client:
        assert client.get("/staff/").headers["location"] == "/staff/login"
        assert client.get("/api/v1/devices").status_code == 401
        answer = log_in(client)
        assert answer.status_code == 303 and answer.headers["location"] == "/staff/"
        cookie = next(v for k, v in answer.headers.multi_items() if k == "set-cookie" and "vuoro_staff=" in v)
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/" in cookie
        assert "Secure" not in cookie  # plain http in the test; Secure over https
        page = client.get("/staff/")
        assert page.status_code == 200
        assert "default-src 'self'" in page.headers["content-security-policy"]
        assert page.headers["x-frame-options"] == "DENY"
        csrf = client.get("/staff/api/me").json()["csrf"]
        assert csrf in page.text  # handed to the page in its boot data

        hub_in_process.issue("kvik", 2)
        refused = client.post("/api/v1/counters/kvik1/next")
        assert refused.status_code == 403 and refused.json()["error"]["code"] == "csrf"
        wrong = client.post("/api/v1/counters/kvik1/next", headers={"X-CSRF-Token": csrf[:-2] + "xx"})
        assert wrong.status_code == 403
        assert hub_in_process.hub.view.queues["kvik"]["waiting"] == 2  # nothing happened
        called = client.post("/api/v1/counters/kvik1/next", headers={"X-CSRF-Token": csrf})
        assert called.status_code == 200 and called.json()["call"]["ticket"] == "K001"
        assert client.get("/api/v1/devices").status_code == 200  # reading needs the session, not the token

        assert client.post("/staff/logout").status_code == 403  # logging out needs the token too
        out = client.post("/staff/logout", data={"csrf": csrf})
        assert out.status_code == 303
        assert client.post("/api/v1/counters/kvik1/next", headers={"X-CSRF-Token": csrf}).status_code == 401


def test_wrong_password_forged_login_and_the_back_off(hub_in_process: RunningHub) -> None:
    with httpx.Client(base_url=hub_in_process.url) as client:
        forged = client.post("/staff/login", data={"username": DEMO_USER, "password": DEMO_PASSWORD})
        assert forged.status_code == 403 and "vuoro_staff=" not in forged.headers.get("set-cookie", "")
        for _ in range(3):
            answer = log_in(client, password="not-the-password")
            assert answer.status_code == 401
            assert "Forkert brugernavn eller adgangskode." in answer.text  # Danish by default
        slowed = log_in(client)  # from here, even the right password waits a moment
        assert slowed.status_code == 429 and 1 <= int(slowed.headers["retry-after"]) <= 300
        assert re.search(r"For mange forsøg\. Vent \d+ sekunder og prøv igen\.", slowed.text)
        assert client.get("/staff/api/me").status_code == 401


def from_address(hub_in_process: RunningHub, address: str) -> httpx.Client:
    """A browser on another machine: any 127.x.y.z is this one, and the hub sees it as another address."""
    return httpx.Client(base_url=hub_in_process.url, transport=httpx.HTTPTransport(local_address=address))


def test_someone_elses_wrong_passwords_never_lock_the_staff_out(hub_in_process: RunningHub) -> None:
    """Issue 13: five wrong passwords from anywhere used to lock the user out everywhere for 300 s."""
    with from_address(hub_in_process, "127.0.0.2") as attacker:
        for _ in range(3):
            assert log_in(attacker, password="guess").status_code == 401
        assert log_in(attacker, password="guess").status_code == 429  # the guesser is slowed ...
    with from_address(hub_in_process, "127.0.0.3") as desk:
        first = log_in(desk)  # ... the staff member, on another machine, is not
        assert first.status_code == 303
        device = next(v for k, v in first.headers.multi_items() if k == "set-cookie" and "vuoro_device_demo=" in v)
        assert "HttpOnly" in device and "SameSite=strict" in device and "Path=/staff/login" in device
        desk.post("/staff/logout", data={"csrf": desk.get("/staff/api/me").json()["csrf"]})

        # Guessing from many addresses slows the user name on every machine it has not logged in on ...
        for n in range(4, 8):
            with from_address(hub_in_process, f"127.0.0.{n}") as attacker:
                for _ in range(3):
                    assert log_in(attacker, password="guess").status_code == 401
        with from_address(hub_in_process, "127.0.0.8") as new_machine:
            assert log_in(new_machine).status_code == 429
        # ... the desk's own address included (a shared NAT), without the desk's cookie:
        with from_address(hub_in_process, "127.0.0.3") as neighbour:
            neighbour.cookies.set("vuoro_device_demo", "forged." + "A" * 43, path="/staff/login")
            assert log_in(neighbour, password="guess").status_code == 429  # a forged device cookie is no cookie
        # The desk's browser, known by its signed cookie, logs in as ever.
        again = log_in(desk)
        assert again.status_code == 303 and desk.get("/staff/api/me").json()["user"] == DEMO_USER


def test_login_waits_double_after_the_free_failures_and_are_forgiven_with_time() -> None:
    now = [1000.0]
    guard = LoginGuard(3, 300, clock=lambda: now[0])
    waits: list[int] = []
    for _ in range(14):
        now[0] += waits[-1] if waits else 0  # each try as soon as it is allowed
        guard.failed("anna", "10.0.0.9", None)
        waits.append(round(guard.wait("anna", "10.0.0.9", None)))
    assert waits == [0, 0, 1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300, 300]
    assert guard.wait("anna", "10.0.0.10", None) > 0  # the name, from a fresh unknown machine: 14 > 12 free
    assert guard.wait("bo", "10.0.0.9", None) > 0  # the address, with any name: 14 > 12
    assert guard.wait("anna", "10.0.0.10", "known-device") == 0  # a known device is counted on its own
    now[0] += 12 * 600  # an hour of quiet forgives six failures a key ... two hours: twelve
    assert guard.wait("bo", "10.0.0.9", None) == 0 and guard.wait("anna", "10.0.0.9", None) == 0


def test_waiting_list_shows_numbers_only(hub_in_process: RunningHub) -> None:
    with httpx.Client(base_url=hub_in_process.url) as client:
        assert client.get("/staff/api/waiting").status_code == 401
        log_in(client)
        hub_in_process.issue("kvik", 2)
        hub_in_process.issue("bibliotekar", 1)
        lines = client.get("/staff/api/waiting").json()["services"]
        assert [t["ticket"] for t in lines["kvik"]] == ["K001", "K002"]
        assert [t["ticket"] for t in lines["bibliotekar"]] == ["L001"]
        allowed = {"ticket", "origin", "waited_min", "queued_at", "due_at", "transferred"}
        assert all(set(t) == allowed for line in lines.values() for t in line)


def test_english_on_request(hub_in_process: RunningHub) -> None:
    with httpx.Client(base_url=hub_in_process.url) as client:
        page = client.get("/staff/login?lang=en")
        assert '<html lang="en">' in page.text and "User name" in page.text
        assert '<html lang="en">' in client.get("/staff/login").text  # remembered


def test_staff_config_is_validated_clearly() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_staff({"users": {"anna": {"role": "boss", "password_hash": "x"},
                               "bo": {"password_hash": "plaintext"}, "Bad Name": {}},
                     "session_hours": 0, "colour": 1})
    text = "\n".join(caught.value.problems)
    for expected in ("staff.users.anna.role", "staff.users.bo.password_hash: expected an argon2id hash",
                     "staff.users.Bad Name", "staff.session_hours", "staff.colour: unknown key"):
        assert expected in text
    assert parse_staff(None).users == {}


def test_hashpw_prints_a_hash_that_verifies() -> None:
    done = subprocess.run([sys.executable, "-m", "server.staff.hashpw"], input="a long enough password\n",
                          capture_output=True, text=True, check=True, cwd=Path(__file__).resolve().parent.parent)
    hashed = re.fullmatch(r'password_hash = "(\$argon2id\$[^"]+)"\n', done.stdout)
    assert hashed and PasswordHasher().verify(hashed.group(1), "a long enough password")
    short = subprocess.run([sys.executable, "-m", "server.staff.hashpw"], input="short\n", capture_output=True,
                           text=True, cwd=Path(__file__).resolve().parent.parent)
    assert short.returncode == 1 and not short.stdout


def test_every_word_of_the_staff_page_is_in_each_staff_language() -> None:
    """strings.py lists every text the page shows; each catalog has them all, with the same {placeholders}."""
    from server.staff.strings import LOCALE_DIR, MSGIDS, strings
    from vuoro.i18n import untranslated

    assert len(set(MSGIDS)) == len(MSGIDS)
    for lang in ("da", "sv", "fi", "nl"):
        assert untranslated(LOCALE_DIR, lang, list(MSGIDS)) == [], lang
        for msgid, text in strings(lang).items():
            assert set(re.findall(r"{\w+}", text)) == set(re.findall(r"{\w+}", msgid)), (lang, msgid, text)
    used = set(re.findall(r'\bt\("((?:[^"\\]|\\.)*)"', (Path(__file__).parent.parent / "server" / "staff" / "web" /
                                                        "staff.js").read_text(encoding="utf-8")))
    assert used <= set(MSGIDS), used - set(MSGIDS)
