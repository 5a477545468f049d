"""Where the bytes of a registered file live, behind one interface.

A registered location is an absolute path on the node's file system or an
``s3://bucket/key`` object in any S3-compatible store. ``for_location`` is
the one place that tells them apart; tickets, the data plane, the index
checks and DRS work on the ``Storage`` it returns, so a new kind of store is
a new backend here and nothing else changes:

* ``open()``: a seekable binary reader; ``read(offset, length)`` and
  ``read_all()`` on top of it. Object storage reads each window with a ranged
  GET, so cutting a slice fetches only the index and a few BGZF blocks.
* ``stat()``: size and modification time, asked of the store now;
  ``version()``: what identifies the bytes for the caches of parsed indexes
  (the stat where it is free, the registered stat where it costs a round
  trip); ``unchanged()``: the version, refused when it is no longer the one
  registered.
* ``url(ttl, node_url)``: where a client fetches the bytes: a presigned URL
  of the store, or ``node_url()`` (the node's own signed data-plane URL) for
  a file the node serves itself.

A missing file or object is a ``FileNotFoundError``; each caller says what
that means for its API (a 404 on a data URL, a 500 for a ticket).
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import BinaryIO, NamedTuple

from server.errors import DataChanged, ServiceError

S3_SCHEME = "s3://"
CHANGED = (
    "the file changed since it was registered (size or modification time differ); the node "
    "will not serve it until an operator restores or re-registers it"
)


class Stat(NamedTuple):
    size: int | None  # None: not known (not checked)
    mtime_ns: int | None  # None or 0: not known (not checked)


class Storage(ABC):
    """The bytes at one registered location."""

    location: str
    registered: Stat | None  # size and mtime recorded at registration, when known

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
        """Where a client fetches the bytes for the next ``ttl`` seconds."""
        return self.presigned_url(ttl) or node_url()


def check_unchanged(registered: Stat | None, current: Stat) -> None:
    """Raise ``DataChanged`` when ``current`` is not the ``registered`` stat (an
    unknown registered size or mtime is not compared)."""
    if registered is None:
        return
    if (registered.size is not None and current.size != registered.size) or (
        registered.mtime_ns and current.mtime_ns != registered.mtime_ns
    ):
        raise DataChanged(CHANGED)


def is_local(location: str | os.PathLike) -> bool:
    """Whether ``location`` is a path on the node's own file system."""
    return isinstance(location, os.PathLike) or "://" not in location


def for_location(
    location: str | os.PathLike, settings=None, *, registered: Stat | None = None
) -> Storage:
    """The backend for a registered location (``settings``: the object store's
    endpoint and credentials; ``registered``: the size and mtime on record)."""
    if is_local(location):
        from server.storage.local import LocalStorage

        return LocalStorage(location, registered)
    if str(location).startswith(S3_SCHEME):
        if settings is None:
            raise ServiceError("files on object storage need the node's S3 settings")
        from server.storage.s3 import S3Storage

        return S3Storage(settings, str(location), registered)
    scheme = str(location).partition("://")[0]
    raise ServiceError(f"registered location with an unsupported scheme {scheme!r}://")
