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


# The files that took longest in a whole run (bench/RESULTS.md, "The test suite"), slowest first. Each xdist
# worker takes whole files (--dist loadfile) in this order, so the long ones start at once on both workers and
# the short ones fill the end, instead of a long file starting last while the other worker idles. The rest keep
# their order; a file missing here only costs balance, never a test.
SLOWEST_FIRST = (  # measured with --durations=0 on 2026-12-01
    "test_central_e2e.py", "test_central_config.py", "test_deploy_pi_ansible.py", "test_signage_fit.py",
    "test_kiosk_app.py", "test_booking_notices.py", "test_kiosk_speech.py", "test_fuzz_http.py",
    "test_signage_type.py", "test_accessibility_web.py", "test_staff_calendar.py", "test_faults_day.py",
    "test_demo.py", "test_hub_presence.py", "test_keepalive_edge.py", "test_central_deploy.py", "test_hub.py",
    "test_bookings_web.py", "test_central_pages.py", "test_central_wan.py", "test_central_directory.py",
    "test_calendar_e2e.py", "test_phone.py", "test_web_pages_a11y.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {name: i for i, name in enumerate(SLOWEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: a file's own order is kept
