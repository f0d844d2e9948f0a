"""Shared fixtures: a real Mosquitto per session, temporary site files.

Kivy reads its environment at first import, so the variables that keep it
quiet, off the user's config and on an offscreen SDL window are set here,
before any test module can import it.
"""

from __future__ import annotations

import os
import tempfile

os.environ.setdefault("KIVY_NO_ARGS", "1")
os.environ.setdefault("KIVY_NO_CONSOLELOG", "1")
os.environ.setdefault("KIVY_NO_FILELOG", "1")
os.environ.setdefault("KIVY_NO_CONFIG", "1")
os.environ.setdefault("KIVY_HOME", tempfile.mkdtemp(prefix="vuoro-kivy-"))
os.environ.setdefault("SDL_VIDEODRIVER", "offscreen")
os.environ.setdefault("GPIOZERO_PIN_FACTORY", "mock")

from collections.abc import Iterator  # noqa: E402

import pytest  # noqa: E402

from vuoro.broker import Broker  # noqa: E402


@pytest.fixture(scope="session")
def broker() -> Iterator[Broker]:
    """A real Mosquitto on a free port for the whole session.

    Tests that stop or restart it must leave it running (``broker.start()``).
    """
    with Broker() as running:
        yield running


@pytest.fixture()
def live_broker(broker: Broker) -> Broker:
    """The session broker, guaranteed up at the start of the test."""
    broker.start()
    return broker
