"""The only place where 1-based and 0-based coordinates meet, and where
half-open ranges turn into closed ones.

``start``/``end`` are 0-based half-open everywhere in genomeport. ``pos`` is
1-based and appears only next to a VCF/SAM field. A ``region`` string
(``chr1:15001-20000``) is 1-based closed, as samtools writes it. Byte ranges
are half-open too; HTTP writes them closed (``Range: bytes=0-99`` is the first
100 bytes), so ``inclusive_end`` and ``exclusive_end`` convert at that edge.
Keeping every off-by-one in this module means a reader checks each
convention once, here, and nowhere else.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, order=True)
class Interval:
    """A 0-based, half-open interval ``[start, end)`` on one reference."""

    start: int
    end: int

    def __post_init__(self) -> None:
        if self.start < 0 or self.end < self.start:
            raise ValueError(f"invalid interval [{self.start}, {self.end})")

    def overlaps(self, other: Interval) -> bool:
        """True if the intervals share at least one base (an empty one shares none)."""
        return (
            self.start < other.end
            and other.start < self.end
            and bool(len(self))
            and bool(len(other))
        )

    def __len__(self) -> int:
        return self.end - self.start


def pos_to_start(pos: int) -> int:
    """VCF/SAM ``POS`` (1-based) to a 0-based start."""
    return pos - 1


def start_to_pos(start: int) -> int:
    """0-based start to VCF/SAM ``POS`` (1-based)."""
    return start + 1


def inclusive_end(end: int) -> int:
    """The last item of the half-open range ending at ``end``: the closed end that
    HTTP byte ranges (``bytes=a-b``) and binning-scheme bin numbers use."""
    return end - 1


def exclusive_end(last: int) -> int:
    """The half-open end of a closed range whose last item is ``last``."""
    return last + 1


def range_header(start: int, end: int) -> str:
    """The HTTP ``Range`` value asking for the bytes ``[start, end)``."""
    return f"bytes={start}-{inclusive_end(end)}"


def nonempty_end(start: int, end: int) -> int:
    """``end``, or ``start + 1`` when ``[start, end)`` is empty: a record with no
    span (an insertion, a CRAI slice of span 0) still sits on the base at ``start``."""
    return max(end, exclusive_end(start))


def vcf_interval(pos: int, ref: str, info_end: int | None = None) -> Interval:
    """The reference interval covered by a VCF record.

    ``INFO/END`` (1-based, inclusive) wins for structural variants.
    """
    start = pos_to_start(pos)
    end = info_end if info_end is not None else ref_end(start, ref)
    return Interval(start, nonempty_end(start, end))


def ref_end(start: int, ref: str) -> int:
    """The 0-based exclusive end of a record's REF at 0-based ``start`` (at least
    one base): ``vcf_interval(...).end`` without INFO/END, as a plain int for
    the loaders' per-record work."""
    return start + (len(ref) or 1)


def length_after_anchor(interval: Interval) -> int:
    """Bases a symbolic structural variant covers after its VCF anchor (padding)
    base: ``INFO/END - POS``, at least 1."""
    return max(inclusive_end(len(interval)), 1)


def last_pos(first: int, length: int) -> int:
    """1-based position of the last of ``length`` bases starting at 1-based ``first``."""
    return inclusive_end(first + length)


def pos_before(pos: int) -> int:
    """1-based position of the base before ``pos`` (HGVS names an insertion by the
    two positions it sits between)."""
    return pos - 1


def closed_length(first: int, last: int) -> int:
    """How many positions the closed range ``first..last`` holds (HGVS ``first_last``)."""
    return exclusive_end(last) - first


def to_region(reference_name: str, start: int | None = None, end: int | None = None) -> str:
    """A samtools-style 1-based closed region string."""
    if start is None and end is None:
        return reference_name
    first = start_to_pos(start or 0)
    if end is None:
        return f"{reference_name}:{first}"
    return f"{reference_name}:{first}-{end}"


def from_region(region: str) -> tuple[str, int | None, int | None]:
    """Parse ``chr1:15001-20000`` into ``("chr1", 15000, 20000)``."""
    name, _, span = region.rpartition(":")
    if not name or not span or not span.replace(",", "").replace("-", "").isdigit():
        return region, None, None
    first, _, last = span.replace(",", "").partition("-")
    return name, pos_to_start(int(first)), int(last) if last else None


def anchor_start(start: int) -> int:
    """0-based start of the base VCF puts before a trimmed indel that begins at
    ``start`` (Beacon's empty ``alternateBases`` / ``referenceBases`` form)."""
    return start - 1
