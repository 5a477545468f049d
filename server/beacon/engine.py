"""The Beacon query engine: which records of which dataset match a request.

Per dataset, a request becomes SQL over the variant store (genomic
parameters), SQL over the record index (filters), and set algebra on Roaring
bitmaps over the dataset's sample index to join the two ("individuals with
phenotype X carrying variant Y" is ``filter_bitmap & carriers``).
"""

from __future__ import annotations

import functools
import operator
import re
import threading
from collections import namedtuple
from dataclasses import dataclass, field

import cachetools
import sqlalchemy as sa
from pyroaring import BitMap

from server.beacon.metadata import duration_days
from server.beacon.refs import canonical_chrom, normalize_assembly, refseq_accession
from server.beacon.request import ENTRY_TYPES, BeaconRequest
from server.beacon.tables import (
    BeaconAnnotation,
    BeaconGene,
    BeaconOntologyClosure,
    BeaconRecord,
    BeaconRecordTerm,
    BeaconRecordValue,
    BeaconSample,
    BeaconVariant,
)
from server.beacon.vcf import aa_short
from server.db.prepared import fetch_all
from server.errors import InvalidInput
from server.genomics.coords import anchor_start, closed_length

V = BeaconVariant

# a filter's scope: an endpoint name or a stored entry type -> stored entry type
SCOPES = {
    **ENTRY_TYPES,
    **{v: v for v in ENTRY_TYPES.values()},
    "genomicVariations": "g_variant",
    "genomicVariants": "g_variant",
}

VARIANT_TYPES: dict[str, set[str]] = {
    "SNP": {"SNP"},
    "SNV": {"SNP"},
    "MNP": {"MNP"},
    "MNV": {"MNP"},
    "INDEL": {"INS", "DEL", "INDEL"},
    "INS": {"INS"},
    "DEL": {"DEL"},
    "DUP": {"DUP"},
    "INV": {"INV"},
    "CNV": {"CNV"},
    "BND": {"BND"},
    "SV": {"SV", "DUP", "INV", "CNV", "BND"},
    "SO:0001483": {"SNP"},
    "SO:0002007": {"MNP"},
    "SO:1000002": {"SNP", "MNP"},
    "SO:0000667": {"INS"},
    "SO:0000159": {"DEL"},
    "SO:1000032": {"INDEL"},
    "SO:1000035": {"DUP"},
    "SO:1000036": {"INV"},
    "SO:0001019": {"CNV"},
    "SO:0000199": {"BND"},
    "SO:0001537": {"SV", "DUP", "INV", "CNV", "BND"},
    "SO:0001059": {"SNP", "MNP", "INS", "DEL", "INDEL", "DUP", "INV", "CNV", "BND", "SV"},
}
# filter terms spelled in another ontology than the one the records use
TERM_ALIASES = {
    "PATO:0000383": "NCIT:C16576",  # female
    "PATO:0000384": "NCIT:C20197",
}  # male
EMPTY_BASES = ("", "-", ".")


@dataclass
class Anchor:
    """A constraint carried over from a linked record or from matched variants."""

    samples: BitMap | None = None  # sample indexes (for g_variants)
    individuals: set[str] | None = None
    biosamples: set[str] | None = None


@dataclass
class SampleMap:
    """The dataset's sample index joined with its biosamples and individuals."""

    by_name: dict[str, int]
    name_of: dict[int, str]
    individual_of: dict[int, str]
    samples_of_individual: dict[str, BitMap]

    def individuals(self, samples: BitMap) -> set[str]:
        return {self.individual_of[i] for i in samples if i in self.individual_of}

    def names(self, samples: BitMap) -> set[str]:
        return {self.name_of[i] for i in samples if i in self.name_of}

    @property
    def one_to_one(self) -> bool:
        """Every individual has exactly one sample (the common case: people = samples)."""
        return len(self.samples_of_individual) == len(self.by_name)

    def people(self, samples: BitMap, within: BitMap | None = None) -> int:
        """Distinct people among ``samples`` (``& within``, when given)."""
        if self.one_to_one:
            return len(samples) if within is None else samples.intersection_cardinality(within)
        if within is not None:
            samples = samples & within
        return len({self.individual_of.get(i, i) for i in samples})

    def samples_for(self, individuals) -> BitMap:
        out = BitMap()
        for ind in individuals:
            bm = self.samples_of_individual.get(ind)
            if bm is not None:
                out |= bm
        return out


# Process caches, per database and load generation (a load changes the
# generation, so nothing stale is ever served). Shared by request threads:
# cachetools caches are not thread-safe, so each has a lock.
_SAMPLE_CACHE: cachetools.LRUCache = cachetools.LRUCache(256)
_RECORD_CACHE: cachetools.LRUCache = cachetools.LRUCache(256)
_SAMPLE_LOCK, _RECORD_LOCK = threading.Lock(), threading.Lock()


def load_key(tag: str):
    """A cache key function for ``fn(ctx, *args)``: one entry per database,
    load generation and arguments (``tag`` keeps functions sharing a cache apart)."""
    return lambda ctx, *args: (tag, ctx.db_key, ctx.generation, *args)


@dataclass
class Context:
    session: object
    warnings: list[str] = field(default_factory=list)
    generation: object = 0
    db_key: str = ""  # which database (process caches are per database)
    loads: list = field(default_factory=list)  # done journal rows
    _records: dict = field(default_factory=dict)

    def vcf_loads(self, dataset_ids) -> dict[str, list[int]]:
        out: dict[str, list[int]] = {d: [] for d in dataset_ids}
        for r in self.loads:
            if r.kind == "vcf" and r.dataset_id in out:
                out[r.dataset_id].append(r.id)
        return out

    def warn(self, text: str) -> None:
        if text not in self.warnings:
            self.warnings.append(text)


LoadRow = namedtuple("LoadRow", "id dataset_id kind assembly max_span checkpoint")
# the files merged into a store (vcf-file, genome) are not read: one row per genome;
# frequency-only datasets (server.beacon.af) are one "frequencies" row each
_DONE_LOADS = (
    "SELECT id, dataset_id, kind, assembly, max_span, checkpoint FROM beacon_loads "
    "WHERE status = 'done' AND kind IN ('vcf', 'metadata', 'genes', 'ontology', 'frequencies')"
)


def new_context(session, rows=None) -> Context:
    """One query of the (small) load journal serves the whole request. The
    generation changes with every load and with every merge into or
    withdrawal from a store (its row's ``checkpoint`` counts them).

    ``rows``: the journal's rows (the columns of ``_DONE_LOADS``) when the
    caller read them already, in a statement of its own."""
    if rows is None:
        rows = fetch_all(session, _DONE_LOADS)
    rows = [LoadRow(*r) for r in rows]
    gen = (
        max((r.id for r in rows), default=0),
        sum(r.checkpoint or 0 for r in rows if r.kind == "vcf"),
    )
    return Context(
        session=session, generation=gen, loads=rows, db_key=_db_key(session.get_bind().url)
    )


@functools.lru_cache(maxsize=64)
def _db_key(url) -> str:
    """The process caches' key of a database: its URL as text (rendered once)."""
    return str(url)


@cachetools.cached(_SAMPLE_CACHE, key=load_key("samples"), lock=_SAMPLE_LOCK)
def sample_map(ctx: Context, dataset_id: str) -> SampleMap:
    s = ctx.session
    samples = dict(
        s.execute(
            sa.select(BeaconSample.name, BeaconSample.idx).where(
                BeaconSample.dataset_id == dataset_id
            )
        ).all()
    )
    bios = dict(
        s.execute(
            sa.select(BeaconRecord.id, BeaconRecord.individual_id).where(
                BeaconRecord.dataset_id == dataset_id, BeaconRecord.entry_type == "biosample"
            )
        ).all()
    )
    individual_of, by_ind = {}, {}
    for name, idx in samples.items():
        ind = bios.get(name) or name
        individual_of[idx] = ind
        by_ind.setdefault(ind, BitMap()).add(idx)
    return SampleMap(samples, {i: n for n, i in samples.items()}, individual_of, by_ind)


@cachetools.cached(_RECORD_CACHE, key=load_key("records"), lock=_RECORD_LOCK)
def records_of(ctx: Context, dataset_id: str, entry_type: str) -> list[tuple[str, str, str]]:
    """``(id, individual_id, biosample_id)`` of every record of a type, by id.

    Cached per process until the next load (the journal's generation changes)."""
    return [
        tuple(r)
        for r in ctx.session.execute(
            sa.select(BeaconRecord.id, BeaconRecord.individual_id, BeaconRecord.biosample_id)
            .where(BeaconRecord.dataset_id == dataset_id, BeaconRecord.entry_type == entry_type)
            .order_by(BeaconRecord.id)
        )
    ]


# ------------------------------------------------------------------ variants
def variant_id(chrom: str, assembly: str, start: int, ref: str, alt: str, end: int) -> str:
    """``NC_000022.11:10516172:A:G`` (SPDI-like, 0-based); symbolic alleles add ``:end``."""
    seq = refseq_accession(chrom, assembly) or chrom
    vid = f"{seq}:{start}:{ref}:{alt}"
    return f"{vid}:{end}" if alt.startswith("<") else vid


def variant_document(r) -> dict:
    """The identity part of the g_variants record of a stored allele ``r`` (a
    ``beacon_variants`` or ``beacon_frequencies`` row): its variantInternalId
    and its variation, a SequenceLocation with alternateBases unless the ALT
    is symbolic or a breakend."""
    seq = refseq_accession(r.chrom, r.assembly)
    variation = {
        "variantType": r.variant_type,
        "referenceBases": r.ref,
        "location": {
            "type": "SequenceLocation",
            "sequence_id": f"refseq:{seq}" if seq else r.chrom,
            "interval": {
                "type": "SequenceInterval",
                "start": {"type": "Number", "value": r.start},
                "end": {"type": "Number", "value": r.end},
            },
        },
    }
    if not r.alt.startswith("<") and "[" not in r.alt and "]" not in r.alt:
        variation["alternateBases"] = r.alt
    return {
        "variantInternalId": variant_id(r.chrom, r.assembly, r.start, r.ref, r.alt, r.end),
        "variation": variation,
    }


def parse_variant_id(vid: str) -> tuple[str, int, str]:
    parts = vid.split(":", 3)
    if len(parts) < 4 or not parts[1].isdigit():
        raise InvalidInput(f"{vid!r} is not a variant id (sequence:start:ref:alt)")
    return canonical_chrom(parts[0])[0], int(parts[1]), parts[2]


_OPS = {"=": operator.eq, "<": operator.lt, ">": operator.gt, "<=": operator.le, ">=": operator.ge}


@dataclass
class Genomic:
    """The genomic parameters as conditions on ``beacon_variants``.

    ``specs`` are plain column comparisons ``(column, op, value)``; ``extra``
    are SQLAlchemy clauses with no such form (genes, annotations, HGVS). When
    there are no extras the conditions can also run as plain SQL (``sql``)."""

    specs: list = field(default_factory=list)
    extra: list = field(default_factory=list)

    def add(self, column: str, op: str, value) -> None:
        self.specs.append((column, op, value))

    def like(self, column: str, bases: str) -> None:
        if "N" in bases:
            self.add(column, "like", bases.replace("N", "_"))
        else:
            self.add(column, "=", bases)

    def clauses(self) -> list:
        out = []
        for column, op, value in self.specs:
            col = getattr(V, column)
            if op == "like":
                out.append(col.like(value))
            elif op == "in":
                out.append(col.in_(value))
            else:
                out.append(_OPS[op](col, value))
        return out + self.extra

    def __iter__(self):
        return iter(self.clauses())

    def __bool__(self) -> bool:
        return bool(self.specs or self.extra)

    @property
    def plain(self) -> bool:
        return not self.extra

    def sql(self, loads: list[int]) -> tuple[str, dict]:
        """``WHERE`` text (load ids first) and its parameters."""
        params = {f"l{i}": v for i, v in enumerate(loads)}
        parts = [f"load_id IN ({', '.join(':' + k for k in params)})"]
        for i, (column, op, value) in enumerate(self.specs):
            if op == "in":
                names = [f"g{i}_{j}" for j in range(len(value))]
                params.update(zip(names, value, strict=False))
                parts.append(f'"{column}" IN ({", ".join(":" + n for n in names)})')
            else:
                params[f"g{i}"] = value
                parts.append(f'"{column}" {"LIKE" if op == "like" else op} :g{i}')
        return " AND ".join(parts), params


def assemblies_in(ctx: Context, dataset_ids) -> set[str]:
    ids = set(dataset_ids)
    return {r.assembly for r in ctx.loads if r.kind == "vcf" and r.dataset_id in ids}


def genomic_conditions(ctx: Context, req: BeaconRequest, dataset_ids) -> Genomic:
    """Conditions on ``beacon_variants`` for the genomic parameters (shared by
    every dataset; the caller adds the dataset's loads)."""
    p = req.params
    g = Genomic()
    chrom = implied = None
    if "referenceName" in p:
        chrom, implied = canonical_chrom(p["referenceName"])
    asm = normalize_assembly(p.get("assemblyId"))
    if asm and implied and asm != implied:
        raise InvalidInput(
            f"referenceName {p['referenceName']} belongs to {implied}, "
            f"not to assemblyId {p['assemblyId']}"
        )
    asm = asm or implied
    if asm:
        served = assemblies_in(ctx, dataset_ids)
        if served and asm not in served:
            raise InvalidInput(
                f"assembly {asm} is not served here; this beacon holds "
                f"variants on {', '.join(sorted(served))}"
            )
        g.add("assembly", "=", asm)
    start, end = p.get("start", []), p.get("end", [])
    # a trimmed indel: empty alternateBases (deletion) or referenceBases (insertion)
    trimmed = any(k in p and p[k] in EMPTY_BASES for k in ("alternateBases", "referenceBases"))
    if (start or end) and chrom is None:
        raise InvalidInput("start and end need referenceName")
    if chrom is not None:
        g.add("chrom", "=", chrom)
    if len(start) > 2 or len(end) > 2:
        raise InvalidInput("start and end take one value, or two for a bracket query")
    if len(start) == 2 or len(end) == 2:
        if len(start) != 2 or len(end) != 2:
            raise InvalidInput("a bracket query needs start=[min,max] and end=[min,max]")
        (s1, s2), (e1, e2) = start, end
        if s1 >= s2 or e1 >= e2:
            raise InvalidInput(
                "bracket bounds are [min, max) with max exclusive: "
                "start[1]=start[0]+1 selects one position"
            )
        g.add("start", ">=", s1)
        g.add("start", "<", s2)
        g.add("end", ">=", e1)
        g.add("end", "<", e2)
    elif start and end:
        s, e = start[0], end[0]
        if e <= s:
            raise InvalidInput("end must be greater than start (0-based, half-open)")
        span = max_span(ctx, dataset_ids)
        g.add("start", "<", e)
        g.add("end", ">", s)
        g.add("start", ">=", s - span)
    elif start:
        if not ({"alternateBases", "referenceBases", "variantType"} & p.keys()):
            raise InvalidInput(
                "start needs end (range query), or alternateBases / variantType (sequence query)"
            )
        if trimmed:
            g.add("start", "=", anchor_start(start[0]))
        else:
            g.add("start", "=", start[0])
    elif end:
        raise InvalidInput("end needs start")
    elif ({"referenceBases", "alternateBases"} & p.keys()) and chrom is None:
        raise InvalidInput("referenceBases/alternateBases need referenceName and start")
    if trimmed:
        _trimmed_conditions(g, p.get("referenceBases"), p.get("alternateBases"))
    else:
        if p.get("referenceBases") and set(p["referenceBases"]) != {"N"}:
            g.like("ref", p["referenceBases"])
        if p.get("alternateBases"):
            g.like("alt", p["alternateBases"])
    if "variantType" in p:
        key = (
            p["variantType"].upper() if not p["variantType"].startswith("SO:") else p["variantType"]
        )
        types = VARIANT_TYPES.get(key)
        if types is None:
            raise InvalidInput(
                f"variantType {p['variantType']!r} is not supported; use one of "
                + ", ".join(k for k in VARIANT_TYPES)
            )
        g.add("variant_type", "in", sorted(types))
    if "variantMinLength" in p:
        g.add("length", ">=", p["variantMinLength"])
    if "variantMaxLength" in p:
        g.add("length", "<=", p["variantMaxLength"])
    if "geneId" in p:
        g.extra.append(_gene_condition(ctx, p["geneId"], asm))
    if "aminoacidChange" in p:
        aa = aa_short(p["aminoacidChange"])
        sub = sa.select(BeaconAnnotation.variant_pk).where(BeaconAnnotation.aa_change == aa)
        if "geneId" in p and not _ENSEMBL_GENE.match(p["geneId"]):
            sub = sub.where(sa.func.upper(BeaconAnnotation.gene) == p["geneId"].upper())
        g.extra.append(V.pk.in_(sub))
        if (
            ctx.session.execute(
                sa.select(BeaconAnnotation.id).where(BeaconAnnotation.aa_change != "").limit(1)
            ).first()
            is None
        ):
            ctx.warn(
                "aminoacidChange: no loaded VCF carries protein annotations (SnpEff ANN / "
                "VEP CSQ), so nothing can match"
            )
    if "genomicAlleleShortForm" in p:
        g.extra.append(_hgvs_condition(ctx, p["genomicAlleleShortForm"]))
    return g


def _trimmed_conditions(g: Genomic, ref: str | None, alt: str | None) -> None:
    """A trimmed deletion (``alternateBases`` empty) or insertion (``referenceBases``
    empty) as VCF writes it: the base before it in both REF and ALT."""
    ref = "" if ref in EMPTY_BASES else ref
    alt = "" if alt in EMPTY_BASES else alt
    if ref and alt:
        raise InvalidInput("only one of referenceBases and alternateBases may be empty")
    if not ref and not alt and alt is not None and ref is not None:
        raise InvalidInput("referenceBases and alternateBases are both empty")
    # the anchor column holds the base before the indel alone; the other column
    # holds that base and then the deleted (REF) or inserted (ALT) bases
    if alt == "":  # deletion: REF = anchor + deleted bases, ALT = anchor
        anchor, longer, bases = V.alt, V.ref, ref
    else:  # insertion: REF = anchor, ALT = anchor + inserted bases
        anchor, longer, bases = V.ref, V.alt, alt
    g.extra += [sa.func.length(anchor) == 1, sa.func.substr(longer, 1, 1) == anchor]
    if bases and "N" not in bases:
        g.extra.append(longer == anchor + bases)
    elif bases:
        g.extra.append(longer.like(anchor + bases.replace("N", "_")))
    else:
        g.extra.append(sa.func.length(longer) > 1)


def max_span(ctx: Context, dataset_ids) -> int:
    ids = set(dataset_ids)
    return max(
        (r.max_span or 0 for r in ctx.loads if r.kind == "vcf" and r.dataset_id in ids), default=0
    )


_ENSEMBL_GENE = re.compile(r"^(?:ensembl:)?(ENSG\d{11})(?:\.\d+)?$", re.IGNORECASE)


def _gene_condition(ctx: Context, gene: str, asm: str | None):
    """Variants in a gene given by symbol (any case: ``brca1``) or Ensembl gene id
    (``ENSG00000012048``, with or without version): within the gene's interval
    (``load-genes``) or annotated with its symbol."""
    s = ctx.session
    q = sa.select(
        BeaconGene.assembly, BeaconGene.chrom, BeaconGene.start, BeaconGene.end, BeaconGene.symbol
    )
    ensembl = _ENSEMBL_GENE.match(gene)
    if ensembl:
        stem = ensembl.group(1).upper()
        q = q.where(sa.or_(BeaconGene.gene_id == stem, BeaconGene.gene_id.like(stem + ".%")))
    else:
        q = q.where(sa.func.upper(BeaconGene.symbol) == gene.upper())
    if asm:
        q = q.where(BeaconGene.assembly == asm)
    rows = s.execute(q).all()
    spans = [r[:4] for r in rows]
    symbols = sorted({r[4] for r in rows} | (set() if ensembl else {gene, gene.upper()}))
    annotated = sa.select(BeaconAnnotation.variant_pk).where(BeaconAnnotation.gene.in_(symbols))
    known_annotation = (
        bool(symbols)
        and s.execute(
            sa.select(BeaconAnnotation.id).where(BeaconAnnotation.gene.in_(symbols)).limit(1)
        ).first()
        is not None
    )
    if not spans and not known_annotation:
        ctx.warn(
            f"geneId {gene!r} is unknown here (not among the loaded genes nor the "
            "annotated gene symbols)"
        )
    parts = [V.pk.in_(annotated)]
    for a, chrom, start, end in spans:
        parts.append(sa.and_(V.assembly == a, V.chrom == chrom, V.start < end, V.end > start))
    return sa.or_(*parts)


_HGVS = re.compile(r"^(?:refseq:)?([^:]+):([gcnpm])\.(.+)$", re.IGNORECASE)
_HGVS_DEL = re.compile(r"^(\d+)(?:_(\d+))?del([ACGTN]+)$", re.IGNORECASE)


def _hgvs_plain_deletion(change: str) -> str:
    """``10686083_10686085delATA`` -> ``10686083_10686085del``: the stored form
    (current HGVS) does not repeat the deleted bases."""
    m = _HGVS_DEL.match(change)
    if not m:
        return change
    first, last, bases = int(m.group(1)), int(m.group(2) or m.group(1)), m.group(3)
    if closed_length(first, last) != len(bases):
        raise InvalidInput(
            f"HGVS deletion {change!r}: {len(bases)} bases deleted over "
            f"{closed_length(first, last)} positions"
        )
    return change[: change.lower().rindex("del") + 3]


def _hgvs_condition(ctx: Context, text: str):
    m = _HGVS.match(text.strip())
    if not m:
        raise InvalidInput(f"genomicAlleleShortForm {text!r} is not HGVS (sequence:g.change)")
    seq, kind, change = m.groups()
    changes = sorted({change, _hgvs_plain_deletion(change)})  # deletions: with or without bases
    if kind.lower() == "g":
        chrom, implied = canonical_chrom(seq)
        forms = set()
        for c in changes:
            forms |= {f"{seq}:g.{c}", f"{chrom}:g.{c}"}
            for asm in [implied] if implied else ["GRCh38", "GRCh37"]:
                acc = refseq_accession(chrom, asm)
                if acc:
                    forms.add(f"{acc}:g.{c}")
        return V.hgvs_g.in_(sorted(forms))
    col = BeaconAnnotation.hgvs_c if kind.lower() in "cn" else BeaconAnnotation.hgvs_p
    sub = sa.select(BeaconAnnotation.variant_pk).where(
        col.in_([f"{kind.lower()}.{c}" for c in changes]),
        sa.or_(
            BeaconAnnotation.feature == seq,
            BeaconAnnotation.feature.like(seq.split(".")[0] + ".%"),
            BeaconAnnotation.gene == seq,
        ),
    )
    return V.pk.in_(sub)


# ------------------------------------------------------------------ filters
def _term_known(ctx: Context, term: str) -> bool:
    s = ctx.session
    return bool(
        fetch_all(s, "SELECT 1 FROM beacon_ontology_terms WHERE id = :t", {"t": term})
        or fetch_all(s, "SELECT 1 FROM beacon_record_terms WHERE term = :t LIMIT 1", {"t": term})
    )


def _field_known(ctx: Context, name: str) -> bool:
    return bool(
        fetch_all(
            ctx.session, "SELECT 1 FROM beacon_record_values WHERE field = :f LIMIT 1", {"f": name}
        )
    )


def check_filters(ctx: Context, filters: list[dict]) -> list[dict]:
    """Warn about filters this beacon does not know (they then match nothing)."""
    for f in filters:
        if "operator" not in f and f["id"] in TERM_ALIASES:
            f["_asked"], f["id"] = f["id"], TERM_ALIASES[f["id"]]
        scope = f.get("scope")
        if scope and scope not in SCOPES:
            raise InvalidInput(f"filter {f['id']}: unknown scope {scope!r}")
        known = _field_known(ctx, f["id"]) if "operator" in f else _term_known(ctx, f["id"])
        f["_known"] = known
        if not known:
            ctx.warn(
                f"filter {f['id']!r} is not a filtering term of this beacon (see "
                "/filtering_terms); it matches no record"
            )
    return filters


def _filter_rows(ctx: Context, dataset_id: str, f: dict) -> list[tuple[str, str, str]]:
    """``(entry_type, record_id, individual_id)`` of the records a filter matches
    (cached per process until the next load)."""
    if not f.get("_known"):
        return []
    return _matching_rows(ctx, dataset_id, f)


@cachetools.cached(
    _RECORD_CACHE,
    key=lambda ctx, dataset_id, f: load_key("filter")(
        ctx, dataset_id, tuple(sorted((k, str(v)) for k, v in f.items() if not k.startswith("_")))
    ),
    lock=_RECORD_LOCK,
)
def _matching_rows(ctx: Context, dataset_id: str, f: dict) -> list[tuple[str, str, str]]:
    scope = SCOPES.get(f.get("scope") or "")
    if "operator" in f:
        T = BeaconRecordValue
        op, value = f["operator"], f["value"]
        num = duration_days(value)
        if num is None:
            try:
                num = float(value)
            except ValueError:
                num = None
        if op in ("=", "!"):
            if num is not None:
                cond = T.num == num
            elif "%" in value:
                cond = sa.func.lower(T.text).like(value.lower())
            else:
                cond = sa.func.lower(T.text) == value.lower()
        else:
            column, operand = (T.num, num) if num is not None else (T.text, value)
            cond = {
                "<": column < operand,
                ">": column > operand,
                "<=": column <= operand,
                ">=": column >= operand,
            }[op]
        base = sa.select(T.entry_type, T.record_id).where(
            T.dataset_id == dataset_id, T.field == f["id"]
        )
        if scope:
            base = base.where(T.entry_type == scope)
        conn = ctx.session.connection()
        matched = set(map(tuple, conn.execute(base.where(cond))))
        if op == "!":
            having = set(map(tuple, conn.execute(base)))
            matched = having - matched
            # records of the same types that lack the field also differ from the value
            for etype in {e for e, _ in having} | ({scope} if scope else set()):
                matched |= {
                    (etype, r[0])
                    for r in records_of(ctx, dataset_id, etype)
                    if (etype, r[0]) not in having
                }
    else:
        T = BeaconRecordTerm
        terms = [f["id"]]
        if f.get("includeDescendantTerms", True):
            terms = (
                sa.select(BeaconOntologyClosure.descendant)
                .where(BeaconOntologyClosure.ancestor == f["id"])
                .union(sa.select(sa.literal(f["id"])))
            )
        q = sa.select(T.entry_type, T.record_id).where(
            T.dataset_id == dataset_id, T.term.in_(terms)
        )
        if scope:
            q = q.where(T.entry_type == scope)
        matched = set(map(tuple, ctx.session.connection().execute(q)))
    out = []
    for etype in {e for e, _ in matched}:
        index = _individual_index(ctx, dataset_id, etype)
        out += [(etype, rid, index.get(rid, "")) for e, rid in matched if e == etype]
    return out


@cachetools.cached(_RECORD_CACHE, key=load_key("individuals"), lock=_RECORD_LOCK)
def _individual_index(ctx, dataset_id, etype) -> dict[str, str]:
    """record id -> individual id for one entry type (cached like ``records_of``)."""
    return {r[0]: r[1] for r in records_of(ctx, dataset_id, etype)}


def _filter_key(f: dict) -> tuple:
    return tuple(sorted((k, str(v)) for k, v in f.items() if not k.startswith("_")))


@cachetools.cached(
    _RECORD_CACHE,
    key=lambda ctx, dataset_id, f: load_key("filter-samples")(ctx, dataset_id, _filter_key(f)),
    lock=_RECORD_LOCK,
)
def _filter_samples(ctx: Context, dataset_id: str, f: dict) -> BitMap:
    """The samples of the individuals one filter matches (cached per process
    until the next load: built once, not per request)."""
    rows = _filter_rows(ctx, dataset_id, f)
    inds = {ind or rid for etype, rid, ind in rows if etype != "g_variant"}
    return sample_map(ctx, dataset_id).samples_for(inds)


@cachetools.cached(
    _RECORD_CACHE,
    key=lambda ctx, dataset_id, filters: load_key("individual-samples")(
        ctx, dataset_id, tuple(_filter_key(f) for f in filters)
    ),
    lock=_RECORD_LOCK,
)
def _individual_samples(ctx: Context, dataset_id: str, filters: list[dict]) -> BitMap:
    """The samples of the individual records that match ``filters``."""
    ids = {r[0] for r in records_of(ctx, dataset_id, "individual")}
    constraint = filter_constraint(ctx, dataset_id, "individual", filters)
    if constraint is not None:
        ids &= constraint
    return sample_map(ctx, dataset_id).samples_for(ids)


def filter_constraint(ctx: Context, dataset_id: str, target: str, filters: list[dict]):
    """For a record target: the set of matching record ids (None: no filters).
    For g_variant: the matching individuals' sample bitmap."""
    result = None
    for f in filters:
        if target == "g_variant":
            bm = _filter_samples(ctx, dataset_id, f)
            result = bm if result is None else result & bm
            continue
        rows = _filter_rows(ctx, dataset_id, f)
        scope = SCOPES.get(f.get("scope") or "")
        direct = {rid for etype, rid, _ in rows if etype == target}
        if target in ("cohort", "dataset") or scope == target:
            ids = direct
        else:
            inds = {ind for etype, rid, ind in rows if ind}
            ids = direct | {r[0] for r in records_of(ctx, dataset_id, target) if r[1] in inds}
        result = ids if result is None else result & ids
    return result


# ------------------------------------------------------------------ anchors
def source_anchor(
    ctx: Context, dataset_id: str, source_type: str, source_id: str, loads: list[int]
) -> Anchor | None:
    """The constraint a ``/{source}/{id}/...`` path puts on its target; None when
    the source record is not in this dataset."""
    sm = sample_map(ctx, dataset_id)
    if source_type == "g_variant":
        rows = find_variants(ctx, loads, source_id)
        if not rows:
            return None
        bm = BitMap()
        for r in rows:
            bm |= BitMap.deserialize(r.carriers)
        return Anchor(bm, sm.individuals(bm), sm.names(bm))
    if source_type in ("dataset", "cohort"):
        return (
            Anchor()
            if (
                source_type == "dataset"
                or any(r[0] == source_id for r in records_of(ctx, dataset_id, source_type))
            )
            else None
        )
    rec = next((r for r in records_of(ctx, dataset_id, source_type) if r[0] == source_id), None)
    if rec is None:  # only ids with a metadata record resolve (never a VCF-only sample)
        return None
    _, ind, bios = rec
    if source_type == "individual":
        return Anchor(sm.samples_for([source_id]), {source_id}, None)
    if bios in sm.by_name:
        return Anchor(BitMap([sm.by_name[bios]]), {ind} if ind else set(), {bios})
    return Anchor(
        sm.samples_for([ind]) if ind else BitMap(),
        {ind} if ind else set(),
        {bios} if bios else set(),
    )


def find_variants(ctx: Context, loads: list[int], vid: str) -> list:
    chrom, start, ref = parse_variant_id(vid)
    rows = (
        ctx.session.execute(
            sa.select(V).where(
                V.load_id.in_(loads), V.chrom == chrom, V.start == start, V.ref == ref
            )
        )
        .scalars()
        .all()
    )
    return [r for r in rows if variant_id(r.chrom, r.assembly, r.start, r.ref, r.alt, r.end) == vid]


# ------------------------------------------------------------------ evaluation
@dataclass
class Matches:
    count: int
    page: list  # variant rows or record ids for the requested page


def evaluate(
    ctx: Context,
    req: BeaconRequest,
    dataset_id: str,
    loads: list[int],
    genomic: Genomic | list | None,
    want_page: bool,
    min_people: int = 0,
) -> Matches:
    """The matching records of one dataset. With ``min_people`` (below the record
    tier, see ``server.beacon.tiers``) only alleles whose carriers, among the
    individuals matching the filters, number at least ``min_people`` distinct
    people are visible: they alone are counted, and only their carriers are."""
    target = ENTRY_TYPES[req.entry_type]
    anchors: list[Anchor] = []
    if req.source_type:
        a = source_anchor(ctx, dataset_id, req.source_type, req.source_id, loads)
        if a is None:
            return Matches(0, [])
        if min_people and req.source_type == "g_variant" and a.samples is not None:
            fb = filter_constraint(ctx, dataset_id, "g_variant", req.filters)
            if sample_map(ctx, dataset_id).people(a.samples, fb) < min_people:
                return Matches(0, [])
        anchors.append(a)
    offset, limit = req.skip * req.limit, req.limit
    if target == "g_variant":
        return _evaluate_variants(
            ctx, req, dataset_id, loads, genomic, anchors, offset, limit, want_page, min_people
        )
    if target == "dataset":
        ids = [dataset_id]
        constraint = filter_constraint(ctx, dataset_id, target, req.filters)
        if constraint is not None:
            docs = {r[0] for r in records_of(ctx, dataset_id, "dataset")}
            ids = ids if constraint & docs else []
        if req.entry_id and req.entry_id != dataset_id:
            ids = []
        if req.genomic:
            if min_people:
                visible = _visible_carriers(
                    ctx, dataset_id, loads, genomic, req.filters, min_people, first_only=True
                )
                ids = ids if visible else []
            else:
                ids = ids if _variant_count(ctx, loads, genomic) else []
        return Matches(len(ids), ids[offset : offset + limit] if want_page else [])
    if req.genomic:
        carriers = _visible_carriers(ctx, dataset_id, loads, genomic, req.filters, min_people)
        sm = sample_map(ctx, dataset_id)
        if (
            target == "individual"
            and not want_page
            and not anchors
            and req.entry_id is None
            and sm.one_to_one
        ):
            # a count of carriers among the filtered individuals: one bitmap
            # intersection, whatever the cohort size (people = samples here)
            within = _individual_samples(ctx, dataset_id, req.filters)
            return Matches(carriers.intersection_cardinality(within), [])
        anchors.append(Anchor(carriers, sm.individuals(carriers), sm.names(carriers)))
    constraint = filter_constraint(ctx, dataset_id, target, req.filters)
    rows = records_of(ctx, dataset_id, target)
    if req.entry_id is not None:
        rows = [r for r in rows if r[0] == req.entry_id]
    if constraint is not None:
        rows = [r for r in rows if r[0] in constraint]
    for a in anchors:
        if target == "individual" and a.individuals is not None:
            keep = a.individuals
            rows = [r for r in rows if r[0] in keep]
        else:
            rows = [r for r in rows if _passes(a, target, *r)]
    ids = [r[0] for r in rows]
    return Matches(len(ids), ids[offset : offset + limit] if want_page else [])


def _visible_carriers(
    ctx, dataset_id, loads, genomic, filters, min_people, first_only=False
) -> BitMap:
    """The union of the carriers of the matching alleles that are visible
    (all of them when ``min_people`` is 0)."""
    carriers = BitMap()
    within = filter_constraint(ctx, dataset_id, "g_variant", filters) if min_people else None
    sm = sample_map(ctx, dataset_id) if min_people else None
    for c in _carriers(ctx, loads, genomic):
        bm = BitMap.deserialize(c)
        if min_people and sm.people(bm, within) < min_people:
            continue
        carriers |= bm
        if first_only:
            break
    return carriers


def _passes(a: Anchor, target: str, rid: str, ind: str, bios: str) -> bool:
    if target == "individual":
        return a.individuals is None or rid in a.individuals
    if target in ("biosample", "run", "analysis"):
        if a.biosamples:
            return bios in a.biosamples
        return a.individuals is None or ind in a.individuals
    return True


def _carriers(ctx, loads, genomic) -> list[bytes]:
    """The carrier bitmaps (serialized) of the matching variants."""
    if isinstance(genomic, Genomic) and genomic.plain:
        if not loads:
            return []
        where, params = genomic.sql(loads)
        return [
            c
            for (c,) in fetch_all(
                ctx.session, f"SELECT carriers FROM beacon_variants WHERE {where}", params
            )
        ]
    return [
        c
        for (c,) in ctx.session.execute(
            sa.select(V.carriers).where(V.load_id.in_(loads), *(genomic or []))
        )
    ]


def _variant_count(ctx, loads, genomic, min_carriers: int = 0) -> int:
    """Matching alleles; with ``min_carriers``, only those with at least that many
    carrier samples (``hom + het`` is the carrier bitmap's cardinality)."""
    if isinstance(genomic, Genomic) and genomic.plain:
        if not loads:
            return 0
        where, params = genomic.sql(loads)
        if min_carriers:
            where += " AND hom + het >= :min_carriers"
            params["min_carriers"] = min_carriers
        return fetch_all(
            ctx.session, f"SELECT count(*) FROM beacon_variants WHERE {where}", params
        )[0][0]
    conds = [V.load_id.in_(loads), *(genomic or [])]
    if min_carriers:
        conds.append(V.hom + V.het >= min_carriers)
    return ctx.session.execute(sa.select(sa.func.count()).select_from(V).where(*conds)).scalar_one()


def _evaluate_variants(
    ctx, req, dataset_id, loads, genomic, anchors, offset, limit, want_page, min_people=0
):
    order = (V.chrom, V.start, V.pk)
    bitmaps = [a.samples for a in anchors if a.samples is not None]
    fb = filter_constraint(ctx, dataset_id, "g_variant", req.filters)
    if fb is not None:
        bitmaps.append(fb)
    sm = sample_map(ctx, dataset_id)
    if not bitmaps and req.entry_id is None and (not min_people or sm.one_to_one):
        # no bitmap to intersect: the count is one SQL statement (people = carrier
        # samples when every individual has one sample)
        count = _variant_count(ctx, loads, genomic, min_people)
        page = []
        if want_page and count > offset:
            conds = [V.load_id.in_(loads), *(genomic or [])]
            page = (
                ctx.session.execute(
                    sa.select(V).where(*conds).order_by(*order).offset(offset).limit(limit)
                )
                .scalars()
                .all()
            )
        return Matches(count, list(page))
    conds = [V.load_id.in_(loads), *(genomic or [])]
    if req.entry_id is not None:
        chrom, start, ref = parse_variant_id(req.entry_id)
        conds += [V.chrom == chrom, V.start == start, V.ref == ref]
    need = None
    for bm in bitmaps:
        need = bm if need is None else need & bm
    # an allele matches when at least `least` people carry it (among `need`)
    least = max(min_people, 1) if need is not None else min_people
    matched = []
    q = (
        sa.select(V.pk, V.carriers, V.chrom, V.assembly, V.start, V.ref, V.alt, V.end)
        .where(*conds)
        .order_by(*order)
    )
    for pk, carriers, chrom, asm, start, ref, alt, end in ctx.session.execute(q):
        if (
            req.entry_id is not None
            and variant_id(chrom, asm, start, ref, alt, end) != req.entry_id
        ):
            continue
        if least and sm.people(BitMap.deserialize(carriers), need) < least:
            continue
        matched.append(pk)
    page = []
    if want_page and matched[offset : offset + limit]:
        pks = matched[offset : offset + limit]
        rows = {r.pk: r for r in ctx.session.execute(sa.select(V).where(V.pk.in_(pks))).scalars()}
        page = [rows[pk] for pk in pks]
    return Matches(len(matched), page)
