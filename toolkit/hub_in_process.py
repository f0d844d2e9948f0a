"""A whole hub in this process, for the staff and button tests: they reach into its engine and view.

SQLite store in a folder, the hub's writer thread, the MQTT link to a real
broker, and uvicorn serving ``create_app`` with the staff page, on a free port
in a thread. Where a test needs the hub as a site runs it (a kill, a clock
step), ``hub_process.HubProcess`` starts the real ``vuoro hub`` instead.
"""

from __future__ import annotations

import threading
import tomllib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from time import monotonic
from typing import Any
from zoneinfo import ZoneInfo

from server.config import SAMPLE_SITE, SiteConfig, parse_config

DEMO_USER = "demo"
DEMO_PASSWORD = "demo-staff-password"
DEMO_ADMIN = "admin"
DEMO_ADMIN_PASSWORD = "demo-admin-password"
# argon2id hashes of the two passwords above (made with `python -m server.staff.hashpw`).
DEMO_STAFF_BLOCK = {
    "users": {
        DEMO_USER: {"role": "staff", "password_hash": "$argon2id$v=19$m=65536,t=3,p=4$TTEYpU8+qG+M4W41VIUQkQ$"
                                                       "VBfz2VcM9GR1CJuCbYDKP+yVqfC4uKcQRO3upmZXuL4"},
        DEMO_ADMIN: {"role": "admin", "password_hash": "$argon2id$v=19$m=65536,t=3,p=4$av9tgRIR9pzkRLCaCKshGQ$"
                                                        "0SvpbHaxoln+Rn3TuaIJ/D/lmV4kMWN6Aqo8FzSSEGY"},
    }
}

# A Monday in November, 10:30 in Copenhagen: KVIK, borgerservice and the librarian are staffed.
OPEN_MONDAY = datetime(2026, 11, 23, 10, 30, tzinfo=ZoneInfo("Europe/Copenhagen"))


def site_config(tmp: Path, broker_url: str, *, staff: dict[str, Any] | None = None) -> SiteConfig:
    """The sample site, on the given broker, with the demo staff users (unless the sample has its own)."""
    data = tomllib.loads(SAMPLE_SITE.read_text(encoding="utf-8"))
    data["hub"]["broker"] = broker_url
    data["hub"]["database"] = f"sqlite:///{tmp / 'hub.sqlite3'}"
    data["staff"] = staff if staff is not None else DEMO_STAFF_BLOCK
    return parse_config(data, tmp / "site.toml")


def advancing_clock(start: datetime = OPEN_MONDAY) -> Callable[[], datetime]:
    """Starts at ``start`` and runs at real speed, so people wait real seconds."""
    began = monotonic()
    return lambda: start + timedelta(seconds=monotonic() - began)


@dataclass
class RunningHub:
    url: str
    hub: Any
    link: Any
    app: Any
    config: SiteConfig

    def issue(self, service: str, count: int = 1) -> list[str]:
        """Hand out walk-in tickets straight through the engine (as a kiosk would); their labels."""
        labels = []
        for _ in range(count):
            outcome = self.hub.call(lambda engine, now: engine.issue(service, "da", now))
            labels.append(outcome.ticket.label)
        return labels


@contextmanager
def running_hub(config: SiteConfig, *, clock: Callable[[], datetime] | None = None) -> Iterator[RunningHub]:
    import uvicorn

    from server import staff
    from server.api import create_app
    from server.hub import Hub
    from server.mqtt_link import MqttLink
    from server.store import SQLiteStore
    from toolkit.broker import free_port

    store = SQLiteStore(config.database_path(Path(".")), config.site_id)
    hub = Hub(config, store, clock=clock or advancing_clock()).start()
    link = MqttLink(hub, config, client_id=f"vuoro-hub-test-{free_port()}")
    link.start()
    app = create_app(hub, broker_connected=link.connected.is_set)  # installs the staff page (server.api.PLUGINS)
    if not any(getattr(route, "path", "") == "/staff/login" for route in app.routes):
        app.state.authenticators.append(staff.install(app, hub))  # a core without the plugin hook
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False,
                                           timeout_graceful_shutdown=1, lifespan="off"))
    thread = threading.Thread(target=server.run, name="uvicorn-test", daemon=True)
    thread.start()
    try:
        while not server.started:
            if not thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            threading.Event().wait(0.01)
        if not link.connected.wait(10):
            raise RuntimeError("the hub did not reach the broker")
        yield RunningHub(f"http://127.0.0.1:{port}", hub, link, app, config)
    finally:
        server.should_exit = True
        thread.join(10)
        link.stop()
        hub.stop()
