"""BCF: BGZF-compressed binary VCF, indexed by CSI.

Record boundaries cannot be told from a block's bytes, so chunks starting or
ending mid-block are always cut exactly (re-encoded inline).
"""

from __future__ import annotations

from typing import BinaryIO

from server.genomics import headers
from server.genomics.bgzfcut import BgzfFormat, Header
from server.genomics.binning import BinIndex


def read_header(fh: BinaryIO, index: BinIndex) -> Header:
    end, names = headers.bcf_header(fh)
    return Header(end, names, set(names))


FORMAT = BgzfFormat("BCF", ("CSI",), read_header)
