"""core: datasets, data files, audit log

Revision ID: 0001_core
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0001_core"
down_revision = None
branch_labels = None
depends_on = None

DOC = sa.JSON().with_variant(JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "datasets",
        sa.Column("id", sa.String(128), primary_key=True),
        sa.Column("name", sa.String(256), nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("assembly", sa.String(64), nullable=False),
        sa.Column("access", sa.String(16), nullable=False),
        sa.Column("grant_value", sa.String(512), nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("access IN ('public','registered','controlled')", name="ck_access"),
    )
    op.create_table(
        "data_files",
        sa.Column("pk", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("object_id", sa.String(256), nullable=False, index=True),
        sa.Column(
            "dataset_id",
            sa.String(128),
            sa.ForeignKey("datasets.id", ondelete="RESTRICT"),
            nullable=False,
            index=True,
        ),
        sa.Column("location", sa.Text, nullable=False),
        sa.Column("format", sa.String(8), nullable=False),
        sa.Column("index_location", sa.Text, nullable=False),
        sa.Column("index_format", sa.String(8), nullable=False),
        sa.Column("reference", sa.Text, nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("mtime_ns", sa.BigInteger, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("md5", sa.String(32), nullable=False),
        sa.Column("index_size", sa.BigInteger, nullable=False),
        sa.Column("index_sha256", sa.String(64), nullable=False),
        sa.Column("index_md5", sa.String(32), nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("object_id", "format"),
    )
    op.create_table(
        "audit_log",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer, "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("time", sa.DateTime(timezone=True), nullable=False, index=True),
        sa.Column("caller", sa.String(512), nullable=False, index=True),
        sa.Column("api", sa.String(16), nullable=False, index=True),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("dataset_id", sa.String(128), nullable=False, index=True),
        sa.Column("object_id", sa.String(256), nullable=False),
        sa.Column("query", DOC, nullable=False),
        sa.Column("outcome", sa.String(32), nullable=False),
        sa.Column("status", sa.Integer, nullable=False),
        sa.Column("request_id", sa.String(64), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("audit_log")
    op.drop_table("data_files")
    op.drop_table("datasets")
