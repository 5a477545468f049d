#!/usr/bin/env python3
"""Generate the genomeport demo cohort (assembly GPDEMO1) deterministically.

Every output byte is a function of the constants in this file: all randomness
comes from ``random.Random`` instances seeded with fixed strings, nothing reads
the clock, the host name or the output directory, and every path written into a
file is a bare file name.  Running the generator twice (into any directories)
gives byte-identical files for a given pysam/htslib build.

Usage::

    python seed_data/generate.py [--out DIR]

or from Python ``generate(Path(DIR)) -> list[Path]``.  ``expected_counts()``
returns the record counts implied by the parameters below (the README and the
tests use it).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import hashlib
import json
import os
import random
import sys
import tempfile
from pathlib import Path

import pysam
import pysam.bcftools
import pysam.version

# --------------------------------------------------------------------------- parameters

SEED = "genomeport-seed-data-v1"
ASSEMBLY = "GPDEMO1"
REFERENCE = "reference.fa"
CONTIGS: tuple[tuple[str, int], ...] = (("chr1", 50_000), ("chr2", 40_000), ("chr3", 30_000))
# An assembly gap of N bases (0-based half-open); no reads or variants touch it.
N_GAP = ("chr2", 20_000, 20_500)
FASTA_LINE = 60

READ_SAMPLES = ("DK0001", "DK0002", "DK0003")
N_COHORT = 32  # VCF samples DK0001..DK0032 (the read samples come first)
READ_GROUPS_PER_SAMPLE = 2
READ_LENGTH = 100
COVERAGE = 8  # mean read depth of the mapped pairs
FRAGMENT_MEAN, FRAGMENT_SD, FRAGMENT_MIN = 320, 40, 220
PLACED_UNMAPPED_PAIRS_PER_CONTIG = 4  # pairs with one mapped and one placed-unmapped mate
UNPLACED_PAIRS = 50  # pairs with both mates unmapped and no position (reference id -1)

VARIANT_SLOT = 200  # one small variant per slot of this many reference bases
# Kinds of small variant by slot index modulo 20.
MULTI_SNV_SLOTS = (5,)
MULTI_INDEL_SLOTS = (15,)
DELETION_SLOTS = (3, 9, 17)
INSERTION_SLOTS = (7, 12)
# Structural variants: (contig, 0-based start of the base before the event, length, type).
STRUCTURAL_VARIANTS: tuple[tuple[str, int, int, str], ...] = (
    ("chr1", 12_101, 1_500, "DEL"),
    ("chr1", 33_301, 4_000, "DUP"),
    ("chr2", 8_101, 2_500, "INV"),
    ("chr2", 30_101, 800, "DEL"),
    ("chr3", 5_101, 3_000, "DUP"),
    ("chr3", 21_101, 1_200, "INV"),
)

DATASET_ID = "demo"
COLLECTION_DATE_RANGE = ("2019-01-01", 5 * 365)  # first day, span in days

SEX = {
    "female": {"id": "NCIT:C16576", "label": "female"},
    "male": {"id": "NCIT:C20197", "label": "male"},
}
# The five Danish regions, identified by their ISO 3166-2 subdivision codes.
REGIONS = (
    {"id": "ISO3166-2:DK-84", "label": "Region Hovedstaden"},
    {"id": "ISO3166-2:DK-85", "label": "Region Sjælland"},
    {"id": "ISO3166-2:DK-83", "label": "Region Syddanmark"},
    {"id": "ISO3166-2:DK-82", "label": "Region Midtjylland"},
    {"id": "ISO3166-2:DK-81", "label": "Region Nordjylland"},
)
# Conditions: an ICD-10 diagnosis with a matching HPO phenotype (labels as in hp.obo
# release 2025-01-16 and WHO ICD-10).  The third field restricts the sex, if any.
CONDITIONS = (
    ("ICD10:E11", "Type 2 diabetes mellitus", "HP:0000819", "Diabetes mellitus", None),
    ("ICD10:I10", "Essential (primary) hypertension", "HP:0000822", "Hypertension", None),
    ("ICD10:J45", "Asthma", "HP:0002099", "Asthma", None),
    ("ICD10:E66", "Obesity", "HP:0001513", "Obesity", None),
    ("ICD10:G40", "Epilepsy", "HP:0001250", "Seizure", None),
    ("ICD10:F84", "Pervasive developmental disorders", "HP:0000717", "Autism", None),
    ("ICD10:I42", "Cardiomyopathy", "HP:0001638", "Cardiomyopathy", None),
    (
        "ICD10:E78",
        "Disorders of lipoprotein metabolism and other lipidaemias",
        "HP:0003124",
        "Hypercholesterolemia",
        None,
    ),
    ("ICD10:C50", "Malignant neoplasm of breast", "HP:0002664", "Neoplasm", "female"),
    (
        "ICD10:Q21",
        "Congenital malformations of cardiac septa",
        "HP:0001631",
        "Atrial septal defect",
        None,
    ),
    (
        "ICD10:H90",
        "Conductive and sensorineural hearing loss",
        "HP:0000365",
        "Hearing impairment",
        None,
    ),
)
# Phenotypes recorded without a diagnosis.
EXTRA_PHENOTYPES = (
    ("HP:0004322", "Short stature"),
    ("HP:0000505", "Visual impairment"),
    ("HP:0001263", "Global developmental delay"),
    ("HP:0001249", "Intellectual disability"),
)
SAMPLE_ORIGIN = {"id": "UBERON:0000178", "label": "blood"}
BIOSAMPLE_STATUS = {"id": "EFO:0009654", "label": "reference sample"}

BASES = "ACGT"
TRANSITION = {"A": "G", "G": "A", "C": "T", "T": "C"}


def rng(stream: str) -> random.Random:
    """An independent, reproducible random stream (str seeds hash the same in every run)."""
    return random.Random(f"{SEED}/{stream}")


def sample_ids() -> list[str]:
    return [f"DK{i:04d}" for i in range(1, N_COHORT + 1)]


def individual_id(sample: str) -> str:
    return "DKP" + sample[2:]


def read_group_ids(sample: str) -> list[str]:
    return [f"{sample}.L{lane}" for lane in range(1, READ_GROUPS_PER_SAMPLE + 1)]


# --------------------------------------------------------------------------- expected counts


def _gap(contig: str) -> tuple[int, int] | None:
    return (N_GAP[1], N_GAP[2]) if N_GAP[0] == contig else None


def variant_slots(contig: str, length: int) -> list[int]:
    """Indices of the slots that carry a small variant (slots touching the gap are skipped)."""
    gap = _gap(contig)
    slots = []
    for i in range(length // VARIANT_SLOT):
        lo, hi = i * VARIANT_SLOT, (i + 1) * VARIANT_SLOT
        if gap and lo < gap[1] and gap[0] < hi:
            continue
        slots.append(i)
    return slots


def slot_kind(i: int) -> str:
    m = i % 20
    if m in MULTI_SNV_SLOTS:
        return "multi_snv"
    if m in MULTI_INDEL_SLOTS:
        return "multi_indel"
    if m in DELETION_SLOTS:
        return "deletion"
    if m in INSERTION_SLOTS:
        return "insertion"
    return "snv"


def mapped_pairs(contig: str, length: int) -> int:
    gap = _gap(contig)
    usable = length - ((gap[1] - gap[0]) if gap else 0)
    return usable * COVERAGE // (2 * READ_LENGTH)


def expected_counts() -> dict:
    """Record counts implied by the parameters (independent of the simulation itself)."""
    per_contig_mapped = {
        c: 2 * mapped_pairs(c, n) + PLACED_UNMAPPED_PAIRS_PER_CONTIG for c, n in CONTIGS
    }
    per_contig_placed_unmapped = {c: PLACED_UNMAPPED_PAIRS_PER_CONTIG for c, _ in CONTIGS}
    mapped = sum(per_contig_mapped.values())
    placed_unmapped = sum(per_contig_placed_unmapped.values())
    unplaced = 2 * UNPLACED_PAIRS
    kinds: dict[str, int] = {}
    per_contig_variants = {}
    for c, n in CONTIGS:
        slots = variant_slots(c, n)
        for i in slots:
            kinds[slot_kind(i)] = kinds.get(slot_kind(i), 0) + 1
        per_contig_variants[c] = len(slots) + sum(1 for s in STRUCTURAL_VARIANTS if s[0] == c)
    kinds["sv"] = len(STRUCTURAL_VARIANTS)
    return {
        "contigs": {c: n for c, n in CONTIGS},
        "reads": {
            "samples": list(READ_SAMPLES),
            "total": mapped + placed_unmapped + unplaced,
            "mapped": mapped,
            "unmapped": placed_unmapped + unplaced,
            "placed_unmapped": placed_unmapped,
            "unplaced_unmapped": unplaced,
            "per_contig_mapped": per_contig_mapped,
            "per_contig_placed_unmapped": per_contig_placed_unmapped,
        },
        "variants": {
            "samples": N_COHORT,
            "records": sum(per_contig_variants.values()),
            "per_contig": per_contig_variants,
            "multiallelic": kinds.get("multi_snv", 0) + kinds.get("multi_indel", 0),
            "kinds": dict(sorted(kinds.items())),
        },
        "individuals": N_COHORT,
        "biosamples": N_COHORT,
    }


# --------------------------------------------------------------------------- reference


def make_reference() -> dict[str, str]:
    r = rng("reference")
    seqs = {}
    for contig, length in CONTIGS:
        seq = [r.choice(BASES) for _ in range(length)]
        gap = _gap(contig)
        if gap:
            seq[gap[0] : gap[1]] = ["N"] * (gap[1] - gap[0])
        seqs[contig] = "".join(seq)
    return seqs


def write_reference(out: Path, seqs: dict[str, str]) -> list[Path]:
    fa = out / REFERENCE
    lines = []
    for contig, seq in seqs.items():
        lines.append(f">{contig} {ASSEMBLY} synthetic sequence\n")
        lines.extend(seq[i : i + FASTA_LINE] + "\n" for i in range(0, len(seq), FASTA_LINE))
    fa.write_bytes("".join(lines).encode("ascii"))
    _remove(out / (REFERENCE + ".fai"))
    pysam.faidx(str(fa))
    return [fa, out / (REFERENCE + ".fai")]


def md5(seq: str) -> str:
    return hashlib.md5(seq.upper().encode("ascii")).hexdigest()


# --------------------------------------------------------------------------- variants


class Site:
    __slots__ = ("contig", "start", "alleles", "kind", "end", "gts", "qual", "vid")

    def __init__(self, contig, start, alleles, kind, end=None):
        self.contig, self.start, self.alleles, self.kind = contig, start, alleles, kind
        self.end = end if end is not None else start + len(alleles[0])
        self.gts: list[tuple] = []
        self.qual = 0
        self.vid = ""


def _other_base(r: random.Random, base: str, exclude: set[str] = frozenset()) -> str:
    if base not in exclude and r.random() < 0.66:
        t = TRANSITION[base]
        if t not in exclude:
            return t
    return r.choice([b for b in BASES if b != base and b not in exclude])


def _left_aligned_deletion(r: random.Random, ref: str, start: int, lo: int, hi: int) -> int:
    """A deletion length k in [lo, hi] such that deleting ref[start+1:start+1+k] after the
    anchor ref[start] is left-aligned (the last deleted base differs from the anchor)."""
    lengths = list(range(lo, hi + 1))
    r.shuffle(lengths)
    for k in lengths:
        if ref[start + k] != ref[start]:
            return k
    raise RuntimeError(f"no left-aligned deletion at {start}")


def make_sites(seqs: dict[str, str]) -> list[Site]:
    r = rng("variants")
    sites: list[Site] = []
    for contig, length in CONTIGS:
        ref = seqs[contig]
        for i in variant_slots(contig, length):
            start = i * VARIANT_SLOT + 20 + r.randrange(VARIANT_SLOT - 40)
            kind = slot_kind(i)
            base = ref[start]
            if kind == "snv":
                alleles = (base, _other_base(r, base))
            elif kind == "multi_snv":
                a1 = _other_base(r, base)
                alleles = (base, a1, _other_base(r, base, {a1}))
            elif kind == "deletion":
                k = _left_aligned_deletion(r, ref, start, 1, 8)
                alleles = (ref[start : start + k + 1], base)
            elif kind == "insertion":
                ins = "".join(r.choice(BASES) for _ in range(r.randint(1, 8)))
                if ins[-1] == base:  # keep it left-aligned: it must not shift left
                    ins = ins[:-1] + _other_base(r, base)
                alleles = (base, base + ins)
            else:  # multi_indel: a deletion and a substitution of the anchor base
                k = _left_aligned_deletion(r, ref, start, 2, 5)
                span = ref[start : start + k + 1]
                alleles = (span, base, _other_base(r, base) + span[1:])
            sites.append(Site(contig, start, alleles, kind))
        for sv_contig, start, length_sv, svtype in STRUCTURAL_VARIANTS:
            if sv_contig == contig:
                sites.append(
                    Site(
                        contig,
                        start,
                        (ref[start], f"<{svtype}>"),
                        svtype,
                        end=start + 1 + length_sv,
                    )
                )
    order = {c: i for i, (c, _) in enumerate(CONTIGS)}
    sites.sort(key=lambda s: (order[s.contig], s.start))
    _genotype(sites, r)
    for n, s in enumerate(sites, 1):
        s.vid = f"gpd{n:06d}"
    return sites


def _genotype(sites: list[Site], r: random.Random) -> None:
    samples = sample_ids()
    for s in sites:
        n_alt = len(s.alleles) - 1
        common = r.random() < 0.3
        freqs = [r.uniform(0.05, 0.5) if common else r.uniform(0.01, 0.08) for _ in range(n_alt)]
        sv = s.kind in ("DEL", "DUP", "INV")
        gts = []
        for name in samples:
            in_reads = name in READ_SAMPLES
            if sv and in_reads:
                gts.append((0, 0))  # the simulated reads carry no structural variants
                continue
            if not in_reads and r.random() < 0.03:
                gts.append((None, None))
                continue
            gt = []
            for _ in range(2):
                x, allele = r.random(), 0
                for a, f in enumerate(freqs, 1):
                    if x < f:
                        allele = a
                        break
                    x -= f
                gt.append(allele)
            gts.append(tuple(sorted(gt)))
        # Every ALT allele is carried by someone.
        for a in range(1, n_alt + 1):
            if not any(a in gt for gt in gts):
                candidates = [
                    j
                    for j, name in enumerate(samples)
                    if gts[j][0] is not None and not (sv and name in READ_SAMPLES)
                ]
                j = r.choice(candidates)
                gts[j] = tuple(sorted((gts[j][0], a)))
        s.gts = gts
        s.qual = r.randint(30, 99)


# --------------------------------------------------------------------------- reads


def haplotype(ref: str, events: list[tuple[int, str, str]]) -> tuple[str, list[int]]:
    """Apply (start, ref_allele, alt_allele) events; return the sequence and, per base,
    its reference offset (-1 for inserted bases)."""
    seq: list[str] = []
    pos: list[int] = []
    cur = 0
    for start, ra, aa in events:
        seq.append(ref[cur:start])
        pos.extend(range(cur, start))
        if len(aa) >= len(ra):  # substitution, or ra is a prefix of aa (insertion)
            seq.append(aa)
            pos.extend(range(start, start + len(ra)))
            pos.extend([-1] * (len(aa) - len(ra)))
        else:  # deletion: aa is a prefix of ra
            seq.append(aa)
            pos.extend(range(start, start + len(aa)))
        cur = start + len(ra)
    seq.append(ref[cur:])
    pos.extend(range(cur, len(ref)))
    return "".join(seq), pos


def _quals(r: random.Random, n: int) -> list[int]:
    out = []
    for _ in range(n):
        x = r.random()
        out.append(37 if x < 0.9 else 25 if x < 0.98 else 11)
    return out


def align(ref: str, bases: list[str], refpos: list[int]) -> tuple[int, list, int]:
    """CIGAR and NM for a haplotype slice; returns (reference start, cigartuples, NM)."""
    ops: list[list[int]] = []

    def push(op: int, n: int) -> None:
        if ops and ops[-1][0] == op:
            ops[-1][1] += n
        else:
            ops.append([op, n])

    first = next(i for i, p in enumerate(refpos) if p >= 0)
    last = max(i for i, p in enumerate(refpos) if p >= 0)
    nm = 0
    if first:
        push(4, first)  # S
    prev = None
    for i in range(first, last + 1):
        p = refpos[i]
        if p < 0:
            push(1, 1)  # I
            nm += 1
            continue
        if prev is not None and p > prev + 1:
            push(2, p - prev - 1)  # D
            nm += p - prev - 1
        push(0, 1)  # M
        if bases[i] != ref[p]:
            nm += 1
        prev = p
    if last < len(refpos) - 1:
        push(4, len(refpos) - 1 - last)
    return refpos[first], [tuple(o) for o in ops], nm


def _ref_end(start: int, cigar: list) -> int:
    return start + sum(n for op, n in cigar if op in (0, 2))


class Read:
    __slots__ = (
        "name",
        "flag",
        "tid",
        "start",
        "mapq",
        "cigar",
        "mtid",
        "mstart",
        "tlen",
        "seq",
        "qual",
        "nm",
        "rg",
        "mcigar",
    )

    def __init__(self, **kw):
        for k in self.__slots__:
            setattr(self, k, kw.get(k))


def simulate_reads(sample: str, seqs: dict[str, str], sites: list[Site]) -> list[Read]:
    r = rng(f"reads/{sample}")
    col = sample_ids().index(sample)
    rgs = read_group_ids(sample)
    reads: list[Read] = []
    serial = 0

    def name() -> str:
        nonlocal serial
        serial += 1
        return f"{sample}:{serial:06d}"

    def sequence(bases: list[str], q: list[int]) -> str:
        out = []
        for b, qq in zip(bases, q, strict=False):
            if b != "N" and r.random() < (0.02 if qq < 20 else 0.001):
                b = r.choice([x for x in BASES if x != b])
            out.append(b)
        return "".join(out)

    for tid, (contig, length) in enumerate(CONTIGS):
        ref = seqs[contig]
        gap = _gap(contig)
        haps = []
        for h in range(2):
            events = [
                (s.start, s.alleles[0], s.alleles[s.gts[col][h]])
                for s in sites
                if s.contig == contig and s.kind not in ("DEL", "DUP", "INV") and s.gts[col][h]
            ]
            haps.append(haplotype(ref, events))

        def fragment(haps=haps, gap=gap) -> tuple[str, list[int], int]:
            for _ in range(1000):
                hseq, hpos = haps[r.randrange(2)]
                flen = max(FRAGMENT_MIN, int(r.gauss(FRAGMENT_MEAN, FRAGMENT_SD)))
                a = r.randrange(len(hseq) - flen)
                lo = next(p for p in hpos[a : a + flen] if p >= 0)
                hi = max(p for p in hpos[a : a + flen] if p >= 0)
                if gap and lo < gap[1] and gap[0] <= hi:
                    continue
                return hseq[a : a + flen], hpos[a : a + flen], flen
            raise RuntimeError("no fragment outside the assembly gap")

        for _ in range(mapped_pairs(contig, length)):
            fseq, fpos, flen = fragment()
            qname, rg = name(), r.choice(rgs)
            mates = []
            for lo in (0, flen - READ_LENGTH):
                bases, refpos = list(fseq[lo : lo + READ_LENGTH]), fpos[lo : lo + READ_LENGTH]
                q = _quals(r, READ_LENGTH)
                s = sequence(bases, q)
                start, cigar, nm = align(ref, list(s), refpos)
                mapq = 60 if r.random() < 0.95 else r.randrange(60)
                mates.append([start, cigar, nm, s, q, mapq])
            first_is_r1 = r.random() < 0.5
            left, right = mates
            span_lo = min(left[0], right[0])
            span_hi = max(_ref_end(left[0], left[1]), _ref_end(right[0], right[1]))
            tlen = span_hi - span_lo
            for k, (me, mate) in enumerate(((left, right), (right, left))):
                is_r1 = (k == 0) == first_is_r1
                flag = 0x1 | 0x2 | (0x40 if is_r1 else 0x80)
                flag |= 0x10 if k == 1 else 0x20
                reads.append(
                    Read(
                        name=qname,
                        flag=flag,
                        tid=tid,
                        start=me[0],
                        mapq=me[5],
                        cigar=me[1],
                        mtid=tid,
                        mstart=mate[0],
                        tlen=tlen if k == 0 else -tlen,
                        seq=me[3],
                        qual=me[4],
                        nm=me[2],
                        rg=rg,
                        mcigar=mate[1],
                    )
                )

        for _ in range(PLACED_UNMAPPED_PAIRS_PER_CONTIG):
            fseq, fpos, flen = fragment()
            qname, rg = name(), r.choice(rgs)
            q = _quals(r, READ_LENGTH)
            s = sequence(list(fseq[:READ_LENGTH]), q)
            start, cigar, nm = align(ref, list(s), fpos[:READ_LENGTH])
            mapped_r1 = r.random() < 0.5
            # both mates at the mapped one's position; a field left out is None
            pair = dict(name=qname, tid=tid, start=start, mtid=tid, mstart=start, tlen=0, rg=rg)
            mapped_flag = 0x1 | 0x8 | (0x40 if mapped_r1 else 0x80)
            reads.append(Read(**pair, flag=mapped_flag, mapq=60, cigar=cigar, seq=s, qual=q, nm=nm))
            junk = "".join(r.choice(BASES) for _ in range(READ_LENGTH))
            junk_q = _quals(r, READ_LENGTH)
            unmapped_flag = 0x1 | 0x4 | (0x80 if mapped_r1 else 0x40)
            reads.append(
                Read(**pair, flag=unmapped_flag, mapq=0, seq=junk, qual=junk_q, mcigar=cigar)
            )

    reads.sort(key=lambda x: (x.tid, x.start, x.name, x.flag))
    for _ in range(UNPLACED_PAIRS):
        qname, rg = name(), r.choice(rgs)
        for flag in (0x1 | 0x4 | 0x8 | 0x40, 0x1 | 0x4 | 0x8 | 0x80):
            reads.append(
                Read(
                    name=qname,
                    flag=flag,
                    tid=-1,
                    start=-1,
                    mapq=0,
                    cigar=None,
                    mtid=-1,
                    mstart=-1,
                    tlen=0,
                    seq="".join(r.choice(BASES) for _ in range(READ_LENGTH)),
                    qual=_quals(r, READ_LENGTH),
                    nm=None,
                    rg=rg,
                    mcigar=None,
                )
            )
    return reads


def sam_header(sample: str, seqs: dict[str, str]) -> dict:
    return {
        "HD": {"VN": "1.6", "SO": "coordinate"},
        "SQ": [
            {"SN": c, "LN": n, "AS": ASSEMBLY, "M5": md5(seqs[c]), "UR": REFERENCE}
            for c, n in CONTIGS
        ],
        "RG": [
            {
                "ID": rg,
                "SM": sample,
                "LB": f"{sample}.lib1",
                "PL": "ILLUMINA",
                "PU": f"GPDFC01.{rg.rsplit('.L', 1)[1]}.{sample}",
            }
            for rg in read_group_ids(sample)
        ],
        "CO": [f"genomeport demo cohort: simulated reads on the synthetic assembly {ASSEMBLY}"],
    }


def write_reads(out: Path, sample: str, seqs: dict[str, str], reads: list[Read]) -> list[Path]:
    header = pysam.AlignmentHeader.from_dict(sam_header(sample, seqs))
    bam, cram = out / f"{sample}.bam", out / f"{sample}.cram"
    for p in (bam, cram, out / f"{sample}.bam.bai", out / f"{sample}.cram.crai"):
        _remove(p)
    # htslib copies the CRAM file name into the file definition: give it a bare name.  Given
    # a reference_filename it would also rewrite every @SQ UR to that file's absolute path, so
    # the reference is found by M5 through REF_PATH instead and UR stays the bare file name.
    with _cwd(out), _ref_path(seqs):
        with (
            pysam.AlignmentFile(bam.name, "wb", header=header) as fb,
            pysam.AlignmentFile(
                cram.name, "wc", header=header, format_options=[b"version=3.0"]
            ) as fc,
        ):
            for rd in reads:
                a = pysam.AlignedSegment(header)
                a.query_name = rd.name
                a.flag = rd.flag
                a.reference_id = rd.tid
                a.reference_start = rd.start
                a.mapping_quality = rd.mapq
                if rd.cigar:
                    a.cigartuples = rd.cigar
                a.next_reference_id = rd.mtid
                a.next_reference_start = rd.mstart
                a.template_length = rd.tlen
                a.query_sequence = rd.seq
                a.query_qualities = pysam.qualitystring_to_array(
                    "".join(chr(q + 33) for q in rd.qual)
                )
                tags = []
                if rd.nm is not None:
                    tags.append(("NM", rd.nm, "i"))
                if rd.mcigar:
                    tags.append(
                        ("MC", "".join(f"{n}{'MIDNSHP=X'[op]}" for op, n in rd.mcigar), "Z")
                    )
                tags.append(("RG", rd.rg, "Z"))
                a.set_tags(tags)
                fb.write(a)
                fc.write(a)
        pysam.index(bam.name)
        pysam.index(cram.name)
    return [bam, out / f"{sample}.bam.bai", cram, out / f"{sample}.cram.crai"]


def coverage(reads: list[Read], n_contigs: int) -> list[list[int]]:
    """Per-contig per-base depth of mapped reads."""
    diff = [[0] * (n + 1) for _, n in CONTIGS[:n_contigs]]
    for rd in reads:
        if rd.tid < 0 or rd.flag & 0x4:
            continue
        diff[rd.tid][rd.start] += 1
        diff[rd.tid][_ref_end(rd.start, rd.cigar)] -= 1
    cov = []
    for d in diff:
        run, row = 0, []
        for x in d[:-1]:
            run += x
            row.append(run)
        cov.append(row)
    return cov


# --------------------------------------------------------------------------- VCF / BCF


def vcf_header(seqs: dict[str, str]) -> pysam.VariantHeader:
    h = pysam.VariantHeader()
    h.add_line(f"##reference={REFERENCE}")
    for c, n in CONTIGS:
        h.add_line(f"##contig=<ID={c},length={n},assembly={ASSEMBLY},md5={md5(seqs[c])}>")
    for svtype, desc in (("DEL", "Deletion"), ("DUP", "Duplication"), ("INV", "Inversion")):
        h.add_line(f'##ALT=<ID={svtype},Description="{desc}">')
    h.add_line(
        '##INFO=<ID=AC,Number=A,Type=Integer,Description="Allele count in genotypes, '
        'for each ALT allele">'
    )
    h.add_line(
        '##INFO=<ID=AN,Number=1,Type=Integer,Description="Total number of alleles in '
        'called genotypes">'
    )
    h.add_line(
        '##INFO=<ID=AF,Number=A,Type=Float,Description="Allele frequency, for each ALT allele">'
    )
    h.add_line('##INFO=<ID=SVTYPE,Number=1,Type=String,Description="Type of structural variant">')
    h.add_line(
        '##INFO=<ID=SVLEN,Number=A,Type=Integer,Description="Length of the structural '
        'variant (negative for deletions)">'
    )
    h.add_line(
        '##INFO=<ID=END,Number=1,Type=Integer,Description="End position of the '
        'variant (1-based, inclusive)">'
    )
    h.add_line('##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">')
    h.add_line('##FORMAT=<ID=DP,Number=1,Type=Integer,Description="Read depth">')
    for s in sample_ids():
        h.add_sample(s)
    return h


def write_variants(
    out: Path, seqs: dict[str, str], sites: list[Site], depth: dict[str, list[list[int]]]
) -> list[Path]:
    header = vcf_header(seqs)
    vcf, bcf = out / "cohort.vcf.gz", out / "cohort.bcf"
    for p in (vcf, bcf, out / "cohort.vcf.gz.tbi", out / "cohort.bcf.csi"):
        _remove(p)
    r = rng("depth")
    order = {c: i for i, (c, _) in enumerate(CONTIGS)}
    samples = sample_ids()
    with _cwd(out):
        with (
            pysam.VariantFile(vcf.name, "wz", header=header) as fv,
            pysam.VariantFile(bcf.name, "wb", header=header) as fbcf,
        ):
            for s in sites:
                where = dict(contig=s.contig, start=s.start, stop=s.end, alleles=s.alleles)
                rec = fv.new_record(**where, id=s.vid, qual=s.qual, filter="PASS")
                called = [a for gt in s.gts for a in gt if a is not None]
                an = len(called)
                ac = [called.count(a) for a in range(1, len(s.alleles))]
                rec.info["AC"] = ac
                rec.info["AN"] = an
                rec.info["AF"] = [x / an for x in ac]
                if s.kind in ("DEL", "DUP", "INV"):
                    rec.info["SVTYPE"] = s.kind
                    length = s.end - s.start - 1
                    rec.info["SVLEN"] = [-length if s.kind == "DEL" else length]
                for j, name in enumerate(samples):
                    call = rec.samples[name]
                    call["GT"] = s.gts[j]
                    if name in depth:
                        call["DP"] = depth[name][order[s.contig]][s.start]
                    elif s.gts[j][0] is not None:
                        call["DP"] = r.randint(18, 45)
                fv.write(rec)
                fbcf.write(rec)
        pysam.tabix_index(vcf.name, preset="vcf", force=True)
        pysam.bcftools.index("--csi", bcf.name)
    return [vcf, out / "cohort.vcf.gz.tbi", bcf, out / "cohort.bcf.csi"]


# --------------------------------------------------------------------------- metadata (BFF)


def _iso_date(day_offset: int) -> str:
    first = datetime.date.fromisoformat(COLLECTION_DATE_RANGE[0])
    return (first + datetime.timedelta(days=day_offset)).isoformat()


def make_metadata() -> dict[str, list]:
    r = rng("metadata")
    individuals, biosamples = [], []
    for sample in sample_ids():
        sex = r.choice(("female", "male"))
        region = r.choice(REGIONS)
        age = r.randint(18, 85)
        n_cond = r.choices((0, 1, 2), weights=(3, 4, 2))[0]
        allowed = [c for c in CONDITIONS if c[4] in (None, sex)]
        conditions = sorted(r.sample(allowed, n_cond), key=lambda c: c[0])
        diseases = [
            {
                "diseaseCode": {"id": c[0], "label": c[1]},
                "ageOfOnset": {"iso8601duration": f"P{r.randint(max(1, age - 40), age)}Y"},
            }
            for c in conditions
        ]
        features = [{"featureType": {"id": c[2], "label": c[3]}} for c in conditions]
        if r.random() < 0.25:
            hp, label = r.choice(EXTRA_PHENOTYPES)
            features.append({"featureType": {"id": hp, "label": label}})
        ind = {"id": individual_id(sample), "sex": dict(SEX[sex]), "geographicOrigin": dict(region)}
        if diseases:
            ind["diseases"] = diseases
        if features:
            ind["phenotypicFeatures"] = features
        individuals.append(ind)
        biosamples.append(
            {
                "id": sample,
                "individualId": individual_id(sample),
                "biosampleStatus": dict(BIOSAMPLE_STATUS),
                "sampleOriginType": dict(SAMPLE_ORIGIN),
                "collectionDate": _iso_date(r.randrange(COLLECTION_DATE_RANGE[1])),
                "collectionMoment": f"P{age}Y",
            }
        )
    datasets = [
        {
            "id": DATASET_ID,
            "name": "genomeport demo cohort",
            "description": (
                f"Synthetic demo cohort on the synthetic assembly {ASSEMBLY}: "
                f"{N_COHORT} fictional individuals, one blood biosample each, a "
                f"multi-sample VCF and reads for {len(READ_SAMPLES)} of them. "
                "Generated by seed_data/generate.py; it describes no real person."
            ),
            "createDateTime": "2025-01-01T00:00:00Z",
            "updateDateTime": "2025-01-01T00:00:00Z",
            "version": "v1.0",
            "dataUseConditions": {
                "duoDataUse": [
                    {"id": "DUO:0000042", "label": "general research use", "version": "17-07-2016"}
                ]
            },
            "info": {"assembly": ASSEMBLY},
        }
    ]
    cohorts = [_cohort(individuals, biosamples)]
    return {
        "individuals": individuals,
        "biosamples": biosamples,
        "datasets": datasets,
        "cohorts": cohorts,
    }


def _cohort(individuals: list[dict], biosamples: list[dict]) -> dict:
    def dist(values):
        out: dict[str, int] = {}
        for v in values:
            out[v] = out.get(v, 0) + 1
        return dict(sorted(out.items()))

    ages = [int(b["collectionMoment"][1:-1]) for b in biosamples]
    n = len(individuals)
    with_disease = [i for i in individuals if i.get("diseases")]
    return {
        "id": f"{DATASET_ID}-cohort",
        "name": "genomeport demo cohort",
        "cohortType": "study-defined",
        "cohortSize": n,
        "cohortDataTypes": [
            {"id": "OGMS:0000015", "label": "clinical history"},
            {"id": "OBI:0000070", "label": "genotyping assay"},
        ],
        "inclusionCriteria": {
            "ageRange": {
                "start": {"iso8601duration": f"P{min(ages)}Y"},
                "end": {"iso8601duration": f"P{max(ages)}Y"},
            },
            "genders": [SEX["female"], SEX["male"]],
            "locations": list(REGIONS),
        },
        "collectionEvents": [
            {
                "eventGenders": {
                    "availability": True,
                    "availabilityCount": n,
                    "distribution": {"genders": dist(i["sex"]["label"] for i in individuals)},
                },
                "eventLocations": {
                    "availability": True,
                    "availabilityCount": n,
                    "distribution": {
                        "locations": dist(i["geographicOrigin"]["label"] for i in individuals)
                    },
                },
                "eventDiseases": {
                    "availability": True,
                    "availabilityCount": len(with_disease),
                    "distribution": {
                        "diseases": dist(
                            d["diseaseCode"]["id"] for i in with_disease for d in i["diseases"]
                        )
                    },
                },
            }
        ],
    }


def write_json(path: Path, obj) -> Path:
    path.write_bytes((json.dumps(obj, indent=2, ensure_ascii=False) + "\n").encode("utf-8"))
    return path


# --------------------------------------------------------------------------- README / sums


def write_readme(out: Path, files: list[Path], counts: dict) -> Path:
    rc, vc = counts["reads"], counts["variants"]
    contigs = ", ".join(f"{c} ({n:,} bp)" for c, n in CONTIGS)
    gap = f"{N_GAP[0]}:{N_GAP[1] + 1}-{N_GAP[2]}"
    sizes = {p.name: p.stat().st_size for p in files}
    reads_note = (
        f"{rc['total']:,} records: {rc['mapped']:,} mapped "
        f"({', '.join(f'{c} {n:,}' for c, n in rc['per_contig_mapped'].items())}), "
        f"{rc['placed_unmapped']} placed unmapped, "
        f"{rc['unplaced_unmapped']} unplaced unmapped at the end"
    )
    rows = [
        (
            REFERENCE,
            "`write_reference` (seeded random bases, 60 per line)",
            f"{len(CONTIGS)} contigs; N gap {gap}",
        ),
        (REFERENCE + ".fai", "`pysam.faidx`", f"{len(CONTIGS)} lines"),
    ]
    for s in READ_SAMPLES:
        rows += [
            (f"{s}.bam", "`simulate_reads` + `write_reads` (pysam.AlignmentFile `wb`)", reads_note),
            (f"{s}.bam.bai", "`pysam.index`", "BAI"),
            (
                f"{s}.cram",
                f"`write_reads` (pysam.AlignmentFile `wc`, CRAM 3.0, reference `{REFERENCE}`)",
                "same records as the BAM",
            ),
            (f"{s}.cram.crai", "`pysam.index`", "CRAI"),
        ]
    kinds = ", ".join(f"{k} {n}" for k, n in vc["kinds"].items() if k != "sv")
    per_contig = ", ".join(f"{c} {n}" for c, n in vc["per_contig"].items())
    rows += [
        (
            "cohort.vcf.gz",
            "`make_sites` + `write_variants` (pysam.VariantFile `wz`, BGZF)",
            f"{vc['records']} records ({per_contig});"
            f" {kinds}, sv {vc['kinds']['sv']}; {vc['multiallelic']} multi-allelic;"
            f" {vc['samples']} samples",
        ),
        ("cohort.vcf.gz.tbi", "`pysam.tabix_index(preset='vcf')`", "TBI"),
        ("cohort.bcf", "`write_variants` (pysam.VariantFile `wb`)", "same records as the VCF"),
        ("cohort.bcf.csi", "`pysam.bcftools.index('--csi')`", "CSI"),
        (
            "individuals.bff.json",
            "`make_metadata` (Beacon v2 BFF)",
            f"{counts['individuals']} individuals",
        ),
        (
            "biosamples.bff.json",
            "`make_metadata` (Beacon v2 BFF)",
            f"{counts['biosamples']} biosamples",
        ),
        ("datasets.bff.json", "`make_metadata` (Beacon v2 BFF)", f"1 dataset `{DATASET_ID}`"),
        ("cohorts.bff.json", "`make_metadata` (Beacon v2 BFF)", f"1 cohort `{DATASET_ID}-cohort`"),
    ]
    table = ["| File | Made by | Size (bytes) | Contents |", "|---|---|---:|---|"]
    table += [f"| `{f}` | {how} | {sizes[f]:,} | {what} |" for f, how, what in rows]
    regions = ", ".join(f"{x['label']} (`{x['id']}`)" for x in REGIONS)
    text = f"""# seed_data: the genomeport demo cohort

A small synthetic cohort that genomeport generates itself. Nothing in it describes a
real person or comes from a real genome. **This file is written by `generate.py`; edit
the generator, not this file.**

```
python seed_data/generate.py            # rewrites the files in seed_data/
python seed_data/generate.py --out DIR  # writes them into DIR
```

The generator is deterministic: every random choice comes from `random.Random` streams
seeded with the constant `SEED`, nothing reads the clock, the host or the output
directory, and files only ever name other files by bare name (for example
`UR:{REFERENCE}`). Two runs give byte-identical files (see `SHA256SUMS`;
`tests/unit/test_seed_data.py` checks it) for the pysam build in use ({_pysam_line()}).

## Assembly and samples

- Assembly **{ASSEMBLY}** (synthetic; it is not GRCh38): {contigs}. Contig names,
  lengths and MD5s appear in the BAM/CRAM `@SQ` lines (`AS:{ASSEMBLY}`, `M5`, `UR:{REFERENCE}`)
  and the VCF `##contig` lines.
- Read samples: {", ".join(READ_SAMPLES)}; read groups `<sample>.L1`, `<sample>.L2`
  (`SM` = sample id).
- VCF samples: DK0001 .. DK{N_COHORT:04d} ({N_COHORT}; the read samples first). Biosample ids
  are the sample ids; each belongs to individual `DKP` + the same four digits (DK0001 ->
  DKP0001).
- Dataset `{DATASET_ID}`; cohort `{DATASET_ID}-cohort`.

## Files

{chr(10).join(table)}

`SHA256SUMS` lists the SHA-256 of every file above and of this README
(`cd seed_data && sha256sum -c SHA256SUMS`).

## What the data contain

- Reads: {READ_LENGTH} bp paired-end, fragment {FRAGMENT_MEAN}±{FRAGMENT_SD} bp, about
  {COVERAGE}x depth, sampled from the two haplotypes each read sample carries according to its
  VCF genotypes (SNVs, indels and multi-allelic sites; not the structural variants, which the
  read samples do not carry), with about 0.1-2% sequencing errors depending on base quality.
  Tags `NM` (edit distance), `MC` (mate CIGAR, paired mapped mates) and `RG`. MAPQ is 60 for
  95% of reads, random below 60 for the rest. Per contig {PLACED_UNMAPPED_PAIRS_PER_CONTIG}
  pairs have one unmapped mate placed at its mapped mate's position; {UNPLACED_PAIRS} pairs
  ({2 * UNPLACED_PAIRS} reads) are unplaced (reference id -1) at the end of each file.
- CRAM decoding needs the reference: pass `{REFERENCE}` (for example
  `samtools view -T seed_data/{REFERENCE}` or `pysam.AlignmentFile(..., reference_filename=...)`).
  On decoding htslib recomputes `NM` (equal to the BAM's) and adds `MD`.
- Variants: one small variant per {VARIANT_SLOT} bp slot ({kinds}), plus
  {len(STRUCTURAL_VARIANTS)} structural variants with symbolic ALTs (`<DEL>`, `<DUP>`, `<INV>`)
  and `SVTYPE`, `SVLEN`, `END`. INFO `AC`, `AN`, `AF` are computed from the genotypes;
  FORMAT `GT` (unphased, about 3% missing outside the read samples) and `DP` (the simulated
  read depth for the read samples). Variant ids `gpd000001`...; `QUAL` random 30-99,
  `FILTER` PASS.
- Metadata (Beacon v2 Beacon-Friendly Format): `sex` (NCIT:C16576 female, NCIT:C20197 male),
  `geographicOrigin` one of the five Danish regions by ISO 3166-2 code ({regions}),
  `phenotypicFeatures` (HPO terms, labels from hp.obo 2025-01-16), `diseases` (ICD-10
  `diseaseCode` with `ageOfOnset`); biosamples with `collectionMoment` (age at collection,
  ISO 8601 duration such as `P45Y`), `collectionDate`, `sampleOriginType` blood
  (UBERON:0000178), `biosampleStatus` reference sample (EFO:0009654).

## Facts for tests

Counted from the files above with pysam (regions 1-based inclusive, as samtools takes them).

{_facts(out)}
"""
    path = out / "README.md"
    path.write_bytes(text.encode("utf-8"))
    return path


FACT_REGIONS = (("chr1", 10_001, 12_000), ("chr2", 19_001, 21_500), ("chr3", 1, 30_000))


def _facts(out: Path) -> str:
    lines = ["| Query | " + " | ".join(READ_SAMPLES) + " |", "|---|" + "---:|" * len(READ_SAMPLES)]
    for contig, first, last in FACT_REGIONS:
        row = []
        for sample in READ_SAMPLES:
            with pysam.AlignmentFile(str(out / f"{sample}.bam")) as f:
                row.append(f.count(contig, first - 1, last))
        lines.append(
            f"| reads overlapping `{contig}:{first}-{last}` | "
            + " | ".join(f"{n:,}" for n in row)
            + " |"
        )
    lines += ["", "| Query | cohort.vcf.gz |", "|---|---:|"]
    with pysam.VariantFile(str(out / "cohort.vcf.gz")) as v:
        for contig, first, last in FACT_REGIONS:
            n = sum(1 for _ in v.fetch(contig, first - 1, last))
            lines.append(f"| records overlapping `{contig}:{first}-{last}` | {n} |")
        lines += [
            "",
            "Structural variants:",
            "",
            "| CHROM | POS | END | ID | ALT | AC |",
            "|---|---:|---:|---|---|---:|",
        ]
        first_multi = None
        for rec in v.fetch():
            if rec.info.get("SVTYPE"):
                lines.append(
                    f"| {rec.chrom} | {rec.pos} | {rec.stop} | {rec.id} | "
                    f"`{rec.alts[0]}` | {rec.info['AC'][0]} |"
                )
            elif first_multi is None and len(rec.alts) > 1:
                first_multi = rec
    if first_multi is not None:
        r = first_multi
        lines += [
            "",
            f"First multi-allelic record: `{r.chrom}:{r.pos}` `{r.ref}` -> "
            f"`{','.join(r.alts)}` ({r.id}, AC={','.join(map(str, r.info['AC']))}).",
        ]
    return "\n".join(lines)


def _pysam_line() -> str:
    return f"pysam {pysam.__version__}, htslib {pysam.version.__htslib_version__}"


def write_sums(out: Path, files: list[Path]) -> Path:
    lines = [f"{hashlib.sha256(p.read_bytes()).hexdigest()}  {p.name}\n" for p in files]
    path = out / "SHA256SUMS"
    path.write_bytes("".join(lines).encode("ascii"))
    return path


# --------------------------------------------------------------------------- driver


class _cwd:
    def __init__(self, path: Path):
        self.path, self.old = path, None

    def __enter__(self):
        self.old = os.getcwd()
        os.chdir(self.path)

    def __exit__(self, *exc):
        os.chdir(self.old)


@contextlib.contextmanager
def _ref_path(seqs: dict[str, str]):
    """Point htslib's REF_PATH at a temporary MD5-named sequence cache (and no REF_CACHE)."""
    saved = {k: os.environ.get(k) for k in ("REF_PATH", "REF_CACHE")}
    with tempfile.TemporaryDirectory(prefix="gp-ref-") as tmp:
        for seq in seqs.values():
            (Path(tmp) / md5(seq)).write_bytes(seq.upper().encode("ascii"))
        os.environ["REF_PATH"] = os.path.join(tmp, "%s")
        os.environ.pop("REF_CACHE", None)
        try:
            yield
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v


def _remove(path: Path) -> None:
    path.unlink(missing_ok=True)


def generate(out_dir: Path) -> list[Path]:
    """Write the whole cohort into out_dir; return the files written, in a fixed order.

    While it runs it briefly changes the working directory and REF_PATH (htslib takes
    file names and the reference lookup from them), so do not call it from a thread of a
    process doing other file work."""
    out = Path(out_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    seqs = make_reference()
    files = write_reference(out, seqs)
    sites = make_sites(seqs)
    depth = {}
    for sample in READ_SAMPLES:
        reads = simulate_reads(sample, seqs, sites)
        depth[sample] = coverage(reads, len(CONTIGS))
        files += write_reads(out, sample, seqs, reads)
    files += write_variants(out, seqs, sites, depth)
    meta = make_metadata()
    for name in ("individuals", "biosamples", "datasets", "cohorts"):
        files.append(write_json(out / f"{name}.bff.json", meta[name]))
    files.append(write_readme(out, files, expected_counts()))
    files.append(write_sums(out, files))
    return files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--out",
        type=Path,
        default=Path(__file__).resolve().parent,
        help="output directory (default: the directory of this script)",
    )
    args = parser.parse_args(argv)
    for p in generate(args.out):
        print(f"{p.stat().st_size:>10}  {p.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
