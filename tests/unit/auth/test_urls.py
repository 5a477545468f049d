"""Signed data URLs: what they cover, when they die, whom they name."""

from __future__ import annotations

import os
import stat
import urllib.parse

import pytest

from server.auth import urls
from server.errors import PermissionDenied
from server.settings import Settings


def _params(url: str) -> tuple[str, str, dict]:
    parts = urllib.parse.urlsplit(url)
    _, _, kind, ident = parts.path.split("/", 3)
    return kind, urllib.parse.unquote(ident), dict(urllib.parse.parse_qsl(parts.query))


def test_signed_url_verifies_and_carries_extra(tmp_path):
    settings = Settings(
        var_dir=str(tmp_path), signing_key="k" * 32, public_url="https://node.example/"
    )
    url = urls.sign_url(settings, "file", "a/b 1", extra={"n": 3})
    assert url.startswith("https://node.example/data/file/a%2Fb%201?")
    kind, ident, params = _params(url)
    assert urls.verify(settings, kind, ident, params) == {"n": "3"}
    for bad in (
        {**params, "n": "4"},
        {**params, "sig": params["sig"][:-2] + "AA"},
        {"exp": params["exp"]},
    ):
        with pytest.raises(PermissionDenied):
            urls.verify(settings, kind, ident, bad)
    with pytest.raises(PermissionDenied):
        urls.verify(settings, "index", ident, params)
    other = settings.with_overrides(signing_key="z" * 32)
    with pytest.raises(PermissionDenied):
        urls.verify(other, kind, ident, params)


def test_expired_url_is_refused(tmp_path):
    settings = Settings(var_dir=str(tmp_path), signing_key="k" * 32)
    kind, ident, params = _params(urls.sign_url(settings, "file", "1", ttl=-5))
    with pytest.raises(PermissionDenied):
        urls.verify(settings, kind, ident, params)


def test_generated_key_is_private_and_stable(tmp_path):
    settings = Settings(var_dir=str(tmp_path / "var"))
    first = urls.signing_key(settings)
    path = tmp_path / "var" / "signing.key"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    urls._KEYS.clear()
    assert urls.signing_key(settings) == first and len(first) >= 32


def test_url_expiry_is_cut_to_the_grant_and_names_the_caller(tmp_path):
    import time

    settings = Settings(var_dir=str(tmp_path), signing_key="k" * 32, data_url_ttl=300)
    soon = time.time() + 5.7
    url = urls.sign_url(settings, "file", "1", caller="https://iss|alice", expires=soon)
    kind, ident, params = _params(url)
    assert int(params["exp"]) == int(soon)  # never past the grant, rounded down
    assert params["who"] == "https://iss|alice"
    exp, values = urls.check_signature(settings, kind, ident, params)
    assert values["who"] == "https://iss|alice"
    later = urls.sign_url(settings, "file", "1", expires=time.time() + 10_000)
    assert int(_params(later)[2]["exp"]) <= int(time.time()) + 300  # the TTL still caps it
    assert _params(later)[2]["who"] == "anonymous"
    with pytest.raises(PermissionDenied):  # the caller cannot be swapped under the signature
        urls.check_signature(settings, kind, ident, {**params, "who": "https://iss|bob"})
    with pytest.raises(ValueError):
        urls.sign_url(settings, "file", "1", extra={"who": "x"})


def test_access_expires_only_for_non_public_data():
    from server.auth import Caller, access_expires

    caller = Caller(subject="iss|a", issuer="iss", controlled=frozenset({"g"}), expires=123.0)
    assert access_expires(caller, "public") is None
    assert access_expires(caller, "registered") == 123.0
    assert access_expires(caller, "controlled") == 123.0


def test_wes_and_drs_urls_name_their_caller_and_die_with_the_token(tmp_path):
    import time

    from server.auth import Caller
    from server.wes.service import _url

    settings = Settings(var_dir=str(tmp_path), signing_key="k" * 32, data_url_ttl=300)
    caller = Caller(subject="iss|bob", issuer="iss", expires=time.time() + 7.5)
    params = _params(_url(settings, "run1/stdout", caller))[2]
    assert params["who"] == "iss|bob" and int(params["exp"]) == int(caller.expires)
