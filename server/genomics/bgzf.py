"""BGZF: the blocked gzip container of BAM, BCF, VCF.gz, and of TBI/CSI indexes.

A *virtual offset* is ``coffset << 16 | uoffset``: the file offset of a block's
first byte and an offset into that block's uncompressed data.
"""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Iterator
from typing import BinaryIO

# The empty block every BGZF file should end with (SAM/BAM spec, 4.1.2).
EOF_BLOCK = bytes.fromhex("1f8b08040000000000ff0600424302001b0003000000000000000000")
MAX_BLOCK_DATA = 0xFF00  # uncompressed bytes per block htslib writes
_HEADER = struct.Struct("<4BI2BH")  # magic..xlen (12 bytes)
_TAIL = struct.Struct("<II")  # crc32, isize


class BGZFError(ValueError):
    """The bytes are not BGZF, or a block is damaged."""


def split_voffset(voffset: int) -> tuple[int, int]:
    return voffset >> 16, voffset & 0xFFFF


def make_voffset(coffset: int, uoffset: int) -> int:
    return coffset << 16 | uoffset


def _block_size(header: bytes, extra: bytes) -> int:
    """Total size of the block from its gzip header + extra subfields."""
    pos = 0
    while pos + 4 <= len(extra):
        si1, si2, slen = extra[pos], extra[pos + 1], struct.unpack_from("<H", extra, pos + 2)[0]
        if si1 == 66 and si2 == 67 and slen == 2:
            return struct.unpack_from("<H", extra, pos + 4)[0] + 1
        pos += 4 + slen
    raise BGZFError("gzip member without a BGZF BC subfield")


def read_block(fh: BinaryIO, coffset: int) -> tuple[int, bytes] | None:
    """Read the block at ``coffset``: ``(compressed size, data)``; None at end of file."""
    fh.seek(coffset)
    header = fh.read(12)
    if not header:
        return None
    if (
        len(header) < 12
        or header[0] != 31
        or header[1] != 139
        or header[2] != 8
        or not header[3] & 4
    ):
        raise BGZFError(f"no BGZF block at offset {coffset}")
    xlen = _HEADER.unpack(header)[-1]
    extra = fh.read(xlen)
    size = _block_size(header, extra)
    rest = fh.read(size - 12 - xlen)
    if len(rest) != size - 12 - xlen:
        raise BGZFError(f"truncated BGZF block at offset {coffset}")
    cdata, tail = rest[:-8], rest[-8:]
    crc, isize = _TAIL.unpack(tail)
    try:
        data = zlib.decompress(cdata, -15)
    except zlib.error as exc:
        raise BGZFError(f"damaged BGZF block at offset {coffset}: {exc}") from None
    if len(data) != isize or zlib.crc32(data) != crc:
        raise BGZFError(f"BGZF block at offset {coffset} fails its checksum")
    return size, data


def iter_blocks(fh: BinaryIO, coffset: int = 0) -> Iterator[tuple[int, int, bytes]]:
    """Yield ``(coffset, compressed size, data)`` from ``coffset`` to the end."""
    while True:
        block = read_block(fh, coffset)
        if block is None:
            return
        size, data = block
        yield coffset, size, data
        coffset += size


def compress_block(data: bytes, level: int = 6) -> bytes:
    """One BGZF block holding ``data`` (at most 64 KiB)."""
    if len(data) > 0x10000:
        raise ValueError("a BGZF block holds at most 65536 bytes")
    comp = zlib.compressobj(level, zlib.DEFLATED, -15)
    cdata = comp.compress(data) + comp.flush()
    if len(cdata) + 26 > 0x10000:  # incompressible: store
        comp = zlib.compressobj(0, zlib.DEFLATED, -15)
        cdata = comp.compress(data) + comp.flush()
    bsize = len(cdata) + 25
    return (
        b"\x1f\x8b\x08\x04\x00\x00\x00\x00\x00\xff\x06\x00BC\x02\x00"
        + struct.pack("<H", bsize)
        + cdata
        + _TAIL.pack(zlib.crc32(data) & 0xFFFFFFFF, len(data))
    )


def compress(data: bytes, level: int = 6) -> bytes:
    """``data`` as a sequence of BGZF blocks (no EOF block)."""
    out = io.BytesIO()
    for pos in range(0, len(data), MAX_BLOCK_DATA):
        out.write(compress_block(data[pos : pos + MAX_BLOCK_DATA], level))
    return out.getvalue()


def decompress(raw: bytes) -> bytes:
    """All data of a complete BGZF byte string."""
    fh = io.BytesIO(raw)
    return b"".join(data for _, _, data in iter_blocks(fh))


def has_eof(fh: BinaryIO, size: int) -> bool:
    if size < len(EOF_BLOCK):
        return False
    fh.seek(size - len(EOF_BLOCK))
    return fh.read(len(EOF_BLOCK)) == EOF_BLOCK


class BGZFReader:
    """Sequential reader of uncompressed bytes that knows its virtual offset."""

    def __init__(self, fh: BinaryIO, coffset: int = 0):
        self.fh = fh
        self.coffset = coffset
        self.data = b""
        self.pos = 0  # into self.data
        self.next_coffset = coffset

    def _load(self) -> bool:
        block = read_block(self.fh, self.next_coffset)
        if block is None:
            return False
        size, data = block
        self.coffset, self.data, self.pos = self.next_coffset, data, 0
        self.next_coffset += size
        return True

    def tell(self) -> int:
        """Virtual offset of the next unread byte (normalised past block ends)."""
        while self.pos >= len(self.data):
            save = (self.coffset, self.data, self.pos, self.next_coffset)
            if not self._load():
                self.coffset, self.data, self.pos, self.next_coffset = save
                return make_voffset(self.next_coffset, 0)
        return make_voffset(self.coffset, self.pos)

    def read(self, n: int) -> bytes:
        parts = []
        while n > 0:
            if self.pos >= len(self.data) and not self._load():
                break
            take = self.data[self.pos : self.pos + n]
            self.pos += len(take)
            n -= len(take)
            parts.append(take)
        return b"".join(parts)

    def read_exact(self, n: int) -> bytes:
        out = self.read(n)
        if len(out) != n:
            raise BGZFError("unexpected end of BGZF data")
        return out

    def readline(self, limit: int = 1 << 24) -> bytes:
        parts = []
        total = 0
        while total < limit:
            if self.pos >= len(self.data) and not self._load():
                break
            nl = self.data.find(b"\n", self.pos)
            if nl >= 0:
                parts.append(self.data[self.pos : nl + 1])
                self.pos = nl + 1
                break
            parts.append(self.data[self.pos :])
            total += len(self.data) - self.pos
            self.pos = len(self.data)
        return b"".join(parts)

    def peek(self, n: int) -> bytes:
        while self.pos >= len(self.data):
            if not self._load():
                return b""
        return self.data[self.pos : self.pos + n]
