"""Signed data URLs and Range parsing."""

from __future__ import annotations

import os
import stat
import urllib.parse

import pytest

from server import dataplane
from server.errors import PermissionDenied, RangeNotSatisfiable
from server.settings import Settings


def _params(url: str) -> tuple[str, str, dict]:
    parts = urllib.parse.urlsplit(url)
    _, _, kind, ident = parts.path.split("/", 3)
    return kind, urllib.parse.unquote(ident), dict(urllib.parse.parse_qsl(parts.query))


def test_signed_url_verifies_and_carries_extra(tmp_path):
    settings = Settings(
        var_dir=str(tmp_path), signing_key="k" * 32, public_url="https://node.example/"
    )
    url = dataplane.sign_url(settings, "file", "a/b 1", extra={"n": 3})
    assert url.startswith("https://node.example/data/file/a%2Fb%201?")
    kind, ident, params = _params(url)
    assert dataplane.verify(settings, kind, ident, params) == {"n": "3"}
    for bad in (
        {**params, "n": "4"},
        {**params, "sig": params["sig"][:-2] + "AA"},
        {"exp": params["exp"]},
    ):
        with pytest.raises(PermissionDenied):
            dataplane.verify(settings, kind, ident, bad)
    with pytest.raises(PermissionDenied):
        dataplane.verify(settings, "index", ident, params)
    other = settings.with_overrides(signing_key="z" * 32)
    with pytest.raises(PermissionDenied):
        dataplane.verify(other, kind, ident, params)


def test_expired_url_is_refused(tmp_path):
    settings = Settings(var_dir=str(tmp_path), signing_key="k" * 32)
    kind, ident, params = _params(dataplane.sign_url(settings, "file", "1", ttl=-5))
    with pytest.raises(PermissionDenied):
        dataplane.verify(settings, kind, ident, params)


def test_generated_key_is_private_and_stable(tmp_path):
    settings = Settings(var_dir=str(tmp_path / "var"))
    first = dataplane.signing_key(settings)
    path = tmp_path / "var" / "signing.key"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    dataplane._KEYS.clear()
    assert dataplane.signing_key(settings) == first and len(first) >= 32


@pytest.mark.parametrize(
    "header,expected",
    [
        ("bytes=0-9", (0, 10)),
        ("bytes=5-", (5, 100)),
        ("bytes=-10", (90, 100)),
        ("bytes=90-500", (90, 100)),
        ("bytes=0-0", (0, 1)),
        ("items=0-9", None),
        ("bytes=0-1,5-6", None),
        ("bytes=9-3", None),
        ("", None),
    ],
)
def test_parse_range(header, expected):
    assert dataplane.parse_range(header, 100) == expected


@pytest.mark.parametrize("header", ["bytes=100-", "bytes=250-300", "bytes=-0"])
def test_unsatisfiable_range(header):
    with pytest.raises(RangeNotSatisfiable):
        dataplane.parse_range(header, 100)


def test_resolver_kinds_are_checked():
    with pytest.raises(ValueError):
        dataplane.register_resolver("../x", lambda *a: None)


def test_url_expiry_is_cut_to_the_grant_and_names_the_caller(tmp_path):
    import time

    settings = Settings(var_dir=str(tmp_path), signing_key="k" * 32, data_url_ttl=300)
    soon = time.time() + 5.7
    url = dataplane.sign_url(settings, "file", "1", caller="https://iss|alice", expires=soon)
    kind, ident, params = _params(url)
    assert int(params["exp"]) == int(soon)  # never past the grant, rounded down
    assert params["who"] == "https://iss|alice"
    exp, values = dataplane.check_signature(settings, kind, ident, params)
    assert values["who"] == "https://iss|alice"
    later = dataplane.sign_url(settings, "file", "1", expires=time.time() + 10_000)
    assert int(_params(later)[2]["exp"]) <= int(time.time()) + 300  # the TTL still caps it
    assert _params(later)[2]["who"] == "anonymous"
    with pytest.raises(PermissionDenied):  # the caller cannot be swapped under the signature
        dataplane.check_signature(settings, kind, ident, {**params, "who": "https://iss|bob"})
    with pytest.raises(ValueError):
        dataplane.sign_url(settings, "file", "1", extra={"who": "x"})


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
