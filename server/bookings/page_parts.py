"""The parts of the citizens' booking pages that a branch's hub (``server/bookings/public.py``, one branch) and the
centre (``central/booking_pages.py``, all branches) draw alike: the page shell, the refusal page, the booking's
summary, the day, length and time choosers, the notices after booking/moving/cancelling, the manage page's parts,
the CSRF form check and the code look-up through the code guard.

One place for each, so the two pages cannot drift apart (both are checked by axe-core). The callers pass plain
values (names, times already in words, the code), never the hub's ``Booking`` or the centre's row.
"""

from __future__ import annotations

import html
import math
import secrets
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlencode

from fastapi import Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from server import codes
from server.code_guard import CodeGuard
from server.errors import ApiError
from server.pages import SECURITY_HEADERS
from server.staff.strings import chosen_language, language_names
from vuoro import refusals

if TYPE_CHECKING:
    from server.bookings.public import Words

LANG_COOKIE = "vuoro_book_lang"
CSRF_COOKIE = "vuoro_book_csrf"
WEEK = 7  # day buttons shown at once: a phone shows a week without scrolling
STATUS = {"booked": "Booked", "cancelled": "Cancelled", "checked_in": "Checked in", "no_show": "Not shown up"}
Found = TypeVar("Found")


def e(value: Any) -> str:
    return html.escape(str(value), quote=True)


@dataclass(frozen=True)
class Shell:
    """The page around every booking page: the site's name, its languages' links, the skip link, the cookies."""

    site_name: str
    languages: Iterable[str]

    def page(self, request: Request, w: Words, title: str, body: str, status: int = 200,
             csrf: str | None = None) -> Response:
        here = request.url.path
        query = {k: v for k, v in request.query_params.items() if k != "lang"}
        marked = ' aria-current="true"'
        links = " ".join(
            f'<a href="{e(here)}?{e(urlencode({**query, "lang": code}))}" lang="{code}" hreflang="{code}"'
            f'{marked if code == w.language else ""}>{e(name)}</a>'
            for code, name in language_names(self.languages).items())
        document = f"""<!doctype html>
<html lang="{w.language}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{e(title)} – {e(self.site_name)}</title>
<link rel="stylesheet" href="/book/book.css">
</head>
<body>
<a class="skip" href="#main">{e(w("Skip to the content"))}</a>
<header>
  <p class="site"><a href="/book/">{e(self.site_name)}</a></p>
  <nav aria-label="{e(w("Language"))}" class="languages">{links}</nav>
</header>
<main id="main" tabindex="-1">
{body}
</main>
</body>
</html>"""
        response = Response(document, status_code=status, media_type="text/html; charset=utf-8",
                            headers=SECURITY_HEADERS)
        if request.query_params.get("lang") == w.language:
            response.set_cookie(LANG_COOKIE, w.language, max_age=365 * 86400, httponly=True, samesite="lax",
                                path="/book")
        if csrf is not None and request.cookies.get(CSRF_COOKIE) != csrf:
            response.set_cookie(CSRF_COOKIE, csrf, httponly=True, samesite="lax", path="/book")
        return response

    def refused(self, request: Request, w: Words, refused: ApiError, message: str) -> Response:
        """The page a refusal ends on (an unknown code, a used-up booking, too many tries), in the citizen's words."""
        body = f'<h1>{e(w("Your booking"))}</h1>{problem_box(w, message)}<p><a href="/book/">{e(w("Back"))}</a></p>'
        status = refused.status if refused.status in (403, 404, 409, 422, 429) else 400
        response = self.page(request, w, w("Your booking"), body, status=status)
        if refused.details.get("retry_after"):  # too many tries: when to come back, for programs and proxies too
            response.headers["Retry-After"] = str(refused.details["retry_after"])
        return response


def stylesheet(css: bytes) -> Response:
    return Response(css, media_type="text/css; charset=utf-8",
                    headers={**SECURITY_HEADERS, "Cache-Control": "max-age=3600"})


def csrf_token(request: Request) -> str:
    return request.cookies.get(CSRF_COOKIE) or secrets.token_urlsafe(24)


async def checked_form(request: Request) -> dict[str, str]:
    """The posted form, after the CSRF check (403 in words otherwise)."""
    form = {k: v for k, v in (await request.form()).items() if isinstance(v, str)}
    origin = request.headers.get("origin")
    # "null": the browser hides the origin (the page's Referrer-Policy is no-referrer); the SameSite cookie
    # and the token in the form still have to match.
    same_origin = origin in (None, "null") or origin.rstrip("/") == str(request.base_url).rstrip("/")
    cookie = request.cookies.get(CSRF_COOKIE, "")
    if not same_origin or not cookie or not secrets.compare_digest(cookie, form.get("csrf", "")):
        raise ApiError(403, refusals.CSRF, "The form had expired. Try again.")
    return form


def problem_box(w: Words, message: str) -> str:
    return (f'<div class="problem" role="alert" tabindex="-1" id="problem"><h2>{e(w("There is a problem"))}</h2>'
            f"<p>{e(message)}</p></div>")


def refusal_words(w: Words, refused: ApiError, plain: dict[str, str]) -> str:
    """A refusal in the citizen's words: too many tries, a detail to fill in or check, an expired form, else the
    code's sentence from ``plain`` (the caller says first what only its own page refuses)."""
    if refused.code == refusals.NOT_OPEN_YET:  # the morning release: the day's times open at a stated time
        opens = datetime.fromisoformat(str(refused.details.get("opens_at")))
        return w("That day cannot be booked yet. Times open {opens}.", opens=f"{w.day(opens.date())} {opens:%H:%M}")
    if refused.code == refusals.SLOW_DOWN:
        return w("Too many tries from your connection. Wait {min} minutes and try again.",
                 min=math.ceil(float(refused.details.get("retry_after", 60)) / 60))
    field = refused.details.get("field")
    if refused.code == refusals.INVALID and field in ("name", "phone", "email"):
        label = w({"name": "Name", "phone": "Phone", "email": "E-mail"}[field])
        empty = "needs it" in refused.message
        return w("Please fill in: {field}." if empty else "Please check: {field}.", field=label)
    if refused.code == refusals.CSRF:
        return w("The form had expired. Try again.")
    return w(plain.get(refused.code, "Something went wrong. Try again."))


def day_label(w: Words, day: date, today: date) -> str | None:
    """"today"/"tomorrow" on a day's button, else None (the weekday is shown)."""
    return w("today") if day == today else w("tomorrow") if day == today + timedelta(days=1) else None


def page_language(request: Request, languages: Sequence[str]) -> str:
    """The page's language: ``?lang=``, then the visitor's choice kept in a cookie, then — a citizen at home — the
    browser's own (Accept-Language) if the site speaks it, else the site's first."""
    asked = request.query_params.get("lang") or request.cookies.get(LANG_COOKIE)
    if not asked:
        for part in request.headers.get("accept-language", "").split(","):
            code = part.split(";")[0].strip().lower()[:2]
            if code in languages:
                asked = code
                break
    return chosen_language(asked, None, tuple(languages))


def parse_day(value: str | None) -> date | None:
    """``?day=`` (or a chosen time's date): a day, or None for "the first with free times"."""
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None


def parse_slots(value: str | None) -> int:
    """``?slots=`` / the form's field: how many slots long a booking is (the rules refuse more than the service's)."""
    return int(value) if value and value.isdigit() and 1 <= int(value) <= 8 else 1


def fitting_times(listing: dict[str, Any], slots: int) -> list[dict[str, Any]]:
    """The listing's free times that fit a booking ``slots`` long (a double time needs the next slot free too)."""
    return [s for s in listing["slots"] if slots == 1 or s["double"]]


def day_nav(w: Words, path: str, listing: dict[str, Any], slots: int, today: date) -> str:
    """The bookable days as links, a week at a time with "Earlier days"/"Later days" (``today`` in the site's zone)."""
    items = []
    days = listing["days"]
    first = (days.index(listing["day"]) // WEEK if listing["day"] in days else 0) * WEEK
    shown = days[first:first + WEEK]

    def link_query(iso: str) -> str:
        return urlencode({"day": iso, **({"slots": slots} if slots > 1 else {})})

    def page_link(iso: str, text: str, rel: str) -> str:
        return f'<a class="more" rel="{rel}" href="{e(path)}?{e(link_query(iso))}">{e(text)}</a>'

    before = page_link(days[first - WEEK], w("Earlier days"), "prev") if first else ""
    after = page_link(days[first + WEEK], w("Later days"), "next") if first + WEEK < len(days) else ""
    for iso in shown:
        d = date.fromisoformat(iso)
        text = w.short_day(d, day_label(w, d, today))
        current = ' aria-current="date"' if iso == listing["day"] else ""
        items.append(f'<li><a href="{e(path)}?{e(link_query(iso))}"{current}>{e(text)}</a></li>')
    return (f'<nav aria-labelledby="days-h" class="days"><h2 id="days-h">{e(w("Choose a day"))}</h2>'
            f'<ul>{"".join(items)}</ul><p class="pages">{before} {after}</p></nav>')


def length_nav(w: Words, path: str, listing: dict[str, Any], slots: int) -> str:
    """"15 minutes" / "30 minutes" where the service takes double times (nothing where it does not)."""
    if listing["max_slots"] < 2:
        return ""
    items = []
    for n in range(1, listing["max_slots"] + 1):
        query = urlencode({"day": listing["day"] or "", **({"slots": n} if n > 1 else {})})
        current = ' aria-current="true"' if n == slots else ""
        items.append(f'<li><a href="{e(path)}?{e(query)}"{current}>'
                     f'{e(w("{n} minutes", n=n * listing["slot_min"]))}</a></li>')
    return (f'<nav aria-labelledby="length-h" class="length"><h2 id="length-h">{e(w("Length"))}</h2>'
            f'<ul>{"".join(items)}</ul></nav>')


def times_fieldset(w: Words, listing: dict[str, Any], slots: int, chosen: str | None) -> str:
    """The day's free times that fit, as radio buttons (``chosen`` kept checked after a refusal)."""
    fitting = fitting_times(listing, slots)
    if listing["day"] is None:
        return f'<p>{e(w("No times can be booked online at the moment."))}</p>'
    legend = w("Free times on {day}", day=w.day(date.fromisoformat(listing["day"]), capital=False))
    if not fitting:
        return (f'<h2>{e(legend)}</h2><p>{e(w("No free times on this day."))} '
                f'{e(w("Try another day, or come by and take a ticket."))}</p>')
    radios = []
    for i, s in enumerate(fitting):
        start = datetime.fromisoformat(s["start"])
        checked = " checked" if s["start"] == chosen else ""
        radios.append(f'<li><input type="radio" name="start" id="t{i}" value="{e(s["start"])}" required{checked}>'
                      f'<label for="t{i}">{start:%H:%M}</label></li>')
    return (f'<fieldset class="times"><legend><h2>{e(legend)}</h2></legend>'
            f'<ul>{"".join(radios)}</ul></fieldset>')


def details_fieldset(w: Words, listing: dict[str, Any], form: dict[str, str]) -> str:
    """Only the details the service asks for, each with why it is asked and when it is deleted."""
    asks = listing["asks"]
    if not asks:
        return f'<p class="note">{e(w("You need no name or contact details to book this service."))}</p>'
    fields = []
    kinds = {"name": ("Name", "text", "name"), "phone": ("Phone", "tel", "tel"),
             "email": ("E-mail", "email", "email")}
    for key in asks:
        label, kind, auto = kinds[key]
        fields.append(f'<p><label for="f-{key}">{e(w(label))}</label>'
                      f'<input id="f-{key}" name="{key}" type="{kind}" autocomplete="{auto}" required '
                      f'maxlength="{254 if key == "email" else 100}" value="{e(form.get(key, ""))}" '
                      f'aria-describedby="why"></p>')
    contact = "phone" in asks or "email" in asks
    why = w("Why we ask: to contact you if your time has to be changed, and to keep to one booking per person a "
            "day. It is deleted {days} days after your time." if contact else
            "Why we ask: to tell the staff who you are. It is deleted {days} days after your time.",
            days=listing["retention_days"])
    return (f'<fieldset class="details"><legend><h2>{e(w("Your details"))}</h2></legend>{"".join(fields)}'
            f'<p id="why" class="note">{e(why)} '
            f'{e(w("We ask for nothing else. Your name is shown to the staff only."))}</p></fieldset>')


def service_choice(w: Words, href: str, name: str, booking_only: bool) -> str:
    """A service on a start page; one served only with a booking says so (no ticket at the kiosk for it)."""
    only = f' <span class="tag">{e(w("Only with a booking"))}</span>' if booking_only else ""
    return f'<li><a class="choice" href="{e(href)}">{e(name)}{only}</a></li>'


def find_section(w: Words, hint: str) -> str:
    """The start page's "find your booking" form (a GET to ``/book/b/``: no CSRF, the code guard counts)."""
    return (f'<section aria-labelledby="find-h" class="find"><h2 id="find-h">{e(w("Find your booking"))}</h2>'
            f'<form method="get" action="/book/b/"><p><label for="code">{e(w("Booking code"))}</label>'
            f'<input id="code" name="code" autocomplete="off" autocapitalize="characters" spellcheck="false" '
            f'maxlength="20" required aria-describedby="code-hint"><span id="code-hint" class="note">'
            f'{e(hint)}</span></p>'
            f'<button type="submit">{e(w("Find"))}</button></form></section>')


async def looked_up(guard: CodeGuard, device: str, who: str, code: str,
                    find: Callable[[str], Awaitable[Found]]) -> Found:
    """The booking with ``code``, through the code guard: wrong codes count against this address and the one
    site-wide bucket (docs/bookings.md: guessing stays below one in a million a day)."""
    code = codes.normalise(code)
    wait = await run_in_threadpool(guard.take, device, who)  # the centre's guard asks PostgreSQL
    if wait:
        raise ApiError(429, refusals.SLOW_DOWN, "Too many tries.", retry_after=wait)
    wrong = False
    try:
        if codes.problem(code):
            raise ApiError(404, refusals.NOT_FOUND, "There is no booking with this code. Check the code.")
        return await find(code)
    except ApiError as refused:
        wrong = refused.code == refusals.NOT_FOUND and codes.problem(code) is None
        raise
    finally:
        await run_in_threadpool(lambda: guard.settle(device, who, wrong_code=wrong))


def summary(w: Words, service: str, place: str, when: str, code: str, status: str) -> str:
    """The booking at a glance (``status`` as stored: booked, cancelled, checked_in, no_show)."""
    return (f'<dl class="summary"><dt>{e(w("Service"))}</dt><dd>{e(service)}</dd>'
            f'<dt>{e(w("Place"))}</dt><dd>{e(place)}</dd>'
            f'<dt>{e(w("When"))}</dt><dd>{e(when)}</dd>'
            f'<dt>{e(w("Code"))}</dt><dd class="code">{e(codes.pretty(code))}</dd>'
            f'<dt>{e(w("Status"))}</dt><dd>{e(w(STATUS.get(status, status)))}</dd></dl>')


def done_notice(w: Words, new: bool, moved: bool, cancelled: bool, when: str) -> str:
    """What the booking page says after booking, moving (``when``: the new time) or cancelling."""
    if new:
        return (f'<p class="done" role="status">{e(w("You have booked a time."))} '
                f'{e(w("Write down the code or keep this page."))}</p>')
    if moved:
        return f'<p class="done" role="status">{e(w("Moved to {time}.", time=when))}</p>'
    if cancelled:
        gone = w("The booking is cancelled. The time is free for someone else.")
        return f'<p class="done" role="status">{e(gone)}</p>'
    return ""


def manage_parts(w: Words, code: str, opens: str, manage_url: str) -> str:
    """A booked time's check-in box (the QR holds the manage address; the kiosk reads the code from it) and its
    calendar/move/cancel buttons. ``opens``: the local time check-in opens, as ``HH:MM``."""
    pretty, link = codes.pretty(code), f"/book/b/{e(code)}"
    return (f'<section class="checkin" aria-labelledby="checkin-h"><h2 id="checkin-h">{e(w("Code"))}: '
            f'{e(pretty)}</h2>'
            f'<p>{e(w("At the library: scan the QR code or type the code at the kiosk."))} '
            f'{e(w("Check in from {time}.", time=opens))}</p>'
            f'{qr_svg(manage_url, w("QR code with the booking code {code}", code=pretty))}'
            f'</section>'
            f'<ul class="actions"><li><a class="button" href="{link}/calendar.ics" '
            f'download>{e(w("Add to your calendar (.ics)"))}</a></li>'
            f'<li><a class="button" href="{link}/move">{e(w("Move the booking"))}</a></li>'
            f'<li><a class="button secondary" href="{link}/cancel">'
            f'{e(w("Cancel the booking"))}</a></li></ul>')


def booking_body(w: Words, notice: str, summary_html: str, manage: str) -> str:
    """The booking page's main part (``manage`` empty once the booking is no longer booked)."""
    return (f'<h1>{e(w("Your booking"))}</h1>{notice}{summary_html}{manage}'
            f'<p><a href="/book/">{e(w("Book another time"))}</a></p>')


def cancel_body(w: Words, summary_html: str, code: str, token: str) -> str:
    """The "do you want to cancel?" page's main part."""
    return (f'<h1>{e(w("Cancel the booking"))}</h1>{summary_html}'
            f'<form method="post" action="/book/b/{e(code)}/cancel">'
            f'<input type="hidden" name="csrf" value="{e(token)}">'
            f'<p>{e(w("Do you want to cancel this booking?"))}</p>'
            f'<button type="submit">{e(w("Yes, cancel"))}</button> '
            f'<a class="button secondary" href="/book/b/{e(code)}">{e(w("No, keep it"))}</a></form>')


def ics_response(text: str, code: str) -> Response:
    return Response(text.encode("utf-8"), media_type="text/calendar; charset=utf-8",
                    headers={**SECURITY_HEADERS, "Content-Disposition": f'attachment; filename="booking-{code}.ics"'})


def qr_svg(data: str, label: str) -> str:
    """The QR code as inline SVG (no extra request, no script), with its text alternative."""
    import qrcode
    from qrcode.image.svg import SvgPathImage

    image = qrcode.make(data, image_factory=SvgPathImage, box_size=10, border=2)
    svg = image.to_string(encoding="unicode")
    svg = svg.split("?>", 1)[-1]
    return svg.replace("<svg ", f'<svg role="img" aria-label="{e(label)}" class="qr" ', 1)
