"""Files on the node's own file system, served by its data plane.

A stat is free here, so ``version()`` is always the live one: a parsed index
is re-read as soon as its file changes, and ``unchanged()`` compares what is
on disk now with the registration before every ticket.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import BinaryIO

from server.storage.base import Stat, Storage


class LocalStorage(Storage):
    def __init__(self, location: str | os.PathLike, registered: Stat | None = None):
        path = os.fspath(location)  # os.path, not pathlib: the data plane makes one per request
        if not os.path.isabs(path) or ".." in path.split(os.sep):
            raise ValueError(f"registered locations are absolute paths, not {path!r}")
        self.path = self.location = path
        self.registered = registered

    def open(self) -> BinaryIO:
        """The file, unbuffered (the data plane reads it by file descriptor)."""
        try:
            return open(self.path, "rb", buffering=0)  # noqa: SIM115 - the caller closes it
        except (IsADirectoryError, NotADirectoryError):
            raise FileNotFoundError(f"not a file: {self.path}") from None

    def read_all(self) -> bytes:
        return Path(self.path).read_bytes()

    def stat(self) -> Stat:
        st = os.stat(self.path)
        return Stat(st.st_size, st.st_mtime_ns)

    def presigned_url(self, ttl: int) -> str | None:
        return None  # the node's data plane serves its own files
