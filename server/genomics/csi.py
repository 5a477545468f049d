"""CSI: the coordinate-sorted index (BAM, BCF and VCF.gz; CSIv1 specification)."""

from __future__ import annotations

from pathlib import Path

from server.genomics import bgzf
from server.genomics._binio import (
    Cursor,
    IndexError_,
    LazyRefs,
    parse_tabix_meta,
    read_chunks,
    read_optional_u64,
    skip_csi_ref,
)
from server.genomics.binning import BinIndex, RefIndex

MAGIC = b"CSI\1"


def parse(raw: bytes) -> BinIndex:
    data = bgzf.decompress(raw)
    if data[:4] != MAGIC:
        raise IndexError_("not a CSI index")
    cur = Cursor(data, 4)
    min_shift, depth, l_aux = cur.i32(), cur.i32(), cur.i32()
    aux = cur.raw(l_aux)
    names = None
    meta: dict = {}
    if l_aux >= 28:  # a tabix-style header (VCF.gz indexed with CSI)
        meta, names = parse_tabix_meta(Cursor(aux))
    n_ref = cur.i32()
    refs = LazyRefs(data, cur.pos, n_ref, skip_csi_ref, _read_ref)
    cur.pos = refs.end
    if names is not None and len(names) != n_ref:
        names = None
    return BinIndex("CSI", min_shift, depth, refs, read_optional_u64(cur), names=names, meta=meta)


def _read_ref(cur: Cursor) -> RefIndex:
    ref = RefIndex()
    for _ in range(cur.i32()):
        bin_id = cur.u32()
        ref.loffsets[bin_id] = cur.u64()
        ref.bins[bin_id] = read_chunks(cur)
    return ref


def load(path: str | Path) -> BinIndex:
    return parse(Path(path).read_bytes())
