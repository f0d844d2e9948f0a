"""A poor man's py-spy for the benchmarks (py-spy is not installed): with this folder on ``PYTHONPATH`` and
``$VUORO_BENCH_SAMPLE`` naming a folder, every process forked afterwards (the centre's workers) samples the stacks
of all its threads every 5 ms and writes, every 2 s, ``<pid>.txt``: the functions seen most on top of a stack
(self) and anywhere in it (inclusive), as shares of the samples of threads that were doing something (a thread
waiting in ``select``/``poll``/``wait``/``sleep`` or a lock is counted apart as idle).

    PYTHONPATH=bench/sampler VUORO_BENCH_SAMPLE=/tmp/samples .venv/bin/python bench/bench_calendar.py --workers 1
"""

from __future__ import annotations

import collections
import os
import sys
import threading
import time

FOLDER = os.environ.get("VUORO_BENCH_SAMPLE")
IDLE = {"select", "poll", "epoll", "wait", "sleep", "_wait_for_tstate_lock", "acquire", "get", "run_forever",
        "_run_once", "wait_conn", "_poll", "wait_epoll", "wait_select", "notifies", "accept", "recv", "read"}


def _sample() -> None:
    me = threading.get_ident()
    leaf: collections.Counter[str] = collections.Counter()
    anywhere: collections.Counter[str] = collections.Counter()
    busy = idle = 0
    written = time.monotonic()
    while True:
        time.sleep(0.005)
        for ident, frame in sys._current_frames().items():
            if ident == me:
                continue
            names = []
            f = frame
            while f is not None:
                code = f.f_code
                names.append(f"{os.path.basename(code.co_filename)}:{code.co_name}")
                f = f.f_back
            if not names or names[0].split(":")[1] in IDLE:
                idle += 1
                continue
            busy += 1
            leaf[names[0]] += 1
            for name in set(names):
                anywhere[name] += 1
        if time.monotonic() - written > 2.0 and busy:
            written = time.monotonic()
            lines = [f"busy samples {busy}, idle {idle}", "", "self:"]
            lines += [f"{100 * n / busy:6.1f} %  {name}" for name, n in leaf.most_common(40)]
            lines += ["", "inclusive:"]
            lines += [f"{100 * n / busy:6.1f} %  {name}" for name, n in anywhere.most_common(80)]
            with open(os.path.join(FOLDER or ".", f"{os.getpid()}.txt"), "w") as out:
                out.write("\n".join(lines) + "\n")


def _start() -> None:
    threading.Thread(target=_sample, name="bench-sampler", daemon=True).start()


if FOLDER:
    os.makedirs(FOLDER, exist_ok=True)
    os.register_at_fork(after_in_child=_start)
