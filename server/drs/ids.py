"""The DRS id scheme.

Every registered file (a ``DataFile`` row: an ``object_id`` in one ``format``)
yields three DRS objects, named from the object id and fixed suffixes so the
ids are stable, readable and never need a lookup table:

==================  ===============================  ======================
object              id                               example
==================  ===============================  ======================
the file (blob)     ``<object_id>.<ext>``            ``NA12878.bam``
its index (blob)    ``<object_id>.<ext>.<idx>``      ``NA12878.bam.bai``
both (bundle)       ``<object_id>.<ext>.bundle``     ``NA12878.bam.bundle``
==================  ===============================  ======================

``ext`` is ``bam``, ``cram``, ``vcf.gz`` or ``bcf``; ``idx`` is ``bai``,
``csi``, ``tbi`` or ``crai``. Object ids never contain ``/`` or ``~``.

WES outputs are blobs with an opaque id ``wes~<32 hex digits>`` (never
ending in a file suffix, so the two schemes cannot collide).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

FORMAT_EXT = {"BAM": "bam", "CRAM": "cram", "VCF": "vcf.gz", "BCF": "bcf"}
INDEX_EXT = {"BAI": "bai", "CSI": "csi", "TBI": "tbi", "CRAI": "crai"}
BUNDLE_EXT = "bundle"
WES_PREFIX = "wes~"
_WES_ID = re.compile(r"^wes~[0-9a-f]{32}$")
_OBJECT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


@dataclass(frozen=True)
class ParsedId:
    kind: str  # file | index | bundle | wes
    object_id: str = ""
    format: str = ""  # BAM | CRAM | VCF | BCF
    index_ext: str = ""
    wes_id: str = ""


def file_id(object_id: str, fmt: str) -> str:
    return f"{object_id}.{FORMAT_EXT[fmt]}"


def index_id(object_id: str, fmt: str, index_format: str) -> str:
    return f"{file_id(object_id, fmt)}.{INDEX_EXT[index_format]}"


def bundle_id(object_id: str, fmt: str) -> str:
    return f"{file_id(object_id, fmt)}.{BUNDLE_EXT}"


def _split_file(value: str) -> tuple[str, str] | None:
    for fmt, ext in FORMAT_EXT.items():
        suffix = "." + ext
        if value.endswith(suffix):
            oid = value[: -len(suffix)]
            if _OBJECT_ID.match(oid):
                return oid, fmt
    return None


def parse(drs_id: str) -> ParsedId | None:
    """The object a DRS id names, or None when it cannot be one of ours."""
    if not isinstance(drs_id, str) or len(drs_id) > 300:
        return None
    if _WES_ID.match(drs_id):
        return ParsedId("wes", wes_id=drs_id)
    head, dot, tail = drs_id.rpartition(".")
    if dot and tail == BUNDLE_EXT:
        found = _split_file(head)
        return ParsedId("bundle", *found) if found else None
    if dot and tail in INDEX_EXT.values():
        found = _split_file(head)
        if found:
            return ParsedId("index", *found, index_ext=tail)
    found = _split_file(drs_id)
    return ParsedId("file", *found) if found else None
