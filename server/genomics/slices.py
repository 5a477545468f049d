"""Cut an indexed BAM, CRAM, VCF.gz or BCF into the pieces of a valid slice.

Each data format is a module behind one interface (``pieces.Format`` opens a
``pieces.Slicer``), each index format a parser; ``FORMATS`` and ``INDEXES``
list them, so serving a new format is a new module and one line here. The
BGZF formats share the block arithmetic of ``bgzfcut``.

``open_indexed`` caches the opened slicer per file identity (location and
version of the file and of its index: size and mtime), so a warm request
reads neither again.
"""

from __future__ import annotations

import io
import os
from struct import error as struct_error

from server.genomics import (
    bai,
    bgzf,
    crai,
    csi,
    format_bam,
    format_bcf,
    format_cram,
    format_vcf,
    tabix,
)
from server.genomics.bgzfcut import BOUNDARIES, MERGE_GAP
from server.genomics.pieces import (
    LRU,
    UNPLACED,
    ByteRange,
    Format,
    Inline,
    Piece,
    Region,
    SliceError,
    Slicer,
    Source,
    UnknownReference,
    join_pieces,
    read_pieces,
)
from server.storage import Storage, for_location

FORMATS: dict[str, Format] = {
    f.name: f for f in (format_bam.FORMAT, format_cram.FORMAT, format_vcf.FORMAT, format_bcf.FORMAT)
}
INDEXES = {"BAI": bai.parse, "CSI": csi.parse, "TBI": tabix.parse, "CRAI": crai.parse}
INDEX_FORMATS = {name: f.indexes for name, f in FORMATS.items()}

__all__ = [
    "FORMATS",
    "INDEXES",
    "INDEX_FORMATS",
    "MERGE_GAP",
    "UNPLACED",
    "ByteRange",
    "Inline",
    "Piece",
    "Region",
    "SliceError",
    "Slicer",
    "UnknownReference",
    "clear_cache",
    "join_pieces",
    "open_indexed",
    "read_pieces",
]

_FILES = LRU(256)
STATS = {"loads": 0}


def open_indexed(
    data: Storage | str | os.PathLike, fmt: str, index: Storage | str | os.PathLike, index_format=""
) -> Slicer:
    """The file cut by its index, from the cache while neither changed (their
    ``version()``); a path stands for a file on the node. ``index_format`` is
    told from the index's bytes when not given."""
    data = data if isinstance(data, Storage) else for_location(data)
    index = index if isinstance(index, Storage) else for_location(index)
    fmt = fmt.upper()
    version = data.version()
    key = (data.location, version, index.location, index.version(), fmt)
    cached = _FILES.get(key)
    if cached is None:
        source = Source(data.open, version.size or 0, key, os.path.basename(data.location))
        raw = index.read_all()
        index_format = index_format.upper() or _guess_index_format(raw, index.location)
        cached = _open(source, fmt, raw, index_format)
        STATS["loads"] += 1
        _FILES.put(key, cached)
    return cached


def _open(source: Source, fmt: str, raw: bytes, index_format: str) -> Slicer:
    spec = FORMATS.get(fmt)
    if spec is None:
        raise SliceError(f"unsupported format {fmt}")
    if index_format not in spec.indexes:
        raise SliceError(f"a {index_format} index does not fit a {fmt} file")
    try:
        parsed = INDEXES[index_format](raw)
        with source.open() as fh:
            return spec.open(source, fh, parsed, index_format)
    except (ValueError, struct_error, IndexError) as exc:
        raise SliceError(f"cannot read {source.name} or its index: {exc}") from None


def clear_cache() -> None:
    _FILES.clear()
    BOUNDARIES.clear()


def _guess_index_format(raw: bytes, location: str) -> str:
    if raw[:4] == bai.MAGIC:
        return "BAI"
    if raw[:2] == b"\x1f\x8b":
        try:
            block = bgzf.read_block(io.BytesIO(raw), 0)
        except bgzf.BGZFError:
            return "CRAI"
        if block and block[1][:4] == csi.MAGIC:
            return "CSI"
        if block and block[1][:4] == tabix.MAGIC:
            return "TBI"
        return "CRAI"
    raise SliceError(f"unrecognised index {os.path.basename(location)}")
