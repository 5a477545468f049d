"""Request parsing limits and spellings: int64 bounds, nesting depth, unknown
names, similarity, NCBI assembly accessions, HGVS deletions with bases."""

from __future__ import annotations

import pytest

from server.beacon import request as breq
from server.beacon.engine import _hgvs_plain_deletion
from server.beacon.refs import normalize_assembly
from server.errors import InvalidInput


@pytest.mark.parametrize(
    "name,assembly",
    [
        ("GCF_000001405.26", "GRCh38"),
        ("GCF_000001405.40", "GRCh38"),
        ("GCA_000001405.15", "GRCh38"),
        ("GCA_000001405.29", "GRCh38"),
        ("gcf_000001405.33", "GRCh38"),
        ("GCF_000001405.13", "GRCh37"),
        ("GCF_000001405.25", "GRCh37"),
        ("GCA_000001405.1", "GRCh37"),
        ("GCA_000001405.14", "GRCh37"),
        ("GCF_000001405.41", "GCF_000001405.41"),
        ("GCF_000001635.27", "GCF_000001635.27"),
    ],
)
def test_ncbi_accessions_name_their_assembly(name, assembly):
    assert normalize_assembly(name) == assembly


def test_int64_bounds():
    top = breq.INT64_MAX
    req = breq.build("g_variants", params={"referenceName": "1", "start": [top - 1], "end": [top]})
    assert req.params["end"] == [top]
    for params in ({"start": [top + 1]}, {"end": str(10**30)}, {"variantMinLength": 2**64}):
        with pytest.raises(InvalidInput, match="out of range"):
            breq.build("g_variants", params={"referenceName": "1", **params})
    with pytest.raises(InvalidInput):
        breq.build("g_variants", skip=2**63)
    with pytest.raises(InvalidInput):
        breq.build("g_variants", skip=2**60, limit=100, max_limit=1000)


def test_nesting_depth_is_bounded():
    body = {"query": {"requestParameters": {"g_variant": {"referenceName": "1"}}}}
    breq.from_post("g_variants", body)
    value: object = "1"
    for _ in range(breq.MAX_DEPTH):
        value = [value]
    with pytest.raises(InvalidInput, match="nests deeper"):
        breq.from_post("g_variants", {"query": {"filters": value}})


def test_unknown_names_and_similarity_are_warned():
    get = breq.from_get("individuals", {"colour": "red", "filters": "HP:1"})
    assert get.warnings == ["unknown request parameter 'colour' ignored"]
    post = breq.from_post(
        "individuals",
        {
            "metaa": {},
            "query": {
                "requestParameters": {"g_variant": {"referenceNam": "1"}},
                "filters": [{"id": "HP:1", "similarity": "medium", "x": 1}],
            },
        },
    )
    text = " | ".join(post.warnings)
    assert "'metaa'" in text and "'referenceNam'" in text and "x ignored" in text
    assert "similarity 'medium' is not implemented" in text
    assert (
        breq.from_post(
            "individuals", {"query": {"filters": [{"id": "HP:1", "similarity": "exact"}]}}
        ).warnings
        == []
    )
    with pytest.raises(InvalidInput):
        breq.from_post("individuals", {"query": {"filters": [{"id": "HP:1", "similarity": 3}]}})


PLAIN_DELETIONS = {  # an HGVS change -> the same without the deleted bases
    "10686083_10686085delATA": "10686083_10686085del",
    "100delA": "100del",
    "100del": "100del",
    "100_101delinsTT": "100_101delinsTT",
    "100A>G": "100A>G",
}


@pytest.mark.parametrize("change,plain", PLAIN_DELETIONS.items())
def test_hgvs_deletions_drop_their_bases(change, plain):
    assert _hgvs_plain_deletion(change) == plain


def test_hgvs_deletion_bases_must_fit_the_span():
    with pytest.raises(InvalidInput):
        _hgvs_plain_deletion("100_102delAT")
