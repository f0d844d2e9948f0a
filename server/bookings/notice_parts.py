"""What a branch's hub (``server/bookings/notices.py``) and the centre (``central/notice_sender.py``) do alike for
booking confirmations and reminders: the settings (``[notify]`` of a site file), the reminder's moment, the
contact's check, the messages' words in five languages (``notice_locale/``), the booking page's opt-in box, and the
retry rule.

One place for each rule, so a citizen booking at the branch's page and one booking at the municipality's page get
the same box, the same words and the same schedule. Each side keeps its own schedule and sender: the hub in its
SQLite writer thread, the centre in PostgreSQL.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from html import escape
from pathlib import Path
from typing import Any

from server import codes
from server.bookings.records import Booking
from server.config import ConfigError, SiteConfig, check_number
from server.phone import notify
from vuoro.i18n import translator

LOCALE_DIR = Path(__file__).resolve().parent / "notice_locale"
MAX_TRIES = 6  # a refused message is tried this often in all, after 2, 4, 8 … s (retry_first_s), then 'failed'
KINDS = ("booked", "moved", "cancelled")
SUBJECTS = {"booked": "Booking confirmed: {service}, {when}", "moved": "Booking moved: {service}, {when}",
            "cancelled": "Booking cancelled: {service}, {when}", "reminder": "Reminder: {service}, {when}"}
TEXTS = {"booked": "You have booked {service} at {site}, {when}. Your code: {code}.",
         "moved": "Your booking is moved: {service} at {site}, {when}. Your code: {code}.",
         "cancelled": "Your booking is cancelled: {service} at {site}, {when}. The time is free for someone else.",
         "reminder": "Reminder: you have booked {service} at {site}, {when}. Your code: {code}."}
MANAGE = "See, move or cancel it: {url}"
WILL_REMIND = "We will send you a reminder before your time."
FORM_MSGIDS = ("Send me a confirmation and a reminder", "Mobile number or e-mail address", "Mobile number",
               "E-mail address",
               "Optional. We use it only to send you a confirmation now and a reminder {when}, and delete it as "
               "soon as the reminder has been sent (or your booking is cancelled).",
               "the day before at {time}", "{hours} hours before your time",
               "Give a mobile number or an e-mail address for the reminder, or untick the box.")
MSGIDS = (*SUBJECTS.values(), *TEXTS.values(), MANAGE, WILL_REMIND, *FORM_MSGIDS)
NO_CONTACT = FORM_MSGIDS[-1]  # the page's words for a ticked box without a usable address


def words(language: str, msgid: str, **values: Any) -> str:
    text = translator(LOCALE_DIR, language)(msgid)
    for key, value in values.items():
        text = text.replace("{" + key + "}", str(value))
    return text


# -- settings ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReminderRule:
    """When a booking's reminder goes: at ``at`` the day before, or ``hours`` before the time."""

    at: time | None = time(18, 0)
    hours: float | None = None

    def due(self, start: datetime, config: SiteConfig) -> datetime:
        if self.hours is not None:
            return start - timedelta(hours=self.hours)
        day_before = start.astimezone(config.timezone).date() - timedelta(days=1)
        return datetime.combine(day_before, self.at or time(18, 0), config.timezone)

    def said(self, language: str) -> str:
        if self.hours is not None:
            return words(language, "{hours} hours before your time", hours=f"{self.hours:g}")
        return words(language, "the day before at {time}", time=(self.at or time(18, 0)).strftime("%H:%M"))


@dataclass(frozen=True)
class NoticeSettings:
    notify: notify.NotifySettings
    rule: ReminderRule
    per_service: dict[str, ReminderRule]
    first_retry_s: float

    @property
    def channels(self) -> list[str]:
        return self.notify.channels

    def rule_for(self, service: str) -> ReminderRule:
        return self.per_service.get(service, self.rule)

    def retry_after_s(self, tries: int) -> float | None:
        """Seconds until a message refused ``tries`` times goes again; None: give up (``MAX_TRIES``)."""
        return None if tries >= MAX_TRIES else self.first_retry_s * 2 ** (tries - 1)

    def check_contact(self, value: str) -> tuple[str, str]:
        """(channel, address) of what a citizen typed: an e-mail address if it has an @, else a mobile number;
        ValueError when it is neither or the site does not send by that channel."""
        value = " ".join(value.split())
        channel = "email" if "@" in value else "sms"
        if channel not in self.channels:
            raise ValueError(channel)
        return channel, notify.Notifier.check_address(channel, value)


def _rule(raw: dict[str, Any], path: str, problems: list[str], default: ReminderRule) -> ReminderRule:
    if "reminder_at" in raw and "reminder_hours" in raw:
        problems.append(f"{path}: give reminder_at or reminder_hours, not both")
        return default
    if "reminder_hours" in raw:
        return ReminderRule(at=None, hours=check_number(raw, "reminder_hours", path, 24, 0.5, 24 * 14, problems))
    if "reminder_at" in raw:
        value = raw["reminder_at"]
        try:
            if not isinstance(value, str) or len(value) != 5:
                raise ValueError(value)
            return ReminderRule(at=time.fromisoformat(value))
        except ValueError:
            problems.append(f"{path}.reminder_at: expected a time of day like \"18:00\", got {value!r}")
    return default


def parse_settings(config: SiteConfig) -> NoticeSettings:
    raw = config.raw.get("notify", {})
    raw = raw if isinstance(raw, dict) else {}
    problems: list[str] = []
    rule = _rule(raw, "notify", problems, ReminderRule())
    per_service: dict[str, ReminderRule] = {}
    services = raw.get("reminders", {})
    if not isinstance(services, dict):
        problems.append(f"notify.reminders: expected a table of services, got {services!r}")
        services = {}
    for sid, table in services.items():
        path = f"notify.reminders.{sid}"
        if sid not in config.services:
            problems.append(f"{path}: there is no service {sid!r}")
        elif not isinstance(table, dict) or set(table) - {"reminder_at", "reminder_hours"}:
            problems.append(f"{path}: expected reminder_at or reminder_hours")
        else:
            per_service[sid] = _rule(table, path, problems, rule)
    first_retry = check_number(raw, "retry_first_s", "notify", notify.FIRST_RETRY_S, 0.1, 600.0, problems)
    if problems:
        raise ConfigError(problems, str(config.path))
    return NoticeSettings(notify.parse_settings(config), rule, per_service, first_retry)


def sending_settings(config: SiteConfig) -> NoticeSettings | None:
    """The site's settings where it sends texts or e-mails; None where it sends none (the page offers nothing)."""
    settings = parse_settings(config)
    return settings if settings.channels else None


# -- the messages -----------------------------------------------------------------------------------------------


def compose(config: SiteConfig, manage_base: str | None, kind: str, booking: Booking, language: str,
            reminding: bool = False) -> tuple[str, str]:
    """(subject, text) of a message about ``booking`` in ``language``; ``manage_base``: the public address whose
    ``/book/b/<code>`` manages it (the hub's or the centre's), None to leave the link out."""
    from server.bookings.public import Words  # the page's own day names, in the same five languages

    local = booking.start.astimezone(config.timezone)
    when = f"{Words(language).day(local.date(), capital=False)} {local:%H:%M}"
    values = {"service": config.services[booking.service].name(language, config.default_language)
              if booking.service in config.services else booking.service,
              "site": config.name, "when": when, "code": codes.pretty(booking.code)}
    lines = [words(language, TEXTS[kind], **values)]
    if reminding:
        lines.append(words(language, WILL_REMIND))
    if kind != "cancelled" and manage_base:
        lines.append(words(language, MANAGE, url=f"{manage_base.rstrip('/')}/book/b/{booking.code}"))
    return words(language, SUBJECTS[kind], **values), "\n".join(lines)


# -- the booking page's opt-in (drawn here so the pages only place it) ------------------------------------------


def opt_in_html(settings: NoticeSettings | None, language: str, service: str, form: dict[str, str]) -> str:
    """The box and the one field, with what the contact is for and when it is deleted; nothing where the site
    sends no messages. Works without a script: the field is sent only when the box is ticked."""
    if settings is None:
        return ""
    channels = settings.channels
    label, kind, auto = (("Mobile number or e-mail address", "text", "on") if len(channels) == 2 else
                         ("Mobile number", "tel", "tel") if channels == ["sms"] else
                         ("E-mail address", "email", "email"))
    why = words(language, FORM_MSGIDS[4], when=settings.rule_for(service).said(language))
    ticked = " checked" if form.get("remind") else ""
    return (f'<div class="remind"><p class="tick"><input type="checkbox" id="f-remind" name="remind" value="1"'
            f'{ticked} aria-describedby="remind-why"><label for="f-remind">'
            f'{escape(words(language, "Send me a confirmation and a reminder"))}</label></p>'
            f'<p><label for="f-remind-to">{escape(words(language, label))}</label>'
            f'<input id="f-remind-to" name="remind_to" type="{kind}" autocomplete="{auto}" maxlength="254" '
            f'value="{escape(form.get("remind_to", ""), quote=True)}" aria-describedby="remind-why"></p>'
            f'<p id="remind-why" class="note">{escape(why)}</p></div>')


def ticked_contact(form: dict[str, str]) -> str | None:
    """What the page's form asks for: the field's value when the box is ticked (an address typed without the
    tick is not kept), None without the tick; a ticked box with an empty field is refused."""
    from server.errors import ApiError
    from vuoro import refusals

    if not form.get("remind"):
        return None
    value = form.get("remind_to", "").strip()
    if not value:
        raise ApiError(422, refusals.INVALID, "remind_to: empty", field="remind_to")
    return value


def contact_of(settings: NoticeSettings | None, ticked: bool, value: str | None,
               field: str = "remind_to") -> tuple[str, str] | None:
    """The citizen's opt-in as (channel, address), None without one; a refusal the page can show otherwise."""
    from server.errors import ApiError
    from vuoro import refusals

    if not ticked:
        return None
    if settings is None:
        raise ApiError(422, refusals.INVALID, f"{field}: this site sends no texts or e-mails ([notify]).",
                       field=field)
    try:
        return settings.check_contact(value or "")
    except ValueError:
        raise ApiError(422, refusals.INVALID, f"{field}: give a mobile number or an e-mail address the site "
                       f"sends to ({', '.join(settings.channels)}), or do not ask for a reminder.",
                       field=field) from None
