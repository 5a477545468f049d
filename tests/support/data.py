"""Test data registered on a node: the same records in two formats as one object."""

from __future__ import annotations

from pathlib import Path

from server.registry import add_files


def add_formats(
    db, testdata: Path, stem: str, suffixes: tuple[str, ...], dataset_id: str, object_id: str, **kw
):
    """Register ``testdata/<stem><suffix>`` for each suffix (a BAM and its CRAM, a
    VCF and its BCF) as the one object ``object_id`` of ``dataset_id``."""
    paths = [testdata / (stem + suffix) for suffix in suffixes]
    return add_files(db, paths, dataset_id, object_id=object_id, progress=False, **kw)
