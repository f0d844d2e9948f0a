"""cProfile in every process forked afterwards (the centre's workers), for the benchmarks: py-spy is not installed.

With this folder on ``PYTHONPATH`` and ``$VUORO_BENCH_PROFILE`` naming a folder, each forked process profiles its
main thread (the event loop: routing, validation, JSON) and every thread it starts (the thread pool: the database
and the calendar's rules), and on SIGUSR1 writes ``<pid>.txt``: the functions by own time and by cumulative time,
all threads together. ``bench/bench_calendar.py --profile DIR`` sets this up and sends the signal after the morning.
"""

from __future__ import annotations

import cProfile
import io
import os
import pstats
import signal
import threading
import time

FOLDER = os.environ.get("VUORO_BENCH_PROFILE")
# Each thread's own CPU time (not wall time: a thread waiting on PostgreSQL or a lock would hide where CPU goes)
_TIMER = time.thread_time if os.environ.get("VUORO_BENCH_PROFILE_CPU") else time.perf_counter
_profiles: list[cProfile.Profile] = []


def _dump(signum: int, frame: object) -> None:
    stats: pstats.Stats | None = None
    for profile in list(_profiles):
        profile.disable()
        stats = pstats.Stats(profile) if stats is None else stats.add(profile)
    if stats is None:
        return
    out = io.StringIO()
    stats.stream = out  # type: ignore[attr-defined]
    stats.sort_stats("tottime").print_stats(45)
    stats.sort_stats("cumulative").print_stats(90)
    with open(os.path.join(FOLDER or ".", f"{os.getpid()}.txt"), "w") as f:
        f.write(out.getvalue())


def _start() -> None:
    original = threading.Thread._bootstrap_inner  # type: ignore[attr-defined]

    def profiled(self: threading.Thread) -> None:  # every thread, also those whose class overrides run()
        profile = cProfile.Profile(_TIMER)
        _profiles.append(profile)
        profile.enable()
        try:
            original(self)
        finally:
            profile.disable()

    threading.Thread._bootstrap_inner = profiled  # type: ignore[attr-defined]
    main = cProfile.Profile(_TIMER)
    _profiles.append(main)
    signal.signal(signal.SIGUSR1, _dump)
    main.enable()


if FOLDER:
    os.makedirs(FOLDER, exist_ok=True)
    os.register_at_fork(after_in_child=_start)
