"""Loaded into the hub by bench/bench_tail.py (through PYTHONPATH) to see where a slow ticket's time goes.

Records, on the monotonic clock the bench shares: every garbage collection (gc.callbacks), every writer
batch (how long its jobs waited in the queue, the batch, and the store's commit inside it), and every
HTTP handler's wait from the writer's answer to the event loop running it again. Written as JSON to
$VUORO_PROBE_OUT when the hub exits. Not part of the product: the hub never imports it.
"""

from __future__ import annotations

import atexit
import gc
import json
import os
import time

OUT = os.environ.get("VUORO_PROBE_OUT")
records: dict[str, list] = {"gc": [], "batch": [], "resume": []}

if OUT:
    _gc_start = [0.0]

    def _on_gc(phase: str, info: dict) -> None:
        if phase == "start":
            _gc_start[0] = time.monotonic()
        else:
            records["gc"].append((_gc_start[0], time.monotonic() - _gc_start[0], info.get("generation")))

    gc.callbacks.append(_on_gc)

    def _install() -> None:
        import asyncio

        import server.api as api
        import server.hub as hub_module
        import server.store as store_module

        submit, run_batch, save = hub_module.Hub.submit, hub_module.Hub._run_batch, store_module.SQLiteStore.save
        saved = [0.0]

        def probe_submit(self, command, *, read_only=False):  # type: ignore[no-untyped-def]
            future = submit(self, command, read_only=read_only)
            future.probe_queued = time.monotonic()  # type: ignore[attr-defined]
            future.add_done_callback(lambda f: setattr(f, "probe_done", time.monotonic()))
            return future

        def probe_save(self, outcomes):  # type: ignore[no-untyped-def]
            started = time.monotonic()
            try:
                return save(self, outcomes)
            finally:
                saved[0] = time.monotonic() - started

        def probe_batch(self, batch):  # type: ignore[no-untyped-def]
            started = time.monotonic()
            saved[0] = 0.0
            waited = max(started - getattr(job.future, "probe_queued", started) for job in batch)
            try:
                return run_batch(self, batch)
            finally:
                records["batch"].append((started, waited, time.monotonic() - started, saved[0], len(batch)))

        async def probe_run(hub, command, *, read_only=False):  # type: ignore[no-untyped-def]
            future = hub.submit(command, read_only=read_only)
            try:
                return await asyncio.wrap_future(future)
            finally:
                done = getattr(future, "probe_done", None)
                if done is not None:
                    records["resume"].append((done, time.monotonic() - done))

        hub_module.Hub.submit = probe_submit
        hub_module.Hub._run_batch = probe_batch
        store_module.SQLiteStore.save = probe_save
        api.run = probe_run

    def _dump() -> None:
        with open(OUT, "w") as out:  # type: ignore[arg-type]
            json.dump(records, out)

    atexit.register(_dump)

    import signal

    def _on_term(signum: int, frame: object) -> None:  # the hub ends by SIGTERM's default action: dump first
        _dump()
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGTERM)

    signal.signal(signal.SIGTERM, _on_term)
    _install()

    if os.environ.get("VUORO_PROBE_SWITCH"):  # an experiment: the hub's GIL switch interval, in seconds
        import sys

        sys.setswitchinterval(float(os.environ["VUORO_PROBE_SWITCH"]))
        sys.setswitchinterval = lambda interval: None  # the hub's own setting is ignored
