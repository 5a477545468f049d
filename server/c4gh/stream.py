"""Crypt4GH streams: a header, then data segments of 64 KiB of plaintext each.

A segment is 65,536 plaintext bytes (the last one fewer) encrypted with
ChaCha20-Poly1305 into 65,564 bytes (a 12-byte nonce and a 16-byte tag
added). So the plaintext offset ``p`` is in segment ``p // 65536``, whose
ciphertext starts ``header + segment * 65564`` bytes into the file: that
arithmetic, what the node needs around the ``crypt4gh`` package's header
functions, and a seekable plaintext view for the data plane live here.
Decryption of each segment is ``crypt4gh.lib.decrypt_block``.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

from crypt4gh import CIPHER_DIFF, CIPHER_SEGMENT_SIZE, SEGMENT_SIZE
from crypt4gh import header as c4gh_header

from server.storage.base import SizedReader

SEGMENT = SEGMENT_SIZE  # 65536
CIPHER_SEGMENT = CIPHER_SEGMENT_SIZE  # 65564
MAX_HEADER = 1 << 20  # a header with more than a few keys and an edit list is refused


class NotCrypt4GH(ValueError):
    """Not a Crypt4GH stream, or one this node cannot open (the reason says which)."""


class _Counting(io.RawIOBase):
    """Counts what ``crypt4gh.header.parse`` reads, so the header's length is known."""

    def __init__(self, fh: BinaryIO):
        self.fh, self.count = fh, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buf) -> int:
        if self.count + len(buf) > MAX_HEADER:
            raise NotCrypt4GH("the Crypt4GH header is larger than 1 MiB")
        data = self.fh.read(len(buf))
        buf[: len(data)] = data
        self.count += len(data)
        return len(data)

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0 or self.count + n > MAX_HEADER:
            raise NotCrypt4GH("the Crypt4GH header is larger than 1 MiB")
        data = self.fh.read(n)
        self.count += len(data)
        return data


@dataclass(frozen=True)
class Header:
    packets: list[bytes]  # encrypted packets, as in the file
    length: int  # bytes of the header in the file


def read_header(fh: BinaryIO) -> Header:
    """The header at the reader's position (left right after it)."""
    counting = _Counting(fh)
    try:
        packets = list(c4gh_header.parse(counting))
    except NotCrypt4GH:
        raise
    except ValueError as exc:
        raise NotCrypt4GH(f"not a Crypt4GH file ({exc})") from None
    if not packets:
        raise NotCrypt4GH("the Crypt4GH header has no packets")
    return Header(packets, counting.count)


def session_keys(header: Header, keys: list[tuple]) -> list[bytes]:
    """The data keys the header holds for ``keys``; ``NotCrypt4GH`` when none opens
    or the stream carries an edit list (a submitted file is archived whole)."""
    decrypted, _ = c4gh_header.decrypt(header.packets, keys)
    if not decrypted:
        raise NotCrypt4GH("the header is not encrypted for this node's public key")
    try:
        data, edits = c4gh_header.partition_packets(decrypted)
        found = [c4gh_header.parse_enc_packet(p) for p in data]
    except ValueError as exc:
        raise NotCrypt4GH(f"unsupported Crypt4GH header ({exc})") from None
    if edits is not None:
        raise NotCrypt4GH("the file carries an edit list; submit the whole file")
    if not found:
        raise NotCrypt4GH("the header holds no data key for this node")
    return found


def header_for(
    data_keys: list[bytes], recipients: list[tuple], edit_list: list[int] | None = None
) -> bytes:
    """A serialized header giving ``recipients`` the data keys (and the edit list)."""
    packets = [c4gh_header.make_packet_data_enc(0, k) for k in data_keys]
    if edit_list:
        packets.append(c4gh_header.make_packet_data_edit_list(edit_list))
    encrypted = [e for p in packets for e in c4gh_header.encrypt(p, recipients)]
    return c4gh_header.serialize(encrypted)


def reencrypt(header: Header, keys: list[tuple], recipients: list[tuple]) -> bytes:
    """The header re-encrypted for ``recipients`` only (packets for others dropped)."""
    try:
        packets = c4gh_header.reencrypt(header.packets, keys, recipients, trim=True)
    except ValueError as exc:
        raise NotCrypt4GH(str(exc)) from None
    return c4gh_header.serialize(packets)


def plain_size(body_bytes: int) -> int:
    """Plaintext bytes of a data portion of ``body_bytes`` ciphertext bytes."""
    full, rest = divmod(body_bytes, CIPHER_SEGMENT)
    if rest and rest <= CIPHER_DIFF:
        raise NotCrypt4GH("the data portion ends inside a segment's nonce or tag")
    return full * SEGMENT + (rest - CIPHER_DIFF if rest else 0)


def cipher_offset(header_length: int, segment: int) -> int:
    return header_length + segment * CIPHER_SEGMENT


def decrypt_segment(cipher: bytes, data_keys: list[bytes]) -> bytes:
    from crypt4gh.lib import decrypt_block

    out = bytearray(SEGMENT)
    try:
        n = decrypt_block(out, cipher, data_keys)
    except ValueError:
        raise NotCrypt4GH("a data segment does not decrypt (damaged or not for this key)") from None
    return bytes(out[:n])


def segments(fh: BinaryIO, data_keys: list[bytes]) -> Iterator[bytes]:
    """Plaintext segments of the data portion from the reader's position."""
    while True:
        cipher = fh.read(CIPHER_SEGMENT)
        if not cipher:
            return
        if len(cipher) <= CIPHER_DIFF:
            raise NotCrypt4GH("the data portion ends inside a segment's nonce or tag")
        yield decrypt_segment(cipher, data_keys)


def region_edit_list(ranges: list[tuple[int, int]]) -> tuple[list[int], list[tuple[int, int]]]:
    """For plaintext ``[start, end)`` ranges (sorted, disjoint), the segments to send
    (as ``(first, last_exclusive)`` runs) and the edit list over their plaintext.

    The edit list alternates skip and keep lengths over the plaintext of the
    segments sent, which start at segment boundaries; it selects exactly the
    ranges' bytes.
    """
    runs: list[tuple[int, int]] = []
    for start, end in ranges:
        first, last = start // SEGMENT, -(-end // SEGMENT)  # last: exclusive (ceiling)
        if runs and first <= runs[-1][1]:
            runs[-1] = (runs[-1][0], max(runs[-1][1], last))
        else:
            runs.append((first, last))
    # plaintext position of each sent segment run's start, in the joined stream
    edits: list[int] = []
    sent = 0  # plaintext bytes of the sent segments before the current run
    cursor = 0  # position in the joined plaintext up to which the edits account
    run_index = 0
    for start, end in ranges:
        while not (runs[run_index][0] * SEGMENT <= start < runs[run_index][1] * SEGMENT):
            sent += (runs[run_index][1] - runs[run_index][0]) * SEGMENT
            run_index += 1
        joined_start = sent + start - runs[run_index][0] * SEGMENT
        edits.append(joined_start - cursor)
        edits.append(end - start)
        cursor = joined_start + end - start
    return edits, runs


class PlainReader(SizedReader):
    """A seekable plaintext view of a Crypt4GH file, decrypting one segment at a
    time in memory (``read_at(offset, length)`` reads ciphertext)."""

    def __init__(
        self,
        read_at: Callable[[int, int], bytes],
        header_length: int,
        size: int,
        data_keys: list[bytes],
    ):
        self.read_at, self.header_length, self.size = read_at, header_length, size
        self.data_keys = data_keys
        self.pos = 0
        self.cached: tuple[int, bytes] = (-1, b"")

    def _segment(self, index: int) -> bytes:
        if self.cached[0] != index:
            cipher = self.read_at(cipher_offset(self.header_length, index), CIPHER_SEGMENT)
            self.cached = (index, decrypt_segment(cipher, self.data_keys))
        return self.cached[1]

    def _read(self, n: int) -> bytes:
        out = []
        pos = self.pos
        while n > 0:
            index, within = divmod(pos, SEGMENT)
            piece = self._segment(index)[within : within + n]
            if not piece:
                break
            out.append(piece)
            pos += len(piece)
            n -= len(piece)
        return b"".join(out)
