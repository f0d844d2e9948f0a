"""Staff sign in with OpenID Connect (Entra ID / Keycloak style) against a real local provider.

The provider is ``toolkit/oidc_provider.py`` (joserfc keys and JWS, discovery, a login form,
code + S256 PKCE, HTTP Basic client secret) on ``localhost``, a different site than the
hub's ``127.0.0.1`` for the browser, as a real provider is. The hub's client does discovery,
the code exchange with PKCE, and checks the ID token against the JWKS. Chromium goes
staff page → provider's login → back logged in; then every way an answer can be wrong
(audience, expiry, signature, nonce, issuer), a user without a staff group, a cancelled
sign-in and a callback that did not start in this browser are refused in words.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from server.config import ConfigError
from server.staff.accounts import parse_staff
from toolkit.accessibility import SIZES, axe_violations, describe
from toolkit.broker import Broker
from toolkit.hub_in_process import DEMO_STAFF_BLOCK, RunningHub, running_hub, site_config
from toolkit.oidc_provider import Account, Provider

CLIENT_ID, CLIENT_SECRET = "vuoro-hub", "a-client-secret-from-the-provider"
ACCOUNTS = [Account("anna@kommune.test", "anna-provider-pw", ("all-staff", "vuoro-staff")),
            Account("bo@kommune.test", "bo-provider-pw", ("vuoro-admins",)),
            Account("carl@kommune.test", "carl-provider-pw", ("library-all",))]
UNTRUSTED = ("The municipality's login sent an answer the hub cannot trust, so you were not signed in. Try again, "
             "and tell your IT department if it happens again.")


@pytest.fixture()
def shots(tmp_path: Path) -> Path:
    target = Path(os.environ.get("VUORO_STAFF_SCREENSHOTS") or tmp_path / "shots")
    target.mkdir(parents=True, exist_ok=True)
    return target


@pytest.fixture(scope="module")
def provider() -> Iterator[Provider]:
    running = Provider(CLIENT_ID, CLIENT_SECRET, ACCOUNTS).start()
    yield running
    running.stop()


def oidc_block(issuer: str) -> dict[str, Any]:
    return {"issuer": issuer, "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
            "groups": {"vuoro-admins": "admin", "vuoro-staff": {"role": "staff", "desks": ["kvik1", "kvik2"]}}}


@pytest.fixture()
def hub_with_provider(live_broker: Broker, tmp_path: Path, provider: Provider) -> Iterator[RunningHub]:
    provider.tamper = ""
    staff = {**DEMO_STAFF_BLOCK, "oidc": oidc_block(provider.issuer)}
    with running_hub(site_config(tmp_path, live_broker.url, staff=staff)) as running:
        yield running
    provider.tamper = ""


def sign_in(client: httpx.Client, provider: Provider, user: str, password: str, lang: str = "en") -> httpx.Response:
    """The browser's way through, by hand: start on the hub, log in at the provider, come back."""
    client.get(f"/staff/login?lang={lang}")
    start = client.get("/staff/oidc/start")
    assert start.status_code == 303, start.text
    to_provider = start.headers["location"]
    assert to_provider.startswith(provider.issuer + "/authorize?")
    params = {k: v[0] for k, v in parse_qs(urlsplit(to_provider).query).items()}
    assert params["code_challenge_method"] == "S256" and params["nonce"] and params["state"]
    assert params["prompt"] == "login"  # a shared desk PC never signs the next person in as the last one
    login = httpx.post(provider.issuer + "/authorize", data={**params, "username": user, "password": password})
    assert login.status_code == 302, login.text
    return client.get(login.headers["location"])


def error_of(page: httpx.Response) -> str:
    found = re.search(r'<p class="error" role="alert">([^<]*)</p>', page.text)
    return found.group(1).replace("&#x27;", "'") if found else ""


def test_oidc_config_is_validated_with_key_paths(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_staff({"oidc": {"issuer": "http://login.kommune.dk", "scopes": ["profile"], "flavour": 1,
                              "prompt": "none", "redirect_uri": "https://hub.kommune.dk/login", "groups": {}}})
    text = "\n".join(caught.value.problems)
    for expected in ("staff.oidc.issuer: expected an https://", "staff.oidc.prompt",
                     "staff.oidc.client_id: expected a text",
                     'staff.oidc.scopes: expected a list of scopes with "openid"', "staff.oidc.flavour: unknown key",
                     "staff.oidc.redirect_uri", "staff.oidc.groups: expected a table"):
        assert expected in text, expected
    settings = parse_staff({"oidc": oidc_block("https://login.microsoftonline.com/tenant-id/v2.0/")}).oidc
    assert settings and settings.issuer == "https://login.microsoftonline.com/tenant-id/v2.0"


@pytest.mark.browser
def test_chromium_signs_in_through_the_provider_and_back(hub_with_provider: RunningHub, provider: Provider,
                                                         browser: Any, shots: Path) -> None:
    from playwright.sync_api import expect

    url = hub_with_provider.url
    context = browser.new_context(viewport=SIZES["desktop"])
    page = context.new_page()
    page.goto(url + "/staff/login?lang=en")
    page.screenshot(path=str(shots / "login-with-oidc.png"))
    violations = {"login": axe_violations(page)}
    page.get_by_role("link", name="Log in with the municipality's login").click()
    page.wait_for_url(provider.issuer + "/authorize?*")
    page.fill("#u", "anna@kommune.test")
    page.fill("#p", "anna-provider-pw")
    page.click("button[type=submit]")
    page.wait_for_url(url + "/staff/")
    expect(page.locator("[data-testid=desk]")).to_be_visible()
    expect(page.get_by_text("anna@kommune.test")).to_be_visible()
    options = page.locator("[data-testid=desk] option").evaluate_all("els => els.map(e => e.value).filter(v => v)")
    assert options == ["kvik1", "kvik2"]  # her group's desks
    page.screenshot(path=str(shots / "desk-after-oidc.png"))

    # Logged out, then a provider whose tokens are for another app: refused in Danish, on the login page.
    page.goto(url + "/staff/login?lang=da")
    context.clear_cookies()
    provider.tamper = "audience"
    page.goto(url + "/staff/login?lang=da")
    page.get_by_role("link", name="Log ind med kommunens login").click()
    page.fill("#u", "anna@kommune.test")
    page.fill("#p", "anna-provider-pw")
    page.click("button[type=submit]")
    page.wait_for_url(url + "/staff/oidc/callback?*")
    expect(page.get_by_role("alert")).to_have_text(re.compile("Kommunens login sendte et svar"))
    page.screenshot(path=str(shots / "login-oidc-refused-da.png"))
    violations["refused"] = axe_violations(page)
    context.close()
    phone = browser.new_context(viewport=SIZES["phone"])
    small = phone.new_page()
    small.goto(url + "/staff/login?lang=fi")
    expect(small.get_by_role("link", name="Kirjaudu kunnan tunnuksilla")).to_be_visible()
    small.screenshot(path=str(shots / "login-with-oidc-phone-fi.png"))
    violations["login at phone size"] = axe_violations(small)
    phone.close()
    found = {k: v for k, v in violations.items() if v}
    assert not found, "\n".join(f"{k}:\n{describe(v)}" for k, v in found.items())


def test_an_admin_and_the_session_that_follows(hub_with_provider: RunningHub, provider: Provider) -> None:
    with httpx.Client(base_url=hub_with_provider.url) as client:
        back = sign_in(client, provider, "bo@kommune.test", "bo-provider-pw")
        assert back.status_code == 200 and 'http-equiv="refresh" content="0;url=/staff/"' in back.text
        me = client.get("/staff/api/me").json()
        assert (me["user"], me["role"]) == ("bo@kommune.test", "admin")
        assert "vuoro_staff_oidc" not in client.cookies  # the sign-in's state is spent
        session = next(c for c in client.cookies.jar if c.name == "vuoro_staff")
        assert session.has_nonstandard_attr("HttpOnly")


@pytest.mark.parametrize(("tamper", "words"), [
    ("audience", UNTRUSTED), ("signature", UNTRUSTED), ("nonce", UNTRUSTED), ("issuer", UNTRUSTED),
    ("expired", "The sign-in took too long and has expired. Try again."),
])
def test_a_token_that_is_wrong_in_any_way_signs_no_one_in(hub_with_provider: RunningHub, provider: Provider,
                                                          tamper: str, words: str) -> None:
    provider.tamper = tamper
    with httpx.Client(base_url=hub_with_provider.url) as client:
        back = sign_in(client, provider, "anna@kommune.test", "anna-provider-pw")
        assert back.status_code == 401 and error_of(back) == words
        assert client.get("/staff/api/me").status_code == 401
    provider.tamper = ""
    with httpx.Client(base_url=hub_with_provider.url) as client:  # the same person, a sound token: in
        assert sign_in(client, provider, "anna@kommune.test", "anna-provider-pw").status_code == 200
        assert client.get("/staff/api/me").json()["role"] == "staff"


def test_no_staff_group_a_cancel_and_a_stray_callback(hub_with_provider: RunningHub, provider: Provider) -> None:
    with httpx.Client(base_url=hub_with_provider.url) as client:
        no_group = sign_in(client, provider, "carl@kommune.test", "carl-provider-pw", lang="sv")
        assert no_group.status_code == 403
        assert error_of(no_group) == ("Du är inte med i en personalgrupp. Be er IT-avdelning om tillgång till "
                                      "kösystemet.")
        assert client.get("/staff/api/me").status_code == 401
    with httpx.Client(base_url=hub_with_provider.url) as client:
        client.get("/staff/login?lang=en")
        start = client.get("/staff/oidc/start")
        state = parse_qs(urlsplit(start.headers["location"]).query)["state"][0]
        cancelled = client.get(f"/staff/oidc/callback?error=access_denied&state={state}")
        assert error_of(cancelled) == "The sign-in was cancelled. Try again when you are ready."
    # A code and state that came to another browser (no state cookie here): refused, and the code is never used.
    with httpx.Client(base_url=hub_with_provider.url) as victim, httpx.Client(base_url=hub_with_provider.url) as other:
        victim.get("/staff/login?lang=en")
        params = {k: v[0] for k, v in parse_qs(urlsplit(victim.get("/staff/oidc/start").headers["location"]).query)
                  .items()}
        login = httpx.post(provider.issuer + "/authorize",
                           data={**params, "username": "anna@kommune.test", "password": "anna-provider-pw"})
        callback = urlsplit(login.headers["location"])
        tokens_before = provider.requests.count("/token")
        stray = other.get(f"{callback.path}?{callback.query}&lang=en")
        assert stray.status_code == 401 and error_of(stray) == "The sign-in took too long and has expired. Try again."
        assert provider.requests.count("/token") == tokens_before
        assert victim.get(f"{callback.path}?{callback.query}").status_code == 200  # the right browser still can
        assert victim.get(f"{callback.path}?{callback.query}").status_code == 401  # but only once


def test_a_provider_that_is_down_is_said_plainly(live_broker: Broker, tmp_path: Path) -> None:
    gone = Provider(CLIENT_ID, CLIENT_SECRET, ACCOUNTS).start()
    issuer = gone.issuer
    gone.stop()
    staff = {**DEMO_STAFF_BLOCK, "oidc": {**oidc_block(issuer), "timeout_s": 2}}
    with running_hub(site_config(tmp_path, live_broker.url, staff=staff)) as running, \
            httpx.Client(base_url=running.url) as client:
        client.get("/staff/login?lang=en")
        down = client.get("/staff/oidc/start")
        assert down.status_code == 503
        assert error_of(down) == ("The municipality's login cannot be reached right now. Try again in a moment, or "
                                  "use a local account.")


def test_the_provider_rotates_its_keys(hub_with_provider: RunningHub, provider: Provider) -> None:
    """Tokens signed by a new key (a new ``kid`` in the JWKS) are accepted: the hub reads the keys once more."""
    from joserfc.jwk import RSAKey

    with httpx.Client(base_url=hub_with_provider.url) as client:
        assert sign_in(client, provider, "anna@kommune.test", "anna-provider-pw").status_code == 200  # keys read
    old = provider.key
    provider.key = RSAKey.generate_key(2048, parameters={"kid": "k2", "use": "sig"})
    try:
        jwks_reads = provider.requests.count("/jwks")
        with httpx.Client(base_url=hub_with_provider.url) as client:
            assert sign_in(client, provider, "anna@kommune.test", "anna-provider-pw").status_code == 200
        assert provider.requests.count("/jwks") == jwks_reads + 1
    finally:
        provider.key = old
