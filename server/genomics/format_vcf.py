"""VCF.gz: BGZF-compressed VCF text, indexed by TBI or CSI.

A region may name a contig the index carries but the header does not declare
(and the other way round): both are references of the file. A block ending
with a newline ends on a record boundary; where a block starts cannot be told
from its bytes alone, so a chunk starting mid-block is cut there.
"""

from __future__ import annotations

from typing import BinaryIO

from server.genomics import headers
from server.genomics.bgzfcut import BgzfFormat, Header
from server.genomics.binning import BinIndex


def read_header(fh: BinaryIO, index: BinIndex) -> Header:
    end, contigs = headers.vcf_header(fh)
    names = index.names or contigs
    return Header(end, names, set(contigs) | set(names))


def ends_on_record(data: bytes, uoffset: int, n_ref: int) -> bool:
    return data.endswith(b"\n")


FORMAT = BgzfFormat("VCF", ("TBI", "CSI"), read_header, ends_on_record=ends_on_record)
