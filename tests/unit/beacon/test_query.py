"""Request parsing, reference names, CPR detection, count adjustment, budget limits."""

from __future__ import annotations

import pytest

from server.beacon import request as breq
from server.beacon.budget import limits
from server.beacon.cpr import looks_like_cpr, text_may_contain
from server.beacon.refs import canonical_chrom, normalize_assembly
from server.beacon.tiers import adjust, person_scoped, shown_count
from server.errors import InvalidInput
from server.settings import Settings


@pytest.mark.parametrize("name", ["chr22", "22", "NC_000022.11", "refseq:NC_000022.11", "CHR22"])
def test_reference_aliases_resolve_to_one_name(name):
    chrom, asm = canonical_chrom(name)
    assert chrom == "22" and asm in (None, "GRCh38")


def test_refseq_accession_names_its_assembly():
    assert canonical_chrom("NC_000022.10") == ("22", "GRCh37")
    assert canonical_chrom("chrM") == ("MT", None)
    assert normalize_assembly("hg38") == "GRCh38" and normalize_assembly("GRCh37.p13") == "GRCh37"
    with pytest.raises(InvalidInput):
        canonical_chrom("NC_999999.1")


@pytest.mark.parametrize(
    "value,expected",
    [
        ("010190-1234", True),
        ("311299-0000", True),
        ("0101901234", True),
        ("3112991234", True),
        ("patient 150385-1234 seen", True),
        ("3213991234", False),
        ("HG00096", False),
        ("1234567890", False),
        ("000000-0000", False),
        ("SRR00000001", False),
    ],
)
def test_cpr_detection(value, expected):
    assert looks_like_cpr(value) is expected
    if expected:
        assert text_may_contain(f'{{"id": "{value}"}}')


def test_get_and_post_build_the_same_request():
    get = breq.from_get(
        "g_variants",
        {
            "referenceName": "22",
            "start": "100,200",
            "end": "300,400",
            "filters": "HP:1,NCIT:2",
            "requestedGranularity": "count",
            "skip": "2",
            "limit": "5",
            "datasetIds": "a,b",
            "includeResultsetResponses": "ALL",
            "testMode": "true",
        },
    )
    post = breq.from_post(
        "g_variants",
        {
            "meta": {"apiVersion": "v2.0"},
            "query": {
                "requestParameters": {
                    "g_variant": {
                        "referenceName": "22",
                        "start": [100, 200],
                        "end": [300, 400],
                        "datasetIds": ["a", "b"],
                    }
                },
                "filters": [{"id": "HP:1"}, {"id": "NCIT:2"}],
                "requestedGranularity": "count",
                "pagination": {"skip": 2, "limit": 5},
                "includeResultsetResponses": "ALL",
                "testMode": True,
            },
        },
    )
    assert get == post
    assert get.summary()["requestParameters"]["g_variant"]["start"] == [100, 200]


def test_limit_is_capped_and_reported():
    req = breq.build("individuals", limit=5000, max_limit=100)
    assert (req.limit, req.limit_capped, req.requested_limit) == (100, True, 5000)
    assert breq.build("individuals", limit=7, max_limit=100).limit_capped is False


@pytest.mark.parametrize(
    "kw",
    [
        {"skip": -1},
        {"granularity": "all"},
        {"include": "SOME"},
        {"params": {"start": "x"}},
        {"params": {"alternateBases": "Z"}},
        {"filters": [{"id": "age", "operator": "~", "value": "1"}]},
        {"filters": [{"id": "age", "operator": ">"}]},
    ],
)
def test_invalid_requests_raise(kw):
    with pytest.raises(InvalidInput):
        breq.build("g_variants", **kw)


def test_count_adjustment():
    s = Settings(beacon_count_threshold=5, beacon_count_rounding=10)
    assert [adjust(n, s, exact=False) for n in (0, 4, 5, 14, 15, 26)] == [0, 0, 10, 10, 20, 30]
    assert adjust(4, s, exact=True) == 4


def test_variant_counts_are_rounded_not_thresholded():
    # every visible allele already has >= threshold carriers: one of them is a hit
    s = Settings(beacon_count_threshold=5, beacon_count_rounding=10)
    assert [shown_count("g_variants", n, s, "boolean") for n in (0, 1, 4, 15)] == [0, 10, 10, 20]
    assert [shown_count("individuals", n, s, "count") for n in (1, 4, 5)] == [0, 0, 10]
    assert shown_count("individuals", 3, s, "record") == 3


def test_budget_limits_per_tier():
    s = Settings(
        beacon_rate_per_minute=7,
        beacon_rate_per_day=70,
        beacon_budgets={"boolean": {"day": 10}, "record": {"minute": 0}},
    )
    assert limits(s, "boolean") == {"minute": 7, "day": 10}
    assert limits(s, "count") == {"minute": 7, "day": 70}
    assert limits(s, "record") == {"minute": 0, "day": 70}


@pytest.mark.parametrize(
    "entry,kw,scoped",
    [
        ("g_variants", {"source_type": "individual", "source_id": "X"}, True),
        ("runs", {"source_type": "biosample", "source_id": "X"}, True),
        ("individuals", {"entry_id": "X"}, True),
        ("analyses", {"entry_id": "X"}, True),
        ("g_variants", {"entry_id": "22:1:A:G"}, False),
        ("individuals", {}, False),
        ("individuals", {"source_type": "g_variant", "source_id": "22:1:A:G"}, False),
        ("individuals", {"source_type": "cohort", "source_id": "C"}, False),
    ],
)
def test_person_scoped_requests(entry, kw, scoped):
    assert person_scoped(breq.build(entry, **kw)) is scoped
