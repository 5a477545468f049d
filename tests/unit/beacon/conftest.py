"""Fixtures for the Beacon store tests: a registered dataset on each database."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

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


def sample_names(session, dataset_id: str) -> dict[int, str]:
    """Sample index -> name, of the dataset's genomes."""
    from server.beacon.tables import BeaconSample

    rows = session.execute(
        sa.select(BeaconSample.idx, BeaconSample.name).where(BeaconSample.dataset_id == dataset_id)
    )
    return dict(rows.all())
