"""An idle hub carries only what it uses: its start time and memory are targets (≤ 1.5 s, ≤ 60 MB idle), and every
library loaded "just in case" costs both on every hub (bench/RESULTS.md has the figures).

A site without ``[central]``, ``[notify]``, ``[staff.ldap]`` or ``[staff.oidc]`` never needs an HTTP client, an
LDAP client, an OpenID library or PostgreSQL's driver: those are imported by the code that uses them, when it runs.
Checked on the real ``vuoro hub`` entry point (``server.main``), started to the point where it would serve.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from argon2.exceptions import VerifyMismatchError

from server.staff import accounts
from toolkit.broker import Broker, free_port

ROOT = Path(__file__).resolve().parent.parent

# The hub, started by its own main() up to the moment uvicorn would serve: then it reports what it has imported.
SCRIPT = """
import json, sys, uvicorn
def report(self, *args, **kwargs):
    print("MODULES " + json.dumps(sorted(sys.modules)), flush=True)
uvicorn.Server.run = report
from server.main import main
sys.exit(main(sys.argv[1:]))
"""

NOT_WHEN_IDLE = ("requests", "urllib3", "ldap3", "authlib", "joserfc", "psycopg", "psycopg_pool", "jinja2",
                 "smtplib", "icalendar", "recurring_ical_events", "qrcode", "central", "server.uplink.shipper")


def imported_by_a_started_hub(site: Path, data_dir: Path, broker: Broker) -> set[str]:
    done = subprocess.run([sys.executable, "-c", SCRIPT, "--config", str(site), "--data-dir", str(data_dir),
                           "--listen", f"127.0.0.1:{free_port()}", "--broker", broker.url, "--log-level", "warning"],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    lines = [line for line in done.stdout.splitlines() if line.startswith("MODULES ")]
    assert done.returncode == 0 and lines, done.stdout + done.stderr
    return set(json.loads(lines[0].removeprefix("MODULES ")))


def test_an_idle_hub_does_not_load_what_only_configured_parts_use(hub_site: Path, live_broker: Broker,
                                                                  tmp_path: Path) -> None:
    modules = imported_by_a_started_hub(hub_site, tmp_path / "hub", live_broker)
    assert "server.api" in modules and "server.phone.notify" in modules  # it did start, with its plugins
    loaded = sorted(name for name in NOT_WHEN_IDLE if name in modules)
    assert loaded == []


def test_the_stand_in_hash_for_unknown_names_costs_what_a_real_one_does() -> None:
    """An unknown user name is checked against a fixed hash, so it takes as long as a wrong password; the hash
    must have the hasher's own parameters (memory, time, lanes), or the two would differ in time."""
    assert accounts._DUMMY_HASH.startswith("$argon2id$")
    assert not accounts.HASHER.check_needs_rehash(accounts._DUMMY_HASH)
    try:
        accounts.HASHER.verify(accounts._DUMMY_HASH, "demo")
    except VerifyMismatchError:
        pass
    else:
        raise AssertionError("the stand-in hash must match no password anyone could type")
    settings = accounts.StaffSettings(users={})
    assert accounts.verify_password(settings, "nobody", "whatever") is None
