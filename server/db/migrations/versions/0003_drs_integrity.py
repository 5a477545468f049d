"""drs integrity: the registered modification time of each file's index

The data plane refuses to serve a file or an index whose size or modification
time differ from the registered ones; ``data_files`` already held the data
file's ``mtime_ns``, this adds the index's. Rows registered before this
revision get 0 ("not recorded"): their index is checked by size until
``genomeport files verify`` (or ``files add --verify``) records it.

Revision ID: 0003_drs_integrity
"""

import sqlalchemy as sa
from alembic import op

revision = "0003_drs_integrity"
down_revision = "0002_drs"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("data_files") as batch:
        batch.add_column(
            sa.Column("index_mtime_ns", sa.BigInteger, nullable=False, server_default="0")
        )


def downgrade() -> None:
    with op.batch_alter_table("data_files") as batch:
        batch.drop_column("index_mtime_ns")
