"""The systemd units: valid for systemd itself, and saying what docs/deploy.md promises."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SYSTEMD = REPO / "deploy" / "systemd"
INSTALLED_VUORO = "/opt/vuoro/bin/vuoro"  # the venv deploy/pi/install.sh and Ansible create
ROLES = {
    "hub": "vuoro hub --config /etc/vuoro/site.toml --data-dir /var/lib/vuoro",
    "kiosk": "vuoro kiosk --config /etc/vuoro/kiosk.toml",
    "display": "vuoro display --config /etc/vuoro/display.toml",
    "button": "vuoro button --config /etc/vuoro/button.toml",
}


def parse_unit(path: Path) -> dict[str, dict[str, list[str]]]:
    """Sections -> key -> every value (systemd allows a key more than once)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current = None
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), {})
            continue
        assert current is not None, f"{path.name}: {line!r} outside a section"
        key, _, value = line.partition("=")
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


def systemd_analyze() -> str:
    exe = shutil.which("systemd-analyze")
    if exe is None:
        pytest.fail("systemd-analyze is not installed (Debian: apt-get install systemd); CI must install it")
    return exe


@pytest.mark.parametrize("role", sorted(ROLES))
def test_unit_passes_systemd_analyze_verify(role: str, tmp_path: Path) -> None:
    """systemd's own check, with ExecStart pointed at an existing vuoro (the test's venv) instead of /opt."""
    exe = systemd_analyze()
    vuoro = str(Path(sys.executable).parent / "vuoro")
    assert Path(vuoro).exists(), "the 'vuoro' console script is not installed in this venv (pip install -e .)"
    source = (SYSTEMD / f"vuoro-{role}.service").read_text()
    assert source.count(INSTALLED_VUORO) == 1
    unit = tmp_path / f"vuoro-{role}.service"
    unit.write_text(source.replace(INSTALLED_VUORO, vuoro))
    result = subprocess.run([exe, "verify", str(unit)], capture_output=True, text=True, timeout=60)
    # Any output is a finding (an unknown key is only a warning, but it is a mistake all the same).
    assert result.returncode == 0 and not result.stderr.strip() and not result.stdout.strip(), (
        f"systemd-analyze verify {unit.name}:\n{result.stdout}{result.stderr}"
    )


def test_verify_catches_a_broken_unit(tmp_path: Path) -> None:
    """The check above can fail: a misspelt key and a missing program are both reported."""
    exe = systemd_analyze()
    unit = tmp_path / "vuoro-broken.service"
    unit.write_text("[Unit]\nDescription=x\n[Service]\nType=notify\nExecStart=/opt/nowhere/vuoro hub\n"
                    "WatchdogSecs=30\n")
    result = subprocess.run([exe, "verify", str(unit)], capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "WatchdogSecs" in result.stderr and "/opt/nowhere/vuoro" in result.stderr


@pytest.mark.parametrize("role", sorted(ROLES))
def test_unit_promises(role: str) -> None:
    unit = parse_unit(SYSTEMD / f"vuoro-{role}.service")
    service, deps = unit["Service"], unit["Unit"]
    after = " ".join(deps["After"]).split()
    wants = " ".join(deps["Wants"]).split()
    for needed in ("network-online.target", "mosquitto.service"):
        assert needed in after and needed in wants, f"{role}: After=/Wants= {needed}"
    assert service["ExecStart"] == [f"{INSTALLED_VUORO} {ROLES[role].removeprefix('vuoro ')}"]
    assert service["Type"] == ["notify"]
    watchdog = service["WatchdogSec"][0]
    assert re.fullmatch(r"\d+s", watchdog) and 10 <= int(watchdog[:-1]) <= 60
    assert service["Restart"][0] in ("always", "on-failure")
    assert service["User"] == ["vuoro"]
    for key in ("NoNewPrivileges", "ProtectHome", "PrivateTmp"):
        assert service[key] == ["yes"], f"{role}: {key}"
    assert service["ProtectSystem"] == ["strict"]
    assert service["CapabilityBoundingSet"] == [""]
    assert service["StandardOutput"] == ["journal"]
    assert unit["Install"]["WantedBy"] == ["multi-user.target"]
    if role != "hub":
        # These close /dev (or make it private) and would cut the GPU, touch, printer or GPIO.
        for key in ("PrivateDevices", "DevicePolicy", "DeviceAllow", "ProtectClock", "PrivateUsers"):
            assert key not in service, f"{role}: {key} would break hardware access"


def test_the_hub_may_hold_thousands_of_connections_open() -> None:
    """Issue 13: without LimitNOFILE the hub had 1,024 files, and 1,100 streams from one client stopped kiosks."""
    from server.config import SiteConfig
    from server.stream import FILES_RESERVE

    service = parse_unit(SYSTEMD / "vuoro-hub.service")["Service"]
    assert int(service["LimitNOFILE"][0]) >= SiteConfig.streams_total + FILES_RESERVE + 1000
    # The hub cannot raise the limit itself under this unit: ~@resources takes setrlimit away.
    assert any("@resources" in line for line in service["SystemCallFilter"])


@pytest.mark.parametrize("role", ["kiosk", "display"])
def test_screens_run_kivy_on_kms_drm(role: str) -> None:
    env = dict(item.split("=", 1) for item in parse_unit(SYSTEMD / f"vuoro-{role}.service")["Service"]["Environment"])
    assert env["KIVY_WINDOW"] == "sdl2"
    assert env["SDL_VIDEODRIVER"] == "kmsdrm"
    assert env["KIVY_HOME"].startswith(f"/var/lib/vuoro/{role}")


def test_hardware_watchdog_fits_the_bcm2835() -> None:
    conf = (SYSTEMD / "system.conf.d" / "vuoro-watchdog.conf").read_text()
    assert "[Manager]" in conf
    match = re.search(r"(?m)^RuntimeWatchdogSec=(\d+)s$", conf)
    assert match, "RuntimeWatchdogSec=<n>s missing"
    assert 5 <= int(match.group(1)) < 15, "the Pi's watchdog counts at most ~15 s"


def test_the_hub_gets_the_cpu_before_the_screens_and_kiosks_on_a_shared_pi() -> None:
    """Issue 19: beside a busy screen the hub's threads waited for a core at every wake-up."""
    hub = parse_unit(SYSTEMD / "vuoro-hub.service")["Service"]
    assert int(hub["Nice"][-1]) < 0 and int(hub["CPUWeight"][-1]) > 100
    for role in ("kiosk", "display", "button"):
        unit = parse_unit(SYSTEMD / f"vuoro-{role}.service")["Service"]
        assert int(unit.get("Nice", ["0"])[-1]) >= 0 and int(unit.get("CPUWeight", ["100"])[-1]) <= 100, role
