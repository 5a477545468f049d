"""WES tables: one row per run, one row per task (a CWL step or a cluster job).

A run row is the only shared state between the API processes (which insert
QUEUED runs and request cancellation) and the ``genomeport worker`` processes
(which claim, execute and finish runs). Every state change is a conditional
UPDATE on the current state, so two processes never both win a transition.
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from server.db import Base, Document


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class WesRun(Base):
    __tablename__ = "wes_runs"

    # Monotonic key: keyset pagination walks it, so each run is listed once.
    pk: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(sa.String(64), unique=True)
    owner: Mapped[str] = mapped_column(sa.String(512), index=True)
    state: Mapped[str] = mapped_column(sa.String(16), index=True)
    request: Mapped[dict] = mapped_column(Document, default=dict)  # echoed in RunLog
    tags: Mapped[dict] = mapped_column(Document, default=dict)
    engine: Mapped[str] = mapped_column(sa.String(32))
    engine_params: Mapped[dict] = mapped_column(Document, default=dict)  # validated
    workdir: Mapped[str] = mapped_column(sa.Text)
    workflow: Mapped[str] = mapped_column(sa.Text)  # what the engine runs (path or URL#frag)
    # Executor bookkeeping
    worker_id: Mapped[str | None] = mapped_column(sa.String(256), nullable=True, index=True)
    heartbeat: Mapped[dt.datetime | None] = mapped_column(sa.DateTime(timezone=True), nullable=True)
    pid: Mapped[int | None] = mapped_column(sa.Integer, nullable=True)
    pgid: Mapped[int | None] = mapped_column(sa.Integer, nullable=True)
    cluster_job_ids: Mapped[list] = mapped_column(Document, default=list)
    cmd: Mapped[list] = mapped_column(Document, default=list)
    created: Mapped[dt.datetime] = mapped_column(sa.DateTime(timezone=True), default=utcnow)
    start_time: Mapped[dt.datetime | None] = mapped_column(
        sa.DateTime(timezone=True), nullable=True
    )
    end_time: Mapped[dt.datetime | None] = mapped_column(sa.DateTime(timezone=True), nullable=True)
    exit_code: Mapped[int | None] = mapped_column(sa.Integer, nullable=True)
    outputs: Mapped[dict] = mapped_column(Document, default=dict)
    system_logs: Mapped[list] = mapped_column(Document, default=list)


class WesTask(Base):
    __tablename__ = "wes_tasks"
    __table_args__ = (sa.UniqueConstraint("run_pk", "seq"),)

    pk: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    run_pk: Mapped[int] = mapped_column(
        sa.Integer, sa.ForeignKey("wes_runs.pk", ondelete="CASCADE"), index=True
    )
    seq: Mapped[int] = mapped_column(sa.Integer)  # task id within the run: str(seq)
    name: Mapped[str] = mapped_column(sa.String(512))
    cmd: Mapped[list] = mapped_column(Document, default=list)
    start_time: Mapped[dt.datetime | None] = mapped_column(
        sa.DateTime(timezone=True), nullable=True
    )
    end_time: Mapped[dt.datetime | None] = mapped_column(sa.DateTime(timezone=True), nullable=True)
    exit_code: Mapped[int | None] = mapped_column(sa.Integer, nullable=True)
    stdout_path: Mapped[str] = mapped_column(sa.Text, default="")
    stderr_path: Mapped[str] = mapped_column(sa.Text, default="")
    system_logs: Mapped[list] = mapped_column(Document, default=list)
