"""The centre's staff calendar: a signed-in person sees, per branch they may see and per day, every booking with
name, phone, e-mail and note, books for a caller, moves and cancels (docs/bookings.md "Staff at the centre").

Plain server-drawn HTML forms, no script; every POST carries the session's CSRF token; personal fields travel in
POST bodies only (never in an address) and every page is ``Cache-Control: no-store``. The words are the staff
page's catalogs (``server/staff/locale/*.po``, ``CALENDAR_MSGIDS``), in the centre's languages (``?lang=``).

Ownership is the calendar's (``central/calendar.py``): staff here sell only the places the centre owns — never a
branch's walk-in reserve, never a day the branch has taken over (that day is booked at the branch's own staff
page; the centre cannot reach into a branch's network to forward it, and a forwarded sale would need both links
up), never a same-day time of a branch that cannot be reached. Bookings the branch made are shown, not changed.

- ``GET /calendar/{branch}?day=&service=``: the day's bookings, the ownership notice, "Book for a caller";
- ``POST /calendar/{branch}/book``;
- ``GET|POST /calendar/{branch}/move/{id}``: choose a new day and time;
- ``GET|POST /calendar/{branch}/cancel/{id}``: asks once more.
"""

from __future__ import annotations

import hmac
import html
import secrets
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from central import page
from central.calendar import BRANCH_AWAY, BRANCH_OWNS, Calendar, utc_now
from central.config import CentreConfig
from central.signin import Viewer, sign_out_form
from server import codes
from server.bookings.notice_parts import contact_of
from server.errors import ApiError
from server.staff.strings import CALENDAR_MSGIDS, language_names, strings
from vuoro import refusals

REFUSAL_WORDS = {
    refusals.FULL: "That time is fully booked. Choose another time.",
    refusals.PAST: "That time has passed.",
    refusals.NO_SLOT: "No one takes bookings at that time.",
    refusals.CHECKED_IN: "The visitor has already checked in.",
    refusals.CANCELLED: "This booking was cancelled.",
    refusals.UNKNOWN_BOOKING: "The booking is no longer there.",
    refusals.NOT_A_SLOT: "Choose a time first.",
    refusals.SLOTS: "Choose a time first.",
    refusals.CSRF: "The form had expired. Try again.",
    refusals.NOT_ONLINE: "This service is booked at the branch itself.",
}
FIELD_WORDS = {"phone": "Check the phone number, like +45 12 34 56 78.",
               "email": "Check the e-mail address, like name@example.dk.",
               "notify_to": "Check the mobile number or e-mail address for the confirmation, or leave it empty."}
NOTIFY_LABEL = "Confirmation and reminder to (mobile or e-mail, only if the caller asks)"
RESERVE_MSGID = ("The walk-in places of {branch} are not booked here: they are the branch's own (its kiosk and its "
                 "staff page).")
STATUS_WORDS = {"booked": "not checked in", "checked_in": "checked in", "no_show": "No-show", "cancelled": "Cancelled"}

CSS = """
div.scroll { overflow-x: auto; }
table.cal { border-collapse: collapse; width: 100%; background: #fff; }
table.cal caption { text-align: left; font-weight: 600; font-size: 1.15rem; padding: .25rem 0 .5rem; }
table.cal th, table.cal td { vertical-align: top; }
table.cal tr.cancelled td { color: #55554f; text-decoration: line-through; }
table.cal td.acts, table.cal td.nowrap { white-space: nowrap; }
table.cal td.acts a { margin-right: .6rem; }
.daynav { display: flex; flex-wrap: wrap; gap: .75rem; align-items: center; margin: .5rem 0 1rem; }
.daynav form { display: flex; gap: .4rem; align-items: center; }
input, select, textarea { font: inherit; padding: .4rem; border: 1px solid #76766f; border-radius: .3rem; }
p.notice { background: #fff4d6; border: 1px solid #8a6d00; border-radius: .4rem; padding: .6rem .9rem; }
p.good { background: #e3f2e6; border: 1px solid #2e7d32; border-radius: .4rem; padding: .6rem .9rem; }
p.good strong.code { font-size: 1.6rem; letter-spacing: .08em; margin-left: .4rem; }
p.problem { background: #fdecea; border: 2px solid #b3261e; border-radius: .4rem; padding: .6rem .9rem;
            font-weight: 600; }
form.book { display: grid; gap: .5rem; max-width: 40rem; }
form.book label { font-weight: 600; }
fieldset { border: 1px solid #d8d8d2; border-radius: .4rem; margin: 0; padding: .5rem .8rem; }
fieldset ul { list-style: none; display: flex; flex-wrap: wrap; gap: .4rem .9rem; padding: 0; margin: .2rem 0; }
ul.tabs { list-style: none; display: flex; flex-wrap: wrap; gap: .5rem; padding: 0; }
ul.tabs a { display: inline-block; padding: .35rem .8rem; border: 1px solid #1d4f91; border-radius: .3rem; }
ul.tabs a[aria-current] { background: #1d4f91; color: #fff; }
a { color: #1d4f91; }
.muted { color: #55554f; }
"""


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def install(app: FastAPI, config: CentreConfig, calendar: Calendar) -> None:
    def words(lang: str) -> dict[str, str]:
        return strings(lang, CALENDAR_MSGIDS)

    def tz(bid: str) -> Any:
        return calendar.sale(bid).branch.site.timezone

    def service_name(bid: str, sid: str, lang: str) -> str:
        site = calendar.sale(bid).branch.site
        service = site.services.get(sid)
        return service.name(lang, site.default_language) if service else sid

    def clock(bid: str, value: datetime) -> str:
        return f"{value.astimezone(tz(bid)):%H:%M}"

    def document(request: Request, who: Viewer, lang: str, title: str, body: str, status: int = 200,
                 here: str | None = None, query: dict[str, str] | None = None) -> Response:
        """``here`` and ``query``: the GET address the language links lead to (a refused POST's page too)."""
        w = words(lang)
        here = here or request.url.path
        query = query if query is not None else {k: v for k, v in request.query_params.items()
                                                 if k in ("day", "service")}
        links = " ".join(f'<a href="{_e(here)}?{_e(urlencode({**query, "lang": code}))}" lang="{code}"'
                         f'{" aria-current=" + chr(34) + "true" + chr(34) if code == lang else ""}>{_e(name)}</a>'
                         for code, name in language_names(config.languages).items())
        top = (f'{sign_out_form(who, lang)}<nav aria-label="{_e(w["Language"])}">{links}</nav>'
               f'<p><a href="/?lang={lang}">{_e(w["Overview"])}</a></p>')
        text = page.document_with_css(lang, f"{_e(title)} · {_e(config.name)}", top + body, CSS)
        return HTMLResponse(text, status_code=status, headers=page.HEADERS_FORMS)

    async def gate(request: Request, branch: str) -> tuple[Viewer | None, str, Response | None]:
        """Who asks and in which language; a person not signed in goes to the sign-in, a branch they may not see
        is "no such page" (as an unknown one)."""
        lang = page.language(config, request.query_params.get("lang"))
        who = await app.state.viewer(request)
        if who is None:
            return None, lang, RedirectResponse(f"/login?lang={lang}", status_code=303)
        if branch not in calendar.sales or not who.sees(branch):
            w = words(lang)
            return who, lang, document(request, who, lang, w["There is no such page."],
                                       f'<h1>{_e(w["There is no such page."])}</h1>', status=404)
        return who, lang, None

    async def form_of(request: Request, who: Viewer) -> dict[str, str]:
        """The POSTed form, once its CSRF token matched the session's (a browser with the admin token's Basic
        prompt has no session: it cannot change anything here)."""
        data = {k: str(v) for k, v in (await request.form()).items()}
        sent = data.get("csrf", "")
        if not who.csrf or not sent or not hmac.compare_digest(sent.encode(), who.csrf.encode()):
            raise ApiError(403, refusals.CSRF, "The form had expired. Try again.")
        return data

    def refusal_text(lang: str, refused: ApiError, bid: str) -> str:
        w = words(lang)
        if refused.code == refusals.INVALID and refused.details.get("field") in FIELD_WORDS:
            return w[FIELD_WORDS[refused.details["field"]]]
        if refused.code in (BRANCH_OWNS, BRANCH_AWAY):
            return owner_notice(lang, bid, refused.code, None)
        return w[REFUSAL_WORDS.get(refused.code, "Something went wrong. Try again.")]

    def owner_notice(lang: str, bid: str, owner: str | None, handed_at: datetime | None) -> str:
        w, name = words(lang), calendar.sale(bid).branch.name
        if owner == BRANCH_OWNS:
            text = w["{branch} has taken this day over: its times are booked, moved and cancelled at the branch "
                     "(its staff page, or call the branch)."].format(branch=name)
            if handed_at is not None:
                text += " " + w["Handed over at {time}."].format(time=clock(bid, handed_at))
            return text
        if owner == BRANCH_AWAY:
            return w["Same-day times at {branch} cannot be booked here just now, because the branch cannot be "
                     "reached. For today, call the branch; later days can be booked here."].format(branch=name)
        return ""

    def day_nav(lang: str, bid: str, day: date, path: str, extra: dict[str, str]) -> str:
        w = words(lang)

        def link(d: date) -> str:
            return f"{_e(path)}?{_e(urlencode({**extra, 'day': d.isoformat(), 'lang': lang}))}"

        today = utc_now().astimezone(tz(bid)).date()
        hidden = "".join(f'<input type="hidden" name="{_e(k)}" value="{_e(v)}">' for k, v in extra.items())
        return (f'<div class="daynav"><a href="{link(day - timedelta(days=1))}">‹ {_e(w["Previous day"])}</a>'
                f'<a href="{link(today)}">{_e(w["Today"])}</a>'
                f'<a href="{link(day + timedelta(days=1))}">{_e(w["Next day"])} ›</a>'
                f'<form method="get" action="{_e(path)}">{hidden}<input type="hidden" name="lang" value="{lang}">'
                f'<label for="day">{_e(w["Day"])}</label><input type="date" id="day" name="day" '
                f'value="{day.isoformat()}" required><button type="submit">{_e(w["Show"])}</button></form></div>')

    def table(lang: str, bid: str, view: dict[str, Any], owner: str | None) -> str:
        w = words(lang)
        rows = view["bookings"]
        caption = w["Bookings {day}"].format(day=view["day"].isoformat())  # ISO: read alike in every language
        if not rows:
            return f'<h2>{_e(caption)}</h2><p class="muted">{_e(w["No bookings this day"])}</p>'
        heads = ("Time", "Service", "Code", "Name", "Phone", "E-mail", "Note", "Status", "Where booked", "")
        head = "".join(f'<th scope="col">{_e(w[h]) if h else _e(w["Change"])}</th>' for h in heads)
        body = []
        for r in rows:
            acts = ""
            if r["side"] == "branch":
                acts = f'<span class="muted">{_e(w["changed at the branch"])}</span>'
            elif r["status"] == "booked" and r["end_at"] > utc_now():
                q = urlencode({"lang": lang})
                label = f'{service_name(bid, r["service"], lang)} {clock(bid, r["start_at"])}'
                move = "" if owner else (f'<a href="/calendar/{_e(bid)}/move/{_e(r["id"])}?{q}" aria-label="'
                                         f'{_e(w["Move"])}: {_e(label)}">{_e(w["Move"])}</a>')
                acts = (f'{move}<a href="/calendar/{_e(bid)}/cancel/{_e(r["id"])}?{q}" aria-label="'
                        f'{_e(w["Cancel booking"])}: {_e(label)}">{_e(w["Cancel booking"])}</a>')
            where = w["at the centre"] if r["side"] == "centre" else w["at the branch"]
            body.append(
                f'<tr class="{_e(r["status"])}" data-booking="{_e(r["id"])}">'
                f'<td class="nowrap">{clock(bid, r["start_at"])}–{clock(bid, r["end_at"])}</td>'
                f'<td>{_e(service_name(bid, r["service"], lang))}</td>'
                f'<td class="nowrap">{_e(codes.pretty(r["code"]))}</td><td>{_e(r["name"] or "")}</td>'
                f'<td>{_e(r["phone"] or "")}</td>'
                f'<td>{_e(r["email"] or "")}</td><td>{_e(r["note"] or "")}</td>'
                f'<td>{_e(w[STATUS_WORDS.get(r["status"], "not checked in")])}</td><td>{_e(where)}</td>'
                f'<td class="acts">{acts}</td></tr>')
        # On a narrow screen the table scrolls by itself, not the page (a region a keyboard can scroll too)
        return (f'<div class="scroll" role="region" aria-labelledby="cal-caption" tabindex="0">'
                f'<table class="cal"><caption id="cal-caption">{_e(caption)}</caption><thead><tr>{head}</tr></thead>'
                f'<tbody>{"".join(body)}</tbody></table></div>')

    def times_fieldset(lang: str, times: list[dict[str, Any]], chosen: str | None) -> str:
        w = words(lang)
        if not times:
            return f'<p class="muted">{_e(w["No free times this day"])}</p>'
        radios = "".join(
            f'<li><input type="radio" name="start" id="t{i}" value="{_e(s["start"])}" required'
            f'{" checked" if s["start"] == chosen else ""}><label for="t{i}">'
            f'{datetime.fromisoformat(s["start"]):%H:%M}</label></li>' for i, s in enumerate(times))
        return f'<fieldset><legend>{_e(w["Time"])}</legend><ul>{radios}</ul></fieldset>'

    def length_fieldset(lang: str, bid: str, sid: str, chosen: int) -> str:
        rules = calendar.sale(bid).settings.rules(sid)
        if rules.max_slots < 2:
            return '<input type="hidden" name="slots" value="1">'
        w = words(lang)
        radios = "".join(
            f'<li><input type="radio" name="slots" id="len{n}" value="{n}"{" checked" if n == chosen else ""}>'
            f'<label for="len{n}">{_e(w["{n} min"].format(n=rules.slot_min * n))}</label></li>'
            for n in range(1, rules.max_slots + 1))
        return f'<fieldset><legend>{_e(w["Length"])}</legend><ul>{radios}</ul></fieldset>'

    def book_section(lang: str, bid: str, day: date, sid: str | None, form: dict[str, str], who: Viewer) -> str:
        w = words(lang)
        services = calendar.services(bid)
        if not services:
            return ""
        sid = sid if sid in services else services[0]
        tabs = "".join(
            f'<li><a href="/calendar/{_e(bid)}?{_e(urlencode({"day": day.isoformat(), "service": s, "lang": lang}))}'
            f'#book-h"{" aria-current=" + chr(34) + "true" + chr(34) if s == sid else ""}>'
            f'{_e(service_name(bid, s, lang))}</a></li>' for s in services)
        times = calendar.staff_times(bid, sid, day)
        reserve = calendar.sale(bid).settings.rules(sid).online
        reserve_words = w[RESERVE_MSGID].format(branch=calendar.sale(bid).branch.name)
        reserve_note = f'<p class="muted">{_e(reserve_words)}</p>' if reserve and reserve.reserve else ""
        fields = ""
        if times:
            kinds = (("name", "Name", "text", "off", 100), ("phone", "Phone", "tel", "off", 40),
                     ("email", "E-mail", "email", "off", 254))
            fields = "".join(
                f'<label for="c-{k}">{_e(w[label])}</label><input id="c-{k}" name="{k}" type="{kind}" '
                f'autocomplete="{auto}" maxlength="{size}" value="{_e(form.get(k, ""))}">'
                for k, label, kind, auto, size in kinds)
            fields += (f'<label for="c-note">{_e(w["Note"])}</label><textarea id="c-note" name="note" rows="2" '
                       f'maxlength="500">{_e(form.get("note", ""))}</textarea>')
            if calendar.notices.settings_for(bid) is not None:  # only where the branch sends texts or e-mails
                fields += (f'<label for="c-notify">{_e(w[NOTIFY_LABEL])}</label><input id="c-notify" '
                           f'name="notify_to" type="text" autocomplete="off" maxlength="254" '
                           f'value="{_e(form.get("notify_to", ""))}">')
            fields += f'<p><button type="submit">{_e(w["Book"])}</button></p>'
        return (f'<section aria-labelledby="book-h"><h2 id="book-h">{_e(w["Book for a caller"])}</h2>'
                f'<nav aria-label="{_e(w["Service"])}"><ul class="tabs">{tabs}</ul></nav>{reserve_note}'
                f'<form class="book" method="post" action="/calendar/{_e(bid)}/book?lang={lang}">'
                f'<input type="hidden" name="csrf" value="{_e(who.csrf)}">'
                f'<input type="hidden" name="idem" value="{_e(form.get("idem") or secrets.token_urlsafe(16))}">'
                f'<input type="hidden" name="service" value="{_e(sid)}">'
                f'<input type="hidden" name="day" value="{day.isoformat()}">'
                f'{length_fieldset(lang, bid, sid, int(form.get("slots") or 1))}'
                f'{times_fieldset(lang, times, form.get("start"))}{fields}</form></section>')

    def done_box(lang: str, bid: str, view: dict[str, Any], query: dict[str, str]) -> str:
        """After a booking, a move or a cancel (the booking's id in the address, never a name)."""
        w = words(lang)
        for key in ("booked", "moved", "cancelled"):
            wanted = query.get(key)
            row = next((r for r in view["bookings"] if r["id"] == wanted), None) if wanted else None
            if row is None:
                continue
            when = clock(bid, row["start_at"])
            if key == "booked":
                return (f'<p class="good" role="status">{_e(w["Booked {time}. Code:"].format(time=when))}'
                        f'<strong class="code">{_e(codes.pretty(row["code"]))}</strong> '
                        f'{_e(w["Read the code out to the caller."])}</p>')
            if key == "moved":
                return f'<p class="good" role="status">{_e(w["Moved to {time}."].format(time=when))}</p>'
            return f'<p class="good" role="status">{_e(w["Booking cancelled"])}</p>'
        return ""

    def parse_day(value: str | None, bid: str) -> date:
        try:
            return date.fromisoformat(value) if value else utc_now().astimezone(tz(bid)).date()
        except ValueError:
            return utc_now().astimezone(tz(bid)).date()

    async def day_page(request: Request, who: Viewer, lang: str, bid: str, day: date, service: str | None,
                       form: dict[str, str] | None = None, problem: str = "", status: int = 200) -> Response:
        w = words(lang)
        view = await run_in_threadpool(calendar.day_view, bid, day)
        owner = view["owner"]
        notice = owner_notice(lang, bid, owner, view["handed_at"])
        parts = [f'<h1>{_e(w["Calendar"])}: {_e(calendar.sale(bid).branch.name)}</h1>',
                 day_nav(lang, bid, day, f"/calendar/{bid}", {"service": service} if service else {}),
                 f'<p class="problem" role="alert">{_e(problem)}</p>' if problem else "",
                 done_box(lang, bid, view, dict(request.query_params)),
                 f'<p class="notice">{_e(notice)}</p>' if notice else "",
                 table(lang, bid, view, owner)]
        if owner is None and not view["past"]:
            parts.append(await run_in_threadpool(book_section, lang, bid, day, service, form or {}, who))
        title = f'{w["Calendar"]}: {calendar.sale(bid).branch.name} {day.isoformat()}'
        query = {"day": day.isoformat(), **({"service": service} if service else {})}
        return document(request, who, lang, title, "".join(parts), status, f"/calendar/{bid}", query)

    # -- routes ----------------------------------------------------------------------------------------------

    @app.get("/calendar/{branch}", include_in_schema=False)
    async def calendar_day(request: Request, branch: str) -> Response:
        who, lang, refused = await gate(request, branch)
        if refused is not None:
            return refused
        assert who is not None
        return await day_page(request, who, lang, branch, parse_day(request.query_params.get("day"), branch),
                              request.query_params.get("service"))

    @app.post("/calendar/{branch}/book", include_in_schema=False)
    async def calendar_book(request: Request, branch: str) -> Response:
        who, lang, refused = await gate(request, branch)
        if refused is not None:
            return refused
        assert who is not None
        form: dict[str, str] = {}
        try:
            form = await form_of(request, who)
            if not form.get("start"):
                raise ApiError(422, refusals.NOT_A_SLOT, "Choose a time first.")
            key = form.get("idem", "")
            if not 8 <= len(key) <= 64:
                raise ApiError(403, refusals.CSRF, "The form had expired. Try again.")
            start, slots = start_of(form, branch, 1)
            site = calendar.sale(branch).branch.site
            language = lang if lang in site.languages else site.default_language
            notify_to = form.get("notify_to", "").strip()  # only if the caller asks: an empty field asks for nothing
            contact = contact_of(calendar.notices.settings_for(branch), bool(notify_to), notify_to, "notify_to")
            _, row = await run_in_threadpool(lambda: calendar.book(
                branch, service=form.get("service", ""), start=start, slots=slots, key=f"staff:{key}",
                language=language, name=form.get("name"), phone=form.get("phone"), email=form.get("email"),
                note=form.get("note"), staff=True, contact=contact))
        except ApiError as refused_:
            kept = {k: v for k, v in form.items()
                    if k in ("name", "phone", "email", "note", "notify_to", "slots", "idem")}
            if refused_.code not in (refusals.FULL, refusals.PAST, refusals.NOT_A_SLOT):
                kept["start"] = form.get("start", "")
            return await day_page(request, who, lang, branch, parse_day(form.get("day"), branch),
                                  form.get("service"), kept, refusal_text(lang, refused_, branch), refused_.status)
        query = urlencode({"day": row["day"].isoformat(), "service": row["service"], "booked": row["id"],
                           "lang": lang})
        return RedirectResponse(f"/calendar/{branch}?{query}", status_code=303)

    async def refused_today(request: Request, who: Viewer, lang: str, branch: str, refused_: ApiError) -> Response:
        """A booking that is not there (or not this branch's): today's page says so in words."""
        return await day_page(request, who, lang, branch, parse_day(None, branch), None,
                              problem=refusal_text(lang, refused_, branch), status=refused_.status)

    def start_of(form: dict[str, str], branch: str, default_slots: int) -> tuple[datetime, int]:
        """The time and length a form chose; a time without a zone is the branch's own clock."""
        try:
            start = datetime.fromisoformat(form.get("start", ""))
            slots = int(form.get("slots") or default_slots)
        except ValueError:
            raise ApiError(422, refusals.NOT_A_SLOT, "Choose a time first.") from None
        return (start if start.tzinfo else start.replace(tzinfo=tz(branch))), slots

    async def booking_of(branch: str, booking_id: str) -> dict[str, Any]:
        row = await run_in_threadpool(calendar.by_id, booking_id)
        if row["branch"] != branch:
            raise ApiError(404, refusals.UNKNOWN_BOOKING, "There is no such booking.")
        return row

    def summary(lang: str, bid: str, row: dict[str, Any]) -> str:
        w = words(lang)
        pairs = (("Code", codes.pretty(row["code"])), ("Service", service_name(bid, row["service"], lang)),
                 ("Day", row["day"].isoformat()),
                 ("Time", f'{clock(bid, row["start_at"])}–{clock(bid, row["end_at"])}'),
                 ("Name", row["name"] or ""), ("Phone", row["phone"] or ""), ("Note", row["note"] or ""))
        return "<dl>" + "".join(f"<dt>{_e(w[k])}</dt><dd>{_e(v)}</dd>" for k, v in pairs) + "</dl>"

    async def move_page(request: Request, who: Viewer, lang: str, bid: str, row: dict[str, Any], day: date,
                        problem: str = "", status: int = 200) -> Response:
        w = words(lang)
        path = f"/calendar/{bid}/move/{row['id']}"
        view = await run_in_threadpool(calendar.day_view, bid, day)
        heading = w["Move booking {code}"].format(code=codes.pretty(row["code"]))
        parts = [f"<h1>{_e(heading)}</h1>", summary(lang, bid, row), day_nav(lang, bid, day, path, {}),
                 f'<p class="problem" role="alert">{_e(problem)}</p>' if problem else ""]
        if view["owner"] is not None or view["past"]:
            notice = owner_notice(lang, bid, view["owner"], view["handed_at"]) or w["That time has passed."]
            parts.append(f'<p class="notice">{_e(notice)}</p>')
        else:
            times = await run_in_threadpool(calendar.staff_times, bid, row["service"], day, row["id"])
            submit = f'<p><button type="submit">{_e(w["Move here"])}</button></p>' if times else ""
            parts.append(f'<form class="book" method="post" action="{_e(path)}?lang={lang}">'
                         f'<input type="hidden" name="csrf" value="{_e(who.csrf)}">'
                         f'<input type="hidden" name="day" value="{day.isoformat()}">'
                         f'{length_fieldset(lang, bid, row["service"], row["slots"])}'
                         f'{times_fieldset(lang, times, None)}{submit}</form>')
        back = urlencode({"day": row["day"].isoformat(), "lang": lang})
        parts.append(f'<p><a href="/calendar/{_e(bid)}?{_e(back)}">{_e(w["Back"])}</a></p>')
        return document(request, who, lang, heading, "".join(parts), status, path, {"day": day.isoformat()})

    @app.get("/calendar/{branch}/move/{booking_id}", include_in_schema=False)
    async def calendar_move_form(request: Request, branch: str, booking_id: str) -> Response:
        who, lang, refused = await gate(request, branch)
        if refused is not None:
            return refused
        assert who is not None
        try:
            row = await booking_of(branch, booking_id)
        except ApiError as refused_:
            return await refused_today(request, who, lang, branch, refused_)
        day = parse_day(request.query_params.get("day") or row["day"].isoformat(), branch)
        return await move_page(request, who, lang, branch, row, day)

    @app.post("/calendar/{branch}/move/{booking_id}", include_in_schema=False)
    async def calendar_move(request: Request, branch: str, booking_id: str) -> Response:
        who, lang, refused = await gate(request, branch)
        if refused is not None:
            return refused
        assert who is not None
        form: dict[str, str] = {}
        try:
            row = await booking_of(branch, booking_id)
        except ApiError as refused_:
            return await refused_today(request, who, lang, branch, refused_)
        try:
            form = await form_of(request, who)
            start, slots = start_of(form, branch, row["slots"])
            moved = await run_in_threadpool(calendar.staff_move, booking_id, start, slots)
        except ApiError as refused_:
            return await move_page(request, who, lang, branch, row, parse_day(form.get("day"), branch),
                                   refusal_text(lang, refused_, branch), refused_.status)
        query = urlencode({"day": moved["day"].isoformat(), "moved": moved["id"], "lang": lang})
        return RedirectResponse(f"/calendar/{branch}?{query}", status_code=303)

    @app.get("/calendar/{branch}/cancel/{booking_id}", include_in_schema=False)
    async def calendar_cancel_form(request: Request, branch: str, booking_id: str) -> Response:
        who, lang, refused = await gate(request, branch)
        if refused is not None:
            return refused
        assert who is not None
        w = words(lang)
        try:
            row = await booking_of(branch, booking_id)
        except ApiError as refused_:
            return await refused_today(request, who, lang, branch, refused_)
        heading = w["Cancel booking {code}?"].format(code=codes.pretty(row["code"]))
        back = urlencode({"day": row["day"].isoformat(), "lang": lang})
        body = (f"<h1>{_e(heading)}</h1>{summary(lang, bid=branch, row=row)}"
                f'<form method="post" action="/calendar/{_e(branch)}/cancel/{_e(row["id"])}?lang={lang}">'
                f'<input type="hidden" name="csrf" value="{_e(who.csrf)}">'
                f'<p><button type="submit">{_e(w["Yes, cancel"])}</button> '
                f'<a href="/calendar/{_e(branch)}?{_e(back)}">{_e(w["Back"])}</a></p></form>')
        return document(request, who, lang, heading, body)

    @app.post("/calendar/{branch}/cancel/{booking_id}", include_in_schema=False)
    async def calendar_cancel(request: Request, branch: str, booking_id: str) -> Response:
        who, lang, refused = await gate(request, branch)
        if refused is not None:
            return refused
        assert who is not None
        try:
            await booking_of(branch, booking_id)
            await form_of(request, who)
            row = await run_in_threadpool(calendar.staff_cancel, booking_id)
        except ApiError as refused_:
            return await refused_today(request, who, lang, branch, refused_)
        query = urlencode({"day": row["day"].isoformat(), "cancelled": row["id"], "lang": lang})
        return RedirectResponse(f"/calendar/{branch}?{query}", status_code=303)


def handover_words(lang: str, state: dict[str, Any] | None, zone: Any) -> str:
    """The overview's line on today's handover (``Calendar.handover_states``), in ``lang``."""
    if state is None:
        return ""
    w = strings(lang, CALENDAR_MSGIDS)
    if state["state"] == "handed_over":
        at = datetime.fromisoformat(state["handed_at"]).astimezone(UTC).astimezone(zone)
        return w["handed over to the branch at {time}"].format(time=f"{at:%H:%M}")
    if state["state"] == "not_yet":
        return w["not handed over yet: the centre sells today's times until the branch opens"]
    return w["the branch cannot be reached: the centre is not selling today's times"]
