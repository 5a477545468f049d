"""A throwaway PostgreSQL cluster of a test's own (``scripts/pg-throwaway.sh``),
never the machine's shared server: for tests that stop a server or need a
second one."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import REPO, free_port

SCRIPT = REPO / "scripts" / "pg-throwaway.sh"


def _pg(*args: str, required: bool) -> None:
    result = subprocess.run(
        ["bash", str(SCRIPT), *args], capture_output=True, text=True, timeout=120
    )
    if result.returncode == 3:
        missing = pytest.fail if required else pytest.skip
        missing(f"PostgreSQL server binaries are not installed: {result.stderr.strip()}")
    assert result.returncode == 0, f"pg-throwaway {args[0]} failed: {result.stderr}"


@dataclass
class Cluster:
    directory: Path
    port: int
    required: bool

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def stop(self) -> None:
        _pg("stop", str(self.directory), required=self.required)

    def start(self) -> None:
        _pg("start", str(self.directory), required=self.required)


@contextmanager
def throwaway_cluster(*, required: bool):
    """A started cluster on a free port, destroyed afterwards. Without the
    server binaries the test fails when ``required``, else it is skipped."""
    directory = Path(tempfile.mkdtemp(prefix="genomeport-pg-"))  # handed to the postgres user
    cluster = Cluster(directory, free_port(), required)
    _pg("init", str(directory), str(cluster.port), required=required)
    try:
        cluster.start()
        yield cluster
    finally:
        subprocess.run(
            ["bash", str(SCRIPT), "destroy", str(directory)], capture_output=True, timeout=120
        )
        shutil.rmtree(directory, ignore_errors=True)
