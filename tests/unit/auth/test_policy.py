"""The shared authorisation decisions: dataset access, Beacon tiers, WES callers."""

from __future__ import annotations

import time
from types import SimpleNamespace

import pytest

from server.auth import (
    ANONYMOUS,
    Caller,
    authorize_dataset,
    beacon_granularity,
    grant_value_of,
    require_authenticated,
)
from server.errors import InvalidAuthentication, PermissionDenied


def ds(id_, access, grant_value=""):
    return SimpleNamespace(id=id_, access=access, grant_value=grant_value)


ALICE = Caller(
    subject="iss|alice",
    issuer="iss",
    controlled=frozenset({"g-ctrl"}),
    expires=time.time() + 86400 * 365,
)
REGISTERED = Caller(
    subject="iss|bob", issuer="iss", registered=True, expires=time.time() + 86400 * 365
)
PLAIN = Caller(subject="iss|carol", issuer="iss", expires=time.time() + 86400 * 365)
REJECTED = Caller(error="signature verification failed")
EXPIRED = Caller(
    subject="iss|dan",
    issuer="iss",
    controlled=frozenset({"g-ctrl"}),
    registered=True,
    expires=time.time() - 1,
)


def test_grant_value_defaults_to_dataset_id():
    assert grant_value_of(ds("d1", "controlled")) == "d1"
    assert grant_value_of(ds("d1", "controlled", "urn:x")) == "urn:x"


@pytest.mark.parametrize(
    "caller,dataset,expected",
    [
        (ANONYMOUS, ds("pub", "public"), "record"),
        (ANONYMOUS, ds("reg", "registered"), "boolean"),
        (ANONYMOUS, ds("ctl", "controlled", "g-ctrl"), "boolean"),
        (PLAIN, ds("reg", "registered"), "boolean"),
        (PLAIN, ds("ctl", "controlled", "g-ctrl"), "boolean"),
        (REGISTERED, ds("reg", "registered"), "record"),
        (REGISTERED, ds("ctl", "controlled", "g-ctrl"), "count"),
        (ALICE, ds("ctl", "controlled", "g-ctrl"), "record"),
        (ALICE, ds("other", "controlled"), "boolean"),
        (EXPIRED, ds("ctl", "controlled", "g-ctrl"), "boolean"),
    ],
)
def test_beacon_granularity(caller, dataset, expected):
    assert beacon_granularity(caller, dataset) == expected


def test_beacon_granularity_rejected_token_is_401():
    with pytest.raises(InvalidAuthentication):
        beacon_granularity(REJECTED, ds("pub", "public"))


def test_authorize_dataset_statuses():
    authorize_dataset(ALICE, ds("ctl", "controlled", "g-ctrl"))
    with pytest.raises(PermissionDenied):
        authorize_dataset(ALICE, ds("other", "controlled"))
    with pytest.raises(InvalidAuthentication):
        authorize_dataset(ANONYMOUS, ds("other", "controlled"))
    with pytest.raises(PermissionDenied):
        authorize_dataset(ALICE, ds("weird", "secret"))


@pytest.mark.parametrize("caller", [ANONYMOUS, REJECTED, EXPIRED])
def test_require_authenticated_refuses(caller):
    with pytest.raises(InvalidAuthentication):
        require_authenticated(caller)


def test_require_authenticated_accepts_valid_caller():
    require_authenticated(PLAIN)


def test_expired_caller_gets_401_not_403():
    with pytest.raises(InvalidAuthentication):
        authorize_dataset(EXPIRED, ds("ctl", "controlled", "g-ctrl"))
    authorize_dataset(EXPIRED, ds("pub", "public"))  # public data stays public
