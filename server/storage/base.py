"""The storage interface: what every backend answers (see ``server.storage``)."""

from __future__ import annotations

import io
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import BinaryIO, NamedTuple

from server.errors import DataChanged

CHANGED = (
    "the file changed since it was registered (size or modification time differ); the node "
    "will not serve it until an operator restores or re-registers it"
)


# A presigned URL cannot be revoked: it lives at most this long, the bound within
# which a revoked or expired grant closes every URL (the data plane re-checks the
# grant behind its own URLs at each request instead).
PRESIGNED_MAX_TTL = 60


class Stat(NamedTuple):
    size: int | None  # None: not known (not checked)
    mtime_ns: int | None  # None or 0: not known (not checked)


class Storage(ABC):
    """The bytes at one registered location."""

    location: str
    registered: Stat | None  # size and mtime recorded at registration, when known
    streamed = False  # True: no file descriptor to hand the kernel; read() in chunks

    @abstractmethod
    def open(self) -> BinaryIO:
        """A seekable binary reader of the bytes (the caller closes it)."""

    @abstractmethod
    def stat(self) -> Stat:
        """Size and modification time, asked of the file system or store now."""

    @abstractmethod
    def presigned_url(self, ttl: int) -> str | None:
        """A URL at the store itself, valid ``ttl`` seconds, for bytes the node does
        not serve; None for a file the node's own data plane serves."""

    def read(self, offset: int, length: int) -> bytes:
        """Up to ``length`` bytes from ``offset`` (fewer at the end)."""
        with self.open() as fh:
            fh.seek(offset)
            return fh.read(length)

    def read_all(self) -> bytes:
        with self.open() as fh:
            return fh.read()

    def version(self) -> Stat:
        """What identifies the current bytes, for caches keyed by content."""
        return self.stat()

    def unchanged(self) -> Stat:
        """``version()``, or ``DataChanged`` when it differs from the registration."""
        current = self.version()
        check_unchanged(self.registered, current)
        return current

    def url(self, ttl: int, node_url: Callable[[], str]) -> str:
        """Where a client fetches the bytes for the next ``ttl`` seconds (a
        presigned URL: at most ``PRESIGNED_MAX_TTL``)."""
        return self.presigned_url(min(ttl, PRESIGNED_MAX_TTL)) or node_url()


def check_unchanged(registered: Stat | None, current: Stat) -> None:
    """Raise ``DataChanged`` when ``current`` is not the ``registered`` stat (an
    unknown registered size or mtime is not compared)."""
    if registered is None:
        return
    if (registered.size is not None and current.size != registered.size) or (
        registered.mtime_ns and current.mtime_ns != registered.mtime_ns
    ):
        raise DataChanged(CHANGED)


class SizedReader(io.RawIOBase):
    """A read-only, seekable file of ``size`` bytes. A subclass sets ``size`` and
    ``pos`` and answers ``_read(n)``: up to ``n`` bytes at ``pos`` (``n`` is
    already cut to what is left, and may be 0); ``read`` moves ``pos`` past them."""

    size: int
    pos: int

    def _read(self, n: int) -> bytes:
        raise NotImplementedError

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = 0) -> int:
        base = {0: 0, 1: self.pos, 2: self.size}[whence]
        self.pos = max(0, base + offset)
        return self.pos

    def tell(self) -> int:
        return self.pos

    def readinto(self, buf) -> int:
        data = self.read(len(buf))
        buf[: len(data)] = data
        return len(data)

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0:
            n = self.size - self.pos
        out = self._read(min(n, max(0, self.size - self.pos)))
        self.pos += len(out)
        return out
