"""BAM: BGZF-compressed alignments, indexed by BAI or CSI (SAM/BAM specification).

htslib starts BAM blocks on record boundaries, so chunks usually widen to
whole blocks; ``starts_on_record``/``ends_on_record`` prove it for each block
by walking its records.
"""

from __future__ import annotations

from struct import unpack_from
from typing import BinaryIO

from server.genomics import headers
from server.genomics.bgzfcut import BgzfFormat, Header
from server.genomics.binning import BinIndex


def read_header(fh: BinaryIO, index: BinIndex) -> Header:
    end, names, _ = headers.bam_header(fh)
    return Header(end, names, set(names))


def starts_on_record(data: bytes, uoffset: int, n_ref: int) -> bool:
    return record_chain(data, 0, uoffset, n_ref)


def ends_on_record(data: bytes, uoffset: int, n_ref: int) -> bool:
    return record_chain(data, uoffset, len(data), n_ref)


def record_chain(data: bytes, pos: int, stop: int, n_ref: int) -> bool:
    """Whether ``data[pos:stop]`` is exactly a run of plausible BAM records.

    Every record must fit, name valid references, have a NUL-terminated read
    name where its length says, and field lengths that add up; a chance run
    of unrelated bytes passing all of this and landing exactly on ``stop``
    is not a practical possibility."""
    while pos < stop:
        if pos + 36 > stop:
            return False
        (
            block_size,
            ref_id,
            ref_pos,
            l_name,
            _mapq,
            _bin,
            n_cigar,
            _flag,
            l_seq,
            next_ref,
            next_pos,
        ) = unpack_from("<iiiBBHHHiii", data, pos)
        end = pos + 4 + block_size
        if (
            end > stop
            or l_name < 1
            or block_size < 32 + l_name
            or l_seq < 0
            or not -1 <= ref_id < n_ref
            or not -1 <= next_ref < n_ref
            or ref_pos < -1
            or next_pos < -1
            or 32 + l_name + 4 * n_cigar + (l_seq + 1) // 2 + l_seq > block_size
            or data[pos + 36 + l_name - 1] != 0
            or 0 in data[pos + 36 : pos + 36 + l_name - 1]
        ):
            return False
        pos = end
    return pos == stop


FORMAT = BgzfFormat(
    "BAM",
    ("BAI", "CSI"),
    read_header,
    starts_on_record=starts_on_record,
    ends_on_record=ends_on_record,
    unplaced=True,
)
