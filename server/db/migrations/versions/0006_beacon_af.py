"""beacon: frequency-only datasets (aggregate allele counts per population)

Revision ID: 0006_beacon_af
Revises: 0005_dataset_metadata
Depends on: 0002_beacon (its load journal, beacon_loads)
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0006_beacon_af"
down_revision = "0005_dataset_metadata"
branch_labels = None
depends_on = ("0002_beacon",)

DOC = sa.JSON().with_variant(JSONB(), "postgresql")
BIG = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def upgrade() -> None:
    op.create_table(
        "beacon_af_variants",
        sa.Column("pk", BIG, primary_key=True, autoincrement=True),
        sa.Column("load_id", sa.BigInteger, nullable=False),
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
        sa.Column("populations", DOC, nullable=False),
    )
    op.create_index("ix_beacon_af_variants_load_id", "beacon_af_variants", ["load_id"])
    op.create_index(
        "ix_beacon_af_variants_locus", "beacon_af_variants", ["dataset_id", "chrom", "start"]
    )


def downgrade() -> None:
    op.drop_table("beacon_af_variants")
