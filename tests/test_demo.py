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
    run = subprocess.run([sys.executable, "-m", "vuoro.cli", "demo", "--headless", "--minutes", "0.25",
                          "--speed", "60", "--data-dir", str(tmp_path), "--port", "0"],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    out = run.stdout
    assert "numbers unique: True" in out
    assert "runs out of paper" in out and "new roll" in out
    issued = int(out.split("tickets issued")[1].split()[0])
    printed = int(out.split("receipts printed")[1].split(";")[0])
    assert issued >= 5 and 0 < printed < issued  # some receipts could not print while the paper was out
    assert len(list((tmp_path / "receipts").glob("*.png"))) == printed
    # The demo shows the whole product: every receipt carries the QR to its phone page, on the demo's own hub.
    phone = out.split("phone page (QR)")[1].split("\n")[0]
    assert int(phone.split("on ")[1].split()[0]) == printed
    assert re.search(r"e\.g\. http://127\.0\.0\.1:\d+/signage/ticket\.html\?t=\S+", phone), phone
    assert 'public_url = "http://127.0.0.1:' in (tmp_path / "site.toml").read_text(encoding="utf-8")
