"""What the centre tells about its branches, from the rows they shipped.

- ``overview``: every branch's last contact, how far behind it is (rows still in its outbox, the last
  batch's lag), today's tickets per service (the branch's own local day), today's event sign-ups and check-ins
  and each device's last status;
- ``branch_summary``: the statistics of one branch with the SAME definitions and code as the branch's
  own (``server.stats.figures.summarize``, docs/statistics.md), over the rows the centre holds,
  feedback ratings included; ``read_events`` the branch's what's-on figures.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import psycopg

from central import rollup
from central.config import Branch, CentreConfig
from central.ingest import ts_text
from server.stats.figures import TICKET_FIELDS, Feedback, Summary, period_utc, summarize


def _iso(value: Any) -> Any:
    return ts_text(value) if isinstance(value, datetime) else value.isoformat() if isinstance(value, date) else value


def overview(db: psycopg.Connection, config: CentreConfig, now: datetime,
             only: Callable[[str], bool] = lambda branch: True) -> list[dict[str, Any]]:
    """Every branch ``only`` lets through (a viewer's, or the one a live page asks for again)."""
    status = {row[0]: row[1:] for row in db.execute(
        "SELECT b.id, b.last_seen, b.backlog, b.lag_ms, COALESCE(s.shipped, 0) FROM branches b "
        "LEFT JOIN streams s ON s.branch = b.id AND s.stream = b.stream")}
    branches = []
    for branch in config.branches.values():
        if not only(branch.id):
            continue
        today = now.astimezone(branch.site.timezone).date()
        last_seen, backlog, lag_ms, shipped = status.get(branch.id, (None, 0, None, 0))
        counts: dict[str, dict[str, int]] = {}
        for service, state, n in db.execute(
                "SELECT service, status, COUNT(*) FROM tickets WHERE branch = %s AND day = %s GROUP BY 1, 2",
                (branch.id, today)):
            counts.setdefault(service, {})[state] = n
        services = []
        for sid, service in branch.site.services.items():
            by_status = counts.pop(sid, {})
            services.append(_service_counts(sid, service.names, by_status))
        for sid, by_status in counts.items():  # a service the centre's copy of the site file does not know
            services.append(_service_counts(sid, {}, by_status))
        devices = [{"device": device, "kind": kind, "online": online, "printer": printer, "since": ts_text(at)}
                   for device, kind, online, printer, at in db.execute(
                       "SELECT DISTINCT ON (device) device, kind, online, printer, at FROM device_status "
                       "WHERE branch = %s ORDER BY device, at DESC", (branch.id,))]
        branches.append({
            "branch": branch.id, "name": branch.name, "day": today.isoformat(), "devices": devices,
            "last_seen": ts_text(last_seen),
            "seconds_since_seen": round((now - last_seen).total_seconds(), 1) if last_seen else None,
            "backlog": int(backlog or 0), "lag_ms": round(lag_ms, 1) if lag_ms is not None else None,
            "shipped": int(shipped or 0),
            "tickets_today": sum(s["issued"] for s in services), "services": services,
            "events_today": read_events(db, branch, today, today),
        })
    return branches


def _service_counts(sid: str, names: dict[str, str], by_status: dict[str, int]) -> dict[str, Any]:
    return {"service": sid, "names": names, "issued": sum(by_status.values()), "waiting": by_status.get("waiting", 0),
            "called": by_status.get("called", 0), "served": by_status.get("done", 0),
            "no_show": by_status.get("no_show", 0), "expired": by_status.get("expired", 0),
            "left": by_status.get("left", 0)}


def read_branch_tickets(db: psycopg.Connection, branch: str, start: date, end: date) -> list[tuple[Any, ...]]:
    """Rows in ``TICKET_FIELDS`` order, timestamps as the branch's store writes them; one day either side
    (``summarize`` trims by local issue day, as the branch's reading does)."""
    cols = ", ".join(TICKET_FIELDS)
    rows = db.execute(f"SELECT {cols} FROM tickets WHERE branch = %s AND day BETWEEN %s AND %s ORDER BY issued_at",
                      (branch, start - timedelta(days=1), end + timedelta(days=1)))
    return [tuple(_iso(v) for v in row) for row in rows]


def read_first_calls(db: psycopg.Connection, branch: str, start: date, end: date) -> dict[str, str]:
    """For transferred tickets, their FIRST call (the ticket keeps its last), from the shipped history."""
    rows = db.execute(
        "SELECT t.id, MIN(e.at) FROM tickets t JOIN ticket_events e ON e.branch = t.branch AND e.ticket_id = t.id "
        "AND e.kind = 'called' WHERE t.branch = %s AND t.day BETWEEN %s AND %s AND t.transfers > 0 GROUP BY t.id",
        (branch, start - timedelta(days=1), end + timedelta(days=1)))
    return {tid: ts_text(at) for tid, at in rows if at}  # type: ignore[misc]


def read_feedback(db: psycopg.Connection, branch: Branch, start: date, end: date) -> list[Feedback]:
    lo, hi = period_utc(start, end, branch.site.timezone)
    rows = db.execute("SELECT at, rating, service, device FROM feedback WHERE branch = %s AND at >= %s AND at < %s "
                      "ORDER BY at", (branch.id, lo, hi))
    return [Feedback(ts_text(at), rating, service, device) for at, rating, service, device in rows]  # type: ignore[arg-type]


EVENT_FIGURES = ("events", "signups", "seated", "waiting_list", "attended")


def read_events(db: psycopg.Connection, branch: Branch, start: date, end: date) -> dict[str, int]:
    """What's on in a period of the branch's local days, by the branch's own definitions
    (``server.stats.reading.read_events``, docs/statistics.md): the events staff entered that start in it (not
    cancelled), the sign-ups made in it (seated or on the waiting list, as they are now) and the check-ins in it."""
    lo, hi = period_utc(start, end, branch.site.timezone)
    events = db.execute("SELECT COUNT(*) FROM staff_events WHERE branch = %s AND start_at >= %s AND start_at < %s "
                        "AND state <> 'cancelled'", (branch.id, lo, hi)).fetchone()
    signups = db.execute("SELECT COUNT(*), COUNT(seat) FROM event_signups WHERE branch = %s AND created_at >= %s "
                         "AND created_at < %s", (branch.id, lo, hi)).fetchone()
    attended = db.execute("SELECT COUNT(*) FROM event_signups WHERE branch = %s AND attended_at >= %s "
                          "AND attended_at < %s", (branch.id, lo, hi)).fetchone()
    made, seated = (int(signups[0]), int(signups[1])) if signups else (0, 0)
    return {"events": int(events[0]) if events else 0, "signups": made, "seated": seated,
            "waiting_list": made - seated, "attended": int(attended[0]) if attended else 0}


def branch_summary(db: psycopg.Connection, branch: Branch, start: date, end: date,
                   by: tuple[str, ...] = ()) -> Summary:
    targets = {sid: s.target_wait_min for sid, s in branch.site.services.items()}
    return summarize(read_branch_tickets(db, branch.id, start, end), branch.site.timezone, by, targets=targets,
                     first_calls=read_first_calls(db, branch.id, start, end),
                     feedback=read_feedback(db, branch, start, end), start=start, end=end)


def all_branches_summary(db: psycopg.Connection, config: CentreConfig, start: date, end: date,
                         branch_ids: list[str] | None = None, budget_s: float | None = None,
                         by: str | None = None) -> dict[str, Any]:
    """Every branch (or those of ``branch_ids``) side by side, and all of them as one: the same figures over all
    their tickets, so the percentiles are of every wait, not an average of averages. From the per-day aggregates
    (central/rollup.py): counts, means, maxima and service levels exact, percentiles rounded up to the
    histograms' resolution (``percentiles`` in the answer). ``budget_s`` bounds the time spent aggregating the
    period's newest rows first (``pending_days`` says how many days were left). All as one needs one time zone:
    branches in different zones are shown side by side only."""
    branches = [b for b in config.branches.values() if branch_ids is None or b.id in branch_ids]
    parts, pending = rollup.read(db, branches, start, end, budget_s=budget_s)
    together = rollup.Aggregate()
    for part in parts.values():
        together.add(part)
    zones = {str(b.site.timezone) for b in branches}
    # pending_days: days whose newest rows the figures do not count yet (the refresher's, within seconds)
    events = {b.id: read_events(db, b, start, end) for b in branches}  # what's on: counts, summed as they are
    answer: dict[str, Any] = {
        "start": start.isoformat(), "end": end.isoformat(), "percentiles": rollup.RESOLUTION, "pending_days": pending,
        "branches": [{"branch": b.id, "name": b.name, **parts[b.id].figures()} for b in branches],
        "all": together.figures() if len(zones) == 1 else None,
        "events": {"branches": events, "all": {key: sum(e[key] for e in events.values()) for key in EVENT_FIGURES}}}
    if by is None:
        return answer
    # The groups: the period's newest rows were aggregated just above, so this reads without refreshing again.
    grouped, _ = rollup.read_by(db, branches, start, end, by, budget_s=0.0)
    together_by: dict[Any, rollup.Aggregate] = {}
    for part in grouped.values():
        for key, agg in part.items():
            together_by.setdefault(key, rollup.Aggregate()).add(agg)
    answer["by"] = [by]
    answer["not_by_group"] = list(rollup.NOT_BY_SERVICE) if by == "service" else []
    for entry in answer["branches"]:
        entry["groups"] = _groups(grouped[entry["branch"]], by)
    if answer["all"] is not None:
        answer["all"] = {**answer["all"], "groups": _groups(together_by, by)}
    return answer


def _groups(parts: dict[Any, rollup.Aggregate], by: str) -> list[dict[str, Any]]:
    """A branch's (or all branches') groups in key order, as the branch's own summary lists them."""
    groups = []
    for key in sorted(parts):
        figures = parts[key].figures()
        if by == "service":  # the histograms are per day, not per service (central/rollup.py)
            figures.update(dict.fromkeys(rollup.NOT_BY_SERVICE))
        groups.append({by: key, **figures})
    return groups


def all_branches_summary_from_rows(db: psycopg.Connection, config: CentreConfig, start: date,
                                   end: date) -> dict[str, Any]:
    """The same as ``all_branches_summary`` from every ticket row, percentiles to the tenth of a second: the
    reference the aggregates are checked against (tests/test_central_rollup.py), and the bench's baseline."""
    side_by_side = []
    rows: list[tuple[Any, ...]] = []
    first_calls: dict[str, str] = {}
    feedback: list[Feedback] = []
    targets: dict[str, float] = {}
    for branch in config.branches.values():
        branch_rows = read_branch_tickets(db, branch.id, start, end)
        branch_first = read_first_calls(db, branch.id, start, end)
        branch_feedback = read_feedback(db, branch, start, end)
        branch_targets = {sid: s.target_wait_min for sid, s in branch.site.services.items()}
        summary = summarize(branch_rows, branch.site.timezone, (), targets=branch_targets, first_calls=branch_first,
                            feedback=branch_feedback, start=start, end=end)
        side_by_side.append({"branch": branch.id, "name": branch.name, **summary.total})
        # one branch's service ids may mean another's services: the target is looked up per branch, so the
        # ticket rows carry it through a branch-qualified service id
        rows += [(*r[:2], f"{branch.id}/{r[2]}", *r[3:]) for r in branch_rows]
        first_calls.update(branch_first)
        feedback += branch_feedback
        targets.update({f"{branch.id}/{sid}": t for sid, t in branch_targets.items()})
    zones = {str(b.site.timezone) for b in config.branches.values()}
    together = None
    if len(zones) == 1:
        zone = next(iter(config.branches.values())).site.timezone
        together = summarize(rows, zone, (), targets=targets, first_calls=first_calls, feedback=feedback,
                             start=start, end=end).total
    return {"start": start.isoformat(), "end": end.isoformat(), "branches": side_by_side, "all": together}


def centre_zone(config: CentreConfig) -> ZoneInfo:
    """The zone the centre's pages read times in: the branches' (the first branch's; a municipality has one)."""
    return next(iter(config.branches.values())).site.timezone if config.branches else ZoneInfo("UTC")


def utc_now() -> datetime:
    return datetime.now(UTC)
