"""A headset plugged in starts speech mode (EN 301 549 5.1.3): a USB audio adapter appearing as a sound card.

The Raspberry Pi's own 3.5 mm jack (Pi 4) has no plug detection, so there
the keypad's speech key is the way in. A USB audio adapter (the Pi 5 has no
jack) is a sound card that exists only while it is plugged in: with
``headset_card = "Device"`` (its name in ``/proc/asound/cards``; ``aplay -l``
shows it) the kiosk starts speech mode when the card appears and ends it
when it goes. A USB headset itself is such a card too.
"""

from __future__ import annotations

from pathlib import Path


class HeadsetWatch:
    """``poll()`` → True when the card came, False when it went, None when nothing changed."""

    def __init__(self, card: str, cards_file: str = "/proc/asound/cards") -> None:
        self.card, self.cards_file = card, Path(cards_file)
        self.present = self._present()

    def _present(self) -> bool:
        try:
            text = self.cards_file.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return False
        return any(self.card in line for line in text.splitlines())

    def poll(self) -> bool | None:
        now = self._present()
        if now == self.present:
            return None
        self.present = now
        return now
