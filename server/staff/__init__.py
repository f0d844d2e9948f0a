"""The staff page, served by the hub: log in, choose a desk, call and serve visitors.

A plugin (``server/hookspecs.py``): :func:`install` adds the ``/staff`` pages and
answers the hub's ``authenticate`` hook with the session login (``SessionLogin``). The page
itself changes nothing on its own: its buttons call the ordinary
``/api/v1/counters/{counter}/...`` endpoints with the session cookie and the
session's CSRF token in an ``X-CSRF-Token`` header, so the queue's rules stay
in ``server/engine.py`` alone.

Security, in short (details in ``docs/staff.md``):
- passwords are argon2id hashes in the site config (``[staff.users.<name>]``);
- the session cookie is random, HttpOnly, SameSite=Strict, Secure over https,
  and maps to a server-side session that holds its CSRF token;
- every state change made with the cookie must carry that token, or it is
  refused with 403; the login form has its own token (double-submit cookie);
- wrong passwords slow down whoever sends them with waits that double (429 with
  ``Retry-After``), counted per user name and address; a browser where the user
  has logged in before (a signed device cookie) is counted on its own, so someone
  else's guessing never locks the staff member at their desk out.
"""

from __future__ import annotations

import asyncio
import hmac
import html
import json
import logging
import secrets
from datetime import datetime
from pathlib import Path
from string import Template
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from server.auth import Principal
from server.config import ConfigError, SiteConfig
from server.errors import ApiError
from server.hookspecs import hookimpl
from server.staff.accounts import (
    KnownDevices,
    LoginGuard,
    Session,
    Sessions,
    StaffSettings,
    StaffUser,
    parse_staff,
)
from server.staff.oidc import CANCELLED, EXPIRED, NO_GROUP, UNREACHABLE, OidcClient, OidcRefused
from server.staff.signin import DOWN, PasswordSignIn
from server.staff.strings import language_names, strings
from vuoro import refusals

if TYPE_CHECKING:
    from server.hub import Hub

log = logging.getLogger("vuoro.staff")

__all__ = ["install", "check_config", "SessionLogin", "SESSION_COOKIE", "CSRF_HEADER"]

SESSION_COOKIE = "vuoro_staff"
LOGIN_COOKIE = "vuoro_staff_login"
LANG_COOKIE = "vuoro_staff_lang"
OIDC_COOKIE = "vuoro_staff_oidc"  # binds a sign-in through the provider to the browser that started it
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
WEB_DIR = Path(__file__).resolve().parent / "web"
STATIC_TYPES = {".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8",
                ".svg": "image/svg+xml"}
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                               "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def _headers(extra: dict[str, str] | None = None) -> dict[str, str]:
    return {**SECURITY_HEADERS, **(extra or {})}


class SessionLogin:
    """The staff page's login as the API sees it (the ``authenticate`` hook): the session cookie, and on
    every change the session's CSRF token."""

    def __init__(self, sessions: Sessions):
        self.sessions = sessions

    @hookimpl
    def authenticate(self, request: Request) -> Principal | None:
        session = self.sessions.get(request.cookies.get(SESSION_COOKIE))
        if session is None:
            return None
        if request.method not in SAFE_METHODS:
            sent = request.headers.get(CSRF_HEADER, "")
            if not sent or not hmac.compare_digest(sent.encode(), session.csrf.encode()):
                raise ApiError(403, refusals.CSRF, "This change came without the page's security token (X-CSRF-Token). "
                               "Reload the staff page and try again.", CSRF_HEADER)
        return Principal(session.user, session.role, session.desks)


# Why a sign-in was refused → the words the login page shows (msgids in server/staff/strings.py).
REFUSALS = {
    NO_GROUP: "You are not in a staff group. Ask your IT department for access to the queue system.",
    DOWN: "The municipality's login cannot be reached right now. Try again in a moment, or use a local account.",
    UNREACHABLE: "The municipality's login cannot be reached right now. Try again in a moment, or use a local "
                 "account.",
    "untrusted": "The municipality's login sent an answer the hub cannot trust, so you were not signed in. "
                 "Try again, and tell your IT department if it happens again.",
    EXPIRED: "The sign-in took too long and has expired. Try again.",
    CANCELLED: "The sign-in was cancelled. Try again when you are ready.",
}


@hookimpl
def check_config(config: SiteConfig) -> None:
    settings = parse_staff(config.raw.get("staff", {}), str(config.path))
    problems = []  # the desks a directory group names must be counters of this site
    for section, sso in (("ldap", settings.ldap), ("oidc", settings.oidc)):
        for group, grant in (sso.groups if sso else {}).items():
            for desk in grant.desks:
                if desk not in config.counters:
                    problems.append(f'staff.{section}.groups."{group}".desks: no counter {desk!r} in [counters] '
                                    f"(there are: {', '.join(config.counters)})")
    if problems:
        raise ConfigError(problems, str(config.path))


@hookimpl
def install(app: FastAPI, hub: Hub) -> None:
    """Add the staff routes to ``app``, and the session login to the hub's ``authenticate`` hook."""
    config = hub.config
    settings: StaffSettings = parse_staff(config.raw.get("staff"), str(config.path))
    sessions = Sessions(settings.session_hours * 3600)
    if taken := sessions.take_over(hub.store.path.parent):  # a restart in place on the centre's config
        log.info("%d staff sessions carried over the restart", taken)
    hub.plugins.register(SessionLogin(sessions))
    guard = LoginGuard(settings.login_attempts, settings.login_max_wait_s)
    known = KnownDevices.in_folder(hub.store.path.parent)
    passwords = PasswordSignIn(settings, hub.store.path.parent)
    ldap = settings.ldap
    if ldap and ldap.url.startswith("ldap://") and not ldap.start_tls \
            and not ldap.url.startswith(("ldap://127.", "ldap://localhost", "ldap://[::1]")):
        log.warning("[staff.ldap] url %s without start_tls: staff passwords cross the network unencrypted. "
                    "Use ldaps:// or start_tls = true (docs/staff.md).", ldap.url)
    oidc = OidcClient(settings.oidc) if settings.oidc else None
    app.state.staff_sessions = sessions
    app.state.staff_settings = settings
    login_page = Template((WEB_DIR / "login.html").read_text(encoding="utf-8"))
    desk_page = Template((WEB_DIR / "staff.html").read_text(encoding="utf-8"))
    static = {p.name: (p.read_bytes(), STATIC_TYPES[p.suffix]) for p in WEB_DIR.iterdir()
              if p.suffix in STATIC_TYPES}

    # -- helpers --------------------------------------------------------------------------

    def secure(request: Request) -> bool:
        return settings.secure_cookie if settings.secure_cookie is not None else request.url.scheme == "https"

    def language(request: Request) -> str:
        asked = request.query_params.get("lang") or request.cookies.get(LANG_COOKIE) or ""
        return asked if asked in config.languages else config.default_language

    def remember_language(request: Request, response: Response, lang: str) -> None:
        if request.query_params.get("lang") == lang:
            response.set_cookie(LANG_COOKIE, lang, max_age=365 * 86400, httponly=True, samesite="strict",
                                secure=secure(request), path="/")  # the stats and start pages follow it

    def lang_links(current: str) -> str:
        marked = ' aria-current="true"'
        return " ".join(  # the login page's own address: the page is also shown at /staff/oidc/callback
            f'<a href="/staff/login?lang={code}"{marked if code == current else ""} lang="{code}">'
            f'{html.escape(name)}</a>'
            for code, name in language_names(config.languages).items())

    def render_login(request: Request, *, error: str = "", status: int = 200, user: str = "") -> Response:
        lang = language(request)
        words = strings(lang)
        token = request.cookies.get(LOGIN_COOKIE, "")
        if len(token) != 32 or not token.replace("-", "").replace("_", "").isalnum():
            token = secrets.token_urlsafe(24)  # 32 characters
        body = login_page.substitute(
            lang=lang, title=html.escape(f"{words['Staff']} – {config.name}"), site=html.escape(config.name),
            heading=html.escape(words["Log in"]), user_label=html.escape(words["User name"]),
            password_label=html.escape(words["Password"]), button=html.escape(words["Log in"]),
            error=f'<p class="error" role="alert">{html.escape(error)}</p>' if error else "",
            csrf=token, user=html.escape(user), languages=lang_links(lang), language=html.escape(words["Language"]),
            single_sign_on=single_sign_on(words),
        )
        response = Response(body, status_code=status, media_type="text/html; charset=utf-8", headers=_headers())
        response.set_cookie(LOGIN_COOKIE, token, max_age=3600, httponly=True, samesite="strict",
                            secure=secure(request), path="/staff/login")
        remember_language(request, response, lang)
        return response

    def single_sign_on(words: dict[str, str]) -> str:
        """The button to the OpenID provider, above the password form, when ``[staff.oidc]`` is set."""
        if settings.oidc is None:
            return ""
        label = (words["Log in with {name}"].format(name=settings.oidc.name) if settings.oidc.name
                 else words["Log in with the municipality's login"])
        return (f'<a class="button primary sso" href="/staff/oidc/start">{html.escape(label)}</a>'
                f'<p class="or">{html.escape(words["Or with a user name and password:"])}</p>')

    def start_session(request: Request, user: StaffUser, response: Response) -> Response:
        session = sessions.create(user)
        log.info("staff %r signed in (%s, %s%s)", user.name, user.via, user.role,
                 f", desks {', '.join(user.desks)}" if user.desks else "")
        response.set_cookie(SESSION_COOKIE, session.token, httponly=True, samesite="strict", secure=secure(request),
                            path="/", max_age=int(settings.session_hours * 3600))
        return response

    def current(request: Request) -> Session | None:
        return sessions.get(request.cookies.get(SESSION_COOKIE))

    def bookable() -> list[dict[str, Any]]:
        """The services staff can book a caller into (the bookings plugin's, when it is installed)."""
        book = getattr(app.state, "bookings", None)
        if book is None:
            return []
        return [{"id": sid, "slot_min": r.slot_min, "max_slots": r.max_slots, "days_ahead": r.days_ahead}
                for sid, r in book.settings.services.items() if sid in config.services]

    def need_session(request: Request) -> Session:
        session = current(request)
        if session is None:
            raise ApiError(401, refusals.UNAUTHORIZED, "Log in on the staff page first.")
        return session

    # -- pages --------------------------------------------------------------------------

    @app.get("/staff", include_in_schema=False)
    async def staff_root() -> RedirectResponse:
        return RedirectResponse("/staff/", status_code=307)

    @app.get("/staff/", include_in_schema=False)
    async def desk(request: Request) -> Response:
        session = current(request)
        if session is None:
            return RedirectResponse("/staff/login", status_code=303, headers=_headers())
        lang = language(request)
        words = strings(lang)
        site = hub.view.site
        boot = {
            "user": session.user, "role": session.role, "csrf": session.csrf, "language": lang,
            "languages": language_names(config.languages), "strings": words,
            "site": config.name, "day": site.get("hours", {}).get("day"),
            "services": [{"id": s.id, "letter": s.letter, "names": dict(s.names)} for s in config.services.values()],
            "counters": [{"id": c.id, "name": c.name, "services": list(c.services)} for c in config.counters.values()
                         if not session.desks or c.id in session.desks],  # a directory group may name the desks
            "bookable": bookable(),
            # server/bookings/notices.py: the site sends booking confirmations and reminders ([notify])
            "booking_notices": getattr(request.app.state, "booking_notices", None) is not None,
        }
        # JSON inside <script type="application/json">: never executed (CSP allows no inline
        # script); "<" is escaped so no value can close the element.
        data = json.dumps(boot, ensure_ascii=False).replace("<", "\\u003c")
        body = desk_page.substitute(lang=lang, title=html.escape(f"{words['Staff']} – {config.name}"), boot=data)
        response = Response(body, media_type="text/html; charset=utf-8", headers=_headers())
        remember_language(request, response, lang)
        return response

    @app.get("/staff/login", include_in_schema=False)
    async def login_form(request: Request) -> Response:
        if current(request) is not None:
            return RedirectResponse("/staff/", status_code=303, headers=_headers())
        return render_login(request)

    @app.post("/staff/login", include_in_schema=False)
    async def login(request: Request) -> Response:
        words = strings(language(request))
        form = await request.form()
        name = str(form.get("username", "")).strip().lower()[:64]  # directory names can be longer than ours
        password = str(form.get("password", ""))[:1024]
        sent = str(form.get("csrf", ""))
        expected = request.cookies.get(LOGIN_COOKIE, "")
        if not sent or not expected or not hmac.compare_digest(sent.encode(), expected.encode()):
            return render_login(request, error=words["The login form had expired. Try again."], status=403,
                                user=name)
        address = request.client.host if request.client else "?"
        device_cookie = known.cookie_name(name)
        device = known.device(name, request.cookies.get(device_cookie)) if device_cookie else None
        wait = guard.wait(name, address, device)
        if wait > 0:
            seconds = int(wait) + 1
            error = (words["Too many attempts. Wait {sec} seconds and try again."].format(sec=seconds) if seconds < 60
                     else words["Too many attempts. Wait {min} minutes and try again."].format(min=round(wait / 60)))
            response = render_login(request, status=429, user=name, error=error)
            response.headers["Retry-After"] = str(seconds)
            return response
        # argon2 is slow on purpose; the directory answers over the network
        outcome = await run_in_threadpool(passwords.check, name, password)
        user = outcome.user
        if user is None:
            if outcome.refusal == NO_GROUP:  # the password was right: nothing to slow down
                return render_login(request, error=words[REFUSALS[NO_GROUP]], status=403, user=name)
            if outcome.refusal == DOWN:  # nothing was checked (no offline copy for this name): nothing to slow down
                return render_login(request, error=words[REFUSALS[DOWN]], status=503, user=name)
            guard.failed(name, address, device)
            return render_login(request, error=words["Wrong user name or password."], status=401, user=name)
        guard.succeeded(name, address, device)
        response = start_session(request, user, RedirectResponse("/staff/", status_code=303, headers=_headers()))
        response.delete_cookie(LOGIN_COOKIE, path="/staff/login")
        if device_cookie:  # this browser is now a known device for this user: someone else's guessing won't stop it
            response.set_cookie(device_cookie, request.cookies[device_cookie] if device else known.issue(user.name),
                                max_age=KnownDevices.DAYS * 86400, httponly=True, samesite="strict",
                                secure=secure(request), path="/staff/login")
        return response

    # -- signing in through the OpenID Connect provider ([staff.oidc]) ---------------------------

    def redirect_uri(request: Request) -> str:
        assert settings.oidc is not None
        return settings.oidc.redirect_uri or f"{request.url.scheme}://{request.url.netloc}/staff/oidc/callback"

    @app.get("/staff/oidc/start", include_in_schema=False)
    async def oidc_start(request: Request) -> Response:
        if oidc is None:
            raise ApiError(404, refusals.NOT_FOUND, "There is nothing at this address.")
        try:
            pending, url = await run_in_threadpool(oidc.begin, redirect_uri(request))
        except OidcRefused as refused:
            log.warning("staff sign-in through %s: %s", oidc.settings.issuer, refused)
            return render_login(request, error=strings(language(request))[REFUSALS[refused.reason]], status=503)
        response = RedirectResponse(url, status_code=303, headers=_headers())
        # Lax, not Strict: the provider sends the browser back with a cross-site top-level GET.
        response.set_cookie(OIDC_COOKIE, pending.state, max_age=600, httponly=True, samesite="lax",
                            secure=secure(request), path="/staff/oidc")
        return response

    @app.get("/staff/oidc/callback", include_in_schema=False)
    async def oidc_callback(request: Request) -> Response:
        if oidc is None:
            raise ApiError(404, refusals.NOT_FOUND, "There is nothing at this address.")
        words = strings(language(request))
        state = request.query_params.get("state", "")
        cookie = request.cookies.get(OIDC_COOKIE, "")
        pending = oidc.take(state) if state and cookie and hmac.compare_digest(state.encode(), cookie.encode()) \
            else None
        try:
            if request.query_params.get("error"):  # the person cancelled, or the provider said no
                raise OidcRefused(CANCELLED, str(request.query_params.get("error"))[:200])
            if pending is None:
                raise OidcRefused(EXPIRED, "no sign-in of this browser is waiting for this state")
            identity = await run_in_threadpool(oidc.finish, pending, request.query_params.get("code", ""))
        except OidcRefused as refused:
            log.warning("staff sign-in through %s refused: %s", oidc.settings.issuer, refused)
            status = 403 if refused.reason == NO_GROUP else 503 if refused.reason == UNREACHABLE else 401
            response = render_login(request, error=words[REFUSALS[refused.reason]], status=status)
            response.delete_cookie(OIDC_COOKIE, path="/staff/oidc")
            return response
        user = StaffUser(identity.name, identity.grant.role, "", identity.grant.desks, "oidc")
        # The session cookie is SameSite=Strict, and this request came from the provider's site: a redirect
        # from here would not carry it. A page of our own that moves on is a same-site navigation, which does.
        body = (f'<!doctype html><html lang="{language(request)}"><head><meta charset="utf-8">'
                f'<meta http-equiv="refresh" content="0;url=/staff/"><title>{html.escape(words["Staff"])}</title>'
                f'<link rel="stylesheet" href="/staff/static/staff.css"></head><body class="login-body">'
                f'<main class="login-card"><h1>{html.escape(words["Staff"])}</h1>'
                f'<p><a href="/staff/">{html.escape(words["Continue to the staff page"])}</a></p></main></body></html>')
        response = start_session(request, user, Response(body, media_type="text/html; charset=utf-8",
                                                         headers=_headers()))
        response.delete_cookie(OIDC_COOKIE, path="/staff/oidc")
        return response

    @app.post("/staff/logout", include_in_schema=False)
    async def logout(request: Request) -> Response:
        session = current(request)
        if session is not None:
            form = await request.form()
            sent = request.headers.get(CSRF_HEADER) or str(form.get("csrf", ""))
            if not sent or not hmac.compare_digest(sent.encode(), session.csrf.encode()):
                raise ApiError(403, refusals.CSRF, "Logging out needs the page's security token.", CSRF_HEADER)
            sessions.end(session.token)
        response = RedirectResponse("/staff/login", status_code=303, headers=_headers())
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response

    @app.get("/staff/static/{name}", include_in_schema=False)
    async def static_file(name: str) -> Response:
        if name not in static:
            raise ApiError(404, refusals.NOT_FOUND, "There is nothing at this address.")
        content, media_type = static[name]
        return Response(content, media_type=media_type, headers=_headers({"Cache-Control": "no-cache"}))

    # -- small JSON endpoints for the page ----------------------------------------------------

    @app.get("/staff/api/me", tags=["staff"])
    async def me(request: Request) -> JSONResponse:
        """Who is logged in, and the CSRF token to send as ``X-CSRF-Token`` with every change."""
        session = need_session(request)
        return JSONResponse({"user": session.user, "role": session.role, "csrf": session.csrf},
                            headers=_headers())

    @app.get("/staff/api/waiting", tags=["staff"])
    async def waiting(request: Request) -> JSONResponse:
        """The waiting line of every service, in order of arrival. Ticket numbers only: nothing personal."""
        need_session(request)

        def read(engine: Any, now: datetime) -> dict[str, Any]:
            lines = {}
            for sid in config.services:
                tickets = sorted(engine.waiting(sid), key=lambda t: t.queued_at)
                lines[sid] = [{
                    "ticket": t.label,
                    "origin": t.origin,
                    "waited_min": max(0, int((now - t.queued_at).total_seconds() // 60)),
                    "queued_at": engine.local(t.queued_at).isoformat(timespec="seconds"),
                    "due_at": engine.local(t.due_at).isoformat(timespec="minutes") if t.due_at else None,
                    "transferred": t.transfers > 0,
                } for t in tickets]
            return {"services": lines}

        body = await asyncio.wrap_future(hub.submit(read, read_only=True))
        return JSONResponse(body, headers=_headers())

