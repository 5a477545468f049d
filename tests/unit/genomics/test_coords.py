import ast
import re
from pathlib import Path

import pytest

import server
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


# Where ``pos``/``end`` are cursors into a byte buffer (ITF8/LTF8 and BGZF
# subfield parsing, newline scanning), not coordinates.
BYTE_CURSORS = {"genomics/cram.py", "genomics/bgzf.py", "wes/worker.py"}
_COORD_NAME = re.compile(r"(^|_)(pos|start|end|first|last|stop|begin)s?($|_)", re.IGNORECASE)


def plus_minus_one(root: Path) -> list[str]:
    """``x + 1`` / ``x - 1`` on a coordinate-named ``x`` outside coords.py."""
    found = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root).as_posix()
        if rel == "genomics/coords.py" or rel in BYTE_CURSORS:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.BinOp) or not isinstance(node.op, (ast.Add, ast.Sub)):
                continue
            for operand, other in ((node.left, node.right), (node.right, node.left)):
                name = getattr(operand, "id", None) or getattr(operand, "attr", "")
                if (
                    isinstance(other, ast.Constant)
                    and other.value == 1
                    and _COORD_NAME.search(name)
                ):
                    found.append(f"{rel}:{node.lineno}: {ast.unparse(node)}")
    return found


def test_no_off_by_one_outside_coords(tmp_path):
    assert plus_minus_one(Path(server.__file__).parent) == []
    # the scan finds what the helpers replaced
    (tmp_path / "beacon").mkdir()
    (tmp_path / "beacon" / "vcf.py").write_text("end = vcf_interval(start + 1, ref).end\n")
    assert plus_minus_one(tmp_path) == ["beacon/vcf.py:1: start + 1"]
