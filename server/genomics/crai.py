"""CRAI: the CRAM index, a gzipped table of one line per slice (CRAM spec, section 12)."""

from __future__ import annotations

import gzip
from dataclasses import dataclass
from pathlib import Path

from server.genomics.coords import nonempty_end, pos_to_start


@dataclass(frozen=True)
class CraiEntry:
    ref_id: int  # -1: unmapped reads
    start: int  # 0-based; the file holds a 1-based alignment start
    span: int
    container: int  # byte offset of the container in the CRAM file
    slice_offset: int
    slice_size: int

    @property
    def end(self) -> int:
        return self.start + self.span


class CraiError(ValueError):
    pass


def parse(raw: bytes) -> list[CraiEntry]:
    text = gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw
    out = []
    for lineno, line in enumerate(text.decode().splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split("\t")
        if len(parts) != 6:
            raise CraiError(f"CRAI line {lineno}: expected 6 columns")
        ref_id, pos, span, container, slice_offset, slice_size = (int(p) for p in parts)
        start = pos_to_start(pos) if pos > 0 else 0
        out.append(CraiEntry(ref_id, start, span, container, slice_offset, slice_size))
    return out


def load(path: str | Path) -> list[CraiEntry]:
    return parse(Path(path).read_bytes())


def containers(entries: list[CraiEntry], ref_id: int, start: int, end: int) -> list[int]:
    """Offsets of containers holding records of ``ref_id`` overlapping ``[start, end)``;
    ``ref_id == -1`` selects the unplaced unmapped reads (region ignored)."""
    found = set()
    for e in entries:
        if e.ref_id != ref_id:
            continue
        if ref_id == -1 or (e.start < end and start < nonempty_end(e.start, e.end)):
            found.add(e.container)
    return sorted(found)
