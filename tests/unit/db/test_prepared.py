"""PreparedSelect returns exactly what SQLAlchemy returns, on both databases."""

from __future__ import annotations

import sqlalchemy as sa

from server.db.prepared import PreparedSelect
from server.db.tables import DataFile, Dataset
from server.registry import add_dataset
from tests.support.data import add_formats

BAM = "reads/htsnexus_test_NA12878"


def _register(db, testdata):
    add_dataset(db, "pub", access="public")
    add_formats(db, testdata, BAM, (".bam", ".cram"), "pub", "na12878")


def test_plain_columns_take_the_direct_path_with_the_same_rows(db, testdata):
    _register(db, testdata)
    stmt = (
        sa.select(DataFile.pk, DataFile.format, DataFile.size, Dataset.access)
        .join(Dataset, Dataset.id == DataFile.dataset_id)
        .where(DataFile.object_id == sa.bindparam("object_id"))
        .order_by(DataFile.format)
    )
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
    stmt = sa.select(DataFile.format, DataFile.created).where(
        DataFile.object_id == sa.bindparam("oid")
    )
    query = PreparedSelect(stmt)
    rows = query.rows(db.engine, {"oid": "na12878"})
    if db.engine.dialect.name == "sqlite":  # DateTime is stored as text there
        assert query._plan(db.engine.dialect) is None
    assert all(hasattr(r.created, "year") for r in rows) and len(rows) == 2


def test_audit_rows_written_directly_read_back_like_sqlalchemy_rows(db):
    import datetime as dt

    from server.db.prepared import PreparedInsert
    from server.db.tables import AuditEvent

    when = dt.datetime(2026, 11, 29, 23, 59, 58, 123456, tzinfo=dt.UTC)
    row = {
        "time": when,
        "caller": "issuer|sub",
        "api": "htsget",
        "action": "ticket.reads",
        "dataset_id": "pub",
        "object_id": "na12878",
        "query": {"regions": [{"start": 1}], "method": "GET"},
        "outcome": "granted",
        "status": 200,
        "request_id": "r-1",
    }
    insert = PreparedInsert(AuditEvent.__table__)
    setup = (
        ("SET LOCAL synchronous_commit TO OFF",) if db.engine.dialect.name == "postgresql" else ()
    )
    insert.run(db.engine, row, setup=setup)
    assert insert._plan(db.engine.dialect, tuple(row)) is not None  # took the direct path
    with db.engine.begin() as conn:
        conn.execute(sa.insert(AuditEvent.__table__), {**row, "request_id": "r-2"})
    assert db.engine.pool.checkedout() == 0
    with db.session() as session:
        got = session.scalars(sa.select(AuditEvent).order_by(AuditEvent.id)).all()
        # time filters and JSON behave the same for both rows
        since = session.scalars(
            sa.select(AuditEvent.request_id).where(AuditEvent.time >= when)
        ).all()
    cols = [c.key for c in AuditEvent.__table__.columns if c.key not in ("id", "request_id")]
    assert len(got) == 2 and sorted(since) == ["r-1", "r-2"]
    assert [getattr(got[0], c) for c in cols] == [getattr(got[1], c) for c in cols]
    assert got[0].query == row["query"]
    assert got[0].time.replace(tzinfo=got[0].time.tzinfo or dt.UTC) == when


def test_an_insert_leaving_out_a_defaulted_column_runs_through_sqlalchemy(db):
    from server.db.prepared import PreparedInsert
    from server.db.tables import AuditEvent

    insert = PreparedInsert(AuditEvent.__table__)
    row = {
        "api": "htsget",
        "action": "x",
        "outcome": "error",
    }  # time, caller, ... use their defaults
    insert.run(db.engine, row)
    assert insert._plan(db.engine.dialect, tuple(row)) is None
    with db.session() as session:
        event = session.scalars(sa.select(AuditEvent)).one()
    assert event.caller == "anonymous" and event.time is not None and event.query == {}
