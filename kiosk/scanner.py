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
touching the screen.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

log = logging.getLogger("vuoro.kiosk.scanner")


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
    """Reads one code per line from a serial scanner and calls ``on_code`` (on the reader thread)."""

    def __init__(self, url: str, on_code: Callable[[str], None], *, baudrate: int = 9600,
                 reopen_after: float = 2.0, port: Any = None) -> None:
        self.url, self.on_code, self.baudrate, self.reopen_after = url, on_code, baudrate, reopen_after
        self.port = port  # an already open pyserial object (tests pass loop:// ports in)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> SerialScanner:
        self._thread = threading.Thread(target=self._run, name="kiosk-scanner", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self.port is not None:
            with contextlib.suppress(Exception):
                self.port.cancel_read()
        if self._thread is not None:
            self._thread.join(timeout=2)
        if self.port is not None:
            with contextlib.suppress(Exception):
                self.port.close()

    def _open(self) -> Any:
        import serial

        return serial.serial_for_url(self.url, baudrate=self.baudrate, timeout=0.2)

    def _run(self) -> None:
        buffer = b""
        while not self._stop.is_set():
            if self.port is None:
                try:
                    self.port = self._open()
                except Exception as exc:  # unplugged: try again, a kiosk runs for months
                    log.warning("scanner %s not available: %s", self.url, exc)
                    self._stop.wait(self.reopen_after)
                    continue
            try:
                chunk = self.port.read(256)
            except Exception as exc:
                if self._stop.is_set():
                    return
                log.warning("scanner %s read failed: %s; reopening", self.url, exc)
                with contextlib.suppress(Exception):
                    self.port.close()
                self.port, buffer = None, b""
                continue
            if not chunk:
                continue
            buffer += chunk
            *lines, buffer = buffer.replace(b"\r\n", b"\n").replace(b"\r", b"\n").split(b"\n")
            for line in lines:
                code = line.decode("utf-8", "replace").strip()
                if code:
                    try:
                        self.on_code(code)
                    except Exception:
                        log.exception("scanner callback failed")
            if len(buffer) > 4096:  # garbage without line ends: do not grow forever
                buffer = b""
