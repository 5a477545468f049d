"""Durable run state: every write is a conditional UPDATE, safe across processes.

The API inserts QUEUED runs and requests cancellation; workers claim QUEUED
runs (``SELECT ... FOR UPDATE SKIP LOCKED`` on PostgreSQL, a conditional
``UPDATE ... WHERE state='QUEUED'`` checked by rowcount on SQLite), move them
through the states in :mod:`server.wes.states` and keep a heartbeat on the runs
they execute. ``reconcile`` turns runs whose executor vanished into
SYSTEM_ERROR.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import signal
import socket
from collections.abc import Callable, Iterable
from typing import Any

import sqlalchemy as sa

from server.db import Database
from server.wes import states
from server.wes.tables import WesRun, WesTask, utcnow

logger = logging.getLogger(__name__)


def aware(value: dt.datetime | None) -> dt.datetime | None:
    """SQLite hands back naive datetimes; every stored time is UTC."""
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value


# ------------------------------------------------------------------ creation
def create_run(db: Database, **fields: Any) -> WesRun:
    fields.setdefault("state", states.QUEUED)
    fields.setdefault("created", utcnow())
    with db.session() as s:
        run = WesRun(cluster_job_ids=[], cmd=[], outputs={}, system_logs=[], **fields)
        s.add(run)
        s.flush()
        s.refresh(run)
        s.expunge(run)
    return run


def get_run(db: Database, run_id: str) -> WesRun | None:
    with db.session() as s:
        run = s.scalar(sa.select(WesRun).where(WesRun.id == run_id))
        if run is not None:
            s.expunge(run)
        return run


def get_tasks(
    db: Database,
    run_pk: int,
    *,
    after_seq: int = 0,
    limit: int | None = None,
    seq: int | None = None,
) -> list[WesTask]:
    with db.session() as s:
        q = sa.select(WesTask).where(WesTask.run_pk == run_pk)
        if seq is not None:
            q = q.where(WesTask.seq == seq)
        q = q.where(WesTask.seq > after_seq).order_by(WesTask.seq)
        if limit is not None:
            q = q.limit(limit)
        rows = list(s.scalars(q))
        for r in rows:
            s.expunge(r)
        return rows


# ---------------------------------------------------------------- transitions
def transition(
    db: Database,
    run_id: str,
    dst: str,
    *,
    expect: Iterable[str] | None = None,
    log: str | None = None,
    **fields: Any,
) -> bool:
    """Move ``run_id`` to ``dst`` if its current state allows it; True if it moved.

    Terminal targets set ``end_time``; the first move out of QUEUED sets
    ``start_time``. ``log`` appends a line to the run's system logs.
    """
    srcs = tuple(expect) if expect is not None else states.sources(dst)
    if not srcs:
        return False
    values: dict[str, Any] = {"state": dst, **fields}
    now = utcnow()
    if dst in states.TERMINAL:
        values.setdefault("end_time", now)
    with db.session() as s:
        if log is not None:
            current = s.scalar(sa.select(WesRun.system_logs).where(WesRun.id == run_id)) or []
            values["system_logs"] = list(current) + [log]
        res = s.execute(
            sa.update(WesRun)
            .where(WesRun.id == run_id, WesRun.state.in_(srcs))
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        moved = res.rowcount == 1
    if moved:
        logger.info("wes run %s -> %s", run_id, dst)
    return moved


def update_run(db: Database, run_id: str, **fields: Any) -> None:
    """Bookkeeping fields of a non-terminal run (pid, cmd, cluster job ids...)."""
    with db.session() as s:
        s.execute(
            sa.update(WesRun)
            .where(WesRun.id == run_id, WesRun.state.notin_(states.TERMINAL))
            .values(**fields)
            .execution_options(synchronize_session=False)
        )


def claim(db: Database, worker_id: str) -> WesRun | None:
    """Atomically take the oldest QUEUED run for ``worker_id`` (or None)."""
    now = utcnow()
    values = dict(state=states.INITIALIZING, worker_id=worker_id, heartbeat=now, start_time=now)
    with db.session() as s:
        if db.engine.dialect.name == "postgresql":
            pk = s.scalar(
                sa.select(WesRun.pk)
                .where(WesRun.state == states.QUEUED)
                .order_by(WesRun.pk)
                .limit(1)
                .with_for_update(skip_locked=True)
            )
            if pk is None:
                return None
            s.execute(
                sa.update(WesRun)
                .where(WesRun.pk == pk)
                .values(**values)
                .execution_options(synchronize_session=False)
            )
        else:
            pk = None
            for cand in s.scalars(
                sa.select(WesRun.pk)
                .where(WesRun.state == states.QUEUED)
                .order_by(WesRun.pk)
                .limit(8)
            ).all():
                res = s.execute(
                    sa.update(WesRun)
                    .where(WesRun.pk == cand, WesRun.state == states.QUEUED)
                    .values(**values)
                    .execution_options(synchronize_session=False)
                )
                if res.rowcount == 1:
                    pk = cand
                    break
            if pk is None:
                return None
        run = s.get(WesRun, pk)
        s.expunge(run)
    logger.info("wes run %s claimed by %s", run.id, worker_id)
    return run


def heartbeat(db: Database, worker_id: str) -> None:
    with db.session() as s:
        s.execute(
            sa.update(WesRun)
            .where(WesRun.worker_id == worker_id, WesRun.state.in_(states.ACTIVE))
            .values(heartbeat=utcnow())
            .execution_options(synchronize_session=False)
        )


def request_cancel(db: Database, run_id: str) -> str:
    """QUEUED -> CANCELED at once; INITIALIZING/RUNNING -> CANCELING (the worker
    executing it stops the work and moves it to CANCELED). Returns the state."""
    if transition(
        db, run_id, states.CANCELED, expect=(states.QUEUED,), log="canceled before it started"
    ):
        return states.CANCELED
    transition(db, run_id, states.CANCELING, expect=(states.INITIALIZING, states.RUNNING))
    run = get_run(db, run_id)
    return run.state if run else states.UNKNOWN


# -------------------------------------------------------------------- tasks
def save_task(db: Database, run_pk: int, seq: int, **fields: Any) -> None:
    """Insert or update task ``seq`` of a run."""
    with db.session() as s:
        task = s.scalar(sa.select(WesTask).where(WesTask.run_pk == run_pk, WesTask.seq == seq))
        if task is None:
            fields.setdefault("cmd", [])
            fields.setdefault("system_logs", [])
            s.add(WesTask(run_pk=run_pk, seq=seq, **fields))
        else:
            for key, value in fields.items():
                setattr(task, key, value)


# ------------------------------------------------------------- reconciliation
HOST = socket.gethostname()


def worker_identity() -> str:
    return f"{HOST}:{os.getpid()}:{os.urandom(4).hex()}"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie is dead for our purposes
        with open(f"/proc/{pid}/stat", "rb") as fh:
            return fh.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except OSError:
        return True


def worker_vanished(
    worker_id: str | None, beat: dt.datetime | None, timeout: float, now: dt.datetime | None = None
) -> bool:
    """A worker is gone when its heartbeat is stale, or - on this host - when
    its process no longer exists."""
    now = now or utcnow()
    beat = aware(beat)
    if not worker_id or beat is None or (now - beat).total_seconds() > timeout:
        return True
    host, _, rest = worker_id.partition(":")
    if host == HOST:
        pid = rest.partition(":")[0]
        if pid.isdigit() and not _pid_alive(int(pid)):
            return True
    return False


def kill_group(pgid: int | None, sig: int = signal.SIGKILL) -> bool:
    if not pgid or pgid <= 1 or pgid == os.getpgid(0):
        return False
    try:
        os.killpg(pgid, sig)
        return True
    except (ProcessLookupError, PermissionError):
        return False


def reconcile(
    db: Database, timeout: float, *, cancel_cluster_jobs: Callable[[list], None] | None = None
) -> list[str]:
    """Close every active run whose executor vanished. Returns their ids."""
    closed = []
    with db.session() as s:
        rows = s.execute(
            sa.select(
                WesRun.id,
                WesRun.state,
                WesRun.worker_id,
                WesRun.heartbeat,
                WesRun.pgid,
                WesRun.cluster_job_ids,
            ).where(WesRun.state.in_(states.ACTIVE))
        ).all()
    for run_id, state, worker_id, beat, pgid, job_ids in rows:
        if not worker_vanished(worker_id, beat, timeout):
            continue
        host = (worker_id or "").partition(":")[0]
        if host == HOST:
            kill_group(pgid)  # leftovers of a dead worker on this host
        if job_ids and cancel_cluster_jobs is not None:
            cancel_cluster_jobs(list(job_ids))
        if state == states.CANCELING:
            moved = transition(
                db,
                run_id,
                states.CANCELED,
                expect=(states.CANCELING,),
                log="executor vanished while canceling",
            )
        else:
            moved = transition(
                db,
                run_id,
                states.SYSTEM_ERROR,
                expect=(states.INITIALIZING, states.RUNNING),
                log=f"executor {worker_id} vanished (no heartbeat)",
            )
        if moved:
            closed.append(run_id)
    return closed


def state_counts(db: Database) -> dict[str, int]:
    with db.session() as s:
        rows = s.execute(sa.select(WesRun.state, sa.func.count()).group_by(WesRun.state)).all()
    counts = {state: 0 for state in states.ALL}
    counts.update({state: n for state, n in rows})
    return counts
