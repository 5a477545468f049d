"""CSI: the coordinate-sorted index (BAM, BCF and VCF.gz; CSIv1 specification)."""

from __future__ import annotations

from pathlib import Path

from server.genomics import _binio as b
from server.genomics.binning import BinIndex, RefIndex

MAGIC = b"CSI\1"


def parse(raw: bytes) -> BinIndex:
    cur = b.bgzf_index(raw, MAGIC, "CSI")
    min_shift, depth, l_aux = cur.i32(), cur.i32(), cur.i32()
    aux = cur.raw(l_aux)
    names = None
    meta: dict = {}
    if l_aux >= 28:  # a tabix-style header (VCF.gz indexed with CSI)
        meta, names = b.parse_tabix_meta(b.Cursor(aux))
    n_ref = cur.i32()
    refs = b.LazyRefs(cur.buf, cur.pos, n_ref, b.skip_csi_ref, _read_ref)
    cur.pos = refs.end
    if names is not None and len(names) != n_ref:
        names = None
    return BinIndex("CSI", min_shift, depth, refs, b.read_optional_u64(cur), names=names, meta=meta)


def _read_ref(cur: b.Cursor) -> RefIndex:
    ref = RefIndex()
    for _ in range(cur.i32()):
        bin_id = cur.u32()
        ref.loffsets[bin_id] = cur.u64()
        ref.bins[bin_id] = b.read_chunks(cur)
    return ref


def load(path: str | Path) -> BinIndex:
    return parse(Path(path).read_bytes())
