"""What the hub answers when it says no: a refusal with its HTTP status, and the one shape of every error body.

Every error is ``{"error": {"code", "message", "field", …details}}`` (docs/protocol.md): ``code`` for a
program (``vuoro/refusals.py`` lists them all), ``message`` in words a visitor or staff member understands,
``field`` the input it is about (or null), and any details the code promises (``retry_after``, ``opens_at``…).
"""

from __future__ import annotations

from typing import Any

from server.engine import Refusal


class ApiError(Refusal):
    """A refusal with its own HTTP status (401 unauthorized, 404 not_found, 409 too_early, 422 invalid…).

    The API raises it, and so do the plugins' rules on the writer thread (a booking that is full). As a
    ``Refusal`` it promises that nothing was changed: the hub answers it and carries on, reloading nothing.
    """

    def __init__(self, status: int, code: str, message: str, field: str | None = None, **details: Any):
        super().__init__(code, message, field=field, **details)
        self.status = status


def error_body(code: str, message: str, field: str | None = None, **details: Any) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "field": field, **details}}
