"""A virtual network receipt printer (raw TCP, "port 9100").

Accepts the ESC/POS we emit on any number of connections, several receipts
per connection, answers DLE EOT status queries, splits receipts at the cut,
and keeps each as decoded text, raw bytes and (with ``out``) a PNG drawn as
it would look on paper. Usable in-process (tests, demo) and as
``vuoro printer virtual``.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import socket
import threading
from pathlib import Path

from .emulator import Emulator, PrintedReceipt

log = logging.getLogger(__name__)


class VirtualPrinter:
    def __init__(self, port: int = 0, *, host: str = "127.0.0.1", out: Path | None = None, width: int = 80,
                 render: bool = True) -> None:
        if width not in (80, 58):
            raise ValueError("width must be 80 or 58")
        self.host, self.out, self.width = host, Path(out) if out else None, width
        self.render = render and self.out is not None
        self.emulator = Emulator(width, on_receipt=self._on_receipt)
        self._requested_port = port
        self._server: socket.socket | None = None
        self._threads: list[threading.Thread] = []
        self._conns: set[socket.socket] = set()
        self._done = threading.Condition()
        self._ready = 0  # receipts fully processed (written to disk when out is set)
        self._jobs: queue.Queue[PrintedReceipt | None] = queue.Queue()
        self._stopping = threading.Event()
        self.port = 0

    # -- lifecycle -------------------------------------------------------------
    def start(self) -> VirtualPrinter:
        server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind((self.host, self._requested_port))
        server.listen(8)
        self._server, self.port = server, server.getsockname()[1]
        if self.out:
            self.out.mkdir(parents=True, exist_ok=True)
        for target in (self._accept_loop, self._writer_loop):
            thread = threading.Thread(target=target, name=f"virtual-printer-{target.__name__}", daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._server is not None:
            with contextlib.suppress(OSError):
                self._server.shutdown(socket.SHUT_RDWR)
            self._server.close()
        for conn in list(self._conns):
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        self._jobs.put(None)
        for thread in self._threads:
            thread.join(timeout=5)

    def __enter__(self) -> VirtualPrinter:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return f"tcp://{self.host}:{self.port}"

    # -- control -----------------------------------------------------------------
    @property
    def receipts(self) -> list[PrintedReceipt]:
        with self._done:
            return list(self.emulator.receipts[: self._ready])

    def wait_for(self, n: int, timeout: float = 5.0) -> list[PrintedReceipt]:
        """Block until ``n`` receipts are out (and drawn, with ``out``); raise TimeoutError otherwise."""
        with self._done:
            if not self._done.wait_for(lambda: self._ready >= n, timeout):
                raise TimeoutError(f"{self._ready} of {n} receipts after {timeout} s")
            return list(self.emulator.receipts[: self._ready])

    def set_paper(self, state: str) -> None:
        """"ok", "near_end" or "out": what the paper sensor reports from now on."""
        self.emulator.set_paper(state)

    def set_cover(self, is_open: bool) -> None:
        self.emulator.set_cover(is_open)

    def run_out_after(self, n_bytes: int | None) -> None:
        """Paper runs out after ``n_bytes`` more print bytes: the rest of that receipt is lost."""
        self.emulator.run_out_after(n_bytes)

    def drop_connections(self) -> None:
        """Close every client connection, as a printer does after an idle timeout or a restart."""
        for conn in list(self._conns):
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)

    @property
    def raw(self) -> bytes:
        with self.emulator.lock:
            return bytes(self.emulator.received)

    # -- threads -----------------------------------------------------------------
    def _accept_loop(self) -> None:
        assert self._server is not None
        while not self._stopping.is_set():
            try:
                conn, _ = self._server.accept()
            except OSError:
                return
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._conns.add(conn)
            thread = threading.Thread(target=self._serve, args=(conn,), name="virtual-printer-conn", daemon=True)
            thread.start()

    def _serve(self, conn: socket.socket) -> None:
        session = self.emulator.session()
        try:
            while True:
                data = conn.recv(65536)
                if not data:
                    return
                reply = session.feed(data)
                if reply:
                    conn.sendall(reply)
        except OSError:
            return
        finally:
            self._conns.discard(conn)
            conn.close()

    def _on_receipt(self, receipt: PrintedReceipt) -> None:
        self._jobs.put(receipt)  # drawing takes milliseconds: keep it off the connection thread

    def _writer_loop(self) -> None:
        while (receipt := self._jobs.get()) is not None:
            if self.out is not None:
                try:
                    stem = self.out / f"receipt-{receipt.index:04d}"
                    stem.with_suffix(".bin").write_bytes(receipt.raw)
                    stem.with_suffix(".txt").write_text(receipt.text + "\n", encoding="utf-8")
                    if self.render:
                        from .paper_image import save

                        receipt.png = save(receipt, stem.with_suffix(".png"))
                except Exception:
                    log.exception("could not write receipt %d", receipt.index)
            with self._done:
                self._ready += 1
                self._done.notify_all()
