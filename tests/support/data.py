"""Test data registered on a node: the same records in two formats as one object."""

from __future__ import annotations

import subprocess
from pathlib import Path

from server.registry import add_dataset, add_files

# The top of a miniature HPO in OBO format, for tests that add their own terms below
# it: the root and "Phenotypic abnormality" (its is_a written with a trailing comment,
# as HPO writes it).
HPO_ROOT = """format-version: 1.2
ontology: hp

[Term]
id: HP:0000001
name: All

[Term]
id: HP:0000118
name: Phenotypic abnormality
is_a: HP:0000001 ! All
"""


def add_formats(
    db, testdata: Path, stem: str, suffixes: tuple[str, ...], dataset_id: str, object_id: str, **kw
):
    """Register ``testdata/<stem><suffix>`` for each suffix (a BAM and its CRAM, a
    VCF and its BCF) as the one object ``object_id`` of ``dataset_id``."""
    paths = [testdata / (stem + suffix) for suffix in suffixes]
    return add_files(db, paths, dataset_id, object_id=object_id, progress=False, **kw)


# The controlled data of the access tests: dataset ``ctl`` with a BAM (object
# ``ctlreads``) and a VCF (``ctlvars``) whose variants its Beacon holds, and a
# second controlled dataset ``ctl2`` the grants on ``ctl`` must not open.
CONTROLLED_READS = "reads/HG00100.chr17slice.bam"
CONTROLLED_VARIANTS = "variants/sample1-bcbio-cancer.vcf.gz"


def add_controlled(db, testdata: Path, grant_value: str) -> None:
    """Register the controlled data: ``ctl`` (opened by ``grant_value``) and ``ctl2``."""
    from server.beacon.vcf import load_vcf

    add_dataset(db, "ctl", access="controlled", grant_value=grant_value)
    add_dataset(db, "ctl2", access="controlled")
    add_files(db, [testdata / CONTROLLED_READS], "ctl", object_id="ctlreads", progress=False)
    add_files(db, [testdata / CONTROLLED_VARIANTS], "ctl", object_id="ctlvars", progress=False)
    load_vcf(db, testdata / CONTROLLED_VARIANTS, "ctl", progress=False)


def bcftools_query(path: Path, *args: str) -> str:
    """What ``bcftools query ARGS PATH`` prints: the expected answers of the Beacon
    tests come from bcftools, not from the node's own VCF reader."""
    return subprocess.run(
        ["bcftools", "query", *args, str(path)], check=True, capture_output=True, text=True
    ).stdout
