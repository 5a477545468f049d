import pytest

from server.genomics.coords import (
    Interval,
    anchor_start,
    closed_length,
    exclusive_end,
    from_region,
    inclusive_end,
    last_pos,
    length_after_anchor,
    nonempty_end,
    pos_before,
    pos_to_start,
    range_header,
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


def test_region_strings_without_an_end():
    assert to_region("chr2") == "chr2"
    assert to_region("chr2", 99) == "chr2:100"
    assert from_region("chr2:1,000-2,000") == ("chr2", 999, 2000)
    assert from_region("chr2:100") == ("chr2", 99, None)


def test_inclusive_and_exclusive_ends_invert_each_other():
    # the first 100 bytes are [0, 100), written bytes=0-99
    assert inclusive_end(100) == 99
    assert exclusive_end(99) == 100
    assert all(exclusive_end(inclusive_end(n)) == n for n in range(5))


def test_range_header_names_the_last_byte():
    assert range_header(0, 100) == "bytes=0-99"
    assert range_header(65280, 65281) == "bytes=65280-65280"  # one byte


def test_nonempty_end_widens_only_an_empty_range():
    assert nonempty_end(10, 10) == 11
    assert nonempty_end(10, 12) == 12


def test_anchor_and_neighbour_positions():
    # a trimmed deletion starting at 0-based 100 is anchored on the base at 99
    assert anchor_start(100) == 99
    # an insertion after 1-based 100 is written 100_101ins
    assert pos_before(101) == 100


def test_closed_ranges_of_positions():
    # three bases from position 10 end at 12, and 10_12 holds three positions
    assert last_pos(10, 3) == 12
    assert last_pos(10, 1) == 10
    assert closed_length(10, 12) == 3
    assert closed_length(10, 10) == 1


def test_structural_variant_length_skips_the_anchor_base():
    # POS=1000, INFO/END=2000: the deletion removes bases 1001..2000
    assert length_after_anchor(vcf_interval(1000, "N", info_end=2000)) == 1000
    assert length_after_anchor(Interval(5, 6)) == 1  # never below one base
