"""The centre deployed: its units, its PostgreSQL roles and TLS, and a backup restored into a new cluster.

- ``deploy/systemd/vuoro-central*.{service,timer}`` pass ``systemd-analyze verify`` and say what
  docs/central.md promises; the real centre process sends READY=1 and WATCHDOG=1 to a notify socket;
- ``deploy/central/postgres-setup.sh`` run against a private cluster: the app role reads and writes rows
  but cannot change the schema, the owner migrates, every connection is TLS checked against our CA
  (``sslmode=verify-full``), a stranger's CA and plain TCP are refused;
- ``backup.sh`` then ``restore.sh`` into a fresh cluster after the first was wiped: the centre starts on
  it under the app role, the branch's next batch finds the gap (409), the branch ships its store again and
  the centre holds exactly the branch's rows once more.
"""

from __future__ import annotations

import shutil
import socket
import sqlite3
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import psycopg
import pytest
import requests

from central.schema import MIGRATIONS, MigrationRefused, migrate
from tests.certs import TestCA
from tests.test_central_e2e import KIOSK, STAFF, branch_site
from tests.test_deploy_units import parse_unit, systemd_analyze
from toolkit.broker import free_port
from toolkit.central_deploy import APP, DeployedCluster, deploy_cluster
from toolkit.central_process import CentralProcess
from toolkit.polling import wait_until

REPO = Path(__file__).resolve().parent.parent
SYSTEMD = REPO / "deploy" / "systemd"


def verify(tmp_path: Path, name: str, replace: dict[str, str]) -> None:
    text = (SYSTEMD / name).read_text()
    for old, new in replace.items():
        assert old in text
        text = text.replace(old, new)
    unit = tmp_path / name
    unit.write_text(text)
    result = subprocess.run([systemd_analyze(), "verify", str(unit)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and not result.stderr.strip() and not result.stdout.strip(), (
        f"systemd-analyze verify {name}:\n{result.stdout}{result.stderr}")


def test_the_centres_units_pass_systemd_analyze_verify(tmp_path: Path) -> None:
    vuoro = str(Path(sys.executable).parent / "vuoro")
    verify(tmp_path, "vuoro-central.service", {"/opt/vuoro/bin/vuoro": vuoro})
    verify(tmp_path, "vuoro-central-backup.service",
           {"/opt/vuoro/src/deploy/central/backup.sh": str(REPO / "deploy" / "central" / "backup.sh")})
    (tmp_path / "vuoro-central-backup.service").write_text("[Service]\nType=oneshot\nExecStart=/bin/true\n")
    verify(tmp_path, "vuoro-central-backup.timer", {})


def test_the_centres_unit_promises() -> None:
    unit = parse_unit(SYSTEMD / "vuoro-central.service")
    service = unit["Service"]
    assert service["ExecStart"] == ["/opt/vuoro/bin/vuoro central --config /etc/vuoro/centre.toml"]
    assert service["Type"] == ["notify"] and service["WatchdogSec"] == ["30s"]
    assert service["RestartPreventExitStatus"] == ["2"] and service["Restart"] == ["on-failure"]
    assert service["User"] == ["vuoro"] and service["ProtectSystem"] == ["strict"]
    assert service["CapabilityBoundingSet"] == [""] and service["NoNewPrivileges"] == ["yes"]
    assert "postgresql.service" in " ".join(unit["Unit"]["After"])
    timer = parse_unit(SYSTEMD / "vuoro-central-backup.timer")["Timer"]
    assert timer["Persistent"] == ["true"] and timer["OnCalendar"]


def test_the_centre_tells_systemd_it_is_ready_and_alive(tmp_path: Path, make_central: Any, tmp_path_factory: Any,
                                                       ) -> None:
    address = str(tmp_path_factory.mktemp("notify") / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(address)
    sock.settimeout(20)
    try:
        token, site = branch_site(tmp_path, "north", "Nordby", free_port())
        centre = make_central({"north": (token, site)}, env={"NOTIFY_SOCKET": address, "WATCHDOG_USEC": "1000000"})
        centre.start()
        messages = [sock.recv(4096).decode() for _ in range(3)]
    finally:
        sock.close()
    assert messages[0].startswith("READY=1\nSTATUS=centre Test Kommune: 1 branches")
    assert messages[1:] == ["WATCHDOG=1", "WATCHDOG=1"]  # every half second: WatchdogSec 1 s, fed from the loop


@pytest.fixture()
def ca(tmp_path: Path) -> TestCA:
    return TestCA.create(tmp_path / "ca")


@pytest.fixture()
def deployed(tmp_path: Path, ca: TestCA) -> Any:
    issued = ca.issue("db")
    made = deploy_cluster(issued.cert, issued.key, ca.cert)
    yield made
    made.cluster.close()


def test_the_app_role_writes_rows_but_not_the_schema_and_only_over_verified_tls(deployed: DeployedCluster,
                                                                               tmp_path: Path) -> None:
    from toolkit.central_process import write_centre_config

    with pytest.raises(MigrationRefused, match="migrate as the owner role"):
        migrate(deployed.url())  # the app role cannot make the schema
    config = write_centre_config(tmp_path / "centre.toml", deployed.url(),
                                 {"north": branch_site(tmp_path, "north", "Nordby", free_port())})

    def central(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "central.main", "--config", str(config), *args],
                              capture_output=True, text=True, timeout=60)

    refused = central()  # the centre itself, as its unit starts it: exit 2 (not restarted), and what to run
    assert refused.returncode == 2 and "vuoro central --config <centre.toml> --migrate" in refused.stderr
    migrated = central("--migrate", "--database", deployed.owner_url)
    assert migrated.returncode == 0 and f"schema version {len(MIGRATIONS)}" in migrated.stdout
    assert migrate(deployed.url()) == len(MIGRATIONS)  # ... and passes once it is current
    with psycopg.connect(deployed.url()) as db:
        assert db.pgconn.ssl_in_use
        db.execute("INSERT INTO branches (id, name) VALUES ('north', 'Nordby')")
        db.execute("UPDATE branches SET name = 'Nordby Bibliotek' WHERE id = 'north'")
        db.execute("DELETE FROM stats_dirty")
        for ddl in ("DROP TABLE tickets", "CREATE TABLE mine (x int)", "ALTER TABLE tickets ADD COLUMN x int",
                    "TRUNCATE tickets"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege), db.transaction():
                db.execute(ddl)
    stranger = TestCA.create(tmp_path / "stranger", "Someone else's CA")
    with pytest.raises(psycopg.OperationalError, match="certificate verify failed"):
        psycopg.connect(deployed.url(ca=stranger.cert), connect_timeout=5)
    with pytest.raises(psycopg.OperationalError, match="no encryption|reject"):
        psycopg.connect(deployed.url(sslmode="disable"), connect_timeout=5)
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(deployed.url(password="wrong-password-012345"), connect_timeout=5)


def branch_rows(store: Path) -> dict[str, set[Any]]:
    with sqlite3.connect(f"file:{store}?mode=ro", uri=True) as db:
        return {"tickets": set(db.execute("SELECT id, status FROM tickets")),
                "events": {f"{t}/{i}/{at}" for t, i, at in db.execute("SELECT ticket_id, id, at FROM ticket_log")}}


def central_rows(url: str) -> dict[str, set[Any]]:
    with psycopg.connect(url) as db:
        return {"tickets": set(db.execute("SELECT id, status FROM tickets WHERE branch = 'north'")),
                "events": {r[0] for r in db.execute("SELECT key FROM ticket_events WHERE branch = 'north'")}}


def test_a_backup_restored_into_a_new_cluster_carries_on_and_the_branch_fills_the_gap(
        tmp_path: Path, deployed: DeployedCluster, ca: TestCA, make_hub: Any, make_central: Any) -> None:
    assert migrate(deployed.owner_url) == len(MIGRATIONS)
    port = free_port()
    token, site = branch_site(tmp_path, "north", "Nordby Bibliotek", port)
    centre: CentralProcess = make_central({"north": (token, site)}, database=deployed.url(), port=port).start()
    hub = make_hub(tmp_path / "north", site=site).start()
    store = hub.data_dir / "hub.sqlite3"

    def issue() -> str:
        answer = requests.post(f"{hub.url}/api/v1/tickets", json={"service": "kvik", "language": "da"},
                               headers={**KIOSK, "Idempotency-Key": uuid.uuid4().hex}, timeout=10)
        assert answer.status_code == 201, answer.text
        return str(answer.json()["ticket"])

    def in_step(url: str) -> bool:
        return branch_rows(store) == central_rows(url)

    assert [issue() for _ in range(3)] == ["K001", "K002", "K003"]
    requests.post(f"{hub.url}/api/v1/counters/kvik1/next", headers=STAFF, timeout=10).raise_for_status()
    wait_until(lambda: in_step(deployed.url()), "the centre to hold the branch's rows")

    backup = deployed.run("backup.sh", env={"VUORO_BACKUP_DIR": str(tmp_path / "backups")})
    assert backup.returncode == 0, backup.stderr
    dumps = list((tmp_path / "backups").glob("vuoro-central-*.dump"))
    assert len(dumps) == 1 and not list((tmp_path / "backups").glob(".*partial"))

    after_backup = [issue(), issue()]  # shipped and acknowledged, then lost with the cluster
    wait_until(lambda: in_step(deployed.url()), "the tickets after the backup at the centre")
    centre.stop()
    deployed.cluster.kill()
    shutil.rmtree(deployed.cluster.data)  # the database host is gone

    issued = ca.issue("db2")
    fresh = deploy_cluster(issued.cert, issued.key, ca.cert)
    try:
        restored = fresh.run("restore.sh", str(dumps[0]))
        assert restored.returncode == 0, restored.stdout + restored.stderr
        again = fresh.run("restore.sh", str(dumps[0]))
        assert again.returncode == 2 and "already has" in again.stderr  # never over a database with data
        with psycopg.connect(fresh.url()) as db:  # the backup's state: the two later tickets are not there
            labels = {r[0] for r in db.execute("SELECT label FROM tickets")}
            assert labels == {"K001", "K002", "K003"}
            assert db.execute("SELECT tableowner FROM pg_tables WHERE tablename = 'tickets'").fetchone() == (
                "vuoro_central_owner",)
        centre = make_central({"north": (token, site)}, database=fresh.url(), port=port).start()  # as the app role
        assert issue() == "K006"
        # the branch's next batch says the centre has more than it has: 409, a new stream, the whole store again
        wait_until(lambda: in_step(fresh.url()), "every row of the branch at the restored centre", timeout=60)
        with psycopg.connect(fresh.url()) as db:
            labels = sorted(r[0] for r in db.execute("SELECT label FROM tickets WHERE branch = 'north'"))
            streams = db.execute("SELECT COUNT(*) FROM streams WHERE branch = 'north'").fetchone()
        assert labels == ["K001", "K002", "K003", "K004", "K005", "K006"] and streams == (2,)
        assert {t for t in after_backup} == {"K004", "K005"}
        summary = centre.get("/api/v1/summary").json()  # the statistics work under the app role too
        assert summary["all"]["issued"] == 6 and summary["branches"][0]["called"] == 1
        assert APP in fresh.url()
    finally:
        fresh.cluster.close()


@pytest.mark.parametrize(("url", "ok"), [
    ("postgresql://vuoro_central@127.0.0.1:5432/vuoro_central", True),
    ("postgresql://vuoro_central@/vuoro_central?host=/run/postgresql", True),
    ("postgresql://vuoro_central@db.kommune.example/vuoro_central", False),
    ("postgresql://vuoro_central@db.kommune.example/vuoro_central?sslmode=require", False),
    ("postgresql://vuoro_central@db.kommune.example/vuoro_central?sslmode=verify-full&sslrootcert=/etc/ca.pem", True),
])
def test_a_database_on_another_host_needs_verified_tls(tmp_path: Path, url: str, ok: bool) -> None:
    from central.config import ConfigError, load_centre
    from toolkit.central_process import write_centre_config

    token, site = branch_site(tmp_path, "north", "Nordby", 8700)
    path = write_centre_config(tmp_path / "centre.toml", url, {"north": (token, site)})
    if ok:
        assert load_centre(path).database == url
    else:
        with pytest.raises(ConfigError, match="centre.database: expected sslmode=verify-full"):
            load_centre(path)


def test_the_role_proof_is_shellcheck_clean_says_what_it_does_and_refuses_what_it_does_not_know() -> None:
    """deploy/central/prove-role.sh boots a container and downloads packages: not part of this suite (its results:
    docs/central.md, "Deploy"). These checks keep it from rotting between runs."""
    from tests.test_deploy_pi_ansible import run, tool

    script = REPO / "deploy" / "central" / "prove-role.sh"
    linted = run(tool("shellcheck", "apt-get install shellcheck"), "-x", "--severity=style",
                 str(script.relative_to(REPO)))
    assert linted.returncode == 0, linted.stdout + linted.stderr
    helped = run("bash", str(script), "--help")
    assert helped.returncode == 0 and "var/centre-proof" in helped.stdout and "--keep" in helped.stdout
    refused = run("bash", str(script), "--fast")
    assert refused.returncode == 2 and "unknown option '--fast'" in refused.stderr
