"""The statistics page across branches: each branch and all branches side by side, for a day, a month, a year
or any stretch of days, grouped by day, weekday, month or service; and the same as CSV.

The figures are ``figures.all_branches_summary``'s (the per-day aggregates of ``central/rollup.py``, the
definitions of docs/statistics.md, the same as ``GET /api/v1/summary``). Their names come from the hub's own
statistics page catalog (``server/staff/locale``, ``STATS_MSGIDS``), so a figure is called the same at a
branch and at the centre; the few words only this page has are below. Numbers are written as each language
writes them (``central/formats.py``); the days are each branch's local days.

Who: anyone signed in, for the branches they see; "all branches" as one only for those who see every branch.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from central import figures, formats, page, rollup, signin
from central.config import CentreConfig
from server.staff.strings import strings
from server.stats.figures import SUMMARY_CSV_FIGURES, csv_text
from server.stats.page import STATS_MSGIDS

PATH = "/statistics"
CSV_PATH = "/statistics.csv"
MAX_DAYS = 3 * 366 + 1  # a long stretch reads day histograms at its edges; three years is a report, not a scan
REFRESH_BUDGET_S = 1.0  # as the API's (central/app.py)

STRINGS: dict[str, dict[str, str]] = {
    "all": {"da": "Alle filialer", "sv": "Alla filialer", "fi": "Kaikki toimipisteet", "nl": "Alle vestigingen",
            "en": "All branches"},
    "day": {"da": "Dag", "sv": "Dag", "fi": "Päivä", "nl": "Dag", "en": "Day"},
    "month": {"da": "Måned", "sv": "Månad", "fi": "Kuukausi", "nl": "Maand", "en": "Month"},
    "year": {"da": "År", "sv": "År", "fi": "Vuosi", "nl": "Jaar", "en": "Year"},
    "range": {"da": "Fra–til", "sv": "Från–till", "fi": "Aikaväli", "nl": "Van–tot", "en": "From–to"},
    "weekday": {"da": "Ugedag", "sv": "Veckodag", "fi": "Viikonpäivä", "nl": "Weekdag", "en": "Weekday"},
    "by": {"da": "Opdel efter", "sv": "Dela upp efter", "fi": "Ryhmittele", "nl": "Uitsplitsen naar",
           "en": "Group by"},
    "nothing": {"da": "ingen opdeling", "sv": "ingen uppdelning", "fi": "ei ryhmittelyä", "nl": "geen uitsplitsing",
                "en": "no grouping"},
    "figure": {"da": "Tal i opdelingen", "sv": "Mått i uppdelningen", "fi": "Luku ryhmittäin",
               "nl": "Cijfer per groep", "en": "Figure by group"},
    "mean_wait": {"da": "Gennemsnitlig ventetid", "sv": "Medelväntetid", "fi": "Keskimääräinen odotus",
                  "nl": "Gemiddelde wachttijd", "en": "Mean wait"},
    "ratings": {"da": "Vurderinger", "sv": "Omdömen", "fi": "Arvioita", "nl": "Beoordelingen", "en": "Ratings"},
    "figures_of": {"da": "Tal for {period}", "sv": "Siffror för {period}", "fi": "Luvut: {period}",
                   "nl": "Cijfers voor {period}", "en": "Figures for {period}"},
    "by_of": {"da": "{figure} efter {by}", "sv": "{figure} per {by}", "fi": "{figure} ryhmittäin: {by}",
              "nl": "{figure} per {by}", "en": "{figure} by {by}"},
    "csv_sep": {"da": "semikolon", "sv": "semikolon", "fi": "puolipiste", "nl": "puntkomma", "en": "comma"},
    "local_days": {"da": "Dagene er hver filials egne døgn ({zone}).", "sv": "Dagarna är varje filials egna dygn "
                   "({zone}).", "fi": "Päivät ovat kunkin toimipisteen omia vuorokausia ({zone}).",
                   "nl": "De dagen zijn de eigen etmalen van elke vestiging ({zone}).",
                   "en": "Days are each branch's own local days ({zone})."},
    "percentiles": {"da": "Mediantider og 90 %-fraktiler er rundet op: til 1 s op til 2 min, 5 s op til 10 min, "
                    "10 s op til 1 time, ellers 1 min.",
                    "sv": "Median och 90:e percentil är avrundade uppåt: till 1 s upp till 2 min, 5 s upp till "
                          "10 min, 10 s upp till 1 timme, annars 1 min.",
                    "fi": "Mediaanit ja 90. persentiilit on pyöristetty ylöspäin: 1 s 2 minuuttiin asti, 5 s "
                          "10 minuuttiin, 10 s tuntiin asti, muuten 1 min.",
                    "nl": "Medianen en 90e percentielen zijn naar boven afgerond: op 1 s tot 2 min, 5 s tot 10 min, "
                          "10 s tot 1 uur, daarboven 1 min.",
                    "en": "Medians and 90th percentiles are rounded up: to 1 s up to 2 min, 5 s up to 10 min, "
                          "10 s up to 1 hour, 1 min beyond."},
    "per_service": {"da": "Efter ydelse kender centret ikke mediantider, fraktiler og vurderinger (de tælles per "
                    "dag); se filialens egen statistik.",
                    "sv": "Per tjänst känner centralen inte till median, percentiler och omdömen (de räknas per dag); "
                          "se filialens egen statistik.",
                    "fi": "Palveluittain keskus ei tunne mediaaneja, persentiilejä eikä arvioita (ne lasketaan "
                          "päivittäin); katso toimipisteen omat tilastot.",
                    "nl": "Per dienst kent de centrale geen medianen, percentielen en beoordelingen (die worden per "
                          "dag geteld); zie de eigen statistieken van de vestiging.",
                    "en": "By service the centre does not know medians, percentiles and ratings (they are counted per "
                          "day); see the branch's own statistics."},
    "pending": {"da": "Dage der stadig tælles op: {n}. Genindlæs om lidt.",
                "sv": "Dagar som fortfarande räknas: {n}. Ladda om om en stund.",
                "fi": "Vielä laskettavia päiviä: {n}. Lataa sivu hetken päästä uudelleen.",
                "nl": "Dagen die nog worden geteld: {n}. Laad zo opnieuw.",
                "en": "Days still being counted: {n}. Reload in a moment."},
    "bad_date": {"da": "Det er ikke en dato: {value}. Skriv fx 2026-11-30.",
                 "sv": "Det är inte ett datum: {value}. Skriv t.ex. 2026-11-30.",
                 "fi": "Tämä ei ole päivämäärä: {value}. Kirjoita esim. 2026-11-30.",
                 "nl": "Dat is geen datum: {value}. Schrijf bijv. 2026-11-30.",
                 "en": "That is not a date: {value}. Write e.g. 2026-11-30."},
    "backwards": {"da": "Perioden slutter før den begynder.", "sv": "Perioden slutar innan den börjar.",
                  "fi": "Aikaväli päättyy ennen kuin alkaa.", "nl": "De periode eindigt voordat hij begint.",
                  "en": "The period ends before it begins."},
    "too_long": {"da": "Højst tre år ad gangen.", "sv": "Högst tre år åt gången.", "fi": "Enintään kolme vuotta "
                 "kerrallaan.", "nl": "Hoogstens drie jaar tegelijk.", "en": "At most three years at a time."},
    "no_branch": {"da": "Din konto ser ingen af centrets filialer.", "sv": "Ditt konto ser ingen av centralens "
                  "filialer.", "fi": "Tunnuksesi ei näe yhtään keskuksen toimipistettä.",
                  "nl": "Uw account ziet geen van de vestigingen van de centrale.",
                  "en": "Your account sees none of the centre's branches."},
}

# (figure key, its name: a msgid of the hub's catalog or a key of STRINGS, how it is written)
Kind = str  # "count", "minutes", "percent", "mean"
FIGURES: tuple[tuple[str, str, Kind], ...] = (
    ("issued", "Tickets", "count"), ("served", "Served", "count"), ("no_show", "No-shows", "count"),
    ("expired", "Expired uncalled", "count"), ("left", "Left the queue", "count"),
    ("transferred", "Transferred", "count"), ("wait_median_s", "Median wait", "minutes"),
    ("wait_p90_s", "90th pct. wait", "minutes"), ("wait_mean_s", "mean_wait", "minutes"),
    ("wait_max_s", "Longest wait", "minutes"), ("service_median_s", "Median service", "minutes"),
    ("service_level", "Service level", "percent"), ("bookings_kept", "Bookings kept", "count"),
    ("from_kiosk", "From the kiosk", "count"), ("from_phone", "From a phone", "count"),
    ("from_staff", "Given at the desk", "count"), ("from_booking", "Booking check-ins", "count"),
    ("feedback_mean", "Feedback", "mean"), ("feedback_count", "ratings", "count"),
)
BY = ("", *rollup.GROUPINGS)


def _t(key: str, lang: str, **values: Any) -> str:
    return html.escape(STRINGS[key].get(lang, STRINGS[key]["en"]).format(**values))


def _words(key: str, lang: str, **values: Any) -> str:
    return STRINGS[key].get(lang, STRINGS[key]["en"]).format(**values)


def period_of(query: dict[str, str], today: date, lang: str) -> tuple[date, date, str]:
    """(first day, last day, a mistake in plain words or '') from the page's fields; today on a mistake."""
    kind = query.get("period", "day")
    try:
        if kind == "month":
            text = query.get("month", "") or today.isoformat()[:7]
            first = date.fromisoformat(text[:7] + "-01")
            following = (first.replace(day=28) + timedelta(days=4)).replace(day=1)
            return first, following - timedelta(days=1), ""
        if kind == "year":
            text = query.get("year", "") or str(today.year)
            year = int(text)
            if not 1970 <= year <= 9998:
                raise ValueError(text)
            return date(year, 1, 1), date(year, 12, 31), ""
        if kind == "range":
            text = query.get("from", "")
            lo = date.fromisoformat(text) if text else today
            text = query.get("to", "")
            hi = date.fromisoformat(text) if text else lo
            if hi < lo:
                return today, today, _words("backwards", lang)
            if (hi - lo).days >= MAX_DAYS:
                return today, today, _words("too_long", lang)
            return lo, hi, ""
        text = query.get("day", "")
        day = date.fromisoformat(text) if text else today
        return day, day, ""
    except ValueError:
        return today, today, _words("bad_date", lang, value=text)


def write(value: Any, kind: Kind, lang: str) -> str:
    if kind == "minutes":
        return formats.minutes(value, lang)
    if kind == "percent":
        return formats.percent(value, lang)
    if kind == "mean":
        return formats.number(value, lang, 2)
    return formats.number(value, lang)


def install(app: FastAPI, config: CentreConfig, pool: Any) -> None:
    zone = figures.centre_zone(config)

    def raw_words(lang: str) -> Callable[[str], str]:
        """A figure's or field's name: the hub's statistics catalog, else this page's own words."""
        catalog = strings(lang, STATS_MSGIDS)
        return lambda key: catalog[key] if key in catalog else _words(key, lang)

    def words(lang: str) -> Callable[[str], str]:
        raw = raw_words(lang)
        return lambda key: html.escape(raw(key))

    def group_name(by: str, key: Any, lang: str) -> str:
        if by == "day":
            return formats.day(date.fromisoformat(key), lang)
        if by == "weekday":
            return formats.weekday(int(key), lang)
        if by == "month":
            return formats.month(key, lang)
        for branch in config.branches.values():  # a service id: its name at the first branch that has it
            service = branch.site.services.get(key)
            if service is not None:
                return service.names.get(lang) or service.names.get("en") or str(key)
        return str(key)

    async def ask(request: Request) -> tuple[signin.Viewer | None, str, dict[str, str], Response | None]:
        lang = page.language(config, request.query_params.get("lang"))
        query = {k: v for k, v in request.query_params.items() if k != "lang"}
        who = await app.state.viewer(request)
        if who is None:
            return None, lang, query, RedirectResponse(f"/login?lang={lang}", status_code=303)
        return who, lang, query, None

    def compute(who: signin.Viewer, lo: date, hi: date, by: str) -> dict[str, Any]:
        chosen = [b for b in config.branches if who.sees(b)]
        with pool.connection() as db:
            result = figures.all_branches_summary(db, config, lo, hi, chosen, budget_s=REFRESH_BUDGET_S,
                                                  by=by or None)
        if who.branches is not None:  # all as one is for those who see every branch
            result["all"] = None
        return result

    def columns(result: dict[str, Any], lang: str) -> list[tuple[str, dict[str, Any]]]:
        cols = [(html.escape(b["name"]), b) for b in result["branches"]]
        return cols + ([(_t("all", lang), result["all"])] if result["all"] is not None else [])

    def period_name(lo: date, hi: date, kind: str, lang: str) -> str:
        if kind == "month":
            return formats.month(lo.isoformat()[:7], lang)
        if kind == "year":
            return str(lo.year)
        return formats.day(lo, lang) if lo == hi else f"{formats.day(lo, lang)} – {formats.day(hi, lang)}"

    def form(query: dict[str, str], lang: str, lo: date, hi: date, w: Callable[[str], str]) -> str:
        kind = query.get("period", "day")
        if kind not in ("day", "month", "year", "range"):
            kind = "day"

        def radio(value: str) -> str:
            return (f'<input type="radio" name="period" value="{value}" id="p-{value}"'
                    f'{" checked" if kind == value else ""}> <label for="p-{value}">{_t(value, lang)}</label>')

        def value(key: str, default: str) -> str:
            return html.escape(query.get(key) or default)

        by = query.get("by", "")
        figure = query.get("figure", "issued")
        by_options = "".join(f'<option value="{b}"{" selected" if b == by else ""}>'
                             f'{_t(b or "nothing", lang) if b != "service" else w("Service")}</option>' for b in BY)
        figure_options = "".join(f'<option value="{k}"{" selected" if k == figure else ""}>{w(name)}</option>'
                                 for k, name, _ in FIGURES)
        return (f'<form method="get" action="{PATH}" class="stats"><input type="hidden" name="lang" value="{lang}">'
                f'<fieldset><legend>{w("Period")}</legend>'
                f'<p>{radio("day")} <input type="date" name="day" aria-label="{_t("day", lang)}" '
                f'value="{value("day", lo.isoformat())}"></p>'
                f'<p>{radio("month")} <input type="month" name="month" aria-label="{_t("month", lang)}" '
                f'placeholder="2026-11" value="{value("month", lo.isoformat()[:7])}"></p>'
                f'<p>{radio("year")} <input type="number" name="year" min="1970" max="9998" '
                f'aria-label="{_t("year", lang)}" value="{value("year", str(lo.year))}"></p>'
                f'<p>{radio("range")} <label for="from">{w("From")}</label> <input type="date" id="from" name="from" '
                f'value="{value("from", lo.isoformat())}"> <label for="to">{w("To")}</label> '
                f'<input type="date" id="to" name="to" value="{value("to", hi.isoformat())}"></p></fieldset>'
                f'<p><label for="by">{_t("by", lang)}</label> <select id="by" name="by">{by_options}</select> '
                f'<label for="figure">{_t("figure", lang)}</label> <select id="figure" name="figure">'
                f'{figure_options}</select></p>'
                f'<p><button type="submit">{w("Show")}</button> '
                f'<button type="submit" class="quiet" formaction="{CSV_PATH}">{w("Download (CSV)")} '
                f'({_t("csv_sep", lang)})</button></p></form>')

    def tables(result: dict[str, Any], lang: str, by: str, figure: str, heading: str,
               w: Callable[[str], str]) -> str:
        cols = columns(result, lang)
        head = "".join(f'<th scope="col" class=n>{name}</th>' for name, _ in cols)
        rows = "".join(f'<tr><th scope="row">{w(name)}</th>'
                       + "".join(f"<td class=n>{write(entry.get(key), kind, lang)}</td>" for _, entry in cols)
                       + "</tr>" for key, name, kind in FIGURES)
        out = page.section("s-total", heading, f'<div {page.scrolling("s-total-h")}><table><thead><tr>'
                                              f'<th scope="col">{w("Total")}</th>{head}</tr></thead><tbody>{rows}'
                                              f'</tbody></table></div>')
        if not by:
            return out
        key, name, kind = next((f for f in FIGURES if f[0] == figure), FIGURES[0])
        keys = sorted({g[by] for _, entry in cols for g in entry["groups"]})
        cells = {(i, g[by]): g for i, (_, entry) in enumerate(cols) for g in entry["groups"]}
        empty = 0 if kind == "count" else None  # a branch without tickets in a group counted none

        def cell(i: int, k: Any) -> str:
            return f"<td class=n>{write(cells.get((i, k), {}).get(key, empty), kind, lang)}</td>"

        body = "".join(f'<tr><th scope="row">{html.escape(group_name(by, k, lang))}</th>'
                       + "".join(cell(i, k) for i in range(len(cols))) + "</tr>" for k in keys)
        raw = raw_words(lang)
        by_raw = raw("Service") if by == "service" else _words(by, lang)
        by_name = html.escape(by_raw)
        title = html.escape(_words("by_of", lang, figure=raw(name), by=by_raw.lower()))
        note = f'<p class="note">{_t("per_service", lang)}</p>' if by == "service" else ""
        return out + page.section("s-by", title, f'{note}<div {page.scrolling("s-by-h")}><table><thead><tr>'
                                                f'<th scope="col">{by_name}</th>{head}</tr></thead><tbody>{body}'
                                                f'</tbody></table></div>')

    @app.get(PATH, response_class=HTMLResponse)
    async def statistics(request: Request) -> Response:
        who, lang, query, refused = await ask(request)
        if refused is not None or who is None:
            return refused  # type: ignore[return-value]
        w = words(lang)
        today = figures.utc_now().astimezone(zone).date()
        lo, hi, mistake = period_of(query, today, lang)
        by = query.get("by", "") if query.get("by", "") in BY else ""
        parts = [form(query, lang, lo, hi, w)]
        if mistake:
            parts.append(f'<p class="warn" role="alert">{html.escape(mistake)}</p>')
        if not any(who.sees(b) for b in config.branches):
            parts.append(f"<p>{_t('no_branch', lang)}</p>")
        else:
            result = await run_in_threadpool(compute, who, lo, hi, by)
            if result["pending_days"]:
                parts.append(f'<p class="note" role="status">{_t("pending", lang, n=result["pending_days"])}</p>')
            kind = query.get("period", "day")
            heading = _t("figures_of", lang, period=period_name(lo, hi, kind, lang))
            parts.append(tables(result, lang, by, query.get("figure", "issued"), heading, w))
            parts.append(f'<p class="note">{_t("local_days", lang, zone=zone.key)} {_t("percentiles", lang)}</p>')
        body = page.frame(config, lang, page._t("statistics", lang), "".join(parts),
                          top=signin.sign_out_form(who, lang), here=PATH, query=query,
                          configure=signin.configures_any(who, config), accounts=who.may_manage_accounts)
        return HTMLResponse(body, status_code=400 if mistake else 200, headers=page.HEADERS_FORMS)

    @app.get(CSV_PATH)
    async def statistics_csv(request: Request) -> Response:
        who, lang, query, refused = await ask(request)
        if refused is not None or who is None:
            return refused  # type: ignore[return-value]
        today = figures.utc_now().astimezone(zone).date()
        lo, hi, mistake = period_of(query, today, lang)
        if mistake:
            return Response(mistake + "\n", status_code=400, media_type="text/plain; charset=utf-8")
        by = query.get("by", "") if query.get("by", "") in BY else ""
        sep = {"comma": ",", "semicolon": ";"}.get(query.get("sep", ""), "," if lang == "en" else ";")
        result = await run_in_threadpool(compute, who, lo, hi, by)
        text = "".join(csv_text(csv_rows(result, by, _words("all", lang)), sep))
        name = f"vuoro-centre-{lo.isoformat()}-{hi.isoformat()}{'-by-' + by if by else ''}.csv"
        return Response(text, media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store",
                                 "X-Content-Type-Options": "nosniff"})


def csv_rows(result: dict[str, Any], by: str, all_name: str) -> list[list[Any]]:
    """branch, name[, the group], then the figures of ``SUMMARY_CSV_FIGURES`` (the branches' own CSV columns):
    a row per branch (per branch and group, then its total) and the same for all branches as one."""
    def figure_cells(entry: dict[str, Any]) -> list[Any]:
        cells = []
        for f in SUMMARY_CSV_FIGURES:
            v = entry.get(f)
            cells.append("" if v is None else int(v) if isinstance(v, float) and v.is_integer() else v)
        return cells

    entries = [(b["branch"], b["name"], b) for b in result["branches"]]
    if result["all"] is not None:
        entries.append(("all", all_name, result["all"]))
    rows: list[list[Any]] = [["branch", "name", *([by] if by else []), *SUMMARY_CSV_FIGURES]]
    for bid, name, entry in entries:
        for group in entry.get("groups", []) if by else []:
            rows.append([bid, name, group[by], *figure_cells(group)])
        rows.append([bid, name, *(["total"] if by else []), *figure_cells(entry)])
    return rows
