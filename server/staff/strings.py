"""Every word the staff page shows, in English (the msgids of ``server/staff/locale/*.po``)."""

from __future__ import annotations

from pathlib import Path

from vuoro.i18n import LANGUAGES, NATIVE_NAMES, translator

LOCALE_DIR = Path(__file__).resolve().parent / "locale"

MSGIDS: tuple[str, ...] = (
    "Staff",
    "Log in",
    "User name",
    "Password",
    "Wrong user name or password.",
    "Too many attempts. Wait {min} minutes and try again.",
    "Too many attempts. Wait {sec} seconds and try again.",
    "The login form had expired. Try again.",
    "Log out",
    "Desk",
    "Choose your desk",
    "Call next",
    "Call again",
    "No-show",
    "Finish",
    "Transfer to",
    "Transfer",
    "Pause desk",
    "Open desk",
    "Now serving",
    "No one at the desk",
    "Waiting",
    "No one is waiting",
    "{n} waiting",
    "waited {n} min",
    "booked {time}",
    "Today's bookings",
    "No bookings today",
    "checked in",
    "not checked in",
    "Devices",
    "online",
    "offline",
    "No devices have reported yet",
    "Kiosk",
    "Screen",
    "Button box",
    "Printer",
    "Hub",
    "paper ok",
    "paper low",
    "paper out",
    "cover open",
    "printer offline",
    "printer error",
    "printer state unknown",
    "{n} wrong booking codes in the last hour",
    "slowed down",
    "Event feeds",
    "{n} events read",
    "needs attention",
    "Not shown: {event} – {reason}",
    # why a feed's event could not be read, by the hub's code (server/events/feeds.py PROBLEMS)
    "Its start {value} is not a real date or time.",
    "Its end {value} is not a real date or time.",
    "Its {value} cannot be read.",
    "It has no start.",
    "It has no title or no date and time.",
    "Open",
    "Paused",
    "Closed",
    "Called {ticket}",
    "Called {ticket} again",
    "Marked as not shown up",
    "Finished",
    "Transferred",
    "Desk paused",
    "Desk open",
    "Lost the connection to the hub. Reconnecting…",
    "Your session has ended. Log in again.",
    "Something went wrong. Try again.",
    "Keys: N next · R again · F finish · X no-show · P pause/open",
    "Logged in as {user}",
    "Language",
    "since {time}",
    # refusals from the hub, by their code (the hub's own message is English)
    "No visitor is being served at this desk.",
    "The visitor is already in that line.",
    "The hub could not save this. Nothing changed; try again.",
)


def strings(language: str) -> dict[str, str]:
    """msgid → text in ``language`` (English where a catalog lacks a string)."""
    _ = translator(LOCALE_DIR, language if language in LANGUAGES else "en")
    return {msgid: _(msgid) for msgid in MSGIDS}


def language_names(languages: tuple[str, ...]) -> dict[str, str]:
    return {lang: NATIVE_NAMES.get(lang, lang) for lang in languages}
