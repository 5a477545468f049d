"""The variant store: one record per allele per dataset, whatever the files
its genomes came in; genomes added and withdrawn as deltas, folded in batches.

A file (a multi-sample ``load-vcf`` or single-sample ``add-genome``) is first
staged under its own journal row by ``server.beacon.vcf`` (batches, resumable,
invisible to queries). :func:`publish` then makes the staged rows a visible
**delta** in one transaction (the journal row turns ``done`` and ``pending``,
the genomes join ``beacon_samples``): no record of the store is read or
rewritten, so adding a genome costs its own rows only. Queries aggregate a
dataset's base records (rows of its store row, kind ``vcf``) with its pending
deltas per allele (``server.beacon.engine``): counts are summed, carrier
bitmaps combined, and the allele number follows from the summed gaps, exactly
as if merged. :func:`fold` later merges all pending deltas of a dataset into the
base records in one pass, a chunk of alleles per transaction, each record
rewritten once however many genomes are folded.

Counting, per record:

* ``ac``, ``hom``, ``het``, the carriers and the homozygous carriers add up
  over genomes (each genome is in at most one carrier set per record);
* **allele number**: a genome is counted as called, with two alleles, at every
  record of the dataset unless it reported otherwise at that site: a VCF
  without reference calls says nothing about the sites it omits, and the
  dataset declares its genomes covered there. ``an_gap`` counts the alleles
  short of two per genome at the site (a missing ``./.`` is 2, a haploid or
  half-missing call 1), so ``AN = 2 * genomes - an_gap``
  (:func:`allele_number`). This is what a joint VCF of the same genomes with
  explicit reference calls gives. ``gaps`` holds which genomes are one or two
  alleles short, so that a withdrawal can give them back. That is the rule
  for genomes reported as plain VCFs (or BCFs, or multi-sample files).
* a genome reported as a **gVCF** (a single-sample file with ``<NON_REF>`` or
  ``<*>`` reference blocks) says where it was called: the stretches no record
  or block of it covers, and its blocks with a missing or haploid genotype,
  are stored as its coverage gaps (``server.beacon.coverage``, with the
  genome, in the same transaction; withdrawn and replaced with it), and AN
  also leaves out the alleles those gaps lack at the record's start:
  ``AN = 2 * genomes - an_gap - short``, exact for gVCF genomes.

**Withdrawal** (:func:`withdraw`). A genome still in a delta of its own is
removed by deleting that delta's rows. A folded genome is removed by a
*negative delta*: one row per allele it has a call at, built from its stored
calls (``beacon_genomes.calls``, not from the records' bitmaps), whose counts
are the genome's own negated and whose bitmaps hold its one index. Bitmaps of
the rows of an allele are combined by symmetric difference: the rows of
distinct genomes are disjoint, so that is their union, and a negative row
cancels the genome's bits in the base record (and nothing else, even if a
later genome reuses its index). Queries stop counting the genome at once; the
fold erases its bits from the records. The genome's calls, sample entry and
metadata are deleted at once. A genome in a multi-sample delta, or any genome
while a fold is unfinished, is folded first (:class:`NeedsFold`).

Each genome keeps a digest of its calls: the same genome reported again
changes nothing, a changed one is refused unless replaced.

Hand-written because no library merges Roaring-bitmap allele records.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import struct
import time
import zlib
from collections import namedtuple
from dataclasses import dataclass, field
from itertools import groupby

import numpy as np
import sqlalchemy as sa
from pyroaring import BitMap
from tqdm import tqdm

from server.beacon import coverage
from server.beacon.tables import (
    BeaconAnnotation,
    BeaconGenome,
    BeaconLoad,
    BeaconRecord,
    BeaconRecordTerm,
    BeaconRecordValue,
    BeaconSample,
    BeaconVariant,
    utcnow,
)
from server.errors import InvalidInput, NotFound
from server.genomics.coords import exclusive_end

logger = logging.getLogger(__name__)

V = BeaconVariant
STORE_PATH = "(merged store)"
CHUNK = 20000
# a row's pk: (journal row id << 40) | (record ordinal << 8) | ALT allele number
PK_RECORD_SHIFT = 8
PK_LOAD_SHIFT = 40
# journal kinds whose done rows may be pending deltas of a dataset
DELTA_KINDS = ("vcf-file", "genome", "withdrawal")


# ------------------------------------------------------------------ encodings
def pack_gaps(one: BitMap, two: BitMap) -> bytes | None:
    """The genomes one and two alleles short at a site, as one blob (None: none)."""
    if not one and not two:
        return None
    first = BitMap(one).serialize()
    return struct.pack("<I", len(first)) + first + BitMap(two).serialize()


def unpack_gaps(blob: bytes | None) -> tuple[BitMap, BitMap]:
    if not blob:
        return BitMap(), BitMap()
    (n,) = struct.unpack_from("<I", blob)
    return BitMap.deserialize(blob[4 : 4 + n]), BitMap.deserialize(blob[4 + n :])


def sorted_unique(pks) -> np.ndarray:
    arr = np.sort(np.asarray(pks, dtype=np.int64))
    return arr[np.r_[True, arr[1:] != arr[:-1]]] if len(arr) else arr


def pack_pks(pks) -> bytes:
    """Record pks, sorted, delta-encoded and compressed."""
    arr = sorted_unique(pks)
    return zlib.compress(np.diff(arr, prepend=np.int64(0)).tobytes(), 1)


def unpack_pks(blob: bytes | None) -> list[int]:
    if not blob:
        return []
    return np.cumsum(np.frombuffer(zlib.decompress(blob), dtype=np.int64)).tolist()


def allele_number(row, n_genomes: int, *, short: int = 0) -> int:
    """AN of a record: exact for rows loaded before revision 0005 (``an_gap``
    NULL), else two per genome of the dataset minus the alleles not called at
    the site: ``an_gap`` (reported by the genomes' own records) and ``short``
    (the gVCF genomes with a coverage gap there, ``server.beacon.coverage``)."""
    gap = getattr(row, "an_gap", None)
    if gap is None:
        return row.an
    return 2 * n_genomes - gap - short


def genome_count(session, dataset_id: str) -> int:
    return session.execute(
        sa.select(sa.func.count())
        .select_from(BeaconSample)
        .where(BeaconSample.dataset_id == dataset_id)
    ).scalar_one()


# ------------------------------------------------------------------ the store row
def store_row(session, dataset_id: str, assembly: str = "") -> BeaconLoad:
    """The dataset's store row in the journal (kind ``vcf``), created on first
    use and locked (PostgreSQL) so that publications, folds and withdrawals of
    one dataset run one after the other. Two first loads racing to create it
    both get the one row: ``INSERT .. ON CONFLICT DO NOTHING``, then the lock."""
    sha = hashlib.sha256(f"store:{dataset_id}".encode()).hexdigest()
    q = sa.select(BeaconLoad).where(
        BeaconLoad.kind == "vcf",
        BeaconLoad.dataset_id == dataset_id,
        BeaconLoad.sha256 == sha,
    )
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        q = q.with_for_update()
    row = session.execute(q).scalar_one_or_none()
    if row is not None:
        return row
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    now = utcnow()
    session.execute(
        insert(BeaconLoad)
        .values(
            kind="vcf",
            dataset_id=dataset_id,
            path=STORE_PATH,
            sha256=sha,
            status="done",
            checkpoint=0,
            records=0,
            assembly=assembly,
            max_span=0,
            pending=False,
            started=now,
            finished=now,
        )
        .on_conflict_do_nothing()
    )
    return session.execute(q.execution_options(populate_existing=True)).scalar_one()


# ------------------------------------------------------------------ bulk writes
_UPDATE_COLUMNS = ("ac", "an", "hom", "het", "af", "an_gap", "carriers", "hom_carriers", "gaps")


def _update_rows(session, rows: list[tuple], load_id: int) -> None:
    """Rows as ``(pk, *_UPDATE_COLUMNS)``, all given ``load_id`` (the store row:
    a folded delta row becomes a base record in the same write): UPDATE FROM a
    COPY-filled temporary table on PostgreSQL, executemany elsewhere."""
    if not rows:
        return
    conn = session.connection()
    dbapi = conn.connection.driver_connection
    if conn.dialect.name == "postgresql":
        with dbapi.cursor() as cur:
            cur.execute(
                "CREATE TEMP TABLE IF NOT EXISTS gp_merge (pk bigint, ac integer, an integer, "
                "hom integer, het integer, af double precision, an_gap bigint, carriers bytea, "
                "hom_carriers bytea, gaps bytea) ON COMMIT DELETE ROWS"
            )
            cur.execute("TRUNCATE gp_merge")
            with cur.copy("COPY gp_merge FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            # row counts for the planner: a probe per row into the pk indexes of
            # the partitions, not a scan of the store
            cur.execute("ANALYZE gp_merge")
            sets = ", ".join(f"{c} = m.{c}" for c in _UPDATE_COLUMNS)
            cur.execute(
                f"UPDATE beacon_variants v SET load_id = %s, {sets} FROM gp_merge m "
                "WHERE v.pk = m.pk",
                (load_id,),
            )
        return
    sets = ", ".join(f'"{c}" = ?' for c in _UPDATE_COLUMNS)
    cur = dbapi.cursor()
    try:
        cur.executemany(
            f"UPDATE beacon_variants SET load_id = ?, {sets} WHERE pk = ?",
            [(load_id, *r[1:], r[0]) for r in rows],
        )
    finally:
        cur.close()


def insert_rows(session, table, columns: tuple[str, ...], rows: list[tuple]) -> None:
    """Insert many rows given as tuples in ``columns`` order, through the DBAPI
    connection of ``session``'s transaction: COPY on PostgreSQL, executemany
    elsewhere. Skipping SQLAlchemy's per-row parameter processing matters for
    the Beacon tables, whose columns need no type conversion."""
    if not rows:
        return
    conn = session.connection()
    names = ", ".join(f'"{c}"' for c in columns)
    dbapi = conn.connection.driver_connection
    if conn.dialect.name == "postgresql":
        with (
            dbapi.cursor() as cursor,
            cursor.copy(f"COPY {table.name} ({names}) FROM STDIN") as copy,
        ):
            write_row = copy.write_row
            for row in rows:
                write_row(row)
        return
    marks = ", ".join("?" * len(columns))
    cursor = dbapi.cursor()
    try:
        cursor.executemany(f"INSERT INTO {table.name} ({names}) VALUES ({marks})", rows)
    finally:
        cursor.close()


def _delete_rows(session, pks: list[int]) -> None:
    """Delete records (and their annotations) by pk."""
    if not pks:
        return
    conn = session.connection()
    if conn.dialect.name == "postgresql":
        for i in range(0, len(pks), 100000):
            chunk = list(pks[i : i + 100000])
            conn.exec_driver_sql(
                "DELETE FROM beacon_annotations WHERE variant_pk = ANY(%s)", (chunk,)
            )
            conn.exec_driver_sql("DELETE FROM beacon_variants WHERE pk = ANY(%s)", (chunk,))
        return
    for i in range(0, len(pks), 500):
        chunk = pks[i : i + 500]
        session.execute(sa.delete(BeaconAnnotation).where(BeaconAnnotation.variant_pk.in_(chunk)))
        session.execute(sa.delete(V).where(V.pk.in_(chunk)))


# ------------------------------------------------------------------ one record
@dataclass
class Rec:
    """The mutable counts of one record (staged or stored)."""

    pk: int
    ac: int
    hom: int
    het: int
    an_gap: int
    carriers: BitMap
    homs: BitMap
    one: BitMap
    two: BitMap

    @classmethod
    def of(cls, pk, ac, hom, het, an_gap, carriers, hom_carriers, gaps) -> Rec:
        one, two = unpack_gaps(gaps)
        return cls(
            pk,
            ac,
            hom,
            het,
            an_gap or 0,
            BitMap.deserialize(carriers),
            BitMap.deserialize(hom_carriers) if hom_carriers else BitMap(),
            one,
            two,
        )

    def call(self, sample: int) -> tuple[int, int, bool]:
        """``(copies, gap, homozygous)`` of one genome here."""
        gap = 1 if sample in self.one else 2 if sample in self.two else 0
        if sample not in self.carriers:
            return 0, gap, False
        hom = sample in self.homs
        return (2 if hom and not gap else 1), gap, hom

    def samples(self) -> BitMap:
        return self.carriers | self.one | self.two

    def remove(self, sample: int) -> None:
        copies, gap, hom = self.call(sample)
        if sample in self.carriers:
            self.ac -= copies
            if hom:
                self.hom -= 1
            else:
                self.het -= 1
        self.an_gap -= gap
        for bm in (self.carriers, self.homs, self.one, self.two):
            bm.discard(sample)

    def add(self, other: Rec) -> None:
        """Combine with another row of the same allele: counts summed, bitmaps by
        symmetric difference (the union of distinct genomes' rows; a negative
        delta's row cancels its genome's bits)."""
        self.ac += other.ac
        self.hom += other.hom
        self.het += other.het
        self.an_gap += other.an_gap
        self.carriers ^= other.carriers
        self.homs ^= other.homs
        self.one ^= other.one
        self.two ^= other.two

    @property
    def empty(self) -> bool:
        return not self.carriers and self.ac <= 0

    def row(self, n_genomes: int) -> tuple:
        an = 2 * n_genomes - self.an_gap
        return (
            self.pk,
            self.ac,
            an,
            self.hom,
            self.het,
            (self.ac / an) if an > 0 else 0.0,
            self.an_gap,
            self.carriers.serialize(),
            self.homs.serialize(),
            pack_gaps(self.one, self.two),
        )


_REC_COLUMNS = (V.pk, V.ac, V.hom, V.het, V.an_gap, V.carriers, V.hom_carriers, V.gaps)
_KEY_COLUMNS = (V.chrom, V.start, V.end, V.ref, V.alt)


def _classes(rec: Rec):
    """The genomes of a record by call: ``(bitmap, copies, gap, homozygous)``."""
    c, h = rec.carriers, rec.homs
    g = rec.one | rec.two
    return (
        ((c & h) - g, 2, 0, True),
        (c & h & rec.one, 1, 1, True),
        (c & h & rec.two, 1, 2, True),
        (c - h - g, 1, 0, False),
        ((c - h) & rec.one, 1, 1, False),
        ((c - h) & rec.two, 1, 2, False),
        (rec.one - c, 0, 1, False),
        (rec.two - c, 0, 2, False),
    )


def _call_line(key: tuple, copies: int, gap: int, hom: bool) -> str:
    return "\t".join(map(str, (*key, copies, gap, int(hom))))


class _Calls:
    """The calls of a file's genomes, one text line per allele a genome carries
    or lacks a call at (``_call_line``), collected from the records' bitmaps
    (a multi-sample file); with ``legacy``, also the digests genomes were given
    before revision 0007 (two 64-bit sums of a hash per call, and the count)."""

    def __init__(self, samples, legacy: bool = False):
        self.wanted = BitMap(samples)
        self.lines: dict[int, list[str]] = {i: [] for i in samples}
        self.legacy = {i: [0, 0, 0] for i in samples} if legacy else None

    def add(self, key: tuple, rec: Rec) -> None:
        for bm, copies, gap, hom in _classes(rec):
            who = bm & self.wanted
            if not who:
                continue
            line = _call_line(key, copies, gap, hom)
            for i in who:
                self.lines[i].append(line)
            if self.legacy is not None:
                text = "\t".join(map(str, (*key, copies, gap, hom))).encode()
                digest = hashlib.blake2b(text, digest_size=16).digest()
                a, b = int.from_bytes(digest[:8], "big"), int.from_bytes(digest[8:], "big")
                for i in who:
                    sums = self.legacy[i]
                    sums[0], sums[1] = (sums[0] + a) % 2**64, (sums[1] + b) % 2**64
                    sums[2] += 1

    def legacy_digest(self, sample: int) -> str:
        a, b, n = self.legacy[sample]
        return f"{a:016x}{b:016x}{n:x}"


def pack_calls(lines: list[str]) -> tuple[bytes, str]:
    """A genome's calls as stored (sorted lines, compressed) and their digest,
    which does not depend on the order or grouping of the files they came in."""
    text = "\n".join(sorted(lines)).encode()
    return zlib.compress(text, 1), "2:" + hashlib.blake2b(text, digest_size=16).hexdigest()


Call = namedtuple("Call", "chrom start end ref alt copies gap hom")


def unpack_calls(blob: bytes | None) -> list[Call]:
    if not blob:
        return []
    out = []
    for line in zlib.decompress(blob).decode().split("\n"):
        c, st, e, r, a, copies, gap, hom = line.split("\t")
        out.append(Call(c, int(st), int(e), r, a, int(copies), int(gap), hom == "1"))
    return out


def _file_calls(session, load_id: int, samples, legacy: bool = False) -> _Calls:
    """The calls of the file's genomes (indexes ``samples``). A single-sample
    file's are read from its rows' counts alone (no bitmap is decoded)."""
    calls = _Calls(samples, legacy=legacy)
    if len(samples) == 1 and not legacy:
        (lines,) = calls.lines.values()
        rows = session.execute(
            sa.select(*_KEY_COLUMNS, V.ac, V.hom, V.het, V.an_gap).where(V.load_id == load_id)
        )
        for chrom, start, end, ref, alt, ac, hom, het, gap in rows:
            carrier = hom + het > 0
            if carrier or (gap or 0) > 0:
                lines.append(
                    f"{chrom}\t{start}\t{end}\t{ref}\t{alt}\t{ac if carrier else 0}"
                    f"\t{gap or 0}\t{1 if hom else 0}"
                )
        return calls
    for chunk in _staged_chunks(session, load_id):
        for key, rec in chunk:
            calls.add(key, rec)
    return calls


# ------------------------------------------------------------------ publication
@dataclass
class MergeResult:
    added: list[str] = field(default_factory=list)
    replaced: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    records: int = 0  # rows made visible
    load_id: int = 0  # the file's journal row


class NeedsFold(Exception):
    """A genome to withdraw or replace is in a multi-sample delta, or a fold is
    unfinished: fold the dataset's deltas first, then try again."""


def _staged_chunks(session, load_id: int):
    """The staged rows of a load, in pk order, a chunk at a time:
    ``[(key, Rec)]``."""
    last = -1
    while True:
        rows = session.execute(
            sa.select(*_KEY_COLUMNS, *_REC_COLUMNS)
            .where(V.load_id == load_id, V.pk > last)
            .order_by(V.pk)
            .limit(CHUNK)
        ).all()
        if not rows:
            return
        yield [(tuple(r[:5]), Rec.of(*r[5:])) for r in rows]
        last = rows[-1][5]


def _delete_load_rows(session, load_id: int) -> int:
    session.execute(sa.delete(BeaconAnnotation).where(BeaconAnnotation.load_id == load_id))
    return session.execute(
        sa.delete(V).where(V.load_id == load_id).execution_options(synchronize_session=False)
    ).rowcount


def _drop_samples(session, load_id: int, drop: BitMap) -> None:
    """Take genomes already present with the same calls out of a file's rows."""
    for chunk in _staged_chunks(session, load_id):
        updates = []
        for _key, rec in chunk:
            if rec.samples().intersection_cardinality(drop):
                for i in rec.samples() & drop:
                    rec.remove(i)
                updates.append(rec.row(0))
        _update_rows(session, updates, load_id)


def publish(
    db,
    load_id: int,
    dataset_id: str,
    assembly: str,
    samples: list[tuple[str, int]],
    *,
    replace: bool = False,
    replaces_loads: set[int] = frozenset(),
    max_span: int = 0,
    gaps_of: dict[int, list] | None = None,
) -> MergeResult:
    """Make the staged rows of ``load_id`` a visible delta of the dataset, in one
    transaction, without reading or writing any record of the store.
    ``samples``: the file's ``(name, index)``. A sample already present with
    the same calls is left as it is; with other calls it is refused unless
    ``replace`` (or it came from ``replaces_loads``: an earlier version of the
    same file). Raises :class:`NeedsFold` when a genome to replace must be
    folded first. An unchanged file's rows and journal row are dropped.
    ``gaps_of``: index -> coverage gaps of the genomes that came as gVCFs
    (``server.beacon.coverage``), stored with them and part of their digest."""
    from server.beacon import journal

    gaps_of = gaps_of or {}
    result = MergeResult()
    by_idx = {i: n for n, i in samples}
    with db.session() as s:
        store = store_row(s, dataset_id, assembly)
        row = s.get(BeaconLoad, load_id)
        present = {
            g.name: g
            for g in s.execute(
                sa.select(BeaconGenome).where(
                    BeaconGenome.dataset_id == dataset_id, BeaconGenome.status == "present"
                )
            ).scalars()
        }
        # nothing to merge into: the file's rows become the store's records as
        # they are (a multi-sample file's calls are read when first needed)
        straight = not present and _store_empty(s, store)
        # genomes to compare with or replace whose calls are not kept yet
        _keep_calls(
            s,
            store,
            [g for n, g in present.items() if n in by_idx.values() or g.load_id in replaces_loads],
        )
        legacy = any(n in present and not present[n].digest.startswith("2:") for n in by_idx)
        if straight and len(by_idx) > 1:
            calls, packed = None, {i: (None, "") for i in by_idx}
        else:
            calls = _file_calls(s, load_id, list(by_idx), legacy=legacy)
            packed = {i: pack_calls(lines) for i, lines in calls.lines.items()}
        skip: set[int] = set()  # present with the same calls: no change
        withdraw_first: list[str] = []
        for name, i in samples:
            g = present.get(name)
            if g is None:
                continue
            same = packed[i][1] if g.digest.startswith("2:") else calls.legacy_digest(i)
            same += coverage.digest(gaps_of.get(i))
            if g.digest and g.digest == same:
                skip.add(i)
                result.unchanged.append(name)
            elif replace or g.load_id in replaces_loads:
                withdraw_first.append(name)
                result.replaced.append(name)
            else:
                raise InvalidInput(
                    f"sample {name!r} is already in dataset {dataset_id} with other calls "
                    f"(added by load {g.load_id}); pass --replace to replace it"
                )
        # the earlier version of the same file: its genomes go, even those the new one lacks
        for name, g in present.items():
            if g.load_id in replaces_loads and name not in by_idx:
                withdraw_first.append(name)
        if any(_needs_fold(s, store, present[n]) for n in withdraw_first):
            raise NeedsFold(dataset_id)
        for name in withdraw_first:
            _withdraw(s, store, present[name], keep_sample=name in by_idx)
        s.execute(
            sa.delete(BeaconGenome).where(
                BeaconGenome.dataset_id == dataset_id,
                BeaconGenome.load_id == load_id,
                BeaconGenome.status == "staged",
            )
        )
        if samples and len(skip) == len(samples):
            # every genome was already there with the same calls: nothing changes
            _delete_load_rows(s, load_id)
            s.delete(row)
            return result
        if skip:
            _drop_samples(s, load_id, BitMap(skip))
        s.flush()
        have = set(
            s.execute(
                sa.select(BeaconSample.name).where(BeaconSample.dataset_id == dataset_id)
            ).scalars()
        )
        new_samples, genomes, now = [], [], utcnow()
        for name, i in samples:
            if i in skip:
                continue
            if name not in have:
                new_samples.append({"dataset_id": dataset_id, "idx": i, "name": name})
            blob, digest = packed[i]
            digest += coverage.digest(gaps_of.get(i))
            genomes.append(
                {
                    "dataset_id": dataset_id,
                    "name": name,
                    "idx": i,
                    "status": "present",
                    "load_id": load_id,
                    "digest": digest,
                    "n_records": len(calls.lines[i]) if calls else 0,
                    "records": None,
                    "calls": blob,
                    "added": now,
                }
            )
            if name not in present:
                result.added.append(name)
        for old in journal.earlier_loads(s, row):
            old.status = "superseded"
            old.pending = False
        result.load_id = load_id
        if straight:
            row, store, file_id = _become_store(s, store, row, bool(samples))
            result.load_id = file_id
            for g in genomes:
                g["load_id"] = file_id
        if new_samples:
            s.execute(sa.insert(BeaconSample), new_samples)
        if genomes:
            s.execute(sa.insert(BeaconGenome), genomes)
        for i, gaps in gaps_of.items():
            if i not in skip:
                coverage.store(s, dataset_id, i, gaps)
        if withdraw_first:
            _drop_empty_loads(s, dataset_id)
        result.records = s.execute(
            sa.select(sa.func.count()).select_from(V).where(V.load_id == load_id)
        ).scalar_one()
        if not straight:  # the one flip that makes the file visible: a delta
            row.status, row.pending = "done", True
            row.records = row.checkpoint
            row.finished = now
        store.checkpoint = (store.checkpoint or 0) + 1
        store.max_span = max(store.max_span or 0, max_span)
        store.assembly = store.assembly or assembly
        store.finished = now
    return result


def drop_unused_store(session, dataset_id: str) -> None:
    """Delete the dataset's store row if nothing ever reached it (a first load
    that failed): no record, genome or pending delta."""
    store = session.execute(
        sa.select(BeaconLoad).where(
            BeaconLoad.kind == "vcf",
            BeaconLoad.dataset_id == dataset_id,
            BeaconLoad.path == STORE_PATH,
            BeaconLoad.checkpoint == 0,
        )
    ).scalar_one_or_none()
    if store is None or not _store_empty(session, store):
        return
    genomes = sa.select(BeaconGenome.name).where(BeaconGenome.dataset_id == dataset_id)
    if session.execute(genomes.limit(1)).first() is None:
        session.delete(store)


def _store_empty(session, store: BeaconLoad) -> bool:
    """No base record and no pending delta: nothing to merge into."""
    if session.execute(sa.select(V.pk).where(V.load_id == store.id).limit(1)).first():
        return False
    return not pending_loads(session, store.dataset_id)


def _become_store(session, store: BeaconLoad, row: BeaconLoad, with_samples: bool):
    """The first file of an empty dataset becomes its store as it is: its
    journal row takes the (empty) store row's place, so its rows are the base
    records without being rewritten, and a new journal row of the file's kind
    keeps its content's identity (repeat, resume, replacement). Rows nobody in
    the file carries are not records. Returns (file row, store row, file row id)."""
    if with_samples:
        nobody = sa.select(V.pk).where(V.load_id == row.id, V.hom + V.het == 0)
        session.execute(
            sa.delete(BeaconAnnotation)
            .where(BeaconAnnotation.load_id == row.id, BeaconAnnotation.variant_pk.in_(nobody))
            .execution_options(synchronize_session=False)
        )
        session.execute(
            sa.delete(V)
            .where(V.load_id == row.id, V.hom + V.het == 0)
            .execution_options(synchronize_session=False)
        )
    now = utcnow()
    same = ("kind", "dataset_id", "path", "sha256", "checkpoint", "assembly", "max_span", "started")
    file = BeaconLoad(
        **{c: getattr(row, c) for c in same},
        status="done",
        pending=False,
        records=row.checkpoint,
        finished=now,
    )
    generation, sha = (store.checkpoint or 0) + 1, store.sha256
    session.delete(store)
    session.flush()
    row.kind, row.path, row.sha256 = "vcf", STORE_PATH, sha
    row.status, row.pending, row.checkpoint, row.records = "done", False, generation, 0
    row.finished = now
    session.flush()
    session.add(file)
    session.flush()
    return file, row, file.id


def _keep_calls(session, store: BeaconLoad, genomes: list[BeaconGenome]) -> None:
    """Read and keep the calls and digests of genomes of a multi-sample file
    loaded straight into the store (not kept until first needed), in one pass
    over the dataset's records."""
    genomes = [g for g in genomes if g.calls is None and g.records is None]
    if not genomes:
        return
    calls, last = _Calls([g.idx for g in genomes]), -1
    while True:
        rows = session.execute(
            sa.select(*_KEY_COLUMNS, *_REC_COLUMNS)
            .where(V.load_id == store.id, V.pk > last)
            .order_by(V.pk)
            .limit(CHUNK)
        ).all()
        if not rows:
            break
        last = rows[-1][5]
        for r in rows:
            calls.add(tuple(r[:5]), Rec.of(*r[5:]))
    for g in genomes:
        g.calls, g.digest = pack_calls(calls.lines[g.idx])
        g.n_records = len(calls.lines[g.idx])


def pending_loads(session, dataset_id: str) -> list[int]:
    """The dataset's pending deltas (journal row ids, oldest first)."""
    return list(
        session.execute(
            sa.select(BeaconLoad.id)
            .where(
                BeaconLoad.dataset_id == dataset_id,
                BeaconLoad.kind.in_(DELTA_KINDS),
                BeaconLoad.status == "done",
                BeaconLoad.pending.is_(True),
            )
            .order_by(BeaconLoad.id)
        ).scalars()
    )


# ------------------------------------------------------------------ withdrawal
def _pk_in(session, pks: list[int], column=None):
    """``pk IN (...)``: one array parameter on PostgreSQL (planned once for every
    partition, not once per value), a list elsewhere."""
    column = V.pk if column is None else column
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import ARRAY

        return column == sa.any_(sa.bindparam("pks", list(pks), type_=ARRAY(sa.BigInteger)))
    return column.in_(pks)


def _drop_empty_loads(session, dataset_id: str) -> None:
    """Journal rows of files none of whose genomes is left (all replaced or
    withdrawn) and whose rows are not a pending delta: loading such a file
    again is a new report, not a repeat."""
    left = sa.select(BeaconGenome.load_id).where(BeaconGenome.dataset_id == dataset_id)
    session.execute(
        sa.delete(BeaconLoad)
        .where(
            BeaconLoad.dataset_id == dataset_id,
            BeaconLoad.kind.in_(("genome", "vcf-file")),
            BeaconLoad.status == "done",
            BeaconLoad.pending.is_(False),
            BeaconLoad.id.not_in(left),
        )
        .execution_options(synchronize_session=False)
    )


def _needs_fold(session, store: BeaconLoad, genome: BeaconGenome) -> bool:
    """Whether withdrawing ``genome`` needs the dataset folded first: a fold is
    unfinished, or the genome shares a pending delta with other genomes."""
    if store.pending:
        return True
    load = session.get(BeaconLoad, genome.load_id)
    if load is None or not load.pending:
        return False
    others = session.execute(
        sa.select(sa.func.count())
        .select_from(BeaconGenome)
        .where(
            BeaconGenome.dataset_id == genome.dataset_id,
            BeaconGenome.load_id == genome.load_id,
        )
    ).scalar_one()
    return others > 1


def _legacy_calls(session, genome: BeaconGenome) -> list[Call]:
    """The calls of a genome added before revision 0007, from its records."""
    out = []
    pks = unpack_pks(genome.records)
    for i in range(0, len(pks), CHUNK):
        rows = session.execute(
            sa.select(*_KEY_COLUMNS, *_REC_COLUMNS).where(_pk_in(session, pks[i : i + CHUNK]))
        ).all()
        for r in rows:
            copies, gap, hom = Rec.of(*r[5:]).call(genome.idx)
            out.append(Call(*r[:5], copies, gap, hom))
    return out


# the columns of a variant row, in the order loaders write them
VARIANT_COLUMNS = (
    "pk",
    "load_id",
    "dataset_id",
    "assembly",
    "chrom",
    "start",
    "end",
    "ref",
    "alt",
    "variant_type",
    "length",
    "vcf_id",
    "hgvs_g",
    "ac",
    "an",
    "hom",
    "het",
    "af",
    "carriers",
    "hom_carriers",
    "an_gap",
    "gaps",
)


def _recorded(session, store_id: int, calls: list[Call]) -> set[tuple]:
    """The allele keys among ``calls`` that have a base record."""
    found: set[tuple] = set()
    by_chrom: dict[str, list[int]] = {}
    for c in calls:
        by_chrom.setdefault(c.chrom, []).append(c.start)
    for chrom, starts in by_chrom.items():
        starts = sorted(set(starts))
        for i in range(0, len(starts), 5000):
            part = starts[i : i + 5000]
            found |= {
                tuple(r)
                for r in session.execute(
                    sa.select(*_KEY_COLUMNS).where(
                        V.load_id == store_id, V.chrom == chrom, V.start.in_(part)
                    )
                )
            }
    return found


def _negative_delta(session, store: BeaconLoad, genome: BeaconGenome, calls: list[Call]) -> int:
    """A pending delta that subtracts ``calls`` of ``genome`` (folded into the
    base records): its counts negated, its one index in each bitmap. A call
    with no base record (a missing call where nobody carried the allele when it
    was folded) counted nowhere and is left out. Returns the rows written."""
    gap_only = [c for c in calls if not c.copies]
    if gap_only:
        recorded = _recorded(session, store.id, gap_only)
        calls = [c for c in calls if c.copies or tuple(c[:5]) in recorded]
    load = BeaconLoad(
        kind="withdrawal",
        dataset_id=genome.dataset_id,
        path="(withdrawal)",
        sha256=secrets.token_hex(32),
        status="done",
        pending=True,
        checkpoint=len(calls),
        records=len(calls),
        assembly=store.assembly or "",
        max_span=0,
        started=utcnow(),
        finished=utcnow(),
    )
    session.add(load)
    session.flush()
    me = BitMap([genome.idx]).serialize()
    nobody = BitMap().serialize()
    gaps = {0: None, 1: pack_gaps(BitMap([genome.idx]), BitMap())}
    gaps[2] = pack_gaps(BitMap(), BitMap([genome.idx]))
    base = load.id << PK_LOAD_SHIFT
    rows = []
    for j, c in enumerate(calls):
        carrier = c.copies > 0
        hom = carrier and c.hom
        rows.append(
            (
                base | (j << PK_RECORD_SHIFT) | 1,
                load.id,
                genome.dataset_id,
                store.assembly or "",
                c.chrom,
                c.start,
                c.end,
                c.ref,
                c.alt,
                "",  # no description: the base record's is shown
                0,
                "",
                "",
                -c.copies,
                0,
                -1 if hom else 0,
                -1 if carrier and not hom else 0,
                0.0,
                me if carrier else nobody,
                me if hom else nobody,
                -c.gap,
                gaps.get(c.gap),
            )
        )
        if len(rows) >= CHUNK:
            insert_rows(session, V.__table__, VARIANT_COLUMNS, rows)
            rows = []
    insert_rows(session, V.__table__, VARIANT_COLUMNS, rows)
    return len(calls)


def _withdraw(session, store: BeaconLoad, genome: BeaconGenome, keep_sample: bool) -> int:
    """Remove one genome from what queries count, at once: the rows of its own
    pending delta are deleted, or a negative delta subtracts it from the base
    records (the caller has checked ``_needs_fold``). Returns the rows deleted
    or written."""
    load = session.get(BeaconLoad, genome.load_id)
    if load is not None and load.pending:
        done = _delete_load_rows(session, load.id)
        load.pending = False
    else:
        _keep_calls(session, store, [genome])  # loaded straight: read them now
        calls = (
            unpack_calls(genome.calls)
            if genome.calls is not None
            else _legacy_calls(session, genome)
        )
        done = _negative_delta(session, store, genome, calls)
    coverage.delete(session, genome.dataset_id, genome.idx)
    session.delete(genome)
    if not keep_sample:
        session.execute(
            sa.delete(BeaconSample).where(
                BeaconSample.dataset_id == genome.dataset_id, BeaconSample.name == genome.name
            )
        )
    store.checkpoint = (store.checkpoint or 0) + 1
    session.flush()
    return done


@dataclass
class Withdrawal:
    dataset_id: str
    sample: str
    records: int
    metadata: int

    def describe(self) -> str:
        return (
            f"withdrew {self.sample} from dataset {self.dataset_id}: {self.records} variant "
            f"rows deleted or subtracted, {self.metadata} metadata records deleted"
        )


def withdraw(db, dataset_id: str, sample: str, *, caller: str = "cli") -> Withdrawal:
    """Remove one genome from every count, carrier set and frequency of the
    dataset, delete its genotypes, sample index entry, metadata records
    (individual, biosample, runs, analyses) and the journal rows of the files
    that brought only it; audited, in one transaction (after folding the
    dataset's deltas first when the genome shares a pending delta)."""
    from server.auth.audit import append

    for attempt in (0, 1):
        try:
            return _withdraw_now(db, dataset_id, sample, caller, append)
        except NeedsFold:
            if attempt:
                raise
            fold(db, dataset_id)
    raise AssertionError("unreachable")


def _withdraw_now(db, dataset_id, sample, caller, append) -> Withdrawal:
    with db.session() as s:
        genome = s.get(BeaconGenome, (dataset_id, sample))
        if genome is None or genome.status != "present":
            raise NotFound(f"dataset {dataset_id!r} has no genome {sample!r}")
        store = store_row(s, dataset_id)
        if _needs_fold(s, store, genome):
            raise NeedsFold(dataset_id)
        records = _withdraw(s, store, genome, keep_sample=False)
        # the individual the sample belongs to (a biosample record may name it)
        individual = (
            s.execute(
                sa.select(BeaconRecord.individual_id).where(
                    BeaconRecord.dataset_id == dataset_id,
                    BeaconRecord.entry_type == "biosample",
                    BeaconRecord.id == sample,
                )
            ).scalar_one_or_none()
            or sample
        )
        meta = s.execute(
            sa.select(BeaconRecord.entry_type, BeaconRecord.id).where(
                BeaconRecord.dataset_id == dataset_id,
                BeaconRecord.entry_type.in_(("individual", "biosample", "run", "analysis")),
                sa.or_(
                    sa.and_(BeaconRecord.entry_type == "individual", BeaconRecord.id == individual),
                    BeaconRecord.individual_id == individual,
                    BeaconRecord.biosample_id == sample,
                    BeaconRecord.id == sample,
                ),
            )
        ).all()
        for etype, rid in meta:
            for table in (BeaconRecordTerm, BeaconRecordValue):
                s.execute(
                    sa.delete(table).where(
                        table.dataset_id == dataset_id,
                        table.entry_type == etype,
                        table.record_id == rid,
                    )
                )
            s.execute(
                sa.delete(BeaconRecord).where(
                    BeaconRecord.dataset_id == dataset_id,
                    BeaconRecord.entry_type == etype,
                    BeaconRecord.id == rid,
                )
            )
        _drop_empty_loads(s, dataset_id)
        append(
            db,
            caller=caller,
            api="beacon",
            action="withdraw",
            outcome="granted",
            dataset_id=dataset_id,
            object_id=sample,
            query={"records": records, "metadata": len(meta)},
            connection=s.connection(),
        )
    return Withdrawal(dataset_id, sample, records, len(meta))


# ------------------------------------------------------------------ fold
@dataclass
class FoldResult:
    dataset_id: str
    deltas: int = 0  # pending deltas folded
    rows: int = 0  # their rows
    records: int = 0  # base records written (updated, added or deleted)
    seconds: float = 0.0

    def describe(self) -> str:
        if not self.deltas:
            return f"dataset {self.dataset_id}: no pending deltas, nothing to fold"
        return (
            f"dataset {self.dataset_id}: folded {self.deltas} deltas ({self.rows} rows) into "
            f"{self.records} records in {self.seconds:.1f} s"
        )


_FOLD_COLUMNS = (*_KEY_COLUMNS, V.variant_type, *_REC_COLUMNS)


def _is_empty(rec: Rec) -> bool:
    """No carrier, no allele count and no declared AN (a sites-only row's
    negative gap): not a record of the dataset."""
    return not rec.carriers and rec.ac <= 0 and rec.an_gap >= 0


def fold(
    db,
    dataset_id: str,
    *,
    progress: bool = False,
    chunk: int = CHUNK,
    stop_after: int | None = None,
) -> FoldResult:
    """Fold every pending delta of the dataset into its base records: one pass
    per chromosome, a chunk of alleles per transaction, each record rewritten
    once whatever the number of genomes folded. Each chunk updates the base
    records and deletes (or turns into base records) the delta rows in the
    same transaction, so queries never see a half-folded allele; an
    interrupted fold resumes where it stopped (the store row stays
    ``pending`` until it has finished). ``stop_after`` (chunks) simulates an
    interruption (for tests)."""
    t0 = time.perf_counter()
    result = FoldResult(dataset_id)
    with db.session() as s:
        store = store_row(s, dataset_id)
        loads = pending_loads(s, dataset_id)
        if not loads:
            store.pending = False
            return result
        store.pending = True
        total = s.execute(
            sa.select(sa.func.count()).select_from(V).where(V.load_id.in_(loads))
        ).scalar_one()
        chroms = sorted(
            s.execute(sa.select(V.chrom).where(V.load_id.in_(loads)).distinct()).scalars()
        )
    result.deltas = len(loads)
    if db.engine.dialect.name != "postgresql":
        chunk = min(chunk, 5000)  # bound parameters per statement
    bar = tqdm(total=total, desc=f"fold {dataset_id}", unit=" row", disable=not progress)
    try:
        for chrom in chroms:
            frontier = None
            while True:
                with db.session() as s:
                    store = store_row(s, dataset_id)
                    rows, records, frontier = _fold_chunk(s, store, loads, chrom, frontier, chunk)
                result.rows += rows
                result.records += records
                bar.update(rows)
                if stop_after is not None:
                    stop_after -= 1
                    if stop_after <= 0:
                        return result
                if frontier is None:
                    break
        with db.session() as s:
            store = store_row(s, dataset_id)
            s.execute(
                sa.update(BeaconLoad)
                .where(BeaconLoad.id.in_(loads))
                .values(pending=False)
                .execution_options(synchronize_session=False)
            )
            s.execute(
                sa.delete(BeaconLoad)
                .where(BeaconLoad.id.in_(loads), BeaconLoad.kind == "withdrawal")
                .execution_options(synchronize_session=False)
            )
            store.pending = False
            store.checkpoint = (store.checkpoint or 0) + 1
    finally:
        bar.close()
    result.seconds = time.perf_counter() - t0
    return result


def _fold_chunk(session, store, loads, chrom, frontier, chunk) -> tuple[int, int, int | None]:
    """Fold the delta rows of one window of ``chrom`` (from ``frontier``, whole
    positions only). Returns the rows folded, the records written and the next
    frontier (None: the chromosome is done)."""
    conds = [V.load_id.in_(loads), V.chrom == chrom]
    if frontier is not None:
        conds.append(V.start >= frontier)
    q = sa.select(*_FOLD_COLUMNS).where(*conds)
    rows = session.execute(q.order_by(V.start, V.pk).limit(chunk)).all()
    if not rows:
        return 0, 0, None
    nxt = None
    if len(rows) == chunk:
        last = rows[-1].start
        rows = [r for r in rows if r.start < last]
        rows += session.execute(q.where(V.start == last).order_by(V.pk)).all()
        nxt = exclusive_end(last)  # the window holds every start up to last
    # the base records of these alleles: one probe per position into the
    # allele index (load_id, chrom, start, ref), the other alleles there dropped
    keys = {tuple(r[:5]) for r in rows}
    starts = sorted({r.start for r in rows})
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import ARRAY

        at = V.start == sa.any_(sa.bindparam("starts", starts, type_=ARRAY(sa.BigInteger)))
    else:
        at = V.start.in_(starts)
    base = {
        key: Rec.of(*r[6:])
        for r in session.execute(
            sa.select(*_FOLD_COLUMNS).where(V.load_id == store.id, V.chrom == chrom, at)
        )
        if (key := tuple(r[:5])) in keys
    }
    updates, deletes, dropped = [], [], 0
    rows.sort(key=lambda r: (*r[:5], r.pk))
    for key, group in groupby(rows, key=lambda r: tuple(r[:5])):
        group = list(group)
        agg = None
        for r in group:
            rec = Rec.of(*r[6:])
            agg = rec if agg is None else (agg.add(rec) or agg)
        target = base.get(key)
        if target is not None:
            deletes += [r.pk for r in group]
            target.add(agg)
            if _is_empty(target):
                deletes.append(target.pk)
                dropped += 1
            else:
                updates.append(target)
            continue
        keep = next((r.pk for r in group if r.variant_type), None)  # not a negative row
        if keep is None or _is_empty(agg):
            deletes += [r.pk for r in group]
            continue
        deletes += [r.pk for r in group if r.pk != keep]
        agg.pk = keep
        updates.append(agg)
    n = genome_count(session, store.dataset_id)
    _delete_rows(session, deletes)
    _update_rows(session, [r.row(n) for r in updates], store.id)
    return len(rows), len(updates) + dropped, nxt


# ------------------------------------------------------------------ reading
Allele = namedtuple("Allele", VARIANT_COLUMNS)  # one allele as queries read it
ALLELE_COLUMNS = tuple(getattr(V, f) for f in Allele._fields)


def combine(rows: list, n_genomes: int) -> Allele | None:
    """One allele from its rows (``ALLELE_COLUMNS`` tuples, base record and
    deltas, in pk order) exactly as if the deltas were folded; None when it is
    not a record of the dataset (nobody left carries it)."""
    first = next((r for r in rows if r.variant_type), None)
    if first is None:
        return None
    if len(rows) == 1:
        visible = first.hom + first.het > 0 or first.ac > 0 or (first.an_gap or 0) < 0
        return Allele(*first) if visible else None
    rec = None
    for r in rows:
        one = Rec.of(r.pk, r.ac, r.hom, r.het, r.an_gap, r.carriers, r.hom_carriers, r.gaps)
        rec = one if rec is None else (rec.add(one) or rec)
    if _is_empty(rec):
        return None
    an = 2 * n_genomes - rec.an_gap
    return Allele(
        *first[:13],
        rec.ac,
        an,
        rec.hom,
        rec.het,
        (rec.ac / an) if an > 0 else 0.0,
        rec.carriers.serialize(),
        rec.homs.serialize(),
        rec.an_gap,
        pack_gaps(rec.one, rec.two),
    )


def combine_all(rows, n_genomes: int) -> list[Allele]:
    """Alleles from rows ordered by allele key then pk (``ALLELE_KEY_ORDER``)."""
    out = []
    for _key, group in groupby(rows, key=lambda r: (r.chrom, r.start, r.end, r.ref, r.alt)):
        a = combine(list(group), n_genomes)
        if a is not None:
            out.append(a)
    return out
