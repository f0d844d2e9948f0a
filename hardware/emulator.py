"""An ESC/POS interpreter: what a receipt printer would do with our bytes.

Used by the virtual printer (TCP), by ``memory://`` connections and by the
tests (e.g. on the master end of a pseudo-terminal). It understands the
commands python-escpos emits for text, native QR/barcodes, raster images and
cuts, answers the real-time status query DLE EOT n, and can run out of paper
after a given number of bytes, as a printer does mid-receipt.

Printer-wide state (paper, cover, finished receipts) lives in ``Emulator``;
each connection parses its own byte stream in a ``Session`` so two clients
never garble each other's commands.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from .health import answers_for

CODEPAGES = {0: "cp437", 2: "cp850", 3: "cp860", 4: "cp863", 5: "cp865", 16: "cp1252", 17: "cp866",
             18: "cp852", 19: "cp858"}
QR_EC = {48: "L", 49: "M", 50: "Q", 51: "H"}
PAPER_STATES = ("ok", "near_end", "out")


@dataclass
class Segment:
    text: str
    width: int = 1  # character size multipliers (GS ! / ESC !)
    height: int = 1
    bold: bool = False


@dataclass
class TextLine:
    align: str
    segments: list[Segment] = field(default_factory=list)

    @property
    def text(self) -> str:
        return "".join(s.text for s in self.segments)


@dataclass
class Feed:
    lines: int


@dataclass
class QRCode:
    data: bytes
    module: int
    ec: str
    align: str


@dataclass
class Barcode:
    kind: int  # the GS k m value (73 = CODE128)
    data: str  # without CODE128 code-set selectors
    height: int
    module: int
    hri: int  # 0 none, 1 above, 2 below, 3 both
    align: str
    printed: bool = True  # False: wider than the paper, which a printer (Epson's GS k) silently skips


@dataclass
class Raster:
    width_bytes: int
    height: int
    bits: bytes
    align: str


Element = TextLine | Feed | QRCode | Barcode | Raster


@dataclass
class PrintedReceipt:
    """One receipt as it came out of the printer (up to the cut, or to the end of the paper)."""

    index: int
    raw: bytes  # the bytes that made it, status queries excluded
    elements: list[Element]
    complete: bool  # False: the paper ran out before the cut
    width_mm: int = 80
    png: object = None  # a pathlib.Path once the virtual printer has drawn it

    @property
    def lines(self) -> list[str]:
        out: list[str] = []
        for el in self.elements:
            if isinstance(el, TextLine):
                out.append(el.text)
            elif isinstance(el, QRCode):
                out.append("[QR] " + el.data.decode("utf-8", "replace"))
            elif isinstance(el, Barcode):
                out.append(("[BARCODE] " if el.printed else "[BARCODE NOT PRINTED: wider than the paper] ")
                           + el.data)
        return out

    @property
    def text(self) -> str:
        return "\n".join(self.lines).strip("\n")

    @property
    def qr(self) -> list[str]:
        return [el.data.decode("utf-8", "replace") for el in self.elements if isinstance(el, QRCode)]

    @property
    def barcodes(self) -> list[str]:
        return [el.data for el in self.elements if isinstance(el, Barcode) and el.printed]


class Incomplete(Exception):
    """The command is not all here yet: wait for more bytes."""


class Session:
    """Parses one connection's stream; the page being printed belongs to the printer."""

    def __init__(self, printer: Emulator) -> None:
        self.printer = printer
        self.buf = bytearray()

    def feed(self, data: bytes) -> bytes:
        """Take bytes from the host; return the bytes the printer sends back (status answers)."""
        replies = bytearray()
        with self.printer.lock:
            self.printer.received += data
            self.buf += data
            pos = 0
            while pos < len(self.buf):
                try:
                    used, reply = self.printer._command(self.buf, pos)
                except Incomplete:
                    break
                replies += reply
                pos += used
            del self.buf[:pos]
        return bytes(replies)


class Emulator:
    def __init__(self, width_mm: int = 80, on_receipt: Callable[[PrintedReceipt], None] | None = None) -> None:
        self.width_mm = width_mm
        self.columns = 48 if width_mm == 80 else 32
        self.on_receipt = on_receipt
        self.lock = threading.RLock()
        self.received = bytearray()
        self.receipts: list[PrintedReceipt] = []
        self.dropped = 0  # print bytes that arrived with no paper (or the cover open)
        self.paper = "ok"
        self.cover_open = False
        self.error = False
        self.paper_out_after: int | None = None  # run out after this many more print bytes
        self._default = Session(self)
        self._reset()
        self._page_raw = bytearray()
        self._elements: list[Element] = []
        self._line: TextLine | None = None
        self._used = 0  # columns used on the current line

    # -- control from tests, the CLI and the demo ----------------------------
    def set_paper(self, state: str) -> None:
        if state not in PAPER_STATES:
            raise ValueError(f"paper state must be one of {', '.join(PAPER_STATES)}")
        with self.lock:
            self.paper = state

    def set_cover(self, is_open: bool) -> None:
        with self.lock:
            self.cover_open = is_open

    def run_out_after(self, n_bytes: int | None) -> None:
        """Paper runs out once ``n_bytes`` more print bytes have arrived (mid-receipt)."""
        with self.lock:
            self.paper_out_after = n_bytes

    def status_bytes(self) -> bytes:
        return answers_for(paper=self.paper, cover_open=self.cover_open, error=self.error)

    def feed(self, data: bytes) -> bytes:
        return self._default.feed(data)

    def session(self) -> Session:
        return Session(self)

    # -- interpreter -----------------------------------------------------------
    def _reset(self) -> None:
        self.align, self.bold, self.width, self.height, self.codepage = "left", False, 1, 1, 0
        self.qr_module, self.qr_ec, self.qr_data = 3, "L", b""
        self.bc_height, self.bc_module, self.bc_hri = 162, 3, 0

    @property
    def printing(self) -> bool:
        return self.paper != "out" and not self.cover_open

    def _command(self, buf: bytearray, pos: int) -> tuple[int, bytes]:
        """Interpret the command at ``pos``: (bytes used, reply)."""
        b = buf[pos]
        if b == 0x10:  # DLE: real-time commands, answered even without paper
            n = _need(buf, pos, 3)
            if buf[pos + 1] == 0x04:
                which = n[2]
                if 1 <= which <= 4:
                    return 3, self.status_bytes()[which - 1 : which]
                return 3, b""
            if buf[pos + 1] == 0x14:
                _need(buf, pos, 5)
                return 5, b""
            return 1, b""
        used = _length(buf, pos)
        chunk = bytes(buf[pos : pos + used])
        if not self.printing:
            self.dropped += used
            return used, b""
        if self.paper_out_after is not None:
            if used > self.paper_out_after:
                self.dropped += used
                self._run_out()
                return used, b""
            self.paper_out_after -= used
        self._page_raw += chunk
        self._apply(chunk)
        return used, b""

    def _run_out(self) -> None:
        self.paper = "out"
        self.paper_out_after = None
        if self._page_raw:
            self._finish(complete=False)

    def _apply(self, c: bytes) -> None:
        b = c[0]
        if b == 0x0A:
            self._newline()
        elif b >= 0x20:
            self._text(c.decode(CODEPAGES.get(self.codepage, "cp437"), "replace"))
        elif b == 0x1B:
            self._esc(c)
        elif b == 0x1D:
            self._gs(c)

    def _esc(self, c: bytes) -> None:
        op = c[1:2]
        arg = c[2] if len(c) > 2 else 0
        if op == b"@":
            self._reset()
        elif op == b"t":
            self.codepage = arg
        elif op == b"a":
            self.align = {0: "left", 1: "center", 2: "right"}.get(arg % 48, "left")
        elif op in (b"E", b"G"):
            self.bold = bool(arg & 1)
        elif op == b"!":
            self.bold = bool(arg & 0x08)
            self.height = 2 if arg & 0x10 else 1
            self.width = 2 if arg & 0x20 else 1
        elif op == b"d":
            self._flush_line()
            self._elements.append(Feed(arg))

    def _gs(self, c: bytes) -> None:
        op = c[1:2]
        if op == b"!":
            self.width, self.height = (c[2] >> 4) + 1, (c[2] & 0x0F) + 1
        elif op == b"V":
            self._flush_line()
            self._finish(complete=True)
        elif op == b"(" and c[2:3] == b"k":
            fn, body = c[6], c[7:]
            if fn == 67:
                self.qr_module = body[0]
            elif fn == 69:
                self.qr_ec = QR_EC.get(body[0], "L")
            elif fn == 80:
                self.qr_data = bytes(body[1:])
            elif fn == 81:
                self._flush_line()
                self._elements.append(QRCode(self.qr_data, self.qr_module, self.qr_ec, self.align))
        elif op == b"h":
            self.bc_height = c[2]
        elif op == b"w":
            self.bc_module = c[2]
        elif op == b"H":
            self.bc_hri = c[2] % 48
        elif op == b"k":
            kind = c[2]
            data = c[3:-1] if kind <= 6 else c[4:]
            text = data.decode("ascii", "replace")
            fits = True
            if kind == 73:  # CODE128: drop code-set selectors ({A {B {C), keep a literal {{ as {
                text = text.replace("{A", "").replace("{B", "").replace("{C", "").replace("{{", "{")
                # 11 modules a symbol (each selector, each character, the check), 13 for the stop
                symbols = len(data) - len(text)  # ~ one per selector ({B: 2 bytes, 1 symbol)
                modules = 11 * (len(text) + max(1, symbols // 2) + 1) + 13
                fits = modules * self.bc_module <= (576 if self.width_mm == 80 else 384)
            self._flush_line()
            self._elements.append(Barcode(kind, text, self.bc_height, self.bc_module, self.bc_hri, self.align,
                                          fits))
        elif op == b"v":
            xb, h = c[4] + 256 * c[5], c[6] + 256 * c[7]
            self._flush_line()
            self._elements.append(Raster(xb, h, bytes(c[8:]), self.align))

    def _text(self, text: str) -> None:
        for char in text:
            if self._line is None:
                self._line = TextLine(self.align)
            if self._used + self.width > self.columns:  # the printer wraps where the line is full
                self._newline()
                self._line = TextLine(self.align)
            seg = self._line.segments[-1] if self._line.segments else None
            if seg and (seg.width, seg.height, seg.bold) == (self.width, self.height, self.bold):
                seg.text += char
            else:
                self._line.segments.append(Segment(char, self.width, self.height, self.bold))
            self._used += self.width

    def _newline(self) -> None:
        line = self._line or TextLine(self.align, [Segment("", self.width, self.height, self.bold)])
        self._elements.append(line)
        self._line, self._used = None, 0

    def _flush_line(self) -> None:
        if self._line is not None:
            self._newline()

    def _finish(self, complete: bool) -> None:
        self._flush_line()
        receipt = PrintedReceipt(len(self.receipts) + 1, bytes(self._page_raw), self._elements, complete,
                                 self.width_mm)
        self.receipts.append(receipt)
        self._page_raw, self._elements = bytearray(), []
        if self.on_receipt is not None:
            self.on_receipt(receipt)


def _need(buf: bytearray, pos: int, n: int) -> bytearray:
    if pos + n > len(buf):
        raise Incomplete
    return buf[pos : pos + n]


def _through_nul(buf: bytearray, pos: int, start: int) -> int:
    """The length of a command at ``pos`` that ends with a NUL found from ``pos + start`` on."""
    end = buf.find(b"\x00", pos + start)
    if end < 0:
        raise Incomplete
    return end - pos + 1


def _length(buf: bytearray, pos: int) -> int:
    """The length of the (non-real-time) command at ``pos``; raises Incomplete if cut short."""
    b = buf[pos]
    if b >= 0x20:  # a run of printable bytes
        end = pos
        while end < len(buf) and buf[end] >= 0x20:
            end += 1
        return end - pos
    if b == 0x1B:
        op = _need(buf, pos, 2)[1]
        if op in b"@2<":
            return 2
        if op in b"p":
            return 5
        if op in b"$\\":
            return 4
        if op == ord("*"):
            head = _need(buf, pos, 5)
            dots = head[3] + 256 * head[4]
            n = 5 + (dots if head[2] in (0, 1) else 3 * dots)
            _need(buf, pos, n)
            return n
        if op == ord("D"):  # tab stops, NUL-terminated
            return _through_nul(buf, pos, 2)
        if op == ord("c"):
            _need(buf, pos, 4)
            return 4
        _need(buf, pos, 3)
        return 3  # ESC x n
    if b == 0x1D:
        op = _need(buf, pos, 2)[1]
        if op in b"(8" and op == ord("("):
            head = _need(buf, pos, 5)
            n = 5 + head[3] + 256 * head[4]
            _need(buf, pos, n)
            return n
        if op == ord("8"):  # GS 8 L p1 p2 p3 p4 ...: large graphics data
            head = _need(buf, pos, 7)
            n = 7 + head[3] + (head[4] << 8) + (head[5] << 16) + (head[6] << 24)
            _need(buf, pos, n)
            return n
        if op == ord("V"):
            m = _need(buf, pos, 3)[2]
            n = 3 if m in (0, 1, 48, 49) else 4
            _need(buf, pos, n)
            return n
        if op == ord("k"):
            m = _need(buf, pos, 3)[2]
            if m <= 6:  # a barcode's data, NUL-terminated
                return _through_nul(buf, pos, 3)
            n = 4 + _need(buf, pos, 4)[3]
            _need(buf, pos, n)
            return n
        if op == ord("v"):
            head = _need(buf, pos, 8)
            n = 8 + (head[4] + 256 * head[5]) * (head[6] + 256 * head[7])
            _need(buf, pos, n)
            return n
        if op in b"LWP":
            _need(buf, pos, 4)
            return 4
        _need(buf, pos, 3)
        return 3  # GS x n
    if b == 0x1C:
        op = _need(buf, pos, 2)[1]
        if op == ord("p"):
            _need(buf, pos, 4)
            return 4
        if op in b".&":
            return 2
        _need(buf, pos, 3)
        return 3
    return 1  # LF, CR, HT and other single control bytes
