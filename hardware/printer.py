"""The printer the kiosk talks to: print a receipt, get a result in words.

``Printer.print_receipt()`` never raises. It reads the printer's status
before printing (where the link is bidirectional: tcp, serial, usb, memory),
does not send when there is no paper / the cover is open / the printer is in
error, sends, reads the status again, and says what happened. The ticket is
already committed at the hub by then: a failed print only means the kiosk
shows the number on screen and staff get "kiosk 1: out of paper".
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from . import layout
from .connections import Connection, connect, split_url
from .health import QUERY_ALL, UNKNOWN, Health, parse
from .layout import DEFAULT_CODEPAGE, Paper
from .receipts import LANGUAGES, Receipt

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PrintResult:
    printed: bool
    reason: str | None  # plain words when not printed, e.g. "out of paper", "printer not reachable"
    state: str  # one of vuoro.protocol.PRINTER_STATES, the latest known
    detail: str  # plain words about the printer, e.g. "paper low"
    bytes_sent: int = 0
    seconds: float = 0.0  # from the call to the last byte handed to the connection

    @property
    def ok(self) -> bool:
        return self.printed


class Printer:
    """One printer behind any connection. Thread-safe; one job at a time."""

    def __init__(
        self,
        connection: Connection | str,
        *,
        paper: Paper | int = 80,
        codepage: str = DEFAULT_CODEPAGE,
        profile: str | None = None,
        logo: Path | None = None,
        status_timeout: float = 0.5,
        languages: Iterable[str] = LANGUAGES,
    ) -> None:
        """``languages``: the receipts' languages (default: every one Vuoro prints); a code page that cannot
        print their letters is refused here, at start, rather than printing "?" on every receipt."""
        problem = layout.codepage_problem(codepage, languages)
        if problem:
            raise ValueError(problem)
        self.connection = connect(connection) if isinstance(connection, str) else connection
        self.paper = paper if isinstance(paper, Paper) else Paper(int(paper))
        self.codepage, self.profile, self.logo = codepage, profile, logo
        self.status_timeout = status_timeout
        self.health: Health = UNKNOWN
        self._listeners: list[Callable[[Health], None]] = []
        self._lock = threading.Lock()
        self._logo_bytes: bytes | None = None

    @classmethod
    def from_url(cls, url: str, **kwargs: object) -> Printer:
        """``tcp://host:9100?paper=58&codepage=CP865&profile=TM-T20II`` → a Printer.

        ``paper``, ``codepage`` and ``profile`` are the printer's; every other
        query parameter goes to the connection (baudrate, timeout, ...).
        """
        _, q = split_url(url)
        options: dict[str, object] = {}
        if "paper" in q:
            options["paper"] = int(q["paper"])
        if "codepage" in q:
            options["codepage"] = q["codepage"].upper()
        if "profile" in q:
            options["profile"] = q["profile"]
        options.update(kwargs)
        return cls(connect(url), **options)  # type: ignore[arg-type]

    def on_health(self, listener: Callable[[Health], None]) -> None:
        """Call ``listener(health)`` after every status reading (the status publisher uses it)."""
        self._listeners.append(listener)

    # -- public, never raising ---------------------------------------------------
    def status(self) -> Health:
        with self._lock:
            return self._status()

    def print_receipt(self, receipt: Receipt) -> PrintResult:
        started = time.perf_counter()  # PrintResult.seconds counts the layout too
        try:
            data = layout.render(receipt, self.paper, codepage=self.codepage, profile=self.profile,
                                 logo=self._logo())
        except Exception as exc:  # a bug or bad data must not take the kiosk down
            log.exception("could not lay out %r", receipt)
            return PrintResult(False, f"receipt could not be laid out ({exc})", self.health.state, self.health.detail)
        return self.print_bytes(data, _started=started)

    def test_print(self) -> PrintResult:
        with self._lock:
            health = self._status()
        data = layout.test_page(self.paper, codepage=self.codepage, profile=self.profile, status=health.detail)
        return self.print_bytes(data)

    def print_bytes(self, data: bytes, *, _started: float | None = None) -> PrintResult:
        started = time.perf_counter() if _started is None else _started
        with self._lock:
            try:
                return self._print(data, started)
            except Exception as exc:  # never raise to the kiosk
                log.exception("printing failed")
                self.connection.close()
                return PrintResult(False, f"printing failed ({exc})", "error", str(exc))

    def close(self) -> None:
        with self._lock:
            self.connection.close()

    # -- internals ---------------------------------------------------------------
    def _logo(self) -> bytes | None:
        if self.logo is None:
            return None
        if self._logo_bytes is None:
            try:
                self._logo_bytes = layout.logo_bytes(self.logo, self.paper, Path.home() / ".cache" / "vuoro")
            except Exception:  # a broken logo file must not stop tickets
                log.exception("logo %s could not be converted; printing without it", self.logo)
                self.logo = None
                return None
        return self._logo_bytes

    def _set(self, health: Health) -> Health:
        self.health = health
        for listener in self._listeners:
            try:
                listener(health)
            except Exception:
                log.exception("printer health listener failed")
        return health

    def _query(self) -> Health:
        conn = self.connection
        conn.drain()
        conn.write(QUERY_ALL)
        return parse(conn.read(4, self.status_timeout))

    def _status(self) -> Health:
        """Open if needed and read the status; one reconnect on a dead link."""
        conn = self.connection
        for attempt in (1, 2):
            try:
                conn.ensure_open()
                if not conn.bidirectional:
                    return self._set(UNKNOWN)
                return self._set(self._query())
            except OSError as exc:
                conn.close()
                if attempt == 2:
                    log.warning("printer %s not reachable: %s", conn.url, exc)
                    return self._set(Health("offline", "printer not reachable"))
        raise AssertionError("unreachable")  # pragma: no cover

    def _print(self, data: bytes, started: float) -> PrintResult:
        conn = self.connection
        before = self._status()
        if not before.can_print:  # no paper, cover open, error, unreachable: send nothing
            return PrintResult(False, before.detail, before.state, before.detail, 0, time.perf_counter() - started)
        try:
            conn.write(data)
        except OSError as exc:
            conn.close()
            log.warning("printer %s: write failed: %s", conn.url, exc)
            if conn.bidirectional:
                health = self._set(Health("offline", "connection lost while printing"))
                return PrintResult(False, health.detail, health.state, health.detail, 0,
                                   time.perf_counter() - started)
            try:  # a device file that went away (printer re-plugged): reopen once, nothing was printed
                conn.open()
                conn.write(data)
            except OSError:
                conn.close()
                health = self._set(Health("offline", "printer not reachable"))
                return PrintResult(False, health.detail, health.state, health.detail, 0,
                                   time.perf_counter() - started)
        sent_at = time.perf_counter() - started
        if not conn.bidirectional:
            return PrintResult(True, None, "unknown", "sent; this connection cannot report the printer's status",
                               len(data), sent_at)
        try:
            after = self._set(self._query())
        except OSError:
            conn.close()
            after = self._set(Health("unknown", "no status after printing"))
        if after.state in ("paper_out", "cover_open", "error"):
            reason = f"{after.detail} while printing; the receipt may be incomplete"
            return PrintResult(False, reason, after.state, after.detail, len(data), sent_at)
        return PrintResult(True, None, after.state, after.detail, len(data), sent_at)


def open_printer(url: str, **kwargs: object) -> Printer:
    """The factory the kiosk calls with the URL from its config."""
    return Printer.from_url(url, **kwargs)
