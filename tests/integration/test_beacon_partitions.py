"""Chromosome partitions of the variant store moved to a second PostgreSQL
server through ``postgres_fdw``: the test starts its own second cluster
(``scripts/pg-throwaway.sh``), moves the chr1 and chr22 partitions of
``beacon_variants`` there as foreign tables, and gets the same Beacon answers,
records, carriers and frequencies as from one server; adding and withdrawing
genomes keeps working across the two servers."""

from __future__ import annotations

import json
import random
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa

from server.auth import Caller
from server.beacon import service
from server.beacon.metadata import load_metadata
from server.beacon.request import build
from server.beacon.store import fold, withdraw
from server.beacon.tables import BeaconVariant
from server.beacon.vcf import load_vcf
from server.settings import Settings
from tests.conftest import REPO, fresh_database, migrated, node_settings
from tests.support.postgres import throwaway_cluster
from tests.unit.beacon.conftest import add_dataset
from tests.unit.beacon.test_genomes import snapshot

SHARED = REPO.parent / "shared"
MOVED = ("1", "22")
CHROMS = {"chr1": 248956422, "chr2": 242193529, "chr22": 50818468, "chrX": 156040895}


@pytest.fixture
def second_server():
    """(host, port) of a second PostgreSQL cluster of the test's own, removed afterwards."""
    with throwaway_cluster(required=True) as cluster:
        yield "127.0.0.1", cluster.port


@pytest.fixture
def pg_db(tmp_path, pg_available):
    with fresh_database("postgresql", tmp_path) as url:
        database = migrated(node_settings(tmp_path / "var", url))
        yield database
        database.dispose()


def _genomes(directory: Path, n: int, seed: int) -> list[Path]:
    """Single-sample VCFs (no reference calls) over four chromosomes, with
    shared and private alleles, haploid chrX calls for half of them."""
    rng = random.Random(seed)
    sites = []
    for chrom, length in CHROMS.items():
        for pos in sorted(rng.sample(range(10000, length, 997), 150)):
            sites.append((chrom, pos, rng.choice("ACGT")))
    paths = []
    for k in range(n):
        name = f"P{k:03d}"
        lines = [
            "##fileformat=VCFv4.2",
            "##reference=GRCh38",
            *(f"##contig=<ID={c},length={n}>" for c, n in CHROMS.items()),
            '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">',
            f"#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\t{name}",
        ]
        for chrom, pos, ref in sites:
            if rng.random() > 0.3:
                continue
            alt = "ACGT".replace(ref, "")[rng.randrange(3)]
            gt = rng.choice(["0/1", "0|1", "1|1", "1/1", "./1"])
            if chrom == "chrX" and k % 2:
                gt = "1"
            lines.append(f"{chrom}\t{pos}\t.\t{ref}\t{alt}\t.\tPASS\t.\tGT\t{gt}")
        path = directory / f"{name}.vcf"
        path.write_text("\n".join(lines) + "\n")
        paths.append(path)
    (directory / "individuals.json").write_text(
        json.dumps(
            [
                {
                    "id": f"P{k:03d}",
                    "sex": {"id": "NCIT:C16576", "label": "female"}
                    if k % 2 == 0
                    else {"id": "NCIT:C20197", "label": "male"},
                }
                for k in range(n)
            ]
        )
    )
    return paths


QUERIES = [
    ("g_variants", {"referenceName": "22", "start": [16050000], "end": [17000000]}, []),
    ("g_variants", {"referenceName": "chr1", "start": [0], "end": [248956422]}, []),
    ("g_variants", {"referenceName": "X", "start": [0], "end": [156040895]}, []),
    (
        "g_variants",
        {"referenceName": "2", "start": [0], "end": [50000000]},
        [{"id": "NCIT:C16576"}],
    ),
    ("individuals", {"referenceName": "1", "start": [0], "end": [100000000]}, []),
    ("individuals", {"referenceName": "22", "start": [16050000], "end": [16100000]}, []),
]


def _answers(db, extra: list[tuple]) -> list:
    settings = Settings(beacon_rate_per_minute=0)
    out = []
    with db.session() as s:
        for entry, params, filters in QUERIES + extra:
            req = build(
                entry,
                params=params,
                filters=filters,
                granularity="record",
                limit=1000,
                max_limit=1000,
            )
            response, _ = service.query(s, settings, Caller(), req)
            out.append(
                json.dumps(
                    {k: response[k] for k in ("responseSummary", "response") if k in response},
                    sort_keys=True,
                )
            )
    return out


def _move(db, host: str, port: int, chroms) -> None:
    """Move the partitions of ``chroms`` to the second server, as foreign tables."""
    remote = sa.create_engine(f"postgresql+psycopg://postgres@{host}:{port}/postgres")
    server = "shard_" + uuid.uuid4().hex[:12]
    with db.engine.begin() as conn:
        schema = conn.exec_driver_sql("SELECT current_schema()").scalar_one()
        conn.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS postgres_fdw SCHEMA public")
        conn.exec_driver_sql(
            f"CREATE SERVER {server} FOREIGN DATA WRAPPER postgres_fdw "
            f"OPTIONS (host '{host}', port '{port}', dbname 'postgres')"
        )
        conn.exec_driver_sql(
            f"CREATE USER MAPPING FOR CURRENT_USER SERVER {server} OPTIONS (user 'postgres')"
        )
    for chrom in chroms:
        part = f"beacon_variants_chr{chrom}"
        table = BeaconVariant.__table__.to_metadata(sa.MetaData(), name=part)
        for index in list(table.indexes):
            table.indexes.discard(index)
        table.create(remote)
        with db.engine.begin() as conn:
            conn.exec_driver_sql(f"ALTER TABLE beacon_variants DETACH PARTITION {part}")
            conn.exec_driver_sql(f"ALTER TABLE {part} RENAME TO {part}_local")
            conn.exec_driver_sql(
                f"CREATE FOREIGN TABLE {part} PARTITION OF beacon_variants "
                f"FOR VALUES IN ('{chrom}') SERVER {server} "
                f"OPTIONS (schema_name 'public', table_name '{part}')"
            )
            conn.exec_driver_sql(f"INSERT INTO beacon_variants SELECT * FROM {part}_local")
            conn.exec_driver_sql(f"DROP TABLE {part}_local")
        with remote.connect() as rc:
            assert rc.exec_driver_sql(f"SELECT count(*) FROM {part}").scalar_one() > 0
    with db.engine.connect() as conn:
        kinds = dict(
            conn.exec_driver_sql(
                "SELECT c.relname, c.relkind FROM pg_class c JOIN pg_namespace n "
                "ON n.oid = c.relnamespace WHERE n.nspname = %s AND c.relname LIKE "
                "'beacon_variants_chr%%'",
                (schema,),
            ).all()
        )
    assert {kinds[f"beacon_variants_chr{c}"] for c in chroms} == {"f"}
    assert kinds["beacon_variants_chr2"] == "r"
    remote.dispose()
    db.engine.dispose()  # the foreign server is used by new connections only


def test_partitions_on_a_second_server_give_the_same_answers(pg_db, second_server, tmp_path):
    db = pg_db
    add_dataset(db, "kg")
    load_vcf(
        db,
        SHARED / "testdata" / "beacon" / "test_1000G_hg38.annotated.vcf.gz",
        "kg",
        progress=False,
    )
    load_metadata(
        db, sorted((SHARED / "testdata" / "beacon" / "bff").glob("*.json")), "kg", progress=False
    )
    genomes = _genomes(tmp_path, 14, seed=4)
    # "multi": 12 genomes now, one more and one withdrawn after the move;
    # "expect": the same genomes in the end, added before the move
    add_dataset(db, "multi")
    add_dataset(db, "expect")
    for ds in ("multi", "expect"):
        load_metadata(db, [tmp_path / "individuals.json"], ds, progress=False)
    for p in genomes[:12]:
        load_vcf(db, p, "multi", progress=False, single=True)
    final = [*genomes[1:12], genomes[13]]
    random.Random(2).shuffle(final)
    for p in final:
        load_vcf(db, p, "expect", progress=False, single=True)
    extra = [
        ("g_variants", {"referenceName": "1", "start": [0], "end": [248956422]}, []),
    ]
    before = _answers(db, extra)
    snaps = {ds: snapshot(db, ds) for ds in ("kg", "multi")}
    assert any(k[0] == "1" for k in snaps["multi"]) and any(k[0] == "22" for k in snaps["kg"])

    _move(db, *second_server, MOVED)

    assert _answers(db, extra) == before
    assert {ds: snapshot(db, ds) for ds in ("kg", "multi")} == snaps
    # writes across both servers: an add and a withdrawal
    load_vcf(db, genomes[13], "multi", progress=False, single=True)
    withdraw(db, "multi", "P000", caller="test")
    multi, expect = snapshot(db, "multi"), snapshot(db, "expect")
    assert multi == expect and any(k[0] == "1" for k in multi)
    # and the fold of the pending deltas into records on both servers
    assert fold(db, "multi").rows > 0
    assert snapshot(db, "multi") == expect
