"""Allele number with gVCF coverage gaps: what records returned with their AN
cost when some genomes came as gVCFs, side by side in one run (PostgreSQL).

Builds the synthetic merged store of ``bench/national.py`` (smaller by
default), measures through HTTP the p50/p99 of a record query of one allele
(its document with AN and frequencyInPopulations), a 1 Mb range query
returning a page of records, and the same range as a count, against a trivial
endpoint; then gives --gvcf-genomes of the individuals coverage gaps
(``beacon_coverage_gaps``: --gaps stretches each of 100 bp to 5 kb, one in
five haploid, the rest uncovered, as ``add-genome`` of a gVCF stores them) and
measures the same shapes again, then without them once more (after a
warm-up round that is not counted). Only the ratios
within this run mean anything; the machine is shared (load average printed).

    python bench/coverage.py [--individuals 10000] [--alleles 1000000]
                             [--gvcf-genomes 2000] [--gaps 2500] [--queries 200]
"""

from __future__ import annotations

import argparse
import importlib.util
import random
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
_spec = importlib.util.spec_from_file_location("bench_national", REPO / "bench" / "national.py")
nat = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(nat)
bb = nat.bb


def add_gaps(db, n_genomes: int, n_gaps: int, n_ind: int, rng: random.Random) -> int:
    """Coverage gaps on chr1 for ``n_genomes`` random individuals; rows written."""
    import psycopg

    from server.beacon.coverage import _tiles
    from server.beacon.store import store_row

    who = rng.sample(range(n_ind), n_genomes)
    url = db.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    rows = 0
    bar = bb.Progress("coverage gaps", n_genomes)
    with psycopg.connect(url) as pg, pg.cursor() as cur:
        cols = '"dataset_id", "idx", "chrom", "start", "end", "alleles_short"'
        with cur.copy(f"COPY beacon_coverage_gaps ({cols}) FROM STDIN") as copy:
            for k, idx in enumerate(who):
                last = 0
                for start in sorted(rng.sample(range(nat.LENGTH - 5000), n_gaps)):
                    start = max(start, last)
                    end = start + rng.randint(100, 5000)
                    last = end
                    short = 1 if rng.random() < 0.2 else 2
                    for _c, a, b, s in _tiles(nat.CHROM, start, end, short):
                        copy.write_row(("national", idx, nat.CHROM, a, b, s))
                        rows += 1
                bar.update(k + 1)
        cur.execute("ANALYZE beacon_coverage_gaps")
    bar.update(n_genomes, final=True)
    with db.session() as s:  # a new generation: the servers' caches see the gaps
        store = store_row(s, "national")
        store.checkpoint = (store.checkpoint or 0) + 1
    return rows


def drop_gaps(db) -> None:
    import sqlalchemy as sa

    from server.beacon.store import store_row

    with db.session() as s:
        s.execute(sa.text("DELETE FROM beacon_coverage_gaps"))
        store = store_row(s, "national")
        store.checkpoint = (store.checkpoint or 0) + 1


def measure(port: int, queries, n: int, rng: random.Random) -> dict:
    import httpx

    base = f"http://127.0.0.1:{port}/beacon/v2"

    def allele(i):
        start, alt = queries[i * 7919 % len(queries)]
        return {
            "referenceName": nat.CHROM,
            "start": str(start),
            "alternateBases": alt,
            "requestedGranularity": "record",
        }

    def mb(i, granularity):
        start = random.Random(i).randrange(nat.LENGTH - 10**6)
        return {
            "referenceName": nat.CHROM,
            "start": str(start),
            "end": str(start + 10**6),
            "requestedGranularity": granularity,
            "limit": "10",
        }

    shapes = {
        "trivial (/info)": lambda i: (base + "/info", {}),
        "allele record (AN)": lambda i: (base + "/g_variants", allele(i)),
        "1 Mb, page of 10 records": lambda i: (base + "/g_variants", mb(i, "record")),
        "1 Mb, count": lambda i: (base + "/g_variants", mb(i, "count")),
    }
    out = {}
    with httpx.Client(timeout=120) as client:
        for name, make in shapes.items():
            bb.time_requests(client, make, min(10, n))
            out[name] = bb.time_requests(client, make, n)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--individuals", type=int, default=10_000)
    parser.add_argument("--alleles", type=int, default=1_000_000)
    parser.add_argument("--gvcf-genomes", type=int, default=2000)
    parser.add_argument("--gaps", type=int, default=2500, help="gaps per gVCF genome (chr1)")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--port", type=int, default=18140)
    args = parser.parse_args()

    import logging
    import warnings

    import sqlalchemy as sa

    warnings.simplefilter("ignore")
    logging.disable(logging.WARNING)
    from server.db import Database

    print(f"start: {bb.load_average()}")
    runs = []
    with bb.scratch("postgresql", "bench-coverage-", False) as (url, tmp, servers):
        db = Database(url)
        db.upgrade()
        rng = random.Random(13)
        print(f"building {args.individuals:,} x {args.alleles:,} ... ({bb.load_average()})")
        queries, _common = nat.build_store(db, args.individuals, args.alleles, rng)
        servers.append(bb.start_server(url, tmp, args.port))
        measure(args.port, queries, min(args.queries, 50), rng)  # warm-up, not counted
        runs.append(("plain", measure(args.port, queries, args.queries, rng), bb.load_average()))
        t = time.perf_counter()
        n_rows = add_gaps(db, args.gvcf_genomes, args.gaps, args.individuals, rng)
        add_s = time.perf_counter() - t
        with db.engine.connect() as conn:
            gap_bytes = conn.execute(
                sa.text("SELECT pg_total_relation_size('beacon_coverage_gaps')")
            ).scalar_one()
        runs.append(("gVCF", measure(args.port, queries, args.queries, rng), bb.load_average()))
        drop_gaps(db)
        runs.append(("plain", measure(args.port, queries, args.queries, rng), bb.load_average()))
        db.dispose()
    print()
    print(
        f"store: {args.individuals:,} individuals x {args.alleles:,} alleles on chr{nat.CHROM}; "
        f"gVCF run: {args.gvcf_genomes:,} genomes with {args.gaps:,} gaps each = "
        f"{n_rows:,} beacon_coverage_gaps rows (written in {add_s:.0f} s; "
        f"{gap_bytes / n_rows:.0f} bytes/row with its indexes); "
        f"{args.queries} requests per shape"
    )
    names = list(runs[0][1])
    header = "".join(f"{f'{label} p50':>12} {'p99':>8}" for label, _, _ in runs)
    print(f"{'shape':<28}{header}  gVCF/plain p50")
    for name in names:
        cells = "".join(
            f"{statistics.median(lat[name]):>12.2f} {bb.pct(lat[name], 0.99):>8.2f}"
            for _, lat, _ in runs
        )
        plain = statistics.median(runs[0][1][name] + runs[2][1][name])
        ratio = statistics.median(runs[1][1][name]) / plain
        print(f"{name:<28}{cells}  {ratio:.2f}")
    for label, _, load in runs:
        print(f"  {label} run: {load} after")


if __name__ == "__main__":
    main()
