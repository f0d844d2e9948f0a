"""The accounts page: the staff accounts the centre holds, for every branch (``central/staff.py``).

``GET /accounts`` lists them (name, role, the branches each works at and sees, active or disabled, when
changed) with a form to add one; ``GET /accounts/{name}`` changes one (role, branches, a new password);
``POST /accounts/{name}/disable`` and ``/enable``. Every change goes through ``staff.parse_account`` and
``staff.put``, as the API's: passwords are kept only as argon2id hashes, the staff revision moves, and the
branches fetch their accounts within seconds (a disabled account no longer signs in at any branch once it
has heard; with the centre away a branch keeps its last copy: docs/staff.md). The account's sessions on the
centre's pages end at the change, so it signs in again as it now is.

Who: a signed-in admin who sees every branch (``signin.Viewer.may_manage_accounts``): an account may be given
any branch. Nobody disables their own account or changes their own role or branches here (the way out of
the page would be the admin token). Every form carries the session's CSRF token.
"""

from __future__ import annotations

import hmac
import html
from typing import Any

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from psycopg_pool import ConnectionPool

from central import figures, formats, page, signin
from central import staff as accounts
from central.config import CentreConfig
from vuoro.protocol import ID_PATTERN

PATH = "/accounts"
MIN_PASSWORD = 10  # as the API (central/staff.py parse_account)

STRINGS: dict[str, dict[str, str]] = {
    "name": {"da": "Brugernavn", "sv": "Användarnamn", "fi": "Käyttäjätunnus", "nl": "Gebruikersnaam",
             "en": "User name"},
    "role": {"da": "Rolle", "sv": "Roll", "fi": "Rooli", "nl": "Rol", "en": "Role"},
    "staff": {"da": "personale", "sv": "personal", "fi": "henkilökunta", "nl": "medewerker", "en": "staff"},
    "admin": {"da": "administrator", "sv": "administratör", "fi": "ylläpitäjä", "nl": "beheerder", "en": "admin"},
    "branches": {"da": "Filialer", "sv": "Filialer", "fi": "Toimipisteet", "nl": "Vestigingen", "en": "Branches"},
    "every": {"da": "Alle filialer", "sv": "Alla filialer", "fi": "Kaikki toimipisteet", "nl": "Alle vestigingen",
              "en": "Every branch"},
    "only": {"da": "Kun disse filialer:", "sv": "Bara dessa filialer:", "fi": "Vain nämä toimipisteet:",
             "nl": "Alleen deze vestigingen:", "en": "Only these branches:"},
    "state": {"da": "Status", "sv": "Status", "fi": "Tila", "nl": "Status", "en": "State"},
    "active": {"da": "aktiv", "sv": "aktiv", "fi": "käytössä", "nl": "actief", "en": "active"},
    "disabled": {"da": "spærret", "sv": "spärrad", "fi": "estetty", "nl": "geblokkeerd", "en": "disabled"},
    "changed": {"da": "Ændret", "sv": "Ändrad", "fi": "Muutettu", "nl": "Gewijzigd", "en": "Changed"},
    "actions": {"da": "Handlinger", "sv": "Åtgärder", "fi": "Toiminnot", "nl": "Acties", "en": "Actions"},
    "edit": {"da": "Ret {name}", "sv": "Ändra {name}", "fi": "Muokkaa: {name}", "nl": "{name} wijzigen",
             "en": "Change {name}"},
    "disable": {"da": "Spær {name}", "sv": "Spärra {name}", "fi": "Estä {name}", "nl": "{name} blokkeren",
                "en": "Disable {name}"},
    "enable": {"da": "Genåbn {name}", "sv": "Öppna {name} igen", "fi": "Salli {name}", "nl": "{name} deblokkeren",
               "en": "Enable {name}"},
    "none": {"da": "Centret har ingen konti endnu.", "sv": "Centralen har inga konton än.",
             "fi": "Keskuksessa ei ole vielä tunnuksia.", "nl": "De centrale heeft nog geen accounts.",
             "en": "The centre holds no accounts yet."},
    "add": {"da": "Tilføj en konto", "sv": "Lägg till ett konto", "fi": "Lisää tunnus", "nl": "Account toevoegen",
            "en": "Add an account"},
    "add_button": {"da": "Tilføj", "sv": "Lägg till", "fi": "Lisää", "nl": "Toevoegen", "en": "Add"},
    "save": {"da": "Gem", "sv": "Spara", "fi": "Tallenna", "nl": "Opslaan", "en": "Save"},
    "password": {"da": "Adgangskode", "sv": "Lösenord", "fi": "Salasana", "nl": "Wachtwoord", "en": "Password"},
    "new_password": {"da": "Ny adgangskode (tom: uændret)", "sv": "Nytt lösenord (tomt: oförändrat)",
                     "fi": "Uusi salasana (tyhjä: ennallaan)", "nl": "Nieuw wachtwoord (leeg: ongewijzigd)",
                     "en": "New password (empty: unchanged)"},
    "repeat": {"da": "Gentag adgangskoden", "sv": "Upprepa lösenordet", "fi": "Salasana uudelleen",
               "nl": "Herhaal het wachtwoord", "en": "Repeat the password"},
    "password_hint": {"da": "Mindst 10 tegn. Centret gemmer kun en argon2id-hash af den.",
                      "sv": "Minst 10 tecken. Centralen sparar bara en argon2id-hash av det.",
                      "fi": "Vähintään 10 merkkiä. Keskus tallentaa siitä vain argon2id-tiivisteen.",
                      "nl": "Minstens 10 tekens. De centrale bewaart er alleen een argon2id-hash van.",
                      "en": "At least 10 characters. The centre keeps only an argon2id hash of it."},
    "name_hint": {"da": "Små bogstaver, tal, - eller _ (højst 40).", "sv": "Små bokstäver, siffror, - eller _ "
                  "(högst 40).", "fi": "Pieniä kirjaimia, numeroita, - tai _ (enintään 40).",
                  "nl": "Kleine letters, cijfers, - of _ (hoogstens 40).",
                  "en": "Lower-case letters, digits, - or _ (at most 40)."},
    "travel": {"da": "Filialerne får ændringen inden for sekunder.", "sv": "Filialerna får ändringen inom några "
               "sekunder.", "fi": "Toimipisteet saavat muutoksen sekunneissa.",
               "nl": "De vestigingen krijgen de wijziging binnen seconden.",
               "en": "The branches receive the change within seconds."},
    "saved": {"da": "{name} er gemt.", "sv": "{name} är sparat.", "fi": "{name} on tallennettu.",
              "nl": "{name} is opgeslagen.", "en": "{name} is saved."},
    "bad_name": {"da": "Brugernavnet må kun have små bogstaver, tal, - eller _ (højst 40).",
                 "sv": "Användarnamnet får bara ha små bokstäver, siffror, - eller _ (högst 40).",
                 "fi": "Käyttäjätunnuksessa saa olla vain pieniä kirjaimia, numeroita, - tai _ (enintään 40).",
                 "nl": "De gebruikersnaam mag alleen kleine letters, cijfers, - of _ hebben (hoogstens 40).",
                 "en": "The user name may have only lower-case letters, digits, - or _ (at most 40)."},
    "taken": {"da": "Der er allerede en konto med navnet {name}.", "sv": "Det finns redan ett konto som heter {name}.",
              "fi": "Tunnus {name} on jo olemassa.", "nl": "Er is al een account met de naam {name}.",
              "en": "There is already an account named {name}."},
    "short": {"da": "Adgangskoden skal have mindst 10 tegn.", "sv": "Lösenordet måste ha minst 10 tecken.",
              "fi": "Salasanassa on oltava vähintään 10 merkkiä.", "nl": "Het wachtwoord moet minstens 10 tekens "
              "hebben.", "en": "The password must have at least 10 characters."},
    "differ": {"da": "De to adgangskoder er forskellige.", "sv": "De två lösenorden är olika.",
               "fi": "Salasanat eivät ole samat.", "nl": "De twee wachtwoorden verschillen.",
               "en": "The two passwords differ."},
    "no_branch": {"da": "Vælg mindst én filial, eller alle filialer.", "sv": "Välj minst en filial, eller alla "
                  "filialer.", "fi": "Valitse vähintään yksi toimipiste tai kaikki.",
                  "nl": "Kies minstens één vestiging, of alle vestigingen.",
                  "en": "Choose at least one branch, or every branch."},
    "self": {"da": "Du kan ikke spærre din egen konto eller ændre dens rolle eller filialer. Bed en anden "
             "administrator om det.", "sv": "Du kan inte spärra ditt eget konto eller ändra dess roll eller "
             "filialer. Be en annan administratör.", "fi": "Et voi estää omaa tunnustasi tai muuttaa sen roolia tai "
             "toimipisteitä. Pyydä toista ylläpitäjää.", "nl": "U kunt uw eigen account niet blokkeren of de rol of "
             "vestigingen ervan wijzigen. Vraag een andere beheerder.", "en": "You cannot disable your own account "
             "or change its role or branches. Ask another administrator."},
    "unknown": {"da": "Der er ingen konto med navnet {name}.", "sv": "Det finns inget konto som heter {name}.",
                "fi": "Tunnusta {name} ei ole.", "nl": "Er is geen account met de naam {name}.",
                "en": "There is no account named {name}."},
    "token_only": {"da": "Log ind med en konto for at ændre konti herfra (adgangsnøglen er til API'et).",
                   "sv": "Logga in med ett konto för att ändra konton härifrån (åtkomstnyckeln är för API:t).",
                   "fi": "Kirjaudu tunnuksella muuttaaksesi tunnuksia täältä (avain on rajapintaa varten).",
                   "nl": "Log in met een account om hier accounts te wijzigen (de toegangssleutel is voor de API).",
                   "en": "Sign in with an account to change accounts here (the access token is for the API)."},
    "back": {"da": "Tilbage til alle konti", "sv": "Tillbaka till alla konton", "fi": "Takaisin kaikkiin tunnuksiin",
             "nl": "Terug naar alle accounts", "en": "Back to every account"},
}


def _t(key: str, lang: str, **values: Any) -> str:
    return html.escape(STRINGS[key].get(lang, STRINGS[key]["en"]).format(**values))


def _words(key: str, lang: str, **values: Any) -> str:
    """Unescaped (for a message that is escaped where it is drawn)."""
    return STRINGS[key].get(lang, STRINGS[key]["en"]).format(**values)


def install(app: FastAPI, config: CentreConfig, pool: ConnectionPool) -> None:
    zone = figures.centre_zone(config)
    known = set(config.branches)

    def run(work: Any, *args: Any) -> Any:
        def inner() -> Any:
            with pool.connection() as db:
                return work(db, *args)

        return run_in_threadpool(inner)

    async def allowed(request: Request) -> tuple[signin.Viewer | None, str, Response | None]:
        lang = page.language(config, request.query_params.get("lang"))
        who = await app.state.viewer(request)
        if who is None:
            return None, lang, RedirectResponse(f"/login?lang={lang}", status_code=303)
        if not who.may_manage_accounts:
            return who, lang, HTMLResponse(page.forbidden(lang), status_code=403, headers=page.HEADERS)
        return who, lang, None

    def csrf_ok(who: signin.Viewer, form: Any) -> bool:
        return bool(who.csrf) and hmac.compare_digest(str(form.get("csrf", "")).encode(), who.csrf.encode())

    def frame(who: signin.Viewer, lang: str, body: str, *, status: int = 200, here: str = PATH) -> Response:
        html_text = page.frame(config, lang, page._t("accounts", lang), body, top=signin.sign_out_form(who, lang),
                               here=here, configure=signin.configures_any(who, config), accounts=True)
        return HTMLResponse(html_text, status_code=status, headers=page.HEADERS_FORMS)

    def branch_names(chosen: list[str], lang: str) -> str:
        if not chosen:
            return _t("every", lang)
        return ", ".join(html.escape(config.branches[b].name if b in config.branches else b) for b in chosen)

    def scope_fields(lang: str, chosen: list[str] | None, prefix: str) -> str:
        """Every branch, or only those ticked (an explicit choice: nobody gets every branch by forgetting)."""
        every = chosen is not None and not chosen
        boxes = "".join(
            f'<label><input type="checkbox" name="branch" value="{bid}" id="{prefix}-b-{bid}"'
            f'{" checked" if chosen and bid in chosen else ""}> {html.escape(b.name)}</label>'
            for bid, b in config.branches.items())
        return (f'<fieldset><legend>{_t("branches", lang)}</legend>'
                f'<p><label><input type="radio" name="scope" value="all"{" checked" if every else ""}> '
                f'{_t("every", lang)}</label></p>'
                f'<p><label><input type="radio" name="scope" value="some"{"" if every else " checked"}> '
                f'{_t("only", lang)}</label> {boxes}</p></fieldset>')

    def role_field(lang: str, role: str, prefix: str) -> str:
        options = "".join(f'<option value="{r}"{" selected" if r == role else ""}>{_t(r, lang)}</option>'
                          for r in ("staff", "admin"))
        return f'<label for="{prefix}-role">{_t("role", lang)}</label><select id="{prefix}-role" name="role">' \
               f'{options}</select>'

    def password_fields(lang: str, prefix: str, *, new: bool) -> str:
        label = _t("password" if new else "new_password", lang)
        required = " required" if new else ""
        return (f'<label for="{prefix}-pw">{label}</label><input id="{prefix}-pw" name="password" type="password" '
                f'autocomplete="new-password" minlength="{MIN_PASSWORD}" aria-describedby="{prefix}-pw-hint"'
                f'{required}><p class="note wide" id="{prefix}-pw-hint">{_t("password_hint", lang)}</p>'
                f'<label for="{prefix}-pw2">{_t("repeat", lang)}</label><input id="{prefix}-pw2" name="password2" '
                f'type="password" autocomplete="new-password"{required}>')

    def listing_page(who: signin.Viewer, lang: str, rows: list[dict[str, Any]], *, message: str = "",
                     error: str = "", entered: dict[str, Any] | None = None, status: int = 200) -> Response:
        entered = entered or {}
        csrf = f'<input type="hidden" name="csrf" value="{html.escape(who.csrf)}">'
        parts = []
        if message:
            parts.append(f'<p class="ok" role="status">{html.escape(message)}</p>')
        if error:
            parts.append(f'<p class="warn" role="alert">{html.escape(error)}</p>')
        if rows:
            lines = []
            for a in rows:
                name = html.escape(a["name"])
                switch = "enable" if a["disabled"] else "disable"
                action = ""
                if who.csrf:
                    action = f'<a href="{PATH}/{name}?lang={lang}">{_t("edit", lang, name=a["name"])}</a> '
                    if a["name"] != who.name:  # nobody disables themselves
                        action += (f'<form method="post" action="{PATH}/{name}/{switch}?lang={lang}">{csrf}<button '
                                   f'type="submit" class="quiet">{_t(switch, lang, name=a["name"])}</button></form>')
                lines.append(f"<tr><td>{name}</td><td>{_t(a['role'], lang)}</td>"
                             f"<td>{branch_names(a['branches'], lang)}</td>"
                             f"<td>{_t('disabled' if a['disabled'] else 'active', lang)}</td>"
                             f"<td>{formats.moment(a['updated_at'], zone, lang)}</td><td>{action}</td></tr>")
            box = page.scrolling(label=page._t("accounts", lang))
            parts.append(f'<div {box}><table><thead><tr><th>{_t("name", lang)}</th><th>{_t("role", lang)}</th>'
                         f'<th>{_t("branches", lang)}</th><th>{_t("state", lang)}</th><th>{_t("changed", lang)}</th>'
                         f'<th>{_t("actions", lang)}</th></tr></thead><tbody>{"".join(lines)}</tbody></table></div>')
        else:
            parts.append(f"<p>{_t('none', lang)}</p>")
        if who.csrf:
            parts.append(
                f'<section id="s-add" aria-labelledby="s-add-h"><h2 id="s-add-h">{_t("add", lang)}</h2>'
                f'<form class="grid" method="post" action="{PATH}?lang={lang}">{csrf}'
                f'<label for="new-name">{_t("name", lang)}</label><input id="new-name" name="name" required '
                f'maxlength="40" autocomplete="off" aria-describedby="new-name-hint" '
                f'value="{html.escape(str(entered.get("name", "")))}">'
                f'<p class="note wide" id="new-name-hint">{_t("name_hint", lang)}</p>'
                + role_field(lang, str(entered.get("role", "staff")), "new")
                + scope_fields(lang, entered.get("branches"), "new") + password_fields(lang, "new", new=True)
                + f'<p class="note wide">{_t("travel", lang)}</p>'
                f'<div class="wide"><button type="submit">{_t("add_button", lang)}</button></div></form></section>')
        else:
            parts.append(f"<p>{_t('token_only', lang)}</p>")
        return frame(who, lang, "".join(parts), status=status)

    def edit_page(who: signin.Viewer, lang: str, account: dict[str, Any], *, error: str = "",
                  status: int = 200) -> Response:
        name = html.escape(account["name"])
        body = (f'<p><a href="{PATH}?lang={lang}">{_t("back", lang)}</a></p>'
                f'<section id="s-edit" aria-labelledby="s-edit-h">'
                f'<h2 id="s-edit-h">{_t("edit", lang, name=account["name"])}</h2>'
                + (f'<p class="warn" role="alert">{html.escape(error)}</p>' if error else "")
                + f'<form class="grid" method="post" action="{PATH}/{name}?lang={lang}">'
                f'<input type="hidden" name="csrf" value="{html.escape(who.csrf)}">'
                + role_field(lang, account["role"], "edit") + scope_fields(lang, account["branches"], "edit")
                + password_fields(lang, "edit", new=False)
                + f'<p class="note wide">{_t("travel", lang)}</p>'
                f'<div class="wide"><button type="submit">{_t("save", lang)}</button></div></form></section>')
        return frame(who, lang, body, status=status, here=f"{PATH}/{name}")

    def read_form(form: Any, lang: str, *, new: bool) -> tuple[dict[str, Any], str]:
        """What the form says, and the first mistake in it in plain words ('' when none)."""
        entered: dict[str, Any] = {"role": str(form.get("role", "staff")),
                                   "branches": [] if form.get("scope") == "all" else
                                   [str(b) for b in form.getlist("branch") if str(b) in known]}
        password, again = str(form.get("password", "")), str(form.get("password2", ""))
        if new:
            entered["name"] = str(form.get("name", "")).strip().lower()
            if not ID_PATTERN.match(entered["name"]):
                return entered, _words("bad_name", lang)
        if entered["role"] not in ("staff", "admin"):
            entered["role"] = "staff"
        if form.get("scope") != "all" and not entered["branches"]:
            return entered, _words("no_branch", lang)
        if password or again or new:
            if len(password) < MIN_PASSWORD:
                return entered, _words("short", lang)
            if password != again:
                return entered, _words("differ", lang)
            entered["password"] = password
        return entered, ""

    async def changed(name: str, request: Request) -> None:
        """The account's other sessions end (it signs in again as it now is); the branches hear at once through the
        change's NOTIFY (central/staff.py)."""
        mine = request.cookies.get(signin.SESSION_COOKIE)
        await run_in_threadpool(app.state.centre_sessions.end_for, name, mine)

    def store(name: str, before: dict[str, Any] | None, entered: dict[str, Any], disabled: bool) -> None:
        body: dict[str, Any] = {"role": entered["role"], "branches": entered["branches"],
                                "desks": before["desks"] if before else [], "disabled": disabled}
        if "password" in entered:
            body["password"] = entered["password"]  # hashed (argon2id) by parse_account; never kept
        else:
            assert before is not None
            body["password_hash"] = before["password_hash"]
        account = accounts.parse_account(name, body, known)  # the API's rules, the last word
        with pool.connection() as db:
            accounts.put(db, account)

    @app.get(PATH, response_class=HTMLResponse)
    async def listing(request: Request, saved: str = "") -> Response:
        who, lang, refused = await allowed(request)
        if refused is not None or who is None:
            return refused  # type: ignore[return-value]
        rows = await run(accounts.listing)
        message = _words("saved", lang, name=saved) + " " + _words("travel", lang) if saved else ""
        return listing_page(who, lang, rows, message=message)

    @app.post(PATH, response_class=HTMLResponse)
    async def add(request: Request) -> Response:
        who, lang, refused = await allowed(request)
        if refused is not None or who is None:
            return refused  # type: ignore[return-value]
        form = await request.form()
        rows = await run(accounts.listing)
        if not csrf_ok(who, form):
            return listing_page(who, lang, rows, status=403,
                                error=signin.STRINGS["expired"].get(lang, signin.STRINGS["expired"]["en"]))
        entered, mistake = read_form(form, lang, new=True)
        if not mistake and any(a["name"] == entered["name"] for a in rows):
            mistake = _words("taken", lang, name=entered["name"])
        if mistake:
            return listing_page(who, lang, rows, error=mistake, entered=entered, status=422)
        await run_in_threadpool(store, entered["name"], None, entered, False)
        await changed(entered["name"], request)
        return RedirectResponse(f"{PATH}?lang={lang}&saved={entered['name']}", status_code=303)

    @app.get(PATH + "/{name}", response_class=HTMLResponse)
    async def edit(request: Request, name: str) -> Response:
        who, lang, refused = await allowed(request)
        if refused is not None or who is None:
            return refused  # type: ignore[return-value]
        account = await run(accounts.get, name)
        if account is None or not who.csrf:
            return listing_page(who, lang, await run(accounts.listing), status=404,
                                error=_words("unknown", lang, name=name) if account is None else "")
        return edit_page(who, lang, account)

    @app.post(PATH + "/{name}", response_class=HTMLResponse)
    async def save(request: Request, name: str) -> Response:
        who, lang, refused = await allowed(request)
        if refused is not None or who is None:
            return refused  # type: ignore[return-value]
        form = await request.form()
        account = await run(accounts.get, name)
        if account is None:
            return listing_page(who, lang, await run(accounts.listing), status=404,
                                error=_words("unknown", lang, name=name))
        if not csrf_ok(who, form):
            return edit_page(who, lang, account, status=403,
                             error=signin.STRINGS["expired"].get(lang, signin.STRINGS["expired"]["en"]))
        entered, mistake = read_form(form, lang, new=False)
        if not mistake and name == who.name and (entered["role"] != account["role"]
                                                 or sorted(entered["branches"]) != sorted(account["branches"])):
            mistake = _words("self", lang)
        if mistake:
            return edit_page(who, lang, {**account, **entered, "name": name}, error=mistake, status=422)
        await run_in_threadpool(store, name, account, entered, account["disabled"])
        await changed(name, request)
        return RedirectResponse(f"{PATH}?lang={lang}&saved={name}", status_code=303)

    async def switch(request: Request, name: str, disabled: bool) -> Response:
        who, lang, refused = await allowed(request)
        if refused is not None or who is None:
            return refused  # type: ignore[return-value]
        form = await request.form()
        account = await run(accounts.get, name)
        rows = await run(accounts.listing)
        if account is None:
            return listing_page(who, lang, rows, status=404, error=_words("unknown", lang, name=name))
        if not csrf_ok(who, form):
            return listing_page(who, lang, rows, status=403,
                                error=signin.STRINGS["expired"].get(lang, signin.STRINGS["expired"]["en"]))
        if name == who.name and disabled:
            return listing_page(who, lang, rows, status=422, error=_words("self", lang))
        await run_in_threadpool(store, name, account, {"role": account["role"], "branches": account["branches"]},
                                disabled)
        await changed(name, request)
        return RedirectResponse(f"{PATH}?lang={lang}&saved={name}", status_code=303)

    @app.post(PATH + "/{name}/disable", response_class=HTMLResponse)
    async def disable(request: Request, name: str) -> Response:
        return await switch(request, name, True)

    @app.post(PATH + "/{name}/enable", response_class=HTMLResponse)
    async def enable(request: Request, name: str) -> Response:
        return await switch(request, name, False)
