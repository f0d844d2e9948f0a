"""Speech mode and the tactile keypad (issue 20): a blind visitor takes a ticket and checks in without the screen.

The kiosk runs in a real offscreen window against a real hub, broker and virtual printer; it is driven
by keypad keys dispatched through the window, and the test finds its way by what the kiosk *says* (the
words given to espeak-ng), never by the screen's pixels. The voice is real espeak-ng, written to WAV files.
"""
# ruff: noqa: F811 - the fixtures imported below are the arguments of the tests

from __future__ import annotations

import array
import time
import uuid
import wave
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import requests
from kivy.core.window import Window
from kivy.graphics import Line
from test_kiosk_app import (  # noqa: F401 - fixtures by name
    DAYTIME,
    add_event,
    daytime_hub,
    hub,
    hub_clock,
    make_kiosk,
    printer,
    programme_shown,
)

from hardware.virtual import VirtualPrinter
from kiosk.driver import Driver
from kiosk.focus import controls, window_box
from server.codes import ALPHABET
from toolkit.broker import Broker
from toolkit.hub_process import HubProcess
from vuoro.speech import RecordingPlayer, Speaker, Utterance, spell_ticket

# Kivy key codes of a USB numeric keypad (NumLock on)
K0, K2, K4, K5, K6, K8, K9, DOT, STAR, SLASH, PLUS, MINUS = 256, 258, 260, 261, 262, 264, 265, 266, 268, 267, 270, 269
KIOSK1 = {"Authorization": "Bearer demo-kiosk1-token-change-me"}


@pytest.fixture()
def speaker(tmp_path: Path) -> Speaker:
    return Speaker(RecordingPlayer(tmp_path / "played", time_scale=0), workdir=tmp_path)


@pytest.fixture()
def blind_kiosk(hub: HubProcess, live_broker: Broker, printer: VirtualPrinter, speaker: Speaker,
                tmp_path: Path) -> Iterator[Driver]:
    (tmp_path / "played").mkdir()
    driver = make_kiosk(hub.url, live_broker, printer.url, speaker=speaker)
    yield driver
    driver.stop()


@pytest.fixture()
def daytime_blind_kiosk(daytime_hub: HubProcess, live_broker: Broker, printer: VirtualPrinter, speaker: Speaker,
                        tmp_path: Path) -> Iterator[Driver]:
    """The blind visitor's kiosk on ``daytime_hub``'s clock: a weekday morning, times left today to check in for."""
    (tmp_path / "played").mkdir()
    driver = make_kiosk(daytime_hub.url, live_broker, printer.url, speaker=speaker, clock=hub_clock(daytime_hub),
                        root=daytime_hub.topic_root)
    yield driver
    driver.stop()


class Listener:
    """The visitor's ears: what the kiosk said since the last key."""

    def __init__(self, driver: Driver, speaker: Speaker) -> None:
        self.driver, self.speaker = driver, speaker

    def press(self, code: int, *, settle: float = 0.35) -> list[Utterance]:
        """One key; then the loop runs long enough for the speech clock (every 0.15 s) to catch up."""
        before = len(self.speaker.said)
        self.driver.key(code, text={K0: "0", K2: "2", K4: "4", K5: "5", K6: "6", K8: "8", DOT: "."}.get(code))
        self.run(settle)
        return self.speaker.said[before:]

    def run(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self.driver.pump(1)

    def words(self, utterances: list[Utterance]) -> str:
        return " | ".join(u.text for u in utterances)

    def find(self, wanted: str, *, key: int = K6, tries: int = 45) -> list[Utterance]:
        """Move the focus until the kiosk names ``wanted`` (the first thing it says after a move is the focus)."""
        heard = []
        for _ in range(tries):
            said = self.press(key, settle=0.02)
            if said:
                heard.append(said[0].text)
                if said[0].text == wanted:
                    return said
        raise AssertionError(f"never heard {wanted!r}; heard {heard}")

    def type(self, char: str, heard: str) -> str:
        """A character of the code on the screen's keyboard, the way a visitor who knows its order would:
        2 jumps a row of 8 ahead, 6 and 4 step; 5 when the kiosk names the wanted key."""
        order = ALPHABET + "".join(ch for ch in "0123456789" if ch not in ALPHABET)
        if heard in order:
            ahead = order.index(char) - order.index(heard)
            while ahead >= 8:
                self.press(K2, settle=0.02)
                ahead -= 8
            key = K6 if ahead >= 0 else K4
        else:
            key = K6
        if heard != char:
            self.find(char, key=key)
        self.press(K5, settle=0.05)
        return char

    def until(self, condition: Any, what: str, timeout: float = 15.0) -> None:
        self.driver.wait(condition, timeout, what)
        self.run(0.4)  # the speech clock reads out what changed


def audio_rms(path: Path) -> tuple[float, float]:
    """(seconds, RMS of the 16-bit samples): silence would be near 0."""
    with wave.open(str(path), "rb") as w:
        assert w.getsampwidth() == 2 and w.getnchannels() == 1
        samples = array.array("h", w.readframes(w.getnframes()))
        seconds = w.getnframes() / w.getframerate()
    return seconds, (sum(s * s for s in samples) / max(1, len(samples))) ** 0.5


def book_today(hub: HubProcess) -> dict[str, Any]:
    """A librarian booked for the first free time today (as a visitor would have at home): its code."""
    slots = requests.get(hub.url + "/api/v1/slots?service=bibliotekar&days=1", headers=KIOSK1, timeout=5).json()
    first = next(slot for slot in slots["slots"] if slot.get("free", True))
    answer = requests.post(hub.url + "/api/v1/bookings/self", timeout=5, json={
        "service": "bibliotekar", "start": first["start"], "slots": 1, "language": "sv"},
        headers={**KIOSK1, "Idempotency-Key": f"speech-{uuid.uuid4()}"})
    answer.raise_for_status()
    return answer.json()["booking"]


def test_a_blind_visitor_takes_a_ticket_and_checks_in_by_keypad_and_speech(
        daytime_blind_kiosk: Driver, speaker: Speaker, printer: VirtualPrinter, daytime_hub: HubProcess) -> None:
    blind_kiosk, hub = daytime_blind_kiosk, daytime_hub  # a weekday morning: today's times are there to book
    app, ticket = blind_kiosk.app, blind_kiosk.app.screen("ticket")
    ears = Listener(blind_kiosk, speaker)
    booking = book_today(hub)
    start = datetime.fromisoformat(booking["start"])
    assert start.date() == DAYTIME.date()  # check-in is for the booking's own day: today

    # The speech key: how to use the keys, then the home screen, in the kiosk's language (Danish).
    said = ears.press(STAR)
    assert said[0].lang == "da" and said[0].text.startswith("Tale er slået til. Flyt med 4 og 6"), said
    home = ears.words(said)
    assert "Tag et nummer: vælg, hvad du skal" in home and "Valg på denne skærm:" in home, home

    # Swedish, found by ear: each language names itself in its own voice.
    said = ears.find("Svenska")
    assert said[0].lang == "sv"
    said = ears.press(K5)
    assert app.session.lang == "sv"
    swedish = [u for u in said if u.lang == "sv"]
    assert any("Ta en kölapp: välj vad du behöver" in u.text for u in swedish), said

    # The KVIK tile: its name and its wait; 5 takes the number.
    kvik = _tile_words(app, "kvik")
    assert kvik.startswith("KVIK, snabb hjälp. ") and "vänt" in kvik, kvik  # its wait, or "no wait"
    ears.find(kvik)
    said = ears.press(K5)
    ears.until(lambda: app.sm.current == "ticket" and ticket.printed is not None, "the ticket, printed")
    number = ticket.number
    receipt = printer.wait_for(1, timeout=10)[0]
    assert number in receipt.text
    spoken = ears.words([u for u in speaker.said if u.lang == "sv"])
    # Everything the ticket says is spoken: the number (as "K 12"), the service, the place in the queue, the wait.
    assert f"Ditt nummer. {spell_ticket(number)}. KVIK, snabb hjälp" in spoken, spoken
    assert _for_voice(ticket.place) in spoken, (ticket.place, spoken)
    assert "Val: Klar." in spoken  # a screen with few choices names them
    assert "Ta din lapp och håll ögonen på skärmen" in spoken, spoken

    # Louder, softer, and 0 says it all again.
    loud = speaker.volume
    assert ears.press(PLUS)[0].text == "Högre" and speaker.volume > loud
    said = ears.press(K0)
    assert f"Ditt nummer. {spell_ticket(number)}" in said[0].text

    # The dot key goes back: "Klar" on the ticket screen, home.
    ears.press(DOT)
    assert app.sm.current == "home"

    # Check in with the booking's code, typed on the screen's keyboard by ear.
    ears.find("Jag har en bokad tid")
    ears.press(K5)
    assert app.sm.current == "checkin"
    heard = ears.press(K6, settle=0.02)[0].text  # onto the keyboard: its keys are named as the focus moves
    for char in booking["code"]:
        heard = ears.type(char, heard)
    assert app.screen("checkin").code == booking["code"]
    ears.find("Checka in")
    ears.press(K5)
    ears.until(lambda: app.sm.current == "ticket" and ticket.printed is not None and ticket.number != number,
               "checked in")
    checked_in = ticket.number
    assert printer.wait_for(2, timeout=10)[1] is not None
    spoken = ears.words(speaker.said[-6:])
    assert f"Ditt nummer. {spell_ticket(checked_in)}" in spoken and f"{start:%H:%M}" in spoken, spoken

    # Real audio came out, in both voices: espeak-ng's WAVs are there and not silent.
    assert speaker.wait_made(len(speaker.said), 20)
    for lang in ("da", "sv"):
        made = [u for u in speaker.said if u.lang == lang and u.path is not None]
        assert made, lang
        seconds, rms = audio_rms(made[0].path)
        assert seconds > 0.3 and rms > 300, (lang, made[0].text, seconds, rms)
    print("\n".join(f"[{u.lang}] {u.text}" for u in speaker.said))  # the transcript, shown with -s or on failure
    # Everything not overtaken by a newer key was played (the recording player stands in for aplay).
    kept = [u for u in speaker.said if u.path is not None and not u.dropped]
    assert len(kept) > 10 and speaker.player.wait_for(len(kept), 10), (len(kept), len(speaker.player.played))
    ticket_said = next(u for u in kept if u.text.startswith(f"Ditt nummer. {spell_ticket(number)}"))
    assert any(p.path.read_bytes() == ticket_said.path.read_bytes() for p in speaker.player.played)


def _tile_words(app: Any, service: str) -> str:
    from kiosk.focus import spoken_label
    from kiosk.voice import for_voice
    from vuoro.speech import speakable

    tile = next(t for t in app.screen("home").ids.tiles.children if t.service == service)
    return speakable(for_voice(spoken_label(tile, app.session.tr)))


def _for_voice(text: str) -> str:
    from kiosk.voice import for_voice
    from vuoro.speech import speakable

    return speakable(for_voice(text))


# -- time that waits, in speech mode (EN 301 549 11.2.2.1, 5.1.3.13) -----------------------------------


def test_speech_mode_gives_more_time_says_the_warning_and_resets_the_volume_after_the_visitor(
        hub: HubProcess, speaker: Speaker, tmp_path: Path) -> None:
    """All on the kiosk's own Kivy clock: nothing here calls check_idle."""
    (tmp_path / "played").mkdir()
    driver = make_kiosk(hub.url, None, None, speaker=speaker, idle_timeout=1.5, idle_warning=2.0,
                        speech_time_factor=3.0)  # 4.5 s in speech mode, warned for its last 2 s (ticks are 1 s)
    app, session, ears = driver.app, driver.app.session, Listener(driver, speaker)
    try:
        ears.press(STAR)
        ears.press(PLUS)
        assert speaker.volume > 100
        ears.find("Jeg har en tid")
        pressed = time.monotonic()
        ears.press(K5)
        assert app.sm.current == "checkin" and app.idle_limit() == 4.5
        driver.wait(lambda: app.warning_seconds > 0, 10, "the warning")
        assert time.monotonic() - pressed > 1.5  # 2.5 s after the key, not the 0.75 s of a visitor without speech
        ears.run(0.4)
        assert any(u.text.startswith("Er du her stadig? Kiosken starter forfra om") for u in speaker.said[-3:])
        # The keypad answers the warning: 5 (on "More time") gives more time, the screen stays, nothing typed.
        ears.press(K5)
        assert app.warning_seconds == 0 and app.sm.current == "checkin" and app.screen("checkin").code == ""
        # Left alone: home (speech still on, for the visitor who may be there), then the defaults.
        driver.wait(lambda: app.sm.current == "home", 15, "home")
        assert app.voice.on and speaker.volume > 100
        driver.wait(lambda: not app.voice.on, 15, "speech mode to end after the visitor")
        assert speaker.volume == 100 and session.lang == "da" and not app.keypad_used
        assert speaker.said[-1].text == "Tale er slået fra."
    finally:
        driver.stop()


# -- the keypad and the barcode scanner ----------------------------------------------------------------


def test_a_wedge_scanners_burst_checks_in_and_never_moves_the_focus(blind_kiosk: Driver, speaker: Speaker) -> None:
    app, ears = blind_kiosk.app, Listener(blind_kiosk, speaker)
    ears.press(STAR)
    ears.find("Svenska")
    focused = app.focus.widget
    # A scanner types the main row's keys within milliseconds, then Enter: a check-in, not keypad moves.
    for char in "7KQ3MZ":
        Window.dispatch("on_key_down", ord(char.lower()), 0, char, [])
        Window.dispatch("on_textinput", char)
    Window.dispatch("on_key_down", 13, 0, None, [])
    assert app.sm.current == "checkin" and app.screen("checkin").code == "7KQ3MZ"
    assert app.focus.widget is focused or app.focus.widget not in app.sm.get_screen("home").walk()
    blind_kiosk.wait(lambda: app.sm.current == "notice", 10, "the hub's answer")
    # A person's slow keypad 5 with its text "5" is the keypad's: the wedge never sees it.
    ears.press(K5)
    assert app.wedge.chars == []


# -- headset, privacy, focus ring ---------------------------------------------------------------------


def test_plugging_a_headset_starts_speech_and_unplugging_ends_it(hub: HubProcess, speaker: Speaker,
                                                                 tmp_path: Path) -> None:
    (tmp_path / "played").mkdir()
    cards = tmp_path / "cards"
    cards.write_text(" 0 [Headphones     ]: bcm2835_headpho - bcm2835 Headphones\n", encoding="utf-8")
    driver = make_kiosk(hub.url, None, None, speaker=speaker, headset_card="Device", sound_cards=str(cards))
    app, ears = driver.app, Listener(driver, speaker)
    try:
        ears.run(0.3)
        assert not app.voice.on
        cards.write_text(cards.read_text() + " 1 [Device         ]: USB-Audio - USB Audio Device\n", encoding="utf-8")
        driver.wait(lambda: app.voice.on, 5, "speech mode from the headset")
        ears.run(0.4)
        assert speaker.said[0].text.startswith("Tale er slået til")
        ears.press(PLUS)
        cards.write_text(" 0 [Headphones     ]: bcm2835_headpho - bcm2835 Headphones\n", encoding="utf-8")
        driver.wait(lambda: not app.voice.on, 5, "speech mode to end with the headset")
        assert speaker.volume == 100
    finally:
        driver.stop()


def test_privacy_blanks_the_screen_and_the_focus_ring_is_drawn(blind_kiosk: Driver, speaker: Speaker,
                                                               tmp_path: Path) -> None:
    from PIL import Image

    app, ears = blind_kiosk.app, Listener(blind_kiosk, speaker)
    ears.press(K6)  # the keypad alone, no speech: the ring shows where 5 will act
    lines = [i for i in app._overlay.children if isinstance(i, Line)]
    x, y, w, h = window_box(app.focus.widget)
    assert len(lines) == 2 and lines[0].rectangle[0] >= x and lines[0].rectangle[2] <= w
    ringed = Image.open(blind_kiosk.screenshot(str(tmp_path / "ring.png"))).convert("RGB")
    row = int(Window.height - (y + h / 2))  # across the ring's left side, halfway up the control
    across = {ringed.getpixel((int(x) + dx, row)) for dx in range(0, 14)}
    assert {(0, 0, 0), (255, 212, 0)} <= across, across  # its dark line and its yellow one
    ears.press(STAR)
    ears.press(SLASH)
    assert app.blanked and speaker.said[-1].text == "Skærmen er slukket."
    shot = Image.open(blind_kiosk.screenshot(str(tmp_path / "blank.png"))).convert("L")
    assert shot.getextrema() == (0, 0)  # nothing to read over the visitor's shoulder
    ears.press(SLASH)
    assert not app.blanked


# -- reach: the low layout -----------------------------------------------------------------------------


def test_the_low_layout_puts_every_control_in_the_lower_half_of_a_portrait_panel(hub: HubProcess) -> None:
    driver = make_kiosk(hub.url, None, None, size=(1080, 1920), layout="low")
    app = driver.app
    try:
        for name in ("home", "checkin", "events", "book"):
            app.go(name)
            driver.pump(4)
            found = controls(app.focus_root())
            assert found, name
            high = [(b.text, window_box(b)) for b in found if window_box(b)[1] + window_box(b)[3] > 1920 / 2 + 1]
            assert not high, (name, high)
        assert app.session.low and app.root.ids.upper.height > 800
    finally:
        driver.stop()
        Window.size = (800, 480)


# -- the 2.0 text step and long lists: the keypad reaches what is scrolled away ------------------------


def test_at_the_2_0_text_step_the_screen_scrolls_to_the_focused_control(hub: HubProcess, speaker: Speaker,
                                                                       tmp_path: Path) -> None:
    (tmp_path / "played").mkdir()
    driver = make_kiosk(hub.url, None, None, speaker=speaker, text_scale=2.0)
    app, ears = driver.app, Listener(driver, speaker)
    try:
        scroller = app.root.ids.scroller
        assert scroller.do_scroll_y and app.sm.height > scroller.height  # taller than the 7" panel: it scrolls
        assert (app.session.lang_cols, app.session.tile_cols, app.session.action_cols) == (3, 1, 2)
        ears.press(K6)  # the first key shows the focus on the first control
        ears.press(K4)  # back round from the first control: the last one, A+, below the panel's edge
        bigger = app.screen("home").ids.bigger
        assert app.focus.widget == bigger and bigger.text == "A+"
        x, y, w, h = window_box(bigger)
        assert y >= 0 and y + h <= Window.height, (y, h)  # scrolled into view
        ears.press(K5)
        assert app.session.scale == 1.0 and not scroller.do_scroll_y  # A+ goes round to normal text
    finally:
        driver.stop()


def test_a_sign_up_button_names_its_event(blind_kiosk: Driver, speaker: Speaker, hub: HubProcess) -> None:
    app, ears = blind_kiosk.app, Listener(blind_kiosk, speaker)
    title = f"Lydbogscafé {uuid.uuid4().hex[:4]}"
    add_event(hub, title, seats=5)
    app.go("events")
    blind_kiosk.wait(lambda: programme_shown(blind_kiosk), 10, "events")
    ears.press(STAR)
    heard = [ears.press(K2, settle=0.02)[0] for _ in range(12)]
    named = [u for u in heard if u.text.startswith("Tilmeld: ") and u.text.endswith(title)]
    assert named and named[0].lang == "da", [u.text for u in heard]  # "Tilmeld: 17:40 - 18:40 Lydbogscafé …"


def test_the_keypad_reaches_free_times_scrolled_out_of_view(blind_kiosk: Driver, speaker: Speaker) -> None:
    app, ears = blind_kiosk.app, Listener(blind_kiosk, speaker)
    slots = app.screen("slots")
    app.screen("book").book_service("bibliotekar")
    blind_kiosk.wait(lambda: app.sm.current == "slots" and slots.ids.slots.data, 10, "the free times")

    def counted() -> tuple[list[str], list[Any]]:  # the day's free times, and those the screen shows now
        return ([item["slot"]["start"] for item in slots.ids.slots.data if item.get("slot")],
                [v for v in controls(app.focus_root()) if getattr(v, "slot", None)])

    times, shown = counted()
    if len(times) <= len(shown) + 4:  # late in the site's day (an evening run): the next day has all its times
        slots.choose_day(slots.ids.days.data[1]["day"])
        blind_kiosk.wait(lambda: len(counted()[0]) > len(times), 10, "the next day's free times")
        blind_kiosk.pump(1)
        times, shown = counted()
    assert len(times) > len(shown) + 4, "the day has more free times than the screen shows"
    ears.press(STAR)
    if slots.can_double:  # a choice within the screen is confirmed as the chosen one
        ears.find("30 min.", key=K4)
        said = ears.press(K5, settle=0.5)
        assert slots.length == 2 and "30 min., valgt" in [u.text for u in said], [u.text for u in said]
        ears.find("15 min.", key=K4)
        ears.press(K5, settle=0.5)
        assert slots.length == 1
    reached = set()
    for _ in range(len(shown) + 12):
        ears.press(K6, settle=0.02)
        widget = app.focus.widget
        if getattr(widget, "slot", None):
            reached.add(widget.slot["start"])
    assert len(reached) > len(shown), (len(reached), len(shown))


# -- the visitor's own contrast (5.2) -----------------------------------------------------------------------


def test_the_visitor_switches_to_high_contrast_with_the_keypad_until_the_next_visitor(
        hub: HubProcess, speaker: Speaker, tmp_path: Path) -> None:
    from PIL import Image

    from kiosk import theme

    (tmp_path / "played").mkdir()
    driver = make_kiosk(hub.url, None, None, speaker=speaker)
    app, session, ears = driver.app, driver.app.session, Listener(driver, speaker)
    try:
        def keys_and_back() -> tuple[list[float], list[float]]:
            checkin = app.screen("checkin")
            return list(checkin.ids.keypad.children[0].bg), list(checkin.ids.back.bg)

        # Each button in its palette's colours: the code keyboard's keys light, Back dark (standard).
        assert keys_and_back() == (list(theme.KEY_BG), list(theme.NAV_BG)) != (list(theme.NAV_BG),) * 2
        old_home = app.screen("home")
        ears.press(STAR)
        said = ears.press(K9)
        assert theme.PALETTE == "high_contrast" and said[0].text == "Høj kontrast."
        driver.wait(lambda: app.screen("home").ids.tiles.children, 10, "the tiles, built again")
        kvik = next(t for t in app.screen("home").ids.tiles.children if t.service == "kvik")
        assert kvik.bg == list(theme.hex_colour("#FFE14D"))  # yellow with black words
        assert keys_and_back() == (list(theme.KEY_BG), list(theme.NAV_BG))  # the high-contrast ones now
        shot = Image.open(driver.screenshot(str(tmp_path / "contrast.png"))).convert("RGB")
        assert shot.getpixel((2, Window.height // 2)) == (0, 0, 0)  # the black page
        assert app.screen("home") is not old_home and app.sm.current == "home"
        ears.run(0.4)
        assert any(u.text.startswith("Tag et nummer") for u in speaker.said[-3:])  # the new home is read out
        # The old screens let go of the session: a language change redraws only the new ones.
        before = [dict(item) for item in old_home.ids.tiles.data]
        session.set_language("sv")
        assert [item["title"] for item in old_home.ids.tiles.data] == [item["title"] for item in before]
        # After the visitor (home, untouched for another period): the kiosk's own palette again.
        assert app.check_idle(now=time.monotonic() + 3 * session.config.idle_timeout * 3 + 5)
        assert theme.PALETTE == "standard" and session.lang == "da" and not app.voice.on
    finally:
        driver.stop()
        theme.use("standard")
