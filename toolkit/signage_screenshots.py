"""Regenerates ``docs/screenshots/signage/``: the Kivy screen in a real X window, and the web page.

    python -m toolkit.signage_screenshots            # starts Xvfb itself (xvfb-run) when there is no $DISPLAY

Each Kivy picture is taken in its own process (a Kivy window's size is
fixed at start) under Xvfb, from the demo payloads in ``display.sample``
with a call just made (so the highlight shows), via ``Window.screenshot``.
The web page is taken from headless Chromium against the replay server.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "docs" / "screenshots" / "signage"
# (orientation, language, size): the 1080p panels, and a 960x540 smart-TV browser's worth of pixels
SHOTS = [("landscape", "da", (1920, 1080)), ("portrait", "da", (1080, 1920)), ("landscape", "fi", (1920, 1080)),
         ("portrait", "sv", (1080, 1920)), ("landscape", "nl", (960, 540))]
CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run"]
MESSAGES = {"da": "Borgerservice lukker kl. 16 i dag – kom i god tid", "fi": "Kansalaispalvelu suljetaan tänään klo 16",
            "sv": "Medborgarservice stänger kl. 16 i dag"}


def one(orientation: str, lang: str, out: Path, size: tuple[int, int] | None = None) -> None:
    """In a fresh process: open a real window, draw a full hall (``sample.retained(busy=True)``), save it."""
    os.environ.update(KIVY_NO_ARGS="1", KIVY_NO_CONSOLELOG="1", KIVY_NO_FILELOG="1", KIVY_NO_CONFIG="1",
                      KIVY_HOME=tempfile.mkdtemp(prefix="vuoro-kivy-"))
    os.environ.pop("SDL_VIDEODRIVER", None)  # the X server, not offscreen: a real window
    from kivy.config import Config

    width, height = size or ((1920, 1080) if orientation == "landscape" else (1080, 1920))
    Config.set("graphics", "width", str(width))
    Config.set("graphics", "height", str(height))
    Config.set("graphics", "borderless", "1")
    Config.set("graphics", "position", "custom")
    Config.set("graphics", "left", "0")
    Config.set("graphics", "top", "0")
    from kivy.app import App
    from kivy.clock import Clock
    from kivy.core.window import Window

    from display import sample
    from display.app import ScreenDriver, build_screen
    from display.state import SignageState
    from vuoro.protocol import Topics

    state = SignageState(Topics("sonderbro"))
    for suffix, payload in sample.retained(message=MESSAGES.get(lang, ""), busy=True).items():
        state.apply_payload(suffix, payload)
    state.apply_payload("calls", sample.call("K042", "borger1"))
    state.link_online = True

    class Shot(App):
        def build(self):  # type: ignore[no-untyped-def]
            screen = build_screen(orientation, (width, height))
            self.driver = ScreenDriver(screen, state, lang, alternate_s=0)
            Clock.schedule_once(lambda dt: self.driver.redraw(), 0.2)
            Clock.schedule_once(self.take, 2.0)
            return screen

        def take(self, dt: float) -> None:
            saved = Window.screenshot(name=str(out.with_suffix("")) + "-.png")
            Path(saved).replace(out)
            self.stop()

    Shot().run()


def web(out_dir: Path) -> list[Path]:
    from playwright.sync_api import sync_playwright

    from display import sample
    from toolkit.fake_hub import Replay

    replay = Replay()
    for topic, payload in sample.retained(message=MESSAGES["da"], busy=True).items():
        replay.publish(topic, payload)
    saved = []
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
            for name, size, query in (("web-landscape-da.png", (1920, 1080), "lang=da&alternate=0"),
                                      ("web-portrait-sv.png", (1080, 1920), "lang=sv&orientation=portrait&alternate=0"),
                                      ("web-tv-fi.png", (960, 540), "lang=fi&alternate=0")):
                page = browser.new_page(viewport={"width": size[0], "height": size[1]})
                page.goto(f"{replay.url}/signage/index.html?{query}")
                page.wait_for_function("document.querySelectorAll('#queues li').length > 0", timeout=10_000)
                replay.call(sample.call("K042", "borger1"))
                page.wait_for_function("document.getElementById('call-ticket').textContent === 'K042'",
                                       timeout=10_000)
                page.screenshot(path=str(out_dir / name))
                saved.append(out_dir / name)
                page.close()
            replay.track["demo"] = {"ticket": "K045", "service": "kvik", "status": "waiting", "position": 3,
                                    "estimated_wait_min": 8, "counter_name": None,
                                    "service_names": sample.NAMES["kvik"]}
            page = browser.new_page(viewport={"width": 390, "height": 844}, device_scale_factor=2)
            page.goto(f"{replay.url}/signage/ticket.html?t=demo&lang=da")
            page.wait_for_function("document.getElementById('ticket').textContent === 'K045'", timeout=10_000)
            page.screenshot(path=str(out_dir / "web-ticket-da.png"))
            saved.append(out_dir / "web-ticket-da.png")
            browser.close()
    finally:
        replay.close()
    return saved


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["--one"]:
        width, _, height = args[4].partition("x")
        one(args[1], args[2], Path(args[3]), (int(width), int(height)))
        return 0
    OUT.mkdir(parents=True, exist_ok=True)
    if not os.environ.get("DISPLAY") and "--no-xvfb" not in args:
        if not shutil.which("xvfb-run"):
            print("needs an X display or xvfb-run (apt-get install xvfb xauth)", file=sys.stderr)
            return 2
        return subprocess.call(["xvfb-run", "-a", "-s", "-screen 0 1920x1920x24", sys.executable, "-m",
                                "toolkit.signage_screenshots", "--no-xvfb"])
    for orientation, lang, (width, height) in SHOTS:
        kind = orientation if min(width, height) == 1080 else f"{width}x{height}"
        out = OUT / f"kivy-{kind}-{lang}.png"
        for _attempt in range(3):  # a window that was not yet mapped on a fresh Xvfb saves an empty black frame
            subprocess.run([sys.executable, "-m", "toolkit.signage_screenshots", "--one", orientation, lang, str(out),
                            f"{width}x{height}"], check=True)
            if out.stat().st_size > 30_000:
                break
        print(out)
    if Path(CHROMIUM).exists():
        for path in web(OUT):
            print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
