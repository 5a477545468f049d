"""beacon: merged per-dataset variant records, genomes reported one at a time

Revision ID: 0005_beacon_national
Revises: 0004_beacon_frequencies

Adds the allele-number gap and no-call sets of each record and the genome
table. Rows loaded before this revision stay readable as they are (one row set
per load); load their VCFs again to merge them into one record per allele.
"""

import sqlalchemy as sa
from alembic import op

revision = "0005_beacon_national"
down_revision = "0004_beacon_frequencies"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("beacon_variants", sa.Column("an_gap", sa.BigInteger, nullable=True))
    op.add_column("beacon_variants", sa.Column("gaps", sa.LargeBinary, nullable=True))
    op.create_index(
        "ix_beacon_variants_allele", "beacon_variants", ["load_id", "chrom", "start", "ref"]
    )
    op.create_table(
        "beacon_genomes",
        sa.Column(
            "dataset_id",
            sa.String(128),
            sa.ForeignKey("datasets.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("name", sa.String(256), primary_key=True),
        sa.Column("idx", sa.Integer, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("load_id", sa.BigInteger, nullable=False, index=True),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("n_records", sa.BigInteger, nullable=False),
        sa.Column("records", sa.LargeBinary, nullable=True),
        sa.Column("added", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("dataset_id", "idx"),
    )


def downgrade() -> None:
    op.drop_table("beacon_genomes")
    op.drop_index("ix_beacon_variants_allele", table_name="beacon_variants")
    with op.batch_alter_table("beacon_variants") as batch:
        batch.drop_column("gaps")
        batch.drop_column("an_gap")
