"""What one Beacon allele query costs the database, pinned: the statements
SQLite runs (its trace callback) and the round trips to PostgreSQL (libpq's
own protocol trace: one per Sync or simple Query message), counted at the
driver, so that statements run straight on the DBAPI cursor count too.

An allele query is, on either database: the dataset registry with the load
journal (one statement), the query-budget upsert, one variant count per
dataset and the audit row; on SQLite the budget and the audit row are each
committed (BEGIN, INSERT, COMMIT), on PostgreSQL each statement commits
itself. A change that adds a statement fails here; one that removes one
updates the numbers (and the README's Beacon section). Every request still
writes its audit row and charges its budget, which is checked too.
"""

from __future__ import annotations

import contextlib
import tempfile
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy import event

from server.beacon.demo import METADATA
from server.beacon.metadata import load_metadata
from server.beacon.tables import BeaconBudget
from server.beacon.vcf import load_vcf
from server.db.tables import AuditEvent
from server.registry import add_dataset
from tests.unit.auth.nodes import module_node

SEED = Path(__file__).resolve().parents[2] / "seed_data"
ALLELE = {
    "referenceName": "1",
    "start": "35",
    "referenceBases": "A",
    "alternateBases": "G",
    "requestedGranularity": "count",
}
# (datasets asked about, SQLite statements, PostgreSQL round trips)
COST = {
    "one dataset": (8, 4),
    "two datasets": (9, 5),  # one more variant count
}


def populate(db) -> None:
    add_dataset(db, "pub", access="public", assembly="GPDEMO1")
    add_dataset(db, "ctl", access="controlled", assembly="GPDEMO1", grant_value="urn:ds:ctl")
    for ds in ("pub", "ctl"):
        load_vcf(db, SEED / "cohort.vcf.gz", ds, progress=False)
        load_metadata(db, [SEED / f for f in METADATA], ds, progress=False)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def node(request, tmp_path_factory, kit):
    # a budget that never refuses, so that every query pays its upsert
    yield from module_node(
        request,
        tmp_path_factory,
        lambda s: kit.trusting(s).with_overrides(
            beacon_rate_per_minute=10**9, beacon_rate_per_day=10**9
        ),
        populate,
    )


@contextlib.contextmanager
def sent(db):
    """The statements (SQLite) or round trips (PostgreSQL) sent while the block
    runs, as a list that is filled when the block ends."""
    out: list[str] = []
    engine = db.engine
    if engine.dialect.name == "sqlite":

        def on_checkout(dbapi_conn, _record, _proxy):
            dbapi_conn.set_trace_callback(out.append)

        event.listen(engine, "checkout", on_checkout)
        try:
            yield out
        finally:
            event.remove(engine, "checkout", on_checkout)
            engine.dispose()  # no connection keeps the callback
        return
    from psycopg import pq

    traces: list = []
    with contextlib.ExitStack() as files:

        def on_checkout(dbapi_conn, _record, _proxy):
            fh = files.enter_context(tempfile.TemporaryFile("w+"))
            dbapi_conn.pgconn.trace(fh.fileno())
            dbapi_conn.pgconn.set_trace_flags(pq.Trace.SUPPRESS_TIMESTAMPS | pq.Trace.REGRESS_MODE)
            traces.append((dbapi_conn.pgconn, fh))

        event.listen(engine, "checkout", on_checkout)
        try:
            yield out
        finally:
            event.remove(engine, "checkout", on_checkout)
            for pgconn, fh in traces:
                pgconn.untrace()
                fh.seek(0)
                for line in fh.read().splitlines():
                    parts = line.split("\t")
                    if parts[0] == "F" and len(parts) > 2 and parts[2] in ("Sync", "Query"):
                        out.append(parts[2])
            engine.dispose()  # no connection keeps writing to a closed trace


def audit_rows(db) -> int:
    with db.session() as s:
        return s.scalar(sa.select(sa.func.count()).select_from(AuditEvent))


def budget_used(db, dataset_id: str) -> int:
    with db.session() as s:
        return s.scalar(
            sa.select(sa.func.coalesce(sa.func.sum(BeaconBudget.day_n), 0)).where(
                BeaconBudget.dataset_id == dataset_id
            )
        )


CALLERS = {
    "anonymous, public dataset": ("pub", None),
    "anonymous, controlled dataset (boolean tier)": ("ctl", None),
    "passport with the grant, controlled dataset": ("ctl", "grant"),
}


@pytest.mark.parametrize("case", list(CALLERS))
def test_an_allele_query_costs_the_pinned_statements(node, kit, case):
    dataset, token = CALLERS[case]
    headers = {"Authorization": f"Bearer {kit.grant('urn:ds:ctl')}"} if token else {}
    params = {**ALLELE, "datasetIds": dataset}

    def ask():
        r = node.client.get("/beacon/v2/g_variants", params=params, headers=headers)
        assert r.status_code == 200, r.text
        return r.json()

    first = ask()  # warm: the caller's grant lookup is cached, as on a busy node
    audited, charged = audit_rows(node.db), budget_used(node.db, dataset)
    with sent(node.db) as statements:
        body = ask()
    assert body == first
    assert body["responseSummary"]["exists"] is True
    expected = COST["one dataset"][0 if node.db.engine.dialect.name == "sqlite" else 1]
    assert len(statements) == expected, statements
    assert audit_rows(node.db) == audited + 1
    assert budget_used(node.db, dataset) == charged + 1


def test_each_further_dataset_costs_one_variant_count(node):
    def ask():
        r = node.client.get("/beacon/v2/g_variants", params=ALLELE)
        assert r.status_code == 200, r.text
        return r.json()

    ask()
    audited = audit_rows(node.db)
    with sent(node.db) as statements:
        ask()
    sqlite_n, pg_n = COST["two datasets"]
    assert len(statements) == (sqlite_n if node.db.engine.dialect.name == "sqlite" else pg_n)
    assert audit_rows(node.db) == audited + 1


def test_the_counter_sees_a_statement_added_on_the_request_path(node, monkeypatch):
    """The counting itself can fail: one more statement on the path is seen."""
    from server.beacon import service
    from server.db.prepared import fetch_all

    real = service.registry_and_journal

    def with_one_more(session):
        fetch_all(session, "SELECT 1")
        return real(session)

    monkeypatch.setattr(service, "registry_and_journal", with_one_more)
    node.client.get("/beacon/v2/g_variants", params={**ALLELE, "datasetIds": "pub"})
    with sent(node.db) as statements:
        r = node.client.get("/beacon/v2/g_variants", params={**ALLELE, "datasetIds": "pub"})
    assert r.status_code == 200
    expected = COST["one dataset"][0 if node.db.engine.dialect.name == "sqlite" else 1]
    assert len(statements) == expected + 1
