"""Beacon v2: ingest rate and query latency, side by side in one run.

1. Ingest: `load-vcf` of the 2,548-sample 1000 Genomes VCF, against merely
   parsing the same file with pysam (records/s), per database.
2. Queries through HTTP (gunicorn + uvicorn workers) on a synthetic store of
   --variants variants over --samples individuals (random carriers, sex and an
   HPO phenotype per individual): p50/p99 of an allele query, a 1 Mb range
   query and a phenotype-filtered carrier count ("individuals with phenotype X
   carrying variant Y"), against a trivial endpoint (/beacon/v2/info) of the
   same server. The dataset is controlled by default, so the anonymous client
   is answered at the boolean tier: every query goes through the people rule
   (server.beacon.tiers) and pays the query-budget upsert (the budget is set
   so large that it never refuses).

Only ratios and differences measured side by side in this one run mean
anything; the machine is shared.

    python bench/beacon.py [--variants 10000000] [--samples 2500] [--queries 200]
                           [--db sqlite,postgresql]
                           [--skip-ingest] [--keep] [--access controlled|public]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
import sqlalchemy as sa  # noqa: E402

from server.beacon.tables import BeaconVariant  # noqa: E402
from tests.support.processes import clean_env, spawn, stop, wait_ready  # noqa: E402

TESTDATA = REPO.parent / "shared" / "testdata"
VCF = TESTDATA / "variants" / "test_1000G_hg38.vcf.gz"
PG_URL = os.environ.get("GENOMEPORT_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
PHENOTYPES = [
    "HP:0000365",
    "HP:0001250",
    "HP:0001263",
    "HP:0000707",
    "HP:0001629",
    "HP:0002664",
    "HP:0000478",
    "HP:0001627",
    "HP:0000152",
    "HP:0003011",
]


def database_url(kind: str, tmp: Path) -> tuple[str, callable]:
    if kind == "sqlite":
        return f"sqlite:///{tmp / 'bench.db'}", lambda: None
    import sqlalchemy as sa

    schema = "bench_" + uuid.uuid4().hex[:12]
    engine = sa.create_engine(PG_URL.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))

    def drop():
        with engine.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        engine.dispose()

    sep = "&" if "?" in PG_URL else "?"
    return f"{PG_URL}{sep}options=-csearch_path%3D{schema}", drop


@contextlib.contextmanager
def scratch(kind: str, prefix: str, keep: bool, label: str = ""):
    """A temporary folder and an empty database of ``kind``, yielded as
    (database URL, folder, servers): the server processes put in ``servers``
    are stopped on the way out, then the database and the folder are dropped,
    unless ``keep`` (the URL is printed instead)."""
    tmp = Path(tempfile.mkdtemp(prefix=prefix))
    url, drop = database_url(kind, tmp)
    servers: list[subprocess.Popen] = []
    try:
        yield url, tmp, servers
    finally:
        for proc in servers:
            stop(proc, timeout=30)
        if keep:
            print(f"{label}store kept: {url}")
        else:
            drop()
            shutil.rmtree(tmp, ignore_errors=True)


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


# ---------------------------------------------------------------- ingest
def bench_ingest(db, repeats: int = 7) -> tuple[float, float]:
    """Parse and load rates (records/s) of the same file: medians of
    ``repeats`` interleaved rounds (every load into a fresh dataset).

    The machine is shared, so any single run can be slowed by a neighbour:
    rounds alternate parse and load so both sides see the same conditions, and
    the median of each side is the figure returned. The best runs are printed
    beside it; they favour the parse side, whose shorter runs more often fit
    in a quiet moment. The parse side is pysam iterating every record of the
    file, the library the loader reads with."""
    import statistics

    import pysam

    from server.beacon.vcf import load_vcf
    from server.registry import add_dataset

    parse, load = [], []
    for i in range(repeats):
        t = time.perf_counter()
        with pysam.VariantFile(str(VCF)) as vf:
            n = sum(1 for _ in vf)
        parse.append(n / (time.perf_counter() - t))
        add_dataset(db, f"ingest{i}", access="public", assembly="GRCh38")
        t = time.perf_counter()
        result = load_vcf(db, VCF, f"ingest{i}", progress=False)
        load.append(result.records / (time.perf_counter() - t))
        if result.records != n:
            raise SystemExit(f"loaded {result.records} records, parsed {n}")
    best_parse, best_load = max(parse), max(load)
    med_parse, med_load = statistics.median(parse), statistics.median(load)
    print(
        f"  ingest, {repeats} interleaved rounds (records/s): "
        f"best load {best_load:,.0f} / parse {best_parse:,.0f} = {best_load / best_parse:.2f}; "
        f"median load {med_load:,.0f} / parse {med_parse:,.0f} = {med_load / med_parse:.2f}; "
        f"load average {os.getloadavg()[0]:.2f}"
    )
    return med_parse, med_load


# ---------------------------------------------------------------- synthetic store
# GRCh38 autosome lengths (bp): variants are spread over chromosomes 1..22 in
# proportion to their length.
GRCH38 = {
    "1": 248_956_422,
    "2": 242_193_529,
    "3": 198_295_559,
    "4": 190_214_555,
    "5": 181_538_259,
    "6": 170_805_979,
    "7": 159_345_973,
    "8": 145_138_636,
    "9": 138_394_717,
    "10": 133_797_422,
    "11": 135_086_622,
    "12": 133_275_309,
    "13": 114_364_328,
    "14": 107_043_718,
    "15": 101_991_189,
    "16": 90_338_345,
    "17": 83_257_441,
    "18": 80_373_285,
    "19": 58_617_616,
    "20": 64_444_167,
    "21": 46_709_983,
    "22": 50_818_468,
}
CARRIER_POOL = 4096  # distinct carrier bitmaps, drawn at random for each variant
# Every beacon_variants column but hom_carriers, an_gap and gaps, which the
# synthetic rows leave NULL (their AN is then the stored one).
VARIANT_COLUMNS = tuple(
    c.name
    for c in BeaconVariant.__table__.columns
    if c.name not in ("hom_carriers", "an_gap", "gaps")
)
# the PostgreSQL type binary COPY sends for each column type of the table
_COPY_TYPES = {
    sa.BigInteger: "int8",
    sa.Integer: "int4",
    sa.String: "varchar",
    sa.Text: "text",
    sa.Float: "float8",
    sa.LargeBinary: "bytea",
}


class Progress:
    def __init__(self, label: str, total: int):
        self.label, self.total, self.t0, self.last = label, total, time.perf_counter(), 0.0

    def update(self, done: int, final: bool = False) -> None:
        now = time.perf_counter()
        if not final and now - self.last < 0.5:
            return
        self.last = now
        rate = done / max(now - self.t0, 1e-9)
        width = 30
        filled = int(width * done / max(self.total, 1))
        eta = (self.total - done) / rate if rate else 0
        print(
            f"\r  {self.label} [{'#' * filled}{'.' * (width - filled)}] {done:,}/{self.total:,}"
            f" {rate:,.0f}/s"
            + (f" eta {eta:.0f} s" if not final else f" in {now - self.t0:.0f} s")
            + " " * 6,
            end="\n" if final else "",
            flush=True,
        )


def _carrier_pool(n_samples: int, rng: random.Random) -> list[tuple[int, bytes]]:
    """(allele count, serialized bitmap): mostly rare variants, one in ten common."""
    from pyroaring import BitMap

    pool = []
    for _ in range(CARRIER_POOL):
        k = 1 + int(rng.paretovariate(1.2)) if rng.random() < 0.9 else rng.randrange(50, 1500)
        bm = BitMap(rng.sample(range(n_samples), min(k, n_samples)))
        pool.append((len(bm), bm.serialize()))
    return pool


def snv_row(dataset_id, load_id, ordinal, chrom, accession, pos, ref, alt, ac, an, carriers):
    """The beacon_variants row (``VARIANT_COLUMNS`` order) of a SNV at the VCF
    POS ``pos``, record ``ordinal`` of load ``load_id``: ``ac`` heterozygous
    carriers (a serialized bitmap) among ``an`` alleles."""
    from server.beacon.vcf import PK_LOAD_SHIFT, PK_RECORD_SHIFT

    return (
        (load_id << PK_LOAD_SHIFT) | (ordinal << PK_RECORD_SHIFT) | 1,
        load_id,
        dataset_id,
        "GRCh38",
        chrom,
        pos - 1,
        pos,
        ref,
        alt,
        "SNP",
        1,
        "",
        f"{accession}:g.{pos}{ref}>{alt}",
        ac,
        an,
        0,
        ac,
        ac / an,
        carriers,
    )


def _variant_rows(
    load_id: int, n_variants: int, n_samples: int, rng: random.Random, sample_rows: list
):
    """Synthetic SNVs as tuples in ``VARIANT_COLUMNS`` order, sorted by (chrom, start):
    the rows ``load_vcf`` would write for one ALT allele per record."""
    from server.beacon.refs import refseq_accession

    pool = _carrier_pool(n_samples, rng)
    pairs = [(r, a) for r in "ACGT" for a in "ACGT" if r != a]
    an = 2 * n_samples
    total_len = sum(GRCH38.values())
    every = max(n_variants // 400, 1)
    made, left = 0, n_variants
    chroms = list(GRCH38)
    for ci, chrom in enumerate(chroms):
        length = GRCH38[chrom]
        n = left if ci == len(chroms) - 1 else round(n_variants * length / total_len)
        n = min(n, left, length - 1)
        left -= n
        acc = refseq_accession(chrom, "GRCh38") or chrom
        for pos in sorted(rng.sample(range(1, length), n)):
            ref, alt = pairs[rng.getrandbits(32) % 12]
            ac, carriers = pool[rng.getrandbits(12) % CARRIER_POOL]
            if made % every == 0:
                sample_rows.append((chrom, pos - 1, alt))
            yield snv_row("synth", load_id, made, chrom, acc, pos, ref, alt, ac, an, carriers)
            made += 1


def _secondary_indexes(conn, dialect: str) -> list[tuple[str, str]]:
    import sqlalchemy as sa

    if dialect == "sqlite":
        q = (
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' "
            "AND tbl_name = 'beacon_variants' AND sql IS NOT NULL"
        )
    else:
        q = (
            "SELECT i.indexname, i.indexdef FROM pg_indexes i WHERE i.tablename = "
            "'beacon_variants' AND i.schemaname = current_schema() AND i.indexname NOT IN "
            "(SELECT conname FROM pg_constraint)"
        )
    # a partitioned table's index is listed as "ON ONLY" (the parent alone, left
    # invalid); rebuilt without ONLY it is built on every partition again
    return [(n, ddl.replace(" ON ONLY ", " ON ", 1)) for n, ddl in conn.execute(sa.text(q))]


def _insert_variants(db, rows, n_variants: int, columns=VARIANT_COLUMNS) -> None:
    """Bulk load of ``rows`` (tuples in ``columns`` order): secondary indexes dropped
    during the load and rebuilt with the very definitions the migrations created;
    COPY (binary) on PostgreSQL, executemany in large transactions on SQLite
    (build-only pragmas)."""
    import itertools

    import sqlalchemy as sa

    dialect = db.engine.dialect.name
    bar = Progress("synthetic store", n_variants)
    with db.engine.begin() as conn:
        indexes = _secondary_indexes(conn, dialect)
        for name, _ in indexes:
            conn.execute(sa.text(f'DROP INDEX "{name}"'))
    done = 0
    if dialect == "sqlite":
        import sqlite3

        raw = sqlite3.connect(db.engine.url.database, isolation_level=None)
        raw.execute("PRAGMA synchronous=OFF")
        raw.execute("PRAGMA cache_size=-1000000")
        raw.execute("PRAGMA temp_store=MEMORY")
        sql = (
            f"INSERT INTO beacon_variants ({', '.join(f'{c!r}' for c in columns)})"
            f" VALUES ({', '.join('?' * len(columns))})"
        ).replace("'", '"')
        while True:
            chunk = list(itertools.islice(rows, 500_000))
            if not chunk:
                break
            raw.execute("BEGIN")
            for i in range(0, len(chunk), 50_000):
                raw.executemany(sql, chunk[i : i + 50_000])
                done += len(chunk[i : i + 50_000])
                bar.update(done)
            raw.execute("COMMIT")
        bar.update(done, final=True)
        t = time.perf_counter()
        print(f"  rebuilding {len(indexes)} indexes ...", end="", flush=True)
        for _, ddl in indexes:
            raw.execute(ddl)
        raw.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        raw.close()
    else:
        import psycopg

        url = db.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        with psycopg.connect(url) as pg, pg.cursor() as cur:
            table = BeaconVariant.__table__
            cols = ", ".join(f'"{c}"' for c in columns)
            with cur.copy(f"COPY beacon_variants ({cols}) FROM STDIN (FORMAT BINARY)") as copy:
                copy.set_types([_COPY_TYPES[type(table.c[c].type)] for c in columns])
                for row in rows:
                    copy.write_row(row)
                    done += 1
                    if not done & 0xFFF:
                        bar.update(done)
        bar.update(done, final=True)
        t = time.perf_counter()
        print(f"  rebuilding {len(indexes)} indexes ...", end="", flush=True)
        with db.engine.begin() as conn:
            conn.execute(sa.text("SET LOCAL maintenance_work_mem = '1GB'"))
            for _, ddl in indexes:
                conn.execute(sa.text(ddl))
    print(f" {time.perf_counter() - t:.0f} s; ANALYZE ...", end="", flush=True)
    t = time.perf_counter()
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text("ANALYZE"))
    print(f" {time.perf_counter() - t:.0f} s")


def _add_load(
    s, kind: str, path: str, status: str, records: int, assembly: str, max_span: int
) -> int:
    """A beacon_loads row of the synthetic dataset, checkpointed at ``records``; its id."""
    from server.beacon.tables import BeaconLoad

    load = BeaconLoad(
        kind=kind,
        dataset_id="synth",
        path=path,
        sha256="synthetic",
        status=status,
        checkpoint=records,
        records=records,
        assembly=assembly,
        max_span=max_span,
    )
    s.add(load)
    s.flush()
    return load.id


SEXES = [("NCIT:C20197", "male"), ("NCIT:C16576", "female")]


def add_individuals(s, dataset_id: str, names, load_id: int, rng, populations=()) -> None:
    """The individual documents of ``names`` (metadata load ``load_id``): a sex,
    one of PHENOTYPES and, when ``populations`` are given, an ethnicity drawn
    from them; with their filtering terms and the PHENOTYPES ontology terms."""
    from server.beacon.tables import (
        BeaconOntologyClosure,
        BeaconOntologyTerm,
        BeaconRecord,
        BeaconRecordTerm,
    )

    recs, terms = [], []
    for n in names:
        sex = rng.choice(SEXES)
        pop = rng.choice(populations) if populations else None
        pheno = rng.choice(PHENOTYPES)
        doc = {"id": n, "sex": {"id": sex[0], "label": sex[1]}}
        if pop is not None:
            doc["ethnicity"] = {"id": pop[0], "label": pop[1]}
        doc["phenotypicFeatures"] = [{"featureType": {"id": pheno}}]
        recs.append(
            {
                "dataset_id": dataset_id,
                "entry_type": "individual",
                "id": n,
                "individual_id": n,
                "biosample_id": "",
                "load_id": load_id,
                "document": doc,
            }
        )
        terms += [
            {
                "dataset_id": dataset_id,
                "entry_type": "individual",
                "record_id": n,
                "term": t,
                "label": "",
                "kind": "ontology",
            }
            for t in (sex[0], pheno)
        ]
    s.execute(BeaconRecord.__table__.insert(), recs)
    s.execute(BeaconRecordTerm.__table__.insert(), terms)
    s.execute(
        BeaconOntologyTerm.__table__.insert(),
        [{"id": t, "ontology": "HP", "label": t} for t in PHENOTYPES],
    )
    s.execute(
        BeaconOntologyClosure.__table__.insert(),
        [{"ancestor": t, "descendant": t, "ontology": "HP"} for t in PHENOTYPES],
    )


def build_store(
    db, n_variants: int, n_samples: int, rng: random.Random, access: str = "controlled"
) -> list[tuple]:
    import sqlalchemy as sa

    from server.beacon.tables import BeaconLoad, BeaconSample
    from server.registry import add_dataset

    add_dataset(db, "synth", access=access, assembly="GRCh38")
    names = [f"S{i:06d}" for i in range(n_samples)]
    with db.session() as s:
        load_id = _add_load(s, "vcf", "synthetic", "loading", 0, "GRCh38", 1)
        s.execute(
            sa.insert(BeaconSample),
            [{"dataset_id": "synth", "idx": i, "name": n} for i, n in enumerate(names)],
        )
        meta_id = _add_load(s, "metadata", "synthetic-metadata", "done", n_samples, "", 0)
        add_individuals(s, "synth", names, meta_id, rng)
    sample_rows: list[tuple] = []
    _insert_variants(
        db, _variant_rows(load_id, n_variants, n_samples, rng, sample_rows), n_variants
    )
    with db.session() as s:
        row = s.get(BeaconLoad, load_id)
        row.status, row.records, row.checkpoint = "done", n_variants, n_variants
    return sample_rows


# ---------------------------------------------------------------- HTTP
def start_server(url_db: str, var: Path, port: int) -> subprocess.Popen:

    env = clean_env()
    env.update(
        {
            "GENOMEPORT_DATABASE_URL": url_db,
            "GENOMEPORT_VAR_DIR": str(var),
            "GENOMEPORT_PORT": str(port),
            "GENOMEPORT_WORKERS": "2",
            "GENOMEPORT_PUBLIC_URL": f"http://127.0.0.1:{port}",
            # a budget so large it never refuses: every query still pays its upsert
            "GENOMEPORT_BEACON_RATE_PER_MINUTE": str(10**9),
            "GENOMEPORT_BEACON_RATE_PER_DAY": str(10**9),
            "GENOMEPORT_LOG_LEVEL": "WARNING",
        }
    )
    log = var / "server.log"
    proc = spawn([sys.executable, "-m", "server.cli", "serve"], log, env=env, cwd=REPO)
    try:
        wait_ready(f"http://127.0.0.1:{port}/beacon/v2/info", proc, log)
    except BaseException:
        stop(proc)
        raise
    return proc


def time_requests(client, make, n: int) -> list[float]:
    out = []
    for i in range(n):
        path, params = make(i)
        t = time.perf_counter()
        r = client.get(path, params=params)
        out.append((time.perf_counter() - t) * 1000)
        if r.status_code != 200:
            raise SystemExit(f"{path} {params}: {r.status_code} {r.text[:300]}")
    return out


def query_shapes(base: str, allele, window, frequencies: bool = False) -> dict:
    """The request (path, params) of each measured shape for request number i:
    ``allele(i)`` is a stored allele (chrom, 0-based start, alt), ``window(i)``
    the (chrom, start) of a 1 Mb range; ``frequencies`` adds a g_variants record
    query (its frequencyInPopulations)."""

    def at(i, **extra):
        chrom, start, alt = allele(i)
        return {"referenceName": chrom, "start": str(start), "alternateBases": alt, **extra}

    def mb_range(i):
        chrom, start = window(i)
        return {
            "referenceName": chrom,
            "start": str(start),
            "end": str(start + 10**6),
            "requestedGranularity": "count",
        }

    shapes = {
        "trivial (/info)": lambda i: (base + "/info", {}),
        "allele query": lambda i: (base + "/g_variants", at(i, requestedGranularity="count")),
        "1 Mb range": lambda i: (base + "/g_variants", mb_range(i)),
        "phenotype-filtered carriers": lambda i: (
            base + "/individuals",
            at(i, filters=PHENOTYPES[i % len(PHENOTYPES)], requestedGranularity="count"),
        ),
    }
    if frequencies:
        shapes["population frequencies"] = lambda i: (
            base + "/g_variants",
            at(i, requestedGranularity="record"),
        )
    return shapes


def bench_queries(port: int, samples: list[tuple], n: int, rng: random.Random) -> dict:
    import httpx

    def window(i):
        chrom = str(1 + i % 22)
        return chrom, rng.randrange(GRCH38[chrom] - 10**6)

    base = f"http://127.0.0.1:{port}/beacon/v2"
    shapes = query_shapes(base, lambda i: samples[i % len(samples)], window)
    out = {}
    with httpx.Client(timeout=60) as client:
        for name, make in shapes.items():
            time_requests(client, make, min(20, n))  # warm up
            out[name] = time_requests(client, make, n)
    return out


TARGET_P50_MS = {"allele query": 10, "phenotype-filtered carriers": 50}


def load_average() -> str:
    return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", type=int, default=10_000_000)
    parser.add_argument("--samples", type=int, default=2500)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--db", default="sqlite,postgresql")
    parser.add_argument("--skip-ingest", action="store_true", help="only the query benchmark")
    parser.add_argument(
        "--access",
        default="controlled",
        choices=("controlled", "public"),
        help="access level of the synthetic dataset: controlled (default) "
        "answers the anonymous benchmark client at the boolean tier, "
        "through the people rule; public at the record tier",
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep the synthetic store (prints its database URL)"
    )
    args = parser.parse_args()

    import logging
    import warnings

    warnings.simplefilter("ignore")
    logging.disable(logging.WARNING)
    from server.db import Database

    rows = []
    print(f"start: {load_average()}")
    for kind in args.db.split(","):
        prefix = f"bench-beacon-{kind}-"
        with scratch(kind, prefix, args.keep, f"[{kind}] ") as (url, tmp, servers):
            db = Database(url)
            db.upgrade()
            parse_rate = load_rate = None
            if not args.skip_ingest:
                print(f"[{kind}] ingest ... ({load_average()})")
                parse_rate, load_rate = bench_ingest(db)
            rng = random.Random(42)
            print(f"[{kind}] building a synthetic store ... ({load_average()})")
            samples = build_store(db, args.variants, args.samples, rng, args.access)
            db.dispose()
            port = 20000 + random.randrange(20000)
            servers.append(start_server(url, tmp, port))
            print(f"[{kind}] queries ... ({load_average()})")
            lat = bench_queries(port, samples, args.queries, rng)
            rows.append((kind, parse_rate, load_rate, lat, load_average()))
    print()
    print(
        f"store: {args.variants:,} synthetic variants (GRCh38 chr1-22) over {args.samples:,} "
        f"individuals, {args.access} dataset; {args.queries} requests per shape"
        + ("" if args.skip_ingest else f"; ingest file: {VCF.name} (2,548 samples)")
    )
    print(f"{'database':<11} {'shape':<30} {'p50 ms':>9} {'p99 ms':>9}  target")
    for kind, parse_rate, load_rate, lat, load in rows:
        for name, values in lat.items():
            p50 = statistics.median(values)
            target = ""
            if name in TARGET_P50_MS:
                limit = TARGET_P50_MS[name]
                target = f"p50 < {limit} ms: {'met' if p50 < limit else 'NOT met'}"
            line = f"{kind:<11} {name:<30} {p50:>9.2f} {pct(values, 0.99):>9.2f}  {target}"
            print(line.rstrip())
        if load_rate is not None:
            ratio = load_rate / parse_rate
            print(
                f"{kind:<11} {'ingest (records/s)':<30} load {load_rate:,.0f}   parse "
                f"{parse_rate:,.0f}   load/parse {ratio:.2f}  load/parse >= 0.5: "
                f"{'met' if ratio >= 0.5 else 'NOT met'}"
            )
        print(f"{kind:<11} ({load} after the queries)")


if __name__ == "__main__":
    main()
