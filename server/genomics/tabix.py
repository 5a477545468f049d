"""TBI: the tabix index of BGZF-compressed VCF and other text files."""

from __future__ import annotations

from pathlib import Path

from server.genomics import bgzf
from server.genomics._binio import (
    Cursor,
    IndexError_,
    LazyRefs,
    parse_tabix_meta,
    read_bai_like_ref,
    read_optional_u64,
    skip_bai_like_ref,
)
from server.genomics.binning import BinIndex

MAGIC = b"TBI\1"


def parse(raw: bytes) -> BinIndex:
    data = bgzf.decompress(raw)
    if data[:4] != MAGIC:
        raise IndexError_("not a tabix index")
    cur = Cursor(data, 4)
    n_ref = cur.i32()
    meta, names = parse_tabix_meta(cur)
    if len(names) != n_ref:
        raise IndexError_("tabix index: name count does not match n_ref")
    refs = LazyRefs(data, cur.pos, n_ref, skip_bai_like_ref, read_bai_like_ref)
    cur.pos = refs.end
    return BinIndex("TBI", 14, 5, refs, read_optional_u64(cur), names=names, meta=meta)


def load(path: str | Path) -> BinIndex:
    return parse(Path(path).read_bytes())
