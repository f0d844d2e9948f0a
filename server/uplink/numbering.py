"""Numbering restore: a branch hub never gives today's numbers twice, whether or not the centre answers.

A hub started on a wiped or replaced disk (or a restored backup) would begin today's numbers at 001 again, and a
visitor holding K004 would meet a second K004. With ``[central]``, ``vuoro hub`` asks the centre
(``GET /api/v1/numbering?day=<its business day>``) before it answers its first request, and each letter goes on
from the larger of its own next number and the centre's. It never lowers a number.

The rule when the centre does not answer:

- **the store was already there** (a restart, a power cut): its own numbers are the truth; one try, then the hub
  serves (a centre that is down has nothing newer than a branch that kept its disk);
- **the store is new** (a new or wiped disk: the file did not exist at start): the hub waits up to
  ``[central].start_wait_s`` (default 20 s) for the centre, trying every second. If the centre still does not
  answer, today's numbers of every letter start at ``FALLBACK_FROM`` (501): K501, K502 … A library gives far
  fewer than 500 tickets of one letter a day, so these cannot meet numbers the lost disk gave, and the visitors
  get tickets after at most that wait. The log says so as an error, the hub's health says ``"numbering":
  "fallback"``, and the next day starts at 001 as always.

Whatever was raised is kept for the day in ``numbering-floor.json`` beside the store, so a restart later that day
(a config from the centre, a power cut) keeps it even before a ticket of that letter was committed and with the
centre away.
"""

from __future__ import annotations

import json
import logging
import time
from datetime import date
from typing import TYPE_CHECKING, Any

import requests

from server.uplink.pushed import write_atomically

if TYPE_CHECKING:
    from server.config import CentralLink
    from server.hub import Hub

log = logging.getLogger("vuoro.uplink")

TIMEOUT_S = (3.0, 5.0)
FALLBACK_FROM = 501
FLOOR_FILE = "numbering-floor.json"


def ask_centre(link: CentralLink, day: date) -> dict[str, int] | None:
    try:
        answer = requests.get(f"{link.url}/api/v1/numbering", params={"day": day.isoformat()},
                              headers={"Authorization": f"Bearer {link.token}"}, timeout=TIMEOUT_S,
                              verify=link.ca_file or True)
        answer.raise_for_status()
        found = answer.json()["next"]
        return {str(k): int(v) for k, v in found.items() if isinstance(v, int)}
    except (requests.RequestException, ValueError, KeyError, TypeError, AttributeError) as exc:
        log.warning("could not ask the centre where today's numbers stand: %s", exc)
        return None


def restore_numbering(hub: Hub, link: CentralLink, *, fresh: bool = False) -> dict[str, Any]:
    """Raise the engine's next numbers by the day's floor, the centre's answer or the fallback; what was done:
    ``{"numbering": "own" | "centre" | "fallback", "raised": {letter: next}}``."""
    day: date = hub.call(lambda engine, now: engine.day)
    path = hub.store.path.parent / FLOOR_FILE
    floor, how = _read_floor(path, day)
    deadline = time.monotonic() + (link.start_wait_s if fresh else 0.0)
    central = ask_centre(link, day)
    while central is None and time.monotonic() < deadline:
        time.sleep(min(1.0, max(0.0, deadline - time.monotonic())))
        central = ask_centre(link, day)
    if central is not None:
        how = "centre" if how != "fallback" else how
    elif fresh:
        letters = {service.letter for service in hub.config.services.values()}
        central = {letter: FALLBACK_FROM for letter in letters}
        how = "fallback"
        log.error("this hub's store is new and the centre did not answer within %g s: today's numbers start at %d "
                  "(K%03d …), so they cannot repeat numbers a lost disk gave today. The next day starts at 001.",
                  link.start_wait_s, FALLBACK_FROM, FALLBACK_FROM)
    else:
        log.warning("numbering goes on from this hub's own store (the store was there: its numbers stand)")
    central = central or {}
    wanted = {letter: max(floor.get(letter, 1), central.get(letter, 1)) for letter in {*floor, *central}}

    def raise_numbers(engine: Any, now: Any) -> dict[str, int]:
        raised = {}
        if engine.day != day:  # midnight passed while we asked: the new day starts from 1 anyway
            return raised
        for letter, nxt in wanted.items():
            if nxt > engine.next_numbers.get(letter, 1):
                engine.next_numbers[letter] = raised[letter] = nxt
        return raised

    raised: dict[str, int] = hub.call(raise_numbers)
    if raised:
        log.warning("numbering for %s raised (%s): %s", day, how,
                    ", ".join(f"{letter} goes on at {n:03d}" for letter, n in sorted(raised.items())))
    if wanted and wanted != floor:
        write_atomically(path, json.dumps({"day": day.isoformat(), "next": wanted, "how": how}))
    return {"numbering": how or "own", "raised": raised}


def _read_floor(path: Any, day: date) -> tuple[dict[str, int], str]:
    try:
        kept = json.loads(path.read_text(encoding="utf-8"))
        if kept.get("day") == day.isoformat():
            return {str(k): int(v) for k, v in kept["next"].items()}, str(kept.get("how", "centre"))
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        pass
    return {}, ""
