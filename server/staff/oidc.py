"""Signing in with an OpenID Connect provider (``[staff.oidc]``): Entra ID, Keycloak, and others.

The authorization code flow with PKCE (RFC 7636, S256) through Authlib's OAuth 2 client;
the provider's endpoints from its discovery document (``/.well-known/openid-configuration``,
whose ``issuer`` must be the configured one, OpenID Connect Discovery §4.3); the ID token
checked with joserfc against the provider's JWKS: signature (asymmetric algorithms only),
``iss``, ``aud`` (and ``azp`` when there are several audiences), ``exp``/``iat``/``nbf`` with a
minute of leeway, and the ``nonce`` this hub sent for this very browser. The groups claim
then gives the role and desks, as the directory's groups do (``[staff.oidc.groups]``).

A refused sign-in raises :class:`OidcRefused` with a reason the staff page turns into plain
words; the technical detail goes to the hub's log only.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from server.config import check_number, check_unknown_keys
from server.staff.directory import Grant, parse_groups

log = logging.getLogger("vuoro.staff.oidc")

ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA")
LEEWAY_S = 60  # clocks of the hub and the provider may differ by this much
PENDING_S = 600.0  # a sign-in started on the staff page must come back within ten minutes

# Why a sign-in was refused (the staff page has words for each: server/staff/strings.py).
UNTRUSTED, EXPIRED, NO_GROUP, CANCELLED, UNREACHABLE = "untrusted", "expired", "no_group", "cancelled", "unreachable"


@dataclass(frozen=True)
class OidcSettings:
    issuer: str
    client_id: str
    groups: dict[str, Grant]
    client_secret: str = ""  # empty: a public client, PKCE alone
    scopes: tuple[str, ...] = ("openid", "profile", "email")
    username_claim: str = "preferred_username"  # Entra ID: the UPN; Keycloak: the user name
    groups_claim: str = "groups"  # Entra ID: group object ids (or "roles" for app roles); Keycloak: a groups mapper
    redirect_uri: str = ""  # empty: https://<the address the staff page was opened at>/staff/oidc/callback
    name: str = ""  # on the button: "Log in with <name>"; empty: "the municipality's login" in the page's language
    # "login": the provider asks for the password every time, so on a shared desk PC the next person is never
    # signed in as the last one (logging out of the staff page does not log out of the provider).
    # "select_account", or "" (the provider's own choice: single sign-on) for personal PCs.
    prompt: str = "login"
    ca_file: str | None = None
    timeout_s: float = 10.0


def parse_oidc(raw: Any, problems: list[str], *, path: str = "staff.oidc", branches: set[str] | None = None,
               callback: str = "/staff/oidc/callback") -> OidcSettings | None:
    """A hub's ``[staff.oidc]``; or the centre's (``branches``: its branch ids, whose groups name the branches
    their members see; ``callback``: the centre's own path for the provider's answer)."""
    if raw is None:
        return None
    if not isinstance(raw, dict):
        problems.append(f"{path}: expected a table")
        return None
    check_unknown_keys(raw, {"issuer", "client_id", "client_secret", "scopes", "username_claim", "groups_claim",
                             "groups", "redirect_uri", "name", "prompt", "ca_file", "timeout_s"}, path, problems)
    before = len(problems)

    def text(key: str, default: str | None = None) -> str:
        value = raw.get(key, default)
        if not isinstance(value, str) or (default is None and not value.strip()):
            problems.append(f"{path}.{key}: expected a text, got {value!r}")
            return ""
        return value.strip()

    issuer = text("issuer")
    if issuer and not issuer.startswith(("https://", "http://localhost", "http://127.0.0.1")):
        problems.append(f"{path}.issuer: expected an https:// address (the provider's issuer), got {issuer!r}")
    client_id = text("client_id")
    secret = text("client_secret", "")
    redirect = text("redirect_uri", "")
    if redirect and not redirect.endswith(callback):
        problems.append(f"{path}.redirect_uri: expected this server's address ending in {callback}, "
                        f"got {redirect!r}")
    scopes = raw.get("scopes", ["openid", "profile", "email"])
    if not isinstance(scopes, list) or "openid" not in scopes or not all(isinstance(s, str) for s in scopes):
        problems.append(f"{path}.scopes: expected a list of scopes with \"openid\" in it, got {scopes!r}")
        scopes = ["openid"]
    ca_file = raw.get("ca_file")
    if ca_file is not None and (not isinstance(ca_file, str) or not Path(ca_file).is_file()):
        problems.append(f"{path}.ca_file: expected the path of a CA certificate file, got {ca_file!r}")
    groups = parse_groups(raw.get("groups"), f"{path}.groups", problems, lower=False, branches=branches)
    timeout = check_number(raw, "timeout_s", path, 10.0, 1, 60, problems)
    prompt = raw.get("prompt", "login")
    if prompt not in ("login", "select_account", "consent", ""):
        problems.append(f'{path}.prompt: expected "login", "select_account", "consent" or "" (the provider\'s '
                        f"choice), got {prompt!r}")
    if len(problems) > before:
        return None
    return OidcSettings(issuer.rstrip("/"), client_id, groups, secret, tuple(scopes),
                        text("username_claim", "preferred_username"), text("groups_claim", "groups"), redirect,
                        text("name", ""), prompt, ca_file, timeout)


class OidcRefused(Exception):
    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}")
        self.reason, self.detail = reason, detail


@dataclass(frozen=True)
class Pending:
    """A sign-in on its way through the provider: bound to one browser by the state cookie."""

    state: str
    nonce: str
    verifier: str
    redirect_uri: str
    started: float = field(default_factory=time.monotonic)


@dataclass(frozen=True)
class Identity:
    name: str
    grant: Grant


class OidcClient:
    """Discovery, the code + PKCE exchange and the ID token's checks, for one provider. Blocking (requests):
    the staff page calls it from a thread."""

    def __init__(self, settings: OidcSettings):
        self.settings = settings
        self._metadata: dict[str, Any] | None = None
        self._keys: Any = None
        self._pending: dict[str, Pending] = {}
        self._lock = threading.Lock()

    # -- the provider's documents ----------------------------------------------------------

    def _get_json(self, url: str) -> dict[str, Any]:
        import requests

        try:
            response = requests.get(url, timeout=self.settings.timeout_s, verify=self.settings.ca_file or True)
            response.raise_for_status()
            data = response.json()
        except (requests.RequestException, ValueError) as exc:
            raise OidcRefused(UNREACHABLE, f"{url}: {exc}") from exc
        if not isinstance(data, dict):
            raise OidcRefused(UNREACHABLE, f"{url}: not a JSON object")
        return data

    def metadata(self) -> dict[str, Any]:
        if self._metadata is None:
            data = self._get_json(self.settings.issuer + "/.well-known/openid-configuration")
            if str(data.get("issuer", "")).rstrip("/") != self.settings.issuer:
                raise OidcRefused(UNTRUSTED, f"discovery names issuer {data.get('issuer')!r}")
            for key in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
                if not isinstance(data.get(key), str):
                    raise OidcRefused(UNREACHABLE, f"discovery has no {key}")
            self._metadata = data
        return self._metadata

    def keys(self, refresh: bool = False) -> Any:
        from joserfc.jwk import KeySet

        if self._keys is None or refresh:
            try:
                self._keys = KeySet.import_key_set(self._get_json(self.metadata()["jwks_uri"]))  # type: ignore[arg-type]
            except (ValueError, KeyError, TypeError) as exc:
                raise OidcRefused(UNREACHABLE, f"the JWKS cannot be read: {exc}") from exc
        return self._keys

    # -- the flow -----------------------------------------------------------------------------

    def _session(self, redirect_uri: str) -> Any:
        from authlib.integrations.requests_client import OAuth2Session

        session = OAuth2Session(self.settings.client_id, self.settings.client_secret or None,
                                token_endpoint_auth_method="client_secret_basic" if self.settings.client_secret
                                else "none", scope=" ".join(self.settings.scopes), redirect_uri=redirect_uri,
                                code_challenge_method="S256", default_timeout=self.settings.timeout_s)
        session.verify = self.settings.ca_file or True
        return session

    def begin(self, redirect_uri: str) -> tuple[Pending, str]:
        """A new sign-in: its state, nonce and PKCE verifier, and the provider's address to send the browser to."""
        pending = Pending(secrets.token_urlsafe(24), secrets.token_urlsafe(24), secrets.token_urlsafe(48),
                          redirect_uri)
        url, _ = self._session(redirect_uri).create_authorization_url(
            self.metadata()["authorization_endpoint"], state=pending.state, nonce=pending.nonce,
            code_verifier=pending.verifier, **({"prompt": self.settings.prompt} if self.settings.prompt else {}))
        self.keep(pending)
        return pending, url

    def keep(self, pending: Pending) -> None:
        """Hold a started sign-in until its callback (in memory here; the centre's workers share theirs in
        PostgreSQL: ``central/shared_state.py``)."""
        now = time.monotonic()
        with self._lock:
            self._pending = {k: p for k, p in self._pending.items() if now - p.started < PENDING_S}
            if len(self._pending) >= 1000:  # a flood of started sign-ins: the oldest go first
                for state in sorted(self._pending, key=lambda k: self._pending[k].started)[:500]:
                    del self._pending[state]
            self._pending[pending.state] = pending

    def take(self, state: str) -> Pending | None:
        """The pending sign-in of this state, once (a replayed callback finds nothing)."""
        with self._lock:
            pending = self._pending.pop(state, None)
        if pending is None or time.monotonic() - pending.started > PENDING_S:
            return None
        return pending

    def finish(self, pending: Pending, code: str) -> Identity:
        """Exchange the code (with the PKCE verifier), check the ID token, and map its groups."""
        from authlib.common.errors import AuthlibBaseError
        from requests import RequestException

        try:
            token = self._session(pending.redirect_uri).fetch_token(
                self.metadata()["token_endpoint"], grant_type="authorization_code", code=code,
                code_verifier=pending.verifier)
        except AuthlibBaseError as exc:
            raise OidcRefused(UNTRUSTED, f"the token endpoint refused the code: {exc}") from exc
        except RequestException as exc:
            raise OidcRefused(UNREACHABLE, f"token endpoint: {exc}") from exc
        id_token = token.get("id_token")
        if not isinstance(id_token, str):
            raise OidcRefused(UNTRUSTED, "the token answer has no id_token")
        claims = self.verify(id_token, pending.nonce)
        name = claims.get(self.settings.username_claim)
        if not isinstance(name, str) or not name.strip():
            raise OidcRefused(UNTRUSTED, f"the ID token has no {self.settings.username_claim!r} claim")
        groups = claims.get(self.settings.groups_claim) or []
        groups = [groups] if isinstance(groups, str) else groups
        have = {str(g) for g in groups} if isinstance(groups, list) else set()
        for group, grant in self.settings.groups.items():
            if group in have:
                return Identity(name.strip().lower()[:64], grant)
        if self.settings.groups_claim in (claims.get("_claim_names") or {}):
            # Entra ID leaves the groups out of a token for someone in more than 200 ("group overage").
            raise OidcRefused(NO_GROUP, f"{name!r}: the provider left the {self.settings.groups_claim!r} claim out "
                                        "(too many groups); use app roles: groups_claim = \"roles\" (docs/staff.md)")
        raise OidcRefused(NO_GROUP, f"{name!r} has none of the groups in [staff.oidc.groups] ({sorted(have)})")

    def verify(self, id_token: str, nonce: str) -> dict[str, Any]:
        """The ID token's claims, if its signature, issuer, audience, times and nonce are right (OIDC Core §3.1.3.7)."""
        from joserfc import jwt
        from joserfc.errors import BadSignatureError, ExpiredTokenError, InvalidKeyIdError, JoseError

        def decode(keys: Any) -> Any:
            return jwt.decode(id_token, keys, algorithms=list(ALGORITHMS))

        try:
            try:
                token = decode(self.keys())
            except (BadSignatureError, InvalidKeyIdError, ValueError, KeyError):
                # The provider may have rotated its keys since they were read: read them once more. (Only a
                # callback with this browser's pending state gets here, so this cannot be used to flood it.)
                token = decode(self.keys(refresh=True))
            jwt.JWTClaimsRegistry(
                leeway=LEEWAY_S, iss={"essential": True, "value": self.settings.issuer},
                aud={"essential": True, "value": self.settings.client_id},
                sub={"essential": True}, exp={"essential": True}, iat={"essential": True},
                nonce={"essential": True, "value": nonce},
            ).validate(token.claims)
        except ExpiredTokenError as exc:
            raise OidcRefused(EXPIRED, f"ID token: {exc}") from exc
        except (JoseError, ValueError, KeyError) as exc:
            raise OidcRefused(UNTRUSTED, f"ID token: {type(exc).__name__}: {exc}") from exc
        claims: dict[str, Any] = dict(token.claims)
        audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
        if len(audiences) > 1 and claims.get("azp") != self.settings.client_id:
            raise OidcRefused(UNTRUSTED, f"ID token for several audiences, azp {claims.get('azp')!r}")
        return claims

