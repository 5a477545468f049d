"""The catalogue the FAIR Data Point tests publish: the demo cohort with its
seed metadata, a controlled dataset with a complete metadata file, and a
dataset whose metadata the shapes refuse."""

from __future__ import annotations

from pathlib import Path

from server.beacon.demo import METADATA
from server.beacon.metadata import load_metadata
from server.catalogue import metadata
from server.registry import add_dataset, add_files

SEED = Path(__file__).resolve().parents[2] / "seed_data"

GOOD = """
title: Danish reference cohort
description: Whole genomes of a Danish reference cohort, shared under controlled access.
keywords: [WGS, reference]
themes: [http://publications.europa.eu/resource/authority/data-theme/HEAL]
publisher: {name: Danish genome infrastructure, url: "https://genome.example.dk"}
contact: {name: Data access committee, email: dac@genome.example.dk}
licence: https://creativecommons.org/licenses/by/4.0/
data_use: [DUO:0000042, DUO:0000019]
population_coverage: Adults living in Denmark
number_of_individuals: 3
issued: 2026-01-15
modified: 2026-11-01T10:00:00Z
catalogue: dk-national
catalogue_title: Danish national genomes
"""
# three faults the shapes catch: an e-mail that is no address, a date that is no
# date, a data-use term that is no DUO term
BAD = """
title: A dataset with broken metadata
contact: {name: Nobody, email: not-an-email}
issued: last spring
data_use: [GRU]
"""


def populate(db, tmp: Path) -> None:
    add_dataset(db, "demo", access="public", assembly="GPDEMO1", name="Demo cohort")
    load_metadata(db, [SEED / f for f in METADATA], "demo", progress=False)
    add_files(db, [SEED / "cohort.vcf.gz"], "demo", object_id="demo-cohort", progress=False)
    add_dataset(db, "ctl", access="controlled", assembly="GPDEMO1")
    (tmp / "ctl.yaml").write_text(GOOD)
    metadata.store(db, "ctl", tmp / "ctl.yaml")
    add_dataset(db, "bad", access="public")
    (tmp / "bad.yaml").write_text(BAD)
    metadata.store(db, "bad", tmp / "bad.yaml")
