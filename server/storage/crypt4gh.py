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
from typing import BinaryIO

from server.c4gh import stream
from server.storage.base import Stat, Storage

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
        from server.c4gh.keys import node_key

        raw = self.inner.stat()
        if self._opened is not None and self._opened[2] == raw:
            return self._opened[0], self._opened[1], raw
        with self.inner.open() as fh:
            header = stream.read_header(fh)
        keys = stream.session_keys(header, node_key(self.settings).decryption_keys)
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

    def stat(self) -> Stat:
        header, _, raw = self._open_header()
        return Stat(stream.plain_size((raw.size or 0) - header.length), raw.mtime_ns)

    def presigned_url(self, ttl: int) -> str | None:
        return None
