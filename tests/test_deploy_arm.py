"""The ARM proof's scripts (deploy/arm/): lint-clean, documented, and the site they install is open.

The proof itself (bash deploy/arm/prove.sh) boots an emulated arm64 machine for the better part
of an hour and downloads packages: it is not part of this suite. These checks keep its scripts
from rotting between runs.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from server.config import load_config
from tests.test_deploy_pi_ansible import run, tool

REPO = Path(__file__).resolve().parent.parent
ARM = REPO / "deploy" / "arm"
SCRIPTS = sorted(ARM.glob("*.sh"))


def load_checks():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("arm_checks", ARM / "checks.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_scripts_are_there_and_shellcheck_clean() -> None:
    assert {p.name for p in SCRIPTS} >= {"prove.sh", "image.sh", "image-customize.sh", "vm.sh"}
    result = run(tool("shellcheck", "apt-get install shellcheck"), "-x", "--severity=style",
                 *(str(p.relative_to(REPO)) for p in SCRIPTS))
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("script", ["prove.sh", "image.sh"])
def test_help_says_what_it_does_without_touching_anything(script: str) -> None:
    result = run("bash", str(ARM / script), "--help")
    assert result.returncode == 0, result.stderr
    assert "var/arm" in result.stdout and "deploy/arm/" in result.stdout


def test_prove_refuses_an_unknown_option() -> None:
    result = run("bash", str(ARM / "prove.sh"), "--fast")
    assert result.returncode == 2 and "unknown option '--fast'" in result.stderr


def test_the_proof_site_is_the_example_branch_open_round_the_clock(tmp_path: Path) -> None:
    checks = load_checks()
    site = tmp_path / "site.toml"
    checks.write_site(site)
    config = load_config(site)
    example = load_config(checks.EXAMPLE_SITE)
    assert config.devices == example.devices and set(config.services) == set(example.services)
    zone = config.timezone
    # Every hour of a week, and Christmas Eve (a holiday in the example): open, so a ticket can be taken.
    start = datetime(2026, 12, 21, 0, 30, tzinfo=zone)
    for hour in range(7 * 24):
        moment = start + timedelta(hours=hour)
        assert config.building.is_open(moment), moment
        for service in config.services.values():
            assert service.hours.is_open(moment), (service.id, moment)


def test_checks_help_lists_every_command() -> None:
    result = subprocess.run([sys.executable, str(ARM / "checks.py"), "--help"], capture_output=True, text=True,
                            cwd=REPO, timeout=60)
    assert result.returncode == 0, result.stderr
    for command in ("site", "health", "http-ticket", "mqtt", "tickets", "tickets-kept"):
        assert command in result.stdout


# -- what the proof found, kept from coming back ------------------------------------------------


def test_both_installers_take_the_pinned_versions_as_wheels() -> None:
    """A Pi gets the versions the tests ran with, and never needs a compiler (every pin has an
    arm64 wheel: the proof installs them on arm64 with --only-binary)."""
    install = (REPO / "deploy" / "pi" / "install.sh").read_text()
    role = (REPO / "deploy" / "ansible" / "roles" / "common" / "tasks" / "venv.yml").read_text()  # both roles' pip step
    assert '--only-binary=:all: -c "$PREFIX/src/constraints.txt"' in install
    assert "--only-binary=:all: -c {{ vuoro_prefix }}/src/constraints.txt" in role


def test_no_installer_asks_debian_for_raspberry_pi_only_packages() -> None:
    """python3-lgpio is in Raspberry Pi's archive only: on Debian 12 arm64 apt stops there."""
    install = (REPO / "deploy" / "pi" / "install.sh").read_text().splitlines()
    assert not [line for line in install if "APT+=" in line and "python3-lgpio" in line]
    defaults = (REPO / "deploy" / "ansible" / "roles" / "common" / "defaults" / "main.yml").read_text()
    assert "python3-lgpio" not in defaults
    pyproject = (REPO / "pyproject.toml").read_text()
    constraints = (REPO / "constraints.txt").read_text().splitlines()
    assert "\"lgpio>=" in pyproject.split("button = [")[1].split("]")[0]
    assert "lgpio==0.2.2.0" in constraints
