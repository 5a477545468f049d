"""Outbound fetches for access control: JWKS, discovery documents, userinfo.

Every URL is checked before it is fetched: only ``https`` (or plain ``http`` to
a loopback address, for development issuers) is allowed, redirects are never
followed, responses are size-bounded and every request has a timeout. The URLs
themselves only ever come from configuration (or from a configured issuer's
own discovery document), never from a token.
"""

from __future__ import annotations

import ipaddress
import json
import threading
from typing import Any
from urllib.parse import urlsplit

import requests

TIMEOUT = (3.0, 5.0)  # connect, read
MAX_BYTES = 512 * 1024


class FetchError(Exception):
    """A document could not be fetched or is not what was expected."""


def is_allowed_url(url: str) -> bool:
    """https anywhere; http only to a loopback host. No credentials in URLs."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    if parts.username or parts.password or not parts.hostname:
        return False
    if parts.scheme == "https":
        return True
    if parts.scheme != "http":
        return False
    host = parts.hostname
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


_session_local = threading.local()


def _session() -> requests.Session:
    session = getattr(_session_local, "session", None)
    if session is None:
        session = requests.Session()
        session.trust_env = False  # no proxies or netrc credentials from the environment
        _session_local.session = session
    return session


def fetch_json(
    url: str, *, bearer: str | None = None, form: dict[str, str] | None = None
) -> dict[str, Any]:
    """GET a JSON object from an allowed URL (no redirects, bounded size); with
    ``form``, POST it form-encoded instead (an OAuth token endpoint)."""
    if not is_allowed_url(url):
        raise FetchError(
            f"refusing to fetch {_safe(url)!r}: only https or loopback http is allowed"
        )
    headers = {"Accept": "application/json"}
    if bearer is not None:
        headers["Authorization"] = f"Bearer {bearer}"
    method = "GET" if form is None else "POST"
    try:
        with _session().request(
            method,
            url,
            headers=headers,
            data=form,
            timeout=TIMEOUT,
            allow_redirects=False,
            stream=True,
        ) as resp:
            if resp.status_code != 200:
                raise FetchError(f"{_safe(url)} answered HTTP {resp.status_code}")
            body = b""
            for chunk in resp.iter_content(64 * 1024):
                body += chunk
                if len(body) > MAX_BYTES:
                    raise FetchError(f"{_safe(url)}: response larger than {MAX_BYTES} bytes")
    except requests.RequestException as exc:
        raise FetchError(f"{_safe(url)}: {type(exc).__name__}") from None
    try:
        data = json.loads(body)
    except ValueError:
        raise FetchError(f"{_safe(url)}: not JSON") from None
    if isinstance(data, dict):
        return data
    raise FetchError(f"{_safe(url)}: not a JSON object")


def _safe(url: str) -> str:
    """The URL without query or fragment, for error messages."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"
