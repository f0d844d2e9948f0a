"""Signing in to the centre's pages with the staff accounts the centre holds (central/staff.py).

Who reads the centre: the admin token (``Bearer``, or HTTP Basic with the token as the password) for the API
and automation — it sees every branch and may publish configs and change accounts; or a person signed in on
``/login`` with their staff account — they see the branches their account works at (every branch when it lists
none). The session cookie is random, HttpOnly, SameSite=Strict, Secure over https; the session is held in
PostgreSQL (``central.shared_state.Sessions``: every worker process sees it, a restart keeps it); the login
form carries its own token (double-submit cookie); wrong passwords slow down whoever sends them
(``server.staff.accounts.LoginGuard``, the branch's rule, counted in PostgreSQL for every worker at once).
Sign-out needs the session's CSRF token.

With ``[staff.ldap]`` a person may also sign in with the municipality's directory (LDAP / Active Directory,
``server.staff.directory``: the centre binds as them and reads their groups); the first listed group that names
them gives their role and the branches they see. The centre's own accounts are asked first and stay the way in
when the directory cannot be reached; a directory user is then told so in plain words. With ``[staff.oidc]`` a
button above the form signs in through the OpenID Connect provider (``server.staff.oidc``: code flow with PKCE,
the ID token checked; ``/login/oidc`` then ``/login/oidc/callback``), its groups claim giving role and branches.
"""

from __future__ import annotations

import base64
import hmac
import html
import logging
import secrets
from dataclasses import dataclass

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from psycopg_pool import ConnectionPool

from central import page
from central import staff as accounts
from central.config import OIDC_CALLBACK, CentreConfig
from central.shared_state import Sessions as SharedSessions
from central.shared_state import SharedBackoff, SharedOidc
from server.staff import REFUSALS
from server.staff.accounts import LoginGuard
from server.staff.directory import DirectoryDown, Grant, ask_directory
from server.staff.oidc import NO_GROUP, UNREACHABLE, OidcRefused
from server.staff.strings import strings as staff_strings

log = logging.getLogger("vuoro.central")

SESSION_COOKIE = "vuoro_centre"
LOGIN_COOKIE = "vuoro_centre_login"
OIDC_COOKIE = "vuoro_centre_oidc"  # binds a sign-in through the provider to the browser that started it
OIDC_START = "/login/oidc"

STRINGS: dict[str, dict[str, str]] = {
    "sign_in": {"da": "Log ind", "sv": "Logga in", "fi": "Kirjaudu", "nl": "Inloggen", "en": "Sign in"},
    "user": {"da": "Brugernavn", "sv": "Användarnamn", "fi": "Käyttäjätunnus", "nl": "Gebruikersnaam",
             "en": "User name"},
    "password": {"da": "Adgangskode", "sv": "Lösenord", "fi": "Salasana", "nl": "Wachtwoord", "en": "Password"},
    "wrong": {"da": "Forkert brugernavn eller adgangskode.", "sv": "Fel användarnamn eller lösenord.",
              "fi": "Väärä käyttäjätunnus tai salasana.", "nl": "Onjuiste gebruikersnaam of wachtwoord.",
              "en": "Wrong user name or password."},
    "expired": {"da": "Formularen var udløbet. Prøv igen.", "sv": "Formuläret hade gått ut. Försök igen.",
                "fi": "Lomake vanheni. Yritä uudelleen.", "nl": "Het formulier was verlopen. Probeer het opnieuw.",
                "en": "The form had expired. Try again."},
    "wait": {"da": "For mange forsøg. Vent {n} sekunder.", "sv": "För många försök. Vänta {n} sekunder.",
             "fi": "Liian monta yritystä. Odota {n} sekuntia.", "nl": "Te veel pogingen. Wacht {n} seconden.",
             "en": "Too many attempts. Wait {n} seconds."},
    "no_group": {"da": "Du er ikke i en personalegruppe. Bed jeres IT-afdeling om adgang til køsystemet.",
                 "sv": "Du är inte med i en personalgrupp. Be er IT-avdelning om tillgång till kösystemet.",
                 "fi": "Et ole henkilökunnan ryhmässä. Pyydä IT-tuelta pääsy jonojärjestelmään.",
                 "nl": "U zit niet in een medewerkersgroep. Vraag uw IT-afdeling om toegang tot het wachtrijsysteem.",
                 "en": "You are not in a staff group. Ask your IT department for access to the queue system."},
    "directory_down": {
        "da": "Kommunens login kan ikke nås lige nu. Prøv igen om lidt, eller brug en konto fra centralen.",
        "sv": "Kommunens inloggning går inte att nå just nu. Försök igen om en stund, eller använd ett konto "
              "från centralen.",
        "fi": "Kunnan kirjautumispalveluun ei juuri nyt saada yhteyttä. Yritä hetken kuluttua uudelleen tai käytä "
              "keskuksen tunnusta.",
        "nl": "Het inloggen van de gemeente is nu niet bereikbaar. Probeer het zo opnieuw, of gebruik een account "
              "van de centrale.",
        "en": "The municipality's login cannot be reached right now. Try again in a moment, or use a centre "
              "account."},
    "sign_out": {"da": "Log ud", "sv": "Logga ut", "fi": "Kirjaudu ulos", "nl": "Uitloggen", "en": "Sign out"},
    "signed_in": {"da": "Logget ind som {name}", "sv": "Inloggad som {name}", "fi": "Kirjautunut: {name}",
                  "nl": "Ingelogd als {name}", "en": "Signed in as {name}"},
}


def t(key: str, lang: str, **values: object) -> str:
    return html.escape(STRINGS[key].get(lang, STRINGS[key]["en"]).format(**values))


@dataclass(frozen=True)
class Viewer:
    """Who asks: the admin token (every branch, may change things) or a signed-in account (its branches)."""

    name: str
    branches: frozenset[str] | None  # None: every branch
    admin: bool = False  # the admin token: publish configs, change accounts
    csrf: str = ""
    role: str = "staff"  # a signed-in account's role (staff or admin), from the centre or the directory's group

    def sees(self, branch: str) -> bool:
        return self.branches is None or branch in self.branches

    # The rule of the pages: an account with the admin role publishes its branches' configs; one that also sees
    # every branch (the municipality's own people) manages the accounts, which may grant any branch.
    def may_configure(self, branch: str) -> bool:
        return (self.admin or self.role == "admin") and self.sees(branch)

    @property
    def may_manage_accounts(self) -> bool:
        return self.admin or (self.role == "admin" and self.branches is None)


def token_of(request: Request) -> str:
    """The token a request carries: ``Bearer <token>``, or the password of HTTP Basic (a browser's prompt)."""
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer":
        return value.strip()
    if scheme.lower() == "basic":
        try:
            return base64.b64decode(value.strip()).decode().partition(":")[2]
        except (ValueError, UnicodeDecodeError):
            return ""
    return ""


def install(app: FastAPI, config: CentreConfig, pool: ConnectionPool) -> None:
    sessions = SharedSessions(pool)
    guard = LoginGuard(5, 300.0, make=lambda kind, free, **options: SharedBackoff(pool, f"login/{kind}", free,
                                                                                   **options))
    app.state.centre_sessions = sessions
    oidc = SharedOidc(config.oidc, pool) if config.oidc else None

    async def viewer(request: Request) -> Viewer | None:
        token = token_of(request)
        if token and hmac.compare_digest(token.encode(), config.admin_token.encode()):
            return Viewer("admin token", None, admin=True)
        cookie = request.cookies.get(SESSION_COOKIE)
        session = await run_in_threadpool(sessions.get, cookie) if cookie else None
        if session is None:
            return None
        account = session.account
        return Viewer(account.name, frozenset(account.branches) if account.branches else None, csrf=session.csrf,
                      role=account.role)

    app.state.viewer = viewer

    def secure(request: Request) -> bool:
        return request.url.scheme == "https"

    def form(request: Request, lang: str, *, error: str = "", status: int = 200, user: str = "") -> Response:
        token = request.cookies.get(LOGIN_COOKIE, "")
        if len(token) != 32 or not token.replace("-", "").replace("_", "").isalnum():
            token = secrets.token_urlsafe(24)
        body = (f"<h1>{html.escape(config.name)}</h1>"
                + sso_button(lang)
                + f'<form class="login" method="post" action="/login?lang={lang}">'
                + (f'<p class="warn" role="alert">{html.escape(error)}</p>' if error else "")
                + f'<input type="hidden" name="csrf" value="{token}">'
                f'<label for="username">{t("user", lang)}</label>'
                f'<input id="username" name="username" autocomplete="username" required value="{html.escape(user)}">'
                f'<label for="password">{t("password", lang)}</label>'
                f'<input id="password" name="password" type="password" autocomplete="current-password" required>'
                f'<button type="submit">{t("sign_in", lang)}</button></form>')
        response = HTMLResponse(page.document(lang, f"{t('sign_in', lang)} · {html.escape(config.name)}", body,
                                              refresh=False, languages=config.languages, here="/login"),
                                status_code=status, headers=page.HEADERS_FORMS)
        response.set_cookie(LOGIN_COOKIE, token, max_age=3600, httponly=True, samesite="strict",
                            secure=secure(request), path="/login")
        return response

    def account_of(name: str, grant: Grant) -> accounts.Account:
        """A directory's or provider's person as an account: a group's branches (None: every branch)."""
        return accounts.Account(name, grant.role, grant.branches or (), grant.desks)

    def check_password(name: str, password: str) -> tuple[accounts.Account | None, str]:
        """The centre's account, else the directory's answer; a refusal is "wrong", "no_group" or "directory_down".

        Blocking (argon2, LDAP): run in a thread."""
        with pool.connection() as db:
            account = accounts.verify(db, name, password)
        if account is not None or config.ldap is None:
            return account, "" if account else "wrong"
        try:
            answer = ask_directory(config.ldap, name, password)
        except DirectoryDown as exc:
            log.warning("centre: login %r: the directory %s cannot be reached (%s)", name, config.ldap.url, exc)
            return None, "directory_down"
        if answer.grant is None:
            if answer.refusal != "wrong":  # disabled or in no listed group: the IT department may want to know
                log.info("centre: login %r refused by the directory: %s", name, answer.refusal)
            # A disabled account is told what a wrong password is, as at the branches (server/staff/signin.py).
            return None, "no_group" if answer.refusal == "no_group" else "wrong"
        return account_of(name, answer.grant), ""

    def sso_button(lang: str) -> str:
        """The way to the OpenID provider, above the password form, when ``[staff.oidc]`` is set."""
        if config.oidc is None:
            return ""
        msgid = "Log in with {name}" if config.oidc.name else "Log in with the municipality's login"
        label = staff_strings(lang, (msgid,))[msgid].format(name=config.oidc.name)
        return f'<p><a class="sso" href="{OIDC_START}?lang={lang}">{html.escape(label)}</a></p>'

    def oidc_refusal(reason: str, lang: str) -> str:
        if reason in (NO_GROUP, UNREACHABLE):  # the centre's words (a centre account is the other way in)
            key = "no_group" if reason == NO_GROUP else "directory_down"
            return STRINGS[key].get(lang, STRINGS[key]["en"])
        return staff_strings(lang, (REFUSALS[reason],))[REFUSALS[reason]]  # as at a branch

    def redirect_uri(request: Request) -> str:
        assert config.oidc is not None
        return config.oidc.redirect_uri or f"{request.url.scheme}://{request.url.netloc}{OIDC_CALLBACK}"

    @app.get(OIDC_START, include_in_schema=False)
    async def oidc_start(request: Request, lang: str | None = None) -> Response:
        lang = page.language(config, lang)
        if oidc is None:
            return RedirectResponse(f"/login?lang={lang}", status_code=303)
        try:
            pending, url = await run_in_threadpool(oidc.begin, redirect_uri(request))
        except OidcRefused as refused:
            log.warning("centre: sign-in through %s: %s", oidc.settings.issuer, refused)
            return form(request, lang, error=oidc_refusal(refused.reason, lang), status=503)
        response = RedirectResponse(url, status_code=303)
        # Lax, not Strict: the provider sends the browser back with a cross-site top-level GET. The language
        # rides along in the cookie (the provider returns only code and state).
        response.set_cookie(OIDC_COOKIE, f"{pending.state}.{lang}", max_age=600, httponly=True, samesite="lax",
                            secure=secure(request), path=OIDC_START)
        return response

    @app.get(OIDC_CALLBACK, include_in_schema=False)
    async def oidc_callback(request: Request) -> Response:
        state, _, lang = request.cookies.get(OIDC_COOKIE, "").partition(".")
        lang = page.language(config, lang or None)
        if oidc is None:
            return RedirectResponse(f"/login?lang={lang}", status_code=303)
        sent = request.query_params.get("state", "")
        pending = (await run_in_threadpool(oidc.take, sent)
                   if sent and state and hmac.compare_digest(sent.encode(), state.encode()) else None)
        try:
            if request.query_params.get("error"):  # the person cancelled, or the provider said no
                raise OidcRefused("cancelled", str(request.query_params.get("error"))[:200])
            if pending is None:
                raise OidcRefused("expired", "no sign-in of this browser is waiting for this state")
            identity = await run_in_threadpool(oidc.finish, pending, request.query_params.get("code", ""))
        except OidcRefused as refused:
            log.warning("centre: sign-in through %s refused: %s", oidc.settings.issuer, refused)
            status = 403 if refused.reason == NO_GROUP else 503 if refused.reason == UNREACHABLE else 401
            response = form(request, lang, error=oidc_refusal(refused.reason, lang), status=status)
            response.delete_cookie(OIDC_COOKIE, path=OIDC_START)
            return response
        account = account_of(identity.name, identity.grant)
        session = await run_in_threadpool(sessions.create, account)
        log.info("centre: %r signed in through %s (%s)", account.name, oidc.settings.issuer,
                 ", ".join(account.branches) or "every branch")
        # The session cookie is SameSite=Strict and this request came from the provider's site: a redirect from
        # here would go without it. A page of our own that moves on is a same-site navigation, which carries it.
        body = (f'<!doctype html><html lang="{lang}"><head><meta charset="utf-8">'
                f'<meta http-equiv="refresh" content="0;url=/?lang={lang}"><title>{html.escape(config.name)}</title>'
                f'</head><body><main><p><a href="/?lang={lang}">{html.escape(config.name)}</a></p></main></body>'
                f'</html>')
        response = HTMLResponse(body, headers=page.HEADERS_FORMS)
        response.set_cookie(SESSION_COOKIE, session.token, httponly=True, samesite="strict", secure=secure(request),
                            path="/", max_age=12 * 3600)
        response.delete_cookie(OIDC_COOKIE, path=OIDC_START)
        return response

    @app.get("/login", response_class=HTMLResponse)
    async def login_form(request: Request, lang: str | None = None) -> Response:
        if await viewer(request) is not None:
            return RedirectResponse(f"/?lang={page.language(config, lang)}", status_code=303)
        return form(request, page.language(config, lang))

    @app.post("/login", response_class=HTMLResponse)
    async def login(request: Request, lang: str | None = None) -> Response:
        lang = page.language(config, lang)
        data = await request.form()
        name = str(data.get("username", "")).strip().lower()[:64]
        password = str(data.get("password", ""))[:1024]
        sent, expected = str(data.get("csrf", "")), request.cookies.get(LOGIN_COOKIE, "")
        if not sent or not expected or not hmac.compare_digest(sent.encode(), expected.encode()):
            return form(request, lang, error=STRINGS["expired"].get(lang, STRINGS["expired"]["en"]), status=403,
                        user=name)
        address = request.client.host if request.client else "?"
        wait = await run_in_threadpool(guard.wait, name, address, None)
        if wait > 0:
            response = form(request, lang, status=429, user=name,
                            error=STRINGS["wait"].get(lang, STRINGS["wait"]["en"]).format(n=int(wait) + 1))
            response.headers["Retry-After"] = str(int(wait) + 1)
            return response

        account, refusal = await run_in_threadpool(check_password, name, password)
        if account is None:
            status = {"wrong": 401, "no_group": 403, "directory_down": 503}[refusal]
            if refusal != "no_group":  # the password was wrong, or could not be checked: either slows guessing
                await run_in_threadpool(guard.failed, name, address, None)
            return form(request, lang, error=STRINGS[refusal].get(lang, STRINGS[refusal]["en"]), status=status,
                        user=name)
        await run_in_threadpool(guard.succeeded, name, address, None)
        session = await run_in_threadpool(sessions.create, account)
        log.info("centre: %r signed in (%s)", name, ", ".join(account.branches) or "every branch")
        response = RedirectResponse(f"/?lang={lang}", status_code=303)
        response.set_cookie(SESSION_COOKIE, session.token, httponly=True, samesite="strict", secure=secure(request),
                            path="/", max_age=12 * 3600)
        response.delete_cookie(LOGIN_COOKIE, path="/login")
        return response

    @app.post("/logout")
    async def logout(request: Request) -> Response:
        cookie = request.cookies.get(SESSION_COOKIE)
        session = await run_in_threadpool(sessions.get, cookie) if cookie else None
        if session is not None:
            data = await request.form()
            if hmac.compare_digest(str(data.get("csrf", "")).encode(), session.csrf.encode()):
                await run_in_threadpool(sessions.end, session.token)
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response


def configures_any(viewer: Viewer, config: CentreConfig) -> bool:
    return any(viewer.may_configure(b) for b in config.branches)


def sign_out_form(viewer: Viewer, lang: str) -> str:
    """The line on top of a page for a signed-in person: who, and a sign-out button (none for the token)."""
    if not viewer.csrf:
        return ""
    return (f'<form class="who" method="post" action="/logout"><span>{t("signed_in", lang, name=viewer.name)}</span>'
            f'<input type="hidden" name="csrf" value="{html.escape(viewer.csrf)}">'
            f'<button type="submit">{t("sign_out", lang)}</button></form>')
