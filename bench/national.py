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
   parsing the same file with pysam, with a breakdown that explains the gap:
   pysam reading the fields the add reads, the add's staging (parse and COPY)
   and publication (the delta made visible), and a COPY of the same rows
   alone; the fold of that one genome; the same query figures measured while
   a second genome is being added (``genomeport beacon add-genome`` in
   another process); ``withdraw`` of a folded genome (a negative delta) and
   of a pending one (its delta deleted); the fold of --fold-genomes pending
   genomes, in total and per genome; disk bytes per allele and per genome.

Only ratios and differences measured side by side in this one run mean
anything; the machine is shared (its load average is printed).

    python bench/national.py [--individuals 60000] [--alleles 20000000]
                             [--queries 200] [--genome-variants 300000]
                             [--fold-genomes 8] [--port 18130]
                             [--keep | --store URL]

``--keep`` keeps the store and prints its URL; ``--store URL`` reuses such a
store (same --individuals and --alleles: the sizes are checked, migrations
applied, the build skipped). A run withdraws and folds away the genomes it
added, so the store is left as it was found.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
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
        # one request of each shape in turn, so that every shape is sampled
        # over the same stretch of time (all of them while an add runs)
        for i in range(n):
            if stop_when is not None and stop_when():
                break
            for name, make in shapes.items():
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


def sample_store(db, n_ind: int, n_alleles: int, rng: random.Random):
    """(query alleles, genome alleles) of a store built by an earlier run, after
    checking that its sizes are the ones asked for."""
    import sqlalchemy as sa

    from server.beacon.store import store_row

    with db.session() as s:
        store_id = store_row(s, "national").id
        individuals = s.execute(
            sa.text("SELECT count(*) FROM beacon_samples WHERE dataset_id = 'national'")
        ).scalar_one()
        alleles = s.execute(
            sa.text("SELECT count(*) FROM beacon_variants WHERE load_id = :s"), {"s": store_id}
        ).scalar_one()
        if (individuals, alleles) != (n_ind, n_alleles):
            raise SystemExit(
                f"the store has {individuals:,} individuals x {alleles:,} alleles, not "
                f"{n_ind:,} x {n_alleles:,}: pass the sizes it was built with"
            )
        queries = [
            tuple(r)
            for r in s.execute(
                sa.text(
                    "SELECT start, alt FROM beacon_variants WHERE load_id = :s AND random() < :p"
                ),
                {"s": store_id, "p": min(1.0, 5000 / max(n_alleles, 1))},
            )
        ]
        common = [
            (start + 1, ref, alt)  # VCF POS
            for start, ref, alt in s.execute(
                sa.text(
                    "SELECT start, ref, alt FROM beacon_variants WHERE load_id = :s "
                    "AND hom + het > :k AND random() < 0.2"
                ),
                {"s": store_id, "k": 0.001 * n_ind},
            )
        ]
    rng.shuffle(queries)
    return queries, common


@contextlib.contextmanager
def reused(url: str):
    """A kept store, as ``bb.scratch`` yields a new one (nothing dropped)."""
    tmp = Path(tempfile.mkdtemp(prefix="bench-national-"))
    servers: list[subprocess.Popen] = []
    try:
        yield url, tmp, servers
    finally:
        for proc in servers:
            bb.stop(proc, timeout=30)
        shutil.rmtree(tmp, ignore_errors=True)


def leftovers(db, prefix: str = "NEW") -> list[str]:
    """Genomes an interrupted earlier run added (its names start with NEW)."""
    import sqlalchemy as sa

    with db.session() as s:
        return list(
            s.execute(
                sa.text(
                    "SELECT name FROM beacon_genomes WHERE dataset_id = 'national' AND name LIKE :p"
                ),
                {"p": prefix + "%"},
            ).scalars()
        )


def parse_rates(vcf: Path) -> tuple[int, float, float]:
    """Records, and seconds for pysam to iterate them and to read the fields
    the add reads (position, alleles, INFO, the genotype)."""
    import pysam

    t = time.perf_counter()
    with pysam.VariantFile(str(vcf)) as vf:
        n = sum(1 for _ in vf)
    bare = time.perf_counter() - t
    t = time.perf_counter()
    with pysam.VariantFile(str(vcf)) as vf:
        for rec in vf:
            (rec.chrom, rec.pos, rec.id, rec.ref, rec.alts, dict(rec.info))
            for smp in rec.samples.values():
                smp["GT"]
    return n, bare, time.perf_counter() - t


def copy_alone(db, load_id: int) -> tuple[float, float]:
    """Seconds to COPY the rows a load wrote into an empty table like
    beacon_variants (no index), and into beacon_variants itself (its indexes
    and partitions; under other pks, rolled back): the floor of any add that
    writes them, and what the indexes add to it."""
    import sqlalchemy as sa
    from sqlalchemy.orm import Session

    from server.beacon.store import PK_LOAD_SHIFT, VARIANT_COLUMNS, insert_rows

    with db.session() as s:
        rows = [
            tuple(r)
            for r in s.execute(
                sa.text(
                    f"SELECT {', '.join(chr(34) + c + chr(34) for c in VARIANT_COLUMNS)} "
                    "FROM beacon_variants WHERE load_id = :l"
                ),
                {"l": load_id},
            )
        ]
    spare = (1 << 22) << PK_LOAD_SHIFT  # pks no load has: a journal row id of 2**22
    moved = [(r[0] | spare, *r[1:]) for r in rows]
    seconds = []
    for table, batch in ((sa.table("gp_copy"), rows), (sa.table("beacon_variants"), moved)):
        with db.engine.connect() as conn:
            conn.execute(sa.text("CREATE TEMP TABLE gp_copy (LIKE beacon_variants)"))
            with Session(bind=conn) as s:
                t = time.perf_counter()
                insert_rows(s, table, VARIANT_COLUMNS, batch)
                seconds.append(time.perf_counter() - t)
            conn.rollback()
    return seconds[0], seconds[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--individuals", type=int, default=60_000)
    parser.add_argument("--alleles", type=int, default=20_000_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--genome-variants", type=int, default=300_000)
    parser.add_argument("--fold-genomes", type=int, default=8, help="pending genomes to fold")
    parser.add_argument("--port", type=int, default=18130)
    parser.add_argument("--keep", action="store_true", help="keep the store (prints its URL)")
    parser.add_argument("--store", help="reuse a store kept by an earlier --keep run (its URL)")
    args = parser.parse_args()

    import logging
    import warnings

    warnings.simplefilter("ignore")
    logging.disable(logging.WARNING)

    from server.beacon.store import fold, withdraw
    from server.beacon.vcf import load_vcf
    from server.db import Database

    print(f"start: {bb.load_average()}")
    alleles = args.alleles
    free = shutil.disk_usage(
        "/var/lib/postgresql" if Path("/var/lib/postgresql").exists() else "/"
    ).free
    if not args.store and alleles * BYTES_PER_ALLELE_GUESS > 0.8 * free:
        fit = int(0.8 * free / BYTES_PER_ALLELE_GUESS)
        print(
            f"this machine cannot hold {alleles:,} alleles ({free / 1e9:.0f} GB free): "
            f"building the largest store that fits, {fit:,} alleles"
        )
        alleles = fit
    place = (
        reused(args.store) if args.store else bb.scratch("postgresql", "bench-national-", args.keep)
    )
    with place as (url, tmp, servers):
        db = Database(url)
        db.upgrade()
        rng = random.Random(42)
        t = time.perf_counter()
        if args.store:
            for name in leftovers(db):
                withdraw(db, "national", name, caller="bench")
            fold(db, "national")
            print(f"reusing {args.individuals:,} x {alleles:,} ... ({bb.load_average()})")
            queries, common = sample_store(db, args.individuals, alleles, rng)
            built = "reused"
        else:
            print(f"building {args.individuals:,} x {alleles:,} ... ({bb.load_average()})")
            queries, common = build_store(db, args.individuals, alleles, rng)
            built = f"built in {time.perf_counter() - t:.0f} s"
        sizes = relation_bytes(db)
        servers.append(bb.start_server(url, tmp, args.port))
        print(f"queries, idle ... ({bb.load_average()})")
        idle = measure(args.port, queries, args.queries, rng)
        idle_load = bb.load_average()

        def genome(name: str) -> Path:
            path = tmp / f"{name}.vcf"
            genome_vcf(path, name, args.genome_variants, common, rng)
            return Path(f"{path}.gz")

        def add(path: Path):
            return load_vcf(db, path, "national", progress=False, single=True, batch_size=50_000)

        # add-genome against parsing, and where the time goes
        first, second = "NEW000001", "NEW000002"
        vcf = genome(first)
        n_parsed, parse_s, fields_s = parse_rates(vcf)
        t = time.perf_counter()
        result = add(vcf)
        add_s = time.perf_counter() - t
        copy_s, copy_indexed_s = copy_alone(db, result.load_id)
        genome_bytes = relation_bytes(db)["beacon_genomes"]
        fold_one = fold(db, "national")

        # queries while a second genome is added by the CLI in another process
        vcf2 = genome(second)
        env = clean_env()
        env.update({"GENOMEPORT_DATABASE_URL": url, "GENOMEPORT_VAR_DIR": str(tmp)})
        adder = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "server.cli",
                "beacon",
                "add-genome",
                str(vcf2),
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

        # withdraw a folded genome (negative delta) and a pending one (delta deleted)
        t = time.perf_counter()
        w_folded = withdraw(db, "national", first, caller="bench")
        folded_s = time.perf_counter() - t
        t = time.perf_counter()
        w_pending = withdraw(db, "national", second, caller="bench")
        pending_s = time.perf_counter() - t

        # the fold of N pending genomes (and of the negative delta above)
        names = [f"NEW1{k:05d}" for k in range(args.fold_genomes)]
        for name in names:
            add(genome(name))
        fold_n = fold(db, "national")
        # leave the store as found: the added genomes withdrawn and folded away
        t = time.perf_counter()
        for name in names:
            withdraw(db, "national", name, caller="bench")
        withdraw_n_s = time.perf_counter() - t
        fold_back = fold(db, "national")
    print()
    print(
        f"store: {args.individuals:,} individuals x {alleles:,} alleles on chr{CHROM} "
        f"({built}); {args.queries} requests per shape; 2 gunicorn workers"
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
    stage, publish = result.timings.get("stage", 0.0), result.timings.get("publish", 0.0)
    print(
        f"add-genome: {result.records:,} records in {add_s:.2f} s = {add_rate:,.0f}/s; "
        f"parse {parse_rate:,.0f}/s; add/parse {add_rate / parse_rate:.2f} "
        f"(target >= 0.5: {'met' if add_rate >= 0.5 * parse_rate else 'NOT met'})"
    )
    print(
        f"  breakdown (s): pysam parse {parse_s:.2f}; pysam reading the fields the add reads "
        f"{fields_s:.2f}; add = staging {stage:.2f} (parse, rows, COPY) + publication "
        f"{publish:.2f} (calls, digest, the flip) + other {add_s - stage - publish:.2f}; "
        f"COPY of the same {result.items:,} rows alone {copy_s:.2f} (no index), "
        f"{copy_indexed_s:.2f} (into beacon_variants, its indexes)"
    )
    print(
        f"fold: 1 genome in {fold_one.seconds:.2f} s ({fold_one.rows:,} rows, "
        f"{fold_one.records:,} records); {fold_n.deltas} deltas ({args.fold_genomes} genomes "
        f"and 1 withdrawal) in {fold_n.seconds:.2f} s = "
        f"{fold_n.seconds / max(fold_n.deltas, 1):.2f} s per delta ({fold_n.rows:,} rows, "
        f"{fold_n.records:,} records)"
    )
    print(
        f"withdraw: folded genome {w_folded.records:,} rows in {folded_s:.2f} s, pending "
        f"genome {w_pending.records:,} rows in {pending_s:.2f} s (target < 60 s: "
        f"{'met' if max(folded_s, pending_s) < 60 else 'NOT met'}); "
        f"{len(names)} more in {withdraw_n_s:.2f} s, folded away in {fold_back.seconds:.2f} s"
    )
    total = sizes["beacon_variants"]
    print(
        f"disk: beacon_variants {total / 1e9:.2f} GB = {total / alleles:.0f} bytes/allele, "
        f"{total / args.individuals / 1e6:.2f} MB/genome; metadata "
        f"{(sizes['beacon_records'] + sizes['beacon_record_terms']) / 1e6:.0f} MB; "
        f"calls of one {args.genome_variants:,}-variant genome "
        f"{genome_bytes / 1e6:.2f} MB (beacon_genomes)"
    )
    print(f"load: idle queries {idle_load}; during the add {busy_load}; end {bb.load_average()}")


if __name__ == "__main__":
    main()
