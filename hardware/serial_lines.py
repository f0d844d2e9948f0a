"""Lines from a serial device, on a thread of their own, with the port reopened whenever it goes away.

A staff button box (``hardware/buttons.py``) and a kiosk's barcode scanner
(``kiosk/scanner.py``) both sit on a USB serial port that a person can pull
out and plug back in; both must simply carry on. This is the one loop that
opens the port (any pyserial URL: ``/dev/ttyACM0``, a udev name, ``loop://``,
a pty), reads lines ending in LF, CR LF or CR, hands each to ``on_line``,
and when the port fails closes it and tries again every ``reopen_every``
seconds, saying so once per outage in the log.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)


class SerialLines:
    """``start()`` reads on a thread; ``write()`` sends while the port is open; ``stop()`` ends it.

    ``connected`` is set while the port is open; ``opened`` counts the openings (a reconnect makes it
    2). ``port`` is the open pyserial object, or None; one may be handed in already open (tests).
    Lines longer than ``max_line`` are noise and dropped, so the buffer never grows without bound.
    """

    def __init__(self, url: str, on_line: Callable[[bytes], None], *, what: str, baudrate: int = 9600,
                 reopen_every: float = 1.0, max_line: int = 4096, write_timeout: float | None = None,
                 port: Any = None) -> None:
        self.url, self.on_line, self.what = url, on_line, what
        self.baudrate, self.reopen_every, self.max_line = baudrate, reopen_every, max_line
        self.write_timeout = write_timeout
        self.port = port
        self.connected = threading.Event()
        self.opened = 0
        self._write_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> SerialLines:
        self._thread = threading.Thread(target=self._run, name=f"serial {self.url}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        port = self.port
        if port is not None:
            with contextlib.suppress(Exception):
                port.cancel_read()
        if self._thread is not None:
            self._thread.join(timeout=2)
        self._close()

    def write(self, data: bytes) -> bool:
        """Send bytes if the port is open; False (and a log line) when they could not be sent."""
        with self._write_lock:
            if self.port is None or not self.connected.is_set():
                return False
            try:
                self.port.write(data)
                return True
            except Exception as exc:  # pyserial's SerialException, OSError, a write timeout
                log.warning("%s %s: could not write (%s)", self.what, self.url, exc)
                return False

    def _open(self) -> Any:
        import serial  # pyserial: only a device with a serial port needs it

        return serial.serial_for_url(self.url, baudrate=self.baudrate, timeout=0.2, write_timeout=self.write_timeout)

    def _close(self) -> None:
        self.connected.clear()
        with self._write_lock:
            port, self.port = self.port, None
        if port is not None:
            with contextlib.suppress(Exception):
                port.close()

    def _run(self) -> None:
        away = False  # said so in the log already, for this outage
        while not self._stop.is_set():
            if self.port is None:
                try:
                    port = self._open()
                except Exception as exc:  # not there (unplugged, no permission): try again, a device runs for months
                    if not away:
                        log.warning("%s %s not there (%s); trying every %g s", self.what, self.url, exc,
                                    self.reopen_every)
                        away = True
                    self._stop.wait(self.reopen_every)
                    continue
                with self._write_lock:
                    self.port = port
            away = False
            self.opened += 1
            self.connected.set()
            log.info("%s on %s", self.what, self.url)
            try:
                self._read(self.port)
            except Exception as exc:
                if self._stop.is_set():
                    return
                log.warning("%s %s lost (%s); reopening", self.what, self.url, exc)
                away = True
            self._close()
            self._stop.wait(self.reopen_every)

    def _read(self, port: Any) -> None:
        buffer = b""
        while not self._stop.is_set():
            chunk = port.read(256)
            if not chunk:
                continue
            buffer += chunk
            *lines, buffer = buffer.replace(b"\r\n", b"\n").replace(b"\r", b"\n").split(b"\n")
            for line in lines:
                try:
                    self.on_line(line)
                except Exception:
                    log.exception("%s %s: a line could not be handled", self.what, self.url)
            if len(buffer) > self.max_line:  # noise without line ends
                buffer = b""
