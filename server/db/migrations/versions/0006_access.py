"""auth: data access management (terms, applications, their steps, grants)

Revision ID: 0006_access
Revises: 0005_dataset_roles
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0006_access"
down_revision = "0005_dataset_roles"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(JSONB(), "postgresql")


def _dataset(ondelete: str) -> sa.Column:
    return sa.Column(
        "dataset_id",
        sa.String(128),
        sa.ForeignKey("datasets.id", ondelete=ondelete),
        index=True,
        nullable=False,
    )


def upgrade() -> None:
    op.create_table(
        "access_terms",
        sa.Column(
            "dataset_id",
            sa.String(128),
            sa.ForeignKey("datasets.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("updated", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "access_applications",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        _dataset("RESTRICT"),
        sa.Column("subject", sa.String(256), nullable=False),
        sa.Column("issuer", sa.String(512), nullable=False),
        sa.Column("caller", sa.String(800), nullable=False, index=True),
        sa.Column("title", sa.String(512), nullable=False),
        sa.Column("purpose", JSON, nullable=False),
        sa.Column("institution", sa.String(512), nullable=False),
        sa.Column("accepted_terms", JSON, nullable=False),
        sa.Column("state", sa.String(16), nullable=False, index=True),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "access_events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "application_id",
            sa.Integer,
            sa.ForeignKey("access_applications.id", ondelete="CASCADE"),
            index=True,
            nullable=False,
        ),
        sa.Column("time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(800), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("comment", sa.Text, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
    )
    op.create_table(
        "access_grants",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "application_id",
            sa.Integer,
            sa.ForeignKey("access_applications.id", ondelete="RESTRICT"),
            unique=True,
            nullable=False,
        ),
        _dataset("RESTRICT"),
        sa.Column("subject", sa.String(256), nullable=False),
        sa.Column("issuer", sa.String(512), nullable=False),
        sa.Column("caller", sa.String(800), nullable=False, index=True),
        sa.Column("duo", JSON, nullable=False),
        sa.Column("granted", sa.DateTime(timezone=True), nullable=False),
        sa.Column("granted_by", sa.String(800), nullable=False),
        sa.Column("expires", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_by", sa.String(800), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("access_grants")
    op.drop_table("access_events")
    op.drop_table("access_applications")
    op.drop_table("access_terms")
