"""Every word the staff page shows, in English (the msgids of ``server/staff/locale/*.po``)."""

from __future__ import annotations

from pathlib import Path

from vuoro.i18n import LANGUAGES, NATIVE_NAMES, translator

LOCALE_DIR = Path(__file__).resolve().parent / "locale"
LANG_COOKIE = "vuoro_staff_lang"  # one language choice for the hub's own pages: staff, statistics, start page

# The hub's start page (``/``, server/front_pages.py): where each page is, for the IT person and staff.
START_MSGIDS: tuple[str, ...] = (
    "Vuoro at {site}",
    "The queue system's pages on this hub.",
    "Staff page",
    "Call the next visitor, see who is waiting, today's bookings and the devices.",
    "Screen in the hall",
    "The numbers being called and the waiting lines, for a browser or signage player.",
    "Statistics",
    "Waiting times, visitors served and feedback; CSV for the municipality.",
    "Online booking",
    "Citizens book, move and cancel a time themselves; link it from the library's web site.",
    "Feedback tablet",
    "Five faces by the exit; set up once per tablet with a kiosk token (docs/statistics.md).",
    "API documentation",
    "Every endpoint of the hub's HTTP API, to try out (works without internet).",
    "Language",
)

MSGIDS: tuple[str, ...] = (
    "Staff",
    "Log in",
    "User name",
    "Password",
    "Wrong user name or password.",
    "Too many attempts. Wait {min} minutes and try again.",
    "Too many attempts. Wait {sec} seconds and try again.",
    "The login form had expired. Try again.",
    # signing in with the municipality's login (LDAP / Active Directory, OpenID Connect)
    "Log in with the municipality's login",
    "Log in with {name}",
    "Or with a user name and password:",
    "Continue to the staff page",
    "You are not in a staff group. Ask your IT department for access to the queue system.",
    "The municipality's login cannot be reached right now. Try again in a moment, or use a local account.",
    "The municipality's login sent an answer the hub cannot trust, so you were not signed in. "
    "Try again, and tell your IT department if it happens again.",
    "The sign-in took too long and has expired. Try again.",
    "The sign-in was cancelled. Try again when you are ready.",
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
    "Letter keys without Alt+Shift",  # WCAG 2.1.4: the single letters can be turned off; Alt+Shift+letter works
    "Skip to Call next",
    "Logged in as {user}",
    "Language",
    "since {time}",
    # refusals from the hub, by their code (the hub's own message is English)
    "No visitor is being served at this desk.",
    "The visitor is already in that line.",
    "The hub could not save this. Nothing changed; try again.",
    # booking for a caller, moving and cancelling; event sign-ups and their waiting lists
    "The event is full, and so is its waiting list.",
    "That time is fully booked. Choose another time.",
    "That time has passed.",
    "The visitor has already checked in.",
    "This booking was cancelled.",
    "The booking is no longer there.",
    "The sign-up is no longer there.",
    "The event has already begun.",
    "No one takes bookings at that time.",
    "Code",
    "Move",
    "Cancel booking",
    "Yes, cancel",
    "Booking cancelled",
    "Book for a caller",
    "Service",
    "Length",
    "Day",
    "Time",
    "Name",
    "Phone",
    "Note",
    "Confirmation and reminder to (mobile or e-mail, only if the caller asks)",
    "Book",
    "Stop moving",
    "Sign-ups",
    "No service takes bookings",
    "{n} min",
    "No free times this day",
    "Read the code out to the caller.",
    "Choose a time",
    "Moved to {time}.",
    "Booked {time}. Code:",
    "Move booking {code}",
    "Move here",
    "No events with sign-up",
    "{n} seats left",
    "{n} on the waiting list",
    "Cancelled",
    "No sign-ups yet",
    "Name (optional)",
    "Sign up a caller",
    "seat {n}",
    "waiting list no. {n}",
    "moved up",
    "Cancel sign-up",
    "Cancelled {code}.",
    "{code} moved up to seat {seat}.",
    "Signed up: {code}, seat {n}.",
    "On the waiting list: {code}, no. {n}.",
    "{n} free",
    "Previous day",
    "Next day",
    "Today",
    "Bookings {day}",
    "No bookings this day",
    # a booking the municipality's centre made for a day this branch has not taken over (docs/bookings.md)
    "Booked at the centre",
    "Move or cancel it on the centre's calendar.",
    "The centre's bookings as of {time} {day}.",
)

# The centre's staff calendar (central/staff_calendar.py) and its line on the centre's overview (central/page.py).
CALENDAR_NEW_MSGIDS: tuple[str, ...] = (
    "Calendar",
    "Overview",
    "Show",
    "E-mail",
    "Status",
    "Where booked",
    "Change",
    "at the centre",
    "at the branch",
    "changed at the branch",
    "Back",
    "Cancel booking {code}?",
    "Handed over at {time}.",
    "{branch} has taken this day over: its times are booked, moved and cancelled at the branch (its staff page, "
    "or call the branch).",
    "Same-day times at {branch} cannot be booked here just now, because the branch cannot be reached. For today, "
    "call the branch; later days can be booked here.",
    "The walk-in places of {branch} are not booked here: they are the branch's own (its kiosk and its staff page).",
    "There is no such page.",
    "Choose a time first.",
    "The form had expired. Try again.",
    "This service is booked at the branch itself.",
    "Check the phone number, like +45 12 34 56 78.",
    "Check the e-mail address, like name@example.dk.",
    "handed over to the branch at {time}",
    "not handed over yet: the centre sells today's times until the branch opens",
    "the branch cannot be reached: the centre is not selling today's times",
)
CALENDAR_MSGIDS: tuple[str, ...] = CALENDAR_NEW_MSGIDS + (
    "Code", "Move", "Cancel booking", "Yes, cancel", "Booking cancelled", "Book for a caller", "Service", "Length",
    "Day", "Time", "Name", "Phone", "Note", "Book", "{n} min", "No free times this day",
    "Read the code out to the caller.", "Moved to {time}.", "Booked {time}. Code:", "Move booking {code}", "Move here",
    "Previous day", "Next day", "Today", "Bookings {day}", "No bookings this day", "Language", "checked in",
    "not checked in", "No-show", "Cancelled", "That time is fully booked. Choose another time.",
    "That time has passed.", "No one takes bookings at that time.", "The visitor has already checked in.",
    "This booking was cancelled.", "The booking is no longer there.", "Something went wrong. Try again.",
    "Today's bookings",
    # the caller's confirmation and reminder (central/notice_plan.py), where the branch sends them
    "Confirmation and reminder to (mobile or e-mail, only if the caller asks)",
    "Check the mobile number or e-mail address for the confirmation, or leave it empty.",
)


def strings(language: str, msgids: tuple[str, ...] | None = None) -> dict[str, str]:
    """msgid → text in ``language`` (English where a catalog lacks a string); the staff page's, or ``msgids``."""
    _ = translator(LOCALE_DIR, language if language in LANGUAGES else "en")
    return {msgid: _(msgid) for msgid in (MSGIDS if msgids is None else msgids)}


def chosen_language(query_lang: str | None, cookie_lang: str | None, languages: tuple[str, ...]) -> str:
    """The language a hub page speaks: ``?lang=``, else the remembered choice, else the site's first."""
    asked = query_lang or cookie_lang or ""
    return asked if asked in languages else languages[0]


def language_names(languages: tuple[str, ...]) -> dict[str, str]:
    return {lang: NATIVE_NAMES.get(lang, lang) for lang in languages}
