"""The README's first command, headless: the whole system on embedded defaults."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

from server.config import load_config, parse_config
from toolkit.demo import always_open

ROOT = Path(__file__).resolve().parent.parent


def test_the_test_site_is_the_sample_site_always_open() -> None:
    """tests/sites/always_open.toml (hand-kept, with test-only booking rules) must not drift from the sample
    site: the same services, counters and devices, every service staffed all day — what always_open() makes."""
    sample = load_config(ROOT / "server" / "sites" / "sample.toml")
    tests = load_config(ROOT / "tests" / "sites" / "always_open.toml")
    generated = parse_config(tomllib.loads(always_open((ROOT / "server" / "sites" / "sample.toml").read_text(
        encoding="utf-8"))), ROOT / "generated.toml")
    for site in (tests, generated):
        assert {(s.id, s.letter, s.mode) for s in site.services.values()} == \
            {(s.id, s.letter, s.mode) for s in sample.services.values()}
        assert site.counters == sample.counters and site.devices == sample.devices
        for service in site.services.values():
            assert all(str(span) == "00:00-24:00" for day in range(7) for span in service.hours.weekly[day])
            assert not service.hours.exceptions


def test_a_simulated_morning_issues_prints_calls_and_survives_paper_out(tmp_path: Path) -> None:
    run = subprocess.run([sys.executable, "-m", "vuoro.cli", "demo", "--headless", "--minutes", "0.5",
                          "--speed", "120", "--data-dir", str(tmp_path), "--port", "0"],
                         capture_output=True, text=True, timeout=180)
    assert run.returncode == 0, run.stdout + run.stderr
    out = run.stdout
    assert "numbers unique: True" in out
    assert "runs out of paper" in out and "new roll" in out
    # Kiosk 1's printer reports over MQTT as a kiosk does: the hub hears it, and the staff page's devices box
    # (GET /api/v1/devices) says so while the paper is out, and again once it is back.
    assert "the staff page's devices box shows kiosk1: paper_out" in out, out
    assert "the staff page's devices box shows kiosk1: ok" in out, out
    # A morning worth showing: the rush at opening is served by the end (the first version ended with half
    # the visitors still waiting), and the estimates on the tickets are the waits people had.
    still = dict(re.findall(r"(\w+) (\d+)", out.split("still waiting")[1].split("\n")[0]))
    issued_total = int(out.split("tickets issued")[1].split()[0])
    assert sum(map(int, still.values())) <= issued_total // 10, out
    median_off = float(out.split("median off by")[1].split()[0])
    assert median_off <= 5, out
    issued = int(out.split("tickets issued")[1].split()[0])
    printed = int(out.split("receipts printed")[1].split(";")[0])
    assert issued >= 5 and 0 < printed < issued  # some receipts could not print while the paper was out
    assert len(list((tmp_path / "receipts").glob("*.png"))) == printed
    # The demo shows the whole product: every receipt carries the QR to its phone page, on the demo's own hub.
    phone = out.split("phone page (QR)")[1].split("\n")[0]
    assert int(phone.split("on ")[1].split()[0]) == printed
    assert re.search(r"e\.g\. http://127\.0\.0\.1:\d+/signage/ticket\.html\?t=\S+", phone), phone
    site = (tmp_path / "site.toml").read_text(encoding="utf-8")
    assert 'public_url = "http://127.0.0.1:' in site
    # The site file names the demo's hub and broker (what `vuoro doctor --config` reads).
    hub = re.search(r"^hub +http://(127\.0\.0\.1:\d+)", out, flags=re.M).group(1)  # type: ignore[union-attr]
    broker = re.search(r"^broker +(mqtt://127\.0\.0\.1:\d+)", out, flags=re.M).group(1)  # type: ignore[union-attr]
    config = load_config(tmp_path / "site.toml")
    assert f"{config.listen_host}:{config.listen_port}" == hub and config.broker == broker


def test_the_simulation_keeps_its_own_data_and_starts_afresh(tmp_path: Path, monkeypatch) -> None:
    """The first version shared var/demo with the windowed demo: its numbers carried on, and its receipts
    were written over the other's."""
    from toolkit.demo import Demo, parse_args

    monkeypatch.chdir(tmp_path)
    windowed = tmp_path / "var" / "demo" / "receipts" / "K001.png"
    windowed.parent.mkdir(parents=True)
    windowed.write_bytes(b"a receipt of the windowed demo")
    old_run = tmp_path / "var" / "demo-headless" / "hub" / "hub.sqlite3"
    old_run.parent.mkdir(parents=True)
    old_run.write_bytes(b"yesterday's simulated morning")
    assert Demo(parse_args([])).root == tmp_path / "var" / "demo"
    assert Demo(parse_args(["--headless"])).root == tmp_path / "var" / "demo-headless"
    assert windowed.exists() and not old_run.exists()
