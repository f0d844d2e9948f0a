"""Staff sign in to the centre's pages with the municipality's directory: a real centre process, a real OpenLDAP.

The centre binds as the person (server/staff/directory.py, the hubs' code), and the first listed group that
names them gives the branches they see; a right password without such a group is refused in plain words, a
disabled account like a wrong password; when the directory is down the centre's own accounts still sign in and a
directory user is told plainly why they cannot.
"""

from __future__ import annotations

import html
import re
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from central.config import ConfigError, load_centre
from tests.test_central_e2e import BRANCHES, branch_site
from toolkit.broker import free_port
from toolkit.central_process import ADMIN_TOKEN, write_centre_config
from toolkit.oidc_provider import Account as OidcAccount
from toolkit.oidc_provider import Provider
from toolkit.slapd import SUFFIX, Person, Slapd, group_dn

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
PEOPLE = [
    Person("anna", "anna-directory-pw", ("north-staff",)),  # sees Nordby only
    Person("bo.berg", "bo-directory-pw", ("vuoro-admins", "north-staff")),  # the first listed group: every branch
    Person("carl", "carl-directory-pw", ("library-all",)),  # in the directory, not in a group the centre lists
    Person("dina", "dina-directory-pw", ("north-staff",), disabled=True),
]
NO_GROUP = "You are not in a staff group. Ask your IT department for access to the queue system."
WRONG = "Wrong user name or password."
DOWN = "The municipality's login cannot be reached right now. Try again in a moment, or use a centre account."


def ldap_toml(url: str, groups: str | None = None) -> str:
    groups = groups or (f'"{group_dn("vuoro-admins")}" = {{role = "admin", branches = "all"}}\n'
                        f'"{group_dn("north-staff")}" = {{role = "staff", branches = ["north"]}}\n')
    return (f'\n[staff.ldap]\nurl = "{url}"\nbind = "uid={{user}},ou=people,{SUFFIX}"\n'
            f'user_base = "ou=people,{SUFFIX}"\nuser_filter = "(&(uid={{user}})(!(employeeType=disabled)))"\n'
            f'group_base = "ou=groups,{SUFFIX}"\ntimeout_s = 2\n\n[staff.ldap.groups]\n{groups}')


def sign_in(session: requests.Session, url: str, user: str, password: str, lang: str = "en") -> requests.Response:
    form = session.get(f"{url}/login?lang={lang}", timeout=30)
    csrf = re.search(r'name="csrf" value="([^"]+)"', form.text)
    assert csrf and form.status_code == 200
    return session.post(f"{url}/login?lang={lang}", timeout=30, allow_redirects=False,
                        data={"username": user, "password": password, "csrf": csrf.group(1)})


def said(answer: requests.Response) -> str:
    found = re.search(r'<p class="warn" role="alert">([^<]*)</p>', answer.text)
    return html.unescape(found.group(1)) if found else ""


def branches_seen(session: requests.Session, url: str) -> list[str]:
    answer = session.get(f"{url}/api/v1/branches", timeout=30)
    assert answer.status_code == 200, answer.text
    return sorted(b["branch"] for b in answer.json()["branches"])


def test_the_centres_directory_settings_are_checked_with_key_paths(tmp_path: Path) -> None:
    sites = {bid: branch_site(tmp_path, bid, name, 1) for bid, name in BRANCHES.items()}
    groups = ('"cn=plain" = "staff"\n"cn=mars" = {role = "staff", branches = ["north", "mars"]}\n'
              '"cn=none" = {role = "staff", branches = []}\n"cn=boss" = {role = "boss", branches = "all"}\n'
              '"cn=desks" = {role = "staff", branches = "all", desks = ["kvik1"]}\n')
    extra = ldap_toml("http://dc.kommune.test", groups).replace("timeout_s = 2", "timeout_s = 2\noffline_days = 3")
    path = write_centre_config(tmp_path / "centre.toml", "postgresql://vuoro@127.0.0.1:1/x", sites, extra=extra)
    with pytest.raises(ConfigError) as caught:
        load_centre(path)
    text = "\n".join(caught.value.problems)
    for expected in ("staff.ldap.url: expected ldap://", "staff.ldap.offline_days: unknown key",
                     'staff.ldap.groups."cn=plain": expected a table with role and branches',
                     "staff.ldap.groups.\"cn=mars\".branches: no branch 'mars' (there are: north, south)",
                     'staff.ldap.groups."cn=none".branches: expected a list of branch ids or "all"',
                     'staff.ldap.groups."cn=boss".role: expected "staff" or "admin"',
                     'staff.ldap.groups."cn=desks".desks: unknown key'):
        assert expected in text, (expected, text)
    good = write_centre_config(tmp_path / "good.toml", "postgresql://vuoro@127.0.0.1:1/x", sites,
                               extra=ldap_toml("ldap://127.0.0.1:389"))
    ldap = load_centre(good).ldap
    assert ldap is not None
    assert [(g.role, g.branches) for g in ldap.groups.values()] == [("admin", None), ("staff", ("north",))]


@pytest.fixture()
def directory(tmp_path: Path) -> Any:
    slapd = Slapd(tmp_path / "slapd", PEOPLE).build().start()
    yield slapd
    slapd.stop()


@pytest.fixture()
def centre(tmp_path: Path, make_central: Any, directory: Slapd) -> Any:
    port = free_port()
    sites = {bid: branch_site(tmp_path, bid, name, port) for bid, name in BRANCHES.items()}
    running = make_central(sites, port=port, extra=ldap_toml(directory.url)).start()
    requests.put(f"{running.url}/api/v1/staff/kommune", json={"role": "admin", "password": "kommune-kodeord-1"},
                 headers=ADMIN, timeout=30).raise_for_status()
    return running


def test_directory_users_sign_in_and_see_the_branches_their_group_allows(centre: Any) -> None:
    with requests.Session() as anna:
        answer = sign_in(anna, centre.url, "anna", "anna-directory-pw")
        assert answer.status_code == 303 and said(answer) == ""
        assert branches_seen(anna, centre.url) == ["north"]
        page = anna.get(f"{centre.url}/?lang=en", timeout=30).text
        assert "Signed in as anna" in page and "Nordby Bibliotek" in page and "Sydby Bibliotek" not in page
        assert anna.get(f"{centre.url}/api/v1/branches/south/summary", timeout=30).status_code == 404
        assert anna.get(f"{centre.url}/api/v1/branches/north/summary", timeout=30).status_code == 200
    with requests.Session() as bo:
        assert sign_in(bo, centre.url, "Bo.Berg", "bo-directory-pw").status_code == 303  # any case, like the hub
        assert branches_seen(bo, centre.url) == ["north", "south"]  # vuoro-admins is listed first: every branch
    with requests.Session() as kommune:  # the centre's own accounts work beside the directory
        assert sign_in(kommune, centre.url, "kommune", "kommune-kodeord-1").status_code == 303
        assert branches_seen(kommune, centre.url) == ["north", "south"]


def test_the_directory_refusals_are_said_plainly(centre: Any) -> None:
    with requests.Session() as session:
        carl = sign_in(session, centre.url, "carl", "carl-directory-pw")
        assert carl.status_code == 403 and said(carl) == NO_GROUP
        dina = sign_in(session, centre.url, "dina", "dina-directory-pw")  # disabled in the directory
        assert dina.status_code == 401 and said(dina) == WRONG
        wrong = sign_in(session, centre.url, "anna", "not-her-password")
        assert wrong.status_code == 401 and said(wrong) == WRONG
        assert session.get(f"{centre.url}/api/v1/branches", timeout=30).status_code == 401
        danish = sign_in(session, centre.url, "carl", "carl-directory-pw", lang="da")
        assert said(danish) == "Du er ikke i en personalegruppe. Bed jeres IT-afdeling om adgang til køsystemet."


def test_with_the_directory_down_a_centre_account_still_signs_in(centre: Any, directory: Slapd) -> None:
    directory.stop()  # the town hall's directory is down
    with requests.Session() as anna:
        refused = sign_in(anna, centre.url, "anna", "anna-directory-pw")
        assert refused.status_code == 503 and said(refused) == DOWN
        assert anna.get(f"{centre.url}/api/v1/branches", timeout=30).status_code == 401
    with requests.Session() as kommune:
        assert sign_in(kommune, centre.url, "kommune", "kommune-kodeord-1").status_code == 303
        assert branches_seen(kommune, centre.url) == ["north", "south"]
    directory.start()  # back: the directory user gets in again, no restart of the centre
    with requests.Session() as anna:
        assert sign_in(anna, centre.url, "anna", "anna-directory-pw").status_code == 303
        assert branches_seen(anna, centre.url) == ["north"]


# -- OpenID Connect at the centre ([staff.oidc]), against toolkit/oidc_provider.py -----------------------------

CLIENT_ID, CLIENT_SECRET = "vuoro-centre", "a-client-secret-from-the-provider"
OIDC_ACCOUNTS = [OidcAccount("anna@kommune.test", "anna-provider-pw", ("all-staff", "north-staff")),
                 OidcAccount("bo@kommune.test", "bo-provider-pw", ("vuoro-admins",)),
                 OidcAccount("carl@kommune.test", "carl-provider-pw", ("library-all",))]


def oidc_toml(issuer: str) -> str:
    return (f'\n[staff.oidc]\nissuer = "{issuer}"\nclient_id = "{CLIENT_ID}"\nclient_secret = "{CLIENT_SECRET}"\n'
            f'\n[staff.oidc.groups]\n"vuoro-admins" = {{role = "admin", branches = "all"}}\n'
            f'"north-staff" = {{role = "staff", branches = ["north"]}}\n')


@pytest.fixture()
def provider() -> Any:
    running = Provider(CLIENT_ID, CLIENT_SECRET, OIDC_ACCOUNTS).start()
    yield running
    running.stop()


@pytest.fixture()
def centre_with_provider(tmp_path: Path, make_central: Any, provider: Provider) -> Any:
    port = free_port()
    sites = {bid: branch_site(tmp_path, bid, name, port) for bid, name in BRANCHES.items()}
    return make_central(sites, port=port, extra=oidc_toml(provider.issuer)).start()


def through_provider(session: requests.Session, centre: Any, provider: Provider, user: str, password: str,
                     lang: str = "en", stop: Provider | None = None) -> requests.Response:
    """The browser's way through, by hand: start at the centre, log in at the provider (then ``stop`` it), come
    back."""
    start = session.get(f"{centre.url}/login/oidc?lang={lang}", allow_redirects=False, timeout=30)
    assert start.status_code == 303, start.text
    assert start.headers["location"].startswith(provider.issuer + "/authorize?")
    params = {k: v[0] for k, v in parse_qs(urlsplit(start.headers["location"]).query).items()}
    assert params["code_challenge_method"] == "S256" and params["redirect_uri"] == centre.url + "/login/oidc/callback"
    login = requests.post(provider.issuer + "/authorize", data={**params, "username": user, "password": password},
                          allow_redirects=False, timeout=30)
    assert login.status_code == 302, login.text
    if stop is not None:
        stop.stop()
    return session.get(login.headers["location"], allow_redirects=False, timeout=30)


def test_oidc_users_sign_in_and_see_the_branches_their_group_allows(centre_with_provider: Any,
                                                                    provider: Provider) -> None:
    with requests.Session() as anna:
        back = through_provider(anna, centre_with_provider, provider, "anna@kommune.test", "anna-provider-pw")
        assert back.status_code == 200 and 'content="0;url=/?lang=en"' in back.text  # a same-site step onwards
        assert branches_seen(anna, centre_with_provider.url) == ["north"]
        assert "Signed in as anna@kommune.test" in anna.get(f"{centre_with_provider.url}/?lang=en", timeout=30).text
    with requests.Session() as bo:
        through_provider(bo, centre_with_provider, provider, "bo@kommune.test", "bo-provider-pw")
        assert branches_seen(bo, centre_with_provider.url) == ["north", "south"]


def test_oidc_refusals_are_said_plainly(centre_with_provider: Any, provider: Provider) -> None:
    with requests.Session() as session:
        carl = through_provider(session, centre_with_provider, provider, "carl@kommune.test", "carl-provider-pw")
        assert carl.status_code == 403 and said(carl) == NO_GROUP
        provider.tamper = "audience"  # a token for another app
        wrong = through_provider(session, centre_with_provider, provider, "anna@kommune.test", "anna-provider-pw",
                                 lang="da")
        assert wrong.status_code == 401 and said(wrong).startswith("Kommunens login sendte et svar")
        provider.tamper = ""
        # A callback this browser did not start: in the centre's first language (no sign-in, no language known).
        replay = session.get(f"{centre_with_provider.url}/login/oidc/callback?state=x&code=y", timeout=30)
        assert replay.status_code == 401 and said(replay) == "Login tog for lang tid og er udløbet. Prøv igen."
        assert session.get(f"{centre_with_provider.url}/api/v1/branches", timeout=30).status_code == 401
        form = session.get(f"{centre_with_provider.url}/login?lang=en", timeout=30).text
        assert '<a class="sso" href="/login/oidc?lang=en">Log in with the municipality&#x27;s login</a>' in form
    requests.put(f"{centre_with_provider.url}/api/v1/staff/kommune", headers=ADMIN, timeout=30,
                 json={"role": "admin", "password": "kommune-kodeord-1"}).raise_for_status()
    with requests.Session() as session:  # the provider goes down between its login form and the code exchange
        back = through_provider(session, centre_with_provider, provider, "anna@kommune.test", "anna-provider-pw",
                                stop=provider)
        assert back.status_code == 503 and said(back) == DOWN
        assert sign_in(session, centre_with_provider.url, "kommune", "kommune-kodeord-1").status_code == 303
        assert branches_seen(session, centre_with_provider.url) == ["north", "south"]
