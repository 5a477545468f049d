"""Servers as child processes: a free port, a process in its own session with its
output in a log file, a readiness poll and a stop of the whole process group.

The integration tests and the bench/ scripts start the same kinds of servers
(gunicorn, workers, moto, wes-service); one copy of these steps gives them the
same stop and readiness rules, and the same log tail when a server fails.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def clean_env() -> dict[str, str]:
    """This process's environment without GENOMEPORT_* variables: a child node is
    configured by what the caller adds, never by the developer's shell."""
    return {k: v for k, v in os.environ.items() if not k.startswith("GENOMEPORT_")}


def spawn(
    cmd: Sequence[str],
    log: Path,
    *,
    env: dict[str, str] | None = None,
    cwd: Path | str | None = None,
    append: bool = False,
) -> subprocess.Popen:
    """Start ``cmd`` in a session of its own (so ``stop`` reaches its children),
    stdout and stderr into ``log``: emptied first unless ``append``, always opened
    for appending, so that several processes can share one log."""
    log.parent.mkdir(parents=True, exist_ok=True)
    if not append:
        log.write_bytes(b"")
    with open(log, "ab") as fh:  # the child keeps its own descriptor
        return subprocess.Popen(
            list(cmd),
            env=env,
            cwd=cwd,
            stdout=fh,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def log_tail(log: Path | None, chars: int = 3000) -> str:
    return log.read_text(errors="replace")[-chars:] if log and log.exists() else ""


def wait_ready(
    url: str,
    proc: subprocess.Popen,
    log: Path | None = None,
    *,
    timeout: float = 60,
    request_timeout: float = 1,
    ready: Callable[[int], bool] = lambda status: status == 200,
) -> None:
    """Poll ``url`` until its status passes ``ready``; a RuntimeError with the
    log's tail if ``proc`` exits first or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args[0]} exited with {proc.returncode}:\n{log_tail(log)}")
        try:
            if ready(httpx.get(url, timeout=request_timeout).status_code):
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not become ready:\n{log_tail(log)}")


def stop(proc: subprocess.Popen, timeout: float = 20) -> None:
    """SIGTERM to the process group, SIGKILL if it is still there after ``timeout``."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def stop_all(procs: list[subprocess.Popen], *, remove: Path | None = None) -> None:
    """``stop`` each of ``procs``, then delete ``remove`` (their work directory)."""
    for proc in procs:
        stop(proc)
    if remove is not None:
        shutil.rmtree(remove, ignore_errors=True)
