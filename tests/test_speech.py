"""vuoro/speech.py: the espeak-ng voice the kiosk's speech mode and the signage's announcer share."""

from __future__ import annotations

import array
import threading
import wave
from pathlib import Path

import pytest

from vuoro.i18n import LANGUAGES
from vuoro.speech import DEFAULT_VOLUME, VOLUME_STEPS, RecordingPlayer, Speaker, speakable, spell_ticket


def loudness(path: Path) -> tuple[float, float]:
    with wave.open(str(path), "rb") as w:
        samples = array.array("h", w.readframes(w.getnframes()))
        return w.getnframes() / w.getframerate(), (sum(s * s for s in samples) / max(1, len(samples))) ** 0.5


def test_ticket_numbers_and_screen_text_as_a_voice_reads_them() -> None:
    assert spell_ticket("K042") == "K 42" and spell_ticket("bk-7") == "BK 7" and spell_ticket("Kvik") == "Kvik"
    assert speakable("3 personer før dig · Ca. 12 min.") == "3 personer før dig, Ca. 12 min."
    assert speakable("KVIK – hurtig hjælp\nTag din billet …") == "KVIK, hurtig hjælp. Tag din billet."
    assert speakable("I dag 09:00–09:15") == "I dag 09:00 - 09:15"


def test_every_kiosk_language_has_a_voice_that_makes_sound(tmp_path: Path) -> None:
    speaker = Speaker(RecordingPlayer(tmp_path, time_scale=0), workdir=tmp_path)
    try:
        words = {"da": "Dit nummer er K 42", "sv": "Ditt nummer är K 42", "fi": "Numerosi on K 42",
                 "nl": "Uw nummer is K 42", "en": "Your number is K 42"}
        for lang in LANGUAGES:
            speaker.say(words[lang], lang, interrupt=False)
        assert speaker.wait_made(len(LANGUAGES), 20)
        for utterance in speaker.said:
            assert utterance.path is not None, utterance
            seconds, rms = loudness(utterance.path)
            assert seconds > 0.5 and rms > 300, (utterance.lang, seconds, rms)
    finally:
        speaker.close()


def test_a_new_utterance_cuts_off_the_one_playing_and_drops_the_queued_ones(tmp_path: Path) -> None:
    player = RecordingPlayer(tmp_path, time_scale=1.0)  # plays as long as the speech lasts
    speaker = Speaker(player, workdir=tmp_path)
    try:
        speaker.say("Tag et nummer: vælg, hvad du skal. Valg på denne skærm: tretten.", "da")
        with player.done:
            assert player.done.wait_for(lambda: player.playing_now == 1, 10)  # the long one is playing
        speaker.say("Dette bliver aldrig sagt", "da", interrupt=False)  # queued behind it...
        speaker.say("Svenska", "sv")  # ...until the visitor moves on: both go, this one is said
        assert player.wait_for(2, 10)
        first, second = player.played
        assert first.cut and not second.cut and "sv" in second.label
        assert speaker.said[1].dropped and speaker.said[1].path is None
        assert second.start >= first.end
    finally:
        speaker.close()


def test_volume_steps_and_reset(tmp_path: Path) -> None:
    speaker = Speaker(RecordingPlayer(tmp_path, time_scale=0), workdir=tmp_path)
    try:
        assert speaker.volume == 100 == VOLUME_STEPS[DEFAULT_VOLUME]
        while speaker.louder():
            pass
        assert speaker.volume == max(VOLUME_STEPS)
        loud = speaker.say("Højere", "da")
        speaker.reset_volume()
        assert speaker.volume == 100 and loud.volume == max(VOLUME_STEPS)
        while speaker.softer():
            pass
        assert speaker.volume == min(VOLUME_STEPS) and not speaker.softer()
        soft = speaker.say("Lavere", "da", interrupt=False)
        assert speaker.wait_made(2, 10)
        assert loudness(loud.path)[1] > 2 * loudness(soft.path)[1]  # the amplitude reached espeak-ng
    finally:
        speaker.close()


@pytest.mark.parametrize("interrupt", [True, False])
def test_say_never_blocks_the_caller(tmp_path: Path, interrupt: bool) -> None:
    """The kiosk calls say() on its UI thread: synthesis and playing happen on the speaker's own thread."""
    gate = threading.Event()

    class SlowPlayer(RecordingPlayer):
        def play(self, path: Path, label: str) -> None:
            gate.wait(5)
            super().play(path, label)

    speaker = Speaker(SlowPlayer(tmp_path, time_scale=0), workdir=tmp_path)
    try:
        speaker.say("Et", "da")
        speaker.say("To", "da", interrupt=interrupt)  # returns at once although the player is stuck
        gate.set()
        assert speaker.wait_made(2, 10)
    finally:
        speaker.close()
