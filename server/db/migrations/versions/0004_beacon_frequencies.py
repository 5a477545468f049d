"""beacon: homozygous carriers of each allele, for frequencies by sex and population

Revision ID: 0004_beacon_frequencies
Revises: 0003_beacon_budget

Rows loaded before this revision keep NULL: their records then carry only the
whole-dataset frequency until the VCF is loaded again.
"""

import sqlalchemy as sa
from alembic import op

revision = "0004_beacon_frequencies"
down_revision = "0003_beacon_budget"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("beacon_variants", sa.Column("hom_carriers", sa.LargeBinary, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("beacon_variants") as batch:
        batch.drop_column("hom_carriers")
