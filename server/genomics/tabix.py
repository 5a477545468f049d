"""TBI: the tabix index of BGZF-compressed VCF and other text files."""

from __future__ import annotations

from pathlib import Path

from server.genomics import _binio as b
from server.genomics.binning import BinIndex

MAGIC = b"TBI\1"


def parse(raw: bytes) -> BinIndex:
    cur = b.bgzf_index(raw, MAGIC, "tabix")
    n_ref = cur.i32()
    meta, names = b.parse_tabix_meta(cur)
    if len(names) != n_ref:
        raise b.IndexError_("tabix index: name count does not match n_ref")
    refs = b.LazyRefs(cur.buf, cur.pos, n_ref, b.skip_bai_like_ref, b.read_bai_like_ref)
    cur.pos = refs.end
    return BinIndex("TBI", 14, 5, refs, b.read_optional_u64(cur), names=names, meta=meta)


def load(path: str | Path) -> BinIndex:
    return parse(Path(path).read_bytes())
