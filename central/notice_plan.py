"""Planning the confirmations and reminders of the centre's bookings, inside the booking change's own transaction.

A branch's ``[notify]`` says whether and how its bookings' messages go — the same settings, words and reminder
moment as at the branch's hub (``server/bookings/notice_parts.py``), from the site the centre uses for the branch now
(the version it reports it runs, else the file in centre.toml: ``central/branch_sites.py``). A branch without
``[notify]`` gets no opt-in box on the centre's page and no messages, exactly as at the hub.

Planning writes rows only (``calendar_contacts``, ``calendar_notices``; schema 12): a message is planned if and only
if the booking change commits. The sending is ``central/notice_sender.py``'s, in the one worker that owns the
background work.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import psycopg

from central.config import CentreConfig
from server.bookings.notice_parts import KINDS, NoticeSettings, sending_settings
from server.config import ConfigError, SiteConfig


class NoticePlan:
    """Each branch's notice settings (None for a branch that sends nothing), and the planning of a booking's
    messages."""

    def __init__(self, config: CentreConfig):
        self.config = config
        # Per branch: the site the settings were read from, and them; read again when the branch runs another
        # version (a site is never edited, only replaced whole)
        self._read: dict[str, tuple[SiteConfig, NoticeSettings | None]] = {}

    def site(self, branch: str) -> SiteConfig:
        return self.config.branches[branch].site

    def settings_for(self, branch: str) -> NoticeSettings | None:
        found = self.config.branches.get(branch)
        if found is None:
            return None
        read = self._read.get(branch)
        if read is None or read[0] is not found.site:
            try:
                read = (found.site, sending_settings(found.site))
            except ConfigError:  # not reached: checked at start, and a version run passed the hub's own checks
                read = (found.site, None)
            self._read[branch] = read
        return read[1]

    def plan(self, db: psycopg.Connection, row: dict[str, Any], kind: str, now: datetime,
             contact: tuple[str, str] | None = None, language: str | None = None) -> None:
        """The messages of the booking ``row`` (as just written): ``kind`` booked (with the citizen's ``contact``:
        otherwise nothing), moved or cancelled (only for a booking that has a contact). A booked or moved booking
        gets its reminder at the branch's moment unless that has passed; a move or cancel drops the old one."""
        settings = self.settings_for(row["branch"])
        if settings is None or kind not in KINDS:
            return
        booking_id = row["id"]
        if kind == "booked":
            if contact is None:
                return
            db.execute("INSERT INTO calendar_contacts (booking_id, channel, address, language) VALUES (%s, %s, %s, %s) "
                       "ON CONFLICT (booking_id) DO UPDATE SET channel = excluded.channel, address = excluded.address, "
                       "language = excluded.language", (booking_id, contact[0], contact[1],
                                                        language or row["language"] or "en"))
        else:
            if db.execute("SELECT 1 FROM calendar_contacts WHERE booking_id = %s", (booking_id,)).fetchone() is None:
                return
            db.execute("UPDATE calendar_notices SET state = 'dropped', done_at = %s WHERE booking_id = %s AND "
                       "state = 'due' AND kind = 'reminder'", (now, booking_id))
        plans = [(kind, now)]
        due = settings.rule_for(row["service"]).due(row["start_at"], self.site(row["branch"]))
        if kind != "cancelled" and due > now:
            plans.append(("reminder", due))
        with db.cursor() as cur:
            cur.executemany("INSERT INTO calendar_notices (id, booking_id, kind, due_at, for_start, state) "
                            "VALUES (%s, %s, %s, %s, %s, 'due')",
                            [(uuid.uuid4().hex, booking_id, k, at, row["start_at"]) for k, at in plans])
