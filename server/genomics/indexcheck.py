"""Does an index belong to its data file?

``check(path, fmt, index_path, index_format)`` raises ``IndexMismatch`` with a
message naming the first disagreement between a BAM, CRAM, VCF.gz or BCF and
the index offered with it. Two files of the same assembly share their header
(86 identical ``@SQ`` lines are common), so names alone cannot tell them
apart; the check goes down to the records:

* **references**: a BAI/CSI of a BAM indexes as many references as the header
  declares; every name a TBI (or a VCF's CSI) carries is a contig of the VCF;
  every CRAI reference id is one of the CRAM's ``@SQ`` lines;
* **lengths**: no bin of the index starts past its reference's length (from the
  header, where it declares one);
* **offsets, all of them**: no chunk (no CRAI container) points past the end of
  the data file;
* **offsets, a sample**: at up to ``samples`` chunk starts spread over the
  file, a BGZF block starts where the index says, a record parses at the
  virtual offset, and it lies on the indexed reference, inside the genomic
  span of the indexed bin. For CRAI, a container header parses at each sampled
  container offset, names the indexed reference (or is multi-reference) and
  spans the indexed alignment start, and a slice header block sits at the
  indexed slice offset.

pysam opens the file and does not check any of this (it trusts the index: a
BAM opened with another BAM's index answers queries with wrong or no
records), so the comparison is written here, over the node's own index
parsers (``bai``, ``csi``, ``tabix``, ``crai``) and pysam for header lengths.
"""

from __future__ import annotations

import struct
from pathlib import Path

from server.genomics import bgzf, crai, cram
from server.genomics.binning import BinIndex
from server.genomics.coords import pos_to_start
from server.genomics.slices import INDEXES
from server.storage import Storage
from server.storage.local import LocalStorage

SAMPLES = 16
MAPPED_SLICE = 2  # CRAM block content type of a slice header


class IndexMismatch(ValueError):
    """The index does not describe this data file."""


def bin_span(bin_id: int, min_shift: int, depth: int) -> tuple[int, int]:
    """``[start, end)`` (0-based) covered by ``bin_id`` in a binning scheme."""
    first = 0
    for level in range(depth + 1):
        nxt = first + (1 << (3 * level))
        if bin_id < nxt:
            size = 1 << (min_shift + 3 * (depth - level))
            start = (bin_id - first) * size
            return start, start + size
        first = nxt
    raise IndexMismatch(f"bin {bin_id} is outside the binning scheme")


def check(
    path: str | Path, fmt: str, index_path: str | Path, index_format: str, *, samples: int = SAMPLES
) -> None:
    """Raise ``IndexMismatch`` unless ``index_path`` indexes ``path``."""
    data = LocalStorage(path)
    fmt, index_format = fmt.upper(), index_format.upper()
    size = data.stat().size or 0
    raw = LocalStorage(index_path).read_all()
    try:
        parsed = INDEXES[index_format](raw)
        if fmt == "CRAM":
            _check_cram(data, size, parsed, samples)
            return
        names, lengths = _header(data.location, fmt)
        _check_bgzf(data, fmt, size, parsed, names, lengths, samples)
    except IndexMismatch:
        raise
    except (ValueError, struct.error, IndexError, KeyError, OSError) as exc:
        raise IndexMismatch(f"the index cannot be read against this file ({exc})") from None


# --------------------------------------------------------------- headers
def _header(path: str, fmt: str) -> tuple[list[str], list[int | None]]:
    """Reference names and lengths, in the order the index numbers them."""
    import pysam

    save = pysam.set_verbosity(0)
    try:
        if fmt == "BAM":
            with pysam.AlignmentFile(path, "rb", check_sq=False) as fh:
                return list(fh.references), list(fh.lengths)
        with pysam.VariantFile(path) as fh:
            contigs = fh.header.contigs
            names = list(contigs)
            return names, [contigs[n].length for n in names]
    finally:
        pysam.set_verbosity(save)


# ------------------------------------------------------- BAM, VCF.gz, BCF
def _check_bgzf(
    data: Storage,
    fmt: str,
    size: int,
    index: BinIndex,
    names: list[str],
    lengths: list[int | None],
    samples: int,
) -> None:
    n_ref = len(index.refs)
    if fmt == "VCF" and index.names is not None:
        ref_names = list(index.names)
        unknown = [n for n in ref_names if n not in names]
        if names and unknown:
            raise IndexMismatch(
                f"the index names reference(s) {', '.join(unknown[:5])} that the file's header "
                f"does not declare"
            )
        length_of = dict(zip(names, lengths, strict=False))
        ref_lengths = [length_of.get(n) for n in ref_names]
    else:
        if n_ref != len(names):
            raise IndexMismatch(
                f"the index covers {n_ref} references, the file's header declares {len(names)}"
            )
        ref_names, ref_lengths = names, lengths
    pseudo = index.pseudo_bin
    starts: list[tuple[int, int, int]] = []  # (vbeg, ref id, bin)
    for ref_id in range(n_ref):
        ref = index.refs[ref_id]
        length = ref_lengths[ref_id] if ref_id < len(ref_lengths) else None
        for bin_id, chunks in ref.bins.items():
            if bin_id == pseudo:
                continue
            lo, _ = bin_span(bin_id, index.min_shift, index.depth)
            if length and lo >= length:
                raise IndexMismatch(
                    f"the index has records at {lo:,} or later on {ref_names[ref_id]}, which the "
                    f"file's header says is {length:,} bp long"
                )
            for vbeg, vend in chunks:
                if (vbeg >> 16) >= size or (vend >> 16) > size:
                    raise IndexMismatch(
                        f"the index points at byte {max(vbeg, vend) >> 16:,}, past the end of the "
                        f"file ({size:,} bytes)"
                    )
                starts.append((vbeg, ref_id, bin_id))
    if not starts:
        return
    starts.sort()
    picks = sorted(
        {
            starts[round(i * (len(starts) - 1) / max(1, samples - 1))]
            for i in range(min(samples, len(starts)))
        }
    )
    with data.open() as fh:
        for vbeg, ref_id, bin_id in picks:
            coffset, uoffset = bgzf.split_voffset(vbeg)
            try:
                reader = bgzf.BGZFReader(fh, coffset)
                reader.read_exact(uoffset) if uoffset else None
                found_ref, start = _record_at(reader, fmt, ref_names)
            except (bgzf.BGZFError, struct.error, ValueError) as exc:
                raise IndexMismatch(
                    f"no {fmt} record where the index points (virtual offset {vbeg}): {exc}"
                ) from None
            lo, hi = bin_span(bin_id, index.min_shift, index.depth)
            if found_ref != ref_id or not lo <= start < hi:
                where = ref_names[found_ref] if 0 <= found_ref < len(ref_names) else str(found_ref)
                raise IndexMismatch(
                    f"the index says a record of {ref_names[ref_id]} starting in [{lo:,}, {hi:,}) "
                    f"is at virtual offset {vbeg}; the record there is on {where} at {start:,}"
                )


def _record_at(reader: bgzf.BGZFReader, fmt: str, names: list[str]) -> tuple[int, int]:
    """``(reference id, 0-based start)`` of the record at the reader's position."""
    if fmt == "BAM":
        head = reader.read_exact(36)
        block_size, ref_id, start, l_name = struct.unpack_from("<iiiB", head)
        _, _, _, _, _, _, n_cigar, _, l_seq = struct.unpack_from("<iiiBBHHHi", head)
        if (
            block_size < 32 + l_name
            or l_name < 1
            or l_seq < 0
            or block_size > 1 << 28
            or 32 + l_name + 4 * n_cigar + (l_seq + 1) // 2 + l_seq > block_size
        ):
            raise ValueError("not a BAM record")
        name = reader.read_exact(l_name)
        if name[-1] != 0 or 0 in name[:-1]:
            raise ValueError("not a BAM record (read name)")
        return ref_id, start
    if fmt == "BCF":
        l_shared, _l_indiv, ref_id, start = struct.unpack("<IIii", reader.read_exact(16))
        if l_shared < 24:
            raise ValueError("not a BCF record")
        return ref_id, start
    line = reader.readline(1 << 20)
    if not line or line.startswith(b"#"):
        raise ValueError("not a VCF record line")
    fields = line.split(b"\t", 2)
    if len(fields) < 3 or not fields[1].isdigit():
        raise ValueError("not a VCF record line")
    chrom = fields[0].decode("utf-8", "replace")
    return (names.index(chrom) if chrom in names else -1), pos_to_start(int(fields[1]))


# ------------------------------------------------------------------- CRAM
def _check_cram(data: Storage, size: int, entries: list[crai.CraiEntry], samples: int) -> None:
    import pysam

    save = pysam.set_verbosity(0)
    try:
        with pysam.AlignmentFile(data.location, "rc", check_sq=False) as fh:
            names, lengths = list(fh.references), list(fh.lengths)
    finally:
        pysam.set_verbosity(save)
    for e in entries:
        if not -1 <= e.ref_id < len(names):
            raise IndexMismatch(
                f"the index names reference id {e.ref_id}; the file's header "
                f"declares {len(names)} references"
            )
        if e.ref_id >= 0 and lengths[e.ref_id] and e.start >= lengths[e.ref_id]:
            raise IndexMismatch(
                f"the index has records at {e.start:,} on {names[e.ref_id]}, which "
                f"the file's header says is {lengths[e.ref_id]:,} bp long"
            )
        if e.container >= size:
            raise IndexMismatch(
                f"the index points at byte {e.container:,}, past the end of the "
                f"file ({size:,} bytes)"
            )
    if not entries:
        return
    ordered = sorted(entries, key=lambda e: (e.container, e.slice_offset))
    picks = {
        ordered[round(i * (len(ordered) - 1) / max(1, samples - 1))]
        for i in range(min(samples, len(ordered)))
    }
    with data.open() as fh:
        major, _ = cram.read_definition(fh)
        for e in sorted(picks, key=lambda e: e.container):
            try:
                ref_id, pos, span, data_start = cram.container_header(fh, e.container, major)
                first = pos_to_start(pos)
                fh.seek(data_start + e.slice_offset)
                block = fh.read(2)
            except (cram.CramError, IndexError, struct.error) as exc:
                raise IndexMismatch(
                    f"no CRAM container where the index points (byte {e.container:,}): {exc}"
                ) from None
            fits = ref_id == -2 or (
                ref_id == e.ref_id and (e.ref_id == -1 or first <= e.start <= first + span)
            )
            if not fits:
                raise IndexMismatch(
                    f"the index says a slice of reference {e.ref_id} from {e.start:,} is in the "
                    f"container at byte {e.container:,}; that container holds reference {ref_id} "
                    f"from {max(0, first):,}"
                )
            if len(block) < 2 or block[1] != MAPPED_SLICE:
                raise IndexMismatch(
                    f"no CRAM slice header where the index points (container at "
                    f"byte {e.container:,}, slice offset {e.slice_offset})"
                )
