"""What a slice is made of, and the interface every format's slicer offers.

A slice is a list of pieces: ``ByteRange`` (bytes served from the file as they
are) and ``Inline`` (bytes made here: the part of a BGZF block where a chunk
starts or ends mid-block, re-encoded as a block of its own, and the EOF
marker). Joined in order, the pieces of ``header()`` + ``body(regions)`` +
``eof_piece()`` are a valid file holding every record that overlaps the
regions. A format is a module offering a ``Format`` (``server.genomics.slices``
lists them); what it opens is a ``Slicer``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Protocol

import cachetools

UNPLACED = "*"


class SliceError(ValueError):
    """The file or its index cannot be cut (damaged, wrong format)."""


class UnknownReference(KeyError):
    """The reference name is not declared by the file."""


@dataclass(frozen=True)
class ByteRange:
    start: int
    end: int  # exclusive

    def __len__(self) -> int:
        return self.end - self.start


@dataclass(frozen=True)
class Inline:
    data: bytes


Piece = ByteRange | Inline


@dataclass(frozen=True)
class Region:
    reference_name: str
    start: int | None = None  # 0-based
    end: int | None = None  # exclusive


class Slicer(Protocol):
    """A file opened with its parsed index, ready to cut."""

    format: str
    index_format: str

    def has_reference(self, name: str) -> bool: ...

    def header(self) -> list[Piece]: ...

    def body(self, regions: list[Region] | None) -> list[Piece]:
        """Pieces of the records overlapping ``regions`` (None: every record);
        ``UnknownReference`` for a name the file does not declare."""
        ...

    def eof_piece(self) -> Inline: ...


@dataclass(frozen=True)
class Source:
    """The bytes to cut: ``open()`` returns a new seekable reader each time;
    ``key`` identifies the bytes for caches (location and version)."""

    open: Callable[[], BinaryIO]
    size: int
    key: tuple
    name: str  # for messages


class Format(Protocol):
    name: str
    indexes: tuple[str, ...]  # index formats that fit, in the order they are looked for

    def open(self, source: Source, fh: BinaryIO, index: Any, index_format: str) -> Slicer:
        """The slicer of ``source`` (``fh``: a reader of it) with its parsed ``index``."""
        ...


def join_pieces(pieces: list[Piece]) -> list[Piece]:
    """Merge touching byte ranges and consecutive inline pieces."""
    out: list[Piece] = []
    for p in pieces:
        if isinstance(p, ByteRange) and len(p) == 0 or isinstance(p, Inline) and not p.data:
            continue
        if (
            out
            and isinstance(p, ByteRange)
            and isinstance(out[-1], ByteRange)
            and out[-1].end == p.start
        ):
            out[-1] = ByteRange(out[-1].start, p.end)
        elif out and isinstance(p, Inline) and isinstance(out[-1], Inline):
            out[-1] = Inline(out[-1].data + p.data)
        else:
            out.append(p)
    return out


def read_pieces(path: str | Path, pieces: list[Piece]) -> bytes:
    """The bytes the pieces stand for (tests and small tools)."""
    parts = []
    with open(path, "rb") as fh:
        for p in pieces:
            if isinstance(p, Inline):
                parts.append(p.data)
            else:
                fh.seek(p.start)
                parts.append(fh.read(len(p)))
    return b"".join(parts)


class LRU:
    """A cachetools LRU behind a lock (cachetools caches are not thread-safe)."""

    def __init__(self, size: int):
        self.data = cachetools.LRUCache(size)
        self.lock = threading.Lock()

    def get(self, key):
        with self.lock:
            return self.data.get(key)

    def put(self, key, value):
        with self.lock:
            self.data[key] = value

    def clear(self):
        with self.lock:
            self.data.clear()
