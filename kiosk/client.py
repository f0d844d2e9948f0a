"""The kiosk's HTTP client for the hub, and the worker that keeps it off the UI thread.

Every request has a timeout; every state-changing request has an
``Idempotency-Key``. A retry after a timeout or a dropped connection reuses
the same key, so the hub answers it with the ticket it already made and a
visitor never gets two numbers for one touch. Nothing here raises to the
caller: an answer is a ``HubAnswer`` with ``unreachable`` set when the hub
did not answer at all.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import requests

from vuoro.http_client import session as keep_alive_session

log = logging.getLogger("vuoro.kiosk.client")


@dataclass(frozen=True)
class HubAnswer:
    status: int | None  # None: no HTTP answer at all (refused, timed out, DNS)
    body: Any = None
    attempts: int = 1
    error_text: str = ""  # for the log, never shown to visitors

    @property
    def unreachable(self) -> bool:
        return self.status is None

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    @property
    def broken(self) -> bool:
        """The hub answered but is not working (store down, bug): like unreachable for a visitor."""
        return self.unreachable or (self.status is not None and self.status >= 500)

    @property
    def error(self) -> dict[str, Any]:
        if isinstance(self.body, dict) and isinstance(self.body.get("error"), dict):
            return self.body["error"]
        return {}

    @property
    def code(self) -> str:
        if self.unreachable:
            return "unreachable"
        return str(self.error.get("code") or (f"http_{self.status}" if not self.ok else ""))

    def detail(self, name: str) -> Any:
        """A refusal's extra field (``opens_at``, ``come_back_at``...), in the error object or beside it."""
        if name in self.error:
            return self.error[name]
        return self.body.get(name) if isinstance(self.body, dict) else None


def new_key() -> str:
    return uuid.uuid4().hex  # 32 hex characters: inside the hub's 8–64 rule


@dataclass
class HubClient:
    base_url: str
    token: str = ""
    timeout: float = 3.0
    retries: int = 2
    retry_pause: float = 0.2
    session: requests.Session = field(default_factory=keep_alive_session)
    ca_file: str | None = None  # an https:// hub signed by the site's own CA; None: the system's CAs

    def __post_init__(self) -> None:
        self.base_url = self.base_url.rstrip("/")
        # One pooled keep-alive connection per kiosk: no TCP handshake on each touch. Dropped after 30 s idle
        # (before the hub drops it), and a request whose connection ended before the answer is sent once more
        # with the same Idempotency-Key, at once (vuoro/http_client.py); the retries below are for the rest.
        self.session.headers["User-Agent"] = "vuoro-kiosk"
        if self.token:
            self.session.headers["Authorization"] = f"Bearer {self.token}"
        self._lock = threading.Lock()  # requests.Session is not documented as thread-safe

    def request(self, method: str, path: str, body: Any = None, *, key: str | None = None,
                retry: bool = True) -> HubAnswer:
        headers = {"Idempotency-Key": key} if key else {}
        attempts = 1 + (self.retries if retry else 0)
        error = ""
        for attempt in range(1, attempts + 1):
            try:
                with self._lock:
                    # Per request: a session-wide verify would lose to $REQUESTS_CA_BUNDLE. Verification
                    # always stays on; only the CA it trusts changes.
                    response = self.session.request(method, self.base_url + path, json=body, headers=headers,
                                                    timeout=self.timeout, verify=self.ca_file or True)
            except requests.RequestException as exc:
                error = f"{type(exc).__name__}: {exc}"
                log.warning("%s %s attempt %d: %s", method, path, attempt, error)
                if attempt < attempts:
                    time.sleep(self.retry_pause)
                continue
            try:
                data = response.json()
            except ValueError:
                data = None
            return HubAnswer(response.status_code, data, attempt)
        return HubAnswer(None, None, attempts, error)

    # -- the calls the kiosk makes ------------------------------------------------
    def health(self) -> HubAnswer:
        return self.request("GET", "/api/v1/health", retry=False)

    def site(self) -> HubAnswer:
        return self.request("GET", "/api/v1/site", retry=False)

    def events(self, days: int = 7) -> HubAnswer:
        return self.request("GET", f"/api/v1/events?days={int(days)}", retry=False)

    def slots(self, service: str, days: int = 7) -> HubAnswer:
        return self.request("GET", f"/api/v1/slots?service={quote(service)}&days={int(days)}", retry=False)

    def book(self, service: str, start: str | None, language: str, key: str, slots: int = 1) -> HubAnswer:
        """Book a slot (``start``; ``slots`` 2 for a double slot), or the here-and-now slot when ``start`` is None
        (answers with a ticket)."""
        body: dict[str, Any] = {"service": service, "language": language}
        if start is None:
            body["here_and_now"] = True
        else:
            body["start"] = start
            body["slots"] = slots
        return self.request("POST", "/api/v1/bookings/self", body, key=key)

    def signup(self, event_id: str, language: str, key: str) -> HubAnswer:
        return self.request("POST", f"/api/v1/events/{quote(event_id, safe='')}/signups", {"language": language},
                            key=key)

    def issue(self, service: str, language: str, key: str | None = None) -> HubAnswer:
        return self.request("POST", "/api/v1/tickets", {"service": service, "language": language},
                            key=key or new_key())

    def checkin(self, code: str, language: str, key: str | None = None) -> HubAnswer:
        return self.request("POST", "/api/v1/checkins", {"code": code, "language": language}, key=key or new_key())

    def close(self) -> None:
        self.session.close()


class Worker:
    """Runs blocking work on a small thread pool and hands results back through ``post``.

    ``post`` is how a result reaches the UI thread: in the app it wraps
    ``Clock.schedule_once`` (safe to call from any thread); tests may pass a
    plain call. Two threads: a ticket request never waits behind a slow
    health probe or a printer status poll.
    """

    def __init__(self, post: Callable[[Callable[[], None]], None], threads: int = 3) -> None:
        self.post = post
        self.pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="kiosk-worker")

    def run(self, job: Callable[[], Any], done: Callable[[Any], None] | None = None) -> None:
        def wrapped() -> None:
            try:
                result = job()
            except Exception:  # a bug in a job must not leave the kiosk waiting forever
                log.exception("background job failed")
                result = None
            if done is not None:
                self.post(lambda: done(result))

        self.pool.submit(wrapped)

    def shutdown(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)
