import pytest

from server.genomics.coords import (
    Interval,
    from_region,
    pos_to_start,
    start_to_pos,
    to_region,
    vcf_interval,
)


def test_first_base():
    assert pos_to_start(1) == 0
    assert start_to_pos(0) == 1
    assert vcf_interval(1, "A") == Interval(0, 1)


def test_deletion_covers_every_reference_base():
    # POS=100 REF=ACGT ALT=A covers bases 100..103 (1-based) = [99, 103)
    assert vcf_interval(100, "ACGT") == Interval(99, 103)


def test_structural_variant_uses_info_end():
    # INFO/END is 1-based inclusive, which equals a 0-based exclusive end
    assert vcf_interval(1000, "N", info_end=2000) == Interval(999, 2000)


def test_interval_ending_at_contig_length_and_region_round_trip():
    assert to_region("chr1", 0, 248956422) == "chr1:1-248956422"
    assert from_region("chr1:1-248956422") == ("chr1", 0, 248956422)
    assert from_region("chrUn_KI270302v1") == ("chrUn_KI270302v1", None, None)


def test_empty_interval_and_overlap():
    empty = Interval(5, 5)
    assert len(empty) == 0
    assert not empty.overlaps(Interval(0, 10))
    assert Interval(0, 10).overlaps(Interval(9, 11))
    assert not Interval(0, 10).overlaps(Interval(10, 11))
    with pytest.raises(ValueError):
        Interval(5, 4)
