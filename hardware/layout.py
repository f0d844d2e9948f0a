"""Receipt layouts → ESC/POS bytes (text, native QR and barcode commands only).

The bytes are built with python-escpos's ``Dummy`` printer so the command
encoding is the library's, but three things are decided here on purpose:

* the code page is set explicitly (default CP858 = ``ESC t 19``): the
  library's automatic choice for Ø/Å is ``ESC t 13`` (CP857 on Epson, absent
  on many clones) and prints garbage;
* characters the code page lacks are transliterated (– → -, ĳ → ij) before
  encoding, and ``unprintable()`` lets tests prove nothing turns into "?";
* lines are wrapped here at word boundaries, because a printer that wraps a
  too-long line does so mid-word.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from pathlib import Path

from vuoro.i18n import translator

from ._escpos import Dummy, quiet
from .receipts import BookingCheckIn, BookingConfirmation, EventSignup, QueueTicket, Receipt

LOCALE_DIR = Path(__file__).parent / "locale"

# Code pages this module knows how to encode: escpos name → Python codec.
CODEPAGES = {"CP858": "cp858", "CP865": "cp865", "CP850": "cp850", "CP437": "cp437"}
DEFAULT_CODEPAGE = "CP858"  # covers æøå ÆØÅ äöü ÄÖÜ é ë and €; CP865 lacks € and most accented capitals

# The letters each receipt language needs beyond ASCII (names of services, places and people included).
# A code page without one of them prints "?" for it, with no transliteration that would read right.
LANGUAGE_LETTERS = {
    "da": "æøåÆØÅé",
    "sv": "åäöÅÄÖé",
    "fi": "äöåÄÖÅ",
    "nl": "éëïóöüèáÉ",  # "Één", "België", "ruïne", "privé"
    "en": "",
}
LANGUAGE_NAMES = {"da": "Danish", "sv": "Swedish", "fi": "Finnish", "nl": "Dutch", "en": "English"}

# Characters no Nordic/Western DOS code page has, mapped to plain equivalents.
TRANSLIT = {
    "\u2013": "-", "\u2014": "-", "\u2212": "-", "\u2010": "-", "\u2011": "-",
    "\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201c": '"', "\u201d": '"', "\u201e": '"',
    "\u2026": "...", "\u00a0": " ", "\u202f": " ", "\u2009": " ",
    "\u0133": "ij", "\u0132": "IJ",  # Dutch ij ligature
    "\u0161": "s", "\u0160": "S", "\u017e": "z", "\u017d": "Z",  # Finnish loanwords (šakki, žeton)
}


@dataclass(frozen=True)
class Paper:
    """Paper roll: 80 mm → 48 columns of font A, 58 mm → 32 columns; 12 dots per column."""

    mm: int = 80

    def __post_init__(self) -> None:
        if self.mm not in (80, 58):
            raise ValueError("paper width must be 80 or 58 (mm)")

    @property
    def columns(self) -> int:
        return 48 if self.mm == 80 else 32

    @property
    def dots(self) -> int:
        return self.columns * 12


def printable(text: str, codepage: str = DEFAULT_CODEPAGE) -> str:
    """``text`` with every character the code page lacks transliterated (or '?' as a last resort)."""
    codec = CODEPAGES[codepage]
    out = []
    for char in text:
        try:
            char.encode(codec)
            out.append(char)
        except UnicodeEncodeError:
            out.append(TRANSLIT.get(char, "?"))
    return "".join(out)


def unprintable(text: str, codepage: str = DEFAULT_CODEPAGE) -> list[str]:
    """The characters of ``text`` that would print as '?' (for tests and `vuoro doctor`)."""
    codec = CODEPAGES[codepage]
    bad = []
    for char in text:
        try:
            char.encode(codec)
        except UnicodeEncodeError:
            if char not in TRANSLIT:
                bad.append(char)
    return bad


def codepage_problem(codepage: str, languages: Iterable[str]) -> str | None:
    """Why ``codepage`` cannot print receipts in ``languages`` (with code pages that can), or None.

    Checked when a printer is configured, not when a receipt comes out: CP437 printed ø as "?" on every
    Danish ticket, without a word anywhere.
    """
    if codepage not in CODEPAGES:
        return f"code page {codepage!r} is not one of {', '.join(CODEPAGES)}"
    languages = [lang for lang in languages if lang in LANGUAGE_LETTERS]
    missing = {lang: unprintable(LANGUAGE_LETTERS[lang], codepage) for lang in languages}
    missing = {lang: chars for lang, chars in missing.items() if chars}
    if not missing:
        return None
    able = [name for name in CODEPAGES if not any(unprintable(LANGUAGE_LETTERS[lang], name) for lang in languages)]
    lacks = "; ".join(f"{' '.join(chars)} ({LANGUAGE_NAMES[lang]})" for lang, chars in missing.items())
    instead = (f"use ?codepage={able[0]}" + (f" (or {', '.join(able[1:])})" if able[1:] else "")) if able else \
        "no code page Vuoro knows prints them all"
    return (f"code page {codepage} cannot print {lacks}: receipts in {', '.join(languages)} would show '?' for "
            f"them; {instead}, if the printer has it (its self-test page lists its code pages)")


# CODE128: 11 modules a symbol (start, each character, check), 13 for the stop, 10 of quiet zone each side.
# Module widths in printer dots (GS w), widest first: 3 dots = 0.375 mm reads easily; 2 dots (0.25 mm) is
# the narrowest a kiosk's scanner reads reliably from thermal paper (1 dot blurs). Wider than the paper, a
# printer prints no barcode at all.
BARCODE_MODULES = (3, 2)


def code128_dots(code: str, module: int) -> int:
    """How wide ``code`` is as CODE128 (code set B) with its quiet zones, in printer dots."""
    return (11 * (len(code) + 2) + 13 + 2 * 10) * module


def barcode_module(code: str, paper: Paper) -> int:
    """The widest module that fits ``code`` on the paper; ValueError, in words, when none does."""
    if not (code.isascii() and code.isprintable() and code):
        raise ValueError(f"CODE128 (code set B) prints letters, digits and signs of plain ASCII, not {code!r}")
    for module in BARCODE_MODULES:
        if code128_dots(code, module) <= paper.dots:
            return module
    narrowest = BARCODE_MODULES[-1]
    longest = (paper.dots // narrowest - 13 - 20) // 11 - 2
    raise ValueError(f"a CODE128 barcode of {len(code)} characters is {code128_dots(code, narrowest) / 8:.0f} mm "
                     f"wide at the narrowest bars a scanner reads, but {paper.mm} mm paper prints "
                     f"{paper.dots / 8:.0f} mm: at most {longest} characters fit; print it as a QR code instead")


def wrap(text: str, columns: int) -> list[str]:
    """Lines of at most ``columns`` characters, broken only between words.

    A single word longer than a line is the one thing that must be split.
    """
    lines: list[str] = []
    current = ""
    for word in text.split():
        while len(word) > columns:
            if current:
                lines.append(current)
                current = ""
            lines.append(word[:columns])
            word = word[columns:]
        if not current:
            current = word
        elif len(current) + 1 + len(word) <= columns:
            current += " " + word
        else:
            lines.append(current)
            current = word
    lines.append(current)
    return lines


_DATE = {
    "da": ("%d.%m.%Y", "kl. %H:%M"),
    "sv": ("%Y-%m-%d", "kl. %H:%M"),
    "fi": ("%-d.%-m.%Y", "klo %H.%M"),
    "nl": ("%d-%m-%Y", "%H:%M"),
    "en": ("%d/%m/%Y", "%H:%M"),
}


def format_time(stamp: datetime, language: str) -> str:
    return stamp.strftime(_DATE[language][1])


def format_datetime(stamp: datetime, language: str) -> str:
    date, time = _DATE[language]
    return f"{stamp.strftime(date)} {stamp.strftime(time)}"


class _Builder:
    """A thin layer over ``Dummy`` that knows the paper and the code page.

    Size, bold and alignment are tracked and sent only when they change:
    ``Dummy.set()`` repeats ``ESC ! 0`` up to three times per call, which
    doubled the bytes of a ticket.
    """

    _ALIGN = {"left": 0, "center": 1, "right": 2}

    def __init__(self, paper: Paper, codepage: str, profile: str | None) -> None:
        self.paper = paper
        self.codepage = codepage
        self.p = Dummy(profile=profile) if profile else Dummy()
        self.p.hw("INIT")
        self.p.charcode(codepage)  # emits ESC t n once; the library no longer guesses
        self._size, self._bold, self._align = 0x00, False, "left"  # the state after ESC @

    def style(self, *, size: int = 1, tall: bool = False, bold: bool = False, align: str = "center") -> None:
        code = ((size - 1) << 4 | (size - 1)) if size > 1 else (0x01 if tall else 0x00)
        if code != self._size:
            self.p._raw(b"\x1d!" + bytes([code]))  # GS ! n: width and height multipliers
            self._size = code
        if bold != self._bold:
            self.p._raw(b"\x1bE" + bytes([bold]))
            self._bold = bold
        if align != self._align:
            self.p._raw(b"\x1ba" + bytes([self._ALIGN[align]]))
            self._align = align

    def text(self, text: str, *, align: str = "center", bold: bool = False, size: int = 1, tall: bool = False) -> None:
        self.style(size=size, tall=tall, bold=bold, align=align)
        for line in wrap(printable(text, self.codepage), self.paper.columns // size):
            self.p.text(line + "\n")

    def feed(self, lines: int = 1) -> None:
        self.style(align=self._align)
        self.p.text("\n" * lines)

    def qr(self, data: str, size: int = 6) -> None:
        if self.paper.mm == 58:
            size = min(size, 5)
        self.style()  # qr(center=True) is refused with native=True: align first
        self.p.qr(data, native=True, size=size)

    def barcode(self, code: str, *, readable: bool = True) -> None:
        """CODE128 of ``code``, with the widest bars that fit the paper; ValueError when it cannot fit (a
        printer given a barcode wider than its paper prints nothing). ``readable=False`` leaves out the
        digits under the bars (the receipt prints the code above them the way people read it, and one code
        must not be printed in two styles)."""
        module = barcode_module(code, self.paper)
        self.style()
        with quiet():
            self.p.barcode("{B" + code, "CODE128", function_type="B", width=module, height=80,
                           pos="BELOW" if readable else "OFF")

    def code(self, label: str, shown: str, code: str, *, qr: bool = False) -> None:
        """A booking or sign-up code, the same way on every receipt: its label, the code as people read it
        (large), then the same code for the scanner."""
        self.text(label)
        self.text(shown, bold=True, size=2)
        try:
            module = None if qr else barcode_module(code, self.paper)
        except ValueError:  # too long or not ASCII for bars: the scanner reads a QR code as well
            module = None
        if module is None:
            self.qr(code)
        else:
            self.barcode(code, readable=False)

    def raw(self, data: bytes) -> None:
        self.p._raw(data)

    def finish(self) -> bytes:
        self.style(align="left")
        self.p.cut()
        return self.p.output


@cache
def _logo_bytes(path: str, mtime: float, dots: int) -> bytes:
    from PIL import Image

    image = Image.open(path).convert("L")
    max_width = dots * 2 // 3
    if image.width > max_width:
        image = image.resize((max_width, max(1, image.height * max_width // image.width)))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    p = Dummy()
    p.set(align="center")
    p.image(Image.open(buffer), impl="bitImageRaster")
    return p.output


def logo_bytes(path: Path, paper: Paper, cache_dir: Path | None = None) -> bytes:
    """The logo as a raster command, converted once per file version and paper (and cached on disk)."""
    mtime = path.stat().st_mtime
    if cache_dir is not None:
        key = hashlib.sha256(f"{path.resolve()}:{mtime}:{paper.dots}".encode()).hexdigest()[:16]
        cached = cache_dir / f"logo-{key}.bin"
        if cached.exists():
            return cached.read_bytes()
        data = _logo_bytes(str(path), mtime, paper.dots)
        cache_dir.mkdir(parents=True, exist_ok=True)
        cached.write_bytes(data)
        return data
    return _logo_bytes(str(path), mtime, paper.dots)


def _n_before(_: Callable[[str], str], n: int) -> str:
    if n <= 0:
        return _("You are next")
    if n == 1:
        return _("1 person before you")
    return _("{n} people before you").format(n=n)


def render(
    receipt: Receipt,
    paper: Paper | int = 80,
    *,
    codepage: str = DEFAULT_CODEPAGE,
    profile: str | None = None,
    logo: bytes | None = None,
) -> bytes:
    """The ESC/POS bytes of one receipt, ending with feed and cut."""
    paper = paper if isinstance(paper, Paper) else Paper(paper)
    if codepage not in CODEPAGES:
        raise ValueError(f"code page {codepage!r} is not one of {', '.join(CODEPAGES)}")
    b = _Builder(paper, codepage, profile)
    lang = receipt.language
    _ = translator(LOCALE_DIR, lang)
    if logo:
        b.style()
        b.raw(logo)
    b.text(receipt.site_name, bold=True)
    if isinstance(receipt, QueueTicket):
        b.text(receipt.service_name, bold=True, tall=True)
        b.feed()
        b.text(_("Queue number"))
        b.text(receipt.number, bold=True, size=_number_size(receipt.number, paper))
        b.feed()
        b.text(_n_before(_, receipt.people_before))
        if receipt.wait_minutes is not None:
            b.text(_("Estimated wait: about {minutes} min").format(minutes=max(1, receipt.wait_minutes)))
        b.feed()
        b.text(_("Take a seat and watch the screen"), bold=True)
        if receipt.place_url:
            b.feed()
            b.text(_("Follow your place in the queue"))
            b.qr(receipt.place_url)
    elif isinstance(receipt, BookingCheckIn):
        b.text(_("Booking check-in"), tall=True)
        b.text(receipt.service_name, bold=True, tall=True)
        b.feed()
        b.text(_("Queue number"))
        b.text(receipt.number, bold=True, size=_number_size(receipt.number, paper))
        b.feed()
        b.text(_("Booked time: {time}").format(time=format_time(receipt.booked_at, lang)), bold=True)
        b.text(_("You are checked in"))
        b.text(_("Take a seat and watch the screen"), bold=True)
        b.feed()
        b.code(_("Booking code"), receipt.code_display or receipt.booking_code, receipt.booking_code)
    elif isinstance(receipt, EventSignup):
        b.text(_("Event sign-up"), tall=True)
        b.feed()
        b.text(receipt.event_title, bold=True, tall=True)
        b.text(_("Time: {time}").format(time=format_datetime(receipt.starts_at, lang)))
        b.text(_("Room: {room}").format(room=receipt.room))
        b.feed()
        if receipt.seat is not None:
            b.text(_("You have a seat"))
            b.text(_("Seat: {seat}").format(seat=receipt.seat), bold=True, size=2)
        else:
            b.text(_("You are on the waiting list"))
            place = receipt.waiting_place if receipt.waiting_place is not None else "-"
            b.text(_("Waiting list: place {place}").format(place=place), bold=True, tall=True)
        b.feed()
        b.code(_("Sign-up code"), receipt.code_display or receipt.code, receipt.code, qr=True)
        b.feed()
        b.text(_("Check in with this code at the kiosk when you come"), bold=True)
    elif isinstance(receipt, BookingConfirmation):
        b.text(_("Booking confirmation"), tall=True)
        b.text(receipt.service_name, bold=True, tall=True)
        b.feed()
        b.text(format_datetime(receipt.starts_at, lang), bold=True, size=2 if paper.mm == 80 else 1)
        b.text(_("Booked time: {time}").format(
            time=f"{format_time(receipt.starts_at, lang)}-{receipt.ends_at.strftime('%H:%M')}"))
        b.feed()
        b.code(_("Booking code"), receipt.code_display or receipt.booking_code, receipt.booking_code)
        b.feed()
        b.text(_("Show this code when you come back, or scan this receipt at the kiosk"), bold=True)
    else:  # pragma: no cover - the type union is closed
        raise TypeError(f"not a receipt: {receipt!r}")
    b.feed()
    b.text(format_datetime(receipt.issued_at, lang))
    return b.finish()


def _number_size(number: str, paper: Paper) -> int:
    for size in (4, 3, 2):
        if len(number) <= paper.columns // size:
            return size
    return 1


NORDIC_SAMPLE = [
    "æøå ÆØÅ äöü ÄÖÜ é É ë",
    "da: Tag plads og hold øje med skærmen",
    "sv: Ta plats och håll koll på skärmen",
    "fi: Istu alas ja seuraa näyttöä",
    "nl: Wachtlijst, inschrijving, één",
]


def test_page(paper: Paper | int = 80, *, codepage: str = DEFAULT_CODEPAGE, profile: str | None = None,
              status: str | None = None) -> bytes:
    """A test receipt with every Nordic character, a native QR and the status in words."""
    paper = paper if isinstance(paper, Paper) else Paper(paper)
    b = _Builder(paper, codepage, profile)
    b.text("Vuoro", bold=True, size=2)
    b.text(f"Printer test {paper.mm} mm / {codepage}")
    b.feed()
    for line in NORDIC_SAMPLE:
        b.text(line, align="left")
    b.feed()
    b.text("".join(str(i % 10) for i in range(1, paper.columns + 1)), align="left")  # a column ruler
    if status:
        b.text(f"Status: {status}")
    b.qr("https://vuoro.example/test")
    return b.finish()
