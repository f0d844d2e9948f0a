"""Barcode / QR scanners: serial ones (a reader thread) and keyboard-wedge ones.

A serial scanner (USB CDC-ACM, ``/dev/ttyACM0``) sends the code and a CR or
LF; ``SerialScanner`` reads lines on its own thread with pyserial's
``serial_for_url`` (so ``loop://`` and a pty work in tests) and reopens the
port when the scanner is unplugged.

A keyboard-wedge scanner types the code as keystrokes and presses Enter.
``WedgeBuffer`` tells it apart from a person at a keyboard by speed: a
scanner types each character within a few milliseconds of the last, a
person takes a hundred or more. The app feeds it from
``Window.on_textinput`` / ``on_key_down`` so a visitor checks in without
touching the screen. The tactile keypad (``kiosk/keypad.py``) shares those
events: its own key codes move the focus and its digits never reach the
buffer, so a scan never moves the focus and a person's keys are never a scan.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from hardware.serial_lines import SerialLines


class WedgeBuffer:
    """Collects fast keystrokes; Enter after a fast enough run gives a code."""

    def __init__(self, max_gap: float = 0.08, min_length: int = 4) -> None:
        self.max_gap, self.min_length = max_gap, min_length
        self.chars: list[str] = []
        self.last = 0.0

    def feed(self, text: str, at: float | None = None) -> None:
        now = time.monotonic() if at is None else at
        if self.chars and now - self.last > self.max_gap:
            self.chars = []  # too slow: a person typing, or the start of a new scan
        self.chars.extend(ch for ch in text if ch.isprintable())
        self.last = now

    def enter(self, at: float | None = None) -> str | None:
        now = time.monotonic() if at is None else at
        chars, self.chars = self.chars, []
        if len(chars) >= self.min_length and now - self.last <= self.max_gap:
            return "".join(chars)
        return None


class SerialScanner:
    """Reads one code per line from a serial scanner and calls ``on_code`` (on the reader thread).

    The reading and reopening is ``hardware/serial_lines.py``'s, shared with the staff button box."""

    def __init__(self, url: str, on_code: Callable[[str], None], *, baudrate: int = 9600,
                 reopen_after: float = 2.0, port: Any = None) -> None:
        self.url, self.on_code = url, on_code
        # port: an already open pyserial object (tests pass loop:// ports in)
        self.lines = SerialLines(url, self._line, what="scanner", baudrate=baudrate, reopen_every=reopen_after,
                                 port=port)

    @property
    def port(self) -> Any:
        """The open port, or None while the scanner is away."""
        return self.lines.port

    def start(self) -> SerialScanner:
        self.lines.start()
        return self

    def stop(self) -> None:
        self.lines.stop()

    def _line(self, raw: bytes) -> None:
        code = raw.decode("utf-8", "replace").strip()
        if code:
            self.on_code(code)
