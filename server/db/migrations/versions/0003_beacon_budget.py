"""beacon: one query budget per caller and dataset, shared by all workers

Revision ID: 0003_beacon_budget
Revises: 0002_beacon
"""

import sqlalchemy as sa
from alembic import op

revision = "0003_beacon_budget"
down_revision = "0002_beacon"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "beacon_budgets",
        sa.Column("caller", sa.String(256), primary_key=True),
        sa.Column("dataset_id", sa.String(128), primary_key=True),
        sa.Column("minute", sa.BigInteger, nullable=False),
        sa.Column("minute_n", sa.Integer, nullable=False),
        sa.Column("day", sa.Integer, nullable=False),
        sa.Column("day_n", sa.Integer, nullable=False),
    )
    op.create_index("ix_beacon_budgets_day", "beacon_budgets", ["day"])


def downgrade() -> None:
    op.drop_index("ix_beacon_budgets_day", table_name="beacon_budgets")
    op.drop_table("beacon_budgets")
