"""The hub's front door: the start page ``/``, ``/favicon.ico``, and the API documentation at
``/api/v1/docs`` served from the installed package, so all three work on a site without internet.

Swagger UI's files come from ``swagger-ui-bundle-v2`` (pinned in constraints.txt), never a CDN; the docs
page around them is ours (``web/api-docs.html``): a language, one ``h1``, and a few colour fixes that
Swagger UI's own stylesheet needs to pass the WCAG 2.1 AA check (docs/accessibility.md).
"""

from __future__ import annotations

import html
from pathlib import Path
from string import Template

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, Response

from server.config import SiteConfig
from server.errors import ApiError
from server.pages import SECURITY_HEADERS, STATIC_TYPES
from server.staff.strings import LANG_COOKIE, START_MSGIDS, chosen_language, language_names, strings
from vuoro import refusals

WEB_DIR = Path(__file__).resolve().parent / "web"
DOCS_URL = "/api/v1/docs"
SWAGGER_FILES = ("swagger-ui-bundle.js", "swagger-ui.css")
# Swagger UI runs its bundle from our own files; it needs 'unsafe-eval' for nothing, but builds styles inline.
DOCS_HEADERS = {**SECURITY_HEADERS,
                "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
                                           "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; "
                                           "base-uri 'none'; form-action 'self'"}
PAGES = (  # (address, title, what it is) on the start page, in this order
    ("/staff/", "Staff page", "Call the next visitor, see who is waiting, today's bookings and the devices."),
    ("/signage/", "Screen in the hall", "The numbers being called and the waiting lines, for a browser or signage "
                                        "player."),
    ("/stats/", "Statistics", "Waiting times, visitors served and feedback; CSV for the municipality."),
    ("/book/", "Online booking", "Citizens book, move and cancel a time themselves; link it from the library's "
                                 "web site."),
    ("/feedback/", "Feedback tablet", "Five faces by the exit; set up once per tablet with a kiosk token "
                                      "(docs/statistics.md)."),
    (DOCS_URL, "API documentation", "Every endpoint of the hub's HTTP API, to try out (works without internet)."),
)


def swagger_dir() -> Path:
    from swagger_ui_bundle import swagger_ui_path

    return Path(str(swagger_ui_path))


def add_front_pages(app: FastAPI, config: SiteConfig, *, openapi_url: str) -> None:
    """``/``, ``/favicon.ico``, ``/api/v1/docs`` and its files (the app is made with ``docs_url=None``); the
    start page lists the pages this app serves: add this after the plugins and the signage files."""
    start = Template((WEB_DIR / "start.html").read_text(encoding="utf-8"))
    docs = Template((WEB_DIR / "api-docs.html").read_text(encoding="utf-8")).substitute(
        title=html.escape(f"{app.title} – API"), heading=html.escape(f"{app.title} {app.version}: HTTP API"),
        description=html.escape(app.description), site=html.escape(config.name), openapi_url=openapi_url)
    # Where each file is, not its bytes: Swagger UI's bundle is 1.7 MB that every idle hub held in memory for the
    # few who open the docs. Read on request (the page cache keeps it warm for them).
    files = {name: swagger_dir() / name for name in SWAGGER_FILES}
    files |= {p.name: p for p in WEB_DIR.iterdir() if p.suffix in (".css", ".js")}
    favicon = (WEB_DIR / "favicon.ico").read_bytes()
    served = {getattr(route, "path", "") for route in app.routes} | {DOCS_URL}  # plugins installed before this
    pages = [page for page in PAGES if page[0] in served or page[0].rstrip("/") in served]

    @app.get("/", include_in_schema=False)
    async def start_page(request: Request) -> Response:
        lang = chosen_language(request.query_params.get("lang"), request.cookies.get(LANG_COOKIE), config.languages)
        words = strings(lang, START_MSGIDS)
        items = "\n".join(
            f'  <li><a href="{href}">{html.escape(words[title])}</a><p>{html.escape(words[what])}</p></li>'
            for href, title, what in pages)
        current = ' aria-current="true"'
        links = " ".join(
            f'<a href="?lang={code}" lang="{code}"{current if code == lang else ""}>{html.escape(name)}</a>'
            for code, name in language_names(config.languages).items())
        body = start.substitute(lang=lang, title=html.escape(f"Vuoro – {config.name}"),
                                heading=html.escape(words["Vuoro at {site}"].format(site=config.name)),
                                intro=html.escape(words["The queue system's pages on this hub."]), items=items,
                                language=html.escape(words["Language"]), languages=links)
        response = Response(body, media_type="text/html; charset=utf-8", headers=SECURITY_HEADERS)
        if request.query_params.get("lang") == lang:
            response.set_cookie(LANG_COOKIE, lang, max_age=365 * 86400, httponly=True, samesite="strict", path="/")
        return response

    @app.get("/favicon.ico", include_in_schema=False)
    async def favicon_ico() -> Response:
        return Response(favicon, media_type="image/vnd.microsoft.icon", headers={"Cache-Control": "max-age=86400"})

    @app.get(DOCS_URL, include_in_schema=False)
    async def api_docs() -> Response:
        return Response(docs, media_type="text/html; charset=utf-8", headers=DOCS_HEADERS)

    @app.get(f"{DOCS_URL}/static/{{name}}", include_in_schema=False)
    async def api_docs_file(name: str) -> Response:
        if name not in files:
            raise ApiError(404, refusals.HTTP_NOT_FOUND, "There is nothing at this address.")
        path = files[name]
        return FileResponse(path, media_type=STATIC_TYPES[path.suffix], headers={"Cache-Control": "max-age=3600"})
