"""Where a region's bytes are, without reading the file: for encrypted files.

A Crypt4GH ticket selects plaintext bytes of the archived file with an edit
list, and those bytes must be whole BGZF blocks (or whole CRAM containers):
the node cannot re-encode a boundary block without decrypting it. So the
facts the cut needs beyond the index are recorded once, at ingest, while the
plaintext streams by, in a ``Layout``:

* BGZF (BAM, VCF.gz, BCF): the offset of every block, whether each block
  starts on a record boundary (a record may run on from one block into the
  next; htslib avoids it, bgzip does not), where the header ends and the
  reference names;
* CRAM: where the header container ends, where each container the CRAI names
  ends, and the reference names.

``ranges(layout, index, regions)`` then gives the plaintext ``[start, end)``
ranges a ticket joins, header and EOF marker included: chunks from the index
widened to whole blocks, and further back (forward) to the nearest block
starting on a record boundary. The layout holds offsets and names, never
records. It is written here because no library computes it from a stream.
"""

from __future__ import annotations

import gzip
import json
from dataclasses import asdict, dataclass, field
from typing import BinaryIO

from server.genomics import bgzf, cram
from server.genomics.binning import merge_chunks
from server.genomics.crai import containers
from server.genomics.pieces import UNPLACED, Region, UnknownReference

WHOLE = 1 << 62


@dataclass
class Layout:
    format: str
    size: int  # plaintext bytes
    header_end: int  # BGZF: virtual offset of the first record; CRAM: byte offset
    data_end: int  # where the EOF marker starts (size when there is none)
    names: list[str]
    blocks: list[int] = field(default_factory=list)  # BGZF block offsets, in order
    clean: list[bool] = field(default_factory=list)  # block starts on a record boundary
    container_ends: dict[str, int] = field(default_factory=dict)  # CRAM, keys are offsets

    def dumps(self) -> bytes:
        return gzip.compress(json.dumps(asdict(self)).encode(), 6)

    @classmethod
    def loads(cls, raw: bytes) -> Layout:
        return cls(**json.loads(gzip.decompress(raw)))


# ---------------------------------------------------------------- computing it
def compute(fh: BinaryIO, size: int, fmt: str, index, cram_names: list[str] | None = None):
    """The layout of a plaintext file read through ``fh`` (at ingest only)."""
    if fmt == "CRAM":
        major, header_end = cram.header_end(fh)
        eof = cram.eof_container(major)
        data_end = size - len(eof) if cram.has_eof(fh, size, major) else size
        ends = {
            str(off): min(cram.container_end(fh, off, major), data_end)
            for off in {e.container for e in index}
        }
        return Layout(fmt, size, header_end, data_end, list(cram_names or []), container_ends=ends)
    from server.genomics.slices import FORMATS

    header = FORMATS[fmt].read_header(fh, index)
    data_end = size - len(bgzf.EOF_BLOCK) if bgzf.has_eof(fh, size) else size
    blocks, clean = _blocks(fh, fmt, header.end, data_end)
    return Layout(fmt, size, header.end, data_end, header.names, blocks, clean)


def _blocks(fh: BinaryIO, fmt: str, header_end: int, data_end: int):
    """Every block's offset and whether it starts on a record boundary."""
    first_block, first_u = bgzf.split_voffset(header_end)
    blocks: list[int] = []
    clean: list[bool] = []
    need, partial, last_byte = 0, b"", b""
    for coffset, _size, data in bgzf.iter_blocks(fh, 0):
        if coffset >= data_end:
            break
        blocks.append(coffset)
        if coffset < first_block or (coffset == first_block and first_u):
            # header bytes open the block: only the file's first block may open a slice
            clean.append(coffset == 0)
            if coffset < first_block:
                last_byte = data[-1:] or last_byte
                continue
            last_byte = data[:first_u][-1:]
            data, need, partial = data[first_u:], 0, b""
        elif fmt == "VCF":
            clean.append(last_byte == b"\n")
        else:
            clean.append(need == 0 and not partial)
        if fmt == "VCF":
            last_byte = data[-1:] or last_byte
            continue
        if need >= len(data):
            need -= len(data)
            continue
        need, partial = _walk(fmt, partial + data[need:])
    return blocks, clean


def _walk(fmt: str, data: bytes) -> tuple[int, bytes]:
    """Walk the records of ``data``, which starts on one: the bytes the last record
    still needs past ``data``, or the start of a record too short to give its length."""
    head = 4 if fmt == "BAM" else 8
    pos = 0
    while pos < len(data):
        if pos + head > len(data):
            return 0, data[pos:]
        length = head + int.from_bytes(data[pos : pos + 4], "little")
        if fmt == "BCF":
            length += int.from_bytes(data[pos + 4 : pos + 8], "little")
        pos += length
    return pos - len(data), b""


# ---------------------------------------------------------------- using it
def _names(layout: Layout) -> dict[str, int]:
    return {name: i for i, name in enumerate(layout.names) if name}


def ranges(layout: Layout, index, regions: list[Region] | None, *, header_only=False):
    """Plaintext ranges of the slice: header, the regions' whole blocks, EOF marker."""
    if layout.format == "CRAM":
        return _cram_ranges(layout, index, regions, header_only)
    import bisect

    blocks, clean = layout.blocks, layout.clean

    def block_start_clean(i: int) -> int:
        while i > 0 and not clean[i]:
            i -= 1
        return blocks[i] if blocks else 0

    def end_after(i: int) -> int:
        """End of block ``i``, extended until the next block starts on a record."""
        i += 1
        while i < len(blocks) and not clean[i]:
            i += 1
        return blocks[i] if i < len(blocks) else layout.data_end

    def block_of(coffset: int) -> int:
        return max(0, bisect.bisect_right(blocks, coffset) - 1)

    hc, hu = bgzf.split_voffset(layout.header_end)
    header = (0, end_after(block_of(hc)) if hu else hc)
    out = [header] if header[1] > 0 else []
    if not header_only:
        data_end = bgzf.make_voffset(layout.data_end, 0)
        chunks = []
        if regions is None:
            chunks = [(layout.header_end, data_end)]
        else:
            ids = _names(layout)
            for region in regions:
                name = region.reference_name
                if name == UNPLACED:
                    if layout.format == "BAM":
                        begin = max(index.last_placed_end(), layout.header_end)
                        chunks.append((begin, data_end))
                    continue
                if name not in ids and name not in layout.names:
                    raise UnknownReference(name)
                ref_id = ids.get(name)
                if ref_id is None:
                    continue
                end = region.end if region.end is not None else index.max_coord
                chunks.extend(index.chunks(ref_id, region.start or 0, end))
        for vbeg, vend in merge_chunks(sorted(chunks), 0):
            cb, _ = bgzf.split_voffset(max(vbeg, layout.header_end))
            ce, ue = bgzf.split_voffset(min(vend, data_end))
            lo = block_start_clean(block_of(cb))
            if ue:
                hi = end_after(block_of(ce))
            elif ce < layout.data_end and not clean[block_of(ce)]:
                hi = end_after(block_of(ce))  # the last record runs on into block ce
            else:
                hi = ce
            if hi > lo:
                out.append((lo, hi))
    out.append((layout.data_end, layout.size))
    return _union(out)


def _cram_ranges(layout: Layout, index, regions, header_only: bool):
    out = [(0, layout.header_end)]
    if not header_only:
        if regions is None:
            out.append((layout.header_end, layout.data_end))
        else:
            offsets: set[int] = set()
            for region in regions:
                name = region.reference_name
                if name == UNPLACED:
                    offsets.update(containers(index, -1, 0, 0))
                    continue
                if name not in layout.names:
                    raise UnknownReference(name)
                end = region.end if region.end is not None else WHOLE
                offsets.update(containers(index, layout.names.index(name), region.start or 0, end))
            out.extend((o, layout.container_ends[str(o)]) for o in sorted(offsets))
    out.append((layout.data_end, layout.size))
    return _union(out)


def _union(ranges_: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for a, b in sorted(r for r in ranges_ if r[1] > r[0]):
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out
