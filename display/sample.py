"""Hub-shaped demo payloads for Sønderbro: for tests, screenshots and the benchmark.

They are built as the contract's classes (``vuoro/payloads.py``), as the hub
builds them, with the schema version and the hub's ``at`` that go with them
on the wire, so a screen can be shown and tested without the hub running.
Times are set around ``now`` in the site's zone, so "what's on" always has
coming events.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, time, timedelta, timezone
from typing import Any

from vuoro.payloads import (
    Call,
    CounterInfo,
    Event,
    EventsToday,
    Hours,
    Message,
    Payload,
    QueueState,
    RecentCalls,
    ServiceInfo,
    SiteInfo,
)
from vuoro.protocol import SCHEMA_VERSION, HubStatus

try:
    from zoneinfo import ZoneInfo

    ZONE: Any = ZoneInfo("Europe/Copenhagen")
except Exception:  # noqa: BLE001 - no tzdata: a fixed offset is good enough for demo data
    ZONE = timezone(timedelta(hours=1))

SITE = "sonderbro"
NAMES = {
    "kvik": {"da": "KVIK – hurtig hjælp", "en": "KVIK quick desk", "sv": "KVIK – snabb hjälp",
             "fi": "KVIK – pikapalvelu", "nl": "KVIK – snelle balie"},
    "borgerservice": {"da": "Borgerservice", "en": "Citizen service", "sv": "Medborgarservice",
                      "fi": "Kansalaispalvelu", "nl": "Burgerzaken"},
    "bibliotekar": {"da": "Book en bibliotekar", "en": "Ask a librarian", "sv": "Boka en bibliotekarie",
                    "fi": "Varaa kirjastonhoitaja", "nl": "Vraag een bibliothecaris"},
    "it": {"da": "IT-hjælp", "en": "IT help", "sv": "IT-hjälp", "fi": "IT-apu", "nl": "Digihulp"},
}
LETTERS = {"kvik": "K", "borgerservice": "B", "bibliotekar": "L", "it": "H"}
COUNTERS = {"kvik1": "Skranke 1", "kvik2": "Skranke 2", "borger1": "Skranke 3", "bib1": "Bibliotekar"}


def iso(moment: datetime) -> str:
    return moment.astimezone(ZONE).isoformat(timespec="seconds")


def wire(payload: Payload, at: datetime | None = None) -> dict[str, Any]:
    """A payload as a message carries it: the schema version, its fields, and (a retained state) the hub's time."""
    return {"v": SCHEMA_VERSION, **payload.to_json(), **({"at": iso(at)} if at else {})}


def call(ticket: str, counter: str, *, service: str | None = None, recall: bool = False,
         at: datetime | None = None) -> dict[str, Any]:
    service = service or next(s for s, letter in LETTERS.items() if ticket.startswith(letter))
    return wire(Call(call_id=uuid.uuid4().hex, ticket=ticket, service=service, counter=counter,
                     counter_name=COUNTERS.get(counter, counter), recall=recall, at=iso(at or datetime.now(UTC))))


def queue_state(service: str, waiting: int, wait_min: int, *, open_: bool = True, opens_at: str | None = None,
                last_called: str | None = None, now: datetime | None = None) -> dict[str, Any]:
    return wire(QueueState(service=service, letter=LETTERS[service],
                           mode="booking_only" if service == "borgerservice" else "walk_in",
                           names=NAMES[service], open=open_, opens_at=opens_at, closes_at=None,
                           waiting=waiting, estimated_wait_min=wait_min, last_called=last_called,
                           counters_open=2 if open_ else 0), now or datetime.now(UTC))


def retained(now: datetime | None = None, *, staffed: bool = True, message: str = "",
             busy: bool = False) -> dict[str, dict[str, Any]]:
    """Every retained payload a hub publishes for Sønderbro, keyed by topic suffix.

    ``busy``: a full hall, the state a layout must hold at the type floor: six calls and five events, one
    of them still to be confirmed (docs/signage.md)."""
    now = now or datetime.now(UTC)
    local = now.astimezone(ZONE)
    today = local.date()

    def at(hour: int, minute: int = 0, days: int = 0) -> str:
        return iso(datetime.combine(today + timedelta(days=days), time(hour, minute), ZONE))

    # Events from the next quarter-hour on, an hour apart, closer together late in the day so that all of them
    # are still to come today (a screen shows only what has not ended): the tests that count them ran wrong
    # every evening when the first event was pinned at 19:00. Only the last half hour of a day is too short.
    first = (local + timedelta(minutes=15)).replace(second=0, microsecond=0)
    first -= timedelta(minutes=first.minute % 15)
    midnight = datetime.combine(today + timedelta(days=1), time.min, ZONE)
    step = max(timedelta(minutes=4), min(timedelta(hours=1), (midnight - first) / 6))

    def event_at(n: int, part: float = 0.0) -> str:  # the n-th step from the first, and part of the next
        return iso(first + (n + part) * step)

    events = [
        Event(id="e1", title="IT-café for seniorer", start=event_at(0), end=event_at(0, 0.75),
              room="Læsesalen", state="scheduled", seats_left=3),
        Event(id="e2", title="Sprogcafé – dansk for øvede", start=event_at(1), end=event_at(2, 0.5),
              room="Salen", state="sold_out", seats_left=0),
        Event(id="e3", title="Læsekreds: Åsa Öberg", start=event_at(2), end=event_at(3, 0),
              room="Mødelokale 2", state="cancelled", seats_left=None),
        Event(id="e4", title="Børnenes fortælletime", start=event_at(3), end=event_at(3, 0.66),
              room="Børneafdelingen", state="scheduled", seats_left=None),
    ]
    calls = [("K041", "kvik2"), ("H007", "kvik1"), ("K040", "kvik1"), ("L003", "bib1"), ("K039", "borger1")]
    if busy:
        events.append(Event(id="e5", title="Sommerfest i gården", start=event_at(4), end=event_at(4, 0.83),
                            room="Gården", state="scheduled", seats_left=None, tentative=True))
        calls.append(("B012", "borger1"))
    recent = [Call.from_json(call(ticket, counter)) for ticket, counter in calls]
    hours = Hours(day=today.isoformat(), building_open=True, staffed_now=staffed,
                  next_staffed_at=None if staffed else at(10, 0, days=1),
                  today={"building": ["08:00-22:00"], "kvik": ["10:00-18:00"], "borgerservice": ["10:00-18:00"]})
    site = SiteInfo(site=SITE, name="Sønderbro Bibliotek & Borgerservice", timezone="Europe/Copenhagen",
                    languages=["da", "en", "sv", "fi", "nl"],
                    services=[ServiceInfo(id=s, letter=LETTERS[s], mode="walk_in", names=NAMES[s]) for s in NAMES],
                    counters=[CounterInfo(id=c, name=n, services=[]) for c, n in COUNTERS.items()], hours=hours)
    hub = HubStatus(online=True, instance="demo:hub.sqlite3", started=now.timestamp() - 3600, version="0.1.0",
                    at=now.timestamp())
    return {
        "hub/status": json.loads(hub.to_payload()),
        "site": wire(site, now),
        "queue/kvik/state": queue_state("kvik", 4, 8, last_called="K041", now=now),
        "queue/borgerservice/state": queue_state("borgerservice", 2, 5, now=now),
        "queue/bibliotekar/state": queue_state("bibliotekar", 1, 15, now=now),
        "queue/it/state": queue_state("it", 0, 0, open_=False, opens_at=at(13, 0, days=1), now=now),
        "calls/recent": wire(RecentCalls(calls=recent), now),
        "events/today": wire(EventsToday(day=today.isoformat(), events=events), now),
        "message": wire(Message(text=message), now),
    }
