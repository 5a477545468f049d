"""Encrypted ``drs://`` inputs of a WES run: decrypted into the run only, removed after.

At submit, a ``drs://`` input that is a Crypt4GH-archived file is given a
path under the run's own directory (``decrypted/``), recorded with its
archive location in ``c4gh-inputs.json`` (locations only). When the worker
starts the run it writes each plaintext there, streamed from the archive a
segment at a time (mode 0600; the sandbox then hands the directory to the run
user, and no other run can enter it), and when the run ends, whatever its
outcome, it deletes them: the plaintext exists only inside the run's sandbox
and only while the run executes.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from server.settings import Settings

logger = logging.getLogger(__name__)

MANIFEST = "c4gh-inputs.json"
DIRECTORY = "decrypted"


def target_for(workdir: Path, location: str) -> Path:
    """Where the plaintext of an archived file goes in the run (``GPF1.bam.c4gh`` ->
    ``decrypted/GPF1.bam``, its index beside it under its own name)."""
    return workdir / DIRECTORY / Path(location).name.removesuffix(".c4gh")


def record(workdir: Path, staged: dict[str, str]) -> None:
    if staged:
        (workdir / MANIFEST).write_text(json.dumps(staged), "utf-8")


def stage(settings: Settings, workdir: Path) -> list[Path]:
    """Decrypt every recorded input into the run's directory."""
    from server.storage import for_location

    manifest = workdir / MANIFEST
    if not manifest.is_file():
        return []
    staged = json.loads(manifest.read_text("utf-8"))
    written = []
    for target, location in staged.items():
        path = Path(target)
        if path.parent != workdir / DIRECTORY:
            raise ValueError(f"refusing to decrypt outside the run: {target}")
        path.parent.mkdir(mode=0o700, exist_ok=True)
        fd = os.open(path, os.O_CREAT | os.O_TRUNC | os.O_WRONLY, 0o600)
        written.append(path)
        with os.fdopen(fd, "wb") as out, for_location(location, settings).open() as src:
            while chunk := src.read(4 << 20):
                out.write(chunk)
    return written


def remove(workdir: Path) -> None:
    """Delete the decrypted inputs (the manifest stays: it holds no data)."""
    directory = workdir / DIRECTORY
    if not directory.is_dir():
        return
    for path in directory.iterdir():
        try:
            path.unlink()
        except OSError:
            logger.exception("could not remove a decrypted input of run %s", workdir.name)
