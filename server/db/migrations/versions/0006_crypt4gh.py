"""inbox: Crypt4GH uploads (the ingest queue) and per-dataset transfer policy

Revision ID: 0006_crypt4gh
Revises: 0003_drs_integrity
"""

import sqlalchemy as sa
from alembic import op

revision = "0006_crypt4gh"
down_revision = "0003_drs_integrity"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "inbox_uploads",
        sa.Column("pk", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("id", sa.String(64), nullable=False, unique=True),
        sa.Column(
            "dataset_id",
            sa.String(128),
            sa.ForeignKey("datasets.id", ondelete="RESTRICT"),
            nullable=False,
        ),
        sa.Column("submitter", sa.String(512), nullable=False),
        sa.Column("filename", sa.String(256), nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("index_upload", sa.String(64), nullable=False),
        sa.Column("object_id", sa.String(256), nullable=False),
        sa.Column("beacon", sa.Boolean, nullable=False),
        sa.Column("declared_size", sa.BigInteger, nullable=False),
        sa.Column("declared_sha256", sa.String(64), nullable=False),
        sa.Column("received", sa.BigInteger, nullable=False),
        sa.Column("location", sa.Text, nullable=False),
        sa.Column("multipart_id", sa.String(1024), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("accession", sa.String(64), nullable=False),
        sa.Column("format", sa.String(8), nullable=False),
        sa.Column("plain_size", sa.BigInteger, nullable=False),
        sa.Column("plain_sha256", sa.String(64), nullable=False),
        sa.Column("plain_md5", sa.String(32), nullable=False),
        sa.Column("archive_location", sa.Text, nullable=False),
        sa.Column("worker_id", sa.String(256), nullable=False),
        sa.Column("lease", sa.DateTime(timezone=True), nullable=True),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_inbox_uploads_dataset_id", "inbox_uploads", ["dataset_id"])
    op.create_index("ix_inbox_uploads_submitter", "inbox_uploads", ["submitter"])
    op.create_index("ix_inbox_uploads_state", "inbox_uploads", ["state"])
    op.create_table(
        "dataset_transfer_policy",
        sa.Column(
            "dataset_id",
            sa.String(128),
            sa.ForeignKey("datasets.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("encrypted_only", sa.Boolean, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("dataset_transfer_policy")
    op.drop_index("ix_inbox_uploads_state", table_name="inbox_uploads")
    op.drop_index("ix_inbox_uploads_submitter", table_name="inbox_uploads")
    op.drop_index("ix_inbox_uploads_dataset_id", table_name="inbox_uploads")
    op.drop_table("inbox_uploads")
