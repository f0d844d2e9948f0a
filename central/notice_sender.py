"""Sending the centre's booking confirmations and reminders: a thread in the one worker that owns the background work
(``central/coordination.py``), started and stopped with the owner's jobs (``central/app.py``).

At most once, over PostgreSQL:

- **Taking over.** When a worker becomes the owner, every message still ``sending`` was in flight in an owner that
  died or lost the database: nobody knows whether it arrived, so it is marked ``unknown`` and never sent again —
  a lost reminder beats two.
- **Claim, commit, send.** One due message at a time is claimed (``FOR UPDATE SKIP LOCKED``), checked against the
  booking as it is now (a reminder of a cancelled, checked-in or passed booking is dropped; of a moved one,
  planned again for the new time) and marked ``sending``; that transaction COMMITS before the message goes. Then
  ``sent``, or due again after 2, 4, 8 … s (six tries), then ``failed``. So a kill can leave at most the one
  message in flight ``unknown``.
- The message's id is the gateway's ``Idempotency-Key`` and the e-mail's Message-ID, as at the hub.
- **The contact** is deleted as soon as no message of its booking is due or sending (after the reminder, after a
  cancellation's confirmation, when the time has passed or the branch checked it in or cancelled it). The
  retention purge (``Calendar.purge``) deletes any left on days older than the branch's ``retention_days``.

Nothing personal is logged: a message is named by its kind and channel, a refusal by its status or type.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

from central.calendar import as_booking, utc_now
from central.notice_plan import NoticePlan
from server.bookings.notice_parts import compose
from server.phone import notify

log = logging.getLogger("vuoro.central.notices")

POLL_S = 1.0  # how often the owner looks for due messages (one indexed read)
STOP_WAIT_S = 15.0  # a message in flight is given this long to be answered when the owner stops


@dataclass(frozen=True)
class Outgoing:
    id: str
    booking_id: str
    branch: str
    kind: str
    tries: int
    channel: str
    to: str
    subject: str
    text: str


class NoticeSender:
    """The owner's sending thread (see the module's doc)."""

    def __init__(self, plan: NoticePlan, pool: ConnectionPool, clock: Callable[[], datetime] = utc_now):
        self.plan, self.pool, self.clock = plan, pool, clock
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="vuoro-centre-notices", daemon=True)

    def start(self) -> Callable[[], None]:
        """Start sending; returns what stops it (the owner's jobs' way)."""
        self._thread.start()
        return self.stop

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(STOP_WAIT_S)

    def _run(self) -> None:
        taken_over = False
        while not self._stop.is_set():
            try:
                if not taken_over:
                    self.take_over()
                    taken_over = True
                self.sweep()
                while not self._stop.is_set() and self.send_one():
                    pass
            except Exception as exc:  # the database away: again at the next look (no message text: no address)
                log.warning("booking messages: %s; trying again", type(exc).__name__)
            self._stop.wait(POLL_S)

    # -- the steps, each its own transaction ------------------------------------------------------------------------

    def take_over(self) -> int:
        """Messages left ``sending`` by an earlier owner: ``unknown``, never sent again. How many."""
        with self.pool.connection() as db, db.transaction():
            cut = db.execute("UPDATE calendar_notices SET state = 'unknown', done_at = %s WHERE state = 'sending' "
                             "RETURNING kind", (self.clock(),)).fetchall()
        for (kind,) in cut:
            log.warning("a %s message was being sent when its sender stopped; it is not sent again (it may not have "
                        "arrived)", kind)
        if cut:
            self.forget_done()
        return len(cut)

    def sweep(self) -> None:
        """Reminders of bookings cancelled, checked in or passed (at the centre or, through the ingest, at the
        branch) do not go; contacts with nothing left to send are deleted."""
        with self.pool.connection() as db, db.transaction():
            db.execute("UPDATE calendar_notices n SET state = 'dropped', done_at = %s FROM calendar_bookings b "
                       "WHERE b.id = n.booking_id AND n.state = 'due' AND n.kind = 'reminder' AND "
                       "(b.status <> 'booked' OR b.start_at <= %s)", (self.clock(), self.clock()))
        self.forget_done()

    def forget_done(self) -> None:
        with self.pool.connection() as db, db.transaction():
            db.execute("DELETE FROM calendar_contacts c WHERE NOT EXISTS (SELECT 1 FROM calendar_notices n WHERE "
                       "n.booking_id = c.booking_id AND n.state IN ('due', 'sending'))")

    def send_one(self) -> bool:
        """Claim, send and settle the first due message; False when none is due."""
        claimed = self.claim()
        if claimed is None:
            return False
        if isinstance(claimed, Outgoing):
            self.deliver(claimed)
        return True

    def claim(self) -> Outgoing | bool | None:
        """The first due message marked ``sending`` and committed (an ``Outgoing``); True when it was dropped or
        planned again instead; None when nothing is due."""
        now = self.clock()
        with self.pool.connection() as db, db.transaction(), db.cursor(row_factory=dict_row) as cur:
            notice = cur.execute("SELECT * FROM calendar_notices WHERE state = 'due' AND due_at <= %s ORDER BY due_at "
                                 "LIMIT 1 FOR UPDATE SKIP LOCKED", (now,)).fetchone()
            if notice is None:
                return None
            booking = cur.execute("SELECT * FROM calendar_bookings WHERE id = %s", (notice["booking_id"],)).fetchone()
            contact = cur.execute("SELECT * FROM calendar_contacts WHERE booking_id = %s",
                                  (notice["booking_id"],)).fetchone()
            settings = self.plan.settings_for(booking["branch"]) if booking else None
            drop = booking is None or contact is None or settings is None or (
                notice["kind"] == "reminder" and (booking["status"] != "booked" or booking["start_at"] <= now))
            if drop:
                cur.execute("UPDATE calendar_notices SET state = 'dropped', done_at = %s WHERE id = %s",
                            (now, notice["id"]))
                return True
            assert booking is not None and contact is not None and settings is not None
            site = self.plan.site(booking["branch"])
            if notice["kind"] == "reminder" and booking["start_at"] != notice["for_start"]:
                # moved since it was planned (by staff at the branch, on its day): remind for the new time
                again = settings.rule_for(booking["service"]).due(booking["start_at"], site)
                cur.execute("UPDATE calendar_notices SET due_at = %s, for_start = %s WHERE id = %s",
                            (max(again, now), booking["start_at"], notice["id"]))
                return True
            cur.execute("UPDATE calendar_notices SET state = 'sending' WHERE id = %s", (notice["id"],))
            reminding = notice["kind"] == "booked" and cur.execute(
                "SELECT 1 FROM calendar_notices WHERE booking_id = %s AND kind = 'reminder' AND state = 'due'",
                (booking["id"],)).fetchone() is not None
            subject, text = compose(site, self.plan.config.public_url, notice["kind"], as_booking(booking),
                                    contact["language"], reminding)
        # committed: 'sending' is on disk before the message goes
        return Outgoing(notice["id"], booking["id"], booking["branch"], notice["kind"], notice["tries"],
                        contact["channel"], contact["address"], subject, text)

    def deliver(self, message: Outgoing) -> None:
        settings = self.plan.settings_for(message.branch)
        reason: str | None = "the branch sends no messages now" if settings is None else None
        try:
            if settings is not None:
                notify.deliver(settings.notify, message.channel, message.to, message.subject, message.text,
                               key=f"vuoro-{message.id}")
        except Exception as exc:  # the gateway down or refusing: again later
            reason = notify.failure_reason(exc)
        self.settle(message, reason)

    def settle(self, message: Outgoing, reason: str | None) -> None:
        now = self.clock()
        tries = message.tries + 1
        with self.pool.connection() as db, db.transaction():
            if reason is None:
                # 'unknown' too: a new owner may have marked it while this one was still sending; it went
                db.execute("UPDATE calendar_notices SET state = 'sent', tries = %s, done_at = %s WHERE id = %s AND "
                           "state IN ('sending', 'unknown')", (tries, now, message.id))
                log.info("sent a %s (%s) for %s", message.channel, message.kind, message.branch)
            else:
                settings = self.plan.settings_for(message.branch)
                delay = settings.retry_after_s(tries) if settings else None
                state, due, done = ("failed", now, now) if delay is None else ("due", now + timedelta(seconds=delay),
                                                                               None)
                # only a message still ours: one marked 'unknown' meanwhile is never tried again
                db.execute("UPDATE calendar_notices SET state = %s, tries = %s, due_at = %s, done_at = %s WHERE "
                           "id = %s AND state = 'sending'", (state, tries, due, done, message.id))
                log.warning("could not send a %s (%s) for %s: %s; %s", message.channel, message.kind, message.branch,
                            reason, "gave up" if delay is None else "trying again")
        self.forget_done()


def owner_job(plan: NoticePlan, pool: ConnectionPool) -> Callable[[], None]:
    """For the owner's jobs: start sending; returns what stops it. It runs even while no branch sends (it only looks
    now and then): a branch may run a version with ``[notify]`` later, and messages planned before may still be due."""
    return NoticeSender(plan, pool).start()


