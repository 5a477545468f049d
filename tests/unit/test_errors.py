"""The error kinds: each has the status and htsget ``error`` name the APIs
render, and a kind declared outside ``server.errors`` keeps its parent's."""

from __future__ import annotations

import pytest

from server import errors
from server.beacon.budget import BudgetExhausted
from server.beacon.journal import LoadError

KINDS = [
    ("ServiceError", None, 500, "InternalError"),
    ("InvalidInput", "ServiceError", 400, "InvalidInput"),
    ("InvalidRange", "InvalidInput", 400, "InvalidRange"),
    ("UnsupportedFormat", "InvalidInput", 400, "UnsupportedFormat"),
    ("InvalidAuthentication", "ServiceError", 401, "InvalidAuthentication"),
    ("PermissionDenied", "ServiceError", 403, "PermissionDenied"),
    ("NotFound", "ServiceError", 404, "NotFound"),
    ("Conflict", "ServiceError", 409, "Conflict"),
    ("PayloadTooLarge", "ServiceError", 413, "PayloadTooLarge"),
    ("RangeNotSatisfiable", "ServiceError", 416, "RangeNotSatisfiable"),
    ("TooManyRequests", "ServiceError", 429, "TooManyRequests"),
    ("ServiceUnavailable", "ServiceError", 503, "ServiceUnavailable"),
    ("DataChanged", "ServiceError", 503, "DataChanged"),
]


@pytest.mark.parametrize(("name", "parent", "status", "error"), KINDS)
def test_kind(name, parent, status, error):
    kind = getattr(errors, name)
    assert kind.__module__ == "server.errors" and kind.__qualname__ == name
    assert kind.__bases__ == ((Exception,) if parent is None else (getattr(errors, parent),))
    assert (kind.status, kind.error) == (status, error)
    raised = kind("boom", detail={"x": 1})
    assert (str(raised), raised.detail, raised.status) == ("boom", {"x": 1}, status)


def test_every_kind_is_listed():
    declared = {n for n, v in vars(errors).items() if isinstance(v, type)}
    assert declared == {k[0] for k in KINDS}


def test_kinds_declared_elsewhere_keep_their_parents_name():
    assert (BudgetExhausted.status, BudgetExhausted.error) == (429, "TooManyRequests")
    assert (LoadError.status, LoadError.error) == (400, "InvalidInput")


def test_retry_after_only_on_service_unavailable():
    assert errors.ServiceUnavailable.retry_after == 5
    assert not hasattr(errors.DataChanged, "retry_after")
