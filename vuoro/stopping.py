"""Serving until a stop, with the clean-up after it: the hub's and the centre's uvicorn under a SIGTERM.

uvicorn handles SIGTERM while it serves, then puts back the handler it found and raises the signal once more. With
Python's default handler there, that second SIGTERM ended the process before the code after ``server.run()`` ran:
a systemd stop skipped the hub's clean-up (the uplink's last mark, the MQTT link's goodbye, the writer's stop) and
the centre's (its statistics refresher, its connection pool). The handler put here lets the stop go on to it.

A stop first ends what never ends by itself (``stopping_server``): the hub's event streams, the centre's long
polls. uvicorn's shutdown waits for open requests (the hub without a bound, the centre 3 s), so a signage screen
kept a hub's stop waiting until systemd killed it (TimeoutStopSec, the clean-up skipped), and every centre
stop with branches connected took its whole 3 s and then cut their polls off with a 500.
"""

from __future__ import annotations

import signal
from collections.abc import Callable
from typing import Any


def stopping_server(config: Any, before_waiting: Callable[[], None]) -> Any:
    """A ``uvicorn.Server`` on ``config`` that calls ``before_waiting()`` (in its event loop) as its shutdown
    begins: after it stops accepting, before it waits for the requests still open."""
    import uvicorn  # only where a server runs: a kiosk or a screen installs no uvicorn

    class Server(uvicorn.Server):
        async def shutdown(self, sockets: Any = None) -> None:
            before_waiting()
            await super().shutdown(sockets)

    return Server(config)


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
