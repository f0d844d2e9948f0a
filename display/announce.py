"""Spoken calls: a chime, then "Nummer K 42, Skranke 3", generated offline.

Speech comes from ``espeak-ng`` (voices da, sv, fi, nl, en ship with
Debian's package), so no call ever leaves the building for an online voice.
One worker thread takes calls from a queue and plays them one at a time:
calls that arrive together are announced one after another, never over each
other, in the order they came. A recall has a new ``call_id`` and is
announced again.

The player is pluggable: ``aplay``/``paplay``/sox ``play`` on a Pi, a
``RecordingPlayer`` in tests (it keeps each WAV and when it started and
ended), or nothing at all.
"""

from __future__ import annotations

import logging
import math
import queue
import shutil
import struct
import subprocess
import tempfile
import threading
import time
import wave
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from .present import spoken_call

log = logging.getLogger(__name__)

VOICES = {"da": "da", "sv": "sv", "fi": "fi", "nl": "nl", "en": "en"}
SAMPLE_RATE = 22050  # espeak-ng's own rate: chime and speech join without resampling


class Player(Protocol):
    def play(self, path: Path, label: str) -> None:
        """Play a WAV file and return when it has finished."""


class NullPlayer:
    def play(self, path: Path, label: str) -> None:
        return None


class CommandPlayer:
    """Plays through a command line tool (``aplay -q``, ``paplay``, ``play -q``)."""

    def __init__(self, command: Sequence[str]):
        self.command = list(command)

    def play(self, path: Path, label: str) -> None:
        try:
            subprocess.run([*self.command, str(path)], check=False, timeout=60,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        except (OSError, subprocess.TimeoutExpired) as exc:
            log.warning("could not play %s: %s", path, exc)


@dataclass
class Played:
    label: str
    path: Path
    start: float
    end: float


@dataclass
class RecordingPlayer:
    """For tests: keeps each WAV, and the times it 'played' for as long as it lasts."""

    folder: Path
    time_scale: float = 1.0  # "play" for this share of the WAV's length (0: instantly)
    played: list[Played] = field(default_factory=list)
    playing_now: int = 0
    most_at_once: int = 0
    done: threading.Condition = field(default_factory=threading.Condition)

    def play(self, path: Path, label: str) -> None:
        keep = self.folder / f"{len(self.played):03d}-{label}.wav"
        shutil.copyfile(path, keep)
        with self.done:
            self.playing_now += 1
            self.most_at_once = max(self.most_at_once, self.playing_now)
        start = time.monotonic()
        if self.time_scale:
            time.sleep(wav_seconds(keep) * self.time_scale)
        end = time.monotonic()
        with self.done:
            self.playing_now -= 1
            self.played.append(Played(label, keep, start, end))
            self.done.notify_all()

    def wait_for(self, count: int, timeout: float) -> bool:
        with self.done:
            return self.done.wait_for(lambda: len(self.played) >= count, timeout)


def player_for(name: str) -> Player:
    """``auto`` picks the first of aplay, paplay, play that is installed."""
    commands = {"aplay": ["aplay", "-q"], "paplay": ["paplay"], "play": ["play", "-q"]}
    if name == "none":
        return NullPlayer()
    if name in commands:
        return CommandPlayer(commands[name])
    for candidate in ("aplay", "paplay", "play"):
        if shutil.which(candidate):
            return CommandPlayer(commands[candidate])
    log.warning("no audio player found (aplay, paplay, play): announcements are silent")
    return NullPlayer()


def wav_seconds(path: Path) -> float:
    with wave.open(str(path), "rb") as w:
        return w.getnframes() / float(w.getframerate())


def chime_frames(rate: int = SAMPLE_RATE) -> bytes:
    """A soft two-tone "ding-dong" (E6 then C6) with a decaying envelope, 16-bit mono."""
    out = bytearray()
    for freq, seconds in ((1318.5, 0.45), (1046.5, 0.7)):
        n = int(rate * seconds)
        for i in range(n):
            t = i / rate
            envelope = min(1.0, i / (0.01 * rate)) * math.exp(-4.0 * t)
            sample = 0.35 * envelope * (math.sin(2 * math.pi * freq * t) + 0.3 * math.sin(4 * math.pi * freq * t))
            out += struct.pack("<h", int(max(-1.0, min(1.0, sample)) * 32767))
    out += bytes(int(rate * 0.25) * 2)  # a breath before the voice
    return bytes(out)


def write_chime(path: Path, rate: int = SAMPLE_RATE) -> Path:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(chime_frames(rate))
    return path


def speak_to_wav(text: str, lang: str, path: Path, *, espeak: str = "espeak-ng") -> Path:
    """Synthesises ``text`` with espeak-ng into ``path`` (22 kHz mono WAV)."""
    voice = VOICES.get(lang, "en")
    subprocess.run([espeak, "-v", voice, "-s", "150", "-w", str(path), text], check=True, timeout=30,
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return path


def join_wavs(parts: list[Path], out: Path) -> Path:
    """Chime + speech in one file (same format: both made here at espeak's rate)."""
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


class Announcer:
    """One worker, one queue: calls are spoken in order, one at a time."""

    def __init__(self, lang: str, player: Player, *, chime: bool = True, espeak: str = "espeak-ng",
                 workdir: Path | None = None):
        self.lang = lang
        self.player = player
        self.chime = chime
        self.espeak = espeak if shutil.which(espeak) else None
        if self.espeak is None:
            log.warning("espeak-ng is not installed: calls get the chime only")
        self._tmp = None if workdir else tempfile.TemporaryDirectory(prefix="vuoro-announce-")
        self.workdir = Path(workdir or self._tmp.name)  # type: ignore[union-attr]
        self.chime_path = write_chime(self.workdir / "chime.wav")
        self.queue: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self.spoken = 0
        self._thread = threading.Thread(target=self._run, name="announcer", daemon=True)
        self._thread.start()

    def announce(self, call: dict[str, Any]) -> None:
        """Called from the MQTT thread: never blocks it, the worker does the talking."""
        self.queue.put(call)

    def close(self, timeout: float = 5.0) -> None:
        self.queue.put(None)
        self._thread.join(timeout)
        if self._tmp:
            self._tmp.cleanup()

    def render(self, call: dict[str, Any], index: int) -> Path:
        text = spoken_call(call, self.lang)
        parts = [self.chime_path] if self.chime else []
        if self.espeak:
            parts.append(speak_to_wav(text, self.lang, self.workdir / f"speech-{index}.wav", espeak=self.espeak))
        if not parts:
            parts = [self.chime_path]
        return join_wavs(parts, self.workdir / f"call-{index}.wav")

    def _run(self) -> None:
        index = 0
        while True:
            call = self.queue.get()
            if call is None:
                return
            index += 1
            try:
                path = self.render(call, index)
                self.player.play(path, call["ticket"])
                self.spoken += 1
            except Exception:  # noqa: BLE001 - a failed announcement must not stop the next one
                log.exception("could not announce %s", call.get("ticket"))
