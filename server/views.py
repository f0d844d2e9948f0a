"""What the outside sees: the engine's state as the JSON of docs/protocol.md.

One function per payload, shared by the MQTT publisher, the HTTP API and the
web signage stream, so a screen and the kiosk can never disagree. The queue's
payloads are built as the contract's classes (``vuoro/payloads.py``), which
every reader parses with. Times go out in the site's local zone. No personal
data is ever included.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from server.engine import Call, QueueEngine, Ticket
from vuoro import payloads


def iso(engine: QueueEngine, value: datetime | None) -> str | None:
    return engine.local(value).isoformat(timespec="seconds") if value else None


def ticket_json(engine: QueueEngine, ticket: Ticket) -> dict[str, Any]:
    service = engine.config.services.get(ticket.service)
    position = engine.position(ticket)
    counter = engine.config.counters.get(ticket.counter or "")
    public = engine.config.public_url
    return {
        "id": ticket.id,
        "ticket": ticket.label,
        "service": ticket.service,
        "service_names": dict(service.names) if service else {},
        "language": ticket.language,
        "status": ticket.status,
        "origin": ticket.origin,
        "position": position,
        "estimated_wait_min": engine.estimate_minutes(ticket.service, position) if ticket.status == "waiting" else 0,
        "issued_at": iso(engine, ticket.issued_at),
        "day": ticket.day.isoformat(),
        "counter": ticket.counter,
        "counter_name": counter.name if counter else None,
        "called_at": iso(engine, ticket.called_at),
        "track_token": ticket.track_token,
        "track_url": f"{public}/signage/ticket.html?t={ticket.track_token}" if public else None,
    }


def track_json(engine: QueueEngine, ticket: Ticket) -> dict[str, Any]:
    """The phone page's view of one ticket: no ids, nothing personal; its language is the one the visitor
    chose at the kiosk, so the page speaks it rather than the phone's."""
    full = ticket_json(engine, ticket)
    keep = ("ticket", "service", "service_names", "language", "status", "position", "estimated_wait_min",
            "counter_name", "called_at", "issued_at")
    service = engine.config.services.get(ticket.service)
    # "Your turn is near": the service's near_turn, judged by the engine (one place for the rule).
    return {**{k: full[k] for k in keep}, "near": engine.near_turn(ticket),
            "near_turn": service.near_turn if service else 0}


def call_payload(engine: QueueEngine, call: Call) -> payloads.Call:
    counter = engine.config.counters.get(call.counter)
    return payloads.Call(
        call_id=call.call_id,
        ticket=call.ticket,
        service=call.service,
        counter=call.counter,
        counter_name=counter.name if counter else call.counter,
        recall=call.recall,
        at=engine.local(call.at).isoformat(timespec="milliseconds"),  # screens judge its age to the ms
    )


def call_json(engine: QueueEngine, call: Call) -> dict[str, Any]:
    return call_payload(engine, call).to_json()


def queue_state(engine: QueueEngine, service_id: str, now: datetime) -> dict[str, Any]:
    service = engine.config.services[service_id]
    local = engine.local(now)
    is_open = service.hours.is_open(local)
    waiting = engine.waiting_count(service_id)
    last = next((c.ticket for c in engine.recent_calls if c.service == service_id and not c.recall), None)
    opens = None if is_open else service.hours.next_open(local)
    closes = service.hours.current_close(local) if is_open else None
    return payloads.QueueState(
        service=service_id,
        letter=service.letter,
        mode=service.mode,
        names=dict(service.names),
        open=is_open,
        opens_at=opens.isoformat(timespec="minutes") if opens else None,
        closes_at=closes.isoformat(timespec="minutes") if closes else None,
        waiting=waiting,
        estimated_wait_min=engine.estimate_minutes(service_id, waiting),
        last_called=last,
        counters_open=engine.counters_open_for(service_id),
    ).to_json()


def counter_state(engine: QueueEngine, counter_id: str) -> dict[str, Any]:
    counter = engine.counters[counter_id]
    config = engine.config.counters[counter_id]
    ticket = engine.tickets.get(counter.ticket_id or "")
    serving = None
    if ticket is not None and ticket.status == "called":
        serving = payloads.Serving(ticket=ticket.label, service=ticket.service,
                                   called_at=iso(engine, ticket.called_at))
    return payloads.CounterState(counter=counter_id, name=config.name, services=list(config.services),
                                 status=counter.status, serving=serving).to_json()


def hours_state(engine: QueueEngine, now: datetime) -> payloads.Hours:
    config = engine.config
    local = engine.local(now)
    staffed = any(s.hours.is_open(local) for s in config.services.values())
    upcoming = [s.hours.next_open(local) for s in config.services.values()]
    upcoming_known = [u for u in upcoming if u is not None]
    today = local.date()
    return payloads.Hours(
        day=today.isoformat(),
        building_open=config.building.is_open(local) if config.building.weekly or config.building.exceptions
        else True,
        staffed_now=staffed,
        next_staffed_at=None if staffed or not upcoming_known else min(upcoming_known).isoformat(
            timespec="minutes"),
        today={
            "building": [str(s) for s in config.building.spans_on(today)],
            **{sid: [str(s) for s in svc.hours.spans_on(today)] for sid, svc in config.services.items()},
        },
    )


def site_info(engine: QueueEngine, now: datetime) -> dict[str, Any]:
    config = engine.config
    return payloads.SiteInfo(
        site=config.site_id,
        name=config.name,
        timezone=str(config.timezone),
        languages=list(config.languages),
        services=[payloads.ServiceInfo(id=s.id, letter=s.letter, mode=s.mode, names=dict(s.names))
                  for s in config.services.values()],
        counters=[payloads.CounterInfo(id=c.id, name=c.name, services=list(c.services))
                  for c in config.counters.values()],
        hours=hours_state(engine, now),
    ).to_json()


def recent_calls(engine: QueueEngine) -> dict[str, Any]:
    return payloads.RecentCalls(calls=[call_payload(engine, c) for c in engine.recent_calls]).to_json()
