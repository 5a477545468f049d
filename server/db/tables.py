"""Core tables: the registry of datasets and data files, and the audit log."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from server.db import Base, Document


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Dataset(Base):
    __tablename__ = "datasets"

    id: Mapped[str] = mapped_column(sa.String(128), primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(256), default="")
    description: Mapped[str] = mapped_column(sa.Text, default="")
    assembly: Mapped[str] = mapped_column(sa.String(64), default="")
    access: Mapped[str] = mapped_column(sa.String(16))  # public | registered | controlled
    # The ControlledAccessGrants "value" that grants access (default: the dataset id)
    grant_value: Mapped[str] = mapped_column(sa.String(512), default="")
    created: Mapped[dt.datetime] = mapped_column(sa.DateTime(timezone=True), default=utcnow)
    updated: Mapped[dt.datetime] = mapped_column(
        sa.DateTime(timezone=True), default=utcnow, onupdate=utcnow
    )


class DataFile(Base):
    """One file of one object id. Several files (BAM and CRAM, VCF and BCF) may
    share an ``object_id``; htsget's ``format`` picks among them."""

    __tablename__ = "data_files"
    __table_args__ = (sa.UniqueConstraint("object_id", "format"),)

    pk: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    object_id: Mapped[str] = mapped_column(sa.String(256), index=True)
    dataset_id: Mapped[str] = mapped_column(
        sa.String(128), sa.ForeignKey("datasets.id", ondelete="RESTRICT"), index=True
    )
    location: Mapped[str] = mapped_column(sa.Text)  # absolute path or s3://bucket/key
    format: Mapped[str] = mapped_column(sa.String(8))  # BAM | CRAM | VCF | BCF
    index_location: Mapped[str] = mapped_column(sa.Text, default="")
    index_format: Mapped[str] = mapped_column(sa.String(8), default="")  # BAI CSI TBI CRAI
    reference: Mapped[str] = mapped_column(sa.Text, default="")
    size: Mapped[int] = mapped_column(sa.BigInteger)
    mtime_ns: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    sha256: Mapped[str] = mapped_column(sa.String(64))
    md5: Mapped[str] = mapped_column(sa.String(32))
    index_size: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    # 0: not recorded (registered before revision 0003_drs_integrity)
    index_mtime_ns: Mapped[int] = mapped_column(sa.BigInteger, default=0, server_default="0")
    index_sha256: Mapped[str] = mapped_column(sa.String(64), default="")
    index_md5: Mapped[str] = mapped_column(sa.String(32), default="")
    created: Mapped[dt.datetime] = mapped_column(sa.DateTime(timezone=True), default=utcnow)
    updated: Mapped[dt.datetime] = mapped_column(
        sa.DateTime(timezone=True), default=utcnow, onupdate=utcnow
    )


class AuditEvent(Base):
    """Append-only: rows are inserted, never updated or deleted by the node."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(
        sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    time: Mapped[dt.datetime] = mapped_column(
        sa.DateTime(timezone=True), default=utcnow, index=True
    )
    caller: Mapped[str] = mapped_column(sa.String(512), default="anonymous", index=True)
    api: Mapped[str] = mapped_column(sa.String(16), index=True)
    action: Mapped[str] = mapped_column(sa.String(64))
    dataset_id: Mapped[str] = mapped_column(sa.String(128), default="", index=True)
    object_id: Mapped[str] = mapped_column(sa.String(256), default="")
    query: Mapped[dict] = mapped_column(Document, default=dict)
    outcome: Mapped[str] = mapped_column(
        sa.String(32)
    )  # granted | denied | refused (budget) | error
    status: Mapped[int] = mapped_column(sa.Integer, default=200)
    request_id: Mapped[str] = mapped_column(sa.String(64), default="")


class DatasetMetadata(Base):
    """A dataset's catalogue metadata (``genomeport dataset add|update --metadata``):
    the document as given (YAML or JSON, parsed), answered by Beacon ``/datasets``
    and the FAIR Data Point. A dataset without a row gets defaults
    (``server.catalogue.metadata``)."""

    __tablename__ = "dataset_metadata"

    dataset_id: Mapped[str] = mapped_column(
        sa.String(128), sa.ForeignKey("datasets.id", ondelete="CASCADE"), primary_key=True
    )
    document: Mapped[dict] = mapped_column(Document, default=dict)
    source: Mapped[str] = mapped_column(sa.Text, default="")  # the file it came from
    sha256: Mapped[str] = mapped_column(sa.String(64), default="")
    updated: Mapped[dt.datetime] = mapped_column(
        sa.DateTime(timezone=True), default=utcnow, onupdate=utcnow
    )
