"""Numbers, dates and times on the centre's pages as a reader of each language writes them.

Written out here rather than taken from a locale library: five languages, a handful of forms, and the same
result on every machine (a server's installed locales differ). Times are always shown in the zone given
(the branches' zone, ``central.figures.centre_zone``), never the server's.
"""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

NBSP = "\u00a0"
# (thousands separator, decimal mark, what stands between a number and %)
_NUMBERS = {"da": (".", ",", NBSP), "sv": (NBSP, ",", NBSP), "fi": (NBSP, ",", NBSP), "nl": (".", ",", ""),
            "en": (",", ".", "")}
_DATES = {"da": "%d.%m.%Y", "sv": "%Y-%m-%d", "fi": "%d.%m.%Y", "nl": "%d-%m-%Y", "en": "%Y-%m-%d"}

WEEKDAYS = {
    "da": ("mandag", "tirsdag", "onsdag", "torsdag", "fredag", "lørdag", "søndag"),
    "sv": ("måndag", "tisdag", "onsdag", "torsdag", "fredag", "lördag", "söndag"),
    "fi": ("maanantai", "tiistai", "keskiviikko", "torstai", "perjantai", "lauantai", "sunnuntai"),
    "nl": ("maandag", "dinsdag", "woensdag", "donderdag", "vrijdag", "zaterdag", "zondag"),
    "en": ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"),
}
MONTHS = {
    "da": ("januar", "februar", "marts", "april", "maj", "juni", "juli", "august", "september", "oktober",
           "november", "december"),
    "sv": ("januari", "februari", "mars", "april", "maj", "juni", "juli", "augusti", "september", "oktober",
           "november", "december"),
    "fi": ("tammikuu", "helmikuu", "maaliskuu", "huhtikuu", "toukokuu", "kesäkuu", "heinäkuu", "elokuu", "syyskuu",
           "lokakuu", "marraskuu", "joulukuu"),
    "nl": ("januari", "februari", "maart", "april", "mei", "juni", "juli", "augustus", "september", "oktober",
           "november", "december"),
    "en": ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December"),
}


def number(value: float | int | None, lang: str, decimals: int = 0) -> str:
    """12.345 / 12 345 / 12,345 — with ``decimals`` places and the language's decimal mark; – for None."""
    if value is None:
        return "–"
    thousands, mark, _ = _NUMBERS.get(lang, _NUMBERS["en"])
    text = f"{value:,.{decimals}f}"  # 12,345.6
    return text.replace(",", "\0").replace(".", mark).replace("\0", thousands)


def percent(share: float | None, lang: str) -> str:
    """A share 0–1 as 85,3 % / 85.3%."""
    if share is None:
        return "–"
    return f"{number(share * 100, lang, 1)}{_NUMBERS.get(lang, _NUMBERS['en'])[2]}%"


def minutes(seconds: float | None, lang: str) -> str:
    """A wait in minutes with one decimal: 4,5 min."""
    return "–" if seconds is None else f"{number(seconds / 60, lang, 1)}{NBSP}min"


def day(value: date, lang: str) -> str:
    return value.strftime(_DATES.get(lang, _DATES["en"]))


def moment(value: datetime | str | None, zone: ZoneInfo, lang: str) -> str:
    """A stored time (UTC) as the reader's wall clock in ``zone``: 30.11.2026 22:14."""
    if value is None:
        return "–"
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    local = value.astimezone(zone)
    return f"{day(local.date(), lang)} {local:%H:%M}"


def weekday(iso: int, lang: str) -> str:
    return WEEKDAYS.get(lang, WEEKDAYS["en"])[iso - 1]


def month(key: str, lang: str) -> str:
    """'2026-11' as 'november 2026'."""
    year, mon = key.split("-")
    return f"{MONTHS.get(lang, MONTHS['en'])[int(mon) - 1]} {year}"
