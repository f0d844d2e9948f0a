"""A visitor's morning at the kiosk (issue 15), driven by touches through a real hub, broker and virtual printer.

The kiosk runs in this process with ``TZ=UTC``, as on a fresh Pi, while the site is in Europe/Copenhagen:
every time a visitor reads must be the site's. The helpers and fixtures are the kiosk tests' own
(``tests/test_kiosk_app.py``).
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from hardware.layout import format_datetime
from hardware.virtual import VirtualPrinter
from kiosk.driver import Driver
from test_kiosk_app import (  # noqa: F401 - fixtures are found by name
    add_event,
    button,
    hub,
    kiosk,
    open_slots,
    printer,
    programme_shown,
    signup_button,
    slot_buttons,
)

CPH = ZoneInfo("Europe/Copenhagen")
STAMP = re.compile(r"^\d\d\.\d\d\.\d{4} kl\. \d\d:\d\d$")  # a Danish receipt's date and time


@pytest.fixture(autouse=True)
def machine_in_utc() -> Iterator[None]:
    """The kiosk's process on UTC, as a fresh Raspberry Pi is."""
    before = os.environ.get("TZ")
    os.environ["TZ"] = "UTC"
    time.tzset()
    yield
    if before is None:
        os.environ.pop("TZ", None)
    else:
        os.environ["TZ"] = before
    time.tzset()


def issued_line(lines: list[str]) -> str:
    """The receipt's last date-and-time line: when it was issued."""
    return [line for line in lines if STAMP.match(line)][-1]


def site_clock_now() -> set[str]:
    """The issue stamp as the site's wall clock says it now (either side of a minute's turn)."""
    now = datetime.now(CPH)
    return {format_datetime(now - timedelta(minutes=1), "da"), format_datetime(now, "da")}


# -- item 1: receipts say the site's time ----------------------------------------------------------


def test_booking_and_signup_receipts_are_stamped_on_the_sites_clock(kiosk: Driver, hub,  # noqa: F811
                                                                    printer: VirtualPrinter) -> None:
    app = kiosk.app
    assert datetime.now().astimezone().utcoffset() == timedelta(0)  # the machine: UTC
    open_slots(kiosk, "bibliotekar")
    kiosk.tap(slot_buttons(kiosk)[0])
    kiosk.tap(app.screen("confirm").ids.confirm_button)
    booked = app.screen("booked")
    kiosk.wait(lambda: app.sm.current == "booked" and booked.receipt is not None, 10, "the booking's receipt")
    confirmation = printer.wait_for(1, timeout=10)[0]
    assert issued_line(confirmation.lines) in site_clock_now(), confirmation.lines
    cafe = add_event(hub, f"Sprogcafé {time.time_ns() % 10000}", seats=5)
    app.go("events")
    kiosk.wait(lambda: programme_shown(kiosk), 10, "events")
    kiosk.tap(signup_button(kiosk, cafe))
    signup = app.screen("signup")
    kiosk.wait(lambda: app.sm.current == "signup" and signup.receipt is not None, 10, "the sign-up's receipt")
    receipt = printer.wait_for(2, timeout=10)[1]
    assert issued_line(receipt.lines) in site_clock_now(), receipt.lines
