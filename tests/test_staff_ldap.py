"""Staff sign in with the municipality's directory: a real OpenLDAP (Debian's slapd) on a free port.

The hub binds as the staff member, reads their groups, and gives the role and desks of
the first listed group they are in; a right password without such a group, a disabled
account and a wrong password are refused in words; when the directory is down, whoever
signed in through it before still gets in (the offline copy), nobody else does, and
the local accounts keep working.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from server.config import ConfigError
from server.staff.accounts import parse_staff
from server.staff.directory import Grant, OfflineLogins, ask_directory
from server.staff.signin import PasswordSignIn
from toolkit.broker import Broker
from toolkit.hub_in_process import DEMO_PASSWORD, DEMO_STAFF_BLOCK, DEMO_USER, RunningHub, running_hub, site_config
from toolkit.slapd import SUFFIX, Person, Slapd, group_dn

PEOPLE = [
    Person("anna", "anna-directory-pw", ("vuoro-staff",)),  # staff at the KVIK desks only
    Person("bo.berg", "bo-directory-pw", ("vuoro-admins", "vuoro-staff")),  # admin: the first listed group wins
    Person("carl", "carl-directory-pw", ("library-all",)),  # in the directory, not in a staff group
    Person("dina", "dina-directory-pw", ("vuoro-staff",), disabled=True),
    Person("emil", "emil-directory-pw", ("vuoro-staff",)),  # never signs in before the directory goes down
]


def ldap_block(url: str) -> dict[str, Any]:
    return {"url": url, "bind": f"uid={{user}},ou=people,{SUFFIX}", "user_base": f"ou=people,{SUFFIX}",
            "user_filter": "(&(uid={user})(!(employeeType=disabled)))", "group_base": f"ou=groups,{SUFFIX}",
            "group_filter": "(member={dn})", "timeout_s": 2,
            "groups": {group_dn("vuoro-admins"): "admin",
                       group_dn("vuoro-staff"): {"role": "staff", "desks": ["kvik1", "kvik2"]}}}


@pytest.fixture(scope="module")
def directory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Slapd]:
    slapd = Slapd(tmp_path_factory.mktemp("slapd"), PEOPLE).build().start()
    yield slapd
    slapd.stop()


@pytest.fixture()
def hub_with_directory(live_broker: Broker, tmp_path: Path, directory: Slapd) -> Iterator[RunningHub]:
    staff = {**DEMO_STAFF_BLOCK, "ldap": ldap_block(directory.url)}
    with running_hub(site_config(tmp_path, live_broker.url, staff=staff)) as running:
        yield running


def log_in(client: httpx.Client, user: str, password: str, lang: str = "en") -> httpx.Response:
    page = client.get(f"/staff/login?lang={lang}")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert csrf
    return client.post("/staff/login", data={"username": user, "password": password, "csrf": csrf.group(1)})


def error_of(page: httpx.Response) -> str:
    found = re.search(r'<p class="error" role="alert">([^<]*)</p>', page.text)
    return found.group(1).replace("&#x27;", "'") if found else ""


def test_ldap_config_is_validated_with_key_paths(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_staff({"ldap": {"url": "http://dc.kommune.dk", "bind": "cn=reader,dc=kommune,dc=dk",
                              "user_filter": "(uid=anna)", "offline_days": -1, "colour": "red",
                              "ca_file": str(tmp_path / "missing.pem"),
                              "groups": {"cn=staff": "boss", "cn=desks": {"role": "staff", "desks": "kvik1"}}}})
    text = "\n".join(caught.value.problems)
    for expected in ("staff.ldap.url: expected ldap://", "staff.ldap.bind: expected {user}",
                     "staff.ldap.user_base: expected a text", "staff.ldap.user_filter: expected {user}",
                     "staff.ldap.offline_days", "staff.ldap.colour: unknown key", "staff.ldap.ca_file",
                     'staff.ldap.groups."cn=staff".role', 'staff.ldap.groups."cn=desks".desks'):
        assert expected in text, expected
    settings = parse_staff({"ldap": ldap_block("ldap://127.0.0.1:389")})
    assert settings.ldap and list(settings.ldap.groups.values()) == [Grant("admin"), Grant("staff", ("kvik1", "kvik2"))]


def test_the_directory_answers_what_it_knows(directory: Slapd) -> None:
    settings = parse_staff({"ldap": ldap_block(directory.url)}).ldap
    assert settings is not None
    assert ask_directory(settings, "anna", "anna-directory-pw").grant == Grant("staff", ("kvik1", "kvik2"))
    assert ask_directory(settings, "bo.berg", "bo-directory-pw").grant == Grant("admin")
    assert ask_directory(settings, "anna", "not-her-password").refusal == "wrong"
    assert ask_directory(settings, "anna", "").refusal == "wrong"  # not an anonymous bind that "succeeds"
    assert ask_directory(settings, "nobody", "anna-directory-pw").refusal == "wrong"
    assert ask_directory(settings, "carl", "carl-directory-pw").refusal == "no_group"
    assert ask_directory(settings, "dina", "dina-directory-pw").refusal == "disabled"
    assert ask_directory(settings, "anna)(uid=*", "x").refusal == "wrong"  # no filter injection


def test_staff_sign_in_through_the_page_with_their_role_and_desks(hub_with_directory: RunningHub) -> None:
    with httpx.Client(base_url=hub_with_directory.url) as client:
        answer = log_in(client, "anna", "anna-directory-pw")
        assert answer.status_code == 303 and answer.headers["location"] == "/staff/"
        assert client.get("/staff/api/me").json() | {"csrf": ""} == {"user": "anna", "role": "staff", "csrf": ""}
        csrf = client.get("/staff/api/me").json()["csrf"]
        desk = client.get("/staff/")
        assert '"id": "kvik1"' in desk.text and '"id": "bib1"' not in desk.text  # only her desks to choose from
        assert client.post("/api/v1/counters/kvik1/resume", headers={"X-CSRF-Token": csrf}).status_code == 200
        refused = client.post("/api/v1/counters/bib1/resume", headers={"X-CSRF-Token": csrf})
        assert refused.status_code == 403 and "bib1" in refused.json()["error"]["message"]
    with httpx.Client(base_url=hub_with_directory.url) as client:
        answer = log_in(client, "Bo.Berg", "bo-directory-pw")  # names are not case-sensitive
        assert answer.status_code == 303
        # A known device for a dotted name too (someone else's guessing never locks him out at his desk).
        assert any(c.startswith("vuoro_device_") for c in answer.cookies)
        assert client.get("/staff/api/me").json()["role"] == "admin"
        assert '"id": "bib1"' in client.get("/staff/").text
    with httpx.Client(base_url=hub_with_directory.url) as client:  # the local accounts still work
        assert log_in(client, DEMO_USER, DEMO_PASSWORD).status_code == 303


def test_refusals_are_said_plainly(hub_with_directory: RunningHub) -> None:
    with httpx.Client(base_url=hub_with_directory.url) as client:
        wrong = log_in(client, "anna", "not-her-password")
        assert wrong.status_code == 401 and error_of(wrong) == "Wrong user name or password."
        no_group = log_in(client, "carl", "carl-directory-pw")
        assert no_group.status_code == 403
        assert error_of(no_group) == ("You are not in a staff group. Ask your IT department for access to the "
                                      "queue system.")
        disabled = log_in(client, "dina", "dina-directory-pw")
        assert disabled.status_code == 401 and error_of(disabled) == "Wrong user name or password."
        assert client.get("/staff/api/me").status_code == 401
    with httpx.Client(base_url=hub_with_directory.url) as client:
        danish = log_in(client, "carl", "carl-directory-pw", lang="da")
        assert error_of(danish) == "Du er ikke i en personalegruppe. Bed jeres IT-afdeling om adgang til køsystemet."


def test_when_the_directory_is_down_who_signed_in_before_still_gets_in(live_broker: Broker, tmp_path: Path) -> None:
    slapd = Slapd(tmp_path / "slapd", PEOPLE).build().start()
    staff = {**DEMO_STAFF_BLOCK, "ldap": ldap_block(slapd.url)}
    try:
        with running_hub(site_config(tmp_path, live_broker.url, staff=staff)) as running:
            with httpx.Client(base_url=running.url) as client:
                assert log_in(client, "anna", "anna-directory-pw").status_code == 303
            slapd.stop()  # the branch is cut off from the town hall
            with httpx.Client(base_url=running.url) as client:
                assert log_in(client, "anna", "anna-directory-pw").status_code == 303
                assert client.get("/staff/api/me").json()["role"] == "staff"
                assert '"id": "bib1"' not in client.get("/staff/").text  # her desks came along
            with httpx.Client(base_url=running.url) as client:
                assert log_in(client, "anna", "a-wrong-guess").status_code == 401
                never = log_in(client, "emil", "emil-directory-pw")
                assert never.status_code == 503
                assert error_of(never) == ("The municipality's login cannot be reached right now. Try again in a "
                                           "moment, or use a local account.")
                assert log_in(client, DEMO_USER, DEMO_PASSWORD).status_code == 303  # break-glass local account
        with running_hub(site_config(tmp_path, live_broker.url, staff=staff)) as restarted, \
                httpx.Client(base_url=restarted.url) as client:  # the hub restarted while the directory is down
            assert log_in(client, "anna", "anna-directory-pw").status_code == 303
        offline = OfflineLogins(tmp_path / OfflineLogins.FILE, 14)
        assert offline.path.stat().st_mode & 0o077 == 0  # the hashes are for the hub's user alone
        assert "anna-directory-pw" not in offline.path.read_text()
        assert offline.check("anna", "anna-directory-pw") is not None
    finally:
        slapd.stop()


def test_the_offline_copy_follows_what_the_directory_says_last(directory: Slapd, tmp_path: Path) -> None:
    settings = parse_staff({"ldap": ldap_block(directory.url)})
    signin = PasswordSignIn(settings, tmp_path)
    assert signin.check("anna", "anna-directory-pw").user is not None
    assert signin.offline is not None and signin.offline.check("anna", "anna-directory-pw")
    assert signin.check("anna", "someone-elses-guess").refusal == "wrong"
    assert signin.offline.check("anna", "anna-directory-pw"), "a wrong guess must not forget her copy"
    # Carl's group was taken away (here: he never had one): a copy of his is forgotten, whatever it said.
    signin.offline.remember("carl", "carl-directory-pw", Grant("staff"))
    assert signin.check("carl", "carl-directory-pw").refusal == "no_group"
    assert signin.offline.check("carl", "carl-directory-pw") is None
    # A copy older than offline_days is not used.
    old = OfflineLogins(tmp_path / "old.json", 14, clock=lambda: 0.0)
    old.remember("anna", "anna-directory-pw", Grant("staff"))
    assert OfflineLogins(tmp_path / "old.json", 14).check("anna", "anna-directory-pw") is None
    assert OfflineLogins(tmp_path / "old.json", 14, clock=lambda: 13 * 86400.0).check("anna", "anna-directory-pw")


def test_a_broken_directory_section_stops_the_hub_before_it_starts(tmp_path: Path) -> None:
    """`vuoro hub --check` reports [staff.ldap] and [staff.oidc] mistakes with their key paths, like the rest."""
    import subprocess
    import sys

    from server.config import SAMPLE_SITE

    broken = tmp_path / "site.toml"
    broken.write_text(SAMPLE_SITE.read_text(encoding="utf-8") + (
        '\n[staff.ldap]\nurl = "ldap://dc1.kommune.local"\nbind = "cn=reader"\nuser_base = "dc=kommune"\n'
        '[staff.ldap.groups]\n"cn=staff" = "janitor"\n"cn=desk" = { role = "staff", desks = ["kvik9"] }\n'
        '[staff.oidc]\nissuer = "https://login.kommune.dk"\nclient_id = "vuoro"\n'
        '[staff.oidc.groups]\n"staff" = { role = "staff", desks = "kvik1" }\n'))
    run = subprocess.run([sys.executable, "-m", "server.main", "--config", str(broken), "--check"],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 2 and "refusing to start" in run.stderr and "Traceback" not in run.stderr
    for expected in ("staff.ldap.bind: expected {user}", 'staff.ldap.groups."cn=staff".role',
                     'staff.oidc.groups."staff".desks'):
        assert expected in run.stderr, run.stderr
    # With those fixed, a desk that is not a counter of the site is named too.
    broken.write_text(broken.read_text().replace('"janitor"', '"staff"').replace('desks = "kvik1"', 'desks = []')
                      .replace('bind = "cn=reader"', 'bind = "{user}@kommune.local"'))
    run = subprocess.run([sys.executable, "-m", "server.main", "--config", str(broken), "--check"],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 2
    for expected in ('staff.ldap.groups."cn=desk".desks: no counter \'kvik9\'',):
        assert expected in run.stderr, run.stderr


def test_ldaps_and_starttls_trust_only_the_configured_ca(tmp_path: Path) -> None:
    """A real directory speaks TLS: ldaps:// and StartTLS work with the municipality's CA, and a server whose
    certificate does not chain to it, or names another host, is never sent the password (treated as down)."""
    from certs import TestCA

    from server.staff.directory import DirectoryDown

    ca = TestCA.create(tmp_path / "ca")
    stranger = TestCA.create(tmp_path / "stranger", "Someone else's CA")
    issued = ca.issue("ldap")
    slapd = Slapd(tmp_path / "slapd", PEOPLE, tls=(issued.cert, issued.key)).build().start()
    try:
        for url, start_tls in ((slapd.ldaps_url, False), (slapd.url, True)):
            settings = parse_staff({"ldap": {**ldap_block(url), "start_tls": start_tls, "ca_file": str(ca.cert)}}).ldap
            assert settings is not None
            assert ask_directory(settings, "anna", "anna-directory-pw").grant == Grant("staff", ("kvik1", "kvik2"))
            untrusted = parse_staff({"ldap": {**ldap_block(url), "start_tls": start_tls,
                                              "ca_file": str(stranger.cert)}}).ldap
            assert untrusted is not None
            with pytest.raises(DirectoryDown, match="certificate verify failed"):
                ask_directory(untrusted, "anna", "anna-directory-pw")
        slapd.stop()
        wrong_name = ca.issue("elsewhere", dns=("dc9.kommune.test",), ips=("10.9.9.9",))
        slapd = Slapd(tmp_path / "slapd2", PEOPLE, tls=(wrong_name.cert, wrong_name.key)).build().start()
        settings = parse_staff({"ldap": {**ldap_block(slapd.ldaps_url), "ca_file": str(ca.cert)}}).ldap
        assert settings is not None
        with pytest.raises(DirectoryDown, match="(?i)hostname|doesn't match|not valid for"):
            ask_directory(settings, "anna", "anna-directory-pw")
    finally:
        slapd.stop()


def test_vuoro_doctor_says_whether_the_directory_and_provider_can_be_reached(tmp_path: Path, capsys: Any) -> None:
    """`vuoro doctor` reaches [staff.ldap] (TLS and its certificate included) and [staff.oidc] as the hub would,
    without sending any password, and says in words what to do when it cannot."""
    import tomllib

    from certs import TestCA

    from server.config import SAMPLE_SITE
    from toolkit import doctor
    from toolkit.oidc_provider import Provider

    ca = TestCA.create(tmp_path / "ca")
    issued = ca.issue("ldap")
    slapd = Slapd(tmp_path / "slapd", PEOPLE, tls=(issued.cert, issued.key)).build().start()
    provider = Provider("vuoro-hub", "secret", []).start()
    data = tomllib.loads(SAMPLE_SITE.read_text(encoding="utf-8"))

    def run(ldap: dict[str, Any], issuer: str) -> str:
        staff = data["staff"] | {"ldap": ldap, "oidc": {"issuer": issuer, "client_id": "vuoro-hub",
                                                         "groups": {"vuoro-staff": "staff"}}}
        site = tmp_path / "site.toml"
        site.write_text(toml_of(data | {"staff": staff}), encoding="utf-8")
        doctor.main(["--config", str(site), "--hub", "http://127.0.0.1:9", "--broker", "mqtt://127.0.0.1:9",
                     "--timeout", "1"])
        return capsys.readouterr().out

    try:
        good = run({**ldap_block(slapd.ldaps_url), "ca_file": str(ca.cert)}, provider.issuer)
        assert f"[ok  ] directory: {slapd.ldaps_url} answers over TLS with a trusted certificate" in good
        assert f"[ok  ] OpenID provider: {provider.issuer}: discovery and signing keys read" in good
        assert provider.requests[-2:] == ["/.well-known/openid-configuration", "/jwks"]
        untrusted = run(ldap_block(slapd.ldaps_url), provider.issuer + "/wrong")
        assert f"[FAIL] directory: {slapd.ldaps_url} cannot be reached" in untrusted
        assert "Set [staff.ldap] ca_file to the municipality's CA certificate" in untrusted
        assert "local account (local accounts: demo" in untrusted
        assert f"[FAIL] OpenID provider: {provider.issuer}/wrong cannot be used" in untrusted
        slapd.stop()
        down = run(ldap_block(slapd.url), provider.issuer)
        assert f"[FAIL] directory: {slapd.url} cannot be reached" in down and "14 days still get in" in down
    finally:
        slapd.stop()
        provider.stop()


def toml_of(data: dict[str, Any]) -> str:
    """Just enough TOML writing for the sample site with the staff tables (tables, strings, numbers, lists)."""
    import json

    def value(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, str | int | float):
            return json.dumps(v, ensure_ascii=False)
        if isinstance(v, list):
            return "[" + ", ".join(value(x) for x in v) + "]"
        if isinstance(v, dict):
            return "{" + ", ".join(f"{json.dumps(k)} = {value(x)}" for k, x in v.items()) + "}"
        raise TypeError(v)

    return "".join(f"{json.dumps(key)} = {value(table)}\n" for key, table in data.items())  # inline tables
