"""Numbering restore: a branch hub asks the centre where today's numbers stand before it serves anyone.

A hub started on a wiped or replaced disk (or a restored backup) would begin today's numbers at 001
again, and a visitor holding K004 would meet a second K004. With ``[central]``, ``vuoro hub`` asks
the centre (``GET /api/v1/numbering?day=<its business day>``) before it answers its first request,
and each letter goes on from the larger of its own next number and the centre's. It never lowers
a number. A centre that does not answer within a few seconds is logged and the branch starts as it
would alone: serving visitors comes first, and a centre that is down has nothing newer than the
branch unless the branch lost its disk too — that case is said in the warning.

The restored numbers live in the engine until the next ticket of each letter is committed (then the
store's own ``MAX(number)`` carries them); a reload of the engine before that (a failed commit) forgets
them: a narrow window, logged.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import requests

if TYPE_CHECKING:
    from server.config import CentralLink
    from server.hub import Hub

log = logging.getLogger("vuoro.uplink")

TIMEOUT_S = (3.0, 5.0)


def restore_numbering(hub: Hub, link: CentralLink) -> dict[str, int] | None:
    """Ask the centre and raise the engine's next numbers where the centre's are higher; the letters raised
    (``{}``: nothing to raise), or None when the centre did not answer."""
    day = hub.call(lambda engine, now: engine.day)
    try:
        answer = requests.get(f"{link.url}/api/v1/numbering", params={"day": day.isoformat()},
                              headers={"Authorization": f"Bearer {link.token}"}, timeout=TIMEOUT_S,
                              verify=link.ca_file or True)
        answer.raise_for_status()
        central: dict[str, Any] = answer.json()["next"]
    except (requests.RequestException, ValueError, KeyError) as exc:
        log.warning("could not ask the centre where today's numbers stand (%s): numbering goes on from this hub's "
                    "own store. If this hub's disk was wiped or replaced today, numbers already given may be given "
                    "again.", exc)
        return None

    def raise_numbers(engine: Any, now: Any) -> dict[str, int]:
        raised = {}
        if engine.day != day:  # midnight passed while we asked: the new day starts from 1 anyway
            return raised
        for letter, nxt in central.items():
            if isinstance(nxt, int) and nxt > engine.next_numbers.get(letter, 1):
                engine.next_numbers[letter] = raised[letter] = nxt
        return raised

    raised: dict[str, int] = hub.call(raise_numbers)
    if raised:
        log.warning("numbering restored from the centre for %s: %s", day,
                    ", ".join(f"{letter} goes on at {n:03d}" for letter, n in sorted(raised.items())))
    return raised
