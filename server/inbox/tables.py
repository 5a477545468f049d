"""Inbox tables: one row per upload, and the datasets that require encrypted transfer.

An upload row is the queue of the ingest pipeline, as a WES run row is the
queue of the WES worker: the API inserts it (``uploading``), the submitter's
``complete`` queues it (``queued``), a ``genomeport ingest work`` process
claims it (``ingesting``, with a lease renewed as it goes) and finishes it
(``ingested`` or ``rejected`` with the reason). Every transition is a
conditional UPDATE on the current state, so two processes never both win
one; a claim whose lease ran out (the worker died) is claimed again, and the
ingest redone from the start, which is safe because each step is idempotent.

An upload asked for the Beacon (``beacon``, VCF and BCF only) has a step
more, after its registration: ``beacon_state`` goes ``loading`` (the file is
registered, the upload still ``ingesting``), then ``loaded`` or
``unchanged`` (with the upload ``ingested``) or ``failed`` (with the upload
``rejected``, its registration undone).
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from server.db import Base
from server.db.tables import utcnow

STATES = (
    "uploading",
    "received",
    "queued",
    "ingesting",
    "ingested",
    "rejected",
)  # received: an index


class InboxUpload(Base):
    __tablename__ = "inbox_uploads"

    pk: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(sa.String(64), unique=True)
    dataset_id: Mapped[str] = mapped_column(
        sa.String(128), sa.ForeignKey("datasets.id", ondelete="RESTRICT"), index=True
    )
    submitter: Mapped[str] = mapped_column(sa.String(512), index=True)  # caller label
    filename: Mapped[str] = mapped_column(sa.String(256))
    kind: Mapped[str] = mapped_column(sa.String(8), default="data")  # data | index
    index_upload: Mapped[str] = mapped_column(sa.String(64), default="")  # id of its index
    object_id: Mapped[str] = mapped_column(sa.String(256), default="")  # asked for; "" = accession
    beacon: Mapped[bool] = mapped_column(sa.Boolean, default=False)  # load into the Beacon
    # the Beacon step (beacon uploads): "" not yet, loading, loaded, unchanged, failed
    beacon_state: Mapped[str] = mapped_column(sa.String(16), default="", server_default="")
    declared_size: Mapped[int] = mapped_column(sa.BigInteger)
    declared_sha256: Mapped[str] = mapped_column(sa.String(64))  # of the encrypted bytes
    received: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    location: Mapped[str] = mapped_column(sa.Text)  # inbox path or s3:// key
    multipart_id: Mapped[str] = mapped_column(sa.String(1024), default="")  # S3 inbox
    state: Mapped[str] = mapped_column(sa.String(16), index=True)
    reason: Mapped[str] = mapped_column(sa.Text, default="")
    # the ingest
    accession: Mapped[str] = mapped_column(sa.String(64), default="")
    format: Mapped[str] = mapped_column(sa.String(8), default="")
    plain_size: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    plain_sha256: Mapped[str] = mapped_column(sa.String(64), default="")
    plain_md5: Mapped[str] = mapped_column(sa.String(32), default="")
    archive_location: Mapped[str] = mapped_column(sa.Text, default="")
    worker_id: Mapped[str] = mapped_column(sa.String(256), default="")
    lease: Mapped[dt.datetime | None] = mapped_column(sa.DateTime(timezone=True), nullable=True)
    attempts: Mapped[int] = mapped_column(sa.Integer, default=0)
    created: Mapped[dt.datetime] = mapped_column(sa.DateTime(timezone=True), default=utcnow)
    updated: Mapped[dt.datetime] = mapped_column(
        sa.DateTime(timezone=True), default=utcnow, onupdate=utcnow
    )


class TransferPolicy(Base):
    """A dataset whose files leave the node only encrypted (Crypt4GH tickets and
    access methods): plaintext tickets and plaintext data URLs are refused."""

    __tablename__ = "dataset_transfer_policy"

    dataset_id: Mapped[str] = mapped_column(
        sa.String(128), sa.ForeignKey("datasets.id", ondelete="CASCADE"), primary_key=True
    )
    encrypted_only: Mapped[bool] = mapped_column(sa.Boolean, default=True)
