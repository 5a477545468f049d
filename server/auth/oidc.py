"""Sign-in for the node's pages: OpenID Connect authorization code flow with
PKCE (RFC 7636, S256) against the configured issuer.

``start`` builds the authorization request (a fresh ``state`` and code
verifier, which the pages keep in a signed cookie) and ``finish`` exchanges
the code and verifier at the issuer's token endpoint for an access token. The
token is then validated exactly like any bearer token
(``server.auth.tokens.caller_from_request``): signing in grants nothing a
token would not. The issuer is ``GENOMEPORT_OIDC_ISSUER``, or the first of
``GENOMEPORT_AUTH_ISSUERS``; its endpoints come from its discovery document
(``https``, or ``http`` to a loopback address, as every fetch of
``server.auth.fetch``). The node is a public client (no secret): PKCE binds
the code to this sign-in. The token's audience is asked for with
``resource`` (RFC 8707): the node's own audience.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from urllib.parse import urlencode

from authlib.oauth2.rfc7636 import create_s256_code_challenge

from server.auth.fetch import FetchError, fetch_json
from server.errors import InvalidAuthentication, ServiceUnavailable


@dataclass(frozen=True)
class Login:
    url: str  # where to send the browser
    state: str
    verifier: str


def issuer_entry(settings) -> dict:
    entries = [e for e in settings.auth_issuers if isinstance(e, dict) and e.get("issuer")]
    if settings.oidc_issuer:
        entries = [
            e for e in entries if e["issuer"].rstrip("/") == settings.oidc_issuer.rstrip("/")
        ]
    if not entries:
        raise ServiceUnavailable("sign-in is not configured: no trusted issuer")
    return entries[0]


def discovery(settings) -> dict:
    entry = issuer_entry(settings)
    url = (
        entry.get("discovery") or entry["issuer"].rstrip("/") + "/.well-known/openid-configuration"
    )
    try:
        doc = fetch_json(url)
    except FetchError as exc:
        raise ServiceUnavailable(f"the sign-in issuer cannot be reached: {exc}") from None
    if doc.get("issuer", "").rstrip("/") != entry["issuer"].rstrip("/"):
        raise ServiceUnavailable("the sign-in issuer's discovery document names another issuer")
    for name in ("authorization_endpoint", "token_endpoint"):
        if not isinstance(doc.get(name), str):
            raise ServiceUnavailable(f"the sign-in issuer has no {name}")
    return doc


def start(settings, redirect_uri: str) -> Login:
    doc = discovery(settings)
    state, verifier = secrets.token_urlsafe(24), secrets.token_urlsafe(48)
    query = {
        "response_type": "code",
        "client_id": settings.oidc_client_id,
        "redirect_uri": redirect_uri,
        "scope": "openid ga4gh_passport_v1",
        "state": state,
        "code_challenge": create_s256_code_challenge(verifier),
        "code_challenge_method": "S256",
        "resource": settings.audience,
    }
    sep = "&" if "?" in doc["authorization_endpoint"] else "?"
    return Login(f"{doc['authorization_endpoint']}{sep}{urlencode(query)}", state, verifier)


def finish(settings, redirect_uri: str, code: str, verifier: str) -> str:
    """The access token for ``code`` (raises 401 when the issuer refuses it)."""
    doc = discovery(settings)
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": redirect_uri,
        "client_id": settings.oidc_client_id,
        "code_verifier": verifier,
    }
    try:
        answer = fetch_json(doc["token_endpoint"], form=form)
    except FetchError:
        raise InvalidAuthentication("the issuer did not accept the sign-in") from None
    token = answer.get("access_token")
    if not isinstance(token, str) or not token:
        raise InvalidAuthentication("the issuer returned no access token")
    return token
