"""auth: roles of subjects on datasets (data access committee, submitter)

Revision ID: 0005_dataset_roles
Revises: 0001_core
"""

import sqlalchemy as sa
from alembic import op

revision = "0005_dataset_roles"
down_revision = "0001_core"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "dataset_roles",
        sa.Column(
            "dataset_id",
            sa.String(128),
            sa.ForeignKey("datasets.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("role", sa.String(32), primary_key=True),
        sa.Column("subject", sa.String(256), primary_key=True),
        sa.Column("issuer", sa.String(512), primary_key=True),
        sa.Column("added", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_dataset_roles_subject", "dataset_roles", ["subject", "role"])


def downgrade() -> None:
    op.drop_index("ix_dataset_roles_subject", table_name="dataset_roles")
    op.drop_table("dataset_roles")
