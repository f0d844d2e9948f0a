"""The README's first command, headless: the whole system on embedded defaults."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

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


def test_the_windowed_demo_under_xvfb_shows_kiosk_and_screen_side_by_side(tmp_path: Path) -> None:
    """Xvfb has no window manager: the first version let both windows open at the same place, and the
    signage window covered the kiosk. Run `vuoro demo` as the README says, on a 1920×1080 virtual screen,
    and read where the windows are and what the screen shows."""
    import os
    import time

    from PIL import ImageGrab

    xvfb = subprocess.Popen(["Xvfb", "-displayfd", "1", "-screen", "0", "1920x1080x24", "-nolisten", "tcp"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    display = f":{xvfb.stdout.readline().decode().strip()}"  # type: ignore[union-attr]
    env = {**os.environ, "DISPLAY": display, "KIVY_HOME": str(tmp_path / "kivy")}
    env.pop("SDL_VIDEODRIVER", None)  # the tests' offscreen default: here the windows go to the X screen
    demo = subprocess.Popen([sys.executable, "-m", "vuoro.cli", "demo", "--data-dir", str(tmp_path), "--port", "0"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        windows: dict[str, tuple[int, int, int, int]] = {}
        deadline = time.monotonic() + 90
        while len(windows) < 2:
            assert demo.poll() is None and time.monotonic() < deadline, "the demo's windows never appeared"
            time.sleep(0.5)
            found = subprocess.run(["xdotool", "search", "--classname", "."], env=env,  # SDL's windows
                                   capture_output=True, text=True).stdout.split()
            for window in found:
                name = subprocess.run(["xdotool", "getwindowname", window], env=env, capture_output=True,
                                      text=True).stdout.strip()
                if name not in ("Vuoro kiosk", "Vuoro signage"):
                    continue
                shape = subprocess.run(["xdotool", "getwindowgeometry", "--shell", window], env=env,
                                       capture_output=True, text=True).stdout
                values = dict(line.split("=", 1) for line in shape.split())
                windows[name] = (int(values["X"]), int(values["Y"]), int(values["WIDTH"]), int(values["HEIGHT"]))
        (kx, ky, kw, kh), (sx, sy, sw, sh) = windows["Vuoro kiosk"], windows["Vuoro signage"]

        def drawn(screen: Any) -> bool:
            """Both windows drawn (the kiosk has asked the hub, the screen read the retained state), neither
            covered: the kiosk's light background at its place, the screen's dark one beside it."""
            for x, y, w, h in (windows["Vuoro kiosk"], windows["Vuoro signage"]):
                colours = screen.crop((x, y, x + w, y + h)).convert("RGB").getcolors(maxcolors=1 << 16)
                if not (colours is None or len(colours) > 20):
                    return False
            return (sum(screen.getpixel((kx + kw // 2, ky + kh - 4))[:3]) > 600
                    and sum(screen.getpixel((sx + sw // 2, sy + 4))[:3]) < 150)

        # the first frames, looked at every half second (the test slept 8 s here, a slow machine could lose it)
        deadline = time.monotonic() + 60
        while True:
            screen = ImageGrab.grab(xdisplay=display)
            if drawn(screen) or time.monotonic() > deadline or demo.poll() is not None:
                break
            time.sleep(0.5)
        screen.save(tmp_path / "xvfb.png")  # to look at when it fails
    finally:
        demo.terminate()  # SIGTERM stops the hub, broker and windows too
        demo.wait(30)
        xvfb.terminate()
        xvfb.wait(10)
    assert (kw, kh) == (800, 480) and kx + kw <= sx and sx + sw <= 1920 and max(ky + kh, sy + sh) <= 1080
    for x, y, w, h in (windows["Vuoro kiosk"], windows["Vuoro signage"]):  # both drawn, neither covered
        colours = screen.crop((x, y, x + w, y + h)).convert("RGB").getcolors(maxcolors=1 << 16)
        assert colours is None or len(colours) > 20, (x, y, w, h)
    # the kiosk's light background at its place, the screen's dark one beside it: neither is over the other
    assert sum(screen.getpixel((kx + kw // 2, ky + kh - 4))[:3]) > 600
    assert sum(screen.getpixel((sx + sw // 2, sy + 4))[:3]) < 150
