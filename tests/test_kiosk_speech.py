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
from test_kiosk_app import hub, make_kiosk, printer  # noqa: F401 - fixtures are found by name

from hardware.virtual import VirtualPrinter
from kiosk.driver import Driver
from server.codes import ALPHABET
from toolkit.broker import Broker
from toolkit.hub_process import HubProcess
from vuoro.speech import RecordingPlayer, Speaker, Utterance, spell_ticket

# Kivy key codes of a USB numeric keypad (NumLock on)
K0, K2, K4, K5, K6, K8, DOT, STAR, SLASH, PLUS, MINUS = 256, 258, 260, 261, 262, 264, 266, 268, 267, 270, 269
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
        blind_kiosk: Driver, speaker: Speaker, printer: VirtualPrinter, hub: HubProcess) -> None:
    app, ticket = blind_kiosk.app, blind_kiosk.app.screen("ticket")
    ears = Listener(blind_kiosk, speaker)
    booking = book_today(hub)
    start = datetime.fromisoformat(booking["start"])
    if start.date() != datetime.now(start.tzinfo).date():
        pytest.skip("the first free time is after midnight: check-in is for the booking's own day")

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
    assert speaker.player.played  # the recording player "played" what was not cut off by a newer key


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
