"""Beacon v2: ingest rate and query latency, side by side in one run.

1. Ingest: `load-vcf` of the 2,548-sample 1000 Genomes VCF, against merely
   parsing the same file with pysam (records/s), per database.
2. Queries through HTTP (gunicorn + uvicorn workers) on a synthetic store of
   --variants variants over --samples individuals (random carriers, sex and an
   HPO phenotype per individual): p50/p99 of an allele query, a 1 Mb range
   query and a phenotype-filtered carrier count ("individuals with phenotype X
   carrying variant Y"), against a trivial endpoint (/beacon/v2/info) of the
   same server.

Only ratios and differences measured side by side in this one run mean
anything; the machine is shared.

    python bench/beacon.py [--variants 300000] [--samples 2500] [--queries 200]
                           [--db sqlite,postgresql]
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
TESTDATA = REPO.parent / "shared" / "testdata"
VCF = TESTDATA / "variants" / "test_1000G_hg38.vcf.gz"
PG_URL = os.environ.get("GENOMEPORT_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
PHENOTYPES = ["HP:0000365", "HP:0001250", "HP:0001263", "HP:0000707", "HP:0001629",
              "HP:0002664", "HP:0000478", "HP:0001627", "HP:0000152", "HP:0003011"]
CHROM_LEN = 50_000_000  # synthetic variants are spread over 1..22, this long each


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
    print(f"  ingest, {repeats} interleaved rounds (records/s): "
          f"best load {best_load:,.0f} / parse {best_parse:,.0f} = {best_load / best_parse:.2f}; "
          f"median load {med_load:,.0f} / parse {med_parse:,.0f} = {med_load / med_parse:.2f}; "
          f"load average {os.getloadavg()[0]:.2f}")
    return med_parse, med_load


# ---------------------------------------------------------------- synthetic store
def build_store(db, n_variants: int, n_samples: int, rng: random.Random) -> list[tuple]:
    import sqlalchemy as sa
    from pyroaring import BitMap

    from server.beacon.tables import (BeaconLoad, BeaconOntologyClosure, BeaconOntologyTerm,
                                      BeaconRecord, BeaconRecordTerm, BeaconSample, BeaconVariant)
    from server.beacon.vcf import PK_LOAD_SHIFT, PK_RECORD_SHIFT
    from server.registry import add_dataset

    add_dataset(db, "synth", access="public", assembly="GRCh38")
    names = [f"S{i:06d}" for i in range(n_samples)]
    with db.session() as s:
        load = BeaconLoad(kind="vcf", dataset_id="synth", path="synthetic", sha256="synthetic",
                          status="loading", checkpoint=0, records=0, assembly="GRCh38",
                          max_span=1)
        s.add(load)
        s.flush()
        load_id = load.id
        s.execute(sa.insert(BeaconSample), [{"dataset_id": "synth", "idx": i, "name": n}
                                            for i, n in enumerate(names)])
        meta = BeaconLoad(kind="metadata", dataset_id="synth", path="synthetic-metadata",
                          sha256="synthetic", status="done", checkpoint=n_samples,
                          records=n_samples, assembly="", max_span=0)
        s.add(meta)
        s.flush()
        recs, terms = [], []
        for n in names:
            sex = rng.choice([("NCIT:C20197", "male"), ("NCIT:C16576", "female")])
            pheno = rng.choice(PHENOTYPES)
            recs.append({"dataset_id": "synth", "entry_type": "individual", "id": n,
                         "individual_id": n, "biosample_id": "", "load_id": meta.id,
                         "document": {"id": n, "sex": {"id": sex[0], "label": sex[1]},
                                      "phenotypicFeatures": [{"featureType": {"id": pheno}}]}})
            terms += [{"dataset_id": "synth", "entry_type": "individual", "record_id": n,
                       "term": t, "label": "", "kind": "ontology"} for t in (sex[0], pheno)]
        s.execute(BeaconRecord.__table__.insert(), recs)
        s.execute(BeaconRecordTerm.__table__.insert(), terms)
        s.execute(BeaconOntologyTerm.__table__.insert(),
                  [{"id": t, "ontology": "HP", "label": t} for t in PHENOTYPES])
        s.execute(BeaconOntologyClosure.__table__.insert(),
                  [{"ancestor": t, "descendant": t, "ontology": "HP"} for t in PHENOTYPES])
    sample_rows = []
    per_chrom = max(n_variants // 22, 1)
    batch, made = [], 0
    t = time.perf_counter()
    for chrom in range(1, 23):
        positions = sorted(rng.sample(range(1, CHROM_LEN), per_chrom))
        for pos in positions:
            ref, alt = rng.sample("ACGT", 2)
            k = 1 + int(rng.paretovariate(1.2)) if rng.random() < 0.9 else rng.randrange(50, 1500)
            carriers = BitMap(rng.sample(range(n_samples), min(k, n_samples)))
            ac = len(carriers)
            batch.append({"pk": (load_id << PK_LOAD_SHIFT) | (made << PK_RECORD_SHIFT) | 1,
                          "load_id": load_id, "dataset_id": "synth", "assembly": "GRCh38",
                          "chrom": str(chrom), "start": pos - 1, "end": pos, "ref": ref,
                          "alt": alt, "variant_type": "SNP", "length": 1, "vcf_id": "",
                          "hgvs_g": "", "ac": ac, "an": 2 * n_samples, "hom": 0, "het": ac,
                          "af": ac / (2 * n_samples), "carriers": carriers.serialize()})
            if made % max(n_variants // 400, 1) == 0:
                sample_rows.append((str(chrom), pos - 1, alt))
            made += 1
            if len(batch) >= 20000:
                with db.session() as s:
                    s.execute(BeaconVariant.__table__.insert(), batch)
                batch = []
                print(f"\r  synthetic store: {made:,}/{n_variants:,} variants "
                      f"({made / (time.perf_counter() - t):,.0f}/s)", end="", flush=True)
    with db.session() as s:
        if batch:
            s.execute(BeaconVariant.__table__.insert(), batch)
        s.get(BeaconLoad, load_id).status = "done"
    print(f"\r  synthetic store: {made:,} variants in {time.perf_counter() - t:.0f} s" + " " * 20)
    if db.url.startswith("postgresql"):
        with db.engine.begin() as conn:
            conn.execute(sa.text("ANALYZE"))
    return sample_rows


# ---------------------------------------------------------------- HTTP
def start_server(url_db: str, var: Path, port: int) -> subprocess.Popen:
    import httpx

    env = {k: v for k, v in os.environ.items() if not k.startswith("GENOMEPORT_")}
    env.update({"GENOMEPORT_DATABASE_URL": url_db, "GENOMEPORT_VAR_DIR": str(var),
                "GENOMEPORT_PORT": str(port), "GENOMEPORT_WORKERS": "2",
                "GENOMEPORT_PUBLIC_URL": f"http://127.0.0.1:{port}",
                "GENOMEPORT_BEACON_RATE_PER_MINUTE": "0", "GENOMEPORT_LOG_LEVEL": "WARNING"})
    log = open(var / "server.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "server.cli", "serve"], env=env, cwd=REPO,
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit((var / "server.log").read_text()[-2000:])
        try:
            if httpx.get(f"http://127.0.0.1:{port}/beacon/v2/info", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    os.killpg(proc.pid, signal.SIGTERM)
    raise SystemExit("server did not start")


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


def bench_queries(port: int, samples: list[tuple], n: int, rng: random.Random) -> dict:
    import httpx

    base = f"http://127.0.0.1:{port}/beacon/v2"
    shapes = {
        "trivial (/info)": lambda i: (base + "/info", {}),
        "allele query": lambda i: (base + "/g_variants", {
            "referenceName": samples[i % len(samples)][0],
            "start": str(samples[i % len(samples)][1]),
            "alternateBases": samples[i % len(samples)][2], "requestedGranularity": "count"}),
        "1 Mb range": lambda i: (base + "/g_variants", {
            "referenceName": str(1 + i % 22), "start": str(s := rng.randrange(CHROM_LEN - 10**6)),
            "end": str(s + 10**6), "requestedGranularity": "count"}),
        "phenotype-filtered carriers": lambda i: (base + "/individuals", {
            "referenceName": samples[i % len(samples)][0],
            "start": str(samples[i % len(samples)][1]),
            "alternateBases": samples[i % len(samples)][2],
            "filters": PHENOTYPES[i % len(PHENOTYPES)], "requestedGranularity": "count"}),
    }
    out = {}
    with httpx.Client(timeout=60) as client:
        for name, make in shapes.items():
            time_requests(client, make, min(20, n))  # warm up
            out[name] = time_requests(client, make, n)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", type=int, default=300_000)
    parser.add_argument("--samples", type=int, default=2500)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--db", default="sqlite,postgresql")
    args = parser.parse_args()

    import logging
    import warnings

    warnings.simplefilter("ignore")
    logging.disable(logging.WARNING)
    from server.db import Database

    rows = []
    for kind in args.db.split(","):
        tmp = Path(tempfile.mkdtemp(prefix=f"bench-beacon-{kind}-"))
        url, drop = database_url(kind, tmp)
        proc = None
        try:
            db = Database(url)
            db.upgrade()
            print(f"[{kind}] ingest ...")
            parse_rate, load_rate = bench_ingest(db)
            rng = random.Random(42)
            print(f"[{kind}] building a synthetic store ...")
            samples = build_store(db, args.variants, args.samples, rng)
            db.dispose()
            port = 20000 + random.randrange(20000)
            proc = start_server(url, tmp, port)
            lat = bench_queries(port, samples, args.queries, rng)
            rows.append((kind, parse_rate, load_rate, lat))
        finally:
            if proc is not None:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(timeout=30)
            drop()
    print()
    print(f"store: {args.variants:,} synthetic variants over {args.samples:,} individuals; "
          f"{args.queries} requests per shape; ingest file: {VCF.name} (2,548 samples)")
    print(f"{'database':<11} {'shape':<30} {'p50 ms':>9} {'p99 ms':>9}")
    for kind, parse_rate, load_rate, lat in rows:
        for name, values in lat.items():
            print(f"{kind:<11} {name:<30} {statistics.median(values):>9.2f} "
                  f"{pct(values, 0.99):>9.2f}")
        print(f"{kind:<11} {'ingest (records/s)':<30} load {load_rate:,.0f}   parse "
              f"{parse_rate:,.0f}   load/parse {load_rate / parse_rate:.2f}")


if __name__ == "__main__":
    main()
