"""The UCSC binning scheme shared by BAI, CSI and TBI, and the chunk query.

An index maps each reference to bins; each bin holds chunks ``(vbeg, vend)``
of virtual offsets. A region ``[start, end)`` (0-based, half-open) touches the
bins ``reg2bins`` lists; their chunks, minus those wholly before the region's
minimum offset, hold every record overlapping the region.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from server.genomics.coords import exclusive_end, inclusive_end


@dataclass
class RefIndex:
    bins: dict[int, list[tuple[int, int]]] = field(default_factory=dict)
    linear: list[int] = field(default_factory=list)  # BAI/TBI 16 kbp windows
    loffsets: dict[int, int] = field(default_factory=dict)  # CSI per-bin minimum offsets

    def max_end(self, pseudo_bin: int) -> int:
        """Virtual offset just past this reference's last record (0 when empty)."""
        best = 0
        for bin_id, chunks in self.bins.items():
            if bin_id == pseudo_bin:
                continue
            for _, vend in chunks:
                if vend > best:
                    best = vend
        return best


@dataclass
class BinIndex:
    """A parsed BAI, CSI or TBI index."""

    kind: str  # BAI | CSI | TBI
    min_shift: int
    depth: int
    refs: Sequence[RefIndex]  # parsed on first use
    n_no_coor: int | None = None
    names: list[str] | None = None  # TBI and VCF-CSI carry sequence names
    meta: dict = field(default_factory=dict)

    @property
    def max_coord(self) -> int:
        return 1 << (self.min_shift + 3 * self.depth)

    @property
    def pseudo_bin(self) -> int:
        return ((1 << (3 * (self.depth + 1))) - 1) // 7 + 1

    def chunks(self, ref_id: int, start: int, end: int) -> list[tuple[int, int]]:
        """Chunks holding every record that overlaps ``[start, end)``."""
        if ref_id < 0 or ref_id >= len(self.refs):
            return []
        end = min(end, self.max_coord)
        if start >= end:
            return []
        ref = self.refs[ref_id]
        if not ref.bins:
            return []
        min_off = self._min_offset(ref, start)
        out = []
        for bin_id in reg2bins(start, end, self.min_shift, self.depth):
            for vbeg, vend in ref.bins.get(bin_id, ()):
                if vend > min_off:
                    # Records before min_off end before the region (linear-index
                    # semantics), so the chunk may start there.
                    out.append((max(vbeg, min_off), vend))
        return merge_chunks(out)

    def _min_offset(self, ref: RefIndex, start: int) -> int:
        if ref.linear:
            return ref.linear[min(start >> self.min_shift, len(ref.linear) - 1)]
        if ref.loffsets:
            first_leaf = ((1 << (3 * self.depth)) - 1) // 7
            return ref.loffsets.get(first_leaf + (start >> self.min_shift), 0)
        return 0

    def last_placed_end(self) -> int:
        """Virtual offset past the last record placed on any reference."""
        return max((ref.max_end(self.pseudo_bin) for ref in self.refs), default=0)


def reg2bins(start: int, end: int, min_shift: int = 14, depth: int = 5) -> list[int]:
    """Bins that may hold records overlapping ``[start, end)`` (htslib's hts_reg2bins)."""
    if end <= start:
        return []
    last = inclusive_end(end)
    bins: list[int] = []
    shift = min_shift + 3 * depth
    first_of_level = 0
    for level in range(depth + 1):
        bins.extend(
            range(
                first_of_level + (start >> shift), exclusive_end(first_of_level + (last >> shift))
            )
        )
        shift -= 3
        first_of_level += 1 << (3 * level)
    return bins


def merge_chunks(chunks: list[tuple[int, int]], gap: int | None = None) -> list[tuple[int, int]]:
    """Sort and merge overlapping or touching chunks; with ``gap``, also chunks whose
    compressed offsets are at most ``gap`` bytes apart."""
    out: list[list[int]] = []
    for vbeg, vend in sorted(chunks):
        if vend <= vbeg:
            continue
        if out and (
            vbeg <= out[-1][1] if gap is None else (vbeg >> 16) <= (out[-1][1] >> 16) + gap
        ):
            if vend > out[-1][1]:
                out[-1][1] = vend
        else:
            out.append([vbeg, vend])
    return [(a, b) for a, b in out]
