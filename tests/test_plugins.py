"""The plugin hooks (server/hookspecs.py): a plugin's contract in one file, checked, and kept apart.

The staff page, bookings, events, statistics and feedback are plugins of the hub; so are the MQTT
link and the web signage streams. These tests use a real hub (writer thread, SQLite file) with a
clock of their own.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pluggy
import pytest

from server import plugins
from server.config import load_config, parse_config
from server.hookspecs import hookimpl
from server.hub import Hub
from server.store import SQLiteStore

SITE = Path(__file__).parent / "sites" / "always_open.toml"
NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


def test_a_plugins_hooks_are_checked_against_their_declaration() -> None:
    class WrongArguments:
        @hookimpl
        def announce(self, kind: str, topic: str) -> None:  # the hook names it ``name``
            pass

    class Misspelt:
        @hookimpl
        def announced(self, kind: str) -> None:
            pass

    manager = plugins.manager()
    with pytest.raises(pluggy.PluginValidationError, match="topic"):
        manager.register(WrongArguments())
    manager.register(Misspelt())
    with pytest.raises(pluggy.PluginValidationError, match="announced"):
        manager.check_pending()


def test_a_plugin_that_fails_silences_no_other_and_never_stops_the_writer(tmp_path: Path) -> None:
    config = load_config(SITE)
    hub = Hub(config, SQLiteStore(tmp_path / "hub.sqlite3", config.site_id), clock=lambda: NOW).start()
    heard: list[str] = []

    class Broken:
        @hookimpl(tryfirst=True)
        def announce(self, name: str) -> None:
            raise RuntimeError("a bug in a plugin")

        @hookimpl
        def retained_state(self) -> dict[str, Any]:
            raise RuntimeError("another bug")

    class Listening:
        @hookimpl
        def announce(self, kind: str, name: str, payload: dict[str, Any]) -> None:
            heard.append(name)

        @hookimpl
        def retained_state(self) -> dict[str, Any]:
            return {"plugin/state": {"ok": True}}

    try:
        hub.plugins.register(Broken())
        hub.plugins.register(Listening())
        ticket = hub.call(lambda engine, now: engine.issue("kvik", "da", now)).ticket
        assert ticket.label == "K001"
        hub.call(lambda engine, now: None)  # the writer announces after it answers: wait for its next batch
        assert "queue/kvik/state" in heard and "plugin/state" in heard
        assert hub.retained_state()["plugin/state"] == {"ok": True}
        assert hub.call(lambda engine, now: engine.issue("kvik", "da", now)).ticket.label == "K002"
    finally:
        hub.stop()


def test_every_plugin_checks_its_own_section_before_the_hub_starts() -> None:
    raw = load_config(SITE).raw
    broken = {**raw, "bookings": {"retention_days": 0}, "events": {"refresh_min": 0},
              "staff": {"session_hours": "long"}}
    problems = plugins.check_config(parse_config(broken, SITE))
    assert any(p.startswith("bookings.retention_days") for p in problems)
    assert any(p.startswith("events.refresh_min") for p in problems)
    assert any(p.startswith("staff.session_hours") for p in problems)
