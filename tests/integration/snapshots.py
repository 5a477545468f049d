"""Where a snapshot of an external test suite (not published on PyPI) is found.

Looked for in this order: the environment variable the suite's script reads
(a source tree or a bare git directory), ``var/<name>/src``, then the local
mirror of public repositories (``$PUBLIC_MIRROR_DIR``, default ``/work/.mirror``)
as ``<owner>+<repo>/repo``. ``scripts/lib/snapshot.sh`` is the same lookup for
the scripts that install and run the suites.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.support.processes import clean_env

REPO = Path(__file__).resolve().parents[2]


def find_snapshot(variable: str, name: str, mirror_name: str) -> Path | None:
    """The first snapshot that exists, or None."""
    if os.environ.get(variable):
        candidates = [Path(os.environ[variable])]
    else:
        mirror = Path(os.environ.get("PUBLIC_MIRROR_DIR", "/work/.mirror"))
        candidates = [REPO / "var" / name / "src", mirror / mirror_name / "repo"]
    return next((c for c in candidates if c.exists()), None)


def needs_snapshot(variable: str, name: str, mirror_name: str) -> pytest.MarkDecorator:
    """Skip the test where the suite has no snapshot; the reason names the variable."""
    suite = mirror_name.split("+", 1)[1]
    return pytest.mark.skipif(
        find_snapshot(variable, name, mirror_name) is None,
        reason=f"no {suite} snapshot (set {variable})",
    )


def reuse_venv(work: Path, name: str) -> Path:
    """Create the suite's work directory ``work``, with the virtualenv an earlier run
    of the suite's script built (``var/<name>/venv``) linked in, if there is one."""
    work.mkdir(parents=True, exist_ok=True)
    venv = REPO / "var" / name / "venv"
    if venv.exists():
        (work / "venv").symlink_to(venv)
    return work


def run_script(script: str, variables: dict[str, str], timeout: float):
    """``scripts/<script>`` with this environment, less GENOMEPORT_*, plus ``variables``."""
    return subprocess.run(
        ["bash", str(REPO / "scripts" / script)],
        env={**clean_env(), **variables},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def run_suite(snapshot: tuple[str, str, str], timeout: float, work: Path | None = None):
    """``scripts/<name>.sh`` on the suite's snapshot (``snapshot`` as for
    ``find_snapshot``); ``work``, if given, is its work directory (``<X>_WORK`` beside
    ``<X>_SRC``), with the virtualenv of an earlier run linked in."""
    variable, name, _ = snapshot
    variables = {variable: str(find_snapshot(*snapshot))}
    if work is not None:
        variables[variable.removesuffix("_SRC") + "_WORK"] = str(reuse_venv(work, name))
    return run_script(f"{name}.sh", variables, timeout)
