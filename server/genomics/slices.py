"""Cut an indexed BAM, CRAM, VCF.gz or BCF into the pieces of a valid slice.

A slice is a list of pieces: ``ByteRange`` (bytes served from the file as they
are) and ``Inline`` (bytes made here: the part of a BGZF block where a chunk
starts or ends mid-block, re-encoded as a block of its own, and the EOF
marker). Joined in order, the pieces of ``header()`` + ``body(regions)`` +
``eof()`` are a valid file holding every record that overlaps the regions.

``open_indexed`` caches the parsed index and header extent per file identity
(path, size, mtime_ns of the file and of its index), so a warm request reads
neither again.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from struct import error as struct_error
from struct import unpack_from as struct_unpack_from
from typing import BinaryIO

import cachetools

from server.genomics import bai, bgzf, crai, cram, csi, headers, tabix
from server.genomics.binning import BinIndex

FORMATS = ("BAM", "CRAM", "VCF", "BCF")
INDEX_FORMATS = {"BAM": ("BAI", "CSI"), "CRAM": ("CRAI",), "VCF": ("TBI", "CSI"), "BCF": ("CSI",)}
UNPLACED = "*"
# Two chunks whose compressed offsets are at most this far apart are served as
# one range: the bytes between them are whole records (a superset is allowed),
# and one range costs less than two plus their re-encoded boundary blocks.
MERGE_GAP = 64 * 1024


class SliceError(ValueError):
    """The file or its index cannot be cut (damaged, wrong format)."""


class UnknownReference(KeyError):
    """The reference name is not declared by the file."""


@dataclass(frozen=True)
class ByteRange:
    start: int
    end: int  # exclusive

    def __len__(self) -> int:
        return self.end - self.start


@dataclass(frozen=True)
class Inline:
    data: bytes


Piece = ByteRange | Inline


@dataclass(frozen=True)
class Region:
    reference_name: str
    start: int | None = None  # 0-based
    end: int | None = None  # exclusive


def join_pieces(pieces: list[Piece]) -> list[Piece]:
    """Merge touching byte ranges and consecutive inline pieces."""
    out: list[Piece] = []
    for p in pieces:
        if isinstance(p, ByteRange) and len(p) == 0 or isinstance(p, Inline) and not p.data:
            continue
        if (
            out
            and isinstance(p, ByteRange)
            and isinstance(out[-1], ByteRange)
            and out[-1].end == p.start
        ):
            out[-1] = ByteRange(out[-1].start, p.end)
        elif out and isinstance(p, Inline) and isinstance(out[-1], Inline):
            out[-1] = Inline(out[-1].data + p.data)
        else:
            out.append(p)
    return out


def read_pieces(path: str | Path, pieces: list[Piece]) -> bytes:
    """The bytes the pieces stand for (tests and small tools)."""
    parts = []
    with open(path, "rb") as fh:
        for p in pieces:
            if isinstance(p, Inline):
                parts.append(p.data)
            else:
                fh.seek(p.start)
                parts.append(fh.read(len(p)))
    return b"".join(parts)


class _LRU:
    """A cachetools LRU behind a lock (cachetools caches are not thread-safe)."""

    def __init__(self, size: int):
        self.data = cachetools.LRUCache(size)
        self.lock = threading.Lock()

    def get(self, key):
        with self.lock:
            return self.data.get(key)

    def put(self, key, value):
        with self.lock:
            self.data[key] = value

    def clear(self):
        with self.lock:
            self.data.clear()


_FILES = _LRU(256)
_BOUNDARIES = _LRU(2048)
STATS = {"loads": 0}


def _identity(path: str) -> tuple[int, int]:
    st = os.stat(path)
    return st.st_size, st.st_mtime_ns


def open_indexed(
    path: str | Path, fmt: str, index_path: str | Path, index_format: str = ""
) -> IndexedFile:
    """The parsed file, from the cache while neither it nor its index changed."""
    path, index_path = str(path), str(index_path)
    fmt = fmt.upper()
    key = (path, _identity(path), index_path, _identity(index_path), fmt)
    cached = _FILES.get(key)
    if cached is None:
        cached = IndexedFile(path, fmt, index_path, index_format.upper(), key[1][0])
        STATS["loads"] += 1
        _FILES.put(key, cached)
    return cached


def clear_cache() -> None:
    _FILES.clear()
    _BOUNDARIES.clear()


def _guess_index_format(index_path: str) -> str:
    with open(index_path, "rb") as fh:
        head = fh.read(4)
    if head == bai.MAGIC:
        return "BAI"
    if head[:2] == b"\x1f\x8b":
        try:
            with open(index_path, "rb") as fh:
                block = bgzf.read_block(fh, 0)
        except bgzf.BGZFError:
            return "CRAI"
        if block and block[1][:4] == csi.MAGIC:
            return "CSI"
        if block and block[1][:4] == tabix.MAGIC:
            return "TBI"
        return "CRAI"
    raise SliceError(f"unrecognised index {os.path.basename(index_path)}")


def open_with(key: tuple, factory: Callable[[], IndexedFile]) -> IndexedFile:
    """The cached ``IndexedFile`` for ``key``, made by ``factory`` on a miss (remote storage)."""
    cached = _FILES.get(key)
    if cached is None:
        cached = factory()
        STATS["loads"] += 1
        _FILES.put(key, cached)
    return cached


class IndexedFile:
    """A file and its parsed index. ``opener`` (default: the local file) returns a
    seekable binary file; ``index_raw`` (default: read ``index_path``) the index bytes;
    ``names`` the CRAM reference names when they cannot be read locally."""

    def __init__(
        self,
        path: str,
        fmt: str,
        index_path: str,
        index_format: str,
        size: int,
        *,
        opener: Callable[[], BinaryIO] | None = None,
        index_raw: bytes | None = None,
        names: list[str] | None = None,
    ):
        if fmt not in FORMATS:
            raise SliceError(f"unsupported format {fmt}")
        self.path, self.format, self.index_path, self.size = path, fmt, index_path, size
        self._opener = opener or (lambda: open(self.path, "rb"))  # noqa: SIM115 - the caller closes it
        self._index_raw = index_raw
        self._names = names
        if not index_format and index_raw is not None:
            raise SliceError("the index format is required for an index given as bytes")
        self.index_format = index_format or _guess_index_format(index_path)
        if self.index_format not in INDEX_FORMATS[fmt]:
            raise SliceError(f"a {self.index_format} index does not fit a {fmt} file")
        self.index: BinIndex | None = None
        self.crai: list[crai.CraiEntry] = []
        try:
            with self._opener() as fh:
                self._load(fh)
        except (ValueError, struct_error, IndexError) as exc:
            raise SliceError(f"cannot read {os.path.basename(path)} or its index: {exc}") from None

    # ----------------------------------------------------------------- loading
    def _load(self, fh) -> None:
        raw = self._index_raw if self._index_raw is not None else Path(self.index_path).read_bytes()
        self._index_raw = None
        if self.format == "CRAM":
            self.major, self.header_end = cram.header_end(fh)
            self.eof = cram.eof_container(self.major)
            self.data_end = (
                self.size - len(self.eof) if cram.has_eof(fh, self.size, self.major) else self.size
            )
            self.crai = crai.parse(raw)
            self.container_ends = {
                off: min(cram.container_end(fh, off, self.major), self.data_end)
                for off in {e.container for e in self.crai}
            }
            self.names = self._names if self._names is not None else _cram_names(self.path)
            self.declared = set(self.names)
            return
        self.eof = bgzf.EOF_BLOCK
        self.data_end = (
            self.size - len(bgzf.EOF_BLOCK) if bgzf.has_eof(fh, self.size) else self.size
        )
        self.index = {"BAI": bai.parse, "TBI": tabix.parse, "CSI": csi.parse}[self.index_format](
            raw
        )
        if self.format == "BAM":
            self.header_end, self.names, _ = headers.bam_header(fh)
            self.declared = set(self.names)
        elif self.format == "BCF":
            self.header_end, self.names = headers.bcf_header(fh)
            self.declared = set(self.names)
        else:
            self.header_end, contigs = headers.vcf_header(fh)
            self.names = self.index.names or contigs
            self.declared = set(contigs) | set(self.names)
        self.ref_ids = {name: i for i, name in enumerate(self.names) if name}

    # ------------------------------------------------------------------ pieces
    def has_reference(self, name: str) -> bool:
        if name == UNPLACED:
            return self.format in ("BAM", "CRAM")
        return name in self.declared

    def header(self) -> list[Piece]:
        if self.format == "CRAM":
            return [ByteRange(0, self.header_end)]
        return self._bgzf_pieces([(0, self.header_end)])

    def eof_piece(self) -> Inline:
        return Inline(self.eof)

    def body(self, regions: list[Region] | None) -> list[Piece]:
        """Pieces of the records overlapping ``regions`` (None: every record)."""
        if self.format == "CRAM":
            return self._cram_body(regions)
        data_end = bgzf.make_voffset(self.data_end, 0)
        if regions is None:
            chunks = [(self.header_end, data_end)] if data_end > self.header_end else []
        else:
            chunks = []
            for region in regions:
                chunks.extend(self._bgzf_chunks(region, data_end))
            if all(r.reference_name == UNPLACED for r in regions):
                # the unplaced reads follow the last placed one mid-block: cut exactly
                return self._bgzf_pieces(_merge_near(chunks), widen=False)
        return self._bgzf_pieces(_merge_near(chunks))

    def _bgzf_chunks(self, region: Region, data_end: int) -> list[tuple[int, int]]:
        assert self.index is not None
        name = region.reference_name
        if name == UNPLACED and self.format == "BAM":
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

    def _bgzf_pieces(self, chunks: list[tuple[int, int]], *, widen: bool = True) -> list[Piece]:
        """Byte ranges for the chunks, whole blocks wherever that is provably exact.

        A chunk that starts (or ends) inside a block needs either the whole
        block, when the block starts (ends) on a record boundary, or the needed
        part of the block re-encoded inline. Chunks are at least a block apart
        (``_merge_near``), so widening to whole blocks never duplicates bytes.
        """
        pieces: list[Piece] = []
        header_block = self.header_end >> 16 if self.header_end & 0xFFFF else -1
        if not widen:
            header_block = None  # matches no block: never widen
        with self._opener() as fh:
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
        key = (self.path, self.size, coffset, uoffset, side)
        hit = _BOUNDARIES.get(key)
        if hit is not None:
            return hit
        size, data = self._block(fh, coffset)
        if self.format == "BAM":
            n_ref = len(self.names)
            ok = (
                _bam_chain(data, 0, uoffset, n_ref)
                if side == "start"
                else _bam_chain(data, uoffset, len(data), n_ref)
            )
        elif self.format == "VCF":
            ok = side == "end" and data.endswith(b"\n")
        else:
            ok = False
        value = (size, ok)
        _BOUNDARIES.put(key, value)
        return value

    def _partial(self, fh, coffset: int, ustart: int, uend: int | None) -> Inline:
        """Part ``[ustart, uend)`` of the block at ``coffset``, re-encoded as a block."""
        key = (self.path, self.size, coffset, ustart, uend)
        hit = _BOUNDARIES.get(key)
        if hit is not None:
            return hit
        _, data = self._block(fh, coffset)
        part = data[ustart:uend]
        value = Inline(bgzf.compress(part, level=1) if part else b"")
        _BOUNDARIES.put(key, value)
        return value

    def _cram_body(self, regions: list[Region] | None) -> list[Piece]:
        if regions is None:
            return (
                [ByteRange(self.header_end, self.data_end)]
                if self.data_end > self.header_end
                else []
            )
        offsets: set[int] = set()
        for region in regions:
            name = region.reference_name
            if name == UNPLACED:
                offsets.update(crai.containers(self.crai, -1, 0, 0))
                continue
            if name not in self.declared:
                raise UnknownReference(name)
            ref_id = self.names.index(name)
            start = region.start or 0
            end = region.end if region.end is not None else 1 << 62
            offsets.update(crai.containers(self.crai, ref_id, start, end))
        return join_pieces([ByteRange(o, self.container_ends[o]) for o in sorted(offsets)])


def _bam_chain(data: bytes, pos: int, stop: int, n_ref: int) -> bool:
    """Whether ``data[pos:stop]`` is exactly a run of plausible BAM records.

    Every record must fit, name valid references, have a NUL-terminated read
    name where its length says, and field lengths that add up; a chance run
    of unrelated bytes passing all of this and landing exactly on ``stop``
    is not a practical possibility."""
    unpack = struct_unpack_from
    while pos < stop:
        if pos + 36 > stop:
            return False
        (
            block_size,
            ref_id,
            ref_pos,
            l_name,
            _mapq,
            _bin,
            n_cigar,
            _flag,
            l_seq,
            next_ref,
            next_pos,
        ) = unpack("<iiiBBHHHiii", data, pos)
        end = pos + 4 + block_size
        if (
            end > stop
            or l_name < 1
            or block_size < 32 + l_name
            or l_seq < 0
            or not -1 <= ref_id < n_ref
            or not -1 <= next_ref < n_ref
            or ref_pos < -1
            or next_pos < -1
            or 32 + l_name + 4 * n_cigar + (l_seq + 1) // 2 + l_seq > block_size
            or data[pos + 36 + l_name - 1] != 0
            or 0 in data[pos + 36 : pos + 36 + l_name - 1]
        ):
            return False
        pos = end
    return pos == stop


def _merge_near(chunks: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[list[int]] = []
    for vbeg, vend in sorted(chunks):
        if vend <= vbeg:
            continue
        if out and (vbeg >> 16) <= (out[-1][1] >> 16) + MERGE_GAP:
            out[-1][1] = max(out[-1][1], vend)
        else:
            out.append([vbeg, vend])
    return [(a, b) for a, b in out]


def _cram_names(path: str) -> list[str]:
    import pysam

    save = pysam.set_verbosity(0)
    try:
        with pysam.AlignmentFile(path, "rc", check_sq=False) as fh:
            return list(fh.references)
    finally:
        pysam.set_verbosity(save)
