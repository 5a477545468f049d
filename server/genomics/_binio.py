"""Little-endian readers shared by the index parsers."""

from __future__ import annotations

import struct
from collections.abc import Sequence

from server.genomics import bgzf
from server.genomics.binning import RefIndex

_I32 = struct.Struct("<i")
_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")


class IndexError_(ValueError):
    """An index file that cannot be parsed."""


class Cursor:
    def __init__(self, buf: bytes, pos: int = 0):
        self.buf = memoryview(buf)
        self.pos = pos

    def i32(self) -> int:
        value = _I32.unpack_from(self.buf, self.pos)[0]
        self.pos += 4
        return value

    def u32(self) -> int:
        value = _U32.unpack_from(self.buf, self.pos)[0]
        self.pos += 4
        return value

    def u64(self) -> int:
        value = _U64.unpack_from(self.buf, self.pos)[0]
        self.pos += 8
        return value

    def raw(self, n: int) -> bytes:
        if self.pos + n > len(self.buf):
            raise IndexError_("index truncated")
        value = bytes(self.buf[self.pos : self.pos + n])
        self.pos += n
        return value

    def u64s(self, n: int) -> list[int]:
        if n < 0 or self.pos + 8 * n > len(self.buf):
            raise IndexError_("index truncated")
        values = list(struct.unpack_from(f"<{n}Q", self.buf, self.pos))
        self.pos += 8 * n
        return values

    def remaining(self) -> int:
        return len(self.buf) - self.pos


def read_chunks(cur: Cursor) -> list[tuple[int, int]]:
    n_chunk = cur.i32()
    flat = cur.u64s(2 * n_chunk)
    return list(zip(flat[0::2], flat[1::2], strict=False))


def read_bai_like_ref(cur: Cursor) -> RefIndex:
    """One reference of a BAI or TBI: bins with chunks, then the linear index."""
    ref = RefIndex()
    n_bin = cur.i32()
    for _ in range(n_bin):
        bin_id = cur.u32()
        ref.bins[bin_id] = read_chunks(cur)
    n_intv = cur.i32()
    ref.linear = cur.u64s(n_intv)
    return ref


def _skip_bins(buf: memoryview, pos: int, bin_head: int) -> int:
    """Offset just past ``n_bin`` and its bins, each ``bin_head`` bytes, then
    ``n_chunk`` and 16 bytes a chunk."""
    unpack = _I32.unpack_from
    n_bin = unpack(buf, pos)[0]
    pos += 4
    for _ in range(n_bin):
        pos += bin_head + 4 + 16 * unpack(buf, pos + bin_head)[0]
    return pos


def skip_bai_like_ref(buf: memoryview, pos: int) -> int:
    """Offset just past one BAI/TBI reference (bin id; then the linear index), without
    building it."""
    pos = _skip_bins(buf, pos, 4)
    return pos + 4 + 8 * _I32.unpack_from(buf, pos)[0]


def skip_csi_ref(buf: memoryview, pos: int) -> int:
    """Offset just past one CSI reference (bin id and loffset per bin)."""
    return _skip_bins(buf, pos, 12)


def bgzf_index(raw: bytes, magic: bytes, what: str) -> Cursor:
    """A cursor just past the magic of a BGZF-compressed index (TBI, CSI)."""
    data = bgzf.decompress(raw)
    if data[:4] != magic:
        raise IndexError_(f"not a {what} index")
    return Cursor(data, 4)


class LazyRefs(Sequence):
    """References of an index, each parsed the first time it is asked for.

    Opening a WGS-scale index only walks the bin headers to find where each
    reference starts; a query parses the one reference it needs."""

    def __init__(self, buf: bytes, start: int, n_ref: int, skip, parse):
        self.buf = memoryview(buf)
        self.offsets = []
        pos = start
        for _ in range(n_ref):
            self.offsets.append(pos)
            pos = skip(self.buf, pos)
        if pos > len(self.buf):
            raise IndexError_("index truncated")
        self.end = pos
        self._parse = parse
        self._cache: dict[int, RefIndex] = {}

    def __len__(self) -> int:
        return len(self.offsets)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        if i < 0:
            i += len(self)
        ref = self._cache.get(i)
        if ref is None:
            ref = self._parse(Cursor(self.buf, self.offsets[i]))
            self._cache[i] = ref
        return ref


def read_optional_u64(cur: Cursor) -> int | None:
    return cur.u64() if cur.remaining() >= 8 else None


def parse_tabix_meta(cur: Cursor) -> tuple[dict, list[str]]:
    """The tabix header (format, columns, meta char, skip, names)."""
    fmt, col_seq, col_beg, col_end, meta, skip = (cur.i32() for _ in range(6))
    l_nm = cur.i32()
    names = [n.decode() for n in cur.raw(l_nm).split(b"\0") if n]
    info = {
        "format": fmt,
        "col_seq": col_seq,
        "col_beg": col_beg,
        "col_end": col_end,
        "meta": chr(meta) if 0 < meta < 128 else "",
        "skip": skip,
    }
    return info, names
