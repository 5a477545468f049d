"""Real signed tokens for tests, good and hostile, from the development issuer.

Shared by the unit tests of ``server.auth`` and the access-control tests of
every API (``tests/api/test_access_control.py``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from dataclasses import dataclass
from pathlib import Path

from joserfc.jwk import RSAKey

from server.auth.issuer import LocalIssuer

AUDIENCE = "https://genomeport.test"
# The cases of ``TokenKit.failure_cases``: tokens that are not acceptable (401) ...
TOKEN_FAILURES = (
    "expired token",
    "alg none",
    "hs256 with public key",
    "untrusted issuer",
    "same kid forged key",
    "wrong audience",
)
# ... and valid tokens whose visas grant nothing (403).
VISA_FAILURES = (
    "expired visa",
    "visa for another dataset",
    "visa with bad signature",
    "visa forged with same kid",
    "unlinked sub",
    "conditions present",
)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unsigned(claims: dict, header: dict | None = None) -> str:
    head = {"alg": "none", "typ": "JWT"} | (header or {})
    return f"{b64(json.dumps(head).encode())}.{b64(json.dumps(claims).encode())}."


def hs256_with_public_key(issuer: LocalIssuer, claims: dict) -> str:
    """The classic key-confusion attack: HMAC keyed with the RSA public key."""
    pem = issuer.rsa_key.as_pem(private=False)
    head = {"alg": "HS256", "typ": "JWT", "kid": issuer.rsa_key.kid}
    signing_input = f"{b64(json.dumps(head).encode())}.{b64(json.dumps(claims).encode())}"
    sig = hmac.new(pem, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(sig)}"


def forged_same_kid_key(issuer: LocalIssuer) -> RSAKey:
    """A fresh RSA key that claims the issuer's key id."""
    return RSAKey.generate_key(2048, parameters={"kid": issuer.rsa_key.kid})


def tamper(token: str, value: str) -> str:
    """Rewrite a visa's value but keep the original signature."""
    head, payload, sig = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["ga4gh_visa_v1"]["value"] = value
    return f"{head}.{b64(json.dumps(claims).encode())}.{sig}"


@dataclass
class TokenKit:
    """One trusted issuer, one untrusted one, and recipes for every case."""

    issuer: LocalIssuer
    stranger: LocalIssuer
    audience: str = AUDIENCE

    def passport(self, sub: str = "alice", visas: list[str] | None = None, **kw) -> str:
        kw.setdefault("audience", self.audience)
        return self.issuer.passport(sub, visas or [], **kw)

    def grant(self, dataset: str, sub: str = "alice", **kw) -> str:
        return self.passport(sub, [self.issuer.grant_visa(sub, dataset, **kw)])

    def registered(self, sub: str = "alice") -> str:
        return self.passport(sub, self.issuer.registered_visas(sub))

    def claims(self, sub: str = "alice", **extra) -> dict:
        now = int(time.time())
        return {
            "iss": self.issuer.issuer,
            "sub": sub,
            "aud": self.audience,
            "iat": now,
            "exp": now + 600,
            "ga4gh_passport_v1": [],
        } | extra

    def failure_cases(self, dataset: str) -> dict[str, tuple[str, int]]:
        """Every hostile or insufficient token for ``dataset`` -> expected HTTP status.

        401: the token itself is not acceptable. 403: a valid token whose visas
        do not grant this dataset.
        """
        iss, sub = self.issuer, "alice"
        now = time.time()
        grant = lambda **kw: iss.grant_visa(sub, dataset, **kw)  # noqa: E731
        return {
            "expired token": (self.passport(sub, [grant()], now=now - 7200), 401),
            "alg none": (unsigned(self.claims(ga4gh_passport_v1=[grant()])), 401),
            "hs256 with public key": (
                hs256_with_public_key(iss, self.claims(ga4gh_passport_v1=[grant()])),
                401,
            ),
            "untrusted issuer": (
                self.stranger.passport(
                    sub, [self.stranger.grant_visa(sub, dataset)], audience=self.audience
                ),
                401,
            ),
            "same kid forged key": (
                iss.sign(self.claims(ga4gh_passport_v1=[grant()]), key=forged_same_kid_key(iss)),
                401,
            ),
            "wrong audience": (
                self.passport(sub, [grant()], audience="https://other.example"),
                401,
            ),
            "expired visa": (self.passport(sub, [grant(now=now - 7200)]), 403),
            "visa for another dataset": (
                self.passport(sub, [iss.grant_visa(sub, dataset + "-other")]),
                403,
            ),
            "visa with bad signature": (
                self.passport(sub, [tamper(iss.grant_visa(sub, "some-other"), dataset)]),
                403,
            ),
            "visa forged with same kid": (
                self.passport(sub, [grant(key=forged_same_kid_key(iss))]),
                403,
            ),
            "unlinked sub": (self.passport(sub, [iss.grant_visa("mallory", dataset)]), 403),
            "conditions present": (
                self.passport(
                    sub,
                    [
                        grant(
                            conditions=[
                                [{"type": "AffiliationAndRole", "value": "const:faculty@x.org"}]
                            ]
                        )
                    ],
                ),
                403,
            ),
        }

    def trusting(self, settings, mode: str = "jwks"):
        return settings.with_overrides(
            auth_issuers=(self.issuer.settings_entry(mode),), auth_audience=self.audience
        )


def make_kit(directory: Path, issuer_url: str = "http://127.0.0.1:8400") -> TokenKit:
    return TokenKit(
        LocalIssuer(directory / "issuer", issuer_url),
        LocalIssuer(directory / "stranger", "https://stranger.example"),
    )
