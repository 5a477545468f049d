"""Frequency-only datasets: ``genomeport beacon load-frequencies`` and their g_variants.

Some cohorts are shared only in aggregate (the Genome of Europe does so): a
sites-only VCF whose INFO fields give allele counts per population. This
module reads those fields, stores one row per ALT allele with its counts per
population (``beacon_af_variants``) and answers g_variants from them. No
genotype, sample or individual is read or stored, so such a dataset has no
individual-level endpoints: only g_variants answers, with
``frequencyInPopulations``.

The INFO fields read, per population ``P`` (``AC_DK``, ``AN_DK_F``), are the
names bcftools ``+fill-tags -S`` and gnomAD-style files write::

    AC_P       alternate allele count            (Number=A)
    AN_P       allele number                     (Number=1)
    AF_P       frequency (only used when AC or AN is missing)
    AC_Hom_P   alleles in homozygous genotypes   (bcftools: 2 per individual)
    AC_Het_P   alleles in heterozygous genotypes (bcftools: 1 per individual)
    AC_Hemi_P  alleles in hemizygous genotypes
    nhomalt_P  homozygous individuals            (gnomAD)

and ``AC``/``AN``/... without a suffix for the whole cohort. A mapping file
(YAML or JSON) names other fields: ``{label: {AC: field, AN: field, AF: field,
nhomalt: field, AC_Hom: field, AC_Het: field, AC_Hemi: field}}``; with one,
only the populations it names are read.

Below the record tier the tier rule of ``server.beacon.tiers`` holds: an
allele is visible only when at least ``beacon_count_threshold`` people carry
it (its carriers are the heterozygous plus homozygous individuals where the
file gives them, otherwise the fewest people its allele count needs), and
every count shown is thresholded and rounded.

The load is one transaction: the file is all there, or none of it is.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
import yaml
from tqdm import tqdm

from server.beacon import journal
from server.beacon.engine import Context, variant_document
from server.beacon.frequencies import _entry
from server.beacon.journal import LoadError, LoadResult
from server.beacon.refs import (
    assembly_from_header,
    canonical_chrom,
    normalize_assembly,
)
from server.beacon.tables import BeaconFrequency
from server.beacon.vcf import classify
from server.db.tables import Dataset
from server.errors import InvalidInput, NotFound

KIND = "frequencies"
COUNTS = ("AC", "AN", "AF", "nhomalt", "AC_Hom", "AC_Het", "AC_Hemi")
_FIELD = re.compile(r"^(AC_Hom|AC_Het|AC_Hemi|nhomalt|AC|AN|AF)(?:_(.+))?$")
_LABEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
BATCH = 5000


# ---------------------------------------------------------------- which fields
def read_mapping(path: str | Path) -> dict[str, dict[str, str]]:
    p = Path(path)
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise LoadError(p, "file", f"not a readable YAML or JSON mapping: {exc}") from None
    if not isinstance(data, dict) or not data:
        raise LoadError(p, "file", "expected {population label: {AC: field, AN: field, ...}}")
    out = {}
    for label, fields in data.items():
        if not _LABEL.match(str(label)):
            raise LoadError(p, f"population {label!r}", "labels are letters, digits, . _ -")
        if not isinstance(fields, dict) or not set(fields) <= set(COUNTS):
            raise LoadError(p, f"population {label!r}", f"keys must be among {', '.join(COUNTS)}")
        out[str(label)] = {k: str(v) for k, v in fields.items()}
    return out


def detect(header, dataset_id: str) -> dict[str, dict[str, str]]:
    """``{label: {count: INFO field}}`` from the header's INFO definitions."""
    out: dict[str, dict[str, str]] = {}
    for name in header.info:
        hit = _FIELD.match(name)
        if not hit:
            continue
        count, population = hit.group(1), hit.group(2) or dataset_id
        out.setdefault(population, {})[count] = name
    return {k: v for k, v in out.items() if "AC" in v or "AF" in v}


def _check_fields(p: Path, header, mapping: dict[str, dict[str, str]]) -> None:
    for label, fields in mapping.items():
        for count, name in fields.items():
            if name not in header.info:
                raise LoadError(p, "header", f"population {label}: no INFO field {name!r}")
            number = header.info[name].number
            if count == "AN" and number not in (1, "1"):
                raise LoadError(p, "header", f"{name} must be Number=1 (one AN per site)")
        if "AN" not in fields:
            raise LoadError(p, "header", f"population {label}: no AN field (allele number)")


def _value(info, name: str | None, alt_index: int):
    if not name or name not in info:
        return None
    v = info[name]
    if isinstance(v, tuple):
        v = v[alt_index] if alt_index < len(v) else None
    return v


def counts_of(info, fields: dict[str, str], i: int) -> list | None:
    """``[AC, AN, hom, het, hemi]`` of ALT ``i`` (None: the population has no call)."""
    an = _value(info, fields.get("AN"), i)
    if an is None:
        return None
    an = int(an)
    ac = _value(info, fields.get("AC"), i)
    if ac is None:
        af = _value(info, fields.get("AF"), i)
        ac = round(float(af) * an) if af is not None else None
    if ac is None:
        return None
    hom = _value(info, fields.get("nhomalt"), i)
    if hom is None and fields.get("AC_Hom"):
        hom_alleles = _value(info, fields["AC_Hom"], i)
        hom = None if hom_alleles is None else int(hom_alleles) // 2
    het = _value(info, fields.get("AC_Het"), i)
    hemi = _value(info, fields.get("AC_Hemi"), i)
    return [int(ac), an] + [None if x is None else int(x) for x in (hom, het, hemi)]


# ---------------------------------------------------------------- load
def load_frequencies(
    db, path, dataset_id: str, *, mapping=None, assembly=None, progress: bool = True
) -> LoadResult:
    """Load a VCF's per-population counts into a frequency-only dataset."""
    p = journal.check_file(path)
    with db.session() as s:
        ds = s.get(Dataset, dataset_id)
        if ds is None:
            raise NotFound(
                f"dataset {dataset_id!r} is not registered (add it with `genomeport dataset add`)"
            )
        has_vcf = s.scalar(
            sa.text(
                "SELECT count(*) FROM beacon_loads WHERE dataset_id = :d AND kind = 'vcf' "
                "AND status = 'done'"
            ),
            {"d": dataset_id},
        )
        if has_vcf:
            raise InvalidInput(
                f"dataset {dataset_id!r} holds genotypes (load-vcf); frequencies go in a "
                "dataset of their own"
            )
        ds_assembly = ds.assembly
    sha = journal.file_sha256(p)
    with journal.open_vcf(p) as vf:
        header = vf.header
        fields = read_mapping(mapping) if mapping else detect(header, dataset_id)
        if not fields:
            raise LoadError(
                p,
                "header",
                "no per-population INFO fields (AC_<pop>, AN_<pop>, ...); pass --mapping",
            )
        _check_fields(p, header, fields)
        asm = normalize_assembly(assembly or ds_assembly or assembly_from_header(header))
        if not asm:
            raise LoadError(p, "header", "assembly unknown: pass --assembly GRCh38 or GRCh37")
        rows, span = [], 0
        for n, rec in enumerate(
            tqdm(vf, desc="load-frequencies", unit=" sites", disable=not progress), 1
        ):
            chrom = canonical_chrom(rec.chrom)[0]
            for i, alt in enumerate(rec.alts or ()):
                if alt in ("*", "."):
                    continue
                pops = {}
                for label, f in fields.items():
                    try:
                        c = counts_of(rec.info, f, i)
                    except (TypeError, ValueError) as exc:
                        raise LoadError(
                            p, f"record {n} ({rec.chrom}:{rec.pos})", str(exc)
                        ) from None
                    if c is not None:
                        if c[0] > c[1] or c[0] < 0:
                            raise LoadError(
                                p,
                                f"record {n} ({rec.chrom}:{rec.pos})",
                                f"population {label}: AC {c[0]} is not within AN {c[1]}",
                            )
                        pops[label] = c
                if not pops:
                    continue
                info = {k: str(v) for k, v in rec.info.items() if k in ("SVTYPE", "END", "SVLEN")}
                vtype, length, end = classify(rec.ref, alt, info, rec.start)
                span = max(span, end - rec.start)
                rows.append(
                    {
                        "dataset_id": dataset_id,
                        "assembly": asm,
                        "chrom": chrom,
                        "start": rec.start,
                        "end": end,
                        "ref": rec.ref,
                        "alt": alt,
                        "variant_type": vtype,
                        "length": length,
                        "vcf_id": rec.id or "",
                        "populations": pops,
                    }
                )
    with db.session() as s:
        row, done = journal.begin(s, KIND, dataset_id, p, sha)
        if done:
            return LoadResult(KIND, str(p), dataset_id, "unchanged", row.id, row.records)
        earlier = journal.earlier_loads(s, row)
        for o in earlier:
            s.execute(sa.delete(BeaconFrequency).where(BeaconFrequency.load_id == o.id))
            o.status = "superseded"
        s.execute(sa.delete(BeaconFrequency).where(BeaconFrequency.load_id == row.id))
        for r in rows:
            r["load_id"] = row.id
        for i in range(0, len(rows), BATCH):  # executemany: the counts are JSON
            s.execute(BeaconFrequency.__table__.insert(), rows[i : i + BATCH])
        row.assembly, row.max_span = asm, span
        row.status = "done"
        row.records = row.checkpoint = len(rows)
        row.finished = journal.utcnow()
        return LoadResult(KIND, str(p), dataset_id, "loaded", row.id, len(rows), len(rows))


# ---------------------------------------------------------------- query
def frequency_datasets(ctx: Context) -> set[str]:
    return {r.dataset_id for r in ctx.loads if r.kind == KIND}


@dataclass
class Matches:
    """The rows of one frequency-only dataset that a g_variants request matches."""

    count: int
    page: list

    def documents(self, settings, dataset_id: str, adjust) -> list[dict]:
        return [document(settings, dataset_id, r, adjust) for r in self.page]


def carriers(populations: dict, dataset_id: str) -> int:
    """The people who carry an allele, as far as the counts tell (at least)."""
    whole = populations.get(dataset_id) or max(populations.values(), key=lambda c: c[1])
    ac, _an, hom, het, hemi = whole
    if het is not None and hom is not None:
        return het + hom + (hemi or 0)
    return math.ceil(ac / 2)  # the fewest people an allele count needs


def evaluate(ctx: Context, req, dataset_id: str, genomic, *, want_page: bool, min_people: int):
    """The matches of ``req`` among a frequency-only dataset's alleles."""
    if req.entry_type != "g_variants" or req.filters:
        if req.filters:
            ctx.warn(f"dataset {dataset_id}: filters do not apply to frequency-only data")
        return Matches(0, [])
    if not genomic.plain:
        ctx.warn(
            f"dataset {dataset_id}: gene, HGVS and annotation queries are not answered "
            "from frequency-only data"
        )
        return Matches(0, [])
    loads = [r.id for r in ctx.loads if r.kind == KIND and r.dataset_id == dataset_id]
    span = max((r.max_span or 0 for r in ctx.loads if r.id in loads), default=0)
    T = BeaconFrequency
    q = sa.select(T).where(T.load_id.in_(loads))
    p = req.params
    ranged = len(p.get("start", [])) == 1 and len(p.get("end", [])) == 1
    for column, op, value in genomic.specs:
        col = getattr(T, column, None)
        if col is None:
            ctx.warn(f"dataset {dataset_id}: {column} is not known for frequency-only data")
            return Matches(0, [])
        if ranged and column == "start" and op == ">=":
            value = p["start"][0] - span  # alleles that start before and overlap
        if op == "like":
            q = q.where(col.like(value))
        elif op == "in":
            q = q.where(col.in_(value))
        else:
            q = q.where(
                {
                    "=": col == value,
                    "<": col < value,
                    ">": col > value,
                    ">=": col >= value,
                    "<=": col <= value,
                }[op]
            )
    rows = ctx.session.execute(q.order_by(T.chrom, T.start, T.alt)).scalars().all()
    visible = [r for r in rows if carriers(r.populations, dataset_id) >= min_people]
    page = visible[req.skip * req.limit : (req.skip + 1) * req.limit] if want_page else []
    return Matches(len(visible), page)


def document(settings, dataset_id: str, r, adjust) -> dict:
    """A g_variants record of one allele: its variation and its frequencies."""
    freqs = []
    for label in sorted(r.populations, key=lambda k: (k != dataset_id, k)):
        ac, an, hom, het, hemi = r.populations[label]
        if het is None and hom is not None:
            het = max(ac - 2 * hom - (hemi or 0), 0)
        f = _entry(label, ac, an, hom or 0, het or 0, adjust, hemi or 0)
        for key, value in (("alleleCountHomozygous", hom), ("alleleCountHeterozygous", het)):
            if value is None:
                f.pop(key)  # the file did not say
        freqs.append(f)
    base = settings.public_url.rstrip("/") + "/beacon/v2"
    return {
        **variant_document(r),
        "frequencyInPopulations": [
            {
                "source": f"{settings.beacon_name} dataset {dataset_id} (aggregate frequencies)",
                "sourceReference": f"{base}/datasets/{dataset_id}",
                "frequencies": freqs,
            }
        ],
    }
