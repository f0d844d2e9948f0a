"""Offline speech for the signage's calls and the kiosk's speech mode: espeak-ng, a voice per language.

One module for both: the signage announces calls (``display/announce.py``
adds a chime and its own queue), the kiosk reads its screens out to a blind
visitor (``kiosk/voice.py``). Nothing here leaves the building: espeak-ng
ships da, sv, fi, nl and en voices in Debian's package.

``Speaker`` is the kiosk's voice: one worker thread, newest first. A new
``say()`` interrupts what is being spoken (the visitor has moved on: EN 301
549 5.1.3.4 "interrupt"), the volume has steps and a default it returns to
(5.1.3.11-13). Its output is a ``Player``: ``aplay -D <device>`` to ALSA on a
Pi (the 3.5 mm jack of a Pi 4, a USB adapter on a Pi 5; PipeWire's ALSA
plugin works too), or a ``RecordingPlayer`` that keeps each WAV (tests).
"""

from __future__ import annotations

import logging
import queue
import re
import shutil
import subprocess
import tempfile
import threading
import time
import wave
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

log = logging.getLogger(__name__)

VOICES = {"da": "da", "sv": "sv", "fi": "fi", "nl": "nl", "en": "en"}
SAMPLE_RATE = 22050  # espeak-ng's own rate: chime and speech join without resampling
WORDS_PER_MINUTE = 150
# espeak-ng's amplitude (-a, default 100): the volume steps the keypad's + and - walk through.
VOLUME_STEPS = (40, 60, 80, 100, 125, 150, 180)
DEFAULT_VOLUME = VOLUME_STEPS.index(100)
TICKET_PATTERN = re.compile(r"^([A-Za-z]+)[- ]?0*(\d+)$")


class Player(Protocol):
    def play(self, path: Path, label: str) -> None:
        """Play a WAV file and return when it has finished (or was stopped)."""


class NullPlayer:
    def play(self, path: Path, label: str) -> None:
        return None

    def stop(self) -> None:
        return None


class CommandPlayer:
    """Plays through a command line tool (``aplay -q``, ``paplay``, ``play -q``); ``stop()`` cuts it off."""

    def __init__(self, command: Sequence[str]):
        self.command = list(command)
        self._process: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()

    def play(self, path: Path, label: str) -> None:
        try:
            with self._lock:
                self._process = subprocess.Popen([*self.command, str(path)], stdout=subprocess.DEVNULL,
                                                 stderr=subprocess.DEVNULL)
            self._process.wait(timeout=60)
        except (OSError, subprocess.TimeoutExpired) as exc:
            log.warning("could not play %s: %s", path, exc)
            self.stop()
        finally:
            with self._lock:
                self._process = None

    def stop(self) -> None:
        with self._lock:
            if self._process is not None and self._process.poll() is None:
                self._process.terminate()


@dataclass
class Played:
    label: str
    path: Path
    start: float
    end: float
    cut: bool = False  # stopped before its end


@dataclass
class RecordingPlayer:
    """For tests: keeps each WAV, and the times it 'played' for as long as it lasts (or until stopped)."""

    folder: Path
    time_scale: float = 1.0  # "play" for this share of the WAV's length (0: instantly)
    played: list[Played] = field(default_factory=list)
    playing_now: int = 0
    most_at_once: int = 0
    done: threading.Condition = field(default_factory=threading.Condition)
    _stop: threading.Event = field(default_factory=threading.Event)

    def play(self, path: Path, label: str) -> None:
        keep = self.folder / f"{len(self.played):03d}-{label}.wav"
        shutil.copyfile(path, keep)
        self._stop.clear()
        with self.done:
            self.playing_now += 1
            self.most_at_once = max(self.most_at_once, self.playing_now)
            self.done.notify_all()
        start = time.monotonic()
        cut = bool(self.time_scale) and self._stop.wait(wav_seconds(keep) * self.time_scale)
        end = time.monotonic()
        with self.done:
            self.playing_now -= 1
            self.played.append(Played(label, keep, start, end, cut))
            self.done.notify_all()

    def stop(self) -> None:
        self._stop.set()

    def wait_for(self, count: int, timeout: float) -> bool:
        with self.done:
            return self.done.wait_for(lambda: len(self.played) >= count, timeout)


def player_for(name: str, device: str | None = None) -> Player:
    """``auto`` picks the first of aplay, paplay, play that is installed; ``device`` is ALSA's (``aplay -D``)."""
    commands = {"aplay": ["aplay", "-q", *(["-D", device] if device else [])], "paplay": ["paplay"],
                "play": ["play", "-q"]}
    if name == "none":
        return NullPlayer()
    if name in commands:
        return CommandPlayer(commands[name])
    for candidate in ("aplay", "paplay", "play"):
        if shutil.which(candidate):
            return CommandPlayer(commands[candidate])
    log.warning("no audio player found (aplay, paplay, play): speech is silent")
    return NullPlayer()


def wav_seconds(path: Path) -> float:
    with wave.open(str(path), "rb") as w:
        return w.getnframes() / float(w.getframerate())


def speak_to_wav(text: str, lang: str, path: Path, *, espeak: str = "espeak-ng", amplitude: int = 100) -> Path:
    """Synthesises ``text`` with espeak-ng's voice for ``lang`` into ``path`` (22 kHz mono WAV)."""
    voice = VOICES.get(lang, "en")
    subprocess.run([espeak, "-v", voice, "-s", str(WORDS_PER_MINUTE), "-a", str(amplitude), "-w", str(path), text],
                   check=True, timeout=30, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return path


def join_wavs(parts: list[Path], out: Path) -> Path:
    """WAVs of one format (all made here at espeak's rate) in one file."""
    params = None
    frames = []
    for part in parts:
        with wave.open(str(part), "rb") as w:
            if params is None:
                params = w.getparams()
            elif (w.getnchannels(), w.getsampwidth(), w.getframerate()) != params[:3]:
                raise ValueError(f"{part} has another format than {parts[0]}")
            frames.append(w.readframes(w.getnframes()))
    assert params is not None
    with wave.open(str(out), "wb") as w:
        w.setparams(params)
        for chunk in frames:
            w.writeframes(chunk)
    return out


def spell_ticket(number: str) -> str:
    """A ticket number as a voice should say it: "K042" → "K 42" (the letter apart, no leading zeros)."""
    match = TICKET_PATTERN.match(number.strip())
    return f"{match.group(1).upper()} {match.group(2)}" if match else number


def speakable(text: str) -> str:
    """Screen text made plain for a voice: no symbols espeak-ng would name or swallow, one line."""
    text = re.sub(r"(\d)\s*[–-]\s*(\d)", r"\1 - \2", text)  # 09:00–09:15: a pause, not "en dash"
    text = re.sub(r"\s*[·–]\s*", ", ", text)
    for symbol, plain in (("…", "."), ("\n", ". "), ("[b]", ""), ("[/b]", "")):
        text = text.replace(symbol, plain)
    text = re.sub(r"\[/?size[^\]]*\]", "", text)
    text = re.sub(r"\s+([.,:;])", r"\1", text)
    return re.sub(r"\s+", " ", text).strip()


@dataclass
class Utterance:
    text: str  # the words espeak-ng was given
    lang: str
    volume: int  # espeak-ng's amplitude
    path: Path | None = None  # the WAV, once made
    dropped: bool = False  # a newer utterance came first: never made


class Speaker:
    """The kiosk's voice: ``say()`` speaks now, cutting off what was being said; volume in steps.

    ``said`` lists every utterance in order (the words, the language, the WAV once made): what a
    test checks, and what the kiosk's log can show.
    """

    def __init__(self, player: Player, *, espeak: str = "espeak-ng", workdir: Path | None = None) -> None:
        self.player = player
        self.espeak = shutil.which(espeak)
        if self.espeak is None:
            log.warning("espeak-ng is not installed: the kiosk's speech mode is silent")
        self._tmp = None if workdir else tempfile.TemporaryDirectory(prefix="vuoro-speech-")
        self.workdir = Path(workdir or self._tmp.name)  # type: ignore[union-attr]
        self.volume_step = DEFAULT_VOLUME
        self.said: list[Utterance] = []
        self.made = threading.Condition()
        self._queue: queue.Queue[Utterance | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="speaker", daemon=True)
        self._thread.start()

    @property
    def volume(self) -> int:
        return VOLUME_STEPS[self.volume_step]

    def louder(self) -> bool:
        """One step up; False at the top (nothing changed)."""
        if self.volume_step + 1 >= len(VOLUME_STEPS):
            return False
        self.volume_step += 1
        return True

    def softer(self) -> bool:
        if self.volume_step == 0:
            return False
        self.volume_step -= 1
        return True

    def reset_volume(self) -> None:
        self.volume_step = DEFAULT_VOLUME

    def say(self, text: str, lang: str, *, interrupt: bool = True) -> Utterance:
        """Speak ``text`` in ``lang``'s voice: now, dropping whatever was queued or playing, or after it
        (``interrupt=False``: the rest of the same screen)."""
        utterance = Utterance(speakable(text), lang, self.volume)
        if interrupt:
            self.silence()  # before it joins ``said``: silence() drops every utterance not yet made
        self.said.append(utterance)
        self._queue.put(utterance)
        return utterance

    def silence(self) -> None:
        """Stop speaking (the visitor interrupted, or speech mode ended)."""
        with self.made:
            for utterance in self.said:  # one being made now is not played when it is ready
                if utterance.path is None:
                    utterance.dropped = True
        while True:
            try:
                dropped = self._queue.get_nowait()
            except queue.Empty:
                break
            if dropped is not None:
                self._done(dropped, None)
            else:
                self._queue.put(None)  # closing: keep the sentinel
                break
        stop = getattr(self.player, "stop", None)
        if stop is not None:
            stop()

    def wait_made(self, count: int, timeout: float = 10.0) -> bool:
        """Until the first ``count`` utterances have their WAVs (or were dropped for newer ones)."""
        with self.made:
            return self.made.wait_for(lambda: len(self.said) >= count and all(
                u.path is not None or u.dropped for u in self.said[:count]), timeout)

    def _done(self, utterance: Utterance, path: Path | None) -> None:
        with self.made:
            utterance.path = path
            utterance.dropped = utterance.dropped or path is None
            self.made.notify_all()

    def close(self, timeout: float = 5.0) -> None:
        self.silence()
        self._queue.put(None)
        self._thread.join(timeout)
        if self._tmp:
            self._tmp.cleanup()

    def _run(self) -> None:
        index = 0
        while True:
            utterance = self._queue.get()
            if utterance is None:
                return
            index += 1
            try:
                if self.espeak is None:
                    self._done(utterance, None)
                    continue
                path = speak_to_wav(utterance.text, utterance.lang, self.workdir / f"say-{index}.wav",
                                    espeak=self.espeak, amplitude=utterance.volume)
                self._done(utterance, path)
                if not utterance.dropped:
                    self.player.play(path, f"{index:03d}-{utterance.lang}")
            except Exception:  # noqa: BLE001 - one failed utterance must not silence the next
                log.exception("could not speak %r", utterance.text)
                self._done(utterance, None)
