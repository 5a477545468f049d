"""Cutting a BGZF file (BAM, VCF.gz, BCF) by its binning index (BAI, CSI, TBI).

The index gives chunks of virtual offsets; ``BgzfSlicer`` turns them into
byte ranges of whole blocks wherever that is provably exact, and re-encodes
the needed part of a block inline where it is not. What differs between the
BGZF formats is small and lives in each format's module as a ``BgzfFormat``:
how to read its header, and how to tell that a block starts or ends on a
record boundary.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO

from server.genomics import bgzf
from server.genomics.binning import BinIndex, merge_chunks
from server.genomics.pieces import (
    LRU,
    UNPLACED,
    ByteRange,
    Inline,
    Piece,
    Region,
    SliceError,
    Source,
    UnknownReference,
    join_pieces,
)

# Two chunks whose compressed offsets are at most this far apart are served as
# one range: the bytes between them are whole records (a superset is allowed),
# and one range costs less than two plus their re-encoded boundary blocks.
MERGE_GAP = 64 * 1024
BOUNDARIES = LRU(2048)


@dataclass(frozen=True)
class Header:
    end: int  # virtual offset of the first record
    names: list[str]  # reference names, numbered as the index numbers them
    declared: set[str]  # every name a region may ask for


# ``(block data, uoffset, number of references) -> bool``
BoundaryTest = Callable[[bytes, int, int], bool]


def never(data: bytes, uoffset: int, n_ref: int) -> bool:
    return False


@dataclass(frozen=True)
class BgzfFormat:
    name: str
    indexes: tuple[str, ...]
    read_header: Callable[[BinaryIO, BinIndex], Header]
    starts_on_record: BoundaryTest = never  # are data[:uoffset] whole records?
    ends_on_record: BoundaryTest = never  # are data[uoffset:] whole records?
    unplaced: bool = False  # does referenceName=* select the unplaced records?

    def open(self, source: Source, fh: BinaryIO, index: BinIndex, index_format: str):
        return BgzfSlicer(self, source, fh, index, index_format)


class BgzfSlicer:
    def __init__(
        self, fmt: BgzfFormat, source: Source, fh: BinaryIO, index: BinIndex, index_format: str
    ):
        self.spec, self.source, self.index = fmt, source, index
        self.format, self.index_format, self.size = fmt.name, index_format, source.size
        self.eof = bgzf.EOF_BLOCK
        self.data_end = (
            self.size - len(bgzf.EOF_BLOCK) if bgzf.has_eof(fh, self.size) else self.size
        )
        header = fmt.read_header(fh, index)
        self.header_end, self.names, self.declared = header.end, header.names, header.declared
        self.ref_ids = {name: i for i, name in enumerate(self.names) if name}

    def has_reference(self, name: str) -> bool:
        if name == UNPLACED:
            return self.spec.unplaced
        return name in self.declared

    def header(self) -> list[Piece]:
        return self._pieces([(0, self.header_end)])

    def eof_piece(self) -> Inline:
        return Inline(self.eof)

    def body(self, regions: list[Region] | None) -> list[Piece]:
        data_end = bgzf.make_voffset(self.data_end, 0)
        if regions is None:
            chunks = [(self.header_end, data_end)] if data_end > self.header_end else []
        else:
            chunks = []
            for region in regions:
                chunks.extend(self._chunks(region, data_end))
            if all(r.reference_name == UNPLACED for r in regions):
                # the unplaced reads follow the last placed one mid-block: cut exactly
                return self._pieces(merge_near(chunks), widen=False)
        return self._pieces(merge_near(chunks))

    def _chunks(self, region: Region, data_end: int) -> list[tuple[int, int]]:
        name = region.reference_name
        if name == UNPLACED and self.spec.unplaced:
            begin = max(self.index.last_placed_end(), self.header_end)
            return [(begin, data_end)] if data_end > begin else []
        if name not in self.declared:
            raise UnknownReference(name)
        ref_id = self.ref_ids.get(name)
        if ref_id is None:
            return []
        start = region.start or 0
        end = region.end if region.end is not None else self.index.max_coord
        return [
            (max(a, self.header_end), min(b, data_end))
            for a, b in self.index.chunks(ref_id, start, end)
            if min(b, data_end) > a
        ]

    def _pieces(self, chunks: list[tuple[int, int]], *, widen: bool = True) -> list[Piece]:
        """Byte ranges for the chunks, whole blocks wherever that is provably exact.

        A chunk that starts (or ends) inside a block needs either the whole
        block, when the block starts (ends) on a record boundary, or the needed
        part of the block re-encoded inline. Chunks are at least a block apart
        (``merge_near``), so widening to whole blocks never duplicates bytes.
        """
        pieces: list[Piece] = []
        header_block = self.header_end >> 16 if self.header_end & 0xFFFF else -1
        if not widen:
            header_block = None  # matches no block: never widen
        with self.source.open() as fh:
            for vbeg, vend in chunks:
                cb, ub = bgzf.split_voffset(vbeg)
                ce, ue = bgzf.split_voffset(vend)
                if ub == 0 or (widen and cb != header_block and self._edge(fh, cb, ub, "start")[1]):
                    lo = cb
                elif cb == ce:
                    pieces.append(self._partial(fh, cb, ub, ue))
                    continue
                else:
                    pieces.append(self._partial(fh, cb, ub, None))
                    lo = cb + self._edge(fh, cb, ub, "start")[0]
                hi, tail = ce, None
                if ue:
                    size, aligned = self._edge(fh, ce, ue, "end")
                    if widen and aligned and ce != header_block:
                        hi = ce + size
                    else:
                        tail = self._partial(fh, ce, 0 if lo <= ce else ub, ue)
                if hi > lo:
                    pieces.append(ByteRange(lo, hi))
                if tail is not None:
                    pieces.append(tail)
        return join_pieces(pieces)

    def _block(self, fh, coffset: int) -> tuple[int, bytes]:
        block = bgzf.read_block(fh, coffset)
        if block is None:
            raise SliceError(f"no BGZF block at {coffset}")
        return block

    def _edge(self, fh, coffset: int, uoffset: int, side: str) -> tuple[int, bool]:
        """``(block size, whether the block starts (side="start") or ends
        (side="end") on a record boundary)``, given that ``uoffset`` is one."""
        key = (self.source.key, coffset, uoffset, side)
        hit = BOUNDARIES.get(key)
        if hit is not None:
            return hit
        size, data = self._block(fh, coffset)
        test = self.spec.starts_on_record if side == "start" else self.spec.ends_on_record
        value = (size, test(data, uoffset, len(self.names)))
        BOUNDARIES.put(key, value)
        return value

    def _partial(self, fh, coffset: int, ustart: int, uend: int | None) -> Inline:
        """Part ``[ustart, uend)`` of the block at ``coffset``, re-encoded as a block."""
        key = (self.source.key, coffset, ustart, uend)
        hit = BOUNDARIES.get(key)
        if hit is not None:
            return hit
        _, data = self._block(fh, coffset)
        part = data[ustart:uend]
        value = Inline(bgzf.compress(part, level=1) if part else b"")
        BOUNDARIES.put(key, value)
        return value


def merge_near(chunks: list[tuple[int, int]]) -> list[tuple[int, int]]:
    return merge_chunks(chunks, MERGE_GAP)
