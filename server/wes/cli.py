"""``genomeport worker``: the process that executes WES runs."""

from __future__ import annotations

import click

from server.errors import ServiceError


@click.command("worker")
@click.option(
    "--slots",
    type=click.IntRange(1, 256),
    default=None,
    help="Runs executed at once (default: GENOMEPORT_WES_WORKER_SLOTS).",
)
@click.option(
    "--max-runs",
    type=click.IntRange(1),
    default=None,
    help="Exit after executing this many runs (default: run until stopped).",
)
@click.option(
    "--idle-exit",
    type=float,
    default=None,
    help="Exit after this many seconds with nothing to do (default: never).",
)
@click.option(
    "--reconcile-only", is_flag=True, help="Only close runs whose executor vanished, then exit."
)
def worker(slots, max_runs, idle_exit, reconcile_only):
    """Execute queued WES runs.

    The API only records submitted runs as QUEUED; this command claims them
    from the database (safely shared by any number of workers and API
    processes), runs each with its workflow engine (cwltool, or Toil for a
    Slurm cluster) in its own process group, records the state transitions,
    per-task logs and outputs, and stops runs whose cancellation was requested.
    On start and periodically it marks runs whose executor vanished (a dead
    worker or a stale heartbeat) as SYSTEM_ERROR. Stop it with SIGTERM or
    Ctrl-C: runs still executing are stopped and marked SYSTEM_ERROR.

    Every run executes in the sandbox (GENOMEPORT_WES_SANDBOX=bwrap: bubblewrap
    as the user genomeport-run, which needs this worker to run as root); the
    worker refuses to start when the sandbox does not work here.
    """
    from server.wes.sandbox import SandboxError
    from server.wes.worker import Worker, serve

    ctx = click.get_current_context().obj
    if reconcile_only:
        closed = Worker(ctx.settings, ctx.db).reconcile()
        click.echo(f"closed {len(closed)} run(s) whose executor vanished")
        return
    try:
        serve(ctx.settings, ctx.db, slots=slots, max_runs=max_runs, idle_exit=idle_exit)
    except SandboxError as exc:
        raise click.ClickException(f"the WES sandbox does not work here: {exc}") from None
    except ServiceError as exc:  # pragma: no cover - surfaced by the group
        raise click.ClickException(str(exc)) from None


commands: list[click.Command] = [worker]
