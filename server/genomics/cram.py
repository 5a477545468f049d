"""Just enough of CRAM to cut it into containers: the file definition,
container headers, and the EOF container."""

from __future__ import annotations

import struct
from typing import BinaryIO

# The EOF container htslib writes (CRAM 3.x and 2.1).
EOF_V3 = bytes.fromhex(
    "0f000000ffffffff0fe0454f4600000000010005bdd94f0001000606010001000100ee63014b"
)
EOF_V2 = bytes.fromhex("0b000000ffffffffffe0454f46000000000100000100060601000100010000")


class CramError(ValueError):
    pass


def eof_container(major: int) -> bytes:
    return EOF_V3 if major >= 3 else EOF_V2


def _itf8(buf: bytes, pos: int) -> tuple[int, int]:
    b0 = buf[pos]
    if b0 < 0x80:
        return b0, pos + 1
    if b0 < 0xC0:
        return ((b0 & 0x3F) << 8) | buf[pos + 1], pos + 2
    if b0 < 0xE0:
        return ((b0 & 0x1F) << 16) | (buf[pos + 1] << 8) | buf[pos + 2], pos + 3
    if b0 < 0xF0:
        return ((b0 & 0x0F) << 24) | (buf[pos + 1] << 16) | (buf[pos + 2] << 8) | buf[
            pos + 3
        ], pos + 4
    value = (
        ((b0 & 0x0F) << 28)
        | (buf[pos + 1] << 20)
        | (buf[pos + 2] << 12)
        | (buf[pos + 3] << 4)
        | (buf[pos + 4] & 0x0F)
    )
    if value >= 1 << 31:
        value -= 1 << 32
    return value, pos + 5


def _ltf8(buf: bytes, pos: int) -> tuple[int, int]:
    b0 = buf[pos]
    n = 0
    while n < 8 and b0 & (0x80 >> n):
        n += 1
    if n == 8:
        return int.from_bytes(buf[pos + 1 : pos + 9], "big"), pos + 9
    value = b0 & (0xFF >> (n + 1)) if n < 7 else 0
    for i in range(n):
        value = (value << 8) | buf[pos + 1 + i]
    return value, pos + 1 + n


def read_definition(fh: BinaryIO) -> tuple[int, int]:
    fh.seek(0)
    head = fh.read(26)
    if len(head) < 26 or head[:4] != b"CRAM":
        raise CramError("not a CRAM file")
    return head[4], head[5]


def container_end(fh: BinaryIO, offset: int, major: int) -> int:
    """Byte offset just past the container starting at ``offset``."""
    _, _, _, data_start, length = _container(fh, offset, major)
    return data_start + length


def container_header(fh: BinaryIO, offset: int, major: int) -> tuple[int, int, int, int]:
    """``(reference id, 1-based alignment start, span, offset of its first block)`` of the
    container at ``offset`` (reference id -1: unmapped, -2: several references)."""
    ref_id, start, span, data_start, _ = _container(fh, offset, major)
    return ref_id, start, span, data_start


def _container(fh: BinaryIO, offset: int, major: int) -> tuple[int, int, int, int, int]:
    fh.seek(offset)
    buf = fh.read(4 + 5 * 6 + 9 * 2 + 5 + 5 * 64 + 4)
    if len(buf) < 8:
        raise CramError(f"no container at offset {offset}")
    length = struct.unpack_from("<i", buf, 0)[0]
    ref_id, pos = _itf8(buf, 4)
    start, pos = _itf8(buf, pos)
    span, pos = _itf8(buf, pos)
    _, pos = _itf8(buf, pos)  # n records
    for _ in range(2):  # record counter, bases (ltf8 since CRAM 2.0)
        _, pos = _ltf8(buf, pos)
    _, pos = _itf8(buf, pos)  # n blocks
    n_landmarks, pos = _itf8(buf, pos)
    for _ in range(n_landmarks):
        if pos >= len(buf):  # many landmarks: read on
            fh.seek(offset)
            buf = fh.read(pos + 5 * n_landmarks + 16)
        _, pos = _itf8(buf, pos)
    if major >= 3:
        pos += 4  # crc32
    return ref_id, start, span, offset + pos, length


def header_end(fh: BinaryIO) -> tuple[int, int]:
    """``(major version, offset of the first data container)``."""
    major, _ = read_definition(fh)
    return major, container_end(fh, 26, major)


def has_eof(fh: BinaryIO, size: int, major: int) -> bool:
    eof = eof_container(major)
    if size < len(eof):
        return False
    fh.seek(size - len(eof))
    return fh.read(len(eof)) == eof
