"""The centre's statistics at municipal scale: per-day aggregates and histograms that merge exactly.

Fifty branches for a year are ≈ 15 million tickets; reading them all into Python for one summary takes
minutes. So the figures of docs/statistics.md are kept per branch, local day and service
(``stats_day``: every count, the sum and maximum of the waits, the service level's numerator and
denominator), and the waits, service times and ratings as histograms per day and per calendar month
(``stats_day_hist``, ``stats_month_hist``). A year of all branches reads ≈ 73,000 day rows and twelve
months of histograms, not 15 million tickets.

**Exact, at a stated resolution.** Counts, sums, maxima, means and the service level are exact (the
service level is counted per ticket against its service's target when the day is aggregated). A
percentile is taken from the merged histogram by the same nearest-rank rule; histograms add up
bucket by bucket, so the percentile of any set of days and branches is the true nearest-rank
percentile of all their tickets **rounded up to its bucket's upper bound**::

    up to 2 min: 1 s     2–10 min: 5 s     10–60 min: 10 s     beyond: 60 s

— never more than 1.7 % or one second above the true value. (A t-digest would be smaller but only
approximate, with an error that depends on the order of the merges; fixed buckets merge exactly and
say what they are.) Every bucket boundary is a whole second and every whole minute is a boundary.

**Kept fresh.** The ingest marks, in its own transaction, each local day a batch touched
(``mark_ingested``: ``stats_dirty``, with a version). ``refresh`` re-aggregates a branch's marked days
from its rows in one transaction and removes only the marks it saw, so a batch stored meanwhile
leaves its mark for the next refresh. A summary refreshes the days of its period first (today, mostly),
within a time budget, and says how many marked days it could not count yet; the centre also refreshes
every 15 s in the background. Changing a branch's zone or a service's
target (its site file) re-aggregates all of that branch's days.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import psycopg

from central.config import Branch

RESOLUTION = "waits and service times rounded up to 1 s up to 2 min, 5 s up to 10 min, 10 s up to 1 h, 60 s beyond"
_LOCK = 0x7374_6174  # "stat": one refresh per branch at a time
KINDS = ("w", "s", "r")  # waits, service times, ratings


def bucket(seconds: float) -> int:
    """The upper bound of the bucket a duration falls in (whole seconds): the resolution of the percentiles."""
    for limit, width in ((120, 1), (600, 5), (3600, 10)):
        if seconds <= limit:
            return math.ceil(seconds / width) * width
    return math.ceil(seconds / 60) * 60


def _bucket_sql(x: str) -> str:
    return (f"(CASE WHEN {x} <= 120 THEN ceil({x}) WHEN {x} <= 600 THEN ceil({x} / 5) * 5 "
            f"WHEN {x} <= 3600 THEN ceil({x} / 10) * 10 ELSE ceil({x} / 60) * 60 END)::integer")


# The day aggregates, from the rows: the same definitions as server/stats/figures.py (summarize_many).
_AGGREGATE = f"""
WITH t AS MATERIALIZED (
    SELECT t.service, t.status, t.origin, t.transfers, (t.issued_at AT TIME ZONE %(zone)s)::date AS d,
           -- server/stats/figures.py channel_of: rows from before the channel was kept were a kiosk's or a check-in's
           COALESCE(t.channel, CASE WHEN t.origin = 'booking' THEN 'booking' ELSE 'kiosk' END) AS channel,
           CASE WHEN COALESCE(fc.at, t.called_at) IS NOT NULL THEN GREATEST(0, EXTRACT(EPOCH FROM
               COALESCE(fc.at, t.called_at) - CASE WHEN t.origin = 'booking' AND t.due_at IS NOT NULL
                                                   THEN GREATEST(t.queued_at, t.due_at) ELSE t.queued_at END)) END
               AS wait,
           CASE WHEN t.status = 'done' AND t.called_at IS NOT NULL AND t.finished_at IS NOT NULL
                THEN GREATEST(0, EXTRACT(EPOCH FROM t.finished_at - t.called_at)) END AS service_s,
           (%(targets)s::jsonb ->> t.service)::numeric AS target,
           t.status = 'left' AND t.finished_at IS NOT NULL AND EXTRACT(EPOCH FROM t.finished_at - t.queued_at)
               > (%(targets)s::jsonb ->> t.service)::numeric AS left_late
    FROM tickets t
    -- a transferred ticket waited until its FIRST call (the ticket row keeps its last)
    LEFT JOIN LATERAL (SELECT MIN(e.at) AS at FROM ticket_events e WHERE t.transfers > 0 AND e.branch = t.branch
                       AND e.ticket_id = t.id AND e.kind = 'called') fc ON true
    WHERE t.branch = %(branch)s AND t.day = ANY(%(near)s::date[])
      AND (t.issued_at AT TIME ZONE %(zone)s)::date IN (SELECT unnest(%(days)s::date[]))  -- hashed: a year of days
), c AS (
    SELECT *, target IS NOT NULL AND (wait IS NOT NULL OR status = 'expired' OR left_late) AS counted FROM t
), days AS (
    INSERT INTO stats_day
    SELECT %(branch)s, d, service, COUNT(*), COUNT(*) FILTER (WHERE status = 'done'),
           COUNT(*) FILTER (WHERE status = 'no_show'), COUNT(*) FILTER (WHERE status = 'expired'),
           COUNT(*) FILTER (WHERE status = 'left'),
           COUNT(*) FILTER (WHERE status NOT IN ('done', 'no_show', 'expired', 'left')),
           COUNT(*) FILTER (WHERE transfers > 0), COALESCE(SUM(transfers) FILTER (WHERE transfers > 0), 0),
           COUNT(*) FILTER (WHERE origin <> 'booking'), COUNT(*) FILTER (WHERE origin = 'booking'),
           COUNT(*) FILTER (WHERE origin = 'booking' AND status = 'done'),
           COUNT(*) FILTER (WHERE origin = 'booking' AND status = 'no_show'),
           COUNT(wait), COALESCE(SUM(wait), 0), MAX(wait),
           COUNT(*) FILTER (WHERE counted AND wait IS NOT NULL AND wait <= target), COUNT(*) FILTER (WHERE counted),
           COUNT(*) FILTER (WHERE channel = 'kiosk'), COUNT(*) FILTER (WHERE channel = 'phone'),
           COUNT(*) FILTER (WHERE channel = 'staff'), COUNT(*) FILTER (WHERE channel = 'booking')
    FROM c GROUP BY d, service
)
INSERT INTO stats_day_hist (branch, day, kind, bucket, n)
SELECT %(branch)s, d, 'w', {_bucket_sql('wait')}, COUNT(*) FROM t WHERE wait IS NOT NULL GROUP BY 2, 4
UNION ALL
SELECT %(branch)s, d, 's', {_bucket_sql('service_s')}, COUNT(*) FROM t WHERE service_s IS NOT NULL GROUP BY 2, 4
UNION ALL
SELECT %(branch)s, (f.at AT TIME ZONE %(zone)s)::date, 'r', f.rating, COUNT(*) FROM feedback f
WHERE f.branch = %(branch)s AND f.at >= %(lo)s AND f.at < %(hi)s
  AND (f.at AT TIME ZONE %(zone)s)::date IN (SELECT unnest(%(days)s::date[]))
GROUP BY 2, 4
"""

# A day's histogram leaves its month before the day is aggregated again, and its new one joins after.
_TO_MONTHS = """
INSERT INTO stats_month_hist (branch, month, kind, bucket, n)
SELECT branch, date_trunc('month', day)::date, kind, bucket, %(sign)s * SUM(n) FROM stats_day_hist
WHERE branch = %(branch)s AND day = ANY(%(days)s::date[]) GROUP BY 1, 2, 3, 4
ON CONFLICT (branch, month, kind, bucket) DO UPDATE SET n = stats_month_hist.n + excluded.n
"""

# The local days of the rows a batch stored, in the branch's zone, marked in the batch's transaction (in day
# order, as a refresh locks them, so the two never wait on each other crosswise).
_MARK = """
INSERT INTO stats_dirty (branch, day)
SELECT %(branch)s, d FROM (
    SELECT (x AT TIME ZONE b.zone)::date AS d FROM branches b, unnest(%(issued)s::timestamptz[]) x
    WHERE b.id = %(branch)s AND b.zone IS NOT NULL
    UNION
    SELECT (t.issued_at AT TIME ZONE b.zone)::date FROM branches b JOIN tickets t ON t.branch = b.id
    WHERE b.id = %(branch)s AND b.zone IS NOT NULL AND t.id = ANY(%(tickets)s::text[])
    UNION
    SELECT (x AT TIME ZONE b.zone)::date FROM branches b, unnest(%(rated)s::timestamptz[]) x
    WHERE b.id = %(branch)s AND b.zone IS NOT NULL
) marked ORDER BY d
ON CONFLICT (branch, day) DO UPDATE SET version = stats_dirty.version + 1
"""


def mark_ingested(db: psycopg.Connection, branch: str, issued: list[str], tickets: list[str],
                  rated: list[str]) -> None:
    """In the ingest's transaction: the days of tickets issued (``issued``: their issue times), of tickets
    whose history changed (``tickets``: ids) and of ratings (``rated``: their times) need aggregating again."""
    if issued or tickets or rated:
        db.execute(_MARK, {"branch": branch, "issued": issued, "tickets": tickets, "rated": rated})


def _basis(branch: Branch) -> tuple[str, dict[str, float]]:
    targets = {sid: float(s.target_wait_min) * 60 for sid, s in sorted(branch.site.services.items())}
    return str(branch.site.timezone.key), targets


def refresh(db: psycopg.Connection, branch: Branch, start: date | None = None, end: date | None = None) -> int:
    """Aggregate again the branch's marked days (within ``start``–``end`` if given); how many. One transaction.

    Its statements are never prepared on the server: a generic plan cannot know how many days it is given,
    and for one day it chose a scan of every branch's tickets (0.6 s a branch instead of milliseconds)."""
    zone, targets = _basis(branch)
    with db.transaction():
        db.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (_LOCK, branch.id))
        _tune(db)
        basis = db.execute("SELECT zone, targets FROM stats_basis WHERE branch = %s", (branch.id,)).fetchone()
        if basis is None or basis[0] != zone or basis[1] != targets:
            _rebase(db, branch.id, zone, targets)
        marked = db.execute(
            "SELECT day, version FROM stats_dirty WHERE branch = %s AND day >= %s AND day <= %s ORDER BY day "
            "FOR UPDATE", (branch.id, start or date.min, end or date.max)).fetchall()
        if not marked:
            return 0
        days = [d for d, _ in marked]
        near = sorted({d + timedelta(days=k) for d in days for k in (-1, 0, 1)})
        params = {"branch": branch.id, "zone": zone, "targets": json.dumps(targets), "days": days, "near": near,
                  "lo": f"{days[0] - timedelta(days=1)}T00:00:00+00:00",
                  "hi": f"{days[-1] + timedelta(days=2)}T00:00:00+00:00"}
        db.execute(_TO_MONTHS, {**params, "sign": -1}, prepare=False)
        db.execute("DELETE FROM stats_day WHERE branch = %(branch)s AND day = ANY(%(days)s::date[])", params,
                   prepare=False)
        db.execute("DELETE FROM stats_day_hist WHERE branch = %(branch)s AND day = ANY(%(days)s::date[])", params,
                   prepare=False)
        db.execute(_AGGREGATE, params, prepare=False)
        db.execute(_TO_MONTHS, {**params, "sign": 1}, prepare=False)
        db.execute("DELETE FROM stats_month_hist WHERE branch = %s AND n = 0", (branch.id,))
        db.execute("DELETE FROM stats_dirty d USING unnest(%s::date[], %s::bigint[]) AS seen(day, version) "
                   "WHERE d.branch = %s AND d.day = seen.day AND d.version = seen.version",
                   (days, [v for _, v in marked], branch.id))
    return len(days)


def stale(db: psycopg.Connection, branches: list[Branch], start: date, end: date) -> list[Branch]:
    """The branches with marked days in start–end, or whose zone or targets changed: two queries, so a summary
    of fifty branches with nothing to refresh does not open fifty transactions."""
    ids = [b.id for b in branches]
    marked = {row[0] for row in db.execute(
        "SELECT DISTINCT branch FROM stats_dirty WHERE branch = ANY(%s) AND day BETWEEN %s AND %s", (ids, start, end))}
    basis = {bid: (zone, targets) for bid, zone, targets in db.execute(
        "SELECT branch, zone, targets FROM stats_basis WHERE branch = ANY(%s)", (ids,))}
    return [b for b in branches if b.id in marked or basis.get(b.id) != _basis(b)]


def _tune(db: psycopg.Connection) -> None:
    """For this transaction: no JIT (compiling the aggregation took 6 s of a branch-year's 27 s, and more than
    a summary's whole read), and room to group a year of buckets in memory rather than on disk."""
    db.execute("SET LOCAL jit = off")
    db.execute("SET LOCAL work_mem = '64MB'")


def _rebase(db: psycopg.Connection, branch: str, zone: str, targets: dict[str, float]) -> None:
    """A new zone or new targets (or the first aggregation): every day of the branch is aggregated again."""
    for table in ("stats_day", "stats_day_hist", "stats_month_hist"):
        db.execute(f"DELETE FROM {table} WHERE branch = %s", (branch,))
    db.execute("UPDATE branches SET zone = %s WHERE id = %s", (zone, branch))
    db.execute(
        "INSERT INTO stats_dirty (branch, day) SELECT %(b)s, d FROM ("
        "SELECT DISTINCT (issued_at AT TIME ZONE %(z)s)::date AS d FROM tickets WHERE branch = %(b)s UNION "
        "SELECT DISTINCT (at AT TIME ZONE %(z)s)::date FROM feedback WHERE branch = %(b)s) every ORDER BY d "
        "ON CONFLICT (branch, day) DO UPDATE SET version = stats_dirty.version + 1", {"b": branch, "z": zone})
    db.execute("INSERT INTO stats_basis (branch, zone, targets) VALUES (%s, %s, %s) ON CONFLICT (branch) DO UPDATE "
               "SET zone = excluded.zone, targets = excluded.targets", (branch, zone, json.dumps(targets)))


# -- reading ----------------------------------------------------------------------------------------------

_COUNTS = ("issued", "served", "no_show", "expired", "left", "open", "transferred", "transfers", "walk_in", "booking",
           "bookings_kept", "bookings_no_show", "called", "from_kiosk", "from_phone", "from_staff", "from_booking")


@dataclass
class Aggregate:
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(_COUNTS, 0))
    wait_sum: Decimal = Decimal(0)
    wait_max: Decimal | None = None
    within: int = 0
    sl_base: int = 0
    hist: dict[str, dict[int, int]] = field(default_factory=lambda: {k: {} for k in KINDS})

    def add(self, other: Aggregate) -> None:
        for key, n in other.counts.items():
            self.counts[key] += n
        self.wait_sum += other.wait_sum
        if other.wait_max is not None and (self.wait_max is None or other.wait_max > self.wait_max):
            self.wait_max = other.wait_max
        self.within += other.within
        self.sl_base += other.sl_base
        for kind, buckets in other.hist.items():
            mine = self.hist[kind]
            for b, n in buckets.items():
                mine[b] = mine.get(b, 0) + n

    def figures(self) -> dict[str, Any]:
        """The same keys and roundings as ``server.stats.figures`` (``_Group.figures``)."""
        called = self.counts["called"]
        ratings = [self.hist["r"].get(r, 0) for r in range(1, 6)]
        rated = sum(ratings)
        return {
            **self.counts,
            "wait_median_s": _percentile(self.hist["w"], 50),
            "wait_p90_s": _percentile(self.hist["w"], 90),
            "wait_max_s": None if self.wait_max is None else round(float(self.wait_max), 1),
            "wait_mean_s": round(float(self.wait_sum / called), 1) if called else None,
            "service_median_s": _percentile(self.hist["s"], 50),
            "service_p90_s": _percentile(self.hist["s"], 90),
            "within_target": self.within,
            "service_level": round(self.within / self.sl_base, 4) if self.sl_base else None,
            "feedback_count": rated,
            "feedback_mean": round(sum((i + 1) * n for i, n in enumerate(ratings)) / rated, 2) if rated else None,
            "feedback_ratings": ratings,
        }


def _percentile(hist: dict[int, int], p: int) -> float | None:
    """Nearest rank (rank ⌈p·n/100⌉) over a histogram: the upper bound of the bucket holding that rank."""
    n = sum(hist.values())
    if n == 0:
        return None
    rank, seen = -(-p * n // 100), 0
    for b in sorted(hist):
        seen += hist[b]
        if seen >= rank:
            return float(b)
    raise AssertionError("unreachable")


def _months(start: date, end: date) -> tuple[list[date], list[tuple[date, date]]]:
    """Whole calendar months within start–end (read from the month histograms), and the days around them."""
    first = start if start.day == 1 else (start.replace(day=28) + timedelta(days=4)).replace(day=1)
    months: list[date] = []
    m = first
    while True:
        following = (m.replace(day=28) + timedelta(days=4)).replace(day=1)
        if following - timedelta(days=1) > end:
            break
        months.append(m)
        m = following
    if not months:
        return [], [(start, end)]
    edges = [(start, months[0] - timedelta(days=1)), (m, end)]
    return months, [(lo, hi) for lo, hi in edges if lo <= hi]


def read(db: psycopg.Connection, branches: list[Branch], start: date, end: date, *,
         budget_s: float | None = None) -> tuple[dict[str, Aggregate], int]:
    """Each branch's aggregate over the local days start–end, and how many marked days it does not count yet.

    The marked days of the period are aggregated first, for at most ``budget_s`` seconds (None: all of them):
    fifty busy branches have today marked almost always, and refreshing all fifty at once took seconds on the
    loaded machine; what is left is the background refresher's (``central/refresher.py``) and is reported."""
    pending = _refresh_first(db, branches, start, end, budget_s)
    with db.transaction():
        _tune(db)
        return _read(db, [b.id for b in branches], start, end), pending


def _refresh_first(db: psycopg.Connection, branches: list[Branch], start: date, end: date,
                   budget_s: float | None) -> int:
    """Aggregate the period's marked days within the budget; how many are left."""
    began = time.monotonic()
    for branch in stale(db, branches, start, end):
        if budget_s is not None and time.monotonic() - began > budget_s:
            break
        refresh(db, branch, start, end)
    pending = db.execute("SELECT COUNT(*) FROM stats_dirty WHERE branch = ANY(%s) AND day BETWEEN %s AND %s",
                         ([b.id for b in branches], start, end)).fetchone()
    db.commit()
    return int(pending[0]) if pending else 0


# The groupings the day aggregates answer exactly (``by=``): a group is a set of whole local days, or a service.
# The hour, the desk and the origin of a ticket are not kept per day, so they are the branches' own statistics'.
# By service every count, mean, maximum and service level is exact, but the histograms are kept per day, not
# per service: the percentiles and ratings of a service are not known here (None, and ``NOT_BY_SERVICE``).
GROUPINGS = ("day", "weekday", "month", "service")
NOT_BY_SERVICE = ("wait_median_s", "wait_p90_s", "service_median_s", "service_p90_s", "feedback_count",
                  "feedback_mean", "feedback_ratings")
_KEY_SQL = {"day": "to_char(day, 'YYYY-MM-DD')", "weekday": "EXTRACT(ISODOW FROM day)::integer",
            "month": "to_char(day, 'YYYY-MM')", "service": "service"}


def read_by(db: psycopg.Connection, branches: list[Branch], start: date, end: date, by: str, *,
            budget_s: float | None = None) -> tuple[dict[str, dict[Any, Aggregate]], int]:
    """Each branch's aggregate per group of ``by`` (one of ``GROUPINGS``) over start–end, keys as the branch's
    own statistics write them (day 'YYYY-MM-DD', ISO weekday 1–7, month 'YYYY-MM', the service id); and how
    many marked days are not counted yet (as ``read``)."""
    if by not in GROUPINGS:
        raise ValueError(f"by: one of {', '.join(GROUPINGS)}")
    pending = _refresh_first(db, branches, start, end, budget_s)
    ids = [b.id for b in branches]
    result: dict[str, dict[Any, Aggregate]] = {bid: {} for bid in ids}
    key = _KEY_SQL[by]
    with db.transaction():
        _tune(db)
        for row in db.execute(
                f"SELECT branch, {key}, SUM(issued), SUM(served), SUM(no_show), SUM(expired), SUM(left_queue), "
                "SUM(open), SUM(transferred), SUM(transfers), SUM(walk_in), SUM(booking), SUM(booking_kept), "
                "SUM(booking_no_show), SUM(called), SUM(from_kiosk), SUM(from_phone), SUM(from_staff), "
                "SUM(from_booking), SUM(wait_sum), MAX(wait_max), SUM(within), SUM(sl_base) FROM stats_day "
                "WHERE branch = ANY(%s) AND day BETWEEN %s AND %s GROUP BY 1, 2", (ids, start, end), prepare=False):
            agg = result[row[0]].setdefault(row[1], Aggregate())
            agg.counts = {k: int(n) for k, n in zip(_COUNTS, row[2:19], strict=True)}
            agg.wait_sum, agg.wait_max, agg.within, agg.sl_base = row[19], row[20], int(row[21]), int(row[22])
        if by == "service":
            return result, pending
        if by == "month":  # whole months from the month histograms, the edges' days from the day ones
            months, edges = _months(start, end)
            days = "".join(" UNION ALL SELECT branch, to_char(day, 'YYYY-MM'), kind, bucket, n FROM stats_day_hist "
                           "WHERE branch = ANY(%s) AND day BETWEEN %s AND %s" for _ in edges)
            hist_sql = ("SELECT branch, k, kind, bucket, SUM(n) FROM (SELECT branch, to_char(month, 'YYYY-MM') AS k, "
                        "kind, bucket, n FROM stats_month_hist WHERE branch = ANY(%s) AND month = ANY(%s::date[])"
                        f"{days}) h GROUP BY 1, 2, 3, 4")
            args: tuple[Any, ...] = (ids, months, *[v for lo, hi in edges for v in (ids, lo, hi)])
        else:
            hist_sql = (f"SELECT branch, {key}, kind, bucket, SUM(n) FROM stats_day_hist WHERE branch = ANY(%s) "
                        "AND day BETWEEN %s AND %s GROUP BY 1, 2, 3, 4")
            args = (ids, start, end)
        for bid, k, kind, b, n in db.execute(hist_sql, args, prepare=False):
            result[bid].setdefault(k, Aggregate()).hist[kind][b] = int(n)  # a day with ratings only has no row
    return result, pending


def _read(db: psycopg.Connection, ids: list[str], start: date, end: date) -> dict[str, Aggregate]:
    result = {bid: Aggregate() for bid in ids}
    for row in db.execute(
            "SELECT branch, SUM(issued), SUM(served), SUM(no_show), SUM(expired), SUM(left_queue), SUM(open), "
            "SUM(transferred), SUM(transfers), SUM(walk_in), SUM(booking), SUM(booking_kept), SUM(booking_no_show), "
            "SUM(called), SUM(from_kiosk), SUM(from_phone), SUM(from_staff), SUM(from_booking), "
            "SUM(wait_sum), MAX(wait_max), SUM(within), SUM(sl_base) FROM stats_day "
            "WHERE branch = ANY(%s) AND day BETWEEN %s AND %s GROUP BY branch", (ids, start, end), prepare=False):
        agg = result[row[0]]
        agg.counts = {key: int(n) for key, n in zip(_COUNTS, row[1:18], strict=True)}
        agg.wait_sum, agg.wait_max, agg.within, agg.sl_base = row[18], row[19], int(row[20]), int(row[21])
    months, edges = _months(start, end)
    # one index range per edge (an OR of ranges was read as a scan of every day's histogram)
    days = "".join(" UNION ALL SELECT branch, kind, bucket, n FROM stats_day_hist WHERE branch = ANY(%s) "
                   "AND day BETWEEN %s AND %s" for _ in edges)
    for bid, kind, b, n in db.execute(
            "SELECT branch, kind, bucket, SUM(n) FROM ("
            "SELECT branch, kind, bucket, n FROM stats_month_hist WHERE branch = ANY(%s) AND month = ANY(%s::date[])"
            f"{days}) h GROUP BY 1, 2, 3", (ids, months, *[v for lo, hi in edges for v in (ids, lo, hi)]),
            prepare=False):
        result[bid].hist[kind][b] = int(n)
    return result
