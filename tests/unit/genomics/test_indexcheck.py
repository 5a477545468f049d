"""An index is accepted only for its own data file.

Every file of the shared test data is crossed with every other index of its
format: its own passes, all others are refused, including a BAM with another
BAM's index although both headers declare the same 86 references.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from server.genomics import indexcheck
from server.genomics.indexcheck import IndexMismatch, bin_span

TESTDATA = Path(__file__).resolve().parents[3].parent / "shared" / "testdata"


def _pairs() -> dict[str, list[tuple[Path, Path, str]]]:
    variants = sorted((TESTDATA / "variants").glob("*.vcf.gz"))
    return {
        "BAM": [(p, Path(f"{p}.bai"), "BAI") for p in sorted((TESTDATA / "reads").glob("*.bam"))],
        "CRAM": [
            (p, Path(f"{p}.crai"), "CRAI") for p in sorted((TESTDATA / "reads").glob("*.cram"))
        ],
        "VCF": [
            (
                p,
                Path(f"{p}.csi") if Path(f"{p}.csi").exists() else Path(f"{p}.tbi"),
                "CSI" if Path(f"{p}.csi").exists() else "TBI",
            )
            for p in variants
        ],
        "BCF": [
            (p, Path(f"{p}.csi"), "CSI") for p in sorted((TESTDATA / "variants").glob("*.bcf"))
        ],
    }


CASES = [
    (fmt, data, index, kind)
    for fmt, items in _pairs().items()
    for (data, _, _), (_, index, kind) in itertools.product(items, items)
]


@pytest.mark.parametrize(
    "fmt,data,index,kind", CASES, ids=[f"{d.name}<-{i.name}" for _, d, i, _ in CASES]
)
def test_only_the_files_own_index_is_accepted(fmt, data, index, kind):
    own = Path(str(data) + "." + kind.lower()) == index
    if own:
        indexcheck.check(data, fmt, index, kind)
    else:
        with pytest.raises(IndexMismatch):
            indexcheck.check(data, fmt, index, kind)


def test_same_header_bams_are_told_apart_by_their_records():
    import pysam

    a, b = TESTDATA / "reads/htsnexus_test_NA12878.bam", TESTDATA / "reads/HG00100.chr17slice.bam"
    with pysam.AlignmentFile(str(a)) as fa, pysam.AlignmentFile(str(b)) as fb:
        assert fa.references == fb.references and fa.lengths == fb.lengths
    with pytest.raises(IndexMismatch, match="no BAM record where the index points"):
        indexcheck.check(a, "BAM", Path(f"{b}.bai"), "BAI")


def test_bin_span_matches_the_binning_scheme():
    from server.genomics.binning import reg2bins

    assert bin_span(0, 14, 5) == (0, 1 << 29)
    assert bin_span(4681, 14, 5) == (0, 1 << 14)  # first leaf
    assert bin_span(4682, 14, 5) == (1 << 14, 2 << 14)
    for start in (0, 123_456, 5_000_000, 99_999_999):
        for bin_id in reg2bins(start, start + 1):
            lo, hi = bin_span(bin_id, 14, 5)
            assert lo <= start < hi
    with pytest.raises(IndexMismatch):
        bin_span(37450 + 10, 14, 5)
