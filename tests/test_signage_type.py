"""The hall screen from five metres: the type floor, a full hall that still fits, and the fixed texts taking
turns in the site's languages. In the real Chromium (web signage) and the real Kivy window.

The floor (docs/signage.md): nothing a visitor must read is smaller than 1/27 of the screen's short side,
40 px on a 1080-pixel panel (~1.4 cm capitals on a 43" panel, read from 5 m), 27 px at 1280×720, 20 px at
960×540, 40 px on a 1080×1920 portrait panel. Every visible text is measured (the browser's computed font
size over every text node; the Kivy labels' font_size over the widget tree), and a busy hall — four
services, six calls, five events, a staff message — must show every row, with no text cut, off the screen
or over another.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from kivy.tests.common import GraphicUnitTest

from display import sample
from display.app import ScreenDriver, build_screen
from display.state import SignageState
from display.webstrings import OUT as STRINGS
from toolkit.fake_hub import Replay
from toolkit.signage_type import MEASURE_JS, SIZES, floor_px, measure_kivy
from vuoro.protocol import Topics

TIMEOUT_MS = 10_000
MESSAGE = "Borgerservice lukker kl. 16 i dag – kom i god tid"
WORDS = json.loads(STRINGS.read_text(encoding="utf-8"))
FULL_HALL = {"recent": 5, "queues": 4, "events": 5}  # six calls: the current one and five before it
# The longest message the hub takes (200 characters): on as many lines as it needs, never cut.
LONG_MESSAGE = ("Borgerservice lukker kl. 14 i dag på grund af personalemøde. Pas, kørekort og sygesikring: "
                "kom i morgen fra kl. 10. Biblioteket og selvbetjeningen er åbne som sædvanligt til kl. 22.")[:200]


def test_the_floor_in_pixels() -> None:
    assert [round(floor_px(*size), 1) for size in SIZES.values()] == [40.0, 26.7, 20.0, 40.0]


def check(measured: dict[str, Any], size: tuple[int, int], where: str) -> None:
    floor = floor_px(*size)
    small = sorted({(t["size"], t["text"]) for t in measured["texts"] if t["size"] < floor - 0.05})
    assert not small, f"{where}: below the {floor:.1f} px floor: {small}"
    assert measured["texts"], where
    for problem in ("cut", "outside", "overlaps"):
        assert measured[problem] == [], f"{where}: {problem}: {measured[problem]}"


# -- the web page, in Chromium ------------------------------------------------------------------------


# The page as a visitor sees it once it has settled: the hub's state is in (the site's name, the events), the
# link is up (no offline sign in the top bar) and the fonts it fits its texts in are loaded (a fit done in the
# fallback font is redone when they are). Measured before that, a fit of a moment before is seen.
SETTLED_JS = ("document.querySelectorAll('#events li').length > 0 && document.getElementById('site-name').textContent"
              " && document.getElementById('offline').hidden && document.fonts.status === 'loaded'")
SITE_NAME_PX_JS = "parseFloat(getComputedStyle(document.getElementById('site-name')).fontSize)"


def busy_replay(replay: Replay, **kwargs: Any) -> None:
    for topic, payload in sample.retained(busy=True, message=MESSAGE, **kwargs).items():
        replay.publish(topic, payload)


@pytest.mark.browser
@pytest.mark.parametrize("lang", ["da", "fi", "nl"])
def test_web_signage_type_floor_and_a_full_hall_at_four_sizes(browser: Any, replay: Replay, lang: str) -> None:
    busy_replay(replay)
    for name, (width, height) in SIZES.items():
        page = browser.new_page(viewport={"width": width, "height": height})
        try:
            page.goto(f"{replay.url}/signage/index.html?lang={lang}&alternate=0")
            page.wait_for_function("document.querySelectorAll('#events li').length === 5 && "
                                   "document.querySelectorAll('#recent li').length === 5", timeout=TIMEOUT_MS)
            page.wait_for_function("document.fonts.status === 'loaded'", timeout=TIMEOUT_MS)
            measured = page.evaluate(MEASURE_JS)
            check(measured, (width, height), f"web {name} {lang}")
            assert measured["rows"] == FULL_HALL, f"web {name} {lang}: {measured['rows']}"
        finally:
            page.close()


@pytest.mark.browser
def test_web_signage_wraps_a_long_message(browser: Any, replay: Replay) -> None:
    for topic, payload in sample.retained(busy=True, message=LONG_MESSAGE).items():
        replay.publish(topic, payload)
    for width, height in (SIZES["tv"], SIZES["portrait"]):
        page = browser.new_page(viewport={"width": width, "height": height})
        try:
            page.goto(f"{replay.url}/signage/index.html?lang=da&alternate=0")
            page.wait_for_function(SETTLED_JS, timeout=TIMEOUT_MS)
            check(page.evaluate(MEASURE_JS), (width, height), f"web long message {width}x{height}")
            assert page.inner_text("#message") == LONG_MESSAGE
        finally:
            page.close()


@pytest.mark.browser
def test_web_signage_fits_the_site_name_again_when_the_offline_sign_comes_and_goes(browser: Any,
                                                                                    replay: Replay) -> None:
    """The site's name shares the top bar with the clock and the offline sign. At 1080x1920 the sample's name
    takes its 44 px design size with the sign away; with the sign there it has less room and goes down to the
    40 px floor (and only then is shortened), and back to 44 px when the hub is back."""
    busy_replay(replay)
    width, height = SIZES["portrait"]
    hub_status = sample.retained()["hub/status"]
    page = browser.new_page(viewport={"width": width, "height": height})
    try:
        page.goto(f"{replay.url}/signage/index.html?lang=da&alternate=0")
        page.wait_for_function(SETTLED_JS, timeout=TIMEOUT_MS)
        assert page.evaluate(SITE_NAME_PX_JS) == 44
        check(page.evaluate(MEASURE_JS), (width, height), "web online 1080x1920")
        replay.publish("hub/status", {**hub_status, "online": False})
        page.wait_for_function("!document.getElementById('offline').hidden", timeout=TIMEOUT_MS)
        page.wait_for_function(f"{SITE_NAME_PX_JS} === 40", timeout=TIMEOUT_MS)
        replay.publish("hub/status", hub_status)
        page.wait_for_function(SETTLED_JS, timeout=TIMEOUT_MS)
        page.wait_for_function(f"{SITE_NAME_PX_JS} === 44", timeout=TIMEOUT_MS)
        check(page.evaluate(MEASURE_JS), (width, height), "web online again 1080x1920")
    finally:
        page.close()


@pytest.mark.browser
def test_web_signage_says_an_empty_box_in_words_and_takes_turns_in_the_site_languages(browser: Any,
                                                                                      replay: Replay) -> None:
    quiet = sample.retained()
    quiet["calls/recent"] = {**quiet["calls/recent"], "calls": []}
    quiet["events/today"] = {**quiet["events/today"], "events": []}
    for topic, payload in quiet.items():
        replay.publish(topic, payload)
    page = browser.new_page(viewport={"width": 960, "height": 540})
    try:
        # one second a language, on the browser's own clock (the page's setInterval and Date.now)
        page.goto(f"{replay.url}/signage/index.html?lang=da&alternate=1")
        page.wait_for_function("document.querySelector('#recent li.none')", timeout=TIMEOUT_MS)
        seen: list[tuple[str, str, str]] = []
        deadline = time.monotonic() + 15
        while len({s[0] for s in seen}) < 3 and time.monotonic() < deadline:
            shown = page.evaluate("[document.getElementById('h-recent').lang, "
                                  "document.querySelector('#recent li.none').textContent, "
                                  "document.querySelector('#events li.none').textContent, "
                                  "document.querySelector('#queues li .waiting').textContent]")
            if not seen or seen[-1][0] != shown[0]:
                seen.append(tuple(shown[:3]))  # type: ignore[arg-type]
                assert shown[3] == "4 venter"  # what changes stays in the screen's language
            page.wait_for_timeout(150)
        langs = [s[0] for s in seen]
        assert len(set(langs)) >= 3, langs
        order = ["da", "en", "sv", "fi", "nl"]  # the screen's own, then the site's (sample.retained) in order
        assert all(order[(order.index(a) + 1) % 5] == b for a, b in zip(langs, langs[1:], strict=False)), langs
        for lang, recent, events in seen:
            assert (recent, events) == (WORDS[lang]["No calls yet today"], WORDS[lang]["Nothing more today"])
        assert WORDS["da"]["No calls yet today"] == "Ingen kaldt endnu i dag"
        check(page.evaluate(MEASURE_JS), (960, 540), "web empty 960x540")
    finally:
        page.close()


# -- the Kivy window -----------------------------------------------------------------------------------


def busy_state() -> SignageState:
    state = SignageState(Topics("sonderbro"))
    for suffix, payload in sample.retained(busy=True, message=MESSAGE).items():
        state.apply_payload(suffix, payload)
    state.link_online = True
    return state


class KivyTypeTest(GraphicUnitTest):
    def draw(self, size: tuple[int, int], state: SignageState, lang: str, alternate_s: float = 0) -> Any:
        orientation = "portrait" if size[1] > size[0] else "landscape"
        screen = build_screen(orientation, size)
        screen.size_hint = (None, None)
        screen.size = size
        driver = ScreenDriver(screen, state, lang, alternate_s=alternate_s)
        self.render(screen)
        driver.redraw()
        self.advance_frames(5)
        return screen, driver

    def test_kivy_type_floor_and_a_full_hall_at_four_sizes(self) -> None:
        for lang in ("da", "fi", "nl"):
            for name, size in SIZES.items():
                screen, driver = self.draw(size, busy_state(), lang)
                try:
                    where = f"kivy {name} {lang}"
                    check(measure_kivy(screen), size, where)
                    rows = {box: len(screen.ids[box].children) for box in FULL_HALL}
                    assert rows == FULL_HALL, f"{where}: {rows}"
                finally:
                    driver.stop()
                    self.clear_window_and_event_loop()

    def test_kivy_wraps_a_long_message(self) -> None:
        for size in (SIZES["tv"], SIZES["portrait"]):
            state = SignageState(Topics("sonderbro"))
            for suffix, payload in sample.retained(busy=True, message=LONG_MESSAGE).items():
                state.apply_payload(suffix, payload)
            state.link_online = True
            screen, driver = self.draw(size, state, "da")
            try:
                check(measure_kivy(screen), size, f"kivy long message {size}")
                assert screen.ids.message.ids.words.text == LONG_MESSAGE
                assert screen.ids.message.height > 2 * floor_px(*size)  # more than one line
            finally:
                driver.stop()
                self.clear_window_and_event_loop()

    def test_kivy_says_an_empty_box_in_words_and_takes_turns_on_the_kivy_clock(self) -> None:
        state = SignageState(Topics("sonderbro"))
        quiet = sample.retained()
        quiet["calls/recent"] = {**quiet["calls/recent"], "calls": []}
        quiet["events/today"] = {**quiet["events/today"], "events": []}
        for suffix, payload in quiet.items():
            state.apply_payload(suffix, payload)
        screen, driver = self.draw((960, 540), state, "da", alternate_s=0.4)
        try:
            seen: list[tuple[str, str, str]] = []
            deadline = time.monotonic() + 15
            while len({s[0] for s in seen}) < 3 and time.monotonic() < deadline:
                self.advance_frames(1)  # the real Kivy clock: its interval turns the language, its tick redraws
                time.sleep(0.02)
                recent = [w.text for w in screen.ids.recent.walk() if getattr(w, "text", "")]
                events = [w.text for w in screen.ids.events.walk() if getattr(w, "text", "")]
                now = (screen.heading_recent, recent[0] if recent else "", events[0] if events else "")
                if not seen or seen[-1][0] != now[0]:
                    seen.append(now)
                    assert screen.ids.queues.children[-1].waiting == "4 venter"  # the rest stays Danish
            langs = [next(code for code in WORDS if WORDS[code]["Recent calls"] == h) for h, _, _ in seen]
            assert len(set(langs)) >= 3, seen
            order = ["da", "en", "sv", "fi", "nl"]
            assert all(order[(order.index(a) + 1) % 5] == b for a, b in zip(langs, langs[1:], strict=False)), langs
            for (_, recent, events), lang in zip(seen, langs, strict=True):
                assert (recent, events) == (WORDS[lang]["No calls yet today"], WORDS[lang]["Nothing more today"])
            check(measure_kivy(screen), (960, 540), "kivy empty 960x540")
        finally:
            driver.stop()
