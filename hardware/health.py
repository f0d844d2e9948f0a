"""Printer health from the real-time status command DLE EOT n (ESC/POS).

One query per n, each answered with one byte whose bits 0, 1, 4, 7 are
fixed (0, 1, 1, 0 → ``byte & 0x93 == 0x12``); a byte that does not match is
not a status answer. The printer answers these even while offline (paper
out, cover open), which is what makes them useful before a print.
"""

from __future__ import annotations

from dataclasses import dataclass

DLE_EOT = b"\x10\x04"
QUERIES = (1, 2, 3, 4)  # printer, offline cause, error cause, roll paper sensor
QUERY_ALL = b"".join(DLE_EOT + bytes([n]) for n in QUERIES)

# Bits per query, as in the Epson ESC/POS reference (TM-T20/T88 and clones).
PRINTER_OFFLINE = 0x08  # n=1
COVER_OPEN = 0x04  # n=2
FEED_BUTTON = 0x08  # n=2
STOPPED_PAPER_END = 0x20  # n=2
ERROR_OCCURRED = 0x40  # n=2
MECHANICAL_ERROR = 0x04  # n=3
AUTOCUTTER_ERROR = 0x08  # n=3
UNRECOVERABLE_ERROR = 0x20  # n=3
AUTO_RECOVERABLE_ERROR = 0x40  # n=3
PAPER_NEAR_END = 0x0C  # n=4 (bits 2 and 3)
PAPER_END = 0x60  # n=4 (bits 5 and 6)

# Plain words for staff and for PrintResult.reason, per vuoro.protocol.PRINTER_STATES.
WORDS = {
    "ok": "ready",
    "paper_low": "paper low",
    "paper_out": "out of paper",
    "cover_open": "cover open",
    "offline": "printer offline",
    "error": "printer error",
    "unknown": "status unknown",
}


def valid(byte: int) -> bool:
    return byte & 0x93 == 0x12


@dataclass(frozen=True)
class Health:
    """One reading of the printer. ``state`` is one of vuoro.protocol.PRINTER_STATES."""

    state: str
    detail: str  # plain words, e.g. "out of paper", "printer not reachable"
    raw: bytes = b""  # the four answer bytes, when there were any

    @property
    def can_print(self) -> bool:
        """Worth sending a receipt: ok, paper low, or a printer that cannot tell."""
        return self.state in ("ok", "paper_low", "unknown")


UNKNOWN = Health("unknown", "this connection cannot read the printer's status")
UNREACHABLE = Health("offline", "printer not reachable")


def parse(answers: bytes) -> Health:
    """Four answer bytes (to n = 1, 2, 3, 4, in order) → one Health."""
    if len(answers) < 4:
        return Health("unknown", "printer did not answer the status query", answers)
    printer, offline, error, paper = answers[:4]
    if not all(valid(b) for b in (printer, offline, error, paper)):
        return Health("unknown", "printer sent an unreadable status", answers)
    raw = bytes(answers[:4])
    if paper & PAPER_END or offline & STOPPED_PAPER_END:
        return Health("paper_out", WORDS["paper_out"], raw)
    if offline & COVER_OPEN:
        return Health("cover_open", WORDS["cover_open"], raw)
    if error & (UNRECOVERABLE_ERROR | AUTOCUTTER_ERROR | MECHANICAL_ERROR):
        what = "cutter jammed" if error & AUTOCUTTER_ERROR else "printer error"
        return Health("error", what, raw)
    if offline & ERROR_OCCURRED or error & AUTO_RECOVERABLE_ERROR:
        return Health("error", "printer error (head too hot or similar; usually clears itself)", raw)
    if printer & PRINTER_OFFLINE:
        why = "paper being fed" if offline & FEED_BUTTON else WORDS["offline"]
        return Health("offline", why, raw)
    if paper & PAPER_NEAR_END:
        return Health("paper_low", WORDS["paper_low"], raw)
    return Health("ok", WORDS["ok"], raw)


def answers_for(*, paper: str = "ok", cover_open: bool = False, error: bool = False) -> bytes:
    """The four answer bytes a printer in this condition sends (the virtual printer uses it)."""
    offline = paper == "out" or cover_open or error
    b1 = 0x12 | (PRINTER_OFFLINE if offline else 0)
    b2 = 0x12 | (COVER_OPEN if cover_open else 0) | (STOPPED_PAPER_END if paper == "out" else 0)
    b2 |= ERROR_OCCURRED if error else 0
    b3 = 0x12 | (UNRECOVERABLE_ERROR if error else 0)
    b4 = 0x12 | {"ok": 0, "near_end": PAPER_NEAR_END, "out": PAPER_NEAR_END | PAPER_END}[paper]
    return bytes([b1, b2, b3, b4])
