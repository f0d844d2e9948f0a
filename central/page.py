"""The centre's overview page: every branch, how recently it was heard from, how far behind, today's tickets.

Rendered on the server, escaped, in the centre's languages (``?lang=``; the first is the default); complete
without a script. One small script of its own keeps it live (``LIVE_JS``): it listens to the centre's event stream
(central/live.py) and reads again only the section of a branch that changed (``GET /overview/branches``), in place.
"""

from __future__ import annotations

import html
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from central.config import CentreConfig

HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; script-src 'self'; "
                               "frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
# The sign-in page and the pages with a sign-out button post forms to the centre itself.
HEADERS_FORMS = {**HEADERS, "Content-Security-Policy": HEADERS["Content-Security-Policy"].replace(
    "form-action 'none'", "form-action 'self'")}
# The overview also reads its event stream and its sections from the centre itself (fetch, EventSource).
HEADERS_LIVE = {**HEADERS_FORMS, "Content-Security-Policy": HEADERS_FORMS["Content-Security-Policy"].replace(
    "default-src 'none';", "default-src 'none'; connect-src 'self';")}

STRINGS: dict[str, dict[str, str]] = {
    "title": {"da": "Filialer", "sv": "Filialer", "fi": "Toimipisteet", "nl": "Vestigingen", "en": "Branches"},
    "branch": {"da": "Filial", "sv": "Filial", "fi": "Toimipiste", "nl": "Vestiging", "en": "Branch"},
    "seen": {"da": "Sidst hørt fra", "sv": "Senast hörd", "fi": "Viimeksi yhteydessä", "nl": "Laatst gehoord",
             "en": "Last heard from"},
    "never": {"da": "aldrig", "sv": "aldrig", "fi": "ei koskaan", "nl": "nooit", "en": "never"},
    "backlog": {"da": "Venter på at blive sendt", "sv": "Väntar på att skickas", "fi": "Lähettämättä",
                "nl": "Nog te verzenden", "en": "Waiting to be sent"},
    "rows": {"da": "{n} rækker", "sv": "{n} rader", "fi": "{n} riviä", "nl": "{n} rijen", "en": "{n} rows"},
    "lag": {"da": "Forsinkelse", "sv": "Fördröjning", "fi": "Viive", "nl": "Vertraging", "en": "Delay"},
    "today": {"da": "Billetter i dag", "sv": "Biljetter i dag", "fi": "Vuoronumeroita tänään",
              "nl": "Tickets vandaag", "en": "Tickets today"},
    "events_today": {"da": "Arrangementer i dag", "sv": "Evenemang i dag", "fi": "Tapahtumat tänään",
                     "nl": "Activiteiten vandaag", "en": "Events today"},
    "signups": {"da": "{s} tilmeldinger, {a} tjekket ind", "sv": "{s} anmälningar, {a} incheckade",
                "fi": "{s} ilmoittautumista, {a} saapunut", "nl": "{s} aanmeldingen, {a} ingecheckt",
                "en": "{s} sign-ups, {a} checked in"},
    "service": {"da": "Ydelse", "sv": "Tjänst", "fi": "Palvelu", "nl": "Dienst", "en": "Service"},
    "issued": {"da": "Udstedt", "sv": "Utfärdade", "fi": "Otettu", "nl": "Uitgegeven", "en": "Issued"},
    "waiting": {"da": "Venter", "sv": "Väntar", "fi": "Jonossa", "nl": "Wachtend", "en": "Waiting"},
    "called": {"da": "Ved skranken", "sv": "Vid disken", "fi": "Palvelussa", "nl": "Aan de balie",
               "en": "At a desk"},
    "served": {"da": "Betjent", "sv": "Betjänade", "fi": "Palveltu", "nl": "Geholpen", "en": "Served"},
    "no_show": {"da": "Udeblevet", "sv": "Uteblev", "fi": "Ei saapunut", "nl": "Niet verschenen",
                "en": "No-show"},
    "devices_down": {"da": "Enheder med problemer", "sv": "Enheter med problem", "fi": "Laitteet, joissa on vikaa",
                     "nl": "Apparaten met problemen", "en": "Devices in trouble"},
    "offline": {"da": "offline", "sv": "offline", "fi": "ei yhteyttä", "nl": "offline", "en": "offline"},
    "printer": {"da": "printer: {state}", "sv": "skrivare: {state}", "fi": "tulostin: {state}",
                "nl": "printer: {state}", "en": "printer: {state}"},
    "paper_low": {"da": "papiret er ved at slippe op", "sv": "pappret håller på att ta slut",
                  "fi": "paperi vähissä", "nl": "papier bijna op", "en": "paper low"},
    "paper_out": {"da": "løbet tør for papir", "sv": "slut på papper", "fi": "paperi loppu", "nl": "papier op",
                  "en": "out of paper"},
    "cover_open": {"da": "låget er åbent", "sv": "luckan är öppen", "fi": "kansi auki", "nl": "klep open",
                   "en": "cover open"},
    "printer_offline": {"da": "svarer ikke", "sv": "svarar inte", "fi": "ei vastaa", "nl": "reageert niet",
                        "en": "not answering"},
    "error": {"da": "fejl", "sv": "fel", "fi": "vika", "nl": "storing", "en": "error"},
    "unknown": {"da": "ukendt", "sv": "okänt", "fi": "tuntematon", "nl": "onbekend", "en": "unknown"},
    "stale": {"da": "Ikke hørt fra i over et minut", "sv": "Inte hörd på över en minut",
              "fi": "Ei yhteyttä yli minuuttiin", "nl": "Al meer dan een minuut niet gehoord",
              "en": "Not heard from for over a minute"},
    "config": {"da": "Opsætning: udgivet / kører", "sv": "Inställningar: publicerad / körs",
               "fi": "Asetukset: julkaistu / käytössä", "nl": "Instellingen: gepubliceerd / actief",
               "en": "Configuration: published / running"},
    "own_file": {"da": "egen fil", "sv": "egen fil", "fi": "oma tiedosto", "nl": "eigen bestand", "en": "own file"},
    "refused": {"da": "Version {n} blev afvist af filialen:", "sv": "Version {n} avvisades av filialen:",
                "fi": "Toimipiste hylkäsi version {n}:", "nl": "Versie {n} is door de vestiging geweigerd:",
                "en": "Version {n} was refused by the branch:"},
    "recent": {"da": "inden for det sidste minut", "sv": "inom den senaste minuten", "fi": "viimeisen minuutin aikana",
               "nl": "in de afgelopen minuut", "en": "in the last minute"},
    "live": {"da": "Opdatér løbende", "sv": "Uppdatera löpande", "fi": "Päivitä jatkuvasti", "nl": "Live bijwerken",
             "en": "Live updates"},
    "updated": {"da": "Opdateret {t}", "sv": "Uppdaterad {t}", "fi": "Päivitetty {t}", "nl": "Bijgewerkt {t}",
                "en": "Updated {t}"},
    "paused": {"da": "Opdateret {t}; løbende opdatering er slået fra",
               "sv": "Uppdaterad {t}; löpande uppdatering är av",
               "fi": "Päivitetty {t}; jatkuva päivitys on pois päältä",
               "nl": "Bijgewerkt {t}; live bijwerken staat uit", "en": "Updated {t}; live updates are off"},
    "lost": {"da": "Opdateret {t}; forbindelsen er afbrudt, prøver igen …",
             "sv": "Uppdaterad {t}; anslutningen bröts, försöker igen …",
             "fi": "Päivitetty {t}; yhteys katkesi, yritetään uudelleen …",
             "nl": "Bijgewerkt {t}; verbinding verbroken, opnieuw proberen …",
             "en": "Updated {t}; connection lost, trying again …"},
    "login": {"da": "Log ind med centrets adgangsnøgle.", "sv": "Logga in med centralens åtkomstnyckel.",
              "fi": "Kirjaudu keskuksen tunnuksella.", "nl": "Log in met de toegangssleutel van de centrale.",
              "en": "Sign in with the centre's access token."},
    # the pages' menu
    "pages": {"da": "Sider", "sv": "Sidor", "fi": "Sivut", "nl": "Pagina's", "en": "Pages"},
    "overview": {"da": "Oversigt", "sv": "Översikt", "fi": "Yleiskatsaus", "nl": "Overzicht", "en": "Overview"},
    "statistics": {"da": "Statistik", "sv": "Statistik", "fi": "Tilastot", "nl": "Statistieken", "en": "Statistics"},
    "configuration": {"da": "Opsætning", "sv": "Inställningar", "fi": "Asetukset", "nl": "Instellingen",
                      "en": "Configuration"},
    "accounts": {"da": "Brugere", "sv": "Konton", "fi": "Käyttäjät", "nl": "Accounts", "en": "Accounts"},
    "language": {"da": "Sprog", "sv": "Språk", "fi": "Kieli", "nl": "Taal", "en": "Language"},
    "forbidden": {"da": "Din konto må ikke dette. Spørg kommunens administrator.",
                  "sv": "Ditt konto får inte göra detta. Fråga kommunens administratör.",
                  "fi": "Tunnuksellasi ei ole tähän oikeutta. Kysy kunnan ylläpitäjältä.",
                  "nl": "Uw account mag dit niet. Vraag het de beheerder van de gemeente.",
                  "en": "Your account may not do this. Ask the municipality's administrator."},
}

STALE_AFTER_S = 60


def language(config: CentreConfig, lang: str | None) -> str:
    return lang if lang in config.languages else config.languages[0]


def _t(key: str, lang: str, **values: Any) -> str:
    return html.escape(STRINGS[key].get(lang, STRINGS[key]["en"]).format(**values))


def _heard(b: dict[str, Any], lang: str, zone: ZoneInfo, now: datetime) -> str:
    """When a branch was last heard from, in words that stay true until its section is drawn again (a live page
    draws it again when the branch changes or falls silent, not every second): within the last minute, or the
    time (and day, if not today) in the centre's zone."""
    if b["last_seen"] is None:
        return _t("never", lang)
    seen = datetime.fromisoformat(b["last_seen"]).astimezone(zone)
    if b["seconds_since_seen"] is not None and b["seconds_since_seen"] <= STALE_AFTER_S:
        return _t("recent", lang)
    at = seen.strftime("%H:%M:%S")
    day = "" if seen.date() == now.astimezone(zone).date() else f"{seen.date().isoformat()} "
    return f'<time datetime="{html.escape(b["last_seen"])}">{day}{at}</time>'


def clock(zone: ZoneInfo, now: datetime) -> str:
    """The time a page (or a section) was read, in the centre's zone: ``10:42:07``."""
    return now.astimezone(zone).strftime("%H:%M:%S")


def _printer(state: str, lang: str) -> str:
    """A printer's state in words (``vuoro.protocol.PRINTER_STATES``); an unknown word as it came."""
    key = "printer_offline" if state == "offline" else state
    return STRINGS[key].get(lang, STRINGS[key]["en"]) if key in STRINGS else state


# The overview live (central/live.py). Without a script (or EventSource) the page is whole as served. A person can
# turn the updates off (WCAG 2.2.2: content that updates by itself can be paused; e.g. to read or copy a figure);
# the choice is kept in the browser. The status line is no live region: a busy morning would make a screen reader
# announce it every second.
LIVE_JS = """
const root = document.getElementById("branches");
const box = document.getElementById("live");
const status = document.getElementById("live-status");
if (root && box && status && window.EventSource && window.fetch) {
  const lang = document.documentElement.lang;
  let source = null, chain = Promise.resolve(), updated = status.dataset.at;
  const say = (key) => { status.textContent = status.dataset[key].replace("{t}", updated); };
  const key = (el) => el.getAttribute("href") || el.id;

  function swap(old, fresh) {  // in place; the focus stays where it was
    const focused = old.contains(document.activeElement) ? key(document.activeElement) : null;
    old.replaceWith(fresh);
    if (focused) {
      const again = [...fresh.querySelectorAll("a, button, [tabindex]")].find((el) => key(el) === focused);
      if (again) again.focus({preventScroll: true});
    }
  }

  function place(fragment, whole) {
    const fresh = [...fragment.querySelectorAll("section[data-branch]")];
    const now = [...root.querySelectorAll("section[data-branch]")];
    if (whole && fresh.map((s) => s.dataset.branch).join() !== now.map((s) => s.dataset.branch).join()) {
      root.replaceChildren(...fresh);  // the viewer's branches changed: draw them anew
      return;
    }
    for (const section of fresh) {
      const old = now.find((s) => s.dataset.branch === section.dataset.branch);
      if (old && old.outerHTML !== section.outerHTML) swap(old, section);
    }
  }

  async function read(branch) {
    const query = new URLSearchParams({lang: lang});
    if (branch) query.set("branch", branch);
    const answer = await fetch("/overview/branches?" + query, {credentials: "same-origin", cache: "no-store"});
    if (answer.status === 401) { location.reload(); return; }  // signed out: the page itself says where to go
    if (!answer.ok) return;  // the database away: the reconnection reads everything again
    const template = document.createElement("template");
    template.innerHTML = await answer.text();
    place(template.content, !branch);
    updated = answer.headers.get("X-Vuoro-Updated") || updated;
    say(!box.checked ? "paused" : source && source.readyState === EventSource.OPEN ? "updated" : "lost");
  }

  const queue = (branch) => { chain = chain.then(() => read(branch)).catch(() => {}); };

  function connect() {
    source = new EventSource("/api/v1/overview/stream");
    source.addEventListener("open", () => queue(null));  // each (re)connection: read everything once
    source.addEventListener("branch", (event) => queue(event.data));
    source.addEventListener("all", () => queue(null));
    source.addEventListener("error", () => {
      say("lost");
      if (source.readyState === EventSource.CLOSED && box.checked) {  // refused (not 200): try again later
        source = null;
        setTimeout(() => { if (box.checked && !source) connect(); }, 5000);
      }
    });
  }

  function follow() {
    localStorage.setItem("vuoro-centre-live", box.checked ? "on" : "off");
    if (box.checked) { if (!source) connect(); }
    else { if (source) source.close(); source = null; say("paused"); }
  }

  document.getElementById("live-control").hidden = false;
  box.checked = localStorage.getItem("vuoro-centre-live") !== "off";
  box.addEventListener("change", follow);
  follow();
}
"""


def _document(lang: str, title: str, body: str, refresh: bool) -> str:
    """A page; ``refresh``: with the live script (the overview)."""
    script = '<script src="/static/centre.js" defer></script>' if refresh else ""
    return (f'<!doctype html><html lang="{lang}"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1"><title>{title}</title>'
            f"<style>{CSS}</style>{script}</head><body><main>{body}</main></body></html>")


def document_with_css(lang: str, title: str, body: str, css: str) -> str:
    """A page of the centre's with more style of its own (the staff calendar), no refresh."""
    return _document(lang, title, body, refresh=False).replace("</style>", f"{css}</style>", 1)


def document(lang: str, title: str, body: str, *, refresh: bool, languages: tuple[str, ...], here: str) -> str:
    """A page with the language links on top (``here``: the page's own address)."""
    current = ' aria-current="true"'
    links = " ".join(f'<a href="{here}?lang={code}" lang="{code}"{current if code == lang else ""}>{code.upper()}</a>'
                     for code in languages)
    return _document(lang, title, f'<nav aria-label="Language">{links}</nav>{body}', refresh)


def menu(lang: str, here: str, *, configure: bool, accounts: bool) -> str:
    """The links between the centre's pages (the ones this reader may use), the current one marked."""
    items = [("/", "overview"), ("/statistics", "statistics")]
    items += [("/configuration", "configuration")] if configure else []
    items += [("/accounts", "accounts")] if accounts else []
    def current(path: str) -> str:  # the page itself, or one under it (/accounts/anna)
        return ' aria-current="page"' if here == path or (path != "/" and here.startswith(path + "/")) else ""

    links = " ".join(f'<a href="{path}?lang={lang}"{current(path)}>{_t(key, lang)}</a>' for path, key in items)
    return f'<nav class="menu" aria-label="{_t("pages", lang)}">{links}</nav>'


def frame(config: CentreConfig, lang: str, title: str, body: str, *, top: str, here: str,
          query: dict[str, str] | None = None, configure: bool = False, accounts: bool = False) -> str:
    """A page of the centre: who is signed in, the menu, the language links (keeping the page's ``query``),
    the heading and ``body``."""
    def link(code: str) -> str:
        return f"{here}?{urlencode({**(query or {}), 'lang': code})}"

    current = ' aria-current="true"'
    languages = " ".join(f'<a href="{html.escape(link(code))}" lang="{code}"{current if code == lang else ""}>'
                         f'{code.upper()}</a>' for code in config.languages)
    heading = f"{html.escape(config.name)} · {title}"
    return _document(lang, heading, f'{top}{menu(lang, here, configure=configure, accounts=accounts)}'
                     f'<nav aria-label="{_t("language", lang)}">{languages}</nav><h1>{heading}</h1>{body}',
                     refresh=False)


def scrolling(labelledby: str = "", *, label: str = "") -> str:
    """The attributes of a wide table's box: it scrolls sideways on a phone, so a keyboard must reach it
    (axe: scrollable-region-focusable), and a focusable box needs a name (its section's heading)."""
    name = f'aria-labelledby="{labelledby}"' if labelledby else f'aria-label="{label}"'
    return f'class="scroll" tabindex="0" role="group" {name}'


def section(sid: str, heading: str, body: str) -> str:
    """A part of a page with its heading (``heading`` already escaped), reachable as ``#sid``."""
    return f'<section id="{sid}" aria-labelledby="{sid}-h"><h2 id="{sid}-h">{heading}</h2>{body}</section>'


def forbidden(lang: str) -> str:
    return _document(lang, _t("forbidden", lang), f"<h1>{_t('forbidden', lang)}</h1>"
                     f'<p><a href="/?lang={lang}">{_t("overview", lang)}</a></p>', refresh=False)


CSS = """
body { font: 16px/1.4 system-ui, sans-serif; margin: 0; background: #f4f4f1; color: #1d1d1b; }
main { max-width: 72rem; margin: 0 auto; padding: 1.5rem; }
h1 { font-size: 1.6rem; margin: 0 0 1rem; }
nav a { margin-right: .75rem; color: #1d4f91; }
section { background: #fff; border: 1px solid #d8d8d2; border-radius: .5rem; padding: 1rem 1.25rem; margin: 1rem 0; }
section.stale { border-color: #b3261e; border-width: 2px; }
h2 { font-size: 1.25rem; margin: 0 0 .5rem; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: .25rem 1rem; margin: 0 0 .75rem; }
dt { color: #55554f; } dd { margin: 0; font-variant-numeric: tabular-nums; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: .3rem .5rem; border-bottom: 1px solid #e6e6e0; }
td.n, th.n { text-align: right; font-variant-numeric: tabular-nums; }
p.warn { color: #b3261e; font-weight: 600; margin: 0 0 .5rem; }
dd.warn { color: #b3261e; font-weight: 600; }
form.login { display: grid; gap: .4rem; max-width: 22rem; background: #fff; border: 1px solid #d8d8d2;
             border-radius: .5rem; padding: 1.25rem; }
form.login input { font: inherit; padding: .5rem; border: 1px solid #76766f; border-radius: .3rem; }
form.login label { font-weight: 600; margin-top: .4rem; }
button { font: inherit; padding: .5rem 1rem; border-radius: .3rem; border: 0; background: #1d4f91; color: #fff;
         cursor: pointer; }
form.login button { margin-top: .8rem; justify-self: start; }
a.sso { display: inline-block; padding: .6rem 1rem; border-radius: .3rem; background: #1d4f91; color: #fff;
        text-decoration: none; font-weight: 600; }
form.who { display: flex; gap: .75rem; align-items: center; justify-content: flex-end; margin: 0 0 .5rem; }
form.who button { padding: .3rem .8rem; }
main a { color: #1d4f91; }
form.grid p { margin: 0; }
nav.menu { display: flex; flex-wrap: wrap; gap: .25rem 1.25rem; margin: 0 0 .75rem; font-weight: 600; }
nav a[aria-current] { color: #1d1d1b; text-decoration-thickness: 3px; }
a:focus-visible, button:focus-visible, input:focus-visible, select:focus-visible, textarea:focus-visible,
summary:focus-visible, .scroll:focus-visible { outline: 3px solid #1d4f91; outline-offset: 2px; }
form.grid { display: grid; grid-template-columns: max-content minmax(0, 1fr); gap: .5rem 1rem; align-items: center;
            max-width: 40rem; }
form.grid .wide, form.grid fieldset { grid-column: 1 / -1; }
fieldset { border: 1px solid #d8d8d2; border-radius: .3rem; margin: 0; padding: .5rem .75rem; }
legend { font-weight: 600; padding: 0 .25rem; }
fieldset label { margin-right: 1rem; white-space: nowrap; }
input, select, textarea { font: inherit; padding: .35rem .5rem; border: 1px solid #76766f; border-radius: .3rem;
                          background: #fff; color: #1d1d1b; }
input[type=radio], input[type=checkbox] { padding: 0; }
textarea { width: 100%; box-sizing: border-box; font-family: ui-monospace, monospace; font-size: .9rem; }
pre.diff { background: #fbfbf8; border: 1px solid #d8d8d2; padding: .75rem; overflow-x: auto; font-size: .9rem; }
pre.diff .add { background: #dcefdc; display: block; }
pre.diff .del { background: #f6dcdc; display: block; }
p.ok { color: #1e6b34; font-weight: 600; }
p.note { color: #55554f; font-size: .95rem; }
ul.problems code { background: #f6dcdc; padding: 0 .2rem; }
td form { display: inline; }
button.quiet { background: #fff; color: #1d4f91; border: 1px solid #1d4f91; padding: .2rem .6rem; }
.scroll { overflow-x: auto; }
caption { text-align: left; font-weight: 600; padding: .25rem 0; }
"""


def login_needed(config: CentreConfig, lang: str | None) -> str:
    lang = language(config, lang)
    return _document(lang, html.escape(config.name), f"<h1>{html.escape(config.name)}</h1><p>{_t('login', lang)}</p>",
                     refresh=False)


def _config_state(state: dict[str, Any] | None, lang: str) -> tuple[str, str]:
    """(a dt/dd pair: version published / running; a warning with the branch's reasons if it refused one)."""
    if state is None:
        return "", ""
    running = _t("own_file", lang) if not state["applied"] else str(state["applied"])
    wanted = "–" if not state["wanted"] else str(state["wanted"])
    pair = f"<dt>{_t('config', lang)}</dt><dd>{wanted} / {running}</dd>"
    if not state["refused"]:
        return pair, ""
    reasons = "".join(f"<li><code>{html.escape(p)}</code></li>" for p in state["problems"])
    return pair, f"<p class=warn>{_t('refused', lang, n=state['refused'])}</p><ul>{reasons}</ul>"


def _handover(b: dict[str, Any], lang: str, zone: Any) -> str:
    """Today's handover of the booking calendar, and the way to the branch's staff calendar."""
    from central.staff_calendar import handover_words  # the calendar's words live with it
    from server.staff.strings import CALENDAR_MSGIDS, strings

    state = b.get("calendar")
    if state is None:
        return ""
    w = strings(lang, CALENDAR_MSGIDS)
    term, link = html.escape(w["Today's bookings"]), html.escape(w["Calendar"])
    warn = ' class="warn"' if state["state"] == "unreachable" else ""
    return (f'<dt>{term}</dt><dd{warn} data-handover="{state["state"]}">'
            f'{html.escape(handover_words(lang, state, zone))} · '
            f'<a href="/calendar/{html.escape(b["branch"])}?lang={lang}">{link}</a></dd>')


def branch_section(config: CentreConfig, b: dict[str, Any], lang: str, state: dict[str, Any] | None,
                   now: datetime) -> str:
    """One branch's section of the overview: what the live page draws again when the branch changes."""
    config_pair, refused = _config_state(state, lang)
    handover = _handover(b, lang, config.branches[b["branch"]].site.timezone)
    seen = b["seconds_since_seen"]
    stale = seen is None or seen > STALE_AFTER_S
    lag = "–" if b["lag_ms"] is None else f"{b['lag_ms'] / 1000:.1f} s"
    rows = "".join(
        f"<tr><td>{html.escape(s['names'].get(lang) or s['names'].get('en') or s['service'])}</td>"
        f"<td class=n>{s['issued']}</td><td class=n>{s['waiting']}</td><td class=n>{s['called']}</td>"
        f"<td class=n>{s['served']}</td>"
        f"<td class=n>{s['no_show']}</td></tr>" for s in b["services"])
    events = b.get("events_today") or {"signups": 0, "attended": 0}
    trouble = [d for d in b.get("devices", []) if not d["online"] or d["printer"] not in (None, "ok")]
    devices = ""
    if trouble:
        items = "".join(
            f"<li>{html.escape(d['device'])}: "
            + (_t("offline", lang) if not d["online"] else _t("printer", lang, state=_printer(d["printer"], lang)))
            + "</li>" for d in trouble)
        devices = f"<p class=warn>{_t('devices_down', lang)}</p><ul>{items}</ul>"
    bid = html.escape(b["branch"])
    return (
        f'<section class="{"stale" if stale else "ok"}" data-branch="{bid}" aria-labelledby="b-{bid}">'
        f'<h2 id="b-{bid}">{html.escape(b["name"])}</h2>'
        + (f"<p class=warn>{_t('stale', lang)}</p>" if stale else "") + devices + refused
        + f"<dl><dt>{_t('seen', lang)}</dt><dd>{_heard(b, lang, centre_zone(config), now)}</dd>"
        f"<dt>{_t('backlog', lang)}</dt><dd>{_t('rows', lang, n=b['backlog'])}</dd>"
        f"<dt>{_t('lag', lang)}</dt><dd>{lag}</dd>"
        f"<dt>{_t('today', lang)}</dt><dd>{b['tickets_today']}</dd>"
        f"<dt>{_t('events_today', lang)}</dt><dd>{_t('signups', lang, s=events['signups'], a=events['attended'])}"
        f"</dd>{config_pair}{handover}</dl>"
        f"<table><thead><tr><th>{_t('service', lang)}</th><th class=n>{_t('issued', lang)}</th>"
        f"<th class=n>{_t('waiting', lang)}</th><th class=n>{_t('called', lang)}</th>"
        f"<th class=n>{_t('served', lang)}</th>"
        f"<th class=n>{_t('no_show', lang)}</th></tr></thead><tbody>{rows}</tbody></table></section>")


def branch_sections(config: CentreConfig, branches: list[dict[str, Any]], lang: str,
                    configs: dict[str, dict[str, Any]] | None, now: datetime) -> str:
    """The sections of ``branches``, as the page holds them and as the live page reads them again."""
    return "".join(branch_section(config, b, lang, (configs or {}).get(b["branch"]), now) for b in branches)


def render(config: CentreConfig, branches: list[dict[str, Any]], lang: str | None, *, top: str = "",
           configs: dict[str, dict[str, Any]] | None = None, now: datetime | None = None) -> str:
    lang = language(config, lang)
    now = now or datetime.now(UTC)
    links = " ".join(f'<a href="?lang={code}" lang="{code}">{code.upper()}</a>' for code in config.languages)
    at = clock(centre_zone(config), now)
    # the status line and the box to turn the updates off: the box shows only where the script runs
    live = (f'<p id="live-status" class="note" data-at="{at}" data-updated="{_t("updated", lang, t="{t}")}" '
            f'data-paused="{_t("paused", lang, t="{t}")}" data-lost="{_t("lost", lang, t="{t}")}">'
            f'{_t("updated", lang, t=at)}</p>'
            f'<p id="live-control" hidden><input type="checkbox" id="live" checked> '
            f'<label for="live">{_t("live", lang)}</label></p>')
    body = (f"{top}<h1>{html.escape(config.name)} · {_t('title', lang)}</h1>"
            f'<nav aria-label="{_t("language", lang)}">{links}</nav>{live}'
            f'<div id="branches">{branch_sections(config, branches, lang, configs, now)}</div>')
    return _document(lang, f"{html.escape(config.name)} · {_t('title', lang)}", body, refresh=True)


def centre_zone(config: CentreConfig) -> ZoneInfo:
    from central.figures import centre_zone as zone  # figures imports the ingest; the page stays light

    return zone(config)
