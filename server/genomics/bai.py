"""BAI: the BAM index (SAM/BAM specification, section 5.2)."""

from __future__ import annotations

from pathlib import Path

from server.genomics._binio import (
    Cursor,
    IndexError_,
    LazyRefs,
    read_bai_like_ref,
    read_optional_u64,
    skip_bai_like_ref,
)
from server.genomics.binning import BinIndex

MAGIC = b"BAI\1"


def parse(raw: bytes) -> BinIndex:
    if raw[:4] != MAGIC:
        raise IndexError_("not a BAI index")
    cur = Cursor(raw, 4)
    n_ref = cur.i32()
    refs = LazyRefs(raw, cur.pos, n_ref, skip_bai_like_ref, read_bai_like_ref)
    cur.pos = refs.end
    return BinIndex("BAI", 14, 5, refs, read_optional_u64(cur))


def load(path: str | Path) -> BinIndex:
    return parse(Path(path).read_bytes())
