"""Bearer token validation: OIDC access tokens and GA4GH Passports.

Entry point: :func:`caller_from_request` turns an ``Authorization`` header (and,
for DRS, the ``passports`` of a POST body) into a :class:`server.auth.Caller`.
It never raises: a token that was presented but fails any check yields
``Caller(error=...)``, which :func:`server.auth.authorize` turns into a 401. It
fails closed; nothing here ever degrades a bad token to anonymous access.

Trust model
-----------
* Tokens are accepted only from the issuers listed in ``settings.auth_issuers``.
  Each entry names the ``issuer`` and where its keys come from: an inline
  ``jwks``, a ``jwks_uri``, or a ``discovery`` URL (an OpenID Connect discovery
  document whose ``issuer`` must equal the configured one). Keys are never looked
  up from anything a token says about itself.
* Signatures: ``RS256`` (RSA keys) and ``ES256`` (EC P-256 keys) only; ``none``,
  ``HS*`` and everything else are refused, as are ``crit`` headers.
* Claims, checked by joserfc's claims registry: ``iss`` (exact match), ``sub``,
  ``exp`` and ``iat`` required, ``exp``, ``nbf`` and ``iat`` with :data:`LEEWAY`
  seconds of clock skew, and ``aud`` must contain ``settings.audience``.
* Passports (``typ: vnd.ga4gh.passport+jwt``) carry their visas in
  ``ga4gh_passport_v1``. A plain access token without that claim has its visas
  fetched from the issuer's userinfo endpoint (configured ``userinfo_endpoint``
  or the one in its discovery document), cached per token for its lifetime.

Visas (GA4GH Passport v1.2)
---------------------------
Each visa's own signature is checked: with keys from a ``jku`` header only when
that exact URL is listed for the visa's issuer in ``settings.visa_jku_allowlist``,
otherwise the visa's issuer must itself be a configured trusted issuer. A visa
is ignored (never fatal to the token) when its signature or claims are invalid,
it has expired, it carries ``conditions`` (not supported, so never satisfied),
or a ``ControlledAccessGrants``/``AcceptedTermsAndPolicies`` visa lacks ``by``.
Visas whose ``sub`` differs from the token's count only when a trusted
``LinkedIdentities`` visa links the identities.

* ``ControlledAccessGrants`` with value V: controlled access to every dataset
  whose grant value (default: its id) is V. ``by`` must be ``dac``, ``so`` or
  ``system`` (a self-asserted grant is meaningless).
* Registered access: both a ``ResearcherStatus`` and an
  ``AcceptedTermsAndPolicies`` visa whose value is the Registered Access
  publication (:data:`REGISTERED_ACCESS_VALUE`).

The caller's ``expires`` is the minimum of the token's ``exp`` and the ``exp``
of every visa that contributed a grant or a link.

The validator follows authlib's resource-protector pattern:
:class:`GA4GHBearerTokenValidator` is a ``BearerTokenValidator`` registered on a
``ResourceProtector``; JWS/JWT handling, claim validation included, is joserfc's
(authlib's own successor to its deprecated ``authlib.jose``).
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import unquote

import cachetools
from authlib.oauth2.rfc6749 import ResourceProtector
from authlib.oauth2.rfc6749.errors import OAuth2Error
from authlib.oauth2.rfc6750 import BearerTokenValidator
from joserfc import jwt
from joserfc.errors import ClaimError, ExpiredTokenError, JoseError, MissingClaimError
from joserfc.jwk import KeySet

from server.auth import ANONYMOUS, Caller
from server.auth.fetch import FetchError, fetch_json, is_allowed_url

logger = logging.getLogger(__name__)

ALGORITHMS = {"RS256": "RSA", "ES256": "EC"}  # alg -> required key type
LEEWAY = 60  # seconds of clock skew tolerated on exp / nbf / iat
PASSPORT_TYP = "vnd.ga4gh.passport+jwt"
REGISTERED_ACCESS_VALUE = "https://doi.org/10.1038/s41431-018-0219-y"
GRANT_BY = frozenset({"dac", "so", "system"})
BY_VOCABULARY = frozenset({"self", "peer", "system", "so", "dac"})
MAX_TOKEN_CHARS = 256 * 1024
MAX_VISAS = 200
JWKS_TTL = 300  # seconds a fetched JWKS / discovery document is reused
JWKS_MIN_REFRESH = 30  # an unknown kid triggers at most one refetch per this many seconds
CACHE_SIZE = 4096


class TokenError(Exception):
    """A token (or visa) failed validation; the message says why, never the token."""


# --------------------------------------------------------------------- keys
class KeySource:
    """The public keys of one trust anchor: an inline JWKS or a JWKS URL."""

    def __init__(self, label: str, *, jwks: dict | None = None, url_fn=None):
        self.label = label
        self._url_fn = url_fn  # () -> str, resolved lazily (e.g. from discovery)
        self._lock = threading.Lock()
        self._keys: KeySet | None = None
        self._fetched = 0.0
        if jwks is not None:
            try:
                self._keys = KeySet.import_key_set(jwks)
            except (JoseError, KeyError, TypeError, ValueError) as exc:
                raise TokenError(f"{label}: configured jwks is invalid ({exc})") from None
            self._fetched = float("inf")

    def _load(self, force: bool = False) -> KeySet:
        now = time.monotonic()
        with self._lock:
            if self._keys is not None and self._url_fn is None:
                return self._keys
            fresh = self._keys is not None and now - self._fetched < JWKS_TTL
            if fresh and not force:
                return self._keys  # type: ignore[return-value]
            if force and self._keys is not None and now - self._fetched < JWKS_MIN_REFRESH:
                return self._keys
            try:
                url = self._url_fn()
                keys = KeySet.import_key_set(fetch_json(url))  # type: ignore[arg-type]
            except (FetchError, JoseError, KeyError, TypeError, ValueError) as exc:
                if self._keys is not None and now - self._fetched < 10 * JWKS_TTL:
                    logger.warning("keeping cached JWKS of %s: %s", self.label, exc)
                    return self._keys
                raise TokenError(f"cannot load the JWKS of {self.label}: {exc}") from None
            self._keys, self._fetched = keys, now
            return keys

    def key_for(self, kid: str | None, alg: str):
        kty = ALGORITHMS[alg]
        for attempt in (False, True):
            keys = self._load(force=attempt)
            found = _pick_key(keys, kid, alg, kty)
            if found is not None:
                return found
            if self._url_fn is None:
                break
        raise TokenError(f"no {alg} key {kid!r} in the JWKS of {self.label}")


def _pick_key(keys: KeySet, kid: str | None, alg: str, kty: str):
    candidates = [k for k in keys.keys if k.key_type == kty]
    candidates = [k for k in candidates if k.get("use") in (None, "sig")]
    candidates = [k for k in candidates if k.get("alg") in (None, alg)]
    if kty == "EC":
        candidates = [k for k in candidates if k.get("crv") == "P-256"]
    if kid is None:
        return candidates[0] if len(candidates) == 1 else None
    for key in candidates:
        if key.kid == kid:
            return key
    return None


class TrustedIssuer:
    """One entry of ``settings.auth_issuers``."""

    def __init__(self, entry: dict):
        if not isinstance(entry, dict) or not isinstance(entry.get("issuer"), str):
            raise TokenError("each auth_issuers entry needs an 'issuer'")
        self.issuer: str = entry["issuer"]
        self._discovery_url: str | None = entry.get("discovery")
        self._userinfo: str | None = entry.get("userinfo_endpoint")
        self._discovery: dict | None = None
        self._discovery_at = 0.0
        self._lock = threading.Lock()
        for url in (self._discovery_url, self._userinfo, entry.get("jwks_uri")):
            if url is not None and not is_allowed_url(url):
                raise TokenError(f"{self.issuer}: URL {url!r} is not https or loopback http")
        if entry.get("jwks") is not None:
            self.keys = KeySource(self.issuer, jwks=entry["jwks"])
        elif entry.get("jwks_uri"):
            uri = entry["jwks_uri"]
            self.keys = KeySource(self.issuer, url_fn=lambda: uri)
        elif self._discovery_url:
            self.keys = KeySource(self.issuer, url_fn=lambda: self._from_discovery("jwks_uri"))
        else:
            raise TokenError(f"{self.issuer}: configure one of jwks, jwks_uri or discovery")

    def discovery(self) -> dict:
        with self._lock:
            now = time.monotonic()
            if self._discovery is not None and now - self._discovery_at < JWKS_TTL:
                return self._discovery
            try:
                doc = fetch_json(self._discovery_url)  # type: ignore[arg-type]
            except FetchError as exc:
                raise TokenError(f"discovery of {self.issuer} failed: {exc}") from None
            if doc.get("issuer") != self.issuer:
                raise TokenError(f"discovery document of {self.issuer} names another issuer")
            self._discovery, self._discovery_at = doc, now
            return doc

    def _from_discovery(self, name: str) -> str:
        url = self.discovery().get(name)
        if not isinstance(url, str) or not is_allowed_url(url):
            raise TokenError(f"{self.issuer}: discovery {name} missing or not allowed")
        return url

    @property
    def userinfo_endpoint(self) -> str | None:
        if self._userinfo:
            return self._userinfo
        if self._discovery_url:
            try:
                return self._from_discovery("userinfo_endpoint")
            except TokenError:
                return None
        return None


# ----------------------------------------------------------------- parsing
def _b64json(segment: str) -> dict:
    try:
        raw = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
        value = json.loads(raw)
    except (ValueError, TypeError):
        raise TokenError("malformed JWT") from None
    if not isinstance(value, dict):
        raise TokenError("malformed JWT")
    return value


def peek(token: str) -> tuple[dict, dict]:
    """Header and claims WITHOUT verification, only to choose issuer and key."""
    if not isinstance(token, str) or len(token) > MAX_TOKEN_CHARS:
        raise TokenError("token missing or too large")
    parts = token.split(".")
    if len(parts) != 3:
        raise TokenError("not a JWS compact serialisation")
    return _b64json(parts[0]), _b64json(parts[1])


def _number(claims: dict, name: str, required: bool) -> float | None:
    value = claims.get(name)
    if value is None:
        if required:
            raise TokenError(f"missing '{name}' claim")
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TokenError(f"'{name}' claim is not a number")
    return float(value)


# the order in which a token's claims are judged: the first failing one is reported
_CLAIM_ORDER = ("exp", "nbf", "iat", "iss", "sub", "aud")


def _check_claims(
    claims: dict,
    now: float,
    *,
    leeway: int = LEEWAY,
    issuer: str | None = None,
    audience: str | None = None,
) -> None:
    """joserfc's claim validation: ``exp`` and ``iat`` required, ``exp``/``nbf``/``iat``
    with ``leeway`` seconds of clock skew, ``iss`` and ``sub`` non-empty strings (``iss``
    equal to ``issuer`` when given), ``aud`` containing ``audience`` when given.
    Other claims are left to the caller."""
    options: dict[str, dict] = {name: {"essential": True} for name in ("exp", "iat", "iss", "sub")}
    if issuer is not None:
        options["iss"]["value"] = issuer
    if audience is not None:
        options["aud"] = {"essential": True, "value": audience}
    registry = jwt.JWTClaimsRegistry(now=now, leeway=leeway, **options)
    judged = _CLAIM_ORDER if audience is not None else _CLAIM_ORDER[:-1]
    try:
        registry.validate({name: claims[name] for name in judged if name in claims})
    except ClaimError as exc:
        raise _claim_error(exc) from None


def _claim_error(exc: ClaimError) -> TokenError:
    claim = min(exc.claim.split(","), key=_CLAIM_ORDER.index)
    if claim == "aud":
        return TokenError("token audience does not include this service")
    if isinstance(exc, ExpiredTokenError):
        return TokenError("token has expired")
    if isinstance(exc, MissingClaimError):
        return TokenError(f"missing '{claim}' claim")
    return TokenError(exc.description)  # e.g. "The token is not yet valid"


def verify_jws(
    token: str, keys: KeySource, now: float, **expected: str | None
) -> tuple[dict, dict]:
    """Signature (RS256/ES256 only) and claims (:func:`_check_claims`, with the
    ``issuer`` and ``audience`` ``expected``, when given); returns (header, claims)."""
    header, _ = peek(token)
    alg = header.get("alg")
    if alg not in ALGORITHMS:
        raise TokenError(f"signing algorithm {alg!r} is not allowed")
    if "crit" in header:
        raise TokenError("'crit' header is not supported")
    kid = header.get("kid")
    if kid is not None and not isinstance(kid, str):
        raise TokenError("malformed 'kid'")
    key = keys.key_for(kid, alg)
    try:
        decoded = jwt.decode(token, key, algorithms=[alg])
    except JoseError:
        raise TokenError("signature verification failed") from None
    _check_claims(decoded.claims, now, **expected)
    return dict(decoded.header), decoded.claims


@dataclass(frozen=True)
class Visa:
    iss: str
    sub: str
    exp: float
    type: str
    value: str
    source: str
    by: str | None


def _parse_links(value: str) -> list[tuple[str, str]]:
    out = []
    for entry in value.split(";"):
        sub, sep, iss = entry.partition(",")
        if sep and sub and iss:
            out.append((unquote(sub), unquote(iss)))
    return out


class _Identities:
    """Union-find over (sub, iss) visa identities joined by LinkedIdentities visas."""

    def __init__(self):
        self.parent: dict[tuple[str, str], tuple[str, str]] = {}

    def find(self, x):
        self.parent.setdefault(x, x)
        while self.parent[x] != x:
            self.parent[x] = self.parent[self.parent[x]]
            x = self.parent[x]
        return x

    def union(self, a, b):
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[ra] = rb


# --------------------------------------------------------------- validator
def _expires(_key, entry: tuple, _now: float) -> float:
    return entry[0]


class Validator:
    """Validates tokens against one configuration; caches keys and results."""

    def __init__(self, settings):
        self.audience: str = settings.audience
        self.issuers: dict[str, TrustedIssuer] = {}
        self.config_error: str | None = None
        try:
            for entry in settings.auth_issuers:
                trusted = TrustedIssuer(entry)
                self.issuers[trusted.issuer] = trusted
        except TokenError as exc:
            self.config_error = str(exc)  # every token is then refused (fail closed)
            self.issuers = {}
        self.jku_allow: dict[str, frozenset[str]] = {
            iss: frozenset(u for u in urls if isinstance(u, str) and is_allowed_url(u))
            for iss, urls in dict(settings.visa_jku_allowlist or {}).items()
            if isinstance(urls, (list, tuple))
        }
        self._jku_sources: dict[str, KeySource] = {}
        self._jku_lock = threading.Lock()
        # sha256(token) -> (expires, Caller) and (expires, visas), each entry dropped at
        # its own expiry; shared by request threads (cachetools caches are not thread-safe)
        self.callers = cachetools.TLRUCache(CACHE_SIZE, _expires, timer=time.time)
        self.userinfo = cachetools.TLRUCache(CACHE_SIZE, _expires, timer=time.time)
        self._cache_lock = threading.Lock()

    def _cached(self, cache: cachetools.TLRUCache, digest: str, now: float):
        with self._cache_lock:
            entry = cache.get(digest)
        return entry[1] if entry is not None and entry[0] > now else None

    def _remember(self, cache: cachetools.TLRUCache, digest: str, value, expires: float) -> None:
        with self._cache_lock:
            cache[digest] = (expires, value)

    # ---- tokens
    def caller_for_token(self, token: str, *, now: float | None = None) -> Caller:
        """Validate one bearer token (access token or passport); raise TokenError."""
        now = time.time() if now is None else now
        digest = hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()
        cached = self._cached(self.callers, digest, now)
        if cached is not None:
            return cached
        if self.config_error:
            raise TokenError(f"access control is misconfigured: {self.config_error}")
        if not self.issuers:
            raise TokenError("no trusted token issuers are configured")
        _, unverified = peek(token)
        trusted = self.issuers.get(unverified.get("iss"))  # type: ignore[arg-type]
        if trusted is None:
            raise TokenError("token issuer is not trusted")
        header, claims = verify_jws(
            token, trusted.keys, now, issuer=trusted.issuer, audience=self.audience
        )
        is_passport = header.get("typ") == PASSPORT_TYP
        if "ga4gh_passport_v1" in claims:
            visas = claims["ga4gh_passport_v1"]
        elif is_passport:
            raise TokenError("passport has no ga4gh_passport_v1 claim")
        else:
            visas = self._userinfo_visas(trusted, token, digest, claims, now)
        if not isinstance(visas, list):
            raise TokenError("ga4gh_passport_v1 is not a list")
        # the token itself is good until exp + LEEWAY; visas get no leeway
        caller = self.evaluate(
            claims["iss"], claims["sub"], float(claims["exp"]) + LEEWAY, visas, now
        )
        if caller.expires is not None and caller.expires > now:
            self._remember(self.callers, digest, caller, caller.expires)
        return caller

    def _userinfo_visas(self, trusted, token, digest, claims, now) -> list:
        cached = self._cached(self.userinfo, digest, now)
        if cached is not None:
            return cached
        endpoint = trusted.userinfo_endpoint
        if endpoint is None:
            return []
        try:
            info = fetch_json(endpoint, bearer=token)
        except FetchError as exc:
            raise TokenError(f"userinfo of {trusted.issuer} failed: {exc}") from None
        if info.get("sub") != claims["sub"]:
            raise TokenError("userinfo subject does not match the token")
        visas = info.get("ga4gh_passport_v1", [])
        if not isinstance(visas, list):
            raise TokenError("userinfo ga4gh_passport_v1 is not a list")
        self._remember(self.userinfo, digest, visas, float(claims["exp"]))
        return visas

    # ---- visas
    def _visa_keys(self, header: dict, claims: dict) -> KeySource:
        iss = claims.get("iss")
        jku = header.get("jku")
        if isinstance(jku, str) and isinstance(iss, str) and jku in self.jku_allow.get(iss, ()):
            with self._jku_lock:
                source = self._jku_sources.get(jku)
                if source is None:
                    source = KeySource(f"jku {jku}", url_fn=lambda: jku)
                    self._jku_sources[jku] = source
            return source
        trusted = self.issuers.get(iss) if isinstance(iss, str) else None
        if trusted is None:
            raise TokenError("visa issuer is not trusted")
        return trusted.keys

    def verify_visa(self, raw: str, now: float) -> Visa:
        header, unverified = peek(raw)
        keys = self._visa_keys(header, unverified)
        header, claims = verify_jws(raw, keys, now, issuer=unverified["iss"])
        try:  # visas: no leeway past exp
            jwt.JWTClaimsRegistry(now=now).validate_exp(claims["exp"])
        except ExpiredTokenError:
            raise TokenError("visa has expired") from None
        obj = claims.get("ga4gh_visa_v1")
        if not isinstance(obj, dict):
            raise TokenError("missing ga4gh_visa_v1")
        for name in ("type", "value", "source"):
            if not isinstance(obj.get(name), str):
                raise TokenError(f"visa lacks '{name}'")
        _number(obj, "asserted", True)
        if obj.get("conditions"):
            raise TokenError("visa conditions are not supported")
        by = obj.get("by")
        if by is not None and by not in BY_VOCABULARY:
            raise TokenError("visa 'by' is not in the GA4GH vocabulary")
        if obj["type"] in ("ControlledAccessGrants", "AcceptedTermsAndPolicies") and not by:
            raise TokenError(f"{obj['type']} visa lacks 'by'")
        return Visa(
            claims["iss"],
            claims["sub"],
            float(claims["exp"]),
            obj["type"],
            obj["value"],
            obj["source"],
            by,
        )

    def evaluate(self, iss: str, sub: str, exp: float, raw_visas: Iterable, now: float) -> Caller:
        visas: list[Visa] = []
        for raw in list(raw_visas)[:MAX_VISAS]:
            if not isinstance(raw, str):
                continue
            try:
                visas.append(self.verify_visa(raw, now))
            except TokenError as exc:
                logger.info("ignoring a visa: %s", exc)
        ids = _Identities()
        for v in visas:
            if v.type == "LinkedIdentities":
                for other in _parse_links(v.value):
                    ids.union((v.sub, v.iss), other)
        roots = {ids.find((sub, iss))} | {ids.find((v.sub, v.iss)) for v in visas if v.sub == sub}

        def mine(v: Visa) -> bool:
            return v.sub == sub or ids.find((v.sub, v.iss)) in roots

        own = [v for v in visas if mine(v)]
        used: list[Visa] = []
        grants: dict[str, Visa] = {}
        for v in own:
            if (
                v.type == "ControlledAccessGrants"
                and v.by in GRANT_BY
                and (v.value not in grants or grants[v.value].exp < v.exp)
            ):
                grants[v.value] = v
        used.extend(grants.values())
        best: dict[str, Visa] = {}
        for v in own:
            if (
                v.type in ("ResearcherStatus", "AcceptedTermsAndPolicies")
                and v.value == REGISTERED_ACCESS_VALUE
            ) and (v.type not in best or best[v.type].exp < v.exp):
                best[v.type] = v
        registered = len(best) == 2
        if registered:
            used.extend(best.values())
        if used and any(v.sub != sub for v in used):
            used.extend(v for v in own if v.type == "LinkedIdentities")
        expires = min([exp] + [v.exp for v in used])
        return Caller(
            subject=f"{iss}|{sub}",
            issuer=iss,
            controlled=frozenset(grants),
            registered=registered,
            expires=expires,
        )


# ------------------------------------------------- authlib resource protector
class ValidatedToken(dict):
    """What authlib's resource protector hands back: the claims plus the Caller."""

    def __init__(self, caller: Caller):
        super().__init__(sub=caller.subject, iss=caller.issuer)
        self.caller = caller

    def is_expired(self) -> bool:
        return self.caller.expires is not None and self.caller.expires < time.time()

    def is_revoked(self) -> bool:
        return False

    def get_scope(self) -> str:
        return ""


class GA4GHBearerTokenValidator(BearerTokenValidator):
    """authlib's stock RFC 9068 validator rejects GA4GH passports; this one doesn't."""

    def __init__(self, validator: Validator):
        super().__init__(realm="genomeport")
        self.validator = validator

    def authenticate_token(self, token_string: str) -> ValidatedToken:
        return ValidatedToken(self.validator.caller_for_token(token_string.strip()))


class _HeaderRequest:
    def __init__(self, authorization: str):
        self.headers = {"Authorization": authorization}


def validator_for(settings) -> tuple[Validator, ResourceProtector]:
    """One validator (and its caches) per distinct access-control configuration."""
    return _by_identity(settings)[1]


# id(settings) -> (settings, ...): the entry keeps the settings alive, so its id
# is not reused by another object while it is cached
@cachetools.cached(cachetools.LRUCache(256), key=id, lock=threading.Lock())
def _by_identity(settings) -> tuple[object, tuple[Validator, ResourceProtector]]:
    return settings, _validator_for_config(settings)


def _config_key(settings) -> str:
    return json.dumps(
        [settings.auth_issuers, settings.audience, settings.visa_jku_allowlist],
        sort_keys=True,
        default=str,
    )


@cachetools.cached(cachetools.LRUCache(64), key=_config_key, lock=threading.Lock())
def _validator_for_config(settings) -> tuple[Validator, ResourceProtector]:
    validator = Validator(settings)
    protector = ResourceProtector()
    protector.register_token_validator(GA4GHBearerTokenValidator(validator))
    return validator, protector


def _merge(callers: list[Caller]) -> Caller:
    subjects = {c.subject for c in callers}
    if len(subjects) != 1:
        raise TokenError("the presented tokens name different subjects")
    expiries = [c.expires for c in callers if c.expires is not None]
    return Caller(
        subject=callers[0].subject,
        issuer=callers[0].issuer,
        controlled=frozenset().union(*(c.controlled for c in callers)),
        registered=any(c.registered for c in callers),
        expires=min(expiries) if expiries else None,
    )


def caller_from_request(
    settings,
    authorization_header: str | None,
    *,
    passports: list[str] | None = None,
    db=None,
) -> Caller:
    """The Caller for one request; never raises, fails closed with ``error``.

    With the node's ``db``, the grants its DACs gave the caller are added
    (``server.auth.access.with_grants``)."""
    caller = _caller_from_tokens(settings, authorization_header, passports)
    if db is None or not caller.authenticated:
        return caller
    from server.auth.access import with_grants

    try:
        return with_grants(settings, db, caller)
    except Exception:  # noqa: BLE001 - the database decides nothing here: no grants added
        logger.exception("looking up the caller's access grants failed")
        return caller


def _caller_from_tokens(settings, authorization_header, passports) -> Caller:
    try:
        validator, protector = validator_for(settings)
        callers: list[Caller] = []
        if authorization_header is not None and authorization_header.strip():
            token = protector.validate_request(None, _HeaderRequest(authorization_header.strip()))
            callers.append(token.caller)
        if passports is not None:
            if not isinstance(passports, list) or len(passports) > 16:
                raise TokenError("passports must be a list of at most 16 JWTs")
            for passport in passports:
                if not isinstance(passport, str):
                    raise TokenError("each passport must be a JWT string")
                callers.append(validator.caller_for_token(passport))
        if not callers:
            return ANONYMOUS
        return callers[0] if len(callers) == 1 else _merge(callers)
    except TokenError as exc:
        return Caller(error=str(exc))
    except OAuth2Error as exc:
        return Caller(error=exc.description or exc.error or "invalid authorization header")
    except Exception as exc:  # noqa: BLE001 - fail closed on anything unexpected
        logger.exception("token validation failed unexpectedly")
        return Caller(error=f"token validation failed ({type(exc).__name__})")
