"""Kiosk pieces without a window: config, words, HTTP retries, scanners, printing, contrast, translations."""

from __future__ import annotations

import json
import math
import os
import threading
import time
from collections.abc import Iterator
from datetime import date, datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from kiosk import model, theme
from kiosk.client import HubClient
from kiosk.config import KioskConfig, load
from kiosk.msgids import msgids
from kiosk.printing import KioskPrinter
from kiosk.scanner import SerialScanner, WedgeBuffer
from vuoro.i18n import LANGUAGES, translator, untranslated

LOCALE = Path(__file__).resolve().parent.parent / "kiosk" / "locale"


# -- config -------------------------------------------------------------------------------


def test_config_file_and_flags(tmp_path: Path) -> None:
    path = tmp_path / "kiosk.toml"
    path.write_text('[kiosk]\nhub = "http://10.0.0.2:8080"\ndevice = "kiosk2"\ntoken = "t"\n'
                    'printer = "tcp://10.0.0.40:9100"\nlanguage = "sv"\nidle_timeout = 60\ntext_scale = 1.25\n')
    config = load(["--config", str(path), "--printer", "none", "--size", "800x480", "--broker", "mqtt://b:1883"])
    assert (config.hub, config.device, config.language, config.idle_timeout) == ("http://10.0.0.2:8080", "kiosk2",
                                                                                 "sv", 60.0)
    assert config.printer is None and config.size == (800, 480) and config.fullscreen is False
    assert config.broker == "mqtt://b:1883" and config.text_scale == 1.25


def test_config_says_what_is_wrong() -> None:
    with pytest.raises(ValueError, match="problems") as err:
        load(["--hub", "ftp://x", "--device", "Kiosk 1"])
    assert "hub" in str(err.value) and "device" in str(err.value)
    with pytest.raises(ValueError, match="size"):
        load(["--size", "big"])


# -- words --------------------------------------------------------------------------------


def test_every_msgid_is_translated_in_every_language() -> None:
    ids = msgids()
    assert len(ids) > 50, "the scan found too few msgids: is the scanner broken?"
    assert "I have a booking" in ids and "Take a number: choose a service" in ids  # one from .py, one from .kv
    for lang in LANGUAGES:
        assert untranslated(LOCALE, lang, ids) == [], lang


def test_placeholders_survive_translation() -> None:
    for lang in LANGUAGES:
        _ = translator(LOCALE, lang)
        for msgid in msgids():
            for name in ("{minutes}", "{n}", "{when}", "{code}", "{time}", "{number}"):
                assert (name in msgid) == (name in _(msgid)), (lang, msgid)


def test_tiles_say_wait_booking_only_and_closed() -> None:
    _ = translator(LOCALE, "da")
    cph = timezone(timedelta(hours=1))
    now = datetime(2026, 11, 23, 13, 0, tzinfo=cph)  # a Monday
    site = {"services": [{"id": "kvik", "mode": "walk_in", "names": {"da": "KVIK", "en": "Quick"}},
                         {"id": "borger", "mode": "booking_only", "names": {"da": "Borgerservice"}},
                         {"id": "it", "mode": "walk_in", "names": {"da": "IT-hjælp"}},
                         {"id": "x", "mode": "walk_in", "names": {"da": "X"}}]}
    queues = {"kvik": {"open": True, "waiting": 3, "estimated_wait_min": 10},
              "it": {"open": False, "opens_at": "2026-11-24T10:00+01:00"},
              "x": {"open": False, "opens_at": None}}
    tiles = model.tiles(_, site, queues, "da", now)
    assert [(t.title, t.line, t.kind) for t in tiles] == [
        ("KVIK", "Ca. 10 min.", "walk_in"),
        ("Borgerservice", "Kun med tid – bestil en tid", "booking_only"),
        ("IT-hjælp", "Lukket – åbner tirsdag 10:00", "closed"),
        ("X", "Lukket i dag", "closed"),
    ]
    assert model.tiles(translator(LOCALE, "en"), site, {"kvik": {"open": True, "waiting": 0}}, "en")[0].line == \
        "No wait"


def test_codes_from_scanners_and_keypad() -> None:
    assert model.clean_code(" 7kq3mz\r") == "7KQ3MZ"
    assert model.clean_code("https://ko.example/b/7KQ3MZ") == "7KQ3MZ"
    assert model.clean_code("ab") is None
    assert model.clean_code("7KQ-3MZ") == model.clean_code("7kq 3mz") == "7KQ3MZ"  # as printed, or as typed
    assert model.clean_code("kode: 7KQ3MZ!") == "7KQ3MZ"


# -- contrast -------------------------------------------------------------------------------


def test_contrast_function_matches_wcag_examples() -> None:
    black, white = theme.hex_colour("#000000"), theme.hex_colour("#FFFFFF")
    assert theme.contrast(black, white) == pytest.approx(21.0)
    assert theme.contrast(theme.hex_colour("#777777"), white) == pytest.approx(4.48, abs=0.01)  # famous near-miss


PALETTE_PAIRS = [(palette, *pair) for palette in theme.PALETTES for pair in theme.pairs(palette)]


@pytest.mark.parametrize(("palette", "name", "fg", "bg"), PALETTE_PAIRS,
                         ids=[f"{p[0]}: {p[1]}" for p in PALETTE_PAIRS])
def test_every_colour_pair_meets_wcag_aa_and_the_high_contrast_palette_aaa(palette: str, name: str, fg: theme.Colour,
                                                                          bg: theme.Colour) -> None:
    assert theme.contrast(fg, bg) >= theme.MIN_CONTRAST[palette], (palette, name)


@pytest.mark.parametrize("palette", list(theme.PALETTES))
def test_the_focus_ring_shows_on_every_surface(palette: str) -> None:
    """Two lines, dark and light: on any button or page one of them stands out at 3:1 (WCAG 1.4.11)."""
    rings = theme.focus_pairs(palette)
    for surface in {name.removesuffix(" (inner)") for name, _fg, _bg in rings}:
        best = max(theme.contrast(fg, bg) for name, fg, bg in rings if name.removesuffix(" (inner)") == surface)
        assert best >= 3.0, (palette, surface)


def test_accessibility_settings_from_the_command_line() -> None:
    config = load(["--layout", "low", "--palette", "high_contrast", "--speech-device", "vuoro_speech"])
    assert (config.layout, config.palette, config.speech_device) == ("low", "high_contrast", "vuoro_speech")
    with pytest.raises(ValueError, match="layout: expected one of standard, low"):
        KioskConfig(layout="sideways").check()


def test_no_text_is_smaller_than_the_smallest_the_viewing_distance_was_worked_out_for() -> None:
    """docs/kiosk.md works out EN 301 549 5.1.4 (a capital H at 0.7°) from theme.SMALLEST_TEXT_U."""
    import re

    from kiosk.screens import whats_on

    kiosk_dir = Path(theme.__file__).parent
    sizes = [int(n) for path in kiosk_dir.rglob("*.kv")
             for n in re.findall(r"font_size: app\.session\.u \* \(?(\d+)", path.read_text(encoding="utf-8"))]
    sizes += [whats_on.NOTE_SIZE, whats_on.HEAD_SIZE, whats_on.EXTRA_SIZE]
    assert len(sizes) > 30 and min(sizes) == theme.SMALLEST_TEXT_U

    def degrees(u_px: float, pitch_mm: float, distance_mm: float) -> float:
        cap = theme.SMALLEST_TEXT_U * u_px * theme.CAP_HEIGHT * pitch_mm
        return math.degrees(2 * math.atan(cap / 2 / distance_mm))

    # At the 2.0 step: the 7" 800x480 panel (u = 2, 0.1926 mm pixels) read from 400 mm; a 21.5" 1080x1920
    # portrait panel (u = 1.8 x 2, 0.2483 mm) and its low layout (u = 1.35 x 2) read from 500 mm.
    assert degrees(2.0, 0.1926, 400) >= 0.7
    assert degrees(3.6, 0.2483, 500) >= 0.7 and degrees(2.7, 0.2483, 500) >= 0.7
    assert degrees(1.0, 0.1926, 400) < 0.7  # normal text does not: the 2.0 step is the 5.1.4 mode


def test_the_palette_in_use_is_the_one_drawn() -> None:
    try:
        theme.use("high_contrast")
        assert theme.hex_colour("#000000") == theme.BACKGROUND and theme.pairs("high_contrast") == theme.PAIRS
        assert theme.TILE_COLOURS["walk_in"][0] == theme.hex_colour("#FFE14D")
    finally:
        theme.use("standard")
    assert theme.hex_colour("#F5F6F8") == theme.BACKGROUND


# -- HTTP: timeouts, retries, idempotency ----------------------------------------------------


class _Stub(BaseHTTPRequestHandler):
    keys: list[str] = []
    stall_first = 0

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        type(self).keys.append(self.headers.get("Idempotency-Key", ""))
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if type(self).stall_first > 0:
            type(self).stall_first -= 1
            time.sleep(0.6)  # longer than the client's timeout: the first answer is lost to the client
        body = json.dumps({"ticket": "K001", "id": "x"}).encode()
        self.send_response(201)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture()
def stub() -> Iterator[str]:
    _Stub.keys, _Stub.stall_first = [], 1
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Stub)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_retry_after_timeout_reuses_the_idempotency_key(stub: str) -> None:
    client = HubClient(stub, "tok", timeout=0.3, retries=2, retry_pause=0.0)
    answer = client.issue("kvik", "da")
    assert answer.ok and answer.attempts == 2
    assert len(_Stub.keys) == 2 and _Stub.keys[0] == _Stub.keys[1] and 8 <= len(_Stub.keys[0]) <= 64
    client.issue("kvik", "da")
    assert _Stub.keys[2] != _Stub.keys[0]  # a new touch is a new key


def test_unreachable_hub_is_an_answer_not_an_exception() -> None:
    from toolkit.broker import free_port

    client = HubClient(f"http://127.0.0.1:{free_port()}", timeout=0.5, retries=1, retry_pause=0.0)
    answer = client.issue("kvik", "da")
    assert answer.unreachable and answer.broken and answer.code == "unreachable" and answer.attempts == 2


# -- scanners ---------------------------------------------------------------------------------


def test_wedge_buffer_tells_a_scanner_from_a_person() -> None:
    wedge = WedgeBuffer(max_gap=0.05)
    for i, ch in enumerate("7KQ3MZ"):
        wedge.feed(ch, at=10 + i * 0.005)
    assert wedge.enter(at=10.035) == "7KQ3MZ"
    for i, ch in enumerate("7KQ3MZ"):
        wedge.feed(ch, at=20 + i * 0.3)  # a person typing
    assert wedge.enter(at=21.8) is None


def test_serial_scanner_reads_lines_from_a_loop_port() -> None:
    import serial

    port = serial.serial_for_url("loop://", timeout=0.1)
    codes: list[str] = []
    got = threading.Event()
    scanner = SerialScanner("loop://", lambda c: (codes.append(c), got.set()), port=port).start()
    port.write(b"7KQ3")
    port.write(b"MZ\r\n")
    assert got.wait(5)
    scanner.stop()
    assert codes == ["7KQ3MZ"]


def test_serial_scanner_on_a_pty_opens_by_name() -> None:
    master, slave = os.openpty()
    codes: list[str] = []
    got = threading.Event()
    scanner = SerialScanner(os.ttyname(slave), lambda c: (codes.append(c), got.set())).start()
    deadline = time.monotonic() + 5
    while scanner.port is None and time.monotonic() < deadline:  # opening a port flushes its input
        time.sleep(0.01)
    os.write(master, b"ABCD23\n")
    assert got.wait(5)
    scanner.stop()
    os.close(master)
    os.close(slave)
    assert codes == ["ABCD23"]


# -- printing ------------------------------------------------------------------------------------


def test_printer_adapter_prints_the_number_and_reports_paper_out() -> None:
    ticket = {"ticket": "K042", "service": "kvik", "service_names": {"da": "KVIK – hurtig hjælp"}, "position": 2,
              "estimated_wait_min": 8, "issued_at": "2026-11-23T10:42:05+01:00"}
    healths: list[object] = []
    printer = KioskPrinter("memory://", on_health=healths.append)
    outcome = printer.print_ticket(ticket, "Sønderbro Bibliotek", "da")
    assert outcome.printed and outcome.state == "ok"
    assert b"K042" in printer.printer.connection.written and healths
    printer.printer.connection.emulator.set_paper("out")
    outcome = printer.print_ticket(ticket, "Sønderbro Bibliotek", "da")
    assert not outcome.printed and outcome.state == "paper_out"
    assert KioskPrinter(None).print_ticket(ticket, "x", "da").state is None


def test_default_config_is_valid() -> None:
    assert KioskConfig().check().mm == pytest.approx(133 / 25.4)


def test_booking_and_event_words() -> None:
    _ = translator(LOCALE, "da")
    cph = timezone(timedelta(hours=1))
    today = datetime(2026, 11, 23, 14, 0, tzinfo=cph).date()  # a Monday
    assert [model.day_label(_, today + timedelta(days=n), today) for n in (0, 1, 3)] == [
        "I dag", "I morgen", "torsdag 26/11"]
    slots = [{"start": "2026-11-24T10:00+01:00", "free": 1}, {"start": "2026-11-23T15:00+01:00", "free": 2},
             {"start": "2026-11-23T15:15+01:00", "free": 0}, {"start": "bad"}]
    days = model.slot_days(slots)
    assert [(d.isoformat(), len(s)) for d, s in days] == [("2026-11-23", 1), ("2026-11-24", 1)]
    assert model.booking_refusal(_, "full").body.startswith("En anden har lige bestilt den tid")
    assert "full" in model.TAKEN and model.booking_refusal(_, "unreachable") == model.hub_down(_)
    event = {"id": "e1", "signup": True, "state": "scheduled", "seats_left": 3, "waiting_list_left": 2,
             "room": "Salen", "start": "2026-11-23T16:00+01:00"}
    assert model.signup_kind(event) == "seat" and model.event_line(_, event)[2] == "Salen · 3 pladser tilbage"
    sold = {**event, "state": "sold_out", "seats_left": 0}
    assert model.signup_kind(sold) == "waiting" and "venteliste" in model.event_line(_, sold)[2]
    maybe = {**event, "tentative": True, "signup": False, "seats_left": None}
    assert model.event_line(_, maybe)[2] == "Salen · Ikke bekræftet"  # a TENTATIVE feed event
    assert model.signup_kind({**sold, "waiting_list_left": 0}) is None
    assert model.signup_kind({**event, "state": "cancelled"}) is None
    assert model.signup_kind({**event, "signup": False}) is None
    waiting = model.signup_result(_, {"code": "X", "seat": None, "waiting_place": 2, "event": event})
    assert (waiting.title, waiting.place) == ("Du er på ventelisten", "Venteliste: nummer 2")
    assert model.signup_refusal(_, "full").actions == ("events",)


def test_day_tabs_use_short_weekday_names_that_fit() -> None:
    """The Book-a-time tabs are narrow: "keskiviikkona" broke mid-word there, "ke" fits."""
    from vuoro.i18n import translator

    _ = translator(Path(model.__file__).parent / "locale", "fi")
    today = date(2026, 11, 23)  # a Monday
    assert model.day_label(_, today + timedelta(days=2), today, short=True) == "ke 25/11"
    assert model.day_label(_, today + timedelta(days=2), today) == "keskiviikkona 25/11"
