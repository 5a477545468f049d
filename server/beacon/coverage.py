"""Where a genome reported as a gVCF is not called, and how much that takes off
the allele number (AN) of the records there.

A single-sample file is a gVCF when one of its records names the "any other
allele" of reference blocks (``<NON_REF>`` or ``<*>``). Such a file says where
its genome was called: every reference block (a record whose ALTs are all
non-alleles: ``<NON_REF>``, ``<*>``, ``*``, ``.``) covers ``[POS, INFO/END]``
with the alleles of its genotype, and every variant record covers its REF.
While the file is read (``server.beacon.vcf``), :class:`Tracker` collects those
spans; when it is merged (``server.beacon.store.merge``), the genome's *gaps*
are stored in ``beacon_coverage_gaps``, in the same transaction:

* a stretch of a contig (length from the ``##contig`` header) that no record
  or block covers: 2 alleles short;
* a block whose genotype is missing (``./.``): 2 short; haploid or
  half-missing (``0``, ``./0``): 1 short.

Where a block and a called record overlap, the better call wins. A variant
record's own genotype counts in its own records' ``an_gap`` (a missing call
there is not a gap here, so that nothing is taken off twice). A contig the
header declares without a length is covered up to the genome's last record or
block on it; a contig the file neither declares nor has records on says
nothing (the covered-dataset rule applies there, as for plain VCFs).

Stretches are cut at multiples of :data:`TILE` (16,384 bp), so the one
holding a position starts at most ``TILE - 1`` bases before it: a lookup is a
bounded range scan of the ``(dataset_id, chrom, start, ...)`` index, which
holds every column read (index-only on PostgreSQL), on SQLite and PostgreSQL
alike. A smaller tile scans fewer stretches of other positions but cuts long
ones into more rows (``bench/coverage.py``).

AN of a record is then ``2 * genomes - an_gap - short`` (``store.allele_number``),
``short`` being the alleles the gVCF genomes with a gap at the record's start
lack. :func:`prefetch` looks up a whole page of records in one statement and
keeps the result on the request context; only records returned as documents
(with their AN) pay for it, never counts or boolean answers, and a dataset
without gVCF genomes costs one cached probe per load generation.
"""

from __future__ import annotations

import bisect
import hashlib
import threading
from array import array

import cachetools
import numpy as np
import sqlalchemy as sa
from pyroaring import BitMap

from server.beacon.refs import canonical_chrom
from server.beacon.tables import BeaconCoverageGap
from server.genomics.coords import pos_to_start, ref_end, vcf_interval

G = BeaconCoverageGap
TILE = 1 << 14
GVCF_ALTS = frozenset({"<NON_REF>", "<*>"})
NOTHING = (BitMap(), BitMap())  # no genome short at a site (never mutated)


def alleles_short(fmt: str, sample: bytes | None) -> int:
    """Alleles short of a diploid call in one sample column (2: missing or no GT)."""
    if sample is None or not fmt.startswith("GT"):
        return 2
    gt = sample.split(b":", 1)[0]
    called = gt.count(b"/") + gt.count(b"|") + 1 - gt.count(b".")
    return min(max(2 - called, 0), 2)


class Tracker:
    """The spans the records of one single-sample file cover, per contig, and
    whether the file is a gVCF. Appends to typed arrays per record; the gaps
    are computed once, with numpy, at the end."""

    def __init__(self, lengths: dict[str, int | None]):
        self.lengths = lengths  # canonical contig -> length (None: not declared)
        self.spans: dict[str, tuple[array, array, array]] = {}
        self.gvcf = False

    @classmethod
    def of_header(cls, header) -> Tracker:
        return cls(
            {canonical_chrom(name)[0]: contig.length for name, contig in header.contigs.items()}
        )

    def record(
        self, chrom: str, pos: int, ref: str, alts, end: str | None, fmt: str, sample
    ) -> None:
        """One record: canonical ``chrom``, VCF ``pos``, REF, its ALT strings, its
        INFO/END (text or None) and its sample column (FORMAT and bytes)."""
        block = True
        for a in alts:
            if a in GVCF_ALTS:
                self.gvcf = True
            elif a not in ("*", "."):
                block = False
        spans = self.spans.get(chrom)
        if spans is None:
            spans = self.spans[chrom] = (array("q"), array("q"), array("b"))
        start = pos_to_start(pos)
        spans[0].append(start)
        if block:
            info_end = int(end) if end and end.isdigit() else None
            spans[1].append(vcf_interval(pos, ref, info_end).end)
            spans[2].append(alleles_short(fmt, sample))
        else:
            spans[1].append(ref_end(start, ref))
            spans[2].append(0)

    def line(self, raw: bytes) -> None:
        """One raw VCF line (a record skipped by a resumed load)."""
        fields = raw.rstrip(b"\r\n").split(b"\t", 10)
        if len(fields) < 8 or not fields[1].isdigit():
            return
        end = None
        for kv in fields[7].split(b";"):
            if kv.startswith(b"END="):
                end = kv[4:].decode()
        self.record(
            canonical_chrom(fields[0].decode())[0],
            int(fields[1]),
            fields[3].decode(),
            fields[4].decode().split(","),
            end,
            fields[8].decode() if len(fields) > 9 else "",
            fields[9] if len(fields) > 9 else None,
        )

    def gaps(self) -> list[tuple[str, int, int, int]]:
        """``(chrom, start, end, alleles_short)`` of every stretch not called with
        two alleles, cut at multiples of :data:`TILE`, in order."""
        out: list[tuple[str, int, int, int]] = []
        for chrom in sorted(set(self.lengths) | set(self.spans)):
            length = self.lengths.get(chrom)
            spans = self.spans.get(chrom)
            if spans is None:
                if length:
                    out += _tiles(chrom, 0, length, 2)
                continue
            starts = np.frombuffer(spans[0], dtype=np.int64)
            ends = np.frombuffer(spans[1], dtype=np.int64)
            shorts = np.frombuffer(spans[2], dtype=np.int8)
            limit = length or int(ends.max())
            points = np.sort(np.concatenate((starts, ends, [0, limit])))
            points = points[np.r_[True, points[1:] != points[:-1]]]
            points = points[(points >= 0) & (points <= limit)]
            # per elementary segment [points[k], points[k+1]): the best call over it
            best = np.full(len(points) - 1, 2, dtype=np.int8)
            if not len(best):
                continue
            for level in (1, 0):
                keep = shorts <= level
                diff = np.zeros(len(points) + 1, dtype=np.int64)
                np.add.at(diff, np.searchsorted(points, starts[keep]), 1)
                np.add.at(diff, np.searchsorted(points, ends[keep]), -1)
                covered = np.cumsum(diff)[: len(points) - 1] > 0
                best[covered] = level
            # runs of equal segments, then those short of any allele
            firsts = np.r_[0, np.flatnonzero(np.diff(best) != 0) + 1]
            lasts = np.r_[firsts[1:], len(best)]
            keep = best[firsts] > 0
            gap_starts, gap_ends = points[firsts[keep]], points[lasts[keep]]
            for a, b, short in zip(
                gap_starts.tolist(), gap_ends.tolist(), best[firsts[keep]].tolist(), strict=True
            ):
                if a // TILE == (b - 1) // TILE:
                    out.append((chrom, a, b, short))
                else:
                    out += _tiles(chrom, a, b, short)
        return out


def _tiles(chrom: str, start: int, end: int, short: int) -> list[tuple[str, int, int, int]]:
    cuts = [start, *range((start // TILE + 1) * TILE, end, TILE), end]
    return [(chrom, a, b, short) for a, b in zip(cuts, cuts[1:], strict=False) if b > a]


def digest(gaps) -> str:
    """A short digest of a genome's gaps, appended to the digest of its calls
    (so that the same calls with other coverage are a changed genome); '' for
    a plain VCF, whose digest stays what it was."""
    if gaps is None:
        return ""
    text = "\n".join("\t".join(map(str, g)) for g in gaps).encode()
    return "+" + hashlib.blake2b(text, digest_size=6).hexdigest()


# ------------------------------------------------------------------ storage
def store(session, dataset_id: str, idx: int, gaps) -> None:
    """Insert one genome's gaps (in the caller's transaction)."""
    if not gaps:
        return
    rows = [(dataset_id, idx, c, a, b, s) for c, a, b, s in gaps]
    conn = session.connection()
    dbapi = conn.connection.driver_connection
    cols = '"dataset_id", "idx", "chrom", "start", "end", "alleles_short"'
    if conn.dialect.name == "postgresql":
        with dbapi.cursor() as cur, cur.copy(f"COPY {G.__tablename__} ({cols}) FROM STDIN") as cp:
            for row in rows:
                cp.write_row(row)
        return
    cur = dbapi.cursor()
    try:
        cur.executemany(f"INSERT INTO {G.__tablename__} ({cols}) VALUES (?, ?, ?, ?, ?, ?)", rows)
    finally:
        cur.close()


def delete(session, dataset_id: str, idx: int) -> None:
    """Delete one genome's gaps (its withdrawal or replacement)."""
    session.execute(sa.delete(G).where(G.dataset_id == dataset_id, G.idx == idx))


# ------------------------------------------------------------------ lookup
def _windows(starts: list[int]) -> list[tuple[int, int]]:
    """``[lo, hi]`` ranges of gap starts that hold every stretch containing one
    of the (sorted) positions; neighbouring positions share a range."""
    out: list[list[int]] = []
    for p in starts:
        lo = p - p % TILE
        if out and lo <= out[-1][1] + TILE:
            out[-1][1] = p
        else:
            out.append([lo, p])
    return [(lo, hi) for lo, hi in out]


def lookup(session, dataset_id: str, sites) -> dict[tuple[str, int], tuple[BitMap, BitMap]]:
    """``(chrom, start) -> (genomes 1 allele short, genomes 2 short)`` for the
    given sites, in one statement."""
    by_chrom: dict[str, list[int]] = {}
    for chrom, start in sites:
        by_chrom.setdefault(chrom, []).append(start)
    # one range scan of the covering index per window, in one statement
    scans = [
        sa.select(G.chrom, G.start, G.end, G.idx, G.alleles_short).where(
            G.dataset_id == dataset_id, G.chrom == chrom, G.start >= lo, G.start <= hi
        )
        for chrom, starts in by_chrom.items()
        for lo, hi in _windows(sorted(starts))
    ]
    found: dict[str, list[tuple]] = {}
    if scans:
        q = scans[0] if len(scans) == 1 else sa.union_all(*scans)
        for chrom, a, b, idx, short in session.execute(q):
            found.setdefault(chrom, []).append((a, b, idx, short))
    out = {}
    for chrom, starts in by_chrom.items():
        rows = sorted(found.get(chrom, ()))
        firsts = [r[0] for r in rows]
        for p in starts:
            one, two = BitMap(), BitMap()
            for a, b, idx, short in rows[
                bisect.bisect_left(firsts, p - p % TILE) : bisect.bisect_right(firsts, p)
            ]:
                if a <= p < b:
                    (one if short == 1 else two).add(idx)
            out[(chrom, p)] = (one, two) if one or two else NOTHING
    return out


@cachetools.cached(
    cachetools.LRUCache(256),
    key=lambda ctx, dataset_id: ("coverage", ctx.db_key, ctx.generation, dataset_id),
    lock=threading.Lock(),
)
def has_gaps(ctx, dataset_id: str) -> bool:
    """Whether any genome of the dataset has gaps (cached until the next load,
    merge or withdrawal)."""
    q = sa.select(G.idx).where(G.dataset_id == dataset_id).limit(1)
    return ctx.session.execute(q).first() is not None


def prefetch(ctx, dataset_id: str, rows) -> None:
    """Look up the gVCF genomes short at every record of a page, in one
    statement, and keep them on the request context for :func:`short_at`."""
    todo = {(r.chrom, r.start) for r in rows if (dataset_id, r.chrom, r.start) not in ctx.coverage}
    if not todo:
        return
    found = lookup(ctx.session, dataset_id, todo) if has_gaps(ctx, dataset_id) else {}
    for chrom, start in todo:
        ctx.coverage[(dataset_id, chrom, start)] = found.get((chrom, start), NOTHING)


def short_at(ctx, dataset_id: str, row) -> tuple[BitMap, BitMap]:
    """``(genomes 1 allele short, genomes 2 short)`` at a record's start
    (looked up on its own unless its page was prefetched). Rows loaded before
    revision 0005 (``an_gap`` NULL) have an exact AN of their own file: none."""
    if getattr(row, "an_gap", None) is None:
        return NOTHING
    key = (dataset_id, row.chrom, row.start)
    if key not in ctx.coverage:
        prefetch(ctx, dataset_id, [row])
    return ctx.coverage[key]


def alleles_short_of(one: BitMap, two: BitMap, within: BitMap | None = None) -> int:
    """Alleles the short genomes lack (among ``within``, when given)."""
    if within is None:
        return len(one) + 2 * len(two)
    return one.intersection_cardinality(within) + 2 * two.intersection_cardinality(within)
