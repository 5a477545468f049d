"""Beacon store: variants with carrier bitmaps, metadata records, genes, ontologies.

Variants are kept per dataset, one merged record per ALT allele, with allele
counts and the carriers as a serialized Roaring bitmap over the dataset's
sample index (``beacon_samples``: sample name -> small int). A dataset's
records carry the ``load_id`` of its store row in the journal (kind ``vcf``);
a file being loaded first stages its rows under its own journal row (kind
``vcf-file`` or ``genome``, never read by queries) and then merges them into
the store in one transaction (``server.beacon.store``). ``beacon_genomes``
records, per genome, which records it contributes to, so that it can be
withdrawn exactly; ``beacon_coverage_gaps`` where a gVCF genome is not called.
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from server.db import Base, Document

BigId = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class BeaconLoad(Base):
    """The load journal: one row per (kind, dataset, file content)."""

    __tablename__ = "beacon_loads"
    __table_args__ = (sa.UniqueConstraint("kind", "dataset_id", "sha256"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    # vcf (a dataset's merged variant store) | vcf-file | genome (files merged
    # into it) | metadata | genes | ontology | withdrawal
    kind: Mapped[str] = mapped_column(sa.String(16))
    dataset_id: Mapped[str] = mapped_column(sa.String(128), default="")
    path: Mapped[str] = mapped_column(sa.Text)
    sha256: Mapped[str] = mapped_column(sa.String(64))
    status: Mapped[str] = mapped_column(sa.String(16))  # loading | done | superseded
    # records committed; for a store row (kind vcf): how many merges and
    # withdrawals changed it (part of the query caches' generation)
    checkpoint: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    records: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    assembly: Mapped[str] = mapped_column(sa.String(32), default="")
    max_span: Mapped[int] = mapped_column(sa.BigInteger, default=0)  # longest variant
    started: Mapped[dt.datetime] = mapped_column(sa.DateTime(timezone=True), default=utcnow)
    finished: Mapped[dt.datetime | None] = mapped_column(sa.DateTime(timezone=True), nullable=True)
    # a done file load (vcf-file, genome) or a withdrawal whose rows are a delta
    # that queries aggregate with the base records, not yet folded into them; on
    # a store row (kind vcf): a fold has started and not finished
    pending: Mapped[bool] = mapped_column(sa.Boolean, default=False, server_default=sa.false())


class BeaconSample(Base):
    __tablename__ = "beacon_samples"
    __table_args__ = (sa.UniqueConstraint("dataset_id", "name"),)

    dataset_id: Mapped[str] = mapped_column(
        sa.String(128), sa.ForeignKey("datasets.id", ondelete="CASCADE"), primary_key=True
    )
    idx: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=False)
    name: Mapped[str] = mapped_column(sa.String(256))


class BeaconVariant(Base):
    __tablename__ = "beacon_variants"
    __table_args__ = (
        sa.Index("ix_beacon_variants_locus", "chrom", "start", "load_id"),
        sa.Index("ix_beacon_variants_hgvs", "hgvs_g"),
        sa.Index("ix_beacon_variants_allele", "load_id", "chrom", "start", "ref"),
    )

    # (load_id << 32) + ordinal in the file: deterministic, so a resumed load
    # rewrites exactly the rows it had not committed yet.
    pk: Mapped[int] = mapped_column(sa.BigInteger, primary_key=True, autoincrement=False)
    load_id: Mapped[int] = mapped_column(sa.BigInteger, index=True)
    dataset_id: Mapped[str] = mapped_column(sa.String(128))
    assembly: Mapped[str] = mapped_column(sa.String(32))
    chrom: Mapped[str] = mapped_column(sa.String(64))
    start: Mapped[int] = mapped_column(sa.BigInteger)  # 0-based
    end: Mapped[int] = mapped_column(sa.BigInteger)  # 0-based, exclusive
    ref: Mapped[str] = mapped_column(sa.Text)
    alt: Mapped[str] = mapped_column(sa.Text)
    variant_type: Mapped[str] = mapped_column(sa.String(16))
    length: Mapped[int] = mapped_column(sa.BigInteger)
    vcf_id: Mapped[str] = mapped_column(sa.Text, default="")
    hgvs_g: Mapped[str] = mapped_column(sa.String(512), default="")
    ac: Mapped[int] = mapped_column(sa.Integer)
    # AN as of the last write of the row; the allele number of a store record is
    # ``2 * genomes of the dataset - an_gap`` (``server.beacon.store.allele_number``)
    an: Mapped[int] = mapped_column(sa.Integer)
    hom: Mapped[int] = mapped_column(sa.Integer)
    het: Mapped[int] = mapped_column(sa.Integer)
    af: Mapped[float] = mapped_column(sa.Float)
    carriers: Mapped[bytes] = mapped_column(sa.LargeBinary)
    # the carriers homozygous for the allele (same index); NULL in rows loaded
    # before revision 0004_beacon_frequencies
    hom_carriers: Mapped[bytes | None] = mapped_column(sa.LargeBinary, nullable=True)
    # alleles short of two per genome at this site: missing or haploid calls
    # (negative for the AN a sites-only VCF declares); NULL in rows loaded
    # before revision 0005_beacon_national, whose ``an`` is exact
    an_gap: Mapped[int | None] = mapped_column(sa.BigInteger, nullable=True)
    # the genomes with one / two alleles short (``store.pack_gaps``); NULL: none
    gaps: Mapped[bytes | None] = mapped_column(sa.LargeBinary, nullable=True)


class BeaconGenome(Base):
    """One genome (sample) of a dataset: where it came from, a digest of its
    calls (to tell a repeated report from a changed one) and the store records
    it contributes to (sorted 64-bit pks, zlib-compressed), for withdrawal."""

    __tablename__ = "beacon_genomes"
    __table_args__ = (sa.UniqueConstraint("dataset_id", "idx"),)

    dataset_id: Mapped[str] = mapped_column(
        sa.String(128), sa.ForeignKey("datasets.id", ondelete="CASCADE"), primary_key=True
    )
    name: Mapped[str] = mapped_column(sa.String(256), primary_key=True)
    idx: Mapped[int] = mapped_column(sa.Integer)
    status: Mapped[str] = mapped_column(sa.String(16))  # staged | present
    load_id: Mapped[int] = mapped_column(sa.BigInteger, index=True)  # the file's journal row
    digest: Mapped[str] = mapped_column(sa.String(64), default="")
    n_records: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    records: Mapped[bytes | None] = mapped_column(sa.LargeBinary, nullable=True)
    # the genome's calls, one per allele it carries or lacks a call at
    # (``server.beacon.store.pack_calls``); NULL for genomes added before
    # revision 0007, which are withdrawn from their record pks (``records``)
    calls: Mapped[bytes | None] = mapped_column(sa.LargeBinary, nullable=True)
    added: Mapped[dt.datetime] = mapped_column(sa.DateTime(timezone=True), default=utcnow)


class BeaconCoverageGap(Base):
    """Where a genome reported as a gVCF is not called with two alleles: a
    stretch of a contig covered by none of its records or reference blocks
    (2 alleles short), or a block whose genotype is missing (2) or haploid or
    half-missing (1). 0-based half-open; no stretch crosses a multiple of
    ``server.beacon.coverage.TILE``, so the stretch holding a position starts
    at most one tile before it (``server.beacon.coverage``)."""

    __tablename__ = "beacon_coverage_gaps"
    # covering: a lookup reads the index alone
    __table_args__ = (
        sa.Index(
            "ix_beacon_coverage_gaps_site",
            "dataset_id",
            "chrom",
            "start",
            "end",
            "idx",
            "alleles_short",
        ),
    )

    dataset_id: Mapped[str] = mapped_column(
        sa.String(128), sa.ForeignKey("datasets.id", ondelete="CASCADE"), primary_key=True
    )
    idx: Mapped[int] = mapped_column(sa.Integer, primary_key=True)  # the genome's sample index
    chrom: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    start: Mapped[int] = mapped_column(sa.BigInteger, primary_key=True, autoincrement=False)
    end: Mapped[int] = mapped_column(sa.BigInteger)
    alleles_short: Mapped[int] = mapped_column(sa.SmallInteger)


class BeaconAnnotation(Base):
    """One functional annotation (SnpEff ANN / VEP CSQ entry) of a variant."""

    __tablename__ = "beacon_annotations"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    variant_pk: Mapped[int] = mapped_column(sa.BigInteger, index=True)
    load_id: Mapped[int] = mapped_column(sa.BigInteger, index=True)
    gene: Mapped[str] = mapped_column(sa.String(128), index=True, default="")
    effect: Mapped[str] = mapped_column(sa.String(256), default="")
    impact: Mapped[str] = mapped_column(sa.String(16), default="")
    feature: Mapped[str] = mapped_column(sa.String(128), default="")
    hgvs_c: Mapped[str] = mapped_column(sa.String(512), default="")
    hgvs_p: Mapped[str] = mapped_column(sa.String(512), default="")
    aa_change: Mapped[str] = mapped_column(sa.String(128), index=True, default="")


class BeaconGene(Base):
    __tablename__ = "beacon_genes"
    __table_args__ = (sa.Index("ix_beacon_genes_symbol", "assembly", "symbol"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    assembly: Mapped[str] = mapped_column(sa.String(32))
    chrom: Mapped[str] = mapped_column(sa.String(64))
    start: Mapped[int] = mapped_column(sa.BigInteger)
    end: Mapped[int] = mapped_column(sa.BigInteger)
    symbol: Mapped[str] = mapped_column(sa.String(128))
    gene_id: Mapped[str] = mapped_column(sa.String(128), default="")


class BeaconRecord(Base):
    """A metadata record (individual, biosample, run, analysis, cohort, dataset)."""

    __tablename__ = "beacon_records"
    __table_args__ = (sa.Index("ix_beacon_records_individual", "dataset_id", "individual_id"),)

    dataset_id: Mapped[str] = mapped_column(
        sa.String(128), sa.ForeignKey("datasets.id", ondelete="CASCADE"), primary_key=True
    )
    entry_type: Mapped[str] = mapped_column(sa.String(16), primary_key=True)
    id: Mapped[str] = mapped_column(sa.String(256), primary_key=True)
    individual_id: Mapped[str] = mapped_column(sa.String(256), default="")
    biosample_id: Mapped[str] = mapped_column(sa.String(256), default="")
    load_id: Mapped[int] = mapped_column(sa.BigInteger)
    document: Mapped[dict] = mapped_column(Document)


class BeaconRecordTerm(Base):
    """Ontology and custom terms carried by a record (for filters)."""

    __tablename__ = "beacon_record_terms"
    __table_args__ = (
        sa.Index("ix_beacon_record_terms_term", "term", "dataset_id", "entry_type"),
        sa.Index("ix_beacon_record_terms_record", "dataset_id", "entry_type", "record_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    dataset_id: Mapped[str] = mapped_column(sa.String(128))
    entry_type: Mapped[str] = mapped_column(sa.String(16))
    record_id: Mapped[str] = mapped_column(sa.String(256))
    term: Mapped[str] = mapped_column(sa.String(256))
    label: Mapped[str] = mapped_column(sa.String(512), default="")
    kind: Mapped[str] = mapped_column(sa.String(16), default="ontology")  # ontology | custom


class BeaconRecordValue(Base):
    """Alphanumeric values of a record (age, sex, measurements...)."""

    __tablename__ = "beacon_record_values"
    __table_args__ = (
        sa.Index("ix_beacon_record_values_field", "field", "dataset_id", "entry_type"),
        sa.Index("ix_beacon_record_values_record", "dataset_id", "entry_type", "record_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    dataset_id: Mapped[str] = mapped_column(sa.String(128))
    entry_type: Mapped[str] = mapped_column(sa.String(16))
    record_id: Mapped[str] = mapped_column(sa.String(256))
    field: Mapped[str] = mapped_column(sa.String(256))
    num: Mapped[float | None] = mapped_column(sa.Float, nullable=True)
    text: Mapped[str] = mapped_column(sa.String(512), default="")


class BeaconOntologyTerm(Base):
    __tablename__ = "beacon_ontology_terms"

    id: Mapped[str] = mapped_column(sa.String(128), primary_key=True)
    ontology: Mapped[str] = mapped_column(sa.String(32), index=True)
    label: Mapped[str] = mapped_column(sa.String(512), default="")


class BeaconOntologyClosure(Base):
    """Reflexive-transitive closure of is_a: ``descendant`` is_a* ``ancestor``."""

    __tablename__ = "beacon_ontology_closure"

    ancestor: Mapped[str] = mapped_column(sa.String(128), primary_key=True)
    descendant: Mapped[str] = mapped_column(sa.String(128), primary_key=True)
    ontology: Mapped[str] = mapped_column(sa.String(32), index=True)


class BeaconBudget(Base):
    """Queries one caller has made about one dataset, in the current UTC minute
    and day (``server.beacon.budget``): one row per (caller, dataset), shared by
    every worker of the node."""

    __tablename__ = "beacon_budgets"

    caller: Mapped[str] = mapped_column(sa.String(256), primary_key=True)
    dataset_id: Mapped[str] = mapped_column(sa.String(128), primary_key=True)
    minute: Mapped[int] = mapped_column(sa.BigInteger)  # UTC minutes since the epoch
    minute_n: Mapped[int] = mapped_column(sa.Integer)
    day: Mapped[int] = mapped_column(sa.Integer, index=True)  # UTC days since the epoch
    day_n: Mapped[int] = mapped_column(sa.Integer)


class BeaconFrequency(Base):
    """One ALT allele of a frequency-only dataset (``genomeport beacon
    load-frequencies``): its aggregate counts per population, and nothing about
    any person (no genotypes, samples or carriers). ``populations`` maps a
    population label (the dataset id for the whole cohort) to
    ``[AC, AN, homozygous, heterozygous, hemizygous]``; a count the file did not
    give is null."""

    __tablename__ = "beacon_af_variants"
    __table_args__ = (sa.Index("ix_beacon_af_variants_locus", "dataset_id", "chrom", "start"),)

    pk: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    load_id: Mapped[int] = mapped_column(sa.BigInteger, index=True)
    dataset_id: Mapped[str] = mapped_column(sa.String(128))
    assembly: Mapped[str] = mapped_column(sa.String(32))
    chrom: Mapped[str] = mapped_column(sa.String(64))
    start: Mapped[int] = mapped_column(sa.BigInteger)  # 0-based
    end: Mapped[int] = mapped_column(sa.BigInteger)  # 0-based, exclusive
    ref: Mapped[str] = mapped_column(sa.Text)
    alt: Mapped[str] = mapped_column(sa.Text)
    variant_type: Mapped[str] = mapped_column(sa.String(16))
    length: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    vcf_id: Mapped[str] = mapped_column(sa.Text, default="")
    populations: Mapped[dict] = mapped_column(Document, default=dict)
