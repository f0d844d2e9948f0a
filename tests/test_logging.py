"""Each log line once: the kiosk and the screen as systemd runs them, their output read back.

Kivy's default log mode adds its own console handler to the root logger, beside the one
``vuoro.cli.configure_logging`` sets up: every line came out twice, once in each format, and Kivy's
DEBUG lines came out past the INFO level asked for.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from toolkit.broker import Broker
from toolkit.hub_process import HubProcess

STAMP = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (DEBUG|INFO|WARNING|ERROR|CRITICAL) \S+: ")


def run_until(cmd: list[str], tmp_path: Path, ready: str, timeout: float = 60.0) -> list[str]:
    """Start the real process, let it run until ``ready`` was logged, stop it, return its output lines."""
    out = tmp_path / "output.log"
    env = {**os.environ, "SDL_VIDEODRIVER": "offscreen", "KIVY_HOME": str(tmp_path / "kivy")}
    env.pop("KIVY_LOG_MODE", None)
    with open(out, "wb") as sink:
        process = subprocess.Popen(cmd, stdout=sink, stderr=subprocess.STDOUT, env=env)
    try:
        deadline = time.monotonic() + timeout
        while ready not in out.read_text(errors="replace"):
            assert process.poll() is None, out.read_text(errors="replace")[-3000:]
            assert time.monotonic() < deadline, f"{ready!r} never logged:\n{out.read_text()[-3000:]}"
            time.sleep(0.2)
        time.sleep(1.0)  # a few more lines
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
    return out.read_text(errors="replace").splitlines()


def assert_each_line_once(lines: list[str]) -> None:
    messages = [STAMP.sub("", line) for line in lines if STAMP.match(line)]
    assert len(messages) >= 5, lines
    # Kivy's own console format ("[INFO   ] [Window      ] ...") must not appear beside ours.
    assert not [line for line in lines if re.match(r"^\S*\[\S*(DEBUG|INFO|WARNING)", line)], lines[:20]
    banner = [m for m in messages if m.startswith("Kivy: v")]
    assert len(banner) == 1, lines[:20]
    assert not [line for line in lines if " DEBUG " in line[:40]], "DEBUG lines at the default INFO level"
    twice = [m for m, n in Counter(messages).items() if n > 1 and "attempt" not in m]
    assert not twice, twice


@pytest.mark.parametrize("part", ["kiosk", "display"])
def test_the_kiosk_and_the_screen_log_each_line_once(part: str, hub: HubProcess, live_broker: Broker,
                                                     tmp_path: Path) -> None:
    vuoro = [sys.executable, "-m", "vuoro.cli"]
    if part == "kiosk":
        cmd = vuoro + ["kiosk", "--hub", hub.url, "--device", "kiosk1", "--token", "demo-kiosk1-token-change-me",
                       "--broker", live_broker.url, "--site", "sonderbro", "--printer", "memory://",
                       "--size", "800x480", "--no-fullscreen"]
    else:
        cmd = vuoro + ["display", "--broker", live_broker.url, "--site", "sonderbro", "--device", "screen1",
                       "--window", "640x360", "--no-sound"]
    assert_each_line_once(run_until(cmd, tmp_path, "Window: "))
