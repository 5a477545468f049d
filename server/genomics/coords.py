"""The only place where 1-based and 0-based coordinates meet.

``start``/``end`` are 0-based half-open everywhere in genomeport. ``pos`` is
1-based and appears only next to a VCF/SAM field. A ``region`` string
(``chr1:15001-20000``) is 1-based closed, as samtools writes it.
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


def vcf_interval(pos: int, ref: str, info_end: int | None = None) -> Interval:
    """The reference interval covered by a VCF record.

    ``INFO/END`` (1-based, inclusive) wins for structural variants.
    """
    start = pos_to_start(pos)
    end = info_end if info_end is not None else start + max(len(ref), 1)
    return Interval(start, max(end, start + 1))


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
