"""PreparedSelect returns exactly what SQLAlchemy returns, on both databases."""

from __future__ import annotations

import sqlalchemy as sa

from server.db.prepared import PreparedSelect
from server.db.tables import DataFile, Dataset
from server.registry import add_dataset, add_files

BAM = "reads/htsnexus_test_NA12878"


def _register(db, testdata):
    add_dataset(db, "pub", access="public")
    add_files(db, [testdata / (BAM + ".bam"), testdata / (BAM + ".cram")], "pub",
              object_id="na12878", progress=False)


def test_plain_columns_take_the_direct_path_with_the_same_rows(db, testdata):
    _register(db, testdata)
    stmt = (sa.select(DataFile.pk, DataFile.format, DataFile.size, Dataset.access)
            .join(Dataset, Dataset.id == DataFile.dataset_id)
            .where(DataFile.object_id == sa.bindparam("object_id")).order_by(DataFile.format))
    query = PreparedSelect(stmt)
    rows = query.rows(db.engine, {"object_id": "na12878"})
    assert query._plan(db.engine.dialect) is not None  # no type processing needed
    with db.engine.connect() as conn:
        expected = [tuple(r) for r in conn.execute(stmt, {"object_id": "na12878"})]
    assert [tuple(r) for r in rows] == expected and [r.format for r in rows] == ["BAM", "CRAM"]
    assert rows[0].access == "public"
    assert query.rows(db.engine, {"object_id": "none-such"}) == []
    assert db.engine.pool.checkedout() == 0  # the connection went back to the pool


def test_columns_needing_conversion_run_through_sqlalchemy(db, testdata):
    _register(db, testdata)
    stmt = sa.select(DataFile.format, DataFile.created).where(DataFile.object_id == sa.bindparam("oid"))
    query = PreparedSelect(stmt)
    rows = query.rows(db.engine, {"oid": "na12878"})
    if db.engine.dialect.name == "sqlite":  # DateTime is stored as text there
        assert query._plan(db.engine.dialect) is None
    assert all(hasattr(r.created, "year") for r in rows) and len(rows) == 2
