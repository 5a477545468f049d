"""National scale: a merged Beacon store of --individuals genomes x --alleles
alleles on PostgreSQL, and what one genome costs to add and to withdraw.

1. Builds a synthetic merged store (one record per allele, the layout
   ``add-genome`` and ``load-vcf`` write) on one large chromosome (chr1,
   248,956,422 bp): carriers follow a site-frequency spectrum where about half
   of the alleles are singletons, most are below 1 % and about 2 % are above
   5 %; every individual has a sex, a population and one of ten phenotypes.
   If the machine cannot hold the store (disk), it says so and builds the
   largest one that fits, printing its size.
2. Through HTTP (gunicorn, 2 workers), p50/p99 of an allele query, a 1 Mb
   range query, a phenotype-filtered carrier count (/individuals) and a
   per-population frequency query (a g_variants record with its
   frequencyInPopulations), against a trivial endpoint (/beacon/v2/info) of
   the same server, side by side.
3. ``add-genome`` of a realistic single-sample VCF (--genome-variants records
   on chr1, most of them alleles the store already has) against merely
   parsing the same file with pysam; the same query figures measured while a
   second genome is being added (``genomeport beacon add-genome`` in another
   process); ``withdraw`` of the first genome; disk bytes per allele and per
   genome.

Only ratios and differences measured side by side in this one run mean
anything; the machine is shared (its load average is printed).

    python bench/national.py [--individuals 60000] [--alleles 20000000]
                             [--queries 200] [--genome-variants 300000]
                             [--port 18130] [--keep]
"""

from __future__ import annotations

import argparse
import importlib.util
import random
import shutil
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
_spec = importlib.util.spec_from_file_location("bench_beacon", REPO / "bench" / "beacon.py")
bb = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bb)

from tests.support.processes import clean_env  # noqa: E402

CHROM, LENGTH, ACCESSION = "1", 248_956_422, "NC_000001.11"
PHENOTYPES = bb.PHENOTYPES
POPULATIONS = [
    ("NCIT:C41261", "White"),
    ("NCIT:C42331", "African"),
    ("NCIT:C41260", "Asian"),
    ("NCIT:C17998", "Unknown"),
]
BYTES_PER_ALLELE_GUESS = 420  # row, blobs and indexes, for the disk check
# every beacon_variants column but gaps (NULL: no genome is short of two alleles)
COLUMNS = tuple(c.name for c in bb.BeaconVariant.__table__.columns if c.name != "gaps")


# ---------------------------------------------------------------- the store
def carrier_count(rng: random.Random, n: int) -> int:
    """Carriers of one allele: ~50 % singletons, log-uniform up to 5 % of the
    individuals for most of the rest, ~2 % between 5 % and 60 %."""
    u = rng.random()
    if u < 0.5:
        return 1
    if u < 0.98:
        top = max(0.05 * n, 3)
        return min(n, int(2 * (top / 2) ** rng.random()))
    return rng.randrange(int(0.05 * n) + 1, max(int(0.6 * n), int(0.05 * n) + 2))


def build_store(db, n_ind: int, n_alleles: int, rng: random.Random):
    """The merged store of dataset ``national``; returns (query alleles, genome
    alleles): a uniform sample of alleles for queries and a sample weighted to
    common alleles for the synthetic genome."""
    import numpy as np
    import sqlalchemy as sa
    from pyroaring import BitMap

    from server.beacon.store import store_row
    from server.beacon.tables import BeaconSample
    from server.registry import add_dataset

    add_dataset(db, "national", access="public", assembly="GRCh38")
    names = [f"DK{i:06d}" for i in range(n_ind)]
    with db.session() as s:
        store = store_row(s, "national", "GRCh38")
        store_id = store.id
        s.execute(
            sa.insert(BeaconSample),
            [{"dataset_id": "national", "idx": i, "name": n} for i, n in enumerate(names)],
        )
        meta = bb._add_load(s, "metadata", "synthetic-metadata", "done", n_ind, "", 0)
        s.execute(
            sa.text("UPDATE beacon_loads SET dataset_id = 'national' WHERE id = :i"), {"i": meta}
        )
        bb.add_individuals(s, "national", names, meta, rng, populations=POPULATIONS)
    # common carrier sets come from a pool (building 400,000 distinct sets of
    # thousands of carriers would dominate the build); rarer ones are drawn afresh
    pool = {}
    gen = np.random.default_rng(rng.randrange(2**32))
    empty = BitMap().serialize()
    pairs = [(r, a) for r in "ACGT" for a in "ACGT" if r != a]
    every = max(n_alleles // 5000, 1)
    queries, common = [], []
    positions = sorted(rng.sample(range(1, LENGTH), n_alleles))
    an = 2 * n_ind

    def rows():
        for i, pos in enumerate(positions):
            k = carrier_count(rng, n_ind)
            if k > 0.01 * n_ind:
                key = (k * 64 // n_ind, rng.randrange(64))
                if key not in pool:
                    pool[key] = (k, BitMap(rng.sample(range(n_ind), k)).serialize())
                k, carriers = pool[key]
            elif k == 1:
                carriers = BitMap([rng.randrange(n_ind)]).serialize()
            else:  # numpy draws (a repeated draw makes one carrier fewer)
                bm = BitMap(gen.integers(0, n_ind, k, dtype=np.uint32))
                k, carriers = len(bm), bm.serialize()
            ref, alt = pairs[rng.getrandbits(32) % 12]
            if i % every == 0:
                queries.append((pos - 1, alt))
            if k > 0.001 * n_ind and rng.random() < 0.2:
                common.append((pos, ref, alt))
            row = bb.snv_row(
                "national", store_id, i, CHROM, ACCESSION, pos, ref, alt, k, an, carriers
            )
            yield (*row, empty, 0)  # hom_carriers, an_gap: none

    bb._insert_variants(db, rows(), n_alleles, columns=COLUMNS)
    return queries, common


def genome_vcf(path: Path, name: str, n: int, common, rng: random.Random) -> None:
    """A single-sample VCF of ``n`` records on chr1: 85 % alleles the store
    already has (drawn from its common alleles), 15 % new ones."""
    have = rng.sample(common, min(len(common), int(0.85 * n)))
    seen = {p for p, _, _ in have}
    new = []
    while len(new) < n - len(have):
        pos = rng.randrange(1, LENGTH)
        if pos not in seen:
            seen.add(pos)
            ref = rng.choice("ACGT")
            new.append((pos, ref, rng.choice("ACGT".replace(ref, ""))))
    records = sorted(have + new)
    with open(path, "w") as fh:
        fh.write(
            "##fileformat=VCFv4.2\n##reference=GRCh38\n"
            f"##contig=<ID=chr1,length={LENGTH}>\n"
            '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">\n'
            '##FORMAT=<ID=DP,Number=1,Type=Integer,Description="Read depth">\n'
            f"#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\t{name}\n"
        )
        for pos, ref, alt in records:
            gt = "1/1" if rng.random() < 0.35 else "0/1"
            fh.write(
                f"chr1\t{pos}\t.\t{ref}\t{alt}\t50\tPASS\t.\tGT:DP\t{gt}:{rng.randint(8, 60)}\n"
            )
    subprocess.run(["bgzip", "-f", str(path)], check=True)


# ---------------------------------------------------------------- HTTP
def measure(port: int, queries, n: int, rng: random.Random, stop_when=None) -> dict:
    import httpx

    base = f"http://127.0.0.1:{port}/beacon/v2"
    out: dict[str, list[float]] = {}
    with httpx.Client(timeout=120) as client:
        shapes = bb.query_shapes(
            base,
            lambda i: (CHROM, *queries[i * 7919 % len(queries)]),
            lambda i: (CHROM, rng.randrange(LENGTH - 10**6)),
            frequencies=True,
        )
        for name, make in shapes.items():
            bb.time_requests(client, make, min(10, n))
            out[name] = []
            for i in range(n):
                if stop_when is not None and stop_when():
                    break
                out[name] += bb.time_requests(client, lambda _j, i=i, m=make: m(i), 1)
    return out


def relation_bytes(db) -> dict[str, int]:
    import sqlalchemy as sa

    with db.engine.connect() as conn:
        parts = conn.execute(
            sa.text(
                "SELECT coalesce(sum(pg_total_relation_size(relid)), 0) FROM "
                "pg_partition_tree('beacon_variants')"
            )
        ).scalar_one()
        other = {
            t: conn.execute(sa.text(f"SELECT pg_total_relation_size('{t}')")).scalar_one()
            for t in ("beacon_genomes", "beacon_samples", "beacon_records", "beacon_record_terms")
        }
    return {"beacon_variants": int(parts), **{k: int(v) for k, v in other.items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--individuals", type=int, default=60_000)
    parser.add_argument("--alleles", type=int, default=20_000_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--genome-variants", type=int, default=300_000)
    parser.add_argument("--port", type=int, default=18130)
    parser.add_argument("--keep", action="store_true", help="keep the store (prints its URL)")
    args = parser.parse_args()

    import logging
    import warnings

    warnings.simplefilter("ignore")
    logging.disable(logging.WARNING)
    import pysam

    from server.beacon.store import withdraw
    from server.beacon.vcf import load_vcf
    from server.db import Database

    print(f"start: {bb.load_average()}")
    alleles = args.alleles
    free = shutil.disk_usage(
        "/var/lib/postgresql" if Path("/var/lib/postgresql").exists() else "/"
    ).free
    if alleles * BYTES_PER_ALLELE_GUESS > 0.8 * free:
        fit = int(0.8 * free / BYTES_PER_ALLELE_GUESS)
        print(
            f"this machine cannot hold {alleles:,} alleles ({free / 1e9:.0f} GB free): "
            f"building the largest store that fits, {fit:,} alleles"
        )
        alleles = fit
    with bb.scratch("postgresql", "bench-national-", args.keep) as (url, tmp, servers):
        db = Database(url)
        db.upgrade()
        rng = random.Random(42)
        t = time.perf_counter()
        print(f"building {args.individuals:,} x {alleles:,} ... ({bb.load_average()})")
        queries, common = build_store(db, args.individuals, alleles, rng)
        build_s = time.perf_counter() - t
        sizes = relation_bytes(db)
        db.dispose()
        servers.append(bb.start_server(url, tmp, args.port))
        print(f"queries, idle ... ({bb.load_average()})")
        idle = measure(args.port, queries, args.queries, rng)
        idle_load = bb.load_average()

        # add-genome against parsing
        vcf = tmp / "genome1.vcf"
        genome_vcf(vcf, "NEW000001", args.genome_variants, common, rng)
        vcf = Path(str(vcf) + ".gz")
        t = time.perf_counter()
        with pysam.VariantFile(str(vcf)) as vf:
            n_parsed = sum(1 for _ in vf)
        parse_s = time.perf_counter() - t
        t = time.perf_counter()
        result = load_vcf(db, vcf, "national", progress=False, single=True, batch_size=50_000)
        add_s = time.perf_counter() - t
        genome_bytes = relation_bytes(db)["beacon_genomes"]

        # queries while a second genome is added by the CLI in another process
        vcf2 = tmp / "genome2.vcf"
        genome_vcf(vcf2, "NEW000002", args.genome_variants, common, rng)
        env = clean_env()
        env.update({"GENOMEPORT_DATABASE_URL": url, "GENOMEPORT_VAR_DIR": str(tmp)})
        adder = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "server.cli",
                "beacon",
                "add-genome",
                f"{vcf2}.gz",
                "--dataset",
                "national",
                "--quiet",
            ],
            env=env,
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        finished = threading.Event()
        threading.Thread(target=lambda: (adder.wait(), finished.set()), daemon=True).start()
        busy = measure(args.port, queries, args.queries, rng, stop_when=finished.is_set)
        busy_load = bb.load_average()
        adder.wait()
        if adder.returncode:
            raise SystemExit(f"add-genome failed: {adder.stdout.read().decode()}")

        t = time.perf_counter()
        w = withdraw(db, "national", "NEW000001", caller="bench")
        withdraw_s = time.perf_counter() - t
    print()
    print(
        f"store: {args.individuals:,} individuals x {alleles:,} alleles on chr{CHROM} "
        f"(built in {build_s:.0f} s); {args.queries} requests per shape; 2 gunicorn workers"
    )
    print(
        f"{'shape':<30} {'idle p50':>9} {'p99':>9} {'adding p50':>11} {'p99':>9} {'n':>5}  target"
    )
    trivial = statistics.median(idle["trivial (/info)"])
    targets = {
        "allele query": lambda p: p < 10 and p <= 2 * trivial,
        "phenotype-filtered carriers": lambda p: p < 50,
        "population frequencies": lambda p: p < 50,
    }
    for name, values in idle.items():
        p50 = statistics.median(values)
        during = busy.get(name) or [float("nan")]
        bp50 = statistics.median(during)
        note = ""
        if name in targets:
            note = "met" if targets[name](p50) else "NOT met"
        if name != "trivial (/info)" and len(during) > 1:
            note += (
                f"; during add {bp50 / p50:.2f}x idle ({'met' if bp50 <= 2 * p50 else 'NOT met'})"
            )
        print(
            f"{name:<30} {p50:>9.2f} {bb.pct(values, 0.99):>9.2f} {bp50:>11.2f} "
            f"{bb.pct(during, 0.99):>9.2f} {len(during):>5}  {note}"
        )
    parse_rate, add_rate = n_parsed / parse_s, result.records / add_s
    print(
        f"add-genome: {result.records:,} records in {add_s:.1f} s = {add_rate:,.0f}/s; "
        f"parse {parse_rate:,.0f}/s; add/parse {add_rate / parse_rate:.2f} "
        f"(target >= 0.5: {'met' if add_rate >= 0.5 * parse_rate else 'NOT met'})"
    )
    print(
        f"withdraw: {w.records:,} records in {withdraw_s:.1f} s "
        f"(target < 60 s: {'met' if withdraw_s < 60 else 'NOT met'})"
    )
    total = sizes["beacon_variants"]
    print(
        f"disk: beacon_variants {total / 1e9:.2f} GB = {total / alleles:.0f} bytes/allele, "
        f"{total / args.individuals / 1e6:.2f} MB/genome; metadata "
        f"{(sizes['beacon_records'] + sizes['beacon_record_terms']) / 1e6:.0f} MB; "
        f"genome record list of one {args.genome_variants:,}-variant genome "
        f"{genome_bytes / 1e6:.2f} MB (beacon_genomes)"
    )
    print(f"load: idle queries {idle_load}; during the add {busy_load}; end {bb.load_average()}")


if __name__ == "__main__":
    main()
