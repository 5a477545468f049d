"""Does a registry of 120,000 files slow a warm htsget ticket or a DRS lookup?

Builds two nodes side by side on PostgreSQL (each its own scratch schema, as
bench/beacon.py makes them), each served by gunicorn with 2 workers:

* node A: a few files of ../shared/testdata registered with ``genomeport
  files add`` (``add_files``): the NA12878 BAM and CRAM and a VCF;
* node B: the same files, plus ``--files`` (default 120,000) more rows, a
  third each BAM, CRAM and VCF, inserted in bulk straight into ``data_files``
  over 10 datasets, copies of the rows ``files add`` wrote for the real files
  (location, index, sizes, mtimes and both digests) but for their ids. They
  point to the same real files on disk under their own object ids
  (``bulk-<n>``, public datasets), so every one is a valid DRS object and
  htsget target (one of each format is fetched to check).

Then requests alternate A, B, A, B, ... over one keep-alive connection per
node (after a warm-up): a reads ticket for a region of the real BAM
(``/reads/NA12878``, 100 kbp windows on chromosome 11 or 20, public dataset, no
token) and a DRS object lookup ``GET /ga4gh/drs/v1/objects/NA12878.bam``.
It prints p50/p99 per node and the B/A ratio per shape, and the load
average. Only the ratios mean anything; the machine is shared.

    python bench/files_scale.py [--files 120000] [--requests 300] [--keep]
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
_spec = importlib.util.spec_from_file_location("bench_beacon", REPO / "bench" / "beacon.py")
bb = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bb)
_spec = importlib.util.spec_from_file_location("bench_htsget", REPO / "bench" / "htsget.py")
bh = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bh)

from tests.support.processes import free_port  # noqa: E402

TESTDATA = REPO.parent / "shared" / "testdata"
BAM = TESTDATA / "reads" / "htsnexus_test_NA12878.bam"
CRAM = TESTDATA / "reads" / "htsnexus_test_NA12878.cram"
VCF = TESTDATA / "variants" / "spec-v4.3.vcf.gz"
BULK_DATASETS = 10
REGIONS = [("11", 4_900_000 + 100_000 * k) for k in range(5)] + [
    ("20", 9_900_000 + 100_000 * k) for k in range(5)
]


def build_node(url: str, extra: int) -> int:
    """The few real files, then ``extra`` bulk rows (BAM, CRAM, VCF in turn);
    returns the number of registered files."""
    import sqlalchemy as sa
    from tqdm import tqdm

    from server.db import Database
    from server.db.tables import DataFile
    from server.registry import add_dataset, add_files

    db = Database(url)
    db.upgrade()
    add_dataset(db, "bench", access="public")
    add_files(db, [BAM, CRAM], "bench", object_id="NA12878", progress=False)
    add_files(db, [VCF], "bench", object_id="spec", progress=False)
    if extra:
        # the columns files add wrote for the real BAM, CRAM and VCF, ids aside
        skip = {"pk", "object_id", "dataset_id", "created", "updated"}
        names = [c.name for c in DataFile.__table__.columns if c.name not in skip]
        with db.session() as session:
            real = {f.format: f for f in session.scalars(sa.select(DataFile))}
            shapes = [{n: getattr(real[fmt], n) for n in names} for fmt in ("BAM", "CRAM", "VCF")]
        for d in range(BULK_DATASETS):
            add_dataset(db, f"bulk{d}", access="public")
        batch = 10_000
        with tqdm(total=extra, desc="bulk rows", unit="row", leave=False) as bar:
            for start in range(0, extra, batch):
                rows = [
                    dict(
                        shapes[i % 3],
                        object_id=f"bulk-{i:06d}",
                        dataset_id=f"bulk{i % BULK_DATASETS}",
                    )
                    for i in range(start, min(extra, start + batch))
                ]
                with db.session() as session:
                    session.execute(sa.insert(DataFile), rows)
                bar.update(len(rows))
        with db.engine.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT").execute(
                sa.text("ANALYZE data_files")
            )
    with db.session() as session:
        count = session.scalar(sa.select(sa.func.count()).select_from(DataFile))
    db.dispose()
    return count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", action="store_true", help="keep both stores")
    parser.add_argument("--files", type=int, default=120_000, help="bulk rows on node B")
    parser.add_argument("--requests", type=int, default=300, help="requests per shape and node")
    args = parser.parse_args()

    with contextlib.ExitStack() as stack:
        nodes = {}
        for label, extra in (("A", 0), ("B", args.files)):
            url, tmp, servers = stack.enter_context(
                bb.scratch("postgresql", f"bench-files-{label}-", args.keep, f"node {label} ")
            )
            t = time.perf_counter()
            count = build_node(url, extra)
            built = time.perf_counter() - t
            port = free_port()
            servers.append(bb.start_server(url, tmp, port))
            client = bh.KeepAliveClient(f"http://127.0.0.1:{port}")
            stack.callback(client.close)
            nodes[label] = client
            print(f"node {label}: {count:,} registered files (built in {built:.1f} s)")

        # the bulk rows are valid objects: one of each format answers on node B
        for i, ext in ((0, "bam"), (1, "cram"), (2, "vcf.gz")):
            if i < args.files:
                status, body = nodes["B"].get(f"/ga4gh/drs/v1/objects/bulk-{i:06d}.{ext}")
                assert status == 200, body[:300]

        def ticket(i):
            chrom, start = REGIONS[i % len(REGIONS)]
            params = {"referenceName": chrom, "start": str(start), "end": str(start + 100_000)}
            return "/reads/NA12878", params

        shapes = {
            "htsget reads ticket (BAM region)": ticket,
            "DRS GET /objects/NA12878.bam": lambda i: ("/ga4gh/drs/v1/objects/NA12878.bam", None),
        }
        times = {(s, n): [] for s in shapes for n in nodes}
        for n in range(20 + args.requests):  # the first 20 rounds warm up
            for shape, make in shapes.items():
                for label, client in nodes.items():
                    path, params = make(n)
                    t = time.perf_counter()
                    status, body = client.get(path, params=params)
                    elapsed = (time.perf_counter() - t) * 1000
                    if status != 200:
                        raise SystemExit(f"node {label} {path}: {status} {body[:300]!r}")
                    if n >= 20:
                        times[shape, label].append(elapsed)
        load = bb.load_average()

    print(
        f"{args.requests} requests per shape and node, A and B alternating; "
        "2 gunicorn workers per node; PostgreSQL"
    )
    print(f"{'shape':34} {'A p50':>8} {'A p99':>8} {'B p50':>8} {'B p99':>8} {'B/A p50':>8}")
    for shape in shapes:
        a, b = times[shape, "A"], times[shape, "B"]
        pa, pb = bb.pct(a, 0.5), bb.pct(b, 0.5)
        print(
            f"{shape:34} {pa:8.2f} {bb.pct(a, 0.99):8.2f} {pb:8.2f} {bb.pct(b, 0.99):8.2f}"
            f" {pb / pa:8.2f}"
        )
    print(f"{load} (after the requests; {os.cpu_count()} cores)")


if __name__ == "__main__":
    main()
