"""beacon: variants, carriers, metadata records, genes, ontologies, load journal

Revision ID: 0002_beacon
Revises: 0001_core
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0002_beacon"
down_revision = "0001_core"
branch_labels = ("beacon",)
depends_on = None

DOC = sa.JSON().with_variant(JSONB(), "postgresql")
BIGID = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def upgrade() -> None:
    op.create_table(
        "beacon_loads",
        sa.Column("id", BIGID, primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("dataset_id", sa.String(128), nullable=False),
        sa.Column("path", sa.Text, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("checkpoint", sa.BigInteger, nullable=False),
        sa.Column("records", sa.BigInteger, nullable=False),
        sa.Column("assembly", sa.String(32), nullable=False),
        sa.Column("max_span", sa.BigInteger, nullable=False),
        sa.Column("started", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished", sa.DateTime(timezone=True), nullable=True),
        sa.UniqueConstraint("kind", "dataset_id", "sha256"),
    )
    op.create_table(
        "beacon_samples",
        sa.Column(
            "dataset_id",
            sa.String(128),
            sa.ForeignKey("datasets.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("idx", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("name", sa.String(256), nullable=False),
        sa.UniqueConstraint("dataset_id", "name"),
    )
    op.create_table(
        "beacon_variants",
        sa.Column("pk", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("load_id", sa.BigInteger, nullable=False, index=True),
        sa.Column("dataset_id", sa.String(128), nullable=False),
        sa.Column("assembly", sa.String(32), nullable=False),
        sa.Column("chrom", sa.String(64), nullable=False),
        sa.Column("start", sa.BigInteger, nullable=False),
        sa.Column("end", sa.BigInteger, nullable=False),
        sa.Column("ref", sa.Text, nullable=False),
        sa.Column("alt", sa.Text, nullable=False),
        sa.Column("variant_type", sa.String(16), nullable=False),
        sa.Column("length", sa.BigInteger, nullable=False),
        sa.Column("vcf_id", sa.Text, nullable=False),
        sa.Column("hgvs_g", sa.String(512), nullable=False),
        sa.Column("ac", sa.Integer, nullable=False),
        sa.Column("an", sa.Integer, nullable=False),
        sa.Column("hom", sa.Integer, nullable=False),
        sa.Column("het", sa.Integer, nullable=False),
        sa.Column("af", sa.Float, nullable=False),
        sa.Column("carriers", sa.LargeBinary, nullable=False),
    )
    op.create_index("ix_beacon_variants_locus", "beacon_variants", ["chrom", "start", "load_id"])
    op.create_index("ix_beacon_variants_hgvs", "beacon_variants", ["hgvs_g"])
    op.create_table(
        "beacon_annotations",
        sa.Column("id", BIGID, primary_key=True, autoincrement=True),
        sa.Column("variant_pk", sa.BigInteger, nullable=False, index=True),
        sa.Column("load_id", sa.BigInteger, nullable=False, index=True),
        sa.Column("gene", sa.String(128), nullable=False, index=True),
        sa.Column("effect", sa.String(256), nullable=False),
        sa.Column("impact", sa.String(16), nullable=False),
        sa.Column("feature", sa.String(128), nullable=False),
        sa.Column("hgvs_c", sa.String(512), nullable=False),
        sa.Column("hgvs_p", sa.String(512), nullable=False),
        sa.Column("aa_change", sa.String(128), nullable=False, index=True),
    )
    op.create_table(
        "beacon_genes",
        sa.Column("id", BIGID, primary_key=True, autoincrement=True),
        sa.Column("assembly", sa.String(32), nullable=False),
        sa.Column("chrom", sa.String(64), nullable=False),
        sa.Column("start", sa.BigInteger, nullable=False),
        sa.Column("end", sa.BigInteger, nullable=False),
        sa.Column("symbol", sa.String(128), nullable=False),
        sa.Column("gene_id", sa.String(128), nullable=False),
    )
    op.create_index("ix_beacon_genes_symbol", "beacon_genes", ["assembly", "symbol"])
    op.create_table(
        "beacon_records",
        sa.Column(
            "dataset_id",
            sa.String(128),
            sa.ForeignKey("datasets.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("entry_type", sa.String(16), primary_key=True),
        sa.Column("id", sa.String(256), primary_key=True),
        sa.Column("individual_id", sa.String(256), nullable=False),
        sa.Column("biosample_id", sa.String(256), nullable=False),
        sa.Column("load_id", sa.BigInteger, nullable=False),
        sa.Column("document", DOC, nullable=False),
    )
    op.create_index(
        "ix_beacon_records_individual", "beacon_records", ["dataset_id", "individual_id"]
    )
    for name, cols in (
        (
            "beacon_record_terms",
            [
                sa.Column("term", sa.String(256), nullable=False),
                sa.Column("label", sa.String(512), nullable=False),
                sa.Column("kind", sa.String(16), nullable=False),
            ],
        ),
        (
            "beacon_record_values",
            [
                sa.Column("field", sa.String(256), nullable=False),
                sa.Column("num", sa.Float, nullable=True),
                sa.Column("text", sa.String(512), nullable=False),
            ],
        ),
    ):
        op.create_table(
            name,
            sa.Column("id", BIGID, primary_key=True, autoincrement=True),
            sa.Column("dataset_id", sa.String(128), nullable=False),
            sa.Column("entry_type", sa.String(16), nullable=False),
            sa.Column("record_id", sa.String(256), nullable=False),
            *cols,
        )
        op.create_index(f"ix_{name}_record", name, ["dataset_id", "entry_type", "record_id"])
    op.create_index(
        "ix_beacon_record_terms_term", "beacon_record_terms", ["term", "dataset_id", "entry_type"]
    )
    op.create_index(
        "ix_beacon_record_values_field",
        "beacon_record_values",
        ["field", "dataset_id", "entry_type"],
    )
    op.create_table(
        "beacon_ontology_terms",
        sa.Column("id", sa.String(128), primary_key=True),
        sa.Column("ontology", sa.String(32), nullable=False, index=True),
        sa.Column("label", sa.String(512), nullable=False),
    )
    op.create_table(
        "beacon_ontology_closure",
        sa.Column("ancestor", sa.String(128), primary_key=True),
        sa.Column("descendant", sa.String(128), primary_key=True),
        sa.Column("ontology", sa.String(32), nullable=False, index=True),
    )


def downgrade() -> None:
    for name in (
        "beacon_ontology_closure",
        "beacon_ontology_terms",
        "beacon_record_values",
        "beacon_record_terms",
        "beacon_records",
        "beacon_genes",
        "beacon_annotations",
        "beacon_variants",
        "beacon_samples",
        "beacon_loads",
    ):
        op.drop_table(name)
