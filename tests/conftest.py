"""The test kit (``toolkit/fixtures.py``: broker, hub, make_hub, hub_in_process, fake_hub, replay, printer,
pins, watch, browser) and this suite's own site.

Kivy reads its environment at first import, so the variables that keep it
quiet, off the user's config and on an offscreen SDL window are set here,
before any test module can import it.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

os.environ.setdefault("KIVY_NO_ARGS", "1")
os.environ.setdefault("KIVY_NO_CONSOLELOG", "1")
os.environ.setdefault("KIVY_NO_FILELOG", "1")
os.environ.setdefault("KIVY_NO_CONFIG", "1")
os.environ.setdefault("KIVY_HOME", tempfile.mkdtemp(prefix="vuoro-kivy-"))
os.environ.setdefault("SDL_VIDEODRIVER", "offscreen")
os.environ.setdefault("GPIOZERO_PIN_FACTORY", "mock")

import pytest  # noqa: E402

pytest_plugins = ["toolkit.fixtures"]

# The sample site with every service open all day, plus booking rules only the tests use
# (tests/test_demo.py keeps it in step with the sample).
TEST_SITE = Path(__file__).parent / "sites" / "always_open.toml"


@pytest.fixture(scope="session")
def hub_site() -> Path:
    return TEST_SITE
