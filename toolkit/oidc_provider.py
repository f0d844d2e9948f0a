"""A small OpenID Connect provider for the staff-login tests, on joserfc (keys, JWS) and the standard library.

It follows what the hub relies on from Entra ID or Keycloak, and nothing more:
discovery (``/.well-known/openid-configuration``), the JWKS, an authorization endpoint
with a login form (authorization code flow, ``S256`` PKCE required, ``state`` and
``nonce`` passed through), a token endpoint that checks the client's secret (HTTP
Basic), the redirect URI and the code verifier, and codes that work once within a minute.
ID tokens are RS256, with ``iss``, ``sub``, ``aud``, ``exp``, ``iat``, ``nonce``,
``preferred_username`` and ``groups``.

``tamper`` makes the next tokens wrong in one way, as a broken or hostile provider would:
``"audience"``, ``"expired"``, ``"signature"`` (signed by a key not in the JWKS, under the
JWKS key's id), ``"nonce"``, ``"issuer"``. Served on ``localhost`` (a different site than
the hub's 127.0.0.1 for the browser), in a thread.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from joserfc import jwt
from joserfc.jwk import RSAKey


@dataclass(frozen=True)
class Account:
    name: str
    password: str
    groups: tuple[str, ...] = ()


@dataclass
class Provider:
    client_id: str
    client_secret: str
    accounts: list[Account]
    tamper: str = ""  # see the module's docstring
    key: RSAKey = field(default_factory=lambda: RSAKey.generate_key(2048, parameters={"kid": "k1", "use": "sig"}))
    codes: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[str] = field(default_factory=list)  # paths asked for, in order
    _server: ThreadingHTTPServer | None = None

    @property
    def issuer(self) -> str:
        assert self._server is not None
        return f"http://localhost:{self._server.server_address[1]}"

    def start(self) -> Provider:
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                provider.handle(self, "GET")

            def do_POST(self) -> None:  # noqa: N802
                provider.handle(self, "POST")

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()

    # -- requests -------------------------------------------------------------------------

    def handle(self, request: BaseHTTPRequestHandler, method: str) -> None:
        url = urlsplit(request.path)
        self.requests.append(url.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        form: dict[str, str] = {}
        if method == "POST":
            length = int(request.headers.get("Content-Length") or 0)
            form = {k: v[0] for k, v in parse_qs(request.rfile.read(length).decode()).items()}
        if url.path == "/.well-known/openid-configuration":
            return self._json(request, 200, self.discovery())
        if url.path == "/jwks":
            return self._json(request, 200, {"keys": [self.key.as_dict(private=False)]})
        if url.path == "/authorize":
            return self.authorize(request, {**query, **form}, method)
        if url.path == "/token" and method == "POST":
            return self.token(request, form)
        return self._json(request, 404, {"error": "not_found"})

    def discovery(self) -> dict[str, Any]:
        return {"issuer": self.issuer, "authorization_endpoint": self.issuer + "/authorize",
                "token_endpoint": self.issuer + "/token", "jwks_uri": self.issuer + "/jwks",
                "response_types_supported": ["code"], "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"], "code_challenge_methods_supported": ["S256"],
                "token_endpoint_auth_methods_supported": ["client_secret_basic"],
                "scopes_supported": ["openid", "profile", "email"]}

    def authorize(self, request: BaseHTTPRequestHandler, params: dict[str, str], method: str) -> None:
        if params.get("client_id") != self.client_id or params.get("response_type") != "code" \
                or "openid" not in params.get("scope", "").split() or params.get("code_challenge_method") != "S256" \
                or not params.get("code_challenge") or not params.get("redirect_uri"):
            return self._json(request, 400, {"error": "invalid_request", "got": params})
        account = next((a for a in self.accounts if a.name == params.get("username")
                        and a.password == params.get("password")), None) if method == "POST" else None
        if account is None:
            hidden = "".join(f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
                             for k, v in params.items() if k not in ("username", "password"))
            wrong = '<p role="alert">Wrong user name or password.</p>' if method == "POST" else ""
            page = (f'<!doctype html><html lang="en"><title>Test Kommune login</title><main><h1>Test Kommune</h1>'
                    f'{wrong}<form method="post" action="/authorize">{hidden}'
                    f'<label for="u">User name</label><input id="u" name="username">'
                    f'<label for="p">Password</label><input id="p" name="password" type="password">'
                    f'<button type="submit">Sign in</button></form></main></html>')
            return self._send(request, 200, "text/html; charset=utf-8", page.encode())
        code = secrets.token_urlsafe(24)
        self.codes[code] = {"account": account, "client_id": params["client_id"],
                            "redirect_uri": params["redirect_uri"], "challenge": params["code_challenge"],
                            "nonce": params.get("nonce"), "at": time.time()}
        target = params["redirect_uri"] + "?" + urlencode({"code": code, "state": params.get("state", "")})
        request.send_response(302)
        request.send_header("Location", target)
        request.send_header("Content-Length", "0")
        request.end_headers()

    def token(self, request: BaseHTTPRequestHandler, form: dict[str, str]) -> None:
        scheme, _, encoded = (request.headers.get("Authorization") or "").partition(" ")
        try:
            client, _, secret = base64.b64decode(encoded).decode().partition(":")
        except ValueError:
            client = secret = ""
        if scheme != "Basic" or client != self.client_id or secret != self.client_secret:
            return self._json(request, 401, {"error": "invalid_client"})
        grant = self.codes.pop(form.get("code", ""), None)  # a code works once
        verifier = form.get("code_verifier", "")
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
        if grant is None or time.time() - grant["at"] > 60 or form.get("grant_type") != "authorization_code" \
                or form.get("redirect_uri") != grant["redirect_uri"] or challenge != grant["challenge"]:
            return self._json(request, 400, {"error": "invalid_grant"})
        return self._json(request, 200, {"access_token": secrets.token_urlsafe(24), "token_type": "Bearer",
                                         "expires_in": 300, "id_token": self.id_token(grant)})

    def id_token(self, grant: dict[str, Any]) -> str:
        account: Account = grant["account"]
        now = int(time.time())
        claims = {"iss": self.issuer, "sub": f"sub-{account.name}", "aud": self.client_id, "iat": now,
                  "exp": now + 300, "nonce": grant["nonce"], "preferred_username": account.name,
                  "groups": list(account.groups)}
        key = self.key
        if self.tamper == "audience":
            claims["aud"] = "some-other-app"
        elif self.tamper == "expired":
            claims["iat"], claims["exp"] = now - 3600, now - 600
        elif self.tamper == "nonce":
            claims["nonce"] = "not-the-nonce-the-hub-sent"
        elif self.tamper == "issuer":
            claims["iss"] = "https://login.example.invalid"
        elif self.tamper == "signature":
            key = RSAKey.generate_key(2048, parameters={"kid": self.key.kid})
        return jwt.encode({"alg": "RS256", "kid": self.key.kid, "typ": "JWT"}, claims, key)

    # -- answers ------------------------------------------------------------------------------

    def _json(self, request: BaseHTTPRequestHandler, status: int, body: dict[str, Any]) -> None:
        self._send(request, status, "application/json", json.dumps(body).encode())

    @staticmethod
    def _send(request: BaseHTTPRequestHandler, status: int, media_type: str, body: bytes) -> None:
        request.send_response(status)
        request.send_header("Content-Type", media_type)
        request.send_header("Content-Length", str(len(body)))
        request.send_header("Cache-Control", "no-store")
        request.end_headers()
        request.wfile.write(body)
