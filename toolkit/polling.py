"""Waiting for something to happen, in tests: a bound on the wait, never a claim about how long it took."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def wait_until(predicate: Callable[[], Any], what: str, timeout: float = 10.0) -> Any:
    """Poll until ``predicate()`` is true and return its value; fail naming ``what`` after ``timeout`` s.

    A predicate that raises is "not yet": a state still arriving (a screen between a broker's old
    retained message and the hub's republished one) may lack what the predicate looks at. If it
    still raises at the deadline, that error is the cause of the failure.
    """
    deadline = time.monotonic() + timeout
    error: Exception | None = None
    while True:
        try:
            value = predicate()
            error = None
        except Exception as exc:  # noqa: BLE001 - reported at the deadline
            value, error = None, exc
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what} within {timeout:g} s") from error
        time.sleep(0.01)
