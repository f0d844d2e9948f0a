"""Who is called, whole, on every common screen: the Kivy signage in one real (offscreen SDL) window,
resized through the panels halls have — 1280×720, 1366×768, 1920×1080, 3840×2160 (4K TVs), 1024×768 (4:3) and
portrait 1080×1920 and 720×1280.

The app is built as `vuoro display` builds it, for its configured 1080p size, and the window is then made
another size: the screen must follow the window (on the ARM guest's 1280×720 panel it kept the 1080p scale and
the ticket became "K..."). At each size, from the widgets' real geometry: the ticket and the desk are drawn
whole (their texture inside their box, the box inside the call panel, not shortened, the desk broken only
between words) and at least their stated minimum size; every panel is inside the window and over no other;
every text is inside its panel, at the type floor (docs/signage.md) and not cut — an ellipsis only in the
secondary lists (recent calls' desks, the events). With $VUORO_SIGNAGE_SCREENSHOTS set, a picture of each size
is saved there (signage-<W>x<H>-<lang>.png).

The web signage (/signage/, display/web) gets the same call at the same sizes in the real Chromium: the ticket
and desk fitted by signage.js, measured by the browser (their boxes, scroll widths, computed font sizes).
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import pytest
from kivy.tests.common import GraphicUnitTest
from kivy.uix.label import Label

from display import sample
from display.app import SCALE, FitLabel, SignageApp, SignageScreen
from display.state import SignageState
from toolkit.fake_hub import Replay
from toolkit.signage_type import MEASURE_JS, floor_px, measure_kivy
from vuoro.protocol import Topics

LANDSCAPE = [(1280, 720), (1366, 768), (1920, 1080), (3840, 2160), (1024, 768)]
PORTRAIT = [(1080, 1920), (720, 1280)]
# The hub numbers K001 upwards and goes on past K999 on a busy day (server/engine.py): five characters.
TICKET = "K1234"
# The longest desk names a site might give, in the five languages (the sample sites' longest is "Bibliotekar";
# a desk's name is one string in the site file, shown as it is).
DESKS = {"da": "Borgerserviceskranke 12", "sv": "Medborgarservicedisken 12", "fi": "Kansalaispalvelupiste 12",
         "nl": "Balie burgerzaken 12", "en": "Citizen service desk 12"}
MESSAGE = "Borgerservice lukker kl. 16 i dag – kom i god tid"
# The sizes kept, in u (1 u = a pixel on a 1080-pixel short side; the floor is 40 u): the ticket is 170 u where
# it fits and never below TICKET_MIN_U (five characters in a third of a 4:3 panel); for the desk see desk_min_u.
TICKET_MIN_U = 130
SHOTS = os.environ.get("VUORO_SIGNAGE_SCREENSHOTS")


def desk_min_u(size: tuple[int, int], desk: str) -> float:
    """The desk is 68 u where it fits. On a 16:9 panel (either way up) the longest names stay above the floor,
    at 44 u; on a 4:3 one, beside the arrow in a third of 1024 pixels, a word of up to 21 letters
    ("Kansalaispalvelupiste") keeps 36 u, a longer one ("Medborgarservicedisken") 29 u: whole, not cut."""
    if max(size) / min(size) >= 1.6:
        return 44
    return 36 if max(len(word) for word in desk.split()) <= 21 else 29


def hall(lang: str) -> SignageState:
    """A full hall at its longest: six calls, five events, a message, staff away (the long footer line),
    the current call to the longest desk with a five-character ticket."""
    state = SignageState(Topics("sonderbro"))
    for suffix, payload in sample.retained(busy=True, staffed=False, message=MESSAGE).items():
        state.apply_payload(suffix, payload)
    call(state, lang)
    state.link_online = True
    return state


def call(state: SignageState, lang: str) -> None:
    payload = sample.call(TICKET, "borger1", service="kvik")
    payload["counter_name"] = DESKS[lang]
    state.apply_payload("calls", payload)


def rect(widget: Any) -> tuple[float, float, float, float]:
    x, y = widget.to_window(*widget.pos)
    return x, y, x + widget.width, y + widget.height


def inside(inner: tuple[float, ...], outer: tuple[float, ...], slack: float = 1.0) -> bool:
    return (inner[0] >= outer[0] - slack and inner[1] >= outer[1] - slack and inner[2] <= outer[2] + slack
            and inner[3] <= outer[3] + slack)


def overlap(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    return max(0.0, min(a[2], b[2]) - max(a[0], b[0])) * max(0.0, min(a[3], b[3]) - max(a[1], b[1]))


def ink(label: Label) -> tuple[float, float, float, float]:
    """Where a label's texture is drawn (Kivy centres it in the label's box)."""
    x, y = label.to_window(*label.center)
    w, h = label.texture_size
    return x - w / 2, y - h / 2, x + w / 2, y + h / 2


def shown(widget: Any) -> bool:
    while widget is not None:
        if getattr(widget, "opacity", 1) == 0:
            return False
        widget = widget.parent if widget.parent is not widget else None
    return True


def check_screen(screen: SignageScreen, size: tuple[int, int], lang: str) -> dict[str, float]:
    """Everything the module docstring promises, at one size; returns the ticket's and desk's size in u."""
    where = f"{size[0]}x{size[1]} {lang}"
    u = min(size) / 1080
    assert tuple(screen.size) == size and abs(SCALE.u - u) < 1e-9, f"{where}: the scale does not follow the window"
    ids = screen.ids
    call_panel, ticket, desk, arrow = ids.call, ids.call.ids.ticket, ids.call.ids.counter, ids.call.ids.arrow

    # the ticket and the desk, whole and large
    assert (ticket.text, desk.text) == (TICKET, DESKS[lang]), where
    for label in (ticket, desk):
        assert isinstance(label, FitLabel) and not label.shorten, where
        assert label.texture_size[0] <= label.width + 1 and label.texture_size[1] <= label.height + 1, \
            f"{where}: {label.text!r} {label.texture_size} in {label.size}"
        assert inside(ink(label), rect(call_panel)), f"{where}: {label.text!r} runs out of the call panel"
    assert inside(rect(arrow), rect(call_panel)) and rect(arrow)[2] <= ink(desk)[0] + 1, where
    lines = [" ".join("".join(word.text for word in line.words).split()) for line in desk._label._cached_lines]
    assert len(lines) <= 2 and " ".join(lines).split() == DESKS[lang].split(), f"{where}: desk broken as {lines}"
    assert ticket.font_size >= TICKET_MIN_U * u, f"{where}: ticket at {ticket.font_size / u:.0f} u"
    assert desk.font_size >= desk_min_u(size, DESKS[lang]) * u, f"{where}: desk at {desk.font_size / u:.0f} u"

    # the panels: inside the window, none over another
    panels = {"top": ids.top, "call": call_panel, "recent": ids.recent.parent, "queues": ids.queues.parent,
              "events": ids.events.parent, "hours": ids.hours, "message": ids.message}
    window = (0, 0, *size)
    for name, panel in panels.items():
        assert inside(rect(panel), window, 0.5), f"{where}: {name} {rect(panel)} outside the window"
    names = list(panels)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            assert overlap(rect(panels[a]), rect(panels[b])) < 1, f"{where}: {a} over {b}"

    # every text inside its panel; a list's rows inside its box
    for name, panel in panels.items():
        for label in panel.walk(restrict=True):
            if isinstance(label, Label) and label.text.strip() and shown(label) and label.width > 0:
                assert inside(rect(label), rect(panel)) and inside(ink(label), rect(panel)), \
                    f"{where}: {label.text!r} runs out of {name}"
    for box in (ids.recent, ids.queues, ids.events):
        assert box.children, f"{where}: an empty list"
        for row in box.children:
            assert inside(rect(row), rect(box)), f"{where}: a row runs out of its list"

    # the floor, and cut only in the secondary lists
    measured = measure_kivy(screen)
    secondary = [w.text for box in (ids.events, ids.recent) for w in box.walk(restrict=True) if isinstance(w, Label)]
    whole = {TICKET, DESKS[lang]}
    small = [(t["text"], round(t["size"] / u)) for t in measured["texts"]
             if t["size"] < floor_px(*size) - 0.05 and t["text"] not in whole]
    assert not small, f"{where}: below the floor: {small}"
    cut = [text for text in measured["cut"] if text.rsplit(" (", 1)[0] not in secondary]
    assert not cut and not measured["outside"] and not measured["overlaps"], \
        f"{where}: cut {cut}, outside {measured['outside']}, overlaps {measured['overlaps']}"
    return {"ticket_u": ticket.font_size / u, "desk_u": desk.font_size / u, "desk_lines": len(lines)}


class SignageFitTest(GraphicUnitTest):
    def settle(self, screen: SignageScreen, size: tuple[int, int] | None = None) -> None:
        """Resize the window (if ``size``) and run the Kivy loop until the screen has its size and the call
        panel has kept the same sizes for three frames (the scale, the layout, the fitted sizes, the lists)."""
        if size:
            self.Window.size = size
        call, last, same = screen.ids.call, None, 0
        for _ in range(200):
            self.advance_frames(1)
            now = (tuple(screen.size), call.ids.ticket.font_size, tuple(call.ids.ticket.size),
                   call.ids.counter.font_size, tuple(call.ids.counter.size), len(screen.ids.events.children))
            same = same + 1 if now == last else 0
            last = now
            if same >= 3 and (size is None or now[0] == size):
                return
        raise AssertionError(f"the screen never settled at {size}: {last}")

    def run_sizes(self, orientation: str, sizes: list[tuple[int, int]], langs: list[str]) -> dict[str, Any]:
        """Each language in its own app, its window resized through ``sizes``; the measures at each."""
        seen: dict[str, Any] = {}
        for lang in langs:
            # as `vuoro display` builds it: for the configured orientation's 1080p size, whatever the panel is
            app = SignageApp(orientation, (1920, 1080) if orientation == "landscape" else (1080, 1920),
                             hall(lang), lang, threading.RLock(), alternate_s=0)
            screen = app.build()
            self.render(screen)
            try:
                if lang == langs[0]:
                    # What fits is not shrunk for nothing: a usual call at the design's sizes, the desk on one line.
                    self.settle(screen, sizes[0])
                    ticket, desk = screen.ids.call.ids.ticket, screen.ids.call.ids.counter
                    app.state.apply_payload("calls", sample.call("K042", "borger1"))
                    app.driver.redraw()
                    self.settle(screen)
                    assert (ticket.text, desk.text) == ("K042", "Skranke 3")
                    u = SCALE.u
                    assert (ticket.font_size, desk.font_size, len(desk._label._cached_lines)) == \
                        (int(170 * u), int(68 * u), 1), (ticket.font_size / u, desk.font_size / u)
                    call(app.state, lang)
                    app.driver.redraw()
                for size in sizes:
                    self.settle(screen, size)
                    seen[f"{size[0]}x{size[1]} {lang}"] = check_screen(screen, size, lang)
                    if SHOTS:
                        screen.export_to_png(str(Path(SHOTS) / f"signage-{size[0]}x{size[1]}-{lang}.png"))
                # the other languages' longest desks, at the narrowest size of the orientation
                if lang == langs[-1]:
                    for other in ("sv", "nl", "en"):
                        app.driver.lang = other
                        call(app.state, other)
                        app.driver.redraw()
                        self.settle(screen)
                        seen[f"{sizes[-1][0]}x{sizes[-1][1]} {other}"] = check_screen(screen, sizes[-1], other)
            finally:
                self.Window.unbind(on_flip=app._flipped)
                app.driver.stop()
                self.clear_window_and_event_loop()
        return seen

    def test_the_call_is_whole_and_nothing_runs_out_at_landscape_sizes(self) -> None:
        self.run_sizes("landscape", LANDSCAPE, ["da", "fi"])

    def test_the_call_is_whole_and_nothing_runs_out_in_portrait(self) -> None:
        self.run_sizes("portrait", PORTRAIT, ["da", "fi"])


# -- the web signage, in Chromium --------------------------------------------------------------------------

CALL_JS = r"""
() => {
  const box = id => { const r = document.getElementById(id).getBoundingClientRect();
                      return [r.left, r.top, r.right, r.bottom]; };
  const ticket = document.getElementById("call-ticket"), desk = document.getElementById("call-counter");
  const line = document.querySelector(".call .counter-line"), range = document.createRange();
  range.selectNodeContents(desk);
  const lines = new Set(Array.from(range.getClientRects(), r => Math.round(r.top))).size;
  return { call: box("call"), ticket: box("call-ticket"), desk: box("call-counter"), arrow: box("call-arrow"),
           ticketFits: ticket.scrollWidth <= ticket.clientWidth + 0.5
             && ticket.scrollHeight <= ticket.clientHeight + 0.5,
           lineFits: line.scrollWidth <= line.clientWidth + 0.5, deskLines: lines,
           ticketPx: parseFloat(getComputedStyle(ticket).fontSize), deskPx: parseFloat(getComputedStyle(desk).fontSize),
           text: [ticket.textContent, desk.textContent] };
}
"""
SECONDARY = ("(c)", "(room)", "(status)", "(title)")  # the recent calls' desks, the events' rooms, states, titles


@pytest.mark.browser
def test_web_signage_shows_the_call_whole_at_every_size(browser: Any) -> None:
    replay = Replay()
    try:
        for topic, payload in sample.retained(busy=True, staffed=False, message=MESSAGE).items():
            replay.publish(topic, payload)
        for lang in ("fi", "da"):
            for width, height in LANDSCAPE + PORTRAIT if lang == "fi" else [(1280, 720), (1024, 768)]:
                where = f"web {width}x{height} {lang}"
                u = min(width, height) / 1080
                page = browser.new_page(viewport={"width": width, "height": height})
                try:
                    page.goto(f"{replay.url}/signage/index.html?lang={lang}&alternate=0")
                    page.wait_for_function("document.querySelectorAll('#queues li').length > 0", timeout=10_000)
                    payload = sample.call(TICKET, "borger1", service="kvik")
                    payload["counter_name"] = DESKS[lang]
                    replay.call(payload)  # (a call event reaches the pages listening now)
                    page.wait_for_function(f"document.getElementById('call-counter').textContent === '{DESKS[lang]}'"
                                           " && document.fonts.status === 'loaded'", timeout=10_000)
                    page.wait_for_timeout(100)  # (the fonts' own refit, after document.fonts.ready)
                    call = page.evaluate(CALL_JS)
                    assert call["text"] == [TICKET, DESKS[lang]], where
                    assert call["ticketFits"] and call["lineFits"] and call["deskLines"] <= 2, f"{where}: {call}"
                    # (on a 16:9 panel "Borgerserviceskranke 12" is on two lines at 47 u, in portrait on one)
                    assert call["deskLines"] == (2 if width > height else 1), f"{where}: {call}"
                    for part in ("ticket", "desk", "arrow"):
                        assert inside(call[part], call["call"]), f"{where}: the {part} runs out of the call panel"
                    assert call["ticketPx"] >= TICKET_MIN_U * u, f"{where}: ticket at {call['ticketPx'] / u:.0f} u"
                    assert call["deskPx"] >= desk_min_u((width, height), DESKS[lang]) * u, \
                        f"{where}: desk at {call['deskPx'] / u:.0f} u"
                    measured = page.evaluate(MEASURE_JS)
                    small = [(t["text"], round(t["size"] / u)) for t in measured["texts"]
                             if t["size"] < floor_px(width, height) - 0.05 and t["text"] not in (TICKET, DESKS[lang])]
                    cut = [text for text in measured["cut"] if not text.endswith(SECONDARY)]
                    # (a shortened text's whole range reaches past its ellipsis, and may past the window's edge)
                    shortened = {text.rsplit(" (", 1)[0] for text in measured["cut"] if text.endswith(SECONDARY)}
                    outside = [text for text in measured["outside"] if text not in shortened]
                    assert not small and not cut and not outside and not measured["overlaps"], \
                        f"{where}: small {small}, cut {cut}, outside {outside}, over {measured['overlaps']}"
                    if SHOTS:
                        page.screenshot(path=str(Path(SHOTS) / f"signage-web-{width}x{height}-{lang}.png"))
                finally:
                    page.close()
    finally:
        replay.close()
