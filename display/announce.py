"""Spoken calls: a chime, then "Nummer K 42, Skranke 3", generated offline.

Speech comes from ``espeak-ng`` (voices da, sv, fi, nl, en ship with
Debian's package), so no call ever leaves the building for an online voice.
One worker thread takes calls from a queue and plays them one at a time:
calls that arrive together are announced one after another, never over each
other, in the order they came. A recall has a new ``call_id`` and is
announced again.

The player is pluggable (``vuoro/speech.py``, shared with the kiosk's speech
mode): ``aplay``/``paplay``/sox ``play`` on a Pi, a ``RecordingPlayer`` in
tests (it keeps each WAV and when it started and ended), or nothing at all.
"""

from __future__ import annotations

import logging
import math
import queue
import shutil
import struct
import tempfile
import threading
import wave
from pathlib import Path
from typing import Any

# The voice, the players and the WAV plumbing are shared with the kiosk's speech mode.
from vuoro.speech import (  # noqa: F401 - re-exported: the signage's tests and main import them from here
    SAMPLE_RATE,
    VOICES,
    CommandPlayer,
    NullPlayer,
    Played,
    Player,
    RecordingPlayer,
    join_wavs,
    player_for,
    speak_to_wav,
    wav_seconds,
)

from .present import spoken_call

log = logging.getLogger(__name__)


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
