"""The branch's side of the centre's booking calendar: at opening it takes its day over from the centre.

A site with ``[bookings] centre_calendar = true`` (and ``[central]``) runs this thread. From the day's opening
(the earliest opening of the services citizens book online; a closed day needs no handover) it posts
``POST <centre>/api/v1/calendar/handover {"day": …}`` with its token, and again every ``poll_s``
(``[bookings] calendar_poll_s``, 5 s):

- the centre marks the day branch-owned and answers the day's bookings it sold, in ONE PostgreSQL transaction
  (``central/calendar.py``), so from then on it sells none of the day's places;
- the writer takes them in (``BookingBook.accept_handover``): new bookings take their places, so a kiosk checks
  them in with their code even if the WAN is cut afterwards; a cancellation made at the centre during a cut
  arrives with the next answer and merges by the one rule (checked in beats cancelled beats booked).

While the centre cannot be reached the branch holds only its walk-in reserve on days not handed over, and the
centre does not sell that branch's same-day places: neither side can sell a place the other may sell. The days
handed over are kept in the store, so a branch restarted during a cut still sells its own day.

On every poll (also before opening) it reads ``GET <centre>/api/v1/calendar/ahead``: the centre's bookings of this
branch on days not handed over yet, which the staff page shows beside the branch's own (one calendar from every
branch); the writer keeps the answer in the store, so the staff page shows what it last had while the centre
cannot be reached.

The branch's own bookings, cancellations and check-ins travel to the centre through the outbox (``outbox.py``:
``booking`` rows), as tickets do. Never on the writer thread, never holding it up.
"""

from __future__ import annotations

import logging
import threading
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

import requests

from server.config import CentralLink

if TYPE_CHECKING:
    from server.bookings.book import BookingBook
    from server.hub import Hub

log = logging.getLogger("vuoro.calendar")
POLL_S = 5.0


class CalendarLink:
    def __init__(self, hub: Hub, link: CentralLink, book: BookingBook, poll_s: float = POLL_S):
        self.hub, self.link, self.book, self.poll_s = hub, link, book, poll_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="vuoro-calendar", daemon=True)
        self.state: dict[str, Any] = {"state": "starting", "day": None, "error": None}

    def start(self) -> CalendarLink:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def opening(self, day: date) -> datetime | None:
        """When the branch takes ``day`` over: the earliest opening of its online-booked services that day."""
        tz = self.hub.config.timezone
        starts = [span.start for sid in self.book.online_services()
                  for span in self.hub.config.services[sid].hours.spans_on(day)]
        return datetime.combine(day, min(starts), tz) if starts else None

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.poll()
            except Exception as exc:  # a bug here must not end the thread: the branch goes on with its reserve
                log.exception("calendar link: %s", exc)
            self._stop.wait(self.poll_s)

    def poll(self) -> None:
        self.read_ahead()
        local = self.hub.clock().astimezone(self.hub.config.timezone)
        opens = self.opening(local.date())
        if opens is None or local < opens:
            self.state = {"state": "before_opening", "day": local.date().isoformat(), "error": None}
            return
        day = local.date()
        try:
            answer = requests.post(f"{self.link.url.rstrip('/')}/api/v1/calendar/handover",
                                   json={"day": day.isoformat()}, timeout=10,
                                   headers={"Authorization": f"Bearer {self.link.token}"},
                                   verify=self.link.ca_file or True)
        except requests.RequestException as exc:
            self.state = {"state": "unreachable", "day": day.isoformat(), "error": str(exc)[:200]}
            return
        if answer.status_code != 200:
            error = f"{answer.status_code} {answer.text[:200]}"
            self.state = {"state": "refused", "day": day.isoformat(), "error": error}
            log.error("the centre refused the handover of %s: %s", day, self.state["error"])
            return
        rows = answer.json().get("bookings", [])
        _, report = self.hub.call(lambda engine, now: self.book.accept_handover(engine, now, day, rows))
        if report["added"] or report["merged"]:
            log.info("calendar: %s handed over: %d new bookings, %d merged", day, report["added"], report["merged"])
        self.state = {"state": "owner", "day": day.isoformat(), "error": None}

    def read_ahead(self) -> None:
        """The centre's bookings of later days (and of today before the handover), for the staff page."""
        try:
            answer = requests.get(f"{self.link.url.rstrip('/')}/api/v1/calendar/ahead", timeout=10,
                                  headers={"Authorization": f"Bearer {self.link.token}"},
                                  verify=self.link.ca_file or True)
            answer.raise_for_status()
            rows = answer.json().get("bookings", [])
        except (requests.RequestException, ValueError, AttributeError) as exc:
            log.debug("calendar: the centre's bookings ahead could not be read (%s); showing the last copy", exc)
            return
        self.hub.call(lambda engine, now: self.book.accept_ahead(engine, now, rows))
