"""A local development token issuer: its own keys, JWKS, discovery and userinfo.

It mints real signed OIDC access tokens, GA4GH Passports and Visas so that the
demo and the tests exercise exactly the validation path production tokens take.
Keys (one RSA-2048 and one EC P-256 key) are created on first use under
``<var_dir>/issuer/keys.json`` (mode 0600). Users' visas for the userinfo
endpoint are kept in ``<var_dir>/issuer/users.json``.

Served endpoints (``genomeport token serve``)::

    GET /.well-known/openid-configuration   discovery document
    GET /jwks                               public keys
    GET /userinfo                           {"sub", "ga4gh_passport_v1": [visas]}
                                            for a valid access token of this issuer
    GET /authorize                          OIDC authorization code flow with PKCE
    POST /authorize                         (S256 only): a page asks whom to sign
                                            in as, then redirects with a code
    POST /token                             the code and its verifier -> an
                                            access token (``aud``: the request's
                                            ``resource``, RFC 8707, else client_id)

This is a development tool: its login page has no password, and anyone who
can run the CLI can mint any token. Production nodes configure their real
brokers in ``auth_issuers`` instead. Codes live in the serving process for
60 s and are used once; redirect URIs must be https or loopback http.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import json
import os
import secrets
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlencode, urlsplit

from joserfc import jwt
from joserfc.jwk import ECKey, KeySet, RSAKey

from server.auth.fetch import is_allowed_url
from server.auth.tokens import (
    PASSPORT_TYP,
    REGISTERED_ACCESS_VALUE,
    KeySource,
    TokenError,
    verify_jws,
)

DEFAULT_ISSUER = "http://127.0.0.1:8400"
VISA_TYP = "vnd.ga4gh.visa+jwt"


class LocalIssuer:
    def __init__(self, directory: str | Path, issuer: str = DEFAULT_ISSUER):
        self.directory = Path(directory)
        self.issuer = issuer.rstrip("/")
        self.directory.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self.keys = self._load_or_create_keys()
        self.rsa_key = next(k for k in self.keys.keys if k.key_type == "RSA")
        self.ec_key = next(k for k in self.keys.keys if k.key_type == "EC")

    @classmethod
    def for_settings(cls, settings, issuer: str = DEFAULT_ISSUER) -> LocalIssuer:
        return cls(Path(settings.var_dir) / "issuer", issuer)

    # ------------------------------------------------------------ keys
    def _load_or_create_keys(self) -> KeySet:
        path = self.directory / "keys.json"
        if path.exists():
            return KeySet.import_key_set(json.loads(path.read_text()))
        keys = KeySet(
            [RSAKey.generate_key(2048, auto_kid=True), ECKey.generate_key("P-256", auto_kid=True)]
        )
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(keys.as_dict(private=True), fh)
        os.replace(tmp, path)
        return keys

    def jwks(self) -> dict:
        """The public keys, as served at /jwks."""
        out = []
        for key in self.keys.keys:
            data = key.as_dict(private=False)
            data.update(use="sig", alg="RS256" if key.key_type == "RSA" else "ES256")
            out.append(data)
        return {"keys": out}

    @property
    def jwks_uri(self) -> str:
        return f"{self.issuer}/jwks"

    def discovery(self) -> dict:
        return {
            "issuer": self.issuer,
            "jwks_uri": self.jwks_uri,
            "userinfo_endpoint": f"{self.issuer}/userinfo",
            "id_token_signing_alg_values_supported": ["RS256", "ES256"],
            "authorization_endpoint": f"{self.issuer}/authorize",
            "token_endpoint": f"{self.issuer}/token",
            "response_types_supported": ["code"],
            "grant_types_supported": ["authorization_code"],
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": ["none"],
            "subject_types_supported": ["public"],
            "scopes_supported": ["openid", "ga4gh_passport_v1"],
            "claims_supported": ["sub", "iss", "aud", "exp", "iat", "ga4gh_passport_v1"],
        }

    def settings_entry(self, mode: str = "jwks") -> dict:
        """An ``auth_issuers`` entry trusting this issuer (inline jwks or discovery)."""
        if mode == "jwks":
            return {
                "issuer": self.issuer,
                "jwks": self.jwks(),
                "userinfo_endpoint": f"{self.issuer}/userinfo",
            }
        if mode == "discovery":
            return {
                "issuer": self.issuer,
                "discovery": f"{self.issuer}/.well-known/openid-configuration",
            }
        if mode == "jwks_uri":
            return {"issuer": self.issuer, "jwks_uri": self.jwks_uri}
        raise ValueError(mode)

    # ------------------------------------------------------------ minting
    def sign(
        self,
        claims: dict,
        *,
        typ: str | None = "JWT",
        alg: str = "RS256",
        header: dict | None = None,
        key=None,
    ) -> str:
        """Sign arbitrary claims (tests use the knobs to build hostile tokens)."""
        if key is None:
            key = self.rsa_key if alg.startswith("RS") else self.ec_key
        head: dict[str, Any] = {"alg": alg}
        if getattr(key, "kid", None):
            head["kid"] = key.kid
        if typ is not None:
            head["typ"] = typ
        head.update(header or {})
        return jwt.encode(head, claims, key, algorithms=[alg], default_type=None)

    def _base(self, sub: str, expires_in: int, now: float | None, iss: str | None = None) -> dict:
        now = int(time.time() if now is None else now)
        return {
            "iss": iss or self.issuer,
            "sub": sub,
            "iat": now,
            "exp": now + int(expires_in),
            "jti": uuid.uuid4().hex,
        }

    def visa(
        self,
        sub: str,
        type_: str,
        value: str,
        *,
        by: str | None = "dac",
        source: str | None = None,
        expires_in: int = 3600,
        conditions: list | None = None,
        alg: str = "RS256",
        jku: bool = True,
        now: float | None = None,
        key=None,
        iss: str | None = None,
    ) -> str:
        """A Visa Document Token (``jku`` header pointing at this issuer's JWKS)."""
        obj: dict[str, Any] = {
            "type": type_,
            "asserted": int(time.time() if now is None else now),
            "value": value,
            "source": source or self.issuer,
        }
        if by is not None:
            obj["by"] = by
        if conditions is not None:
            obj["conditions"] = conditions
        claims = self._base(sub, expires_in, now, iss) | {"ga4gh_visa_v1": obj}
        header = {"jku": self.jwks_uri} if jku else {}
        return self.sign(claims, typ=VISA_TYP, alg=alg, header=header, key=key)

    def grant_visa(self, sub: str, value: str, **kw) -> str:
        return self.visa(sub, "ControlledAccessGrants", value, **kw)

    def registered_visas(self, sub: str, **kw) -> list[str]:
        kw.setdefault("by", "so")
        return [
            self.visa(sub, "ResearcherStatus", REGISTERED_ACCESS_VALUE, **kw),
            self.visa(
                sub, "AcceptedTermsAndPolicies", REGISTERED_ACCESS_VALUE, **(kw | {"by": "self"})
            ),
        ]

    def linked_visa(self, sub: str, others: list[tuple[str, str]], **kw) -> str:
        value = ";".join(f"{quote(s, safe='')},{quote(i, safe='')}" for s, i in others)
        kw.setdefault("by", "system")
        return self.visa(sub, "LinkedIdentities", value, **kw)

    def passport(
        self,
        sub: str,
        visas: list[str],
        *,
        audience: str | list[str],
        expires_in: int = 3600,
        alg: str = "RS256",
        now: float | None = None,
        extra: dict | None = None,
    ) -> str:
        """A GA4GH Passport JWT (``typ: vnd.ga4gh.passport+jwt``)."""
        claims = self._base(sub, expires_in, now) | {"aud": audience, "ga4gh_passport_v1": visas}
        claims.update(extra or {})
        return self.sign(claims, typ=PASSPORT_TYP, alg=alg)

    def access_token(
        self,
        sub: str,
        *,
        audience: str | list[str],
        expires_in: int = 3600,
        alg: str = "RS256",
        now: float | None = None,
        extra: dict | None = None,
        scope: str = "openid ga4gh_passport_v1",
    ) -> str:
        """A plain OIDC access token (no visas: the node asks /userinfo for them)."""
        claims = self._base(sub, expires_in, now) | {"aud": audience, "scope": scope}
        claims.update(extra or {})
        return self.sign(claims, typ="at+jwt", alg=alg)

    # ------------------------------------------------------------ userinfo
    def _users_path(self) -> Path:
        return self.directory / "users.json"

    def set_user(
        self,
        sub: str,
        *,
        grants: list[str] = (),
        registered: bool = False,
        visa_expires_in: int = 3600,
    ) -> None:
        """Record the visas this issuer's /userinfo hands out for ``sub``."""
        with self._lock:
            path = self._users_path()
            users = json.loads(path.read_text()) if path.exists() else {}
            users[sub] = {
                "grants": list(grants),
                "registered": registered,
                "visa_expires_in": visa_expires_in,
            }
            path.write_text(json.dumps(users, indent=1))

    def userinfo(self, access_token: str) -> dict:
        """Validate one of this issuer's own tokens and return the user's visas."""
        header, claims = verify_jws(
            access_token, KeySource(self.issuer, jwks=self.jwks()), time.time(), issuer=self.issuer
        )
        sub = claims["sub"]
        path = self._users_path()
        user = (json.loads(path.read_text()) if path.exists() else {}).get(sub, {})
        ttl = int(user.get("visa_expires_in", 3600))
        visas = [self.grant_visa(sub, g, expires_in=ttl) for g in user.get("grants", [])]
        if user.get("registered"):
            visas += self.registered_visas(sub, expires_in=ttl)
        return {"sub": sub, "ga4gh_passport_v1": visas}

    # ------------------------------------------------------------ login (PKCE)
    CODE_TTL = 60

    def _codes(self) -> dict:
        if not hasattr(self, "_code_store"):
            self._code_store: dict[str, dict] = {}
        return self._code_store

    def authorization_request(self, params: dict[str, str]) -> str | None:
        """Why an authorization request is refused, or None when it is acceptable."""
        if params.get("response_type") != "code":
            return "response_type must be code"
        if not params.get("client_id"):
            return "client_id is required"
        if not is_allowed_url(params.get("redirect_uri", "")):
            return "redirect_uri must be https, or http to a loopback address"
        if params.get("code_challenge_method") != "S256" or not params.get("code_challenge"):
            return "PKCE is required: code_challenge with code_challenge_method S256"
        return None

    def login_page(self, params: dict[str, str]) -> str:
        hidden = "".join(
            f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
            for k, v in params.items()
        )
        return (
            '<!doctype html><html lang="en"><head><meta charset="utf-8">'
            "<title>Development issuer: sign in</title>"
            "<style>body{font-family:sans-serif;max-width:32rem;margin:3rem auto}"
            "input,button{font-size:1rem;padding:.4rem}</style></head><body>"
            "<h1>Development issuer</h1>"
            f"<p>Sign in to <b>{html.escape(params.get('client_id', ''))}</b>. "
            "This issuer is for development: it asks for no password.</p>"
            f'<form method="post" action="/authorize">{hidden}'
            '<label>User (sub) <input name="sub" id="sub" required pattern="[A-Za-z0-9._@-]{1,64}">'
            '</label> <button type="submit" id="signin">Sign in</button></form></body></html>'
        )

    def authorize(self, params: dict[str, str], sub: str) -> str:
        """The redirect (with a one-time code) after ``sub`` signed in."""
        code = secrets.token_urlsafe(32)
        with self._lock:
            now = time.time()
            codes = self._codes()
            for old in [c for c, v in codes.items() if v["expires"] < now]:
                codes.pop(old, None)
            codes[code] = {
                "sub": sub,
                "client_id": params["client_id"],
                "redirect_uri": params["redirect_uri"],
                "challenge": params["code_challenge"],
                "audience": params.get("resource") or params["client_id"],
                "expires": now + self.CODE_TTL,
            }
        query = {"code": code}
        if params.get("state"):
            query["state"] = params["state"]
        sep = "&" if "?" in params["redirect_uri"] else "?"
        return f"{params['redirect_uri']}{sep}{urlencode(query)}"

    def token(self, form: dict[str, str]) -> tuple[int, dict]:
        """The token endpoint: a code and its PKCE verifier for an access token."""
        if form.get("grant_type") != "authorization_code":
            return 400, {"error": "unsupported_grant_type"}
        with self._lock:
            entry = self._codes().pop(form.get("code", ""), None)  # used once, even on failure
        if entry is None or entry["expires"] < time.time():
            return 400, {"error": "invalid_grant"}
        if (
            form.get("client_id") != entry["client_id"]
            or form.get("redirect_uri") != entry["redirect_uri"]
        ):
            return 400, {"error": "invalid_grant"}
        verifier = form.get("code_verifier", "")
        digest = hashlib.sha256(verifier.encode()).digest()
        challenge = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
        if not verifier or not hmac.compare_digest(challenge, entry["challenge"]):
            return 400, {"error": "invalid_grant", "error_description": "PKCE verification failed"}
        expires_in = 3600
        token = self.access_token(entry["sub"], audience=entry["audience"], expires_in=expires_in)
        return 200, {"access_token": token, "token_type": "Bearer", "expires_in": expires_in}

    # ------------------------------------------------------------ serving
    def make_server(self, host: str = "127.0.0.1", port: int | None = None) -> ThreadingHTTPServer:
        if port is None:
            port = urlsplit(self.issuer).port or 80
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            server_version = "genomeport-dev-issuer"

            def log_message(self, *args):  # never log request lines (they may carry tokens)
                pass

            def _send(self, status: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self._raw(status, data, "application/json")

            def _raw(self, status: int, data: bytes, kind: str, headers=()) -> None:
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(data)))
                self.send_header("Cache-Control", "no-store")
                for name, value in headers:
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            def _form(self) -> dict[str, str]:
                length = min(int(self.headers.get("Content-Length") or 0), 64 * 1024)
                raw = self.rfile.read(length).decode("utf-8", "replace")
                return {k: v[0] for k, v in parse_qs(raw).items()}

            def _authorize(self, params: dict[str, str], sub: str | None) -> None:
                problem = issuer.authorization_request(params)
                if problem is not None:
                    return self._raw(400, html.escape(problem).encode(), "text/plain")
                if sub is None:
                    page = issuer.login_page(params).encode()
                    return self._raw(200, page, "text/html; charset=utf-8")
                target = issuer.authorize(params, sub)
                return self._raw(303, b"", "text/plain", [("Location", target)])

            def do_POST(self):  # noqa: N802 - http.server naming
                path = urlsplit(self.path).path.rstrip("/")
                form = self._form()
                if path == "/token":
                    return self._send(*issuer.token(form))
                if path == "/authorize":
                    sub = form.pop("sub", "")
                    if not sub or len(sub) > 64:
                        return self._raw(400, b"sub is required", "text/plain")
                    return self._authorize(form, sub)
                return self._send(404, {"error": "not_found"})

            def do_GET(self):  # noqa: N802 - http.server naming
                path = urlsplit(self.path).path.rstrip("/")
                if path == "/.well-known/openid-configuration":
                    return self._send(200, issuer.discovery())
                if path == "/jwks":
                    return self._send(200, issuer.jwks())
                if path == "/authorize":
                    query = urlsplit(self.path).query
                    return self._authorize({k: v[0] for k, v in parse_qs(query).items()}, None)
                if path == "/userinfo":
                    auth = self.headers.get("Authorization", "")
                    scheme, _, token = auth.partition(" ")
                    if scheme.lower() != "bearer" or not token:
                        return self._send(401, {"error": "invalid_token"})
                    try:
                        return self._send(200, issuer.userinfo(token.strip()))
                    except TokenError:
                        return self._send(401, {"error": "invalid_token"})
                return self._send(404, {"error": "not_found"})

        return ThreadingHTTPServer((host, port), Handler)

    def start(self, host: str = "127.0.0.1", port: int | None = None):
        """Serve in a daemon thread (tests); returns the server (call .shutdown())."""
        server = self.make_server(host, port)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, name="dev-issuer", daemon=True).start()
        return server
