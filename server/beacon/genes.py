"""``genomeport beacon load-genes``: gene coordinates for ``geneId`` queries.

Accepts a GTF/GFF3 (1-based closed, ``gene`` features, ``gene_name``) or a
BED/TSV with ``contig start end name [gene_id ...]`` (0-based half-open, an
optional ``#`` header line). The genes of the assembly are replaced in one
transaction.
"""

from __future__ import annotations

import gzip
import re

import sqlalchemy as sa
from tqdm import tqdm

from server.beacon import journal
from server.beacon.journal import LoadError, LoadResult
from server.beacon.refs import canonical_chrom, normalize_assembly
from server.beacon.tables import BeaconGene
from server.genomics.coords import pos_to_start

_ATTR = re.compile(r'(\w+)[ =]"?([^";]+)"?')


def _rows(p):
    opener = gzip.open if p.suffix in (".gz", ".bgz") else open
    gtf = any(s in p.name for s in (".gtf", ".gff"))
    with opener(p, "rt", encoding="utf-8") as fh:
        for n, line in enumerate(fh, start=1):
            if not line.strip() or line.startswith("#") or line.startswith("track"):
                continue
            cols = line.rstrip("\r\n").split("\t")
            where = f"line {n}"
            try:
                if gtf:
                    if len(cols) < 9:
                        raise LoadError(p, where, "a GTF/GFF line has 9 columns")
                    if cols[2] != "gene":
                        continue
                    attrs = dict(_ATTR.findall(cols[8]))
                    name = attrs.get("gene_name") or attrs.get("Name") or attrs.get("gene_id")
                    yield (
                        where,
                        cols[0],
                        pos_to_start(int(cols[3])),
                        int(cols[4]),
                        name,
                        attrs.get("gene_id", ""),
                    )
                else:
                    if len(cols) < 4:
                        raise LoadError(p, where, "expected contig, start, end, name columns")
                    yield (
                        where,
                        cols[0],
                        int(cols[1]),
                        int(cols[2]),
                        cols[3],
                        cols[4] if len(cols) > 4 else "",
                    )
            except ValueError:
                raise LoadError(p, where, "start/end are not integers") from None


def load_genes(db, path, *, assembly: str = "GRCh38", progress: bool = True) -> LoadResult:
    p = journal.check_file(path)
    sha = journal.file_sha256(p)
    asm = normalize_assembly(assembly)
    with db.session() as s:
        row, done = journal.begin(s, "genes", asm, p, sha)
        if done:
            return LoadResult("genes", str(p), asm, "unchanged", row.id, row.records)
    genes = []
    for where, contig, start, end, name, gene_id in tqdm(
        _rows(p), desc=f"load-genes {p.name}", unit=" gene", disable=not progress
    ):
        if not name:
            raise LoadError(p, where, "gene has no name")
        if start < 0 or end < start:
            raise LoadError(p, where, f"invalid interval [{start}, {end})")
        genes.append(
            {
                "assembly": asm,
                "chrom": canonical_chrom(contig)[0],
                "start": start,
                "end": end,
                "symbol": name[:128],
                "gene_id": gene_id[:128],
            }
        )
    with db.session() as s:
        row, _ = journal.begin(s, "genes", asm, p, sha)
        s.execute(sa.delete(BeaconGene).where(BeaconGene.assembly == asm))
        for i in range(0, len(genes), 20000):
            s.execute(BeaconGene.__table__.insert(), genes[i : i + 20000])
        for o in journal.earlier_loads(s, row):
            o.status = "superseded"
        row.status = "done"
        row.records = row.checkpoint = len(genes)
        row.finished = journal.utcnow()
    return LoadResult("genes", str(p), asm, "loaded", row.id, len(genes), len(genes))
