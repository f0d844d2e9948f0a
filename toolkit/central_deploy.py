"""A private PostgreSQL set up the way deploy/central/postgres-setup.sh sets up the centre's: for the tests.

The script itself is run, against a cluster of the test kit (``toolkit/postgres.py``): its roles, its
TLS (a certificate of a test CA) and its pg_hba rules. The superuser reaches the cluster through its
socket directory (``local`` lines stay ``trust``); the centre's roles only over TLS with their passwords.
"""

from __future__ import annotations

import os
import pwd
import subprocess
from dataclasses import dataclass
from pathlib import Path

from toolkit.postgres import SUPERUSER, PostgresCluster

REPO = Path(__file__).resolve().parent.parent
SCRIPTS = REPO / "deploy" / "central"
OWNER, APP, DATABASE = "vuoro_central_owner", "vuoro_central", "vuoro_central"
OWNER_PASSWORD, APP_PASSWORD = "owner-secret-0123456789", "app-secret-0123456789"


@dataclass
class DeployedCluster:
    cluster: PostgresCluster
    ca: Path  # the CA that signed the server's certificate

    def url(self, role: str = APP, password: str = APP_PASSWORD, *, ca: Path | None = None,
            sslmode: str = "verify-full") -> str:
        return (f"postgresql://{role}:{password}@127.0.0.1:{self.cluster.port}/{DATABASE}"
                f"?sslmode={sslmode}&sslrootcert={ca or self.ca}")

    @property
    def owner_url(self) -> str:
        return self.url(OWNER, OWNER_PASSWORD)

    @property
    def superuser_url(self) -> str:
        """Through the socket directory, as backup.sh runs on the database host (peer/local)."""
        return f"postgresql://{SUPERUSER}@/{DATABASE}?host={self.cluster.workdir}&port={self.cluster.port}"

    def script_env(self) -> dict[str, str]:
        return {**os.environ, "PG_BIN": str(self.cluster.bin), "VUORO_CENTRAL_DB": self.superuser_url}

    def run(self, script: str, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["bash", str(SCRIPTS / script), *args], capture_output=True, text=True, timeout=120,
                              env={**self.script_env(), **(env or {})})


def deploy_cluster(cert: Path, key: Path, ca: Path) -> DeployedCluster:
    """A fresh cluster (its own temporary directory, one the unprivileged server user can enter), started, then
    set up by postgres-setup.sh with TLS."""
    cluster = PostgresCluster()
    cluster.start()
    pg_user = "nobody" if os.geteuid() == 0 else pwd.getpwuid(os.geteuid()).pw_name
    psql = f"{cluster.bin}/psql -h {cluster.workdir} -p {cluster.port} -U {SUPERUSER}"
    result = subprocess.run(
        ["bash", str(SCRIPTS / "postgres-setup.sh"), "--tls-cert", str(cert), "--tls-key", str(key),
         "--allow", "127.0.0.1/32", "--conf-dir", str(cluster.data), "--pg-user", pg_user, "--psql", psql],
        capture_output=True, text=True, timeout=120,
        env={**os.environ, "VUORO_OWNER_PASSWORD": OWNER_PASSWORD, "VUORO_APP_PASSWORD": APP_PASSWORD})
    if result.returncode != 0:
        raise RuntimeError(f"postgres-setup.sh failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return DeployedCluster(cluster, ca)
