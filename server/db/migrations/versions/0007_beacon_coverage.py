"""beacon: where genomes reported as gVCFs are not called

Revision ID: 0007_beacon_coverage
Revises: 0006_beacon_national_partitions

One row per stretch of a contig where a gVCF genome has no call or a call
short of two alleles (``server.beacon.coverage``), so that allele numbers
leave it out there. Genomes added before this revision have none: their AN
stays the covered-dataset figure until they are added again.
"""

import sqlalchemy as sa
from alembic import op

revision = "0007_beacon_coverage"
down_revision = "0006_beacon_national_partitions"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "beacon_coverage_gaps",
        sa.Column(
            "dataset_id",
            sa.String(128),
            sa.ForeignKey("datasets.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("idx", sa.Integer, primary_key=True),
        sa.Column("chrom", sa.String(64), primary_key=True),
        sa.Column("start", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("end", sa.BigInteger, nullable=False),
        sa.Column("alleles_short", sa.SmallInteger, nullable=False),
    )
    op.create_index(
        "ix_beacon_coverage_gaps_site",
        "beacon_coverage_gaps",
        ["dataset_id", "chrom", "start", "end", "idx", "alleles_short"],
    )


def downgrade() -> None:
    op.drop_index("ix_beacon_coverage_gaps_site", table_name="beacon_coverage_gaps")
    op.drop_table("beacon_coverage_gaps")
