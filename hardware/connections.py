"""One small class per way of reaching a printer, all with the same face.

``connect(url)`` picks the class from a URL string set in the site or kiosk
config::

    tcp://10.0.0.40:9100               raw TCP ("port 9100", JetDirect)
    serial:///dev/ttyUSB0?baudrate=19200&rtscts=1
    usb://04b8:0e15                    vendor:product (pyusb; needs a udev rule)
    file:///dev/usb/lp0                a character device (write only)
    cups://QueueName                   a raw CUPS queue, via `lp -o raw` (write only)
    memory://?paper=near_end           in-process, for tests (answers status)

Every connection raises ``OSError`` (usually ``ConnectionError``) when the
printer cannot be reached; ``hardware.printer.Printer`` turns that into a
result in words. TCP and serial are our own code rather than python-escpos's
``Network``/``Serial``: ``Network`` opens lazily, asserts on every write
after a failed open and never reconnects, and the library's
``query_status()`` sleeps a full second per query.
"""

from __future__ import annotations

import contextlib
import select
import shutil
import socket
import subprocess
import time
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

SCHEMES = ("tcp", "serial", "usb", "file", "cups", "memory")


class Connection:
    """Bytes to a printer and, where the link allows, bytes back."""

    bidirectional = False

    def __init__(self, url: str) -> None:
        self.url = url

    @property
    def is_open(self) -> bool:  # pragma: no cover - every subclass overrides
        raise NotImplementedError

    def open(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def write(self, data: bytes) -> None:
        raise NotImplementedError

    def read(self, n: int, timeout: float) -> bytes:
        """Up to ``n`` bytes, waiting at most ``timeout`` seconds in all. Raises on a closed link."""
        raise OSError("this connection cannot read from the printer")

    def drain(self) -> None:
        """Forget bytes already waiting (a late answer to an earlier query)."""

    def ensure_open(self) -> None:
        if not self.is_open:
            self.open()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r})"


class TcpConnection(Connection):
    bidirectional = True

    def __init__(self, url: str, host: str, port: int = 9100, timeout: float = 3.0) -> None:
        super().__init__(url)
        self.host, self.port, self.timeout = host, port, timeout
        self.sock: socket.socket | None = None

    @property
    def is_open(self) -> bool:
        return self.sock is not None

    def open(self) -> None:
        self.close()
        sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # status queries are 12 bytes
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        self.sock = sock

    def close(self) -> None:
        if self.sock is not None:
            with contextlib.suppress(OSError):
                self.sock.close()
            self.sock = None

    def ensure_open(self) -> None:
        # Many printers close an idle port-9100 connection; a write to it
        # would "succeed" into the void, so look for the EOF first.
        if self.sock is not None:
            try:
                readable, _, _ = select.select([self.sock], [], [], 0)
                if readable and self.sock.recv(1, socket.MSG_PEEK) == b"":
                    self.close()
            except OSError:
                self.close()
        if self.sock is None:
            self.open()

    def write(self, data: bytes) -> None:
        if self.sock is None:
            raise ConnectionError("not connected")
        self.sock.sendall(data)

    def read(self, n: int, timeout: float) -> bytes:
        if self.sock is None:
            raise ConnectionError("not connected")
        deadline = time.monotonic() + timeout
        out = b""
        while len(out) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            readable, _, _ = select.select([self.sock], [], [], left)
            if not readable:
                break
            chunk = self.sock.recv(n - len(out))
            if not chunk:
                self.close()
                raise ConnectionError("the printer closed the connection")
            out += chunk
        return out

    def drain(self) -> None:
        if self.sock is None:
            return
        while select.select([self.sock], [], [], 0)[0]:
            if not self.sock.recv(256):
                self.close()
                raise ConnectionError("the printer closed the connection")


class SerialConnection(Connection):
    bidirectional = True

    def __init__(self, url: str, port: str, baudrate: int = 19200, rtscts: bool = False,
                 dsrdtr: bool = False, timeout: float = 3.0) -> None:
        super().__init__(url)
        self.port, self.baudrate, self.rtscts, self.dsrdtr, self.timeout = port, baudrate, rtscts, dsrdtr, timeout
        self.serial: Any = None

    @property
    def is_open(self) -> bool:
        return self.serial is not None and self.serial.is_open

    def open(self) -> None:
        import serial  # pyserial: only a serial kiosk needs it

        self.close()
        try:
            self.serial = serial.Serial(self.port, self.baudrate, timeout=0, write_timeout=self.timeout,
                                        rtscts=self.rtscts, dsrdtr=self.dsrdtr)
        except serial.SerialException as exc:
            raise ConnectionError(str(exc)) from None

    def close(self) -> None:
        if self.serial is not None:
            with contextlib.suppress(Exception):
                self.serial.close()
            self.serial = None

    def write(self, data: bytes) -> None:
        import serial

        if not self.is_open:
            raise ConnectionError("not connected")
        try:
            self.serial.write(data)
            self.serial.flush()
        except serial.SerialException as exc:  # includes write timeouts (printer holding RTS)
            self.close()
            raise ConnectionError(str(exc)) from None

    def read(self, n: int, timeout: float) -> bytes:
        import serial

        if not self.is_open:
            raise ConnectionError("not connected")
        self.serial.timeout = timeout
        try:
            return bytes(self.serial.read(n))
        except serial.SerialException as exc:
            self.close()
            raise ConnectionError(str(exc)) from None

    def drain(self) -> None:
        if self.is_open:
            self.serial.reset_input_buffer()


class UsbConnection(Connection):
    """A USB printer through pyusb (python-escpos's ``Usb``), with reconnect."""

    bidirectional = True

    def __init__(self, url: str, vendor: int, product: int, timeout: float = 3.0) -> None:
        super().__init__(url)
        self.vendor, self.product, self.timeout = vendor, product, timeout
        self.usb: Any = None

    @property
    def is_open(self) -> bool:
        return self.usb is not None

    def open(self) -> None:
        from ._escpos import DeviceNotFoundError, Usb

        self.close()
        usb = Usb(self.vendor, self.product, timeout=int(self.timeout * 1000))
        try:
            usb.open(raise_not_found=True)
        except DeviceNotFoundError as exc:
            raise ConnectionError(f"USB printer {self.vendor:04x}:{self.product:04x} not found ({exc})") from None
        except Exception as exc:  # pyusb: permissions (udev), no backend (libusb)
            raise ConnectionError(f"USB printer {self.vendor:04x}:{self.product:04x}: {exc}") from None
        self.usb = usb

    def close(self) -> None:
        if self.usb is not None:
            with contextlib.suppress(Exception):
                self.usb.close()
            self.usb = None

    def write(self, data: bytes) -> None:
        if self.usb is None:
            raise ConnectionError("not connected")
        try:
            self.usb._raw(data)
        except Exception as exc:  # usb.core.USBError: unplugged, timeout
            self.close()
            raise ConnectionError(str(exc)) from None

    def read(self, n: int, timeout: float) -> bytes:
        if self.usb is None:
            raise ConnectionError("not connected")
        try:
            return bytes(self.usb.device.read(self.usb.in_ep, max(n, 16), int(timeout * 1000)))[:n]
        except Exception as exc:
            if "timed out" in str(exc).lower() or "timeout" in type(exc).__name__.lower():
                return b""
            self.close()
            raise ConnectionError(str(exc)) from None


class FileConnection(Connection):
    """A device file such as /dev/usb/lp0: write only, reopened after an error."""

    def __init__(self, url: str, path: str) -> None:
        super().__init__(url)
        self.path = path
        self.file: Any = None

    @property
    def is_open(self) -> bool:
        return self.file is not None

    def open(self) -> None:
        self.close()
        self.file = open(self.path, "ab", buffering=0)  # noqa: SIM115 - held open between receipts

    def close(self) -> None:
        if self.file is not None:
            with contextlib.suppress(OSError):
                self.file.close()
            self.file = None

    def write(self, data: bytes) -> None:
        if self.file is None:
            raise ConnectionError("not open")
        try:
            self.file.write(data)
        except OSError:
            self.close()
            raise


class CupsConnection(Connection):
    """A raw CUPS queue; one ``lp`` job per receipt. No status (CUPS does not relay DLE EOT)."""

    def __init__(self, url: str, queue: str, timeout: float = 10.0) -> None:
        super().__init__(url)
        self.queue, self.timeout = queue, timeout
        self._ready = False

    @property
    def is_open(self) -> bool:
        return self._ready

    def open(self) -> None:
        if shutil.which("lp") is None:
            raise ConnectionError("the CUPS client 'lp' is not installed (apt install cups-client)")
        self._ready = True

    def close(self) -> None:
        self._ready = False

    def write(self, data: bytes) -> None:
        try:
            done = subprocess.run(["lp", "-d", self.queue, "-o", "raw", "-s"], input=data, capture_output=True,
                                  timeout=self.timeout, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise ConnectionError(f"lp failed: {exc}") from None
        if done.returncode != 0:
            raise ConnectionError(done.stderr.decode(errors="replace").strip() or f"lp exited {done.returncode}")


class MemoryConnection(Connection):
    """In-process printer for tests: keeps the bytes and answers status like a real one."""

    bidirectional = True

    def __init__(self, url: str = "memory://", paper: str = "ok", reachable: bool = True) -> None:
        super().__init__(url)
        from .emulator import Emulator

        self.emulator = Emulator()
        self.emulator.set_paper(paper)
        self.reachable = reachable
        self._open = False
        self._replies = b""

    @property
    def written(self) -> bytes:
        return bytes(self.emulator.received)

    @property
    def is_open(self) -> bool:
        return self._open

    def open(self) -> None:
        if not self.reachable:
            raise ConnectionError("memory printer set unreachable")
        self._open = True

    def close(self) -> None:
        self._open = False

    def write(self, data: bytes) -> None:
        if not (self._open and self.reachable):
            self._open = False
            raise ConnectionError("memory printer set unreachable")
        self._replies += self.emulator.feed(data)

    def read(self, n: int, timeout: float) -> bytes:
        out, self._replies = self._replies[:n], self._replies[n:]
        return out

    def drain(self) -> None:
        self._replies = b""


def _flag(value: str) -> bool:
    return value.lower() in ("1", "true", "yes", "on")


def split_url(url: str) -> tuple[str, dict[str, str]]:
    """The URL without its query, and the query as a dict (last value wins)."""
    parts = urlsplit(url)
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    return parts._replace(query="").geturl(), query


def connect(url: str) -> Connection:
    """A (not yet opened) connection for ``url``. Raises ValueError for a malformed URL."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    _, q = split_url(url)
    timeout = float(q.get("timeout", 3.0))
    if scheme == "tcp":
        if not parts.hostname:
            raise ValueError(f"{url!r}: expected tcp://HOST[:PORT]")
        return TcpConnection(url, parts.hostname, parts.port or 9100, timeout)
    if scheme == "serial":
        path = unquote(parts.path) or unquote(parts.netloc)
        if not path:
            raise ValueError(f"{url!r}: expected serial:///dev/ttyUSB0")
        return SerialConnection(url, path, int(q.get("baudrate", 19200)), _flag(q.get("rtscts", "0")),
                                _flag(q.get("dsrdtr", "0")), timeout)
    if scheme == "usb":
        ids = (parts.netloc or parts.path.strip("/")).split(":")
        if len(ids) != 2:
            raise ValueError(f"{url!r}: expected usb://VENDOR:PRODUCT in hex, e.g. usb://04b8:0e15")
        return UsbConnection(url, int(ids[0], 16), int(ids[1], 16), timeout)
    if scheme == "file":
        path = unquote(parts.path)
        if not path:
            raise ValueError(f"{url!r}: expected file:///dev/usb/lp0")
        return FileConnection(url, path)
    if scheme == "cups":
        queue = unquote(parts.netloc or parts.path.strip("/"))
        if not queue:
            raise ValueError(f"{url!r}: expected cups://QUEUE")
        return CupsConnection(url, queue, max(timeout, 10.0))
    if scheme == "memory":
        return MemoryConnection(url, q.get("status", "ok"), not _flag(q.get("unreachable", "0")))
    raise ValueError(f"{url!r}: unknown printer scheme {scheme!r}; use one of {', '.join(SCHEMES)}")
