"""Where each format's header ends, and the reference names it declares."""

from __future__ import annotations

import re
import struct
from typing import BinaryIO

from server.genomics.bgzf import BGZFReader

_CONTIG = re.compile(rb"^##contig=<(.*)>\s*$")


class HeaderError(ValueError):
    pass


def bam_header(fh: BinaryIO) -> tuple[int, list[str], bytes]:
    """``(virtual offset where the header ends, reference names, SAM text)``."""
    rd = BGZFReader(fh)
    if rd.read(4) != b"BAM\1":
        raise HeaderError("not a BAM file")
    (l_text,) = struct.unpack("<i", rd.read_exact(4))
    text = rd.read_exact(l_text)
    (n_ref,) = struct.unpack("<i", rd.read_exact(4))
    names = []
    for _ in range(n_ref):
        (l_name,) = struct.unpack("<i", rd.read_exact(4))
        names.append(rd.read_exact(l_name).rstrip(b"\0").decode())
        rd.read_exact(4)
    return rd.tell(), names, text


def _contig_ids(lines: list[bytes]) -> list[str]:
    names: list[str] = []
    explicit: dict[int, str] = {}
    for line in lines:
        m = _CONTIG.match(line)
        if not m:
            continue
        fields = dict(
            (k.strip(), v)
            for k, _, v in (
                part.partition(b"=") for part in re.split(rb",(?=[A-Za-z_]+=)", m.group(1))
            )
        )
        name = fields.get(b"ID", b"").decode()
        if not name:
            continue
        if b"IDX" in fields:
            explicit[int(fields[b"IDX"])] = name
        else:
            names.append(name)
    if explicit:
        size = max(explicit) + 1
        out = [""] * size
        for idx, name in explicit.items():
            out[idx] = name
        return out
    return names


def vcf_header(fh: BinaryIO) -> tuple[int, list[str]]:
    """``(virtual offset of the first record line, contig names)`` of a VCF.gz."""
    rd = BGZFReader(fh)
    lines = []
    while True:
        voffset = rd.tell()
        if rd.peek(1) != b"#":
            break
        line = rd.readline()
        if not line:
            break
        lines.append(line.rstrip(b"\r\n"))
        if not line.endswith(b"\n"):
            voffset = rd.tell()
            break
    if not lines or not lines[0].startswith(b"##fileformat=VCF"):
        raise HeaderError("not a VCF file")
    return voffset, _contig_ids(lines)


def bcf_header(fh: BinaryIO) -> tuple[int, list[str]]:
    """``(virtual offset where the header ends, contig dictionary)`` of a BCF."""
    rd = BGZFReader(fh)
    magic = rd.read(5)
    if magic[:3] != b"BCF" or magic[3] != 2:
        raise HeaderError("not a BCF 2 file")
    (l_text,) = struct.unpack("<I", rd.read_exact(4))
    text = rd.read_exact(l_text)
    return rd.tell(), _contig_ids(text.rstrip(b"\0").split(b"\n"))
