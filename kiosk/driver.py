"""Drive the kiosk app without ``App.run()``: for tests, the benchmark and the screenshots.

The app is built and started exactly as ``run()`` would (``_run_prepare``),
but the event loop is pumped by the caller, so a test can touch a real
widget (a ``UnitTestTouch`` dispatched through the window, as a finger
would be) and then wait for a condition instead of sleeping.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from kivy.base import EventLoop
from kivy.core.window import Window
from kivy.tests.common import UnitTestTouch
from kivy.uix.widget import Widget

from .app import KioskApp


class Driver:
    def __init__(self, app: KioskApp, size: tuple[int, int] | None = None) -> None:
        self.app = app
        EventLoop.ensure_window()
        if size is not None and tuple(Window.size) != tuple(size):
            Window.size = size
        for child in list(Window.children):  # a previous app in the same process
            Window.remove_widget(child)
        # kv's ``app`` is a proxy that caches the first running app it meets; point it at this one.
        from kivy.lang.parser import global_idmap

        object.__setattr__(global_idmap["app"], "_obj", app)
        app._run_prepare()
        self.pump(3)

    def pump(self, frames: int = 1) -> None:
        for _ in range(frames):
            EventLoop.idle()

    def wait(self, condition: Callable[[], Any], timeout: float = 10.0, what: str = "") -> Any:
        deadline = time.monotonic() + timeout
        while True:
            value = condition()
            if value:
                self.pump(2)  # let bindings settle and a frame be drawn
                return value
            if time.monotonic() > deadline:
                raise TimeoutError(f"timed out after {timeout} s waiting for {what or condition}")
            EventLoop.idle()

    def tap(self, widget: Widget) -> None:
        """A finger down and up at the widget's centre, dispatched through the window."""
        self.pump(1)
        x, y = widget.to_window(*widget.center)
        touch = UnitTestTouch(x, y)
        touch.touch_down()
        touch.touch_up()
        self.pump(1)

    def key(self, code: int, text: str | None = None) -> None:
        """A key pressed and released, dispatched through the window as SDL delivers it (a Kivy key code:
        ``numpad5`` is 261); ``text`` is the text input that follows it, as with NumLock on."""
        Window.dispatch("on_key_down", code, 0, text, [])
        if text:
            Window.dispatch("on_textinput", text)
        Window.dispatch("on_key_up", code, 0)
        self.pump(1)

    def screenshot(self, path: str) -> str:
        """Draw one more frame and save the window (Kivy appends 0001 to the name; we rename)."""
        import os

        self.pump(3)
        saved = Window.screenshot(name=path)
        if saved and saved != path:
            os.replace(saved, path)
        return path

    def stop(self) -> None:
        # on_stop also releases kv's cached ``app`` proxy, so the next app's rules bind to the next app.
        self.app.dispatch("on_stop")
        for child in list(Window.children):
            Window.remove_widget(child)
        self.pump(1)
