"""The plugins' own pages (statistics, the feedback tablet): files read once at start, served with strict headers.

``add_pages(app, "/stats", folder, "stats.html")`` answers ``/stats`` and ``/stats/`` with the index page and
``/stats/<file>`` with the folder's other files; anything else under the prefix is 404. The pages carry no
inline script (the CSP forbids it) and fetch their figures from the API with the visitor's own login.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import Response

from server.errors import ApiError
from vuoro import refusals

STATIC_TYPES = {".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8",
                ".html": "text/html; charset=utf-8", ".svg": "image/svg+xml"}
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                               "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def add_pages(app: FastAPI, prefix: str, folder: Path, index: str,
              render_index: Callable[[Request], Response] | None = None) -> None:
    """``render_index``: the index page made per request (the statistics page, in the visitor's language)."""
    files = {p.name: (p.read_bytes(), STATIC_TYPES[p.suffix]) for p in folder.iterdir()
             if p.suffix in STATIC_TYPES} if folder.is_dir() else {}

    def page(name: str) -> Response:
        if name not in files:
            raise ApiError(404, refusals.HTTP_NOT_FOUND, "There is nothing at this address.")
        content, media = files[name]
        return Response(content, media_type=media, headers=SECURITY_HEADERS)

    @app.get(prefix, include_in_schema=False)
    @app.get(f"{prefix}/", include_in_schema=False)
    async def index_page(request: Request) -> Response:
        return render_index(request) if render_index else page(index)

    @app.get(f"{prefix}/{{name}}", include_in_schema=False)
    async def static_file(name: str) -> Response:
        return page(name)
