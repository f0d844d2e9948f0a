"""The Kivy signage screen in a real (offscreen SDL, Mesa) window.

Draws the state folded from MQTT and checks the widgets and the pixels:
the call, the highlight colour, the offline mark, and a live call arriving
from a real Mosquitto while the window runs.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest
from kivy.tests.common import GraphicUnitTest

from display import sample
from display.app import COLORS, ScreenDriver, SignageScreen, build_screen
from display.client import SignageClient
from display.state import SignageState
from toolkit.broker import Broker
from toolkit.fake_hub import FakeHub, fresh_topics
from vuoro.protocol import Topics

TOPICS = Topics("sonderbro")


def loaded_state() -> SignageState:
    state = SignageState(TOPICS)
    for suffix, payload in sample.retained(message="Borgerservice lukker kl. 16").items():
        state.apply_payload(suffix, payload)
    state.link_online = True
    return state


def texts(widget: Any) -> list[str]:
    return [w.text for w in widget.walk() if hasattr(w, "text") and isinstance(w.text, str) and w.text]


def corner_pixel(widget: Any) -> tuple[int, int, int]:
    """An RGB pixel of a widget's own rendering, near its right edge where no text is drawn."""
    texture = widget.export_as_image().texture
    data = texture.pixels
    x, y = texture.width - 40, 40
    offset = (y * texture.width + x) * 4
    return data[offset], data[offset + 1], data[offset + 2]


def close_to(rgb: tuple[int, int, int], rgba: tuple[float, ...]) -> bool:
    return all(abs(c - round(f * 255)) <= 6 for c, f in zip(rgb, rgba[:3], strict=False))


class SignageWindowTest(GraphicUnitTest):
    broker: Broker

    @pytest.fixture(autouse=True)
    def _broker(self, live_broker: Broker, fake_hub: FakeHub, tmp_path: Path) -> None:
        self.broker = live_broker
        self.fake_hub = fake_hub
        self.tmp = tmp_path

    def make(self, orientation: str, state: SignageState, lang: str) -> tuple[SignageScreen, ScreenDriver]:
        size = (1920, 1080) if orientation == "landscape" else (1080, 1920)
        screen = build_screen(orientation, size)
        screen.size_hint = (None, None)
        screen.size = size
        driver = ScreenDriver(screen, state, lang)
        self.render(screen)
        driver.redraw()
        self.advance_frames(3)
        return screen, driver

    def test_landscape_draws_the_state_in_danish(self) -> None:
        state = loaded_state()
        screen, driver = self.make("landscape", state, "da")
        try:
            shown = texts(screen)
            for expected in ("K041", "Skranke 2", "Nu betjenes", "KVIK – hurtig hjælp", "4 venter", "ca. 8 min",
                             "Det sker i dag", "Udsolgt", "Personale til stede nu", "Borgerservice lukker kl. 16"):
                assert expected in shown, expected
            assert screen.ids.top.offline is False
            # Real pixels: the call panel is the calm panel colour, not the highlight.
            assert close_to(corner_pixel(screen.ids.call), COLORS.PANEL)
            png = self.tmp / "landscape.png"
            screen.export_to_png(str(png))
            assert png.stat().st_size > 20_000  # a real picture, not an empty frame
        finally:
            driver.stop()

    def test_a_new_call_is_highlighted_and_offline_is_marked_in_portrait_finnish(self) -> None:
        state = loaded_state()
        screen, driver = self.make("portrait", state, "fi")
        try:
            state.apply_payload("calls", sample.call("K042", "borger1"))
            state.link_online = False
            driver.redraw()
            self.advance_frames(2)
            call = screen.ids.call
            assert (call.ticket, call.counter, call.highlight) == ("K042", "Skranke 3", True)
            assert close_to(corner_pixel(call), COLORS.HILITE)
            assert screen.ids.top.offline and "Ei yhteyttä" in texts(screen)
            assert "Jonot ja odotusaika" in texts(screen) and "Nyt palvellaan" in texts(screen)
        finally:
            driver.stop()

    def test_a_call_over_mqtt_reaches_the_running_window(self) -> None:
        hub = self.fake_hub
        topics = hub.topics
        state = SignageState(topics)
        screen, driver = self.make("landscape", state, "da")
        client = SignageClient(self.broker.url, state, on_update=driver.on_update)
        driver.lock = client.lock
        try:
            hub.publish_all(sample.retained())
            client.start()
            self.wait_for(lambda: screen.ids.call.ticket == "K041")
            hub.call(sample.call("K042", "borger1"))
            self.wait_for(lambda: screen.ids.call.ticket == "K042")
            assert screen.ids.call.highlight and screen.ids.call.counter == "Skranke 3"
        finally:
            client.stop()
            driver.stop()

    def test_full_screen_lays_out_for_the_panels_own_pixels(self) -> None:
        """A 1280x720 panel gets the layout scaled for 720 pixels, not the nominal 1920x1080 (on the emulated
        arm64 board's 720p screen the called ticket showed as "K..." and the counter was cut off)."""
        import threading

        from kivy.core.text import Label as CoreLabel
        from kivy.core.window import Window

        from display.app import SCALE, SignageApp

        before = tuple(Window.size)
        Window.size = (1280, 720)
        app = None
        try:
            self.advance_frames(2)
            panel = tuple(Window.size)
            app = SignageApp("landscape", (1920, 1080), loaded_state(), "da", threading.RLock(), fit_window=True)
            screen = app.build()
            assert SCALE.u == pytest.approx(min(panel) / 1080)
            self.render(screen)
            app.driver.redraw()
            self.advance_frames(3)
            call = screen.ids.call
            ticket, counter = call.ids.ticket, call.ids.counter
            assert (call.ticket, counter.text) == ("K041", "Skranke 2")
            for label in (ticket, counter):  # drawn whole: the text at its size fits the widget's width
                whole = CoreLabel(text=label.text, font_name=label.font_name, font_size=label.font_size)
                whole.refresh()
                assert whole.texture.width <= label.width, (label.text, whole.texture.width, label.width)
        finally:
            if app is not None and app.driver is not None:
                app.driver.stop()
            Window.size = before
            SCALE.u = 1.0

    def wait_for(self, predicate: Any, timeout: float = 10.0) -> None:
        """Run the Kivy loop until the screen shows what we wait for (generous bound, no timing claim)."""
        deadline = time.monotonic() + timeout
        while not predicate():
            assert time.monotonic() < deadline, "the screen never showed it"
            self.advance_frames(1)
            time.sleep(0.01)


def test_vuoro_display_command_starts_and_draws_the_full_state(live_broker: Broker, fake_hub: FakeHub,
                                                               tmp_path: Path) -> None:
    """The real entry point (`vuoro display`), as systemd runs it, in smoke mode."""
    import json
    import os
    import subprocess
    import sys

    hub, topics = fake_hub, fake_hub.topics
    hub.publish_all(sample.retained())
    env = {**os.environ, "SDL_VIDEODRIVER": "offscreen", "KIVY_HOME": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-m", "vuoro.cli", "display", "--broker", live_broker.url, "--site", "sonderbro",
         "--root", topics.root, "--window", "960x540", "--no-sound", "--device", "screen9", "--smoke"],
        env=env, capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["full_state"] >= report["first_frame"] > 0 and report["rss_kb"] > 0


def test_vuoro_display_tells_systemd_it_is_ready_and_alive(live_broker: Broker, tmp_path: Path) -> None:
    """Type=notify + WatchdogSec: READY=1 once the first frame is drawn, then WATCHDOG=1 from the Kivy clock."""
    import os
    import socket
    import subprocess
    import sys

    address = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(address)
    sock.settimeout(30)
    env = {**os.environ, "SDL_VIDEODRIVER": "offscreen", "KIVY_HOME": str(tmp_path), "NOTIFY_SOCKET": address,
           "WATCHDOG_USEC": "400000"}  # WatchdogSec=0.4s → feed every 0.2 s
    env.pop("WATCHDOG_PID", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "vuoro.cli", "display", "--broker", live_broker.url, "--site", "sonderbro",
         "--root", fresh_topics().root, "--window", "640x360", "--no-sound", "--device", "screen9"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        seen: list[str] = []
        while seen.count("WATCHDOG=1") < 2:
            seen += sock.recv(4096).decode().splitlines()
        assert seen.count("READY=1") == 1
        # No ping before READY=1: systemd arms the watchdog at the first one, even while the unit starts,
        # and a slow first frame then failed the start (the kiosk on the emulated arm64 board, deploy/arm/).
        assert seen[0] == "READY=1", seen[:4]
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
        sock.close()


def test_the_app_applies_its_layout_rules_once() -> None:
    """Kivy finds signage.kv by the App's class name on its own; loaded twice, every widget is drawn
    twice over itself (seen in the windowed demo). Go through the same steps App.run() takes."""
    import threading

    from display.app import SignageApp

    app = SignageApp("landscape", (1280, 720), loaded_state(), "da", threading.RLock())
    app.load_kv(filename=app.kv_file)  # what App.run() does before build()
    root = app.build()
    assert texts(root).count("Nu betjenes") == 1


class DoorScreenTest(GraphicUnitTest):
    """A screen by the entrance (``--door``) draws the phone ticket's QR from ``phone/door`` (docs/phone.md)."""

    DOOR = {"v": 1, "code": "k3x9q2m7aa", "path": "/phone/?d=k3x9q2m7aa",
            "url": "https://ko.sonderbro.example/phone/?d=k3x9q2m7aa", "qr": "/phone/door.svg?d=k3x9q2m7aa",
            "changes_at": "2026-11-23T10:31:00+01:00", "at": "2026-11-23T10:30:12.000+01:00"}

    def test_a_door_screen_draws_the_qr_and_another_screen_does_not(self) -> None:
        door, hall = SignageState(TOPICS, door=True), SignageState(TOPICS)
        for state in (door, hall):
            for suffix, payload in sample.retained().items():
                state.apply_payload(suffix, payload)
            state.link_online = True
            state.apply_payload("phone/door", self.DOOR)
        assert door.phone_door == self.DOOR and hall.phone_door is None
        pictures = {}
        for name, state in (("door", door), ("hall", hall)):
            screen = build_screen("landscape", (1920, 1080))
            screen.size_hint = (None, None)
            screen.size = (1920, 1080)
            driver = ScreenDriver(screen, state, "da", alternate_s=0)
            self.render(screen)
            text = driver.redraw()
            self.advance_frames(3)
            pictures[name] = screen.export_as_image().texture
            if name == "door":
                assert text.door_url == self.DOOR["url"] and text.door_text == "Scan og tag et nummer"
                # $VUORO_PHONE_SCREENSHOTS (docs/screenshots/phone) regenerates the docs' picture.
                shots = os.environ.get("VUORO_PHONE_SCREENSHOTS")
                png = Path(shots) / "kivy-door-da.png" if shots else Path(tempfile.mkdtemp()) / "door.png"
                png.parent.mkdir(parents=True, exist_ok=True)
                screen.export_to_png(str(png))
                assert png.stat().st_size > 20_000
            driver.stop()

        def pixel(texture: Any, x: int, y: int) -> tuple[int, int, int]:
            offset = (y * texture.width + x) * 4
            return texture.pixels[offset], texture.pixels[offset + 1], texture.pixels[offset + 2]

        # The QR box's white margin, just inside its lower left corner: the box starts 96 px above the bottom,
        # 24 px plus its width (278) from the right. (A texture's rows may run either way: look at both.)
        x, y = 1920 - 24 - 278 + 8, 96 + 8

        def white(texture: Any) -> bool:
            return (255, 255, 255) in (pixel(texture, x, y), pixel(texture, x, 1080 - 1 - y))

        assert white(pictures["door"]) and not white(pictures["hall"])
