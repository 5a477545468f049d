"""Every access decision of ``server.auth``: token rejection, the anonymous policy,
ownership of runs and outputs, dataset access and the Beacon tier per dataset."""

from __future__ import annotations

import time
from types import SimpleNamespace

import pytest

from server.auth import (
    ANONYMOUS,
    Caller,
    anonymous_allowed,
    authorize,
    authorize_dataset,
    beacon_tier,
    check_token,
    grant_value_of,
    owner_access,
    require_caller,
)
from server.errors import InvalidAuthentication, NotFound, PermissionDenied
from server.settings import Settings


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
def test_beacon_tier(caller, dataset, expected):
    assert beacon_tier(caller, dataset) == expected


def test_beacon_tier_is_per_dataset():
    datasets = [ds("pub", "public"), ds("reg", "registered"), ds("ctl", "controlled", "g-ctrl")]
    assert [beacon_tier(REGISTERED, d) for d in datasets] == ["record", "record", "count"]
    assert [beacon_tier(ALICE, d) for d in datasets] == ["record", "boolean", "record"]


def test_beacon_tier_rejected_token_is_401():
    with pytest.raises(InvalidAuthentication):
        beacon_tier(REJECTED, ds("pub", "public"))


def test_authorize_dataset_statuses():
    authorize_dataset(ALICE, ds("ctl", "controlled", "g-ctrl"))
    with pytest.raises(PermissionDenied):
        authorize_dataset(ALICE, ds("other", "controlled"))
    with pytest.raises(InvalidAuthentication):
        authorize_dataset(ANONYMOUS, ds("other", "controlled"))
    with pytest.raises(PermissionDenied):
        authorize_dataset(ALICE, ds("weird", "secret"))


def test_authorize_says_when_the_access_ends():
    assert authorize(ALICE, "public", "pub") is None  # public data: never
    assert authorize(ALICE, "controlled", "g-ctrl") == ALICE.expires


# ------------------------------------------------------------ callers, owners
OPEN = Settings()  # no issuer configured: a development node
ISSUING = Settings(auth_issuers=({"issuer": "iss"},))


def test_anonymous_policy_follows_the_issuers():
    assert anonymous_allowed(OPEN) and not anonymous_allowed(ISSUING)


@pytest.mark.parametrize(
    "decide",
    [
        lambda: check_token(REJECTED),
        lambda: authorize(REJECTED, "public", "pub"),
        lambda: require_caller(REJECTED, anonymous=True),
        lambda: owner_access(REJECTED, "anonymous", OPEN, NotFound("x"), what="WES"),
        lambda: beacon_tier(REJECTED, ds("pub", "public")),
    ],
)
def test_a_rejected_token_is_401_everywhere_never_anonymous(decide):
    with pytest.raises(InvalidAuthentication, match="invalid bearer token"):
        decide()


def test_require_caller():
    assert require_caller(PLAIN) == "iss|carol"
    assert require_caller(ANONYMOUS, anonymous=True) == "anonymous"
    with pytest.raises(InvalidAuthentication, match="WES requires authentication"):
        require_caller(ANONYMOUS, "WES")


@pytest.mark.parametrize(
    "caller,owner,settings,expected",
    [
        (ALICE, "iss|alice", ISSUING, "iss|alice"),
        (PLAIN, "iss|alice", ISSUING, NotFound),  # another caller's: as if missing
        (ALICE, None, ISSUING, NotFound),  # missing
        (ANONYMOUS, "iss|alice", ISSUING, InvalidAuthentication),
        (ANONYMOUS, "anonymous", ISSUING, InvalidAuthentication),
        (ANONYMOUS, "anonymous", OPEN, "anonymous"),  # a development node
        (ANONYMOUS, "iss|alice", OPEN, NotFound),  # never another caller's
        (ANONYMOUS, None, OPEN, NotFound),
        (ALICE, "anonymous", OPEN, NotFound),
    ],
)
def test_owner_access_across_callers(caller, owner, settings, expected):
    missing = NotFound("no such run")
    if isinstance(expected, str):
        assert owner_access(caller, owner, settings, missing, what="WES") == expected
    else:
        with pytest.raises(expected):
            owner_access(caller, owner, settings, missing, what="WES")


def test_expired_caller_gets_401_not_403():
    with pytest.raises(InvalidAuthentication):
        authorize_dataset(EXPIRED, ds("ctl", "controlled", "g-ctrl"))
    authorize_dataset(EXPIRED, ds("pub", "public"))  # public data stays public
