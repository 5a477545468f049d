"""Archived Crypt4GH files (``*.c4gh``), seen as the plaintext they hold.

The archive keeps each file as the submitter encrypted it, with its header
re-encrypted for the node's key. Everything that reads a registered file
(ticket cutting, index checks, the plaintext data plane) reads through this
backend: ``open()`` is a seekable view that decrypts one 64 KiB segment at a
time in memory (``server.c4gh.stream.PlainReader``), ``stat()`` gives the
plaintext size, so offsets in indexes and tickets are plaintext offsets as
for any other file. Nothing decrypted is ever written anywhere.

The ciphertext itself is read through the backend of the location (a local
file or an S3 object), ``inner``; ``presigned_url`` is None, because the
store holds ciphertext, and plaintext is served only by the node.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import BinaryIO

from server.c4gh import stream
from server.storage.base import SizedReader, Stat, Storage

SUFFIX = ".c4gh"


def is_crypt4gh(location: str) -> bool:
    return str(location).endswith(SUFFIX)


class Crypt4GHStorage(Storage):
    streamed = True  # no file descriptor of plaintext: the data plane streams reads

    def __init__(self, inner: Storage, settings, registered: Stat | None = None):
        self.inner, self.settings = inner, settings
        self.location = inner.location
        self.registered = registered
        self._opened: tuple | None = None

    def _open_header(self) -> tuple[stream.Header, list[bytes], Stat]:
        from server.c4gh.keys import serving_keys

        raw = self.inner.stat()
        if self._opened is not None and self._opened[2] == raw:
            return self._opened[0], self._opened[1], raw
        with self.inner.open() as fh:
            header = stream.read_header(fh)
        keys = stream.session_keys(header, serving_keys(self.settings))
        self._opened = (header, keys, raw)
        return header, keys, raw

    def ciphertext(self) -> tuple[stream.Header, list[bytes], Stat]:
        """The archived header, its data keys and the ciphertext's own stat."""
        return self._open_header()

    def open(self) -> BinaryIO:
        header, keys, raw = self._open_header()
        size = stream.plain_size((raw.size or 0) - header.length)
        return io.BufferedReader(
            stream.PlainReader(self.inner.read, header.length, size, keys), 1 << 16
        )

    def segments(self) -> Iterator[bytes]:
        """The plaintext, one 64 KiB segment at a time, read in one pass over the
        ciphertext; every segment is authenticated as it is decrypted, so damaged
        or altered archived bytes raise ``NotCrypt4GH`` (as does a header that
        does not open with the node's keys)."""
        header, keys, _ = self._open_header()
        with self.inner.open() as fh:
            fh.seek(header.length)
            yield from stream.segments(fh, keys)

    def stat(self) -> Stat:
        header, _, raw = self._open_header()
        return Stat(stream.plain_size((raw.size or 0) - header.length), raw.mtime_ns)

    def presigned_url(self, ttl: int) -> str | None:
        return None


class _Joined(SizedReader):
    """``prefix`` followed by ``inner``'s bytes from ``skip`` on, seekable."""

    def __init__(self, prefix: bytes, inner: Storage, skip: int, size: int):
        self.prefix, self.inner, self.skip, self.size, self.pos = prefix, inner, skip, size, 0

    def _read(self, n: int) -> bytes:
        out = b""
        if n and self.pos < len(self.prefix):
            out = self.prefix[self.pos : self.pos + n]
        rest = n - len(out)
        if rest:
            start = self.pos + len(out) - len(self.prefix) + self.skip
            out += self.inner.read(start, rest)
        return out


class ReheaderedStorage(Storage):
    """An archived Crypt4GH file behind another header (one made for a client's
    key): the client's header, then the archived data segments as they are."""

    streamed = True

    def __init__(self, inner: Storage, header: bytes, archived_header: int):
        self.inner, self.header, self.archived_header = inner, header, archived_header
        self.location, self.registered = inner.location, inner.registered

    def stat(self) -> Stat:
        raw = self.inner.stat()
        return Stat(len(self.header) + (raw.size or 0) - self.archived_header, raw.mtime_ns)

    def open(self) -> BinaryIO:
        size = self.stat().size or 0
        return io.BufferedReader(
            _Joined(self.header, self.inner, self.archived_header, size), 1 << 16
        )

    def presigned_url(self, ttl: int) -> str | None:
        return None
