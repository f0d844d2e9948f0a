"""The ``/stats/`` page in the staff page's languages: the same choice (``?lang=``, then the language
remembered by the staff page, then the site's first) and the same catalogs (``server/staff/locale``).

The page's static words are ``{{English}}`` markers in ``web/stats.html``, replaced here; the words its
script draws come with it as JSON (``<script id="boot" type="application/json">``: the CSP allows no
inline script). Every msgid either uses is in :data:`STATS_MSGIDS` (a test holds them in step).
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Callable
from pathlib import Path
from string import Template

from fastapi import Request
from fastapi.responses import Response

from server.config import SiteConfig
from server.pages import SECURITY_HEADERS
from server.staff.strings import LANG_COOKIE, chosen_language, language_names, strings

MARKER = re.compile(r"\{\{(.+?)\}\}")

STATS_MSGIDS: tuple[str, ...] = (
    "Statistics",
    "Pages",
    "Staff page",
    "Please log in",
    "The figures are for staff.",
    "Log in on the staff page",
    ", then come back here, or paste an API token (staff or admin) from the site config.",
    "API token",
    "Use token",
    "Period",
    "From",
    "To",
    "Show",
    "Today",
    "Last 7 days",
    "This month",
    "Last month",
    "This year",
    "Figures",
    "Waiting time by hour of day (median and 90th percentile)",
    "Tickets per day, by service",
    "Service level: share called within the target wait",
    "Visitor feedback",
    "By service",
    "By desk",
    "Kiosks, screens and printers",
    "Bookings and events",
    "Download (CSV)",
    "One row per ticket",
    "By day",
    "By day and service",
    "By hour of day",
    "separate with ; (Excel in da/sv/fi/nl)",
    "Times are local",
    "Percentiles are nearest-rank. No personal data is included. Definitions: docs/statistics.md.",
    "{n} min",
    "Loading…",
    "Updated {time}",
    "Could not load: {reason}",
    "Now:",
    "waiting",
    "being served",
    "longest wait now",
    "(never called)",
    "No one was called in this period.",
    "hour of day (local, when the ticket was taken)",
    "median wait",
    "90th percentile",
    "{hour}:00 – median {median}, 90th percentile {p90}, {n} called",
    "Tickets per month, by service",
    "No tickets in this period.",
    "tickets per month",
    "tickets per day",
    "No service level yet in this period.",
    "Called within the service's target wait, of all called or expired uncalled. Green ≥ 80 %, amber ≥ 60 %.",
    "{n} of {total} within {target} min",
    "No ratings in this period.",
    "{n} ratings, mean {mean} of 5",
    "Nothing in this period.",
    "Total",
    "{h} h {m} min",
    "No device status recorded in this period.",
    "Events",
    "Sign-ups",
    "Attended",
    "Could not download: {reason}",
    "Tickets",
    "Served",
    "No-shows",
    "Expired uncalled",
    "Median wait",
    "90th pct. wait",
    "Longest wait",
    "Median service",
    "Service level",
    "Bookings kept",
    "From the kiosk",
    "From a phone",
    "Given at the desk",
    "Booking check-ins",
    "Feedback",
    "No-show",
    "Expired",
    "Left the queue",
    "Transferred",
    "90th pct.",
    "Longest",
    "Service",
    "Desk",
    "Device",
    "Kind",
    "Offline",
    "Outages",
    "Printer unusable",
    "Available",
    "Kiosk",
    "Screen",
    "Button box",
    "Printer",
    "Hub",
    "Bookings not checked in (yet)",
    "Bookings checked in",
    "Bookings not shown up",
    "Bookings cancelled",
    "very bad",
    "bad",
    "OK",
    "good",
    "very good",
)


def stats_page(template: str, config: SiteConfig) -> Callable[[Request], Response]:
    """The handler for ``/stats/``: ``template`` (stats.html) in the visitor's language."""
    page = Template(template)

    def render(request: Request) -> Response:
        lang = chosen_language(request.query_params.get("lang"), request.cookies.get(LANG_COOKIE), config.languages)
        words = strings(lang, STATS_MSGIDS)
        boot = json.dumps({"language": lang, "strings": words}, ensure_ascii=False).replace("<", "\\u003c")
        marked = ' aria-current="true"'
        languages = " ".join(
            f'<a href="?lang={code}" lang="{code}"{marked if code == lang else ""}>{html.escape(name)}</a>'
            for code, name in language_names(config.languages).items())
        body = page.substitute(lang=lang, site=html.escape(config.name), languages=languages, boot=boot)
        body = MARKER.sub(lambda m: html.escape(words.get(m.group(1), m.group(1))), body)
        response = Response(body, media_type="text/html; charset=utf-8", headers=SECURITY_HEADERS)
        if request.query_params.get("lang") == lang:
            response.set_cookie(LANG_COOKIE, lang, max_age=365 * 86400, httponly=True, samesite="strict", path="/")
        return response

    return render


def page_msgids(folder: Path) -> set[str]:
    """Every msgid the page's files use literally: ``{{…}}`` in the HTML, ``t("…")`` in the script."""
    found = set(MARKER.findall((folder / "stats.html").read_text(encoding="utf-8")))
    found |= set(re.findall(r'\bt\("((?:[^"\\]|\\.)*)"', (folder / "stats.js").read_text(encoding="utf-8")))
    return found
