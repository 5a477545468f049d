"""Signed data URLs: who may read which bytes, until when.

A data URL is ``<public_url>/data/<kind>/<ident>?who=<caller>&exp=<unix time>&sig=<HMAC>``.
``sign_url`` makes one for the APIs that hand out bytes (htsget tickets, DRS
access URLs, WES logs and outputs); the data plane (``server.web.dataplane``)
checks it with ``check_signature`` and ``check_expiry`` before it serves a
byte. The signature covers the kind, the identifier, the expiry and every
extra value, ``who`` included, so a URL cannot be re-aimed at another object,
kept past its grant, or audited under another caller. Only the holder of the
URL can read it (never the caller's bearer token is needed or embedded).

This module knows no HTTP framework: the services sign URLs without importing
the web layer.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import math
import os
import re
import threading
import time
import urllib.parse
from pathlib import Path

from server import errors
from server.settings import Settings

PREFIX = "/data/"
WHO = "who"  # the query parameter naming the caller (inside the signature)
ANONYMOUS = "anonymous"
_RESERVED = {"exp", "sig", WHO}
_KIND = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")

_KEYS: dict[str, bytes] = {}
_KEY_LOCK = threading.Lock()


def check_kind(kind: str) -> None:
    """A kind is a short lower-case name: it is a path segment of every URL."""
    if not _KIND.match(kind):
        raise ValueError(f"invalid data-plane kind {kind!r}")


def signing_key(settings: Settings) -> bytes:
    """``settings.signing_key``, or a key generated once into ``<var_dir>/signing.key`` (0600)."""
    if settings.signing_key:
        return settings.signing_key.encode()
    # Every ticket signs a URL: skip resolving the path once the key is known
    # (absolute directories only; a relative one depends on the working directory).
    absolute = os.path.isabs(settings.var_dir)
    cached = _KEYS.get(settings.var_dir) if absolute else None
    if cached:
        return cached
    path = Path(settings.var_dir).resolve() / "signing.key"
    with _KEY_LOCK:
        cached = _KEYS.get(str(path))
        if cached:
            return cached
        try:
            key = path.read_bytes().strip()
        except FileNotFoundError:
            path.parent.mkdir(parents=True, exist_ok=True)
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                key = path.read_bytes().strip()
            else:
                with os.fdopen(fd, "w") as fh:
                    fh.write(os.urandom(32).hex())
                key = path.read_bytes().strip()
        if not key:
            raise errors.ServiceError("the signing key file is empty")
        _KEYS[str(path)] = key
        if absolute:
            _KEYS[settings.var_dir] = key
        return key


def _signature(key: bytes, kind: str, ident: str, exp: int, extra: dict[str, str]) -> str:
    message = json.dumps([kind, ident, exp, sorted(extra.items())], separators=(",", ":"))
    digest = hmac.new(key, message.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def sign_url(
    settings: Settings,
    kind: str,
    ident: str,
    *,
    ttl: int | None = None,
    extra: dict[str, object] | None = None,
    caller: str | None = None,
    expires: float | None = None,
) -> str:
    """An absolute URL that serves ``ident`` of ``kind`` to ``caller`` (a label,
    audited with every download) for ``ttl`` seconds, and never past ``expires``
    (unix time: when the grant behind the URL ends)."""
    check_kind(kind)
    exp = url_expiry(settings, ttl=ttl, expires=expires)
    extra = {str(k): str(v) for k, v in (extra or {}).items()}
    if _RESERVED & set(extra):
        raise ValueError("extra may not use the names exp, sig or who")
    extra[WHO] = caller or ANONYMOUS
    sig = _signature(signing_key(settings), kind, ident, exp, extra)
    query = urllib.parse.urlencode({**extra, "exp": exp, "sig": sig})
    path = f"{PREFIX}{kind}/{urllib.parse.quote(ident, safe='')}"
    return f"{settings.public_url.rstrip('/')}{path}?{query}"


def check_signature(
    settings: Settings, kind: str, ident: str, params: dict[str, str]
) -> tuple[int, dict[str, str]]:
    """``(exp, signed values)`` of a URL whose signature is valid, or raise 403."""
    params = dict(params)
    sig = params.pop("sig", "")
    try:
        exp = int(params.pop("exp", ""))
    except ValueError:
        raise errors.PermissionDenied("the data URL is not signed") from None
    want = _signature(signing_key(settings), kind, ident, exp, params)
    if not sig or not hmac.compare_digest(sig, want):
        raise errors.PermissionDenied("the data URL signature is not valid")
    return exp, params


def url_expiry(settings: Settings, *, ttl: int | None = None, expires: float | None = None) -> int:
    """``exp`` of a URL signed now: the TTL, cut to ``expires`` (the grant's end)."""
    exp = int(time.time()) + (settings.data_url_ttl if ttl is None else ttl)
    if expires is not None:
        exp = min(exp, math.floor(expires))
    return exp


def check_expiry(exp: int) -> None:
    if exp < time.time():
        raise errors.PermissionDenied("the data URL has expired")


def verify(settings: Settings, kind: str, ident: str, params: dict[str, str]) -> dict[str, str]:
    """Check a URL's signature and expiry; returns its ``extra`` values (without ``who``)."""
    exp, values = check_signature(settings, kind, ident, params)
    check_expiry(exp)
    values.pop(WHO, None)
    return values
