"""core: dataset catalogue metadata (Beacon /datasets and the FAIR Data Point)

Revision ID: 0005_dataset_metadata
Revises: 0001_core
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0005_dataset_metadata"
down_revision = "0001_core"
branch_labels = None
depends_on = None

DOC = sa.JSON().with_variant(JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "dataset_metadata",
        sa.Column(
            "dataset_id",
            sa.String(128),
            sa.ForeignKey("datasets.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("document", DOC, nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("updated", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("dataset_metadata")
