"""beacon: genomes added and withdrawn as deltas, folded in batches

Revision ID: 0007_beacon_deltas
Revises: 0006_beacon_national_partitions

``beacon_loads.pending``: a done file load (or a withdrawal) whose rows are a
visible delta not yet folded into the dataset's base records; on a store row
(kind ``vcf``): a fold has started and not finished. ``beacon_genomes.calls``:
the genome's calls per allele (``server.beacon.store.pack_calls``), from which
a withdrawal builds its negative delta. Genomes added before this revision keep
their record pks (``records``) and are withdrawn from those.
"""

import sqlalchemy as sa
from alembic import op

revision = "0007_beacon_deltas"
down_revision = "0006_beacon_national_partitions"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "beacon_loads",
        sa.Column("pending", sa.Boolean, nullable=False, server_default=sa.false()),
    )
    op.add_column("beacon_genomes", sa.Column("calls", sa.LargeBinary, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("beacon_genomes") as batch:
        batch.drop_column("calls")
    with op.batch_alter_table("beacon_loads") as batch:
        batch.drop_column("pending")
