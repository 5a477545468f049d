"""wes: runs and tasks

Revision ID: 0002_wes
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0002_wes"
down_revision = "0001_core"
branch_labels = ("wes",)
depends_on = None

DOC = sa.JSON().with_variant(JSONB(), "postgresql")


def _ts(name: str, nullable: bool = True) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "wes_runs",
        sa.Column("pk", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("id", sa.String(64), nullable=False, unique=True),
        sa.Column("owner", sa.String(512), nullable=False, index=True),
        sa.Column("state", sa.String(16), nullable=False, index=True),
        sa.Column("request", DOC, nullable=False),
        sa.Column("tags", DOC, nullable=False),
        sa.Column("engine", sa.String(32), nullable=False),
        sa.Column("engine_params", DOC, nullable=False),
        sa.Column("workdir", sa.Text, nullable=False),
        sa.Column("workflow", sa.Text, nullable=False),
        sa.Column("worker_id", sa.String(256), nullable=True, index=True),
        _ts("heartbeat"),
        sa.Column("pid", sa.Integer, nullable=True),
        sa.Column("pgid", sa.Integer, nullable=True),
        sa.Column("cluster_job_ids", DOC, nullable=False),
        sa.Column("cmd", DOC, nullable=False),
        _ts("created", nullable=False),
        _ts("start_time"),
        _ts("end_time"),
        sa.Column("exit_code", sa.Integer, nullable=True),
        sa.Column("outputs", DOC, nullable=False),
        sa.Column("system_logs", DOC, nullable=False),
        sa.CheckConstraint(
            "state IN ('QUEUED','INITIALIZING','RUNNING','PAUSED','COMPLETE','EXECUTOR_ERROR',"
            "'SYSTEM_ERROR','CANCELED','CANCELING','PREEMPTED')",
            name="ck_wes_state",
        ),
    )
    op.create_table(
        "wes_tasks",
        sa.Column("pk", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "run_pk",
            sa.Integer,
            sa.ForeignKey("wes_runs.pk", ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("name", sa.String(512), nullable=False),
        sa.Column("cmd", DOC, nullable=False),
        _ts("start_time"),
        _ts("end_time"),
        sa.Column("exit_code", sa.Integer, nullable=True),
        sa.Column("stdout_path", sa.Text, nullable=False),
        sa.Column("stderr_path", sa.Text, nullable=False),
        sa.Column("system_logs", DOC, nullable=False),
        sa.UniqueConstraint("run_pk", "seq"),
    )


def downgrade() -> None:
    op.drop_table("wes_tasks")
    op.drop_table("wes_runs")
