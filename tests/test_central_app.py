"""The centre's config and HTTP answers: every mistake named by its key path; the ingest refuses plainly.

The app runs in this process on a real PostgreSQL database (``postgres_db``) through its own pool.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from psycopg_pool import ConnectionPool

from central.app import create_app
from central.config import ConfigError, load_centre
from central.ingest import register_branches
from central.schema import migrate
from tests.conftest import TEST_SITE
from toolkit.central_process import ADMIN_TOKEN, write_centre_config

TOKEN = "sonderbro-uplink-token-0123"


def test_every_mistake_in_the_centres_config_is_named_by_its_key_path(tmp_path: Path) -> None:
    path = tmp_path / "centre.toml"
    path.write_text(f"""
[centre]
listen = "nowhere"
database = "mysql://x"
languages = ["de"]
colour = "red"

[branches.sonderbro]
token = "short"
site = "{TEST_SITE}"

[branches.other]
token = "{TOKEN}"
site = "{TEST_SITE}"

[branches.missing]
token = "another-token-0123456789"
site = "nowhere.toml"
""", encoding="utf-8")
    with pytest.raises(ConfigError) as error:
        load_centre(path)
    found = error.value.problems
    for start in ("centre.name: expected a non-empty string", "centre.listen: expected host:port",
                  "centre.database: expected a postgresql:// connection URL", "centre.languages: expected",
                  "centre.colour: unknown key", "centre.admin_token: expected a secret",
                  "branches.sonderbro.token: expected the branch's secret",
                  "branches.other.site: expected the site file of 'other', got one with site.id 'sonderbro'",
                  "branches.missing.site (nowhere.toml): cannot read the file"):
        assert any(p.startswith(start) for p in found), (start, found)


def test_the_sample_centre_is_valid() -> None:
    config = load_centre(Path(__file__).resolve().parent.parent / "central" / "sample-centre.toml")
    assert list(config.branches) == ["sonderbro"]
    assert config.branches["sonderbro"].site.services["kvik"].letter == "K"


def test_vuoro_central_check_says_ok_for_a_good_config(tmp_path: Path) -> None:
    path = write_centre_config(tmp_path / "centre.toml", "postgresql://vuoro@127.0.0.1:1/x",
                               {"sonderbro": (TOKEN, TEST_SITE)})
    done = subprocess.run([sys.executable, "-m", "vuoro.cli", "central", "--config", str(path), "--check"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "ok (1 branches)" in done.stdout


@pytest.fixture()
def client(tmp_path: Path, postgres_db: str):
    migrate(postgres_db)
    config = load_centre(write_centre_config(tmp_path / "centre.toml", postgres_db, {"sonderbro": (TOKEN, TEST_SITE)}))
    with ConnectionPool(postgres_db, min_size=1, max_size=2) as pool:
        with pool.connection() as db:
            register_branches(db, {"sonderbro": "Sønderbro"})
        yield TestClient(create_app(config, pool))


def ingest(client: TestClient, body: object, token: str = TOKEN):
    return client.post("/api/v1/ingest", json=body, headers={"Authorization": f"Bearer {token}"})


def test_the_ingest_refuses_plainly_and_stores_nothing(client: TestClient) -> None:
    empty = {"branch": "sonderbro", "stream": "s1", "after": 0, "backlog": 0, "rows": []}
    assert ingest(client, empty, token="not-a-branch-token").status_code == 401
    assert ingest(client, {**empty, "branch": "other"}).status_code == 403
    gap = ingest(client, {**empty, "after": 5})
    assert gap.status_code == 409 and gap.json()["shipped"] == 0 and "lost rows" in gap.json()["message"]
    assert ingest(client, {**empty, "rows": [{"seq": 1}]}).status_code == 422
    bad = client.post("/api/v1/ingest", content=b"{not json", headers={"Authorization": f"Bearer {TOKEN}"})
    assert bad.status_code == 422
    answer = ingest(client, empty)
    # a heartbeat; every answer says which config version and staff revision the branch should have
    assert answer.status_code == 200 and answer.json() == {"shipped": 0, "applied": 0, "config": None, "staff": 0}
    overview = client.get("/api/v1/branches", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}).json()
    (branch,) = overview["branches"]
    assert branch["branch"] == "sonderbro" and branch["seconds_since_seen"] is not None
    assert branch["tickets_today"] == 0


def test_reading_needs_the_admin_token_or_a_sign_in_and_the_page_sends_a_person_to_sign_in(
        client: TestClient) -> None:
    assert client.get("/api/v1/branches").status_code == 401
    assert client.get("/api/v1/branches", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 401
    page = client.get("/?lang=sv", follow_redirects=False)
    assert page.status_code == 303 and page.headers["location"] == "/login?lang=sv"
    assert "Logga in" in client.get("/?lang=sv").text
    ok = client.get("/?lang=sv", auth=("anyone", ADMIN_TOKEN))
    assert ok.status_code == 200 and "Filialer" in ok.text
    # one script, from the centre itself (the refresh a person can turn off), none inline (CSP: script-src 'self')
    assert ok.text.count("<script") == 1 and '<script src="/static/centre.js" defer></script>' in ok.text
    assert "script-src 'self'" in ok.headers["content-security-policy"]
    assert client.get("/api/v1/branches/nowhere/summary",
                      headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}).status_code == 404
    assert client.get("/api/v1/health").json()["database"] == "ok"


def test_the_overview_names_devices_in_trouble_by_their_last_status(client: TestClient) -> None:
    def status(seq: int, device: str, at: str, online: bool, printer: str | None) -> dict:
        return {"seq": seq, "kind": "device_status", "key": f"o/{seq}/{at}", "at": at,
                "body": {"device": device, "kind": "kiosk", "at": at, "online": online, "printer": printer,
                         "detail": None}}

    rows = [status(1, "kiosk1", "2026-11-30T09:00:00+00:00", True, "ok"),
            status(2, "kiosk2", "2026-11-30T09:00:00+00:00", True, "ok"),
            status(3, "kiosk1", "2026-11-30T09:05:00+00:00", True, "paper_out"),
            status(4, "kiosk2", "2026-11-30T09:06:00+00:00", False, None),
            status(5, "kiosk2", "2026-11-30T09:07:00+00:00", True, "ok")]
    answer = ingest(client, {"branch": "sonderbro", "stream": "s1", "after": 0, "backlog": 5, "rows": rows})
    assert answer.json() | {"config": None, "staff": 0} == {"shipped": 5, "applied": 5, "config": None, "staff": 0}
    (branch,) = client.get("/api/v1/branches", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}).json()["branches"]
    assert [(d["device"], d["online"], d["printer"]) for d in branch["devices"]] == [
        ("kiosk1", True, "paper_out"), ("kiosk2", True, "ok")]
    page = client.get("/?lang=en", auth=("x", ADMIN_TOKEN)).text
    assert "Devices in trouble" in page and "kiosk1: printer: out of paper" in page and "kiosk2:" not in page
    assert "kiosk1: skrivare: slut på papper" in client.get("/?lang=sv", auth=("x", ADMIN_TOKEN)).text


def test_publishing_a_config_needs_the_admin_token_and_text_a_branch_could_take(client: TestClient) -> None:
    text = TEST_SITE.read_text(encoding="utf-8")
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    assert client.post("/api/v1/branches/sonderbro/config", content=text.encode(),
                       headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 401  # a branch's token
    assert client.post("/api/v1/branches/nowhere/config", content=text.encode(), headers=admin).status_code == 404
    not_toml = client.post("/api/v1/branches/sonderbro/config", content=b"[site\nid = 1", headers=admin)
    assert not_toml.status_code == 422 and not_toml.json()["problems"][0].startswith("not valid TOML")
    other = client.post("/api/v1/branches/sonderbro/config", headers=admin,
                        content=text.replace('id = "sonderbro"', 'id = "elsewhere"', 1).encode())
    assert other.status_code == 422 and other.json()["problems"] == [
        "site.id: expected 'sonderbro' (this branch's id), got 'elsewhere'"]
    first = client.post("/api/v1/branches/sonderbro/config", content=text.encode(), headers=admin)
    assert first.status_code == 201 and first.json()["version"] == 1 and first.json()["advice"] == []
    assert ingest(client, {"branch": "sonderbro", "stream": "s1", "after": 0, "backlog": 0, "rows": []}).json()[
        "config"] == {"version": 1, "checksum": first.json()["checksum"]}
    fetched = client.get("/api/v1/branch/config", headers={"Authorization": f"Bearer {TOKEN}"}).json()
    assert fetched["text"] == text and fetched["version"] == 1
    assert client.get("/api/v1/branch/config").status_code == 401
    report = client.post("/api/v1/branch/config/report", headers={"Authorization": f"Bearer {TOKEN}"},
                         json={"running": {"version": "one"}})
    assert report.status_code == 422


def sign_in(client: TestClient, user: str, password: str):  # noqa: ANN201 - a TestClient response
    form = client.get("/login?lang=en")
    csrf = re.search(r'name="csrf" value="([^"]+)"', form.text)
    assert csrf and form.status_code == 200
    return client.post("/login?lang=en", data={"username": user, "password": password, "csrf": csrf.group(1)},
                       follow_redirects=False)


def test_staff_sign_in_to_the_centre_sees_only_the_branches_of_their_account(client: TestClient) -> None:
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    refused = client.put("/api/v1/staff/anna", json={"role": "boss", "password": "short", "branches": ["mars"]},
                         headers=admin)
    assert refused.status_code == 422
    for start in ("role: expected", "password_hash: expected", "branches[0]: no branch 'mars'"):
        assert start in refused.json()["message"]
    assert client.put("/api/v1/staff/anna", json={"role": "staff", "password": "annas-kodeord"}).status_code == 401
    assert client.put("/api/v1/staff/anna", json={"role": "staff", "password": "annas-kodeord",
                                                   "branches": ["sonderbro"]}, headers=admin).status_code == 200
    listed = client.get("/api/v1/staff", headers=admin).json()["accounts"]
    assert listed[0]["name"] == "anna" and "password_hash" not in listed[0]
    branch_copy = client.get("/api/v1/branch/staff", headers={"Authorization": f"Bearer {TOKEN}"}).json()
    assert [a["name"] for a in branch_copy["accounts"]] == ["anna"]
    assert branch_copy["accounts"][0]["password_hash"].startswith("$argon2id$")

    assert sign_in(client, "anna", "wrong-password").status_code == 401
    assert sign_in(client, "nobody", "annas-kodeord").status_code == 401
    done = sign_in(client, "anna", "annas-kodeord")
    assert done.status_code == 303 and "vuoro_centre" in done.cookies
    page = client.get("/?lang=en")
    assert page.status_code == 200 and "Signed in as anna" in page.text and "Sønderbro" in page.text
    assert [b["branch"] for b in client.get("/api/v1/branches").json()["branches"]] == ["sonderbro"]
    assert client.get("/api/v1/summary").status_code == 401  # all branches as one: not for one branch's staff
    assert client.post("/api/v1/branches/sonderbro/config", content=b"x").status_code == 401  # the token only
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert csrf
    client.post("/logout", data={"csrf": csrf.group(1)})
    assert client.get("/api/v1/branches").status_code == 401


def test_a_pooled_connection_the_server_ended_a_moment_ago_is_replaced_before_a_request_gets_it(
        postgres_db: str) -> None:
    """PostgreSQL restarted (here: the connection's backend ended) within IDLE_CHECK_S of the connection's last
    use: its goodbye is waiting on the socket, so the pool's check finds it and a request gets a working one."""
    import psycopg

    from central.main import check_if_idle, mark_returned, server_has_spoken
    from toolkit.polling import wait_until

    with ConnectionPool(postgres_db, min_size=1, max_size=1, check=check_if_idle, reset=mark_returned,
                        timeout=5.0) as pool:
        with pool.connection() as idle:  # back in the pool after this block: the pool's one connection
            ended = idle.info.backend_pid
            assert not server_has_spoken(idle)
        with psycopg.connect(postgres_db, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (ended,))
        wait_until(lambda: server_has_spoken(idle), "the ended backend's goodbye on the socket", 10)
        with pool.connection() as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
            assert conn.info.backend_pid != ended
