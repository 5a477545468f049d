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

A location ending in ``.c4gh`` is an archived Crypt4GH file: its backend
(``crypt4gh.py``) shows the plaintext it holds, decrypted in memory.

A missing file or object is a ``FileNotFoundError``; each caller says what
that means for its API (a 404 on a data URL, a 500 for a ticket).
"""

from __future__ import annotations

import os

from server.errors import ServiceError
from server.storage.base import CHANGED, Stat, Storage, check_unchanged
from server.storage.crypt4gh import Crypt4GHStorage, ReheaderedStorage, is_crypt4gh
from server.storage.local import LocalStorage
from server.storage.s3 import S3Storage

__all__ = [
    "CHANGED",
    "Crypt4GHStorage",
    "ReheaderedStorage",
    "Stat",
    "Storage",
    "check_unchanged",
    "for_location",
    "is_crypt4gh",
    "is_local",
]
S3_SCHEME = "s3://"


def is_local(location: str | os.PathLike) -> bool:
    """Whether ``location`` is a path on the node's own file system."""
    return isinstance(location, os.PathLike) or "://" not in location


def for_location(
    location: str | os.PathLike,
    settings=None,
    *,
    registered: Stat | None = None,
    raw: bool = False,
) -> Storage:
    """The backend for a registered location (``settings``: the object store's
    endpoint and credentials; ``registered``: the size and mtime on record;
    ``raw``: a Crypt4GH file's ciphertext as stored, not its plaintext)."""
    if is_crypt4gh(str(location)) and not raw:
        if settings is None:
            raise ServiceError("Crypt4GH files need the node's settings (its key)")
        return Crypt4GHStorage(_plain_backend(location, settings, None), settings, registered)
    return _plain_backend(location, settings, registered)


def _plain_backend(location, settings, registered: Stat | None) -> Storage:
    if is_local(location):
        return LocalStorage(location, registered)
    if str(location).startswith(S3_SCHEME):
        if settings is None:
            raise ServiceError("files on object storage need the node's S3 settings")
        return S3Storage(settings, str(location), registered)
    scheme = str(location).partition("://")[0]
    raise ServiceError(f"registered location with an unsupported scheme {scheme!r}://")
