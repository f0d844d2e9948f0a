"""The wait forecast: when will each place in each line be called?

The open desks are played forward with the rule that calls (``QueueEngine._pick_next``: the longest wait
weighted by the service's priority, the desk's order of preference breaking ties) and each service's
usual visit time. So a desk that also serves another line spends time on the people waiting there first,
and a busy desk calls again only when its visitor's usual time is up. Each line also gets a newcomer at
its end, someone who takes a ticket now; a newcomer takes no desk time in the play, so it is called
exactly when it alone would be, and one play answers every estimate of a state.

Pure and clockless like the engine: times are seconds from "now", which the engine gives as the latest
moment it knows of. The play stops after ``ESTIMATE_CALLS`` calls; past them a line goes on at the pace it
was served, so a state with thousands waiting costs what one with a hundred does.
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

ESTIMATE_CALLS = 40


@dataclass(frozen=True)
class LineForecast:
    times: list[float]  # seconds until each place is called, as far as the play reached (the newcomer last)
    horizon: float  # when the first call after the played ones comes
    pace: float  # seconds a place beyond the play

    def seconds(self, index: int) -> float:
        """Seconds until the place ``index`` (0: first in line; the line's length: a newcomer) is called."""
        return self.times[index] if index < len(self.times) else self.horizon + (index - len(self.times)) * self.pace


def play(lines: Mapping[str, Sequence[tuple[datetime, str]]], desks: Mapping[str, tuple[Sequence[str], float]],
         average: Mapping[str, float], priority: Mapping[str, float], now: float) -> dict[str, LineForecast]:
    """``lines``: per service, its waiting (queued_at, id) in order. ``desks``: per open desk, the services it
    calls from in its order of preference and the seconds until it is free. ``average``: seconds a visit, per
    service. ``now``: a POSIX timestamp. A service no desk serves gets no forecast."""
    heads = dict.fromkeys(lines, 0)
    times: dict[str, list[float]] = {sid: [] for sid in lines}
    pending = {sid for services, _ in desks.values() for sid in services}  # newcomers not yet called
    free_at = [(left, order, cid) for order, (cid, (_, left)) in enumerate(desks.items())]
    heapq.heapify(free_at)
    calls, clock = 0, 0.0
    while free_at and pending and calls < ESTIMATE_CALLS:
        clock, order, cid = heapq.heappop(free_at)
        while True:  # a newcomer takes no time: the desk chooses again at once
            best: tuple[float, int, str] | None = None
            for rank, sid in enumerate(desks[cid][0]):
                line, head = lines[sid], heads[sid]
                if head < len(line):
                    waited = now - line[head][0].timestamp() + clock
                elif sid in pending:
                    waited = clock  # the newcomer, queued at "now"
                else:
                    continue
                choice = (-(waited + 1.0) * priority[sid], rank, sid)
                if best is None or choice < best:
                    best = choice
            if best is None:
                break  # nothing this desk serves is left
            sid = best[2]
            times[sid].append(clock)
            if heads[sid] < len(lines[sid]):
                heads[sid] += 1
                calls += 1
                heapq.heappush(free_at, (clock + average[sid], order, cid))
                break
            pending.discard(sid)
    horizon = free_at[0][0] if free_at else clock
    forecast: dict[str, LineForecast] = {}
    for sid in lines:
        serving = sum(1 for services, _ in desks.values() if sid in services)
        if serving:
            done = heads[sid]
            # past the play: the pace this line was served at, else its visit time over its desks
            pace = horizon / done if done and horizon else average[sid] / serving
            forecast[sid] = LineForecast(times[sid], horizon, pace)
    return forecast
