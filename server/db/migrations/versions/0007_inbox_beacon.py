"""inbox: the Beacon step of an upload's ingest (its state)

Revision ID: 0007_inbox_beacon
Revises: 0006_crypt4gh
"""

import sqlalchemy as sa
from alembic import op

revision = "0007_inbox_beacon"
down_revision = "0006_crypt4gh"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("inbox_uploads") as batch:
        batch.add_column(
            sa.Column("beacon_state", sa.String(16), nullable=False, server_default="")
        )


def downgrade() -> None:
    with op.batch_alter_table("inbox_uploads") as batch:
        batch.drop_column("beacon_state")
