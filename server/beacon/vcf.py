"""``genomeport beacon load-vcf``: a multi-sample VCF/BCF into the variant store.

One row per ALT allele (multi-allelic sites are split), with AC, AN, hom/het
counts, frequency and the carriers as a Roaring bitmap over the dataset's
sample index. Functional annotations (SnpEff ``ANN`` or VEP ``CSQ``) give
gene symbols, HGVS c./p. and molecular effects.

The file is read once, from a path or a stream (``server.beacon.source``:
a Crypt4GH file decrypted in memory loads without touching a disk). The VCF
text is read line by line as bytes (the header parsed by htslib) and
genotypes are counted with C-level bytes operations: every pass over a
~10 KB genotype section costs about as much as htslib's whole parse of the
record, so the common case (diploid one-character genotypes) is checked with
one translate-and-compare and counted with ``bytes.count``/``find``. BCF
records are decoded by pysam and handled as the same text. Rows are written in
batches of tuples straight through the DBAPI (COPY on PostgreSQL, from a
background thread while the next batch is parsed), each batch committed in
order with a checkpoint, and become visible only when the whole file has
loaded.
"""

from __future__ import annotations

import array
import queue
import re
import threading
import time
from dataclasses import dataclass
from itertools import accumulate, count
from operator import add
from pathlib import Path
from typing import BinaryIO

import numpy as np
import sqlalchemy as sa
from pyroaring import BitMap
from tqdm import tqdm

from server.beacon import coverage, journal
from server.beacon.cpr import looks_like_cpr
from server.beacon.journal import LoadError, LoadResult
from server.beacon.refs import (
    assembly_from_header,
    canonical_chrom,
    normalize_assembly,
    refseq_accession,
)
from server.beacon.source import open_source
from server.beacon.store import (
    PK_LOAD_SHIFT,
    PK_RECORD_SHIFT,
    VARIANT_COLUMNS,
    NeedsFold,
    drop_unused_store,
    fold,
    insert_rows,
    pack_gaps,
    pending_loads,
    publish,
    store_row,
)
from server.beacon.tables import (
    BeaconAnnotation,
    BeaconGenome,
    BeaconLoad,
    BeaconSample,
    BeaconVariant,
)
from server.db.tables import Dataset
from server.errors import InvalidInput, NotFound
from server.genomics.coords import (
    last_pos,
    length_after_anchor,
    pos_before,
    pos_to_start,
    ref_end,
    start_to_pos,
    vcf_interval,
)

_STRIP_FORMAT = re.compile(r":[^\t]*")
_NONREF = re.compile(r"[^\t]*[1-9][^\t]*")
_ALLELE_SPLIT = re.compile(r"[|/]")
_BASES = re.compile(r"^[ACGTNacgtn]+$")
_ONE_BASE = "ACGTNacgtn"
_ALT_OK = re.compile(r"^([ACGTNacgtn]+|<[^<>]+>|\*|.*[\[\]].*|\.|[ACGTNacgtn]*\.[ACGTNacgtn]*)$")

AMINO = {
    "Ala": "A",
    "Arg": "R",
    "Asn": "N",
    "Asp": "D",
    "Cys": "C",
    "Gln": "Q",
    "Glu": "E",
    "Gly": "G",
    "His": "H",
    "Ile": "I",
    "Leu": "L",
    "Lys": "K",
    "Met": "M",
    "Phe": "F",
    "Pro": "P",
    "Ser": "S",
    "Thr": "T",
    "Trp": "W",
    "Tyr": "Y",
    "Val": "V",
    "Ter": "*",
    "Sec": "U",
    "Pyl": "O",
    "Xaa": "X",
}
_AMINO3 = re.compile("|".join(AMINO))


def aa_short(hgvs_p: str) -> str:
    """``p.Val600Glu`` / ``ENSP..:p.(Val600Glu)`` / ``V600E`` -> ``V600E``."""
    if not hgvs_p:
        return ""
    text = hgvs_p.strip().split(":")[-1]
    if text.startswith("p."):
        text = text[2:]
    text = text.replace("(", "").replace(")", "")
    return _AMINO3.sub(lambda m: AMINO[m.group(0)], text)


def classify(ref: str, alt: str, info: dict[str, str], start: int) -> tuple[str, int, int]:
    """``(variant_type, length, end)`` of one ALT allele (``end`` 0-based exclusive)."""
    if len(ref) == 1 and len(alt) == 1 and alt not in "[]":  # a SNP, most records
        return "SNP", 1, ref_end(start, ref)
    if alt.startswith("<"):
        inner = alt[1:-1].split(":")[0].upper()
        svtype = info.get("SVTYPE", inner).upper().split(":")[0]
        if svtype not in ("DEL", "DUP", "INV", "INS", "CNV", "BND"):
            svtype = inner if inner in ("DEL", "DUP", "INV", "INS", "CNV") else "SV"
        info_end = _int(info.get("END"))
        interval = vcf_interval(start_to_pos(start), ref, info_end)
        svlen = _int((info.get("SVLEN") or "").split(",")[0])
        if svlen is not None:
            length = abs(svlen)
        elif svtype == "INS":
            length = 0
        else:
            length = length_after_anchor(interval)
        return svtype, length, interval.end
    end = ref_end(start, ref)
    if "[" in alt or "]" in alt:
        return "BND", 0, end
    if len(ref) == 1 and len(alt) == 1:
        return "SNP", 1, end
    r, a = _trim(ref, alt)
    if not r and a:
        return "INS", len(a), end
    if r and not a:
        return "DEL", len(r), end
    if len(r) == len(a):
        return ("SNP" if len(r) == 1 else "MNP"), len(r), end
    return "INDEL", max(len(r), len(a)), end


def _trim(ref: str, alt: str) -> tuple[str, str]:
    """Strip the shared suffix, then the shared prefix."""
    while ref and alt and ref[-1] == alt[-1]:
        ref, alt = ref[:-1], alt[:-1]
    while ref and alt and ref[0] == alt[0]:
        ref, alt = ref[1:], alt[1:]
    return ref, alt


def hgvs_genomic(chrom: str, assembly: str, pos: int, ref: str, alt: str) -> str:
    """HGVS g. of a sequence variant at VCF ``pos`` (not 3'-shifted); '' for SVs."""
    if len(ref) == 1 and len(alt) == 1 and ref != alt and alt in _ONE_BASE:  # a SNP
        return f"{refseq_accession(chrom, assembly) or chrom}:g.{pos}{ref.upper()}>{alt.upper()}"
    if alt.startswith("<") or "[" in alt or "]" in alt or alt in ("*", "."):
        return ""
    acc = refseq_accession(chrom, assembly) or chrom
    # drop the shared suffix and prefix, tracking the first remaining position
    r, a = ref, alt
    while r and a and r[-1] == a[-1]:
        r, a = r[:-1], a[:-1]
    first = pos
    while r and a and r[0] == a[0]:
        r, a = r[1:], a[1:]
        first += 1
    if len(r) == 1 and len(a) == 1:
        return f"{acc}:g.{first}{r.upper()}>{a.upper()}"
    if not r:
        return f"{acc}:g.{pos_before(first)}_{first}ins{a.upper()}"
    span = f"{first}" if len(r) == 1 else f"{first}_{last_pos(first, len(r))}"
    if not a:
        return f"{acc}:g.{span}del"
    return f"{acc}:g.{span}delins{a.upper()}"


def _int(value) -> int | None:
    if value in (None, "", "."):
        return None
    try:
        return int(value)
    except ValueError:
        return None


@dataclass
class _AnnFormat:
    key: str  # ANN or CSQ
    allele: int
    effect: int
    impact: int
    gene: int
    feature: int
    hgvs_c: int
    hgvs_p: int
    width: int


def _annotation_format(header) -> _AnnFormat | None:
    for key, names in (
        (
            "ANN",
            (
                "Allele",
                "Annotation",
                "Annotation_Impact",
                "Gene_Name",
                "Feature_ID",
                "HGVS.c",
                "HGVS.p",
            ),
        ),
        ("CSQ", ("Allele", "Consequence", "IMPACT", "SYMBOL", "Feature", "HGVSc", "HGVSp")),
    ):
        if key not in header.info:
            continue
        desc = header.info[key].description or ""
        m = re.search(r"(?:Format|annotations):\s*'?([^']+)'?", desc)
        if not m:
            continue
        cols = [c.strip() for c in m.group(1).strip().strip('"').split("|")]
        try:
            idx = [cols.index(n) for n in names]
        except ValueError:
            continue
        return _AnnFormat(key, *idx, width=len(cols))
    return None


def _parse_annotations(fmt: _AnnFormat, value: str, alts: list[str], ref: str):
    """Yield ``(alt_index, gene, effect, impact, feature, hgvs_c, hgvs_p)``."""
    keys: dict[str, int] = {}
    shared = all(a[:1] == ref[:1] for a in alts) and not any(a.startswith("<") for a in alts)
    for i, alt in enumerate(alts):
        keys[alt] = i
        if fmt.key == "CSQ" and shared:
            keys.setdefault(alt[1:] or "-", i)
    seen = set()
    for entry in value.split(","):
        parts = entry.split("|")
        if len(parts) <= max(fmt.allele, fmt.effect, fmt.gene, fmt.hgvs_p):
            continue
        allele = parts[fmt.allele]
        i = keys.get(allele, 0 if len(alts) == 1 else None)
        if i is None:
            continue
        effect = parts[fmt.effect]
        gene = parts[fmt.gene] if effect != "intergenic_region" else ""
        item = (
            i,
            gene,
            effect,
            parts[fmt.impact],
            parts[fmt.feature],
            parts[fmt.hgvs_c],
            parts[fmt.hgvs_p],
        )
        if item not in seen:
            seen.add(item)
            yield item


def _reserve_samples(session, dataset_id: str, names: list[str], load_id: int) -> list[int]:
    """The dataset's sample index of each name: an existing sample keeps its
    index; a new one gets the next free index, reserved for this load by a
    ``staged`` genome row (it joins ``beacon_samples`` only when the file is
    merged, so a load in progress counts no genome)."""
    rows = dict(
        session.execute(
            sa.select(BeaconSample.name, BeaconSample.idx).where(
                BeaconSample.dataset_id == dataset_id
            )
        ).all()
    )
    genomes = {
        g.name: g
        for g in session.execute(
            sa.select(BeaconGenome).where(BeaconGenome.dataset_id == dataset_id)
        ).scalars()
    }
    nxt = max([*rows.values(), *(g.idx for g in genomes.values())], default=-1) + 1
    out, staged = [], []
    for name in names:
        g = genomes.get(name)
        if name in rows:
            out.append(rows[name])
        elif g is not None and g.status == "staged" and g.load_id != load_id:
            raise InvalidInput(
                f"sample {name!r} is being loaded into dataset {dataset_id} by load "
                f"{g.load_id}; finish that load first (run its command again)"
            )
        elif g is not None:
            out.append(g.idx)
        else:
            staged.append(
                {
                    "dataset_id": dataset_id,
                    "name": name,
                    "idx": nxt,
                    "status": "staged",
                    "load_id": load_id,
                    "digest": "",
                    "n_records": 0,
                    "added": journal.utcnow(),
                }
            )
            out.append(nxt)
            nxt += 1
    if staged:
        session.execute(sa.insert(BeaconGenome), staged)
    return out


def _positions(mask: bytes):
    """Indexes of the 1-bytes of a 0/1 byte mask, with C-level iterators only."""
    segments = mask.split(b"\x01")
    if len(segments) == 1:
        return ()
    segments.pop()
    # the k-th 1 sits after k earlier segments and k earlier 1-bytes
    return map(add, accumulate(map(len, segments)), count())


# bytes.translate tables: allele character -> 1, anything else -> 0
_ONE_ALLELE = {a: bytes(1 if c == ord(str(a)) else 0 for c in range(256)) for a in range(1, 10)}


def _diploid_counts(gts, nsamples, idx, p, where, n_alt, tallies) -> int:
    """Counts for the common case: every genotype is ``a|b`` or ``a/b`` with
    one-character alleles, so allele k of sample i sits at ``4*i + 2*k``. Per
    ALT allele, each haplotype becomes a 0/1 byte mask read as a big integer:
    carriers are ``first | second``, homozygotes ``first & second``."""
    carriers, ac, hom, het, homs = tallies
    first, second = gts[0::4], gts[2::4]
    seps = gts[1::4]
    if seps.count("|") + seps.count("/") != nsamples:
        raise LoadError(p, where, "a genotype separator is neither '|' nor '/'")
    both = first + second
    dots = both.count(".")
    counts = [both.count(str(a)) for a in range(n_alt + 1)]
    if dots + sum(counts) != 2 * nsamples:
        raise LoadError(
            p,
            where,
            f"a genotype names an allele beyond the {n_alt} ALT alleles or is not a number",
        )
    an = 2 * nsamples - dots
    fb, sb = first.encode("ascii"), second.encode("ascii")
    for a in range(1, n_alt + 1):
        allele_count = counts[a]
        if not allele_count:
            continue
        m1 = int.from_bytes(fb.translate(_ONE_ALLELE[a]), "big")
        m2 = int.from_bytes(sb.translate(_ONE_ALLELE[a]), "big")
        union = BitMap(_positions((m1 | m2).to_bytes(nsamples, "big")))
        both_copies = BitMap(_positions((m1 & m2).to_bytes(nsamples, "big")))
        ac[a] = allele_count
        hom[a] = len(both_copies)
        het[a] = len(union) - hom[a]
        carriers[a] = union if idx is None else BitMap(idx[i] for i in union)
        homs[a] = both_copies if idx is None else BitMap(idx[i] for i in both_copies)
    return an


class _DiploidTemplate:
    """The common genotype layout of ``nsamples`` samples, checked in one pass
    and counted with numpy on the genotype bytes.

    Translating the genotype section with ``tables[n_alt]`` maps every allele
    ``0..n_alt`` and ``.`` to ``0`` and ``/`` to ``|``; the result equals
    ``expected`` exactly when every sample is ``a|b`` or ``a/b`` with alleles
    in range, so allele k of sample i sits at byte ``4*i + 2*k``. Anything else
    (haploid, polyploid, bad alleles) fails the comparison and goes the general
    way, which also words the errors."""

    def __init__(self, nsamples: int, idx: list[int] | None):
        self.nsamples = nsamples
        self.expected = (b"0|0\t" * nsamples)[:-1]
        digits = b"0123456789"
        self.tables = [None] + [
            bytes.maketrans(digits[: k + 1] + b"./", b"0" * (k + 2) + b"|") for k in range(1, 10)
        ]
        self.idx = None if idx is None else np.asarray(idx, dtype=np.uint32)

    def counts(self, gts: bytes, n_alt: int, carriers, ac, hom, het, homs) -> int | None:
        """AN after filling the per-allele lists, or None if ``gts`` is not
        in the common layout."""
        if n_alt > 9 or gts.translate(self.tables[n_alt]) != self.expected:
            return None
        arr = np.frombuffer(gts, dtype=np.uint8)
        first, second = arr[0::4], arr[2::4]
        for a in range(1, n_alt + 1):
            code = 48 + a  # ord(str(a))
            f, s = first == code, second == code
            positions = (f | s).nonzero()[0]
            if not len(positions):
                continue
            both = (f & s).nonzero()[0]
            hom[a] = len(both)
            het[a] = len(positions) - hom[a]
            ac[a] = len(positions) + hom[a]  # a homozygote carries two copies
            if self.idx is not None:
                positions = self.idx[positions]
                both = self.idx[both]
            carriers[a] = BitMap(array.array("I", positions.astype(np.uint32).tobytes()))
            if hom[a]:
                homs[a] = BitMap(array.array("I", both.astype(np.uint32).tobytes()))
        return 2 * self.nsamples - gts.count(b".")


# the serialized empty bitmap: the carriers of an allele nobody carries
_NO_CARRIERS = BitMap().serialize()


class _SingleTemplate:
    """The genotype of a single-sample file (add-genome) in the common layout,
    two one-character alleles and a separator (``0/1``, ``1|1``, ``./1``),
    counted with a few integer comparisons: the numpy template's per-record
    overhead is most of the work for one sample. The carrier bitmaps are the
    one sample's, serialized once per file. Anything else (haploid,
    multi-digit alleles, bad input) returns None and goes the general way."""

    def __init__(self, sample: int):
        self.me = BitMap([sample]).serialize()
        # (genotype, n_alt) -> the per-allele lists and AN, or None: a file has
        # only a handful of distinct genotypes, so each is counted once
        self.known: dict[tuple[bytes, int], tuple | None] = {}

    def counts(self, gts: bytes, n_alt: int, carriers, ac, hom, het, homs) -> int | None:
        if len(gts) != 3 or n_alt > 9:
            return None
        key = (gts, n_alt)
        known = self.known.get(key, False)
        if known is False:
            known = self.known[key] = self._count(gts, n_alt)
        if known is None:
            return None
        an, carriers[:], ac[:], hom[:], het[:], homs[:] = known
        return an

    def _count(self, gts: bytes, n_alt: int) -> tuple | None:
        if gts[1] not in (47, 124):  # '/' or '|'
            return None
        called = []
        for x in (gts[0] - 48, gts[2] - 48):
            if x == -2:  # '.'
                continue
            if not 0 <= x <= n_alt:
                return None
            called.append(x)
        carriers, homs = [_NO_CARRIERS] * (n_alt + 1), [_NO_CARRIERS] * (n_alt + 1)
        ac, hom, het = [0] * (n_alt + 1), [0] * (n_alt + 1), [0] * (n_alt + 1)
        for a in called:
            if a:
                ac[a] += 1
                carriers[a] = self.me
        if len(called) == 2 and called[0] == called[1]:
            if called[0]:
                hom[called[0]] = 1
                homs[called[0]] = self.me
        else:
            for a in set(called):
                if a:
                    het[a] = 1
        return len(called), carriers, ac, hom, het, homs


def _serialized(bits) -> bytes:
    """A carrier set as stored: already serialized bytes, a BitMap, or sample
    indexes."""
    if bits.__class__ is bytes:
        return bits
    return (bits if isinstance(bits, BitMap) else BitMap(bits)).serialize()


def bulk_insert(session, table, rows: list[dict]) -> None:
    """Insert many rows: COPY on PostgreSQL, executemany elsewhere."""
    conn = session.connection()
    if conn.dialect.name != "postgresql":
        session.execute(table.insert(), rows)
        return
    cols = list(rows[0])
    names = ", ".join(f'"{c}"' for c in cols)
    cursor = conn.connection.driver_connection.cursor()
    with cursor.copy(f"COPY {table.name} ({names}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row([row[c] for c in cols])


def load_vcf(
    db,
    path,
    dataset_id: str,
    *,
    assembly: str | None = None,
    batch_size: int = 5000,
    progress: bool = True,
    stop_after: int | None = None,
    replace: bool = False,
    single: bool | None = False,
    fold_after: int | None = None,
    stream: BinaryIO | None = None,
    sha256: str | None = None,
) -> LoadResult:
    """Load ``path`` into ``dataset_id``: stage its rows (in committed batches,
    resumable), then make them a visible delta of the dataset in one
    transaction (``server.beacon.store.publish``). ``single``: ``add-genome``,
    which takes single-sample files only. ``replace``: samples already present
    with other calls are replaced (else refused). ``fold_after``: once the load
    is visible, fold the dataset's deltas if more than that many are pending
    (None: never here). ``stop_after`` (records) simulates an interruption
    after that many committed records (for tests).

    The file is read once (``server.beacon.source``). ``stream``: its bytes
    come from this binary reader (a Crypt4GH file decrypted in memory, a
    pipe), read from start to end and never written anywhere; ``path`` then
    only names the file (in messages and in the journal) and ``sha256``, its
    content's checksum (which the journal needs before the first record), is
    required and compared with the bytes read. ``single=None``: ``add-genome``
    for a single-sample file, ``load-vcf`` for a multi-sample one."""
    if stream is None:
        p = journal.check_file(path)
        sha = sha256 or journal.file_sha256(p)
    elif not sha256:
        raise ValueError("a stream is loaded with the sha-256 of its content")
    else:
        p, sha = Path(path), sha256
    with open_source(p, stream) as src:
        header = src.header
        samples = list(header.samples)
        if single is None:  # as the file says: one genome, or a cohort
            single = len(samples) == 1
        kind = "genome" if single else "vcf-file"
        if single and len(samples) != 1:
            raise LoadError(
                p,
                "header",
                f"add-genome takes single-sample files; this one has {len(samples)} samples "
                "(load multi-sample files with load-vcf)",
            )
        for i, name in enumerate(samples):
            if looks_like_cpr(name):
                raise LoadError(
                    p,
                    f"header sample {i + 1}",
                    f"sample name {name!r} looks like a CPR number; refused",
                )
        with db.session() as s:
            ds = s.get(Dataset, dataset_id)
            if ds is None:
                raise NotFound(
                    f"dataset {dataset_id!r} is not registered "
                    "(add it with `genomeport dataset add`)"
                )
            asm = normalize_assembly(assembly or ds.assembly or assembly_from_header(header))
            if not asm:
                raise InvalidInput(f"{p}: cannot tell the assembly; pass --assembly")
            if ds.assembly and normalize_assembly(ds.assembly) != asm:
                raise InvalidInput(
                    f"{p}: assembly {asm} differs from dataset {dataset_id}'s {ds.assembly}"
                )
            row, done = journal.begin(s, kind, dataset_id, p, sha)
            if done:
                return LoadResult(kind, str(p), dataset_id, "unchanged", row.id, row.records)
            load_id, checkpoint = row.id, row.checkpoint
            row.assembly = asm
            # the store row, created race-free and locked: concurrent loads into
            # one dataset reserve their sample indexes one after the other
            store_row(s, dataset_id, asm)
            idx = _reserve_samples(s, dataset_id, samples, load_id)
            boundary = (load_id << PK_LOAD_SHIFT) | (checkpoint << PK_RECORD_SHIFT)
            s.execute(
                sa.delete(BeaconVariant).where(
                    BeaconVariant.load_id == load_id, BeaconVariant.pk >= boundary
                )
            )
            s.execute(
                sa.delete(BeaconAnnotation).where(
                    BeaconAnnotation.load_id == load_id, BeaconAnnotation.variant_pk >= boundary
                )
            )
        ann = _annotation_format(header)
        # a single-sample file may be a gVCF: where its records cover is tracked
        tracker = coverage.Tracker.of_header(header) if len(samples) == 1 else None
        t0 = time.perf_counter()
        try:
            items, max_span = _load_records(
                db,
                p,
                src.lines,
                load_id=load_id,
                dataset_id=dataset_id,
                assembly=asm,
                nsamples=len(samples),
                idx=idx,
                ann=ann,
                checkpoint=checkpoint,
                batch_size=batch_size,
                progress=progress,
                stop_after=stop_after,
                line_based=src.format == "VCF",
                desc=f"{'add-genome' if single else 'load-vcf'} {p.name}",
                tracker=tracker,
            )
        except LoadError:
            _discard(db, load_id, dataset_id)
            raise
        except (ValueError, OSError) as exc:  # pysam decoding errors of a BCF
            _discard(db, load_id, dataset_id)
            raise LoadError(p, "record", str(exc)) from None
        if not (stop_after is not None and items is None):
            read = src.finish()  # a stream: hashed as it was read
            if read is not None and read != sha:
                _discard(db, load_id, dataset_id)
                raise LoadError(
                    p,
                    "file",
                    f"its content is not the one announced (sha-256 {sha[:12]}..., "
                    f"read {read[:12]}...)",
                )
    if stop_after is not None and items is None:
        return LoadResult(kind, str(p), dataset_id, "interrupted", load_id)
    with db.session() as s:
        row = s.get(BeaconLoad, load_id)
        earlier = journal.earlier_loads(s, row)
        max_span = max(row.max_span or 0, max_span)
        records = row.checkpoint
    timings = {"stage": time.perf_counter() - t0}
    t0 = time.perf_counter()
    gaps_of = {idx[0]: tracker.gaps()} if tracker is not None and tracker.gvcf else None
    for attempt in (0, 1):
        try:
            published = publish(
                db,
                load_id,
                dataset_id,
                asm,
                list(zip(samples, idx, strict=True)),
                replace=replace,
                replaces_loads={o.id for o in earlier},
                max_span=max_span,
                gaps_of=gaps_of,
            )
            break
        except NeedsFold:
            if attempt:
                raise
            fold(db, dataset_id, progress=progress)  # then the genomes to replace are folded
        except InvalidInput:
            _discard(db, load_id, dataset_id)
            raise
    timings["publish"] = time.perf_counter() - t0
    if samples and not published.added and not published.replaced:
        # every genome was already there with the same calls: nothing changed
        return LoadResult(kind, str(p), dataset_id, "unchanged", load_id, records)
    if fold_after is not None:
        with db.session() as s:
            waiting = len(pending_loads(s, dataset_id))
        if waiting > fold_after:  # the add is visible already; the fold amortises the merge
            timings["fold"] = fold(db, dataset_id, progress=progress).seconds
    return LoadResult(
        kind,
        str(p),
        dataset_id,
        "resumed" if checkpoint else "loaded",
        published.load_id,
        records,
        published.records,
        replaced=published.replaced,
        timings=timings,
    )


def _discard(db, load_id: int, dataset_id: str) -> None:
    with db.session() as s:
        s.execute(sa.delete(BeaconAnnotation).where(BeaconAnnotation.load_id == load_id))
        s.execute(sa.delete(BeaconVariant).where(BeaconVariant.load_id == load_id))
        s.execute(
            sa.delete(BeaconGenome).where(
                BeaconGenome.load_id == load_id, BeaconGenome.status == "staged"
            )
        )
        s.execute(sa.delete(BeaconLoad).where(BeaconLoad.id == load_id))
        drop_unused_store(s, dataset_id)


def abandon(db, dataset_id: str, sha256: str) -> int:
    """Drop what unfinished loads of this content into ``dataset_id`` staged (a
    load given up for good, as by a rejected upload); the number dropped."""
    with db.session() as s:
        ids = list(
            s.scalars(
                sa.select(BeaconLoad.id).where(
                    BeaconLoad.dataset_id == dataset_id,
                    BeaconLoad.sha256 == sha256,
                    BeaconLoad.kind.in_(("genome", "vcf-file")),
                    BeaconLoad.status == "loading",
                )
            )
        )
    for load_id in ids:
        _discard(db, load_id, dataset_id)
    return len(ids)


_ANNOTATION_COLUMNS = (
    "variant_pk",
    "load_id",
    "gene",
    "effect",
    "impact",
    "feature",
    "hgvs_c",
    "hgvs_p",
    "aa_change",
)
_STRIP_FORMAT_BYTES = re.compile(rb":[^\t]*")
# ALT values that are not alleles of a record: a spanning deletion, no ALT, and
# the gVCF "any other allele" of reference blocks
_NOT_ALLELES = frozenset({"*", ".", "<NON_REF>", "<*>"})


def _gap_sets(section: bytes, fmt: str, idx, identity) -> tuple[BitMap, BitMap]:
    """The samples one and two alleles short of a diploid call at a site
    (haploid, half-missing or missing genotypes); only run when AN shows some."""
    one, two = BitMap(), BitMap()
    tokens = section.decode().split("\t")
    for col, token in enumerate(tokens):
        sample = col if identity else idx[col]
        if not fmt.startswith("GT"):
            two.add(sample)
            continue
        gt = token.split(":", 1)[0]
        gap = 2 - (len(_ALLELE_SPLIT.split(gt)) - gt.count("."))
        if gap == 1:
            one.add(sample)
        elif gap >= 2:
            two.add(sample)
    return one, two


def _load_records(
    db,
    p,
    lines,
    *,
    load_id,
    dataset_id,
    assembly,
    nsamples,
    idx,
    ann,
    checkpoint,
    batch_size,
    progress,
    stop_after,
    line_based,
    desc,
    tracker=None,
):
    variants: list[tuple] = []
    annotations: list[tuple] = []
    rec_no = 0
    max_span = 0
    bar = tqdm(desc=desc, unit=" rec", disable=not progress, initial=checkpoint)
    chrom_cache: dict[str, str] = {}
    identity = idx == list(range(len(idx)))
    template = (
        _SingleTemplate(idx[0])
        if nsamples == 1
        else _DiploidTemplate(nsamples, None if identity else idx)
        if nsamples
        else None
    )
    postgres = db.engine.dialect.name == "postgresql"

    def write(variants, annotations, upto: int, max_span: int) -> None:
        with db.session() as s:
            if postgres:
                # durability comes from the final commit that marks the load done (the
                # WAL is flushed in order); a checkpoint lost in a crash is reloaded
                s.execute(sa.text("SET LOCAL synchronous_commit TO OFF"))
            insert_rows(s, BeaconVariant.__table__, VARIANT_COLUMNS, variants)
            insert_rows(s, BeaconAnnotation.__table__, _ANNOTATION_COLUMNS, annotations)
            row = s.get(BeaconLoad, load_id)
            row.checkpoint = upto
            row.max_span = max(row.max_span or 0, max_span)

    # on PostgreSQL a batch is written while the next one is parsed (the server's
    # COPY into the indexed table costs about what the parse does)
    writer = _Writer(write, background=postgres)

    def flush(upto: int) -> None:
        nonlocal variants, annotations
        writer.put(variants, annotations, upto, max_span)
        bar.update(upto - bar.n)
        variants, annotations = [], []

    try:
        for line_no, raw in lines:
            rec_no += 1
            if rec_no <= checkpoint:
                if tracker is not None:
                    tracker.line(raw)  # its coverage still counts
                continue
            where = f"line {line_no}" if line_based else f"record {line_no}"
            line = raw.rstrip(b"\r\n")
            parts = line.split(b"\t", 9)
            section = parts[9] if len(parts) == 10 else None
            try:
                # the fixed columns decoded at once; the sample columns stay bytes
                head = line if section is None else line[: len(line) - len(section) - 1]
                fields = head.decode().split("\t")
                if section is not None and fields[8] != "GT":
                    section.decode()  # only the GT subfields are read, but all must be text
            except UnicodeDecodeError:
                raise LoadError(p, where, "not UTF-8 text") from None
            if section is not None:
                fields.append(section)
            if len(fields) < 8:
                raise LoadError(
                    p, where, f"expected at least 8 tab-separated columns, got {len(fields)}"
                )
            chrom_raw, pos_s, vid, ref, alt_s, _qual, _filt, info_s = fields[:8]
            try:
                pos = int(pos_s)
            except ValueError:
                raise LoadError(p, where, f"POS {pos_s!r} is not an integer") from None
            if pos < 1:
                raise LoadError(p, where, f"POS {pos} must be >= 1")
            if not _BASES.match(ref):
                raise LoadError(p, where, f"REF {ref!r} is not a sequence of bases")
            alts = alt_s.split(",")
            for a in alts:
                if not _ALT_OK.match(a):
                    raise LoadError(p, where, f"ALT {a!r} is not valid")
            if vid != "." and looks_like_cpr(vid):
                raise LoadError(p, where, f"ID {vid!r} looks like a CPR number; refused")
            chrom = chrom_cache.get(chrom_raw)
            if chrom is None:
                chrom = chrom_cache[chrom_raw] = canonical_chrom(chrom_raw)[0]
            info: dict[str, str] = {}
            if info_s != ".":
                for kv in info_s.split(";"):
                    k, _, v = kv.partition("=")
                    info[k] = v
            start = pos_to_start(pos)
            if tracker is not None:
                tracker.record(
                    chrom, pos, ref, alts, info.get("END"), fields[8] if section else "", section
                )
            n_alt = len(alts)
            # per allele: serialized bytes, a BitMap or a list of sample indexes
            carriers: list = [_NO_CARRIERS] * (n_alt + 1)
            homs: list = [_NO_CARRIERS] * (n_alt + 1)
            ac = [0] * (n_alt + 1)
            hom = [0] * (n_alt + 1)
            het = [0] * (n_alt + 1)
            # per allele (0 = REF), filled in place by the genotype counters
            tallies = (carriers, ac, hom, het, homs)
            an = 0
            if section is not None and nsamples:
                fmt = fields[8]
                an = None
                if fmt.startswith("GT"):
                    # the common layout also proves the number of sample columns
                    if nsamples == 1:
                        gts = section.partition(b":")[0]
                    else:
                        gts = section if fmt == "GT" else _STRIP_FORMAT_BYTES.sub(b"", section)
                    an = template.counts(gts, n_alt, *tallies)
                if an is None:
                    # anything else the general (text) way, which words the errors
                    an = _general_counts(
                        p, where, section.decode(), fmt, nsamples, idx, identity, n_alt, tallies
                    )
            else:
                an = _int(info.get("AN")) or 0
                for i, v in enumerate((info.get("AC") or "").split(",")):
                    if i < n_alt and _int(v) is not None:
                        ac[i + 1] = _int(v)
            if section is not None and nsamples:
                an_gap = 2 * nsamples - an
                gaps = pack_gaps(*_gap_sets(section, fields[8], idx, identity)) if an_gap else None
            else:  # a sites-only VCF: the AN it declares, as a negative gap
                an_gap, gaps = -an, None
            ann_items = (
                list(_parse_annotations(ann, info[ann.key], alts, ref))
                if ann is not None and ann.key in info
                else []
            )
            base = (load_id << PK_LOAD_SHIFT) | ((rec_no - 1) << PK_RECORD_SHIFT)
            ref_upper = ref.upper()
            vcf_id = "" if vid == "." else vid
            for i, alt in enumerate(alts):
                if alt in _NOT_ALLELES or i >= 255:
                    continue
                a = i + 1
                vtype, length, end = classify(ref, alt, info, start)
                if end - start > max_span:
                    max_span = end - start
                pk = base | a
                variants.append(
                    (
                        pk,
                        load_id,
                        dataset_id,
                        assembly,
                        chrom,
                        start,
                        end,
                        ref_upper,
                        alt.upper() if not alt.startswith("<") else alt,
                        vtype,
                        length,
                        vcf_id,
                        hgvs_genomic(chrom, assembly, pos, ref, alt),
                        ac[a],
                        an,
                        hom[a],
                        het[a],
                        (ac[a] / an) if an else 0.0,
                        _serialized(carriers[a]),
                        _serialized(homs[a]),
                        an_gap,
                        gaps,
                    )
                )
                for ai, gene, effect, impact, feature, hgvs_c, hgvs_p in ann_items:
                    if ai != i:
                        continue
                    annotations.append(
                        (
                            pk,
                            load_id,
                            gene[:128],
                            effect[:256],
                            impact[:16],
                            feature[:128],
                            hgvs_c[:512],
                            hgvs_p[:512],
                            aa_short(hgvs_p)[:128],
                        )
                    )
            if len(variants) >= batch_size:
                flush(rec_no)
                if stop_after is not None and rec_no >= stop_after:
                    writer.finish()
                    return None, max_span
        flush(rec_no)
        writer.finish()
    finally:
        writer.close()
        bar.close()
    return len(variants), max_span


class _Writer:
    """Batches handed to ``write`` in order, each committed before the next:
    in one background thread when ``background`` (at most one batch waiting
    besides the one being written), else at once. An error of the thread is
    raised by the next ``put`` or by ``finish``."""

    def __init__(self, write, *, background: bool):
        self.write = write
        self.failed = False  # a batch failed: none after it is written
        self.error: BaseException | None = None  # not yet raised
        self.queue: queue.Queue | None = None
        if background:
            self.queue = queue.Queue(maxsize=1)
            self.thread = threading.Thread(target=self._run, name="beacon-writer", daemon=True)
            self.thread.start()

    def _run(self) -> None:
        while (batch := self.queue.get()) is not None:
            if not self.failed:
                try:
                    self.write(*batch)
                except BaseException as exc:  # noqa: BLE001 - raised in the loading thread
                    self.failed = True
                    self.error = exc

    def _raise(self) -> None:
        if self.error is not None:
            error, self.error = self.error, None
            raise error

    def put(self, *batch) -> None:
        if self.queue is None:
            self.write(*batch)
            return
        self._raise()
        self.queue.put(batch)

    def finish(self) -> None:
        """Wait until every batch is committed (raising the first error)."""
        self.close()
        self._raise()

    def close(self) -> None:
        if self.queue is not None:
            self.queue.put(None)
            self.thread.join()
            self.queue = None


def _general_counts(
    p, where, section: str, fmt: str, nsamples, idx, identity, n_alt, tallies
) -> int:
    """Counts of any genotype layout (haploid, polyploid, multi-digit alleles),
    with an error naming the sample for anything that does not parse."""
    carriers, ac, hom, het, homs = tallies
    carriers[:] = [[] for _ in carriers]
    homs[:] = [[] for _ in homs]
    an = 0
    if section.count("\t") + 1 != nsamples:
        raise LoadError(
            p, where, f"{section.count(chr(9)) + 1} sample columns, header declares {nsamples}"
        )
    if fmt.startswith("GT"):
        gts = section if fmt == "GT" else _STRIP_FORMAT.sub("", section)
        # (the sample columns were counted above: nsamples - 1 tabs)
        if n_alt <= 9 and len(gts) == 4 * nsamples - 1 and gts[3::4].count("\t") == nsamples - 1:
            an = _diploid_counts(gts, nsamples, None if identity else idx, p, where, n_alt, tallies)
            gts = ""  # done: skip the general path below
        else:
            seps = gts.count("|") + gts.count("/")
            an = nsamples + seps - gts.count(".")
        last_pos, last_col = 0, 0
        for m in _NONREF.finditer(gts):
            col = last_col + gts.count("\t", last_pos, m.start())
            last_pos, last_col = m.start(), col
            token = m.group(0)
            try:
                called = [int(a) for a in _ALLELE_SPLIT.split(token) if a != "."]
            except ValueError:
                raise LoadError(
                    p, where, f"sample {col + 1}: genotype {token!r} does not parse"
                ) from None
            missing = token.count(".")
            sample = col if identity else idx[col]
            for a in set(called):
                if a == 0:
                    continue
                if a > n_alt:
                    raise LoadError(
                        p, where, f"sample {col + 1}: allele {a} but only {n_alt} ALT alleles"
                    )
                carriers[a].append(sample)
                if not missing and all(x == a for x in called):
                    hom[a] += 1
                    homs[a].append(sample)
                else:
                    het[a] += 1
            for a in called:
                ac[a] += 1
        ac[0] = 0
    return an
