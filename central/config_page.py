"""The configuration page: each branch's published site files, what the branch did with them, and publishing.

``GET /configuration?branch=&a=&b=`` shows a branch's versions (number, checksum, who published it and when,
which one the branch should run, runs, or refused and why), the difference between two versions, and a form
with the newest text. ``POST /configuration?branch=`` publishes the edited text as the next version, after the
same checks as the API (``configs.centre_check``: the hub's own loader and plugin checks) — but unlike the API,
which leaves the judgement to the branch, the page publishes nothing while they find a problem: a person
typing in a box is helped most by being stopped. Whoever publishes here is named in ``published_by``.

Who: a signed-in account with the admin role, for the branches it sees (``signin.Viewer.may_configure``).
A site file holds the branch's secrets (its token, its directory's settings), so staff accounts never see
this page. Forms carry the session's CSRF token.
"""

from __future__ import annotations

import difflib
import hmac
import html
from typing import Any

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from psycopg_pool import ConnectionPool

from central import configs, formats, page, signin
from central.config import Branch, CentreConfig

PATH = "/configuration"

STRINGS: dict[str, dict[str, str]] = {
    "state": {"da": "Status", "sv": "Status", "fi": "Tila", "nl": "Status", "en": "State"},
    "wanted": {"da": "Nyeste version (den filialen skal køre)", "sv": "Senaste version (den filialen ska köra)",
               "fi": "Uusin versio (toimipisteen kuuluu käyttää sitä)", "nl": "Nieuwste versie (die de vestiging "
               "moet draaien)", "en": "Newest version (the one the branch should run)"},
    "running": {"da": "Kører på filialen", "sv": "Körs på filialen", "fi": "Käytössä toimipisteessä",
                "nl": "Actief in de vestiging", "en": "Running at the branch"},
    "none": {"da": "ingen endnu: filialen kører på sin egen fil", "sv": "ingen än: filialen kör på sin egen fil",
             "fi": "ei vielä: toimipiste käyttää omaa tiedostoaan", "nl": "nog geen: de vestiging draait op haar "
             "eigen bestand", "en": "none yet: the branch runs on its own file"},
    "own_file": {"da": "sin egen fil", "sv": "sin egen fil", "fi": "oma tiedosto", "nl": "haar eigen bestand",
                 "en": "its own file"},
    "not_heard": {"da": "ikke hørt fra endnu", "sv": "inte hörd än", "fi": "ei vielä ilmoittanut",
                  "nl": "nog niets gehoord", "en": "not heard from yet"},
    "since": {"da": "siden {t}", "sv": "sedan {t}", "fi": "{t} alkaen", "nl": "sinds {t}", "en": "since {t}"},
    "versions": {"da": "Udgivne versioner", "sv": "Publicerade versioner", "fi": "Julkaistut versiot",
                 "nl": "Gepubliceerde versies", "en": "Published versions"},
    "version": {"da": "Version", "sv": "Version", "fi": "Versio", "nl": "Versie", "en": "Version"},
    "checksum": {"da": "Kontrolsum (SHA-256)", "sv": "Kontrollsumma (SHA-256)", "fi": "Tarkistussumma (SHA-256)",
                 "nl": "Controlegetal (SHA-256)", "en": "Checksum (SHA-256)"},
    "by": {"da": "Udgivet af", "sv": "Publicerad av", "fi": "Julkaisija", "nl": "Gepubliceerd door",
           "en": "Published by"},
    "when": {"da": "Udgivet", "sv": "Publicerad", "fi": "Julkaistu", "nl": "Gepubliceerd", "en": "Published"},
    "is_wanted": {"da": "nyeste", "sv": "senaste", "fi": "uusin", "nl": "nieuwste", "en": "newest"},
    "is_running": {"da": "kører", "sv": "körs", "fi": "käytössä", "nl": "actief", "en": "running"},
    "is_refused": {"da": "afvist", "sv": "avvisad", "fi": "hylätty", "nl": "geweigerd", "en": "refused"},
    "no_versions": {"da": "Der er ikke udgivet nogen version endnu.", "sv": "Ingen version har publicerats än.",
                    "fi": "Yhtään versiota ei ole vielä julkaistu.", "nl": "Er is nog geen versie gepubliceerd.",
                    "en": "No version has been published yet."},
    "compare": {"da": "Sammenlign to versioner", "sv": "Jämför två versioner", "fi": "Vertaa kahta versiota",
                "nl": "Vergelijk twee versies", "en": "Compare two versions"},
    "from": {"da": "Fra version", "sv": "Från version", "fi": "Versiosta", "nl": "Van versie", "en": "From version"},
    "to": {"da": "Til version", "sv": "Till version", "fi": "Versioon", "nl": "Naar versie", "en": "To version"},
    "show": {"da": "Vis forskellen", "sv": "Visa skillnaden", "fi": "Näytä erot", "nl": "Toon het verschil",
             "en": "Show the difference"},
    "same": {"da": "Version {a} og {b} er ens.", "sv": "Version {a} och {b} är lika.",
             "fi": "Versiot {a} ja {b} ovat samat.", "nl": "Versie {a} en {b} zijn gelijk.",
             "en": "Versions {a} and {b} are the same."},
    "diff_of": {"da": "Forskel fra version {a} til {b}", "sv": "Skillnad från version {a} till {b}",
                "fi": "Erot versiosta {a} versioon {b}", "nl": "Verschil van versie {a} naar {b}",
                "en": "Difference from version {a} to {b}"},
    "publish": {"da": "Udgiv en ny version", "sv": "Publicera en ny version", "fi": "Julkaise uusi versio",
                "nl": "Publiceer een nieuwe versie", "en": "Publish a new version"},
    "text": {"da": "Filialens opsætningsfil (TOML)", "sv": "Filialens inställningsfil (TOML)",
             "fi": "Toimipisteen asetustiedosto (TOML)", "nl": "Het instellingenbestand van de vestiging (TOML)",
             "en": "The branch's site file (TOML)"},
    "publish_note": {
        "da": "Filen kontrolleres først af hubbens egen indlæser. Intet udgives, så længe den finder en fejl. "
              "Filialen henter den nye version inden for sekunder og genstarter på den.",
        "sv": "Filen kontrolleras först av hubbens egen inläsare. Inget publiceras så länge den hittar ett fel. "
              "Filialen hämtar den nya versionen inom några sekunder och startar om med den.",
        "fi": "Tiedosto tarkistetaan ensin keskittimen omalla lukijalla. Mitään ei julkaista, niin kauan kuin se "
              "löytää virheen. Toimipiste hakee uuden version sekunneissa ja käynnistyy uudelleen sillä.",
        "nl": "Het bestand wordt eerst gecontroleerd door de eigen lezer van de hub. Er wordt niets gepubliceerd "
              "zolang die een fout vindt. De vestiging haalt de nieuwe versie binnen seconden op en herstart ermee.",
        "en": "The file is checked first by the hub's own loader. Nothing is published while it finds a problem. "
              "The branch fetches the new version within seconds and restarts on it."},
    "publish_button": {"da": "Kontrollér og udgiv", "sv": "Kontrollera och publicera", "fi": "Tarkista ja julkaise",
                       "nl": "Controleer en publiceer", "en": "Check and publish"},
    "problems": {"da": "Ikke udgivet. Hubbens indlæser fandt disse fejl:",
                 "sv": "Inte publicerad. Hubbens inläsare hittade dessa fel:",
                 "fi": "Ei julkaistu. Keskittimen lukija löysi nämä virheet:",
                 "nl": "Niet gepubliceerd. De lezer van de hub vond deze fouten:",
                 "en": "Not published. The hub's loader found these problems:"},
    "meanwhile": {"da": "Ikke udgivet: version {n} blev udgivet imens. Sammenlign den med din tekst og prøv igen.",
                  "sv": "Inte publicerad: version {n} publicerades under tiden. Jämför den med din text och försök "
                        "igen.",
                  "fi": "Ei julkaistu: versio {n} julkaistiin sillä välin. Vertaa sitä tekstiisi ja yritä uudelleen.",
                  "nl": "Niet gepubliceerd: versie {n} is intussen gepubliceerd. Vergelijk die met uw tekst en "
                        "probeer het opnieuw.",
                  "en": "Not published: version {n} was published meanwhile. Compare it with your text and try "
                        "again."},
    "unchanged": {"da": "Ikke udgivet: teksten er den samme som version {n}.",
                  "sv": "Inte publicerad: texten är densamma som version {n}.",
                  "fi": "Ei julkaistu: teksti on sama kuin versiossa {n}.",
                  "nl": "Niet gepubliceerd: de tekst is gelijk aan versie {n}.",
                  "en": "Not published: the text is the same as version {n}."},
    "published": {"da": "Version {n} er udgivet. Filialen henter den inden for sekunder og melder tilbage.",
                  "sv": "Version {n} är publicerad. Filialen hämtar den inom några sekunder och svarar.",
                  "fi": "Versio {n} on julkaistu. Toimipiste hakee sen sekunneissa ja ilmoittaa tuloksen.",
                  "nl": "Versie {n} is gepubliceerd. De vestiging haalt hem binnen seconden op en meldt zich.",
                  "en": "Version {n} is published. The branch fetches it within seconds and reports back."},
    "token_only": {"da": "Log ind med en konto for at udgive herfra (adgangsnøglen er til API'et).",
                   "sv": "Logga in med ett konto för att publicera härifrån (åtkomstnyckeln är för API:t).",
                   "fi": "Kirjaudu tunnuksella julkaistaksesi täältä (avain on rajapintaa varten).",
                   "nl": "Log in met een account om hier te publiceren (de toegangssleutel is voor de API).",
                   "en": "Sign in with an account to publish from here (the access token is for the API)."},
}


def _t(key: str, lang: str, **values: Any) -> str:
    return html.escape(STRINGS[key].get(lang, STRINGS[key]["en"]).format(**values))


def _problem(problem: str) -> str:
    """'services.kvik.letter: expected …' as the key path (code) and the loader's words."""
    path, sep, words = problem.partition(": ")
    if not sep or " " in path:
        return f"<li>{html.escape(problem)}</li>"
    return f"<li><code>{html.escape(path)}</code>: {html.escape(words)}</li>"


def diff_lines(old: str, new: str, a: int, b: int) -> list[str]:
    return list(difflib.unified_diff(old.splitlines(), new.splitlines(), f"version {a}", f"version {b}",
                                     lineterm="", n=2))


def _diff_html(lines: list[str]) -> str:
    out = []
    for line in lines:
        kind = "add" if line.startswith("+") and not line.startswith("+++") else \
            "del" if line.startswith("-") and not line.startswith("---") else ""
        text = html.escape(line)
        out.append(f'<span class="{kind}">{text}</span>' if kind else text + "\n")
    return "".join(out)


def install(app: FastAPI, config: CentreConfig, pool: ConnectionPool) -> None:
    zone_of = {bid: b.site.timezone for bid, b in config.branches.items()}

    def read(branch: str, a: int | None, b: int | None) -> dict[str, Any]:
        with pool.connection() as db:
            state = next(iter(configs.status(db, [branch])), None)
            found = configs.versions(db, branch)
            texts = {}
            for v in {a, b} - {None}:
                row = configs.newest(db, branch, v)
                if row is not None and row["version"] == v:
                    texts[v] = row["text"]
            newest = configs.newest(db, branch)
        return {"state": state, "versions": found, "texts": texts, "newest": newest}

    def chosen(request: Request, who: signin.Viewer) -> Branch | None:
        mine = [b for bid, b in config.branches.items() if who.may_configure(bid)]
        asked = request.query_params.get("branch")
        return next((b for b in mine if b.id == asked), mine[0] if mine else None)

    def render(who: signin.Viewer, lang: str, branch: Branch, data: dict[str, Any], *, a: int | None = None,
               b: int | None = None, text: str | None = None, message: str = "", problems: list[str] | None = None,
               error: str = "", status: int = 200) -> Response:
        zone = zone_of[branch.id]
        mine = [x for bid, x in config.branches.items() if who.may_configure(bid)]
        current = ' aria-current="page"'
        branches = " ".join(f'<a href="{PATH}?branch={x.id}&amp;lang={lang}"{current if x is branch else ""}>'
                            f"{html.escape(x.name)}</a>" for x in mine)
        parts = [f'<nav class="menu" aria-label="{page._t("branch", lang)}">{branches}</nav>']
        if message:
            parts.append(f'<p class="ok" role="status">{message}</p>')
        if error:
            parts.append(f'<p class="warn" role="alert">{html.escape(error)}</p>')
        if problems:
            parts.append(f'<div role="alert"><p class="warn">{_t("problems", lang)}</p>'
                         f'<ul class="problems">{"".join(_problem(p) for p in problems)}</ul></div>')

        state = data["state"] or {}
        versions = data["versions"]
        wanted = state.get("wanted") or 0
        applied = state.get("applied")
        refused = state.get("refused")
        by_version = {v["version"]: v for v in versions}
        if wanted:
            w = by_version.get(wanted, {})
            wanted_text = (f"{wanted} · {html.escape(w.get('published_by', ''))} · "
                           f"{formats.moment(w.get('published_at'), zone, lang)}")
        else:
            wanted_text = _t("none", lang)
        if state.get("reported_at") is None:
            running_text = _t("not_heard", lang)
        else:
            running_text = (str(applied) if applied else _t("own_file", lang)) + (
                f" ({_t('since', lang, t=formats.moment(state['applied_at'], zone, lang))})"
                if state.get("applied_at") else "")
        refusal = ""
        if refused:
            refusal = (f'<div><p class="warn">{page._t("refused", lang, n=refused)}</p>'
                       f'<ul class="problems">{"".join(_problem(p) for p in state["problems"])}</ul></div>')
        parts.append(f'<section id="s-state" aria-labelledby="s-state-h"><h2 id="s-state-h">{_t("state", lang)}: '
                     f'{html.escape(branch.name)}</h2>{refusal}'
                     f"<dl><dt>{_t('wanted', lang)}</dt><dd>{wanted_text}</dd>"
                     f"<dt>{_t('running', lang)}</dt><dd>{running_text}</dd></dl></section>")

        if versions:
            rows = []
            for v in versions:
                n = v["version"]
                marks = [_t(k, lang) for k, hit in (("is_wanted", n == wanted), ("is_running", n == applied),
                                                   ("is_refused", n == refused)) if hit]
                rows.append(f"<tr><td class=n>{n}</td><td><code title=\"{v['checksum']}\">{v['checksum'][:12]}</code>"
                            f"</td><td>{html.escape(v['published_by'])}</td>"
                            f"<td>{formats.moment(v['published_at'], zone, lang)}</td><td>{', '.join(marks)}</td></tr>")
            table = (f'<div {page.scrolling("s-versions-h")}><table><thead><tr><th class=n>{_t("version", lang)}</th>'
                     f'<th>{_t("checksum", lang)}</th><th>{_t("by", lang)}</th><th>{_t("when", lang)}</th>'
                     f'<th>{_t("state", lang)}</th></tr></thead><tbody>{"".join(rows)}</tbody></table></div>')
        else:
            table = f"<p>{_t('no_versions', lang)}</p>"
        parts.append(page.section("s-versions", _t("versions", lang), table))

        if len(versions) >= 2:
            a = a if a in by_version else versions[1]["version"]
            b = b if b in by_version else versions[0]["version"]

            def options(selected: int) -> str:
                return "".join(f'<option value="{v["version"]}"{" selected" if v["version"] == selected else ""}>'
                               f'{v["version"]}</option>' for v in versions)

            shown = ""
            if a in data["texts"] and b in data["texts"]:
                lines = diff_lines(data["texts"][a], data["texts"][b], a, b)
                # focusable: a long line scrolls sideways, and a keyboard must reach it (WCAG 2.1.1)
                shown = (f'<h3 id="diff-h">{_t("diff_of", lang, a=a, b=b)}</h3><pre class="diff" tabindex="0" '
                         f'role="region" aria-labelledby="diff-h">{_diff_html(lines)}</pre>'
                         if lines else f"<p>{_t('same', lang, a=a, b=b)}</p>")
            parts.append(
                f'<section id="s-compare" aria-labelledby="s-compare-h"><h2 id="s-compare-h">{_t("compare", lang)}</h2>'
                f'<form class="grid" method="get" action="{PATH}#s-compare">'
                f'<input type="hidden" name="branch" value="{branch.id}"><input type="hidden" name="lang" '
                f'value="{lang}"><label for="a">{_t("from", lang)}</label><select id="a" name="a">{options(a)}'
                f'</select><label for="b">{_t("to", lang)}</label><select id="b" name="b">{options(b)}</select>'
                f'<div class="wide"><button type="submit">{_t("show", lang)}</button></div></form>{shown}</section>')

        if text is None:
            newest = data["newest"]
            text = newest["text"] if newest else branch.site.path.read_text(encoding="utf-8")
        if who.csrf:
            form = (f'<form method="post" action="{PATH}?branch={branch.id}&amp;lang={lang}">'
                    f'<input type="hidden" name="csrf" value="{html.escape(who.csrf)}">'
                    f'<input type="hidden" name="base" value="{wanted}">'
                    f'<p class="note" id="publish-note">{_t("publish_note", lang)}</p>'
                    f'<label for="text">{_t("text", lang)}</label>'
                    f'<textarea id="text" name="text" rows="24" spellcheck="false" '
                    f'aria-describedby="publish-note">{html.escape(text)}</textarea>'
                    f'<p><button type="submit">{_t("publish_button", lang)}</button></p></form>')
        else:
            form = f"<p>{_t('token_only', lang)}</p>"
        parts.append(page.section("s-publish", _t("publish", lang), form))
        top = signin.sign_out_form(who, lang)
        body = page.frame(config, lang, page._t("configuration", lang), "".join(parts), top=top, here=PATH,
                          query={"branch": branch.id}, configure=True, accounts=who.may_manage_accounts)
        return HTMLResponse(body, status_code=status, headers=page.HEADERS_FORMS)

    @app.get(PATH, response_class=HTMLResponse)
    async def configuration(request: Request, lang: str | None = None, a: int | None = None,
                            b: int | None = None, published: int | None = None) -> Response:
        lang = page.language(config, lang)
        who = await app.state.viewer(request)
        if who is None:
            return RedirectResponse(f"/login?lang={lang}", status_code=303)
        branch = chosen(request, who)
        if branch is None:
            return HTMLResponse(page.forbidden(lang), status_code=403, headers=page.HEADERS)
        data = await run_in_threadpool(read, branch.id, a, b)
        message = _t("published", lang, n=published) if published else ""
        if published is None and a is None and data["versions"]:  # the newest two compared at once
            versions = data["versions"]
            if len(versions) >= 2:
                data = await run_in_threadpool(read, branch.id, versions[1]["version"], versions[0]["version"])
        return render(who, lang, branch, data, a=a, b=b, message=message)

    @app.post(PATH, response_class=HTMLResponse)
    async def publish(request: Request, lang: str | None = None) -> Response:
        lang = page.language(config, lang)
        who = await app.state.viewer(request)
        if who is None:
            return RedirectResponse(f"/login?lang={lang}", status_code=303)
        branch = config.branches.get(request.query_params.get("branch", ""))
        if branch is None or not who.may_configure(branch.id):
            return HTMLResponse(page.forbidden(lang), status_code=403, headers=page.HEADERS)
        form = await request.form()
        # a browser sends a text area's lines with CRLF: the branch's file, its checksum and the diffs keep LF
        text = str(form.get("text", "")).replace("\r\n", "\n")
        sent = str(form.get("csrf", ""))
        data = await run_in_threadpool(read, branch.id, None, None)
        if not who.csrf or not hmac.compare_digest(sent.encode(), who.csrf.encode()):
            return render(who, lang, branch, data, text=text, status=403,
                          error=signin.STRINGS["expired"].get(lang, signin.STRINGS["expired"]["en"]))
        newest = data["newest"]
        newest_version = newest["version"] if newest else 0
        if str(form.get("base", "")) != str(newest_version):
            return render(who, lang, branch, data, text=text, status=409,
                          error=STRINGS["meanwhile"].get(lang, STRINGS["meanwhile"]["en"]).format(n=newest_version))
        if newest and newest["checksum"] == configs.checksum(text):
            return render(who, lang, branch, data, text=text, status=422,
                          error=STRINGS["unchanged"].get(lang, STRINGS["unchanged"]["en"]).format(n=newest_version))
        try:
            problems = await run_in_threadpool(configs.centre_check, text, branch.id, branch.site.path)
        except configs.NotPublishable as exc:
            problems = exc.problems
        if problems:
            return render(who, lang, branch, data, text=text, problems=problems, status=422)

        def store() -> configs.Published:
            with pool.connection() as db:
                return configs.publish(db, branch.id, text, who.name, [])

        done = await run_in_threadpool(store)
        return RedirectResponse(f"{PATH}?branch={branch.id}&lang={lang}&published={done.version}", status_code=303)
