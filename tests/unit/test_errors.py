"""The error kinds are the tree the module's docstring draws: each kind's parent,
status and htsget ``error`` name; a kind declared outside ``server.errors``
keeps its parent's name."""

from __future__ import annotations

import re

from server import errors
from server.beacon.budget import BudgetExhausted
from server.beacon.journal import LoadError

ROW = re.compile(r"^(?P<lead>[ │├└─]*)(?P<name>\w+) +(?P<status>\d{3})(?: (?P<error>[A-Z]\w+))?")


def documented() -> dict[str, tuple[str | None, int, str]]:
    """name -> (parent, status, error) for each row of the docstring's tree."""
    found, path = {}, []
    for line in errors.__doc__.splitlines():
        if m := ROW.match(line):
            depth = len(m["lead"]) // 4
            path[depth - 1 :] = [m["name"]]
            parent = path[depth - 2] if depth > 1 else None
            found[m["name"]] = (parent, int(m["status"]), m["error"] or m["name"])
    return found


def test_the_kinds_are_the_documented_tree():
    tree = documented()
    declared = {n: v for n, v in vars(errors).items() if isinstance(v, type)}
    assert len(tree) == 13 and set(tree) == set(declared)
    for name, (parent, status, error) in tree.items():
        kind = declared[name]
        assert (kind.__module__, kind.__qualname__) == ("server.errors", name)
        assert kind.__bases__ == ((declared[parent],) if parent else (Exception,))
        assert (kind.status, kind.error) == (status, error)
        raised = kind("boom", detail={"x": 1})
        assert (str(raised), raised.detail, raised.status) == ("boom", {"x": 1}, status)


def test_kinds_declared_elsewhere_keep_their_parents_name():
    assert (BudgetExhausted.status, BudgetExhausted.error) == (429, "TooManyRequests")
    assert (LoadError.status, LoadError.error) == (400, "InvalidInput")


def test_retry_after_only_on_service_unavailable():
    assert errors.ServiceUnavailable.retry_after == 5
    assert not hasattr(errors.DataChanged, "retry_after")
