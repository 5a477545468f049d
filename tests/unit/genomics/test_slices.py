"""Slices cut from the index alone hold every record pysam returns for the region.

For every indexed file in the shared test data and seed_data/, the pieces of
header + body + EOF are joined, written out, opened with pysam, and compared
with pysam's fetch on the original file.
"""

from __future__ import annotations

import random
import shutil
from pathlib import Path

import pysam
import pytest

from server.genomics import bgzf, slices
from server.genomics.slices import Region

REPO = Path(__file__).resolve().parents[3]
TESTDATA = REPO.parent / "shared" / "testdata"
SEED = REPO / "seed_data"
MPILEUP_REF = TESTDATA / "reads" / "mpileup.ref.fa"

FORMAT_BY_SUFFIX = {".bam": "BAM", ".cram": "CRAM", ".bcf": "BCF", ".vcf.gz": "VCF"}
INDEX_SUFFIXES = {
    "BAM": (".bai", ".csi"),
    "CRAM": (".crai",),
    "VCF": (".tbi", ".csi"),
    "BCF": (".csi",),
}


def _format(path: Path) -> str | None:
    for suffix, fmt in FORMAT_BY_SUFFIX.items():
        if path.name.endswith(suffix):
            return fmt
    return None


def indexed_files() -> list[tuple[Path, str, Path]]:
    out = []
    for root in (TESTDATA / "reads", TESTDATA / "variants", SEED):
        if not root.is_dir():
            continue
        for path in sorted(root.rglob("*")):
            fmt = _format(path)
            if fmt is None:
                continue
            for suffix in INDEX_SUFFIXES[fmt]:
                index = path.with_name(path.name + suffix)
                if index.exists():
                    out.append((path, fmt, index))
                    break
    return out


FILES = indexed_files()


def _reference_for(path: Path) -> str | None:
    fai = [p for p in path.parent.glob("*.fa") if p.with_name(p.name + ".fai").exists()]
    if path.name.startswith("HG00100") and MPILEUP_REF.exists():
        return str(MPILEUP_REF)
    return str(fai[0]) if fai else None


def _open(path: Path, fmt: str, reference: str | None):
    if fmt in ("BAM", "CRAM"):
        return pysam.AlignmentFile(str(path), reference_filename=reference, check_sq=False)
    return pysam.VariantFile(str(path))


def _contigs(path: Path, fmt: str, reference: str | None) -> list[tuple[str, int]]:
    with _open(path, fmt, reference) as fh:
        if fmt in ("BAM", "CRAM"):
            return list(zip(fh.references, fh.lengths, strict=False))
        return [(name, fh.header.contigs[name].length or 250_000_000) for name in fh.header.contigs]


def _key(rec) -> tuple:
    if isinstance(rec, pysam.AlignedSegment):
        return (rec.query_name, rec.flag, rec.reference_name, rec.reference_start, rec.cigarstring)
    return (rec.chrom, rec.pos, rec.id, rec.ref, rec.alts)


def _expected(path, fmt, reference, regions: list[Region] | None) -> list[str]:
    with _open(path, fmt, reference) as fh:
        if regions is None:
            return [_key(r) for r in (fh.fetch(until_eof=True) if fmt in ("BAM", "CRAM") else fh)]
        out = []
        for reg in regions:
            if reg.reference_name == "*":
                out.extend(_key(r) for r in fh.fetch("*"))
            else:
                out.extend(_key(r) for r in fh.fetch(reg.reference_name, reg.start, reg.end))
        return out


def _joined_records(tmp_path: Path, data: bytes, fmt: str, reference: str | None) -> list[str]:
    out = tmp_path / ("slice." + {"VCF": "vcf.gz"}.get(fmt, fmt.lower()))
    out.write_bytes(data)
    save = pysam.set_verbosity(0)
    try:
        with _open(out, fmt, reference) as fh:
            return [_key(r) for r in (fh.fetch(until_eof=True) if fmt in ("BAM", "CRAM") else fh)]
    finally:
        pysam.set_verbosity(save)


def _check(tmp_path, path, fmt, index, regions):
    reference = _reference_for(path)
    cut = slices.open_indexed(path, fmt, index)
    pieces = cut.header() + cut.body(regions) + [cut.eof_piece()]
    got = _joined_records(tmp_path, slices.read_pieces(path, pieces), fmt, reference)
    want = _expected(path, fmt, reference, regions)
    missing = set(want) - set(got)
    assert not missing, f"{len(missing)} of {len(want)} records missing for {regions}"
    return got, want


def _regions(path, fmt, index) -> list[list[Region] | None]:
    reference = _reference_for(path)
    contigs = _contigs(path, fmt, reference)
    with _open(path, fmt, reference) as fh:
        if fmt in ("BAM", "CRAM"):
            used = [name for name in fh.references if fh.count(name) > 0][:4]
        else:
            cut = slices.open_indexed(path, fmt, index)
            used = [
                n
                for i, n in enumerate(cut.names)
                if i < len(cut.index.refs) and cut.index.refs[i].bins
            ][:4]
    lengths = dict(contigs)
    rng = random.Random(path.name)
    cases: list[list[Region] | None] = []
    for name in used:
        length = lengths[name]
        cases.append([Region(name)])  # whole reference
        cases.append([Region(name, 0, 1)])  # first base
        cases.append([Region(name, length - 1, length)])  # last base
        cases.append([Region(name, length // 2, length + 10_000_000)])  # end past the contig
        for _ in range(3):
            start = rng.randrange(length)
            cases.append([Region(name, start, start + 1)])  # 1 bp
            cases.append([Region(name, start, min(length, start + rng.randint(1, 300_000)))])
    if len(used) >= 1:
        name = used[0]
        length = lengths[name]
        cases.append(
            [
                Region(name, 0, length // 3),
                Region(name, length // 2, length),
                Region(used[-1], 0, lengths[used[-1]] // 4),
            ]
        )
    return cases


@pytest.mark.parametrize("path,fmt,index", FILES, ids=[p.name for p, _, _ in FILES])
def test_regions_hold_every_record(tmp_path, path, fmt, index):
    for regions in _regions(path, fmt, index):
        _check(tmp_path, path, fmt, index, regions)


@pytest.mark.parametrize("path,fmt,index", FILES, ids=[p.name for p, _, _ in FILES])
def test_header_only_is_a_valid_empty_file(tmp_path, path, fmt, index):
    cut = slices.open_indexed(path, fmt, index)
    data = slices.read_pieces(path, cut.header() + [cut.eof_piece()])
    assert _joined_records(tmp_path, data, fmt, _reference_for(path)) == []


@pytest.mark.parametrize("path,fmt,index", FILES, ids=[p.name for p, _, _ in FILES])
def test_whole_file_is_every_record(tmp_path, path, fmt, index):
    got, want = _check(tmp_path, path, fmt, index, None)
    assert sorted(got) == sorted(want)


def test_unplaced_unmapped_reads(tmp_path):
    path = TESTDATA / "reads" / "htsnexus_test_NA12878.bam"
    for fmt, p, ix in (
        ("BAM", path, path.with_suffix(".bam.bai")),
        ("CRAM", path.with_suffix(".cram"), path.with_suffix(".cram.crai")),
    ):
        got, want = _check(tmp_path, p, fmt, ix, [Region("*")])
        assert len(want) == 39918 - 27214 - 109 - 120
        assert all(r[2] is None for r in got)


def test_unknown_reference_raises():
    path = TESTDATA / "reads" / "htsnexus_test_NA12878.bam"
    cut = slices.open_indexed(path, "BAM", str(path) + ".bai")
    with pytest.raises(slices.UnknownReference):
        cut.body([Region("chrNope", 0, 10)])


def test_declared_contig_without_records_gives_empty_body():
    path = TESTDATA / "variants" / "test_1000G.vcf.gz"
    cut = slices.open_indexed(path, "VCF", str(path) + ".tbi")
    assert cut.has_reference("2")
    assert cut.body([Region("2", 0, 1000)]) == []


def test_warm_open_reads_nothing(monkeypatch):
    path = TESTDATA / "reads" / "HG00100.chr17slice.bam"
    slices.clear_cache()
    first = slices.open_indexed(path, "BAM", str(path) + ".bai")
    loads = slices.STATS["loads"]
    assert slices.open_indexed(path, "BAM", str(path) + ".bai") is first
    assert slices.STATS["loads"] == loads


def test_file_without_eof_marker(tmp_path):
    src = TESTDATA / "reads" / "HG00100.chr17slice.bam"
    raw = src.read_bytes()
    assert raw.endswith(bgzf.EOF_BLOCK)
    path = tmp_path / "noeof.bam"
    path.write_bytes(raw[: -len(bgzf.EOF_BLOCK)])
    shutil.copy(str(src) + ".bai", str(path) + ".bai")
    cut = slices.open_indexed(path, "BAM", str(path) + ".bai")
    assert cut.data_end == path.stat().st_size
    pieces = cut.header() + cut.body([Region("17", 1000, 2000)]) + [cut.eof_piece()]
    data = slices.read_pieces(path, pieces)
    assert data.endswith(bgzf.EOF_BLOCK)
    out = tmp_path / "out.bam"
    out.write_bytes(data)
    with pysam.AlignmentFile(str(out)) as fh:
        assert len(list(fh.fetch(until_eof=True))) >= 150


def test_records_spanning_blocks_are_cut_exactly(tmp_path):
    """Re-block a BAM into small blocks so records and the header straddle blocks:
    chunk boundaries fall mid-block and must be re-encoded inline."""
    src = TESTDATA / "reads" / "HG00100.chr17slice.bam"
    data = bgzf.decompress(src.read_bytes())
    path = tmp_path / "small-blocks.bam"
    with open(path, "wb") as fh:
        for pos in range(0, len(data), 777):
            fh.write(bgzf.compress_block(data[pos : pos + 777]))
        fh.write(bgzf.EOF_BLOCK)
    pysam.index(str(path))
    cut = slices.open_indexed(path, "BAM", str(path) + ".bai")
    assert cut.header_end & 0xFFFF != 0
    for start, end in ((0, 1), (1000, 2000), (2500, 2600), (4199, 4200), (0, 10_000)):
        regions = [Region("17", start, end)]
        pieces = cut.header() + cut.body(regions) + [cut.eof_piece()]
        assert any(isinstance(p, slices.Inline) and p.data != bgzf.EOF_BLOCK for p in pieces)
        got = _joined_records(tmp_path, slices.read_pieces(path, pieces), "BAM", None)
        with pysam.AlignmentFile(str(path)) as fh:
            want = [_key(r) for r in fh.fetch("17", start, end)]
        assert set(want) <= set(got)


def test_bgzf_round_trip():
    payload = bytes(range(256)) * 1000
    raw = bgzf.compress(payload) + bgzf.EOF_BLOCK
    assert bgzf.decompress(raw) == payload
    assert bgzf.compress_block(b"") == bgzf.EOF_BLOCK


def test_bam_with_csi_index(tmp_path):
    src = TESTDATA / "reads" / "HG00100.chr17slice.bam"
    path = tmp_path / "csi.bam"
    shutil.copy(src, path)
    pysam.index("-c", str(path))
    cut = slices.open_indexed(path, "BAM", str(path) + ".csi")
    assert cut.index_format == "CSI"
    for regions in (
        [Region("17", 1000, 2000)],
        [Region("17", 0, 1)],
        [Region("17", 4199, 4200)],
        None,
    ):
        _check(tmp_path, path, "BAM", str(path) + ".csi", regions)


def test_index_that_does_not_fit_the_format_is_refused(tmp_path):
    path = TESTDATA / "variants" / "spec-v4.3.vcf.gz"
    with pytest.raises(slices.SliceError):
        slices.open_indexed(
            TESTDATA / "reads" / "HG00100.chr17slice.bam", "BAM", str(path) + ".tbi"
        )


def test_block_aligned_bam_needs_no_inline_blocks():
    """htslib starts BAM blocks on record boundaries: chunks widen to whole blocks."""
    path = TESTDATA / "reads" / "htsnexus_test_NA12878.bam"
    cut = slices.open_indexed(path, "BAM", str(path) + ".bai")
    for region in (Region("11", 5000000, 5010000), Region("20", 6050000, 6050001)):
        assert all(isinstance(p, slices.ByteRange) for p in cut.body([region]))
