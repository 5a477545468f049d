"""Where a snapshot of an external test suite (not published on PyPI) is found.

Looked for in this order: the environment variable the suite's script reads
(a source tree or a bare git directory), ``var/<name>/src``, then the local
mirror of public repositories (``$PUBLIC_MIRROR_DIR``, default ``/work/.mirror``)
as ``<owner>+<repo>/repo``. ``scripts/lib/snapshot.sh`` is the same lookup for
the scripts that install and run the suites.
"""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def find_snapshot(variable: str, name: str, mirror_name: str) -> Path | None:
    """The first snapshot that exists, or None."""
    if os.environ.get(variable):
        candidates = [Path(os.environ[variable])]
    else:
        mirror = Path(os.environ.get("PUBLIC_MIRROR_DIR", "/work/.mirror"))
        candidates = [REPO / "var" / name / "src", mirror / mirror_name / "repo"]
    return next((c for c in candidates if c.exists()), None)
