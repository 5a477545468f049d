"""drs: WES outputs published as DRS objects

Revision ID: 0002_drs
"""

import sqlalchemy as sa
from alembic import op

revision = "0002_drs"
down_revision = "0001_core"
branch_labels = ("drs",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "drs_wes_outputs",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("run_id", sa.String(64), nullable=False, index=True),
        sa.Column("name", sa.String(256), nullable=False),
        sa.Column("owner", sa.String(512), nullable=False, index=True),
        sa.Column("location", sa.Text, nullable=False),
        sa.Column("url_key", sa.Text, nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("md5", sa.String(32), nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("run_id", "name"),
    )


def downgrade() -> None:
    op.drop_table("drs_wes_outputs")
