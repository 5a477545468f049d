"""Allele number with gVCF coverage gaps: what records returned with their AN
cost when some genomes came as gVCFs, side by side in one run (PostgreSQL).

Builds the synthetic merged store of ``bench/national.py`` (smaller by
default) as dataset ``national`` and an exact copy of it as dataset ``gvcf``,
in which --gvcf-genomes of the individuals have coverage gaps
(``beacon_coverage_gaps``: --gaps stretches each of 100 bp to 5 kb on chr1,
one in five haploid, the rest uncovered, cut at tiles as ``add-genome`` of a
gVCF stores them). Then, through HTTP, it measures the p50/p99 of a record
query of one allele (its document with AN and frequencyInPopulations), a
1 Mb range query returning a page of 10 records, and the same range as a
count, against a trivial endpoint, alternating request by request between
the two datasets (``datasetIds``), so both sides see the same load. Only the
ratios within this run mean anything; the machine is shared (load average
printed).

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


def add_gaps(db, dataset_id, n_genomes: int, n_gaps: int, n_ind: int, rng) -> int:
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
                        copy.write_row((dataset_id, idx, nat.CHROM, a, b, s))
                        rows += 1
                bar.update(k + 1)
        cur.execute("ANALYZE beacon_coverage_gaps")
    bar.update(n_genomes, final=True)
    with db.session() as s:  # a new generation: the servers' caches see the gaps
        store = store_row(s, dataset_id)
        store.checkpoint = (store.checkpoint or 0) + 1
    return rows


def copy_dataset(db, source: str, target: str) -> None:
    """``target``: the same store, samples and individuals as ``source``."""
    import sqlalchemy as sa

    from server.beacon.store import store_row
    from server.beacon.tables import BeaconRecord, BeaconRecordTerm, BeaconVariant
    from server.beacon.vcf import PK_LOAD_SHIFT
    from server.registry import add_dataset

    add_dataset(db, target, access="public", assembly="GRCh38")
    with db.session() as s:
        old_id, new_id = store_row(s, source).id, store_row(s, target, "GRCh38").id
        meta = bb._add_load(s, "metadata", f"synthetic-metadata-{target}", "done", 0, "", 0)
        s.execute(
            sa.text("UPDATE beacon_loads SET dataset_id = :d WHERE id = :i"),
            {"d": target, "i": meta},
        )

    def copy(table, **exprs):
        cols = [c.name for c in table.columns]
        if table is BeaconRecordTerm.__table__:
            cols.remove("id")  # a serial
        names = ", ".join(f'"{c}"' for c in cols)
        values = ", ".join(exprs.get(c, f'"{c}"') for c in cols)
        return (
            f"INSERT INTO {table.name} ({names}) SELECT {values} FROM {table.name} "
            "WHERE dataset_id = :source"
        )

    shift = (new_id - old_id) << PK_LOAD_SHIFT
    with db.engine.begin() as conn:
        p = {"source": source, "target": target}
        conn.execute(
            sa.text(
                "INSERT INTO beacon_samples (dataset_id, idx, name) "
                "SELECT :target, idx, name FROM beacon_samples WHERE dataset_id = :source"
            ),
            p,
        )
        conn.execute(
            sa.text(copy(BeaconRecord.__table__, dataset_id=":target", load_id=str(meta))), p
        )
        conn.execute(sa.text(copy(BeaconRecordTerm.__table__, dataset_id=":target")), p)
        conn.execute(
            sa.text(
                copy(
                    BeaconVariant.__table__,
                    dataset_id=":target",
                    load_id=str(new_id),
                    pk=f"pk + {shift}",
                )
            ),
            p,
        )
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text("ANALYZE"))


def measure(port: int, queries, n: int, datasets) -> dict:
    """Per dataset, per shape, the latencies (ms) of ``n`` requests, the
    datasets alternating request by request."""
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
    out = {d: {} for d in datasets}
    with httpx.Client(timeout=120) as client:
        for name, make in shapes.items():
            for d in datasets:
                out[d][name] = []

            def on(i, d, make=make):
                path, params = make(i)
                return path, ({**params, "datasetIds": d} if params else params)

            for d in datasets:  # warm-up
                bb.time_requests(client, lambda i, d=d: on(i, d), min(10, n))
            for i in range(n):
                for d in datasets:
                    out[d][name] += bb.time_requests(client, lambda _j, i=i, d=d: on(i, d), 1)
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
    with bb.scratch("postgresql", "bench-coverage-", False) as (url, tmp, servers):
        db = Database(url)
        db.upgrade()
        rng = random.Random(13)
        print(f"building {args.individuals:,} x {args.alleles:,} ... ({bb.load_average()})")
        queries, _common = nat.build_store(db, args.individuals, args.alleles, rng)
        copy_dataset(db, "national", "gvcf")
        t = time.perf_counter()
        n_rows = add_gaps(db, "gvcf", args.gvcf_genomes, args.gaps, args.individuals, rng)
        add_s = time.perf_counter() - t
        with db.engine.connect() as conn:
            gap_bytes = conn.execute(
                sa.text("SELECT pg_total_relation_size('beacon_coverage_gaps')")
            ).scalar_one()
        db.dispose()
        servers.append(bb.start_server(url, tmp, args.port))
        print(f"queries ... ({bb.load_average()})")
        lat = measure(args.port, queries, args.queries, ("national", "gvcf"))
        load = bb.load_average()
    print()
    print(
        f"store: {args.individuals:,} individuals x {args.alleles:,} alleles on chr{nat.CHROM}, "
        f"twice: dataset national (plain VCF genomes) and gvcf, where {args.gvcf_genomes:,} "
        f"genomes have {args.gaps:,} gaps each = {n_rows:,} beacon_coverage_gaps rows "
        f"(written in {add_s:.0f} s; {gap_bytes / n_rows:.0f} bytes/row with its indexes); "
        f"{args.queries} requests per shape and dataset, alternating"
    )
    print(f"{'shape':<28}{'plain p50':>11} {'p99':>8}{'gVCF p50':>11} {'p99':>8}  gVCF/plain p50")
    for name, plain in lat["national"].items():
        gvcf = lat["gvcf"][name]
        p50, g50 = statistics.median(plain), statistics.median(gvcf)
        print(
            f"{name:<28}{p50:>11.2f} {bb.pct(plain, 0.99):>8.2f}{g50:>11.2f} "
            f"{bb.pct(gvcf, 0.99):>8.2f}  {g50 / p50:.2f}"
        )
    print(f"load: {load} after the queries")


if __name__ == "__main__":
    main()
