"""Serving until a stop, with the clean-up after it: the hub's and the centre's uvicorn under a SIGTERM.

uvicorn handles SIGTERM while it serves, then puts back the handler it found and raises the signal once more. With
Python's default handler there, that second SIGTERM ended the process before the code after ``server.run()`` ran:
a systemd stop skipped the hub's clean-up (the uplink's last mark, the MQTT link's goodbye, the writer's stop) and
the centre's (its statistics refresher, its connection pool). The handler put here lets the stop go on to it.
"""

from __future__ import annotations

import signal
from typing import Any


def serve_then_clean_up(server: Any, **run: Any) -> None:
    """``server.run(**run)`` (a ``uvicorn.Server``; ``sockets=`` for a centre worker) with a SIGTERM handler of ours
    beneath uvicorn's."""
    signal.signal(signal.SIGTERM, lambda signum, frame: _terminated(server, signum))
    server.run(**run)


def _terminated(server: Any, signum: int) -> None:
    """SIGTERM outside uvicorn's own handler: once it has served, the stop goes on to the clean-up; before, the
    process stops here, as it always did."""
    if server.started:
        return
    raise SystemExit(128 + signum)
