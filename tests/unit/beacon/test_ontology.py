"""The is_a closure: ancestors of every term, at any depth, cycles cut."""

from __future__ import annotations

import sys

from server.beacon.ontology import closure, parse_obo


def test_ancestors_include_the_term_and_every_parent_named():
    parents = {"C": {"B"}, "B": {"A"}, "D": {"B", "X"}}
    assert closure(parents) == {
        "A": {"A"},
        "B": {"A", "B"},
        "C": {"A", "B", "C"},
        "D": {"A", "B", "D", "X"},
        "X": {"X"},  # a parent without a stanza of its own
    }


def test_a_deep_chain_closes_under_a_low_recursion_limit():
    depth = 1500
    parents = {f"T:{i}": {f"T:{i + 1}"} for i in range(depth)}
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(100)
    try:
        anc = closure(parents)
        assert sys.getrecursionlimit() == 100  # the closure leaves the interpreter alone
    finally:
        sys.setrecursionlimit(limit)
    assert anc["T:0"] == {f"T:{i}" for i in range(depth + 1)}
    assert anc[f"T:{depth}"] == {f"T:{depth}"}


def test_a_cycle_is_cut_at_the_back_edge():
    # A is_a B is_a A: walking from A, the edge back to A is ignored
    assert closure({"A": {"B"}, "B": {"A"}}) == {"A": {"A", "B"}, "B": {"B"}}
    assert closure({"A": {"A"}}) == {"A": {"A"}}


def test_hpo_seizure_ancestors(testdata):
    _, parents = parse_obo(testdata / "annotations" / "hp.obo.gz")
    anc = closure(parents)
    assert {"HP:0001250", "HP:0012638", "HP:0000707", "HP:0000118", "HP:0000001"} <= anc[
        "HP:0001250"
    ]
    assert anc["HP:0000001"] == {"HP:0000001"}
