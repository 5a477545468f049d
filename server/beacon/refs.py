"""Reference sequence names and assemblies.

Every spelling of a chromosome (``chr22``, ``22``, ``NC_000022.11``,
``refseq:NC_000022.11``) resolves to one canonical name (``22``) and, for a
RefSeq accession, to the assembly the accession belongs to.
"""

from __future__ import annotations

import re

from server.errors import InvalidInput

CHROMOSOMES = [str(n) for n in range(1, 23)] + ["X", "Y", "MT"]

# RefSeq accessions of the primary chromosomes (NCBI GRCh38.p14 / GRCh37.p13).
REFSEQ = {
    "GRCh38": {
        "1": "NC_000001.11",
        "2": "NC_000002.12",
        "3": "NC_000003.12",
        "4": "NC_000004.12",
        "5": "NC_000005.10",
        "6": "NC_000006.12",
        "7": "NC_000007.14",
        "8": "NC_000008.11",
        "9": "NC_000009.12",
        "10": "NC_000010.11",
        "11": "NC_000011.10",
        "12": "NC_000012.12",
        "13": "NC_000013.11",
        "14": "NC_000014.9",
        "15": "NC_000015.10",
        "16": "NC_000016.10",
        "17": "NC_000017.11",
        "18": "NC_000018.10",
        "19": "NC_000019.10",
        "20": "NC_000020.11",
        "21": "NC_000021.9",
        "22": "NC_000022.11",
        "X": "NC_000023.11",
        "Y": "NC_000024.10",
        "MT": "NC_012920.1",
    },
    "GRCh37": {
        "1": "NC_000001.10",
        "2": "NC_000002.11",
        "3": "NC_000003.11",
        "4": "NC_000004.11",
        "5": "NC_000005.9",
        "6": "NC_000006.11",
        "7": "NC_000007.13",
        "8": "NC_000008.10",
        "9": "NC_000009.11",
        "10": "NC_000010.10",
        "11": "NC_000011.9",
        "12": "NC_000012.11",
        "13": "NC_000013.10",
        "14": "NC_000014.8",
        "15": "NC_000015.9",
        "16": "NC_000016.9",
        "17": "NC_000017.10",
        "18": "NC_000018.9",
        "19": "NC_000019.9",
        "20": "NC_000020.10",
        "21": "NC_000021.8",
        "22": "NC_000022.10",
        "X": "NC_000023.10",
        "Y": "NC_000024.9",
        "MT": "NC_012920.1",
    },
}
_ACCESSION = {}
for _asm, _table in REFSEQ.items():
    for _chrom, _acc in _table.items():
        _ACCESSION.setdefault(_acc.upper(), []).append((_chrom, _asm))

# Chromosome lengths that tell the two assemblies apart.
_LENGTHS = {
    ("1", 248956422): "GRCh38",
    ("1", 249250621): "GRCh37",
    ("22", 50818468): "GRCh38",
    ("22", 51304566): "GRCh37",
    ("X", 156040895): "GRCh38",
    ("X", 155270560): "GRCh37",
    ("21", 46709983): "GRCh38",
    ("21", 48129895): "GRCh37",
}

_ASSEMBLY_ALIASES = {
    "grch38": "GRCh38",
    "hg38": "GRCh38",
    "grch38.p14": "GRCh38",
    "grch38.p13": "GRCh38",
    "grch37": "GRCh37",
    "hg19": "GRCh37",
    "grch37.p13": "GRCh37",
    "hs37d5": "GRCh37",
    "b37": "GRCh37",
    "ncbi37": "GRCh37",
}


# NCBI assembly accessions: GRCh38 is GCF_000001405.26 (RefSeq) / GCA_000001405.15
# (GenBank), its patches .27-.40 / .16-.29 (GRCh38.p1-p14); GRCh37 is
# GCF_000001405.13 / GCA_000001405.1, its patches .14-.25 / .2-.14 (GRCh37.p1-p13).
_ACCESSIONS = {("gcf", v): "GRCh38" for v in range(26, 41)}
_ACCESSIONS.update({("gca", v): "GRCh38" for v in range(15, 30)})
_ACCESSIONS.update({("gcf", v): "GRCh37" for v in range(13, 26)})
_ACCESSIONS.update({("gca", v): "GRCh37" for v in range(1, 15)})
_ACCESSION_RE = re.compile(r"^(?:(?:refseq|insdc|genbank|assembly):)?(gc[af])_000001405\.(\d+)$")


def normalize_assembly(name: str | None) -> str:
    """``hg38`` / ``GRCh38.p14`` / ``GCF_000001405.40`` -> ``GRCh38``; unknown names
    are kept as given."""
    if not name:
        return ""
    key = name.strip().lower()
    if key in _ASSEMBLY_ALIASES:
        return _ASSEMBLY_ALIASES[key]
    m = _ACCESSION_RE.match(key)
    if m and (m.group(1), int(m.group(2))) in _ACCESSIONS:
        return _ACCESSIONS[(m.group(1), int(m.group(2)))]
    for prefix in ("grch38", "grch37"):
        if key.startswith(prefix):
            return _ASSEMBLY_ALIASES[prefix]
    return name.strip()


def canonical_chrom(name: str) -> tuple[str, str | None]:
    """``(canonical name, assembly implied by the spelling or None)``.

    >>> canonical_chrom("refseq:NC_000022.11")
    ('22', 'GRCh38')
    """
    raw = name.strip()
    if not raw:
        raise InvalidInput("referenceName is empty")
    key = raw
    if key.lower().startswith("refseq:"):
        key = key[len("refseq:") :]
    hits = _ACCESSION.get(key.upper())
    if hits:
        chrom = hits[0][0]
        assemblies = {a for _, a in hits}
        return chrom, (assemblies.pop() if len(assemblies) == 1 else None)
    if key.upper().startswith("NC_"):
        raise InvalidInput(f"referenceName {name!r}: unknown RefSeq accession")
    if key.lower().startswith("chr"):
        key = key[3:]
    upper = key.upper()
    if upper in ("M", "MT"):
        return "MT", None
    if upper in ("X", "Y"):
        return upper, None
    if key.isdigit() and 1 <= int(key) <= 22:
        return str(int(key)), None
    # Not a primary chromosome (alt contig, decoy...): keep the name as written.
    return raw, None


def refseq_accession(chrom: str, assembly: str) -> str | None:
    accessions = REFSEQ.get(assembly)
    return None if accessions is None else accessions.get(chrom)


def assembly_from_header(header) -> str:
    """Guess the assembly of a pysam ``VariantHeader`` ('' when unknown)."""
    for contig in header.contigs.values():
        chrom, _ = canonical_chrom(contig.name)
        if contig.length and (chrom, contig.length) in _LENGTHS:
            return _LENGTHS[(chrom, contig.length)]
    for rec in header.records:
        if rec.type == "CONTIG" and rec.get("assembly"):
            return normalize_assembly(rec.get("assembly"))
        if rec.key in ("reference", "assembly") and rec.value:
            value = rec.value.lower()
            for token, asm in (
                ("grch38", "GRCh38"),
                ("hg38", "GRCh38"),
                ("grch37", "GRCh37"),
                ("hg19", "GRCh37"),
                ("hs37d5", "GRCh37"),
                ("g1k_v37", "GRCh37"),
                ("b37", "GRCh37"),
            ):
                if token in value:
                    return asm
    return ""
