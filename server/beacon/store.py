"""The merged variant store: one record per allele per dataset, whatever the
files its genomes came in, and exact withdrawal of one genome.

A file (a multi-sample ``load-vcf`` or single-sample ``add-genome``) is first
staged under its own journal row by ``server.beacon.vcf`` (batches, resumable,
invisible to queries); :func:`merge` then folds the staged rows into the
dataset's store in one transaction, so a file is all there or not at all.

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

Each genome keeps, in ``beacon_genomes``, the sorted pks of the records it
contributes to (as a carrier or by a gap) and a digest of its calls: the same
genome reported again changes nothing, a changed one is refused unless
replaced, and :func:`withdraw` subtracts exactly what it added, deleting
records nobody else carries: the store then equals one that never had it.

Hand-written because no library merges Roaring-bitmap allele records.
"""

from __future__ import annotations

import hashlib
import logging
import struct
import zlib
from dataclasses import dataclass, field

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

logger = logging.getLogger(__name__)

V = BeaconVariant
STORE_PATH = "(merged store)"
CHUNK = 20000


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
    use and locked (PostgreSQL) so that merges and withdrawals of one dataset
    run one after the other."""
    q = sa.select(BeaconLoad).where(
        BeaconLoad.kind == "vcf",
        BeaconLoad.dataset_id == dataset_id,
        BeaconLoad.path == STORE_PATH,
    )
    if session.get_bind().dialect.name == "postgresql":
        q = q.with_for_update()
    row = session.execute(q).scalar_one_or_none()
    if row is None:
        row = BeaconLoad(
            kind="vcf",
            dataset_id=dataset_id,
            path=STORE_PATH,
            sha256=hashlib.sha256(f"store:{dataset_id}".encode()).hexdigest(),
            status="done",
            checkpoint=0,
            records=0,
            assembly=assembly,
            max_span=0,
            started=utcnow(),
            finished=utcnow(),
        )
        session.add(row)
        session.flush()
    return row


# ------------------------------------------------------------------ bulk writes
_UPDATE_COLUMNS = ("ac", "an", "hom", "het", "af", "an_gap", "carriers", "hom_carriers", "gaps")


def _update_rows(session, rows: list[tuple]) -> None:
    """Rows as ``(pk, *_UPDATE_COLUMNS)``: UPDATE FROM a COPY-filled temporary
    table on PostgreSQL, executemany elsewhere."""
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
            cur.execute(f"UPDATE beacon_variants v SET {sets} FROM gp_merge m WHERE v.pk = m.pk")
        return
    sets = ", ".join(f'"{c}" = ?' for c in _UPDATE_COLUMNS)
    cur = dbapi.cursor()
    try:
        cur.executemany(
            f"UPDATE beacon_variants SET {sets} WHERE pk = ?", [(*r[1:], r[0]) for r in rows]
        )
    finally:
        cur.close()


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
        self.ac += other.ac
        self.hom += other.hom
        self.het += other.het
        self.an_gap += other.an_gap
        self.carriers |= other.carriers
        self.homs |= other.homs
        self.one |= other.one
        self.two |= other.two

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


class _Calls:
    """Per-genome digests and record lists of a file's genomes, accumulated
    with numpy over the samples of each record (not sample by sample).

    A genome's digest is order-independent: two 64-bit sums, over its calls,
    of a hash of (allele, copies, gap, homozygous), and the number of calls. A
    record's genomes fall in at most seven such classes, each hashed once."""

    def __init__(self, samples, with_records: bool = True):
        size = max(samples, default=-1) + 1
        self.wanted = np.zeros(size, dtype=bool)
        self.wanted[list(samples)] = True
        self.sums = np.zeros((2, size), dtype=np.uint64)
        self.count = np.zeros(size, dtype=np.int64)
        self.with_records = with_records
        self.who: list[np.ndarray] = []
        self.pks: list[np.ndarray] = []

    def add(self, key: tuple, rec: Rec, pk: int | None) -> None:
        c, h = rec.carriers, rec.homs
        g = rec.one | rec.two
        classes = (
            ((c & h) - g, 2, 0, True),
            (c & h & rec.one, 1, 1, True),
            (c & h & rec.two, 1, 2, True),
            (c - h - g, 1, 0, False),
            ((c - h) & rec.one, 1, 1, False),
            ((c - h) & rec.two, 1, 2, False),
            (rec.one - c, 0, 1, False),
            (rec.two - c, 0, 2, False),
        )
        everyone = []
        for bm, copies, gap, hom in classes:
            if not bm:
                continue
            who = np.frombuffer(bm.to_array(), dtype=np.uint32)
            who = who[who < len(self.wanted)]
            who = who[self.wanted[who]]
            if not len(who):
                continue
            line = "\t".join(map(str, (*key, copies, gap, hom))).encode()
            digest = hashlib.blake2b(line, digest_size=16).digest()
            for k in (0, 1):
                self.sums[k, who] += np.uint64(int.from_bytes(digest[8 * k : 8 * k + 8], "big"))
            self.count[who] += 1
            everyone.append(who)
        if self.with_records and pk is not None and everyone:
            who = np.concatenate(everyone)
            self.who.append(who)
            self.pks.append(np.full(len(who), pk, dtype=np.int64))

    def digest(self, sample: int) -> str:
        return f"{self.sums[0, sample]:016x}{self.sums[1, sample]:016x}{self.count[sample]:x}"

    def records(self) -> dict[int, np.ndarray]:
        """sample -> the pks of the records it contributes to."""
        if not self.who:
            return {}
        who, pks = np.concatenate(self.who), np.concatenate(self.pks)
        order = np.argsort(who, kind="stable")
        who, pks = who[order], pks[order]
        starts = np.flatnonzero(np.r_[True, who[1:] != who[:-1]])
        ends = np.r_[starts[1:], len(who)]
        return {int(who[a]): pks[a:b] for a, b in zip(starts, ends, strict=True)}


# ------------------------------------------------------------------ merge
@dataclass
class MergeResult:
    added: list[str] = field(default_factory=list)
    replaced: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    records: int = 0  # store records added or changed


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


def _digests(session, load_id: int, samples: dict[int, str]) -> dict[int, str]:
    calls = _Calls(samples, with_records=False)
    for chunk in _staged_chunks(session, load_id):
        for key, rec in chunk:
            calls.add(key, rec, None)
    return {i: calls.digest(i) for i in samples}


def merge(
    db,
    load_id: int,
    dataset_id: str,
    assembly: str,
    samples: list[tuple[str, int]],
    *,
    replace: bool = False,
    replaces_loads: set[int] = frozenset(),
    max_span: int = 0,
    progress: bool = False,
    gaps_of: dict[int, list] | None = None,
) -> MergeResult:
    """Fold the staged rows of ``load_id`` into the dataset's store, in one
    transaction. ``samples``: the file's ``(name, index)``. A sample already
    present with the same calls is left as it is; with other calls it is
    refused unless ``replace`` (or it came from ``replaces_loads``: an earlier
    version of the same file). ``gaps_of``: index -> coverage gaps of the
    genomes that came as gVCFs (``server.beacon.coverage``), stored with them
    and part of their digest."""
    gaps_of = gaps_of or {}
    result = MergeResult()
    by_idx = {i: n for n, i in samples}
    with db.session() as s:
        store = store_row(s, dataset_id, assembly)
        present = {
            g.name: g
            for g in s.execute(
                sa.select(BeaconGenome).where(
                    BeaconGenome.dataset_id == dataset_id, BeaconGenome.status == "present"
                )
            ).scalars()
        }
        known = {n for n, _ in samples if n in present}
        digests = _digests(s, load_id, by_idx) if known else {}
        digests = {i: d + coverage.digest(gaps_of.get(i)) for i, d in digests.items()}
        skip: set[int] = set()  # present with the same calls: no change
        withdraw_first: list[str] = []
        for name, i in samples:
            g = present.get(name)
            if g is None:
                continue
            if g.digest and g.digest == digests.get(i):
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
        for name in withdraw_first:
            _withdraw(s, store, present[name], keep_sample=name in by_idx)
        if withdraw_first:
            _drop_empty_loads(s, dataset_id)
        n_before = genome_count(s, dataset_id)
        new_names = [n for n, i in samples if i not in skip and n not in present]
        n_after = n_before + len(new_names)
        calls = _Calls([i for i in by_idx if i not in skip])
        drop_bits = BitMap(skip)
        bar = tqdm(desc="merge", unit=" rec", disable=not progress)
        changed_records: set[int] = set()  # records of the store this load changed
        for chunk in _staged_chunks(s, load_id):
            matched = _matches(s, store.id, load_id, chunk[0][1].pk, chunk[-1][1].pk)
            updates, deletes = [], []
            for key, rec in chunk:
                changed = False
                if drop_bits and rec.samples().intersection_cardinality(drop_bits):
                    for i in rec.samples() & drop_bits:
                        rec.remove(i)
                    changed = True
                target = matched.get(rec.pk)
                if target is not None:
                    target.add(rec)
                    updates.append(target)
                    changed_records.add(target.pk)
                    deletes.append(rec.pk)
                    pk = target.pk
                elif samples and not rec.carriers:
                    # nobody (left) in the file carries it: not a record of this dataset
                    calls.add(key, rec, None)
                    deletes.append(rec.pk)
                    continue
                else:
                    pk = rec.pk
                    if changed:
                        updates.append(rec)
                calls.add(key, rec, pk)
            _delete_rows(s, deletes)
            rows = {r.pk: r.row(n_after) for r in updates}  # one row per record
            _update_rows(s, list(rows.values()))
            bar.update(len(chunk))
        bar.close()
        added = s.execute(
            sa.update(V)
            .where(V.load_id == load_id)
            .values(load_id=store.id)
            .execution_options(synchronize_session=False)
        ).rowcount
        result.records = len(changed_records) + added  # the staged rows left are new records
        s.execute(
            sa.update(BeaconAnnotation)
            .where(BeaconAnnotation.load_id == load_id)
            .values(load_id=store.id)
            .execution_options(synchronize_session=False)
        )
        # the file's genomes
        s.execute(
            sa.delete(BeaconGenome).where(
                BeaconGenome.dataset_id == dataset_id,
                BeaconGenome.load_id == load_id,
                BeaconGenome.status == "staged",
            )
        )
        s.flush()
        have = set(
            s.execute(
                sa.select(BeaconSample.name).where(BeaconSample.dataset_id == dataset_id)
            ).scalars()
        )
        targets = calls.records()
        empty = np.zeros(0, dtype=np.int64)
        new_samples, genomes, now = [], [], utcnow()
        for name, i in samples:
            if i in skip:
                continue
            if name not in have:
                new_samples.append({"dataset_id": dataset_id, "idx": i, "name": name})
            pks = sorted_unique(targets.get(i, empty))
            genomes.append(
                {
                    "dataset_id": dataset_id,
                    "name": name,
                    "idx": i,
                    "status": "present",
                    "load_id": load_id,
                    "digest": calls.digest(i) + coverage.digest(gaps_of.get(i)),
                    "n_records": len(pks),
                    "records": pack_pks(pks),
                    "added": now,
                }
            )
            if name not in present:
                result.added.append(name)
        # (a replaced genome's row went with its withdrawal above)
        if new_samples:
            s.execute(sa.insert(BeaconSample), new_samples)
        if genomes:
            s.execute(sa.insert(BeaconGenome), genomes)
        for i, gaps in gaps_of.items():
            if i not in skip:
                coverage.store(s, dataset_id, i, gaps)
        store.checkpoint = (store.checkpoint or 0) + 1
        store.max_span = max(store.max_span or 0, max_span)
        store.assembly = store.assembly or assembly
        store.finished = utcnow()
    return result


def _matches(session, store_id: int, load_id: int, lo: int, hi: int) -> dict[int, Rec]:
    """Staged pk -> the store record of the same allele, for staged pks in [lo, hi]."""
    st = sa.orm.aliased(V)
    rows = session.execute(
        sa.select(st.pk, *_REC_COLUMNS)
        .join(
            V,
            sa.and_(
                V.load_id == store_id,
                V.chrom == st.chrom,
                V.start == st.start,
                V.ref == st.ref,
                V.alt == st.alt,
                V.end == st.end,
            ),
        )
        .where(st.load_id == load_id, st.pk >= lo, st.pk <= hi)
    ).all()
    shared: dict[int, Rec] = {}
    out = {}
    for r in rows:
        rec = shared.get(r[1])
        if rec is None:
            rec = shared[r[1]] = Rec.of(*r[1:])
        out[r[0]] = rec
    return out


# ------------------------------------------------------------------ withdrawal
def _pk_in(session, pks: list[int]):
    """``pk IN (...)``: one array parameter on PostgreSQL (planned once for every
    partition, not once per value), a list elsewhere."""
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import ARRAY

        return V.pk == sa.any_(sa.bindparam("pks", list(pks), type_=ARRAY(sa.BigInteger)))
    return V.pk.in_(pks)


def _drop_empty_loads(session, dataset_id: str) -> None:
    """Journal rows of files none of whose genomes is left (all replaced or
    withdrawn): loading such a file again is a new report, not a repeat."""
    left = sa.select(BeaconGenome.load_id).where(BeaconGenome.dataset_id == dataset_id)
    session.execute(
        sa.delete(BeaconLoad)
        .where(
            BeaconLoad.dataset_id == dataset_id,
            BeaconLoad.kind.in_(("genome", "vcf-file")),
            BeaconLoad.status == "done",
            BeaconLoad.id.not_in(left),
        )
        .execution_options(synchronize_session=False)
    )


def _withdraw(session, store: BeaconLoad, genome: BeaconGenome, keep_sample: bool) -> int:
    """Subtract one genome from every record it contributes to; delete the
    records nobody else carries. Returns the records changed or deleted."""
    pks = unpack_pks(genome.records)
    n_after = genome_count(session, genome.dataset_id) - (0 if keep_sample else 1)
    done = 0
    for i in range(0, len(pks), CHUNK):
        chunk = pks[i : i + CHUNK]
        rows = session.execute(sa.select(*_REC_COLUMNS).where(_pk_in(session, chunk))).all()
        updates, deletes = [], []
        for r in rows:
            rec = Rec.of(*r)
            rec.remove(genome.idx)
            if rec.empty and not rec.samples():
                deletes.append(rec.pk)
            else:
                updates.append(rec.row(n_after))
        _delete_rows(session, deletes)
        _update_rows(session, updates)
        done += len(rows)
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
            f"records changed or deleted, {self.metadata} metadata records deleted"
        )


def withdraw(db, dataset_id: str, sample: str, *, caller: str = "cli") -> Withdrawal:
    """Remove one genome from every count, carrier set and frequency of the
    dataset, delete its genotypes, sample index entry, metadata records
    (individual, biosample, runs, analyses) and the journal rows of the files
    that brought only it; audited, in one transaction."""
    from server.auth.audit import append

    with db.session() as s:
        genome = s.get(BeaconGenome, (dataset_id, sample))
        if genome is None or genome.status != "present":
            raise NotFound(f"dataset {dataset_id!r} has no genome {sample!r}")
        store = store_row(s, dataset_id)
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
