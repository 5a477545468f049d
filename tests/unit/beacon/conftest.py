"""Fixtures for the Beacon store tests: a registered dataset on each database."""

from __future__ import annotations

import pytest

from server.beacon import engine
from server.db.tables import Dataset


def add_dataset(db, dataset_id: str = "ds1", access: str = "public", assembly: str = "GRCh38"):
    with db.session() as s:
        s.add(
            Dataset(
                id=dataset_id,
                name=dataset_id,
                description="",
                assembly=assembly,
                access=access,
                grant_value=dataset_id,
            )
        )
    return dataset_id


@pytest.fixture
def dataset(db):
    return add_dataset(db)


def visible_alleles(session, dataset_id: str) -> list:
    """The dataset's alleles as queries read them: its records with its pending
    deltas aggregated per allele (``engine.alleles``)."""
    ctx = engine.new_context(session)
    return engine.alleles(ctx, ctx.vcf_loads([dataset_id])[dataset_id], [])
