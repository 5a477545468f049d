"""cwltool with each tool's own streams: ``python cwl_launcher.py TASKS_DIR ARGS...``.

Runs ``cwltool.main.run(ARGS)`` with one change: every command line tool cwltool
starts writes its stdout and stderr to files of its own
(``TASKS_DIR/tool-<n>.stdout`` / ``.stderr``) instead of cwltool's stderr, and
its real start and end (time, command, exit status) are appended as one JSON
line each to ``TASKS_DIR/events.jsonl``, which the worker turns into WES tasks.
A tool that names its own ``stdout:``/``stderr:`` file keeps it; that file is
hard-linked to the task's stream when the tool ends.

cwltool has no hook for this (its ``RuntimeContext.default_stdout`` is one
stream for all tools), so the launcher wraps ``cwltool.job._job_popen``, the
one function through which cwltool starts every tool process. It imports
nothing of the node: the sandbox mounts this file alone.
"""

from __future__ import annotations

import datetime as dt
import inspect
import itertools
import json
import os
import sys
import threading


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat()


def install(tasks_dir: str) -> None:
    import cwltool.job as job

    real = job._job_popen
    counter = itertools.count(1)
    lock = threading.Lock()
    events = os.path.join(tasks_dir, "events.jsonl")

    def emit(**event) -> None:
        line = json.dumps(event) + "\n"
        with lock, open(events, "a", encoding="utf-8") as fh:
            fh.write(line)

    signature = inspect.signature(real)

    def traced(*args, **kwargs):
        """``real`` with the tool's own streams; its arguments as cwltool gives them."""
        call = signature.bind(*args, **kwargs)
        call.apply_defaults()
        given = call.arguments
        commands, name = given["commands"], given["name"]
        seq = next(counter)
        base = os.path.join(tasks_dir, f"tool-{seq}")
        # closed in the finally below, once the tool has exited
        out = open(base + ".stdout", "wb")  # noqa: SIM115
        err = open(base + ".stderr", "wb")  # noqa: SIM115
        emit(
            event="start",
            seq=seq,
            name=name or f"tool-{seq}",
            cmd=[str(c) for c in commands],
            time=_now(),
            stdout=base + ".stdout",
            stderr=base + ".stderr",
        )
        code = None
        try:
            code = real(**{**given, "default_stdout": out, "default_stderr": err})
            return code
        finally:
            out.close()
            err.close()
            for own, stream in (
                (given["stdout_path"], ".stdout"),
                (given["stderr_path"], ".stderr"),
            ):
                if own and os.path.isfile(own):  # the tool's declared stdout/stderr file
                    try:
                        os.unlink(base + stream)
                        os.link(own, base + stream)
                    except OSError:
                        pass
            emit(event="end", seq=seq, time=_now(), exit_code=code)

    job._job_popen = traced


def main(argv: list[str]) -> int:
    tasks_dir, args = argv[0], argv[1:]
    os.makedirs(tasks_dir, exist_ok=True)
    install(tasks_dir)
    from cwltool.main import run

    return run(args)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
