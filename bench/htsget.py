"""htsget side by side in one run: tickets, the data plane, and slices.

Starts a real node (gunicorn + one uvicorn worker, SQLite) on generated data and
measures, on the same machine in the same run:

* warm ticket latency p50/p99 against a trivial endpoint of the same server
  (GET /service-info, also answered through Connexion), both measured with the
  same client: one keep-alive ``http.client`` connection;
* cold ticket latency on a WGS-scale BAI (25 references x 250 Mbp, every
  16 kbp window populated) against the warm latency on the same index;
* small (4 KiB) data-plane ranges, each one audited, against the trivial
  endpoint on the same connection, and the audit insert alone in-process;
* data-plane throughput for one large Range (default 512 MiB) against reading
  the same bytes with os.pread, both straight from disk (the file's pages
  evicted from the page cache before each read, posix_fadvise DONTNEED) and
  from the page cache (a memory copy, the harder comparison), against a Flask
  route in a
  Connexion app (send_file with Range) serving the same bytes, and against a
  bare socket answering with os.sendfile (what loopback TCP and curl carry
  without any HTTP framework);
* streaming a 1 Mbp region of a 30x BAM with pysam through htsget against
  pysam on the local file;
* Crypt4GH: the same 30x BAM ingested encrypted (``genomeport`` inbox
  pipeline), ``encryptionScheme=C4GH`` tickets for random 10 kbp regions
  against plaintext tickets on the plaintext copy, interleaved, and the bytes
  of a 1 Mbp region's C4GH ticket (header and archived segments) fetched
  against the plaintext ticket's data-plane bytes for the same region, and
  the plaintext of the archived file (decrypted by the node as it streams).

Only the ratios are meaningful; absolute numbers depend on the machine.

    python bench/htsget.py [--range-mb 512] [--requests 300]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from tests.support.processes import clean_env, free_port, spawn, stop, wait_ready  # noqa: E402

READ_LEN = 10_000
CONTIG_LEN = 200_000_000


def make_bam(path: Path, target_bytes: int) -> int:
    """A coordinate-sorted BAM of long reads, BGZF level 0, about ``target_bytes``."""
    import pysam

    header = {"HD": {"VN": "1.6", "SO": "coordinate"}, "SQ": [{"SN": "chr1", "LN": CONTIG_LEN}]}
    rng = random.Random(7)
    bases = "".join(rng.choice("ACGT") for _ in range(READ_LEN * 2))
    qual = pysam.qualitystring_to_array(
        "".join(chr(33 + rng.randrange(10, 40)) for _ in range(READ_LEN))
    )
    per_record = READ_LEN // 2 + READ_LEN + 60
    n = max(1000, target_bytes // per_record)
    step = (CONTIG_LEN - READ_LEN) // n
    with pysam.AlignmentFile(str(path), "wb0", header=header) as out:
        for i in range(n):
            rec = pysam.AlignedSegment(out.header)
            rec.query_name = f"r{i}"
            rec.reference_id = 0
            rec.reference_start = i * step
            rec.mapping_quality = 60
            rec.cigarstring = f"{READ_LEN}M"
            off = i % READ_LEN
            rec.query_sequence = bases[off : off + READ_LEN]
            rec.query_qualities = qual
            out.write(rec)
    pysam.index(str(path))
    return n


def make_dense_bam(path: Path, span: int = 2_500_000, depth: int = 30, read_len: int = 150) -> int:
    """30x coverage of 150 bp reads over ``span`` bp: a WGS-like density."""
    import pysam

    header = {"HD": {"VN": "1.6", "SO": "coordinate"}, "SQ": [{"SN": "chr1", "LN": span + 100_000}]}
    rng = random.Random(11)
    bases = "".join(rng.choice("ACGT") for _ in range(4096))
    qual = pysam.qualitystring_to_array(
        "".join(chr(33 + rng.randrange(20, 40)) for _ in range(read_len))
    )
    n = span * depth // read_len
    with pysam.AlignmentFile(str(path), "wb", header=header) as out:
        for i in range(n):
            rec = pysam.AlignedSegment(out.header)
            rec.query_name = f"d{i}"
            rec.flag = 0
            rec.reference_id = 0
            rec.reference_start = i * read_len // depth
            rec.mapping_quality = 60
            rec.cigarstring = f"{read_len}M"
            off = (i * 37) % (4096 - read_len)
            rec.query_sequence = bases[off : off + read_len]
            rec.query_qualities = qual
            out.write(rec)
    pysam.index(str(path))
    return n


def make_wgs_bai(bam: Path) -> int:
    """A header-only BAM with 25 x 250 Mbp references and a synthetic WGS-scale BAI.

    Every 16 kbp window has a leaf bin with two chunks and a linear-index entry,
    like a 30x genome; all virtual offsets are block-aligned."""
    import pysam

    refs = [{"SN": f"chr{i}", "LN": 250_000_000} for i in range(1, 26)]
    with pysam.AlignmentFile(
        str(bam), "wb", header={"HD": {"VN": "1.6", "SO": "coordinate"}, "SQ": refs}
    ):
        pass
    out = [b"BAI\1", struct.pack("<i", len(refs))]
    offset = 1 << 20
    for _ in refs:
        windows = 250_000_000 >> 14
        bins = []
        linear = []
        for w in range(windows):
            beg = offset << 16
            offset += 40_000
            mid = offset << 16
            offset += 40_000
            bins.append(struct.pack("<Ii4Q", 4681 + w, 2, beg, mid, mid, offset << 16))
            linear.append(beg)
        out.append(struct.pack("<i", len(bins)))
        out.extend(bins)
        out.append(struct.pack("<i", len(linear)))
        out.append(struct.pack(f"<{len(linear)}Q", *linear))
    out.append(struct.pack("<Q", 0))
    data = b"".join(out)
    Path(str(bam) + ".bai").write_bytes(data)
    return len(data)


C4GH_PASSPHRASE = "bench-passphrase"


def ingest_encrypted(var: Path, db, bam: Path, tmp: Path) -> str:
    """``bam`` encrypted for a new node key and ingested as ``dense-c4gh``; returns the
    ``client-public-key`` header of a researcher key pair."""
    import base64

    from crypt4gh import lib
    from crypt4gh.keys import c4gh, get_public_key

    from server.c4gh.keys import key_paths, keygen, node_key
    from server.inbox.ingest import Ingest, enqueue_local
    from server.settings import Settings

    settings = Settings(var_dir=str(var), c4gh_passphrase=C4GH_PASSPHRASE)
    keygen(settings)
    node = get_public_key(str(key_paths(settings)[1]))
    enc = tmp / "dense.bam.c4gh"
    with open(bam, "rb") as fin, open(enc, "wb") as fout:
        lib.encrypt([(0, node_key(settings).secret, node)], fin, fout)
    enqueue_local(settings, db, enc, "bench", object_id="dense-c4gh", operator="bench")
    assert Ingest(settings, db).work(once=True) == 1
    c4gh.generate(str(tmp / "r.sec"), str(tmp / "r.pub"), b"", b"bench researcher")
    return base64.b64encode((tmp / "r.pub").read_bytes()).decode()


def fetch_rate(client, tk: dict) -> tuple[float, int]:
    """Seconds and bytes to fetch a ticket's URLs (inline parts decoded, not timed)."""
    total, elapsed = 0, 0.0
    for entry in tk["htsget"]["urls"]:
        if entry["url"].startswith("data:"):
            continue
        t = time.perf_counter()
        status, body = client.get(entry["url"], headers=entry.get("headers", {}))
        elapsed += time.perf_counter() - t
        assert status in (200, 206), status
        total += len(body)
    return elapsed, total


def node_env(var: Path, port: int) -> dict[str, str]:
    """The environment of a one-worker node on ``port`` with its state in ``var``.

    Only this environment's ``GENOMEPORT_*`` settings apply; one range is one
    piece (no split at the block size), so large ranges measure the data plane.
    """
    env = clean_env()
    env.update(
        GENOMEPORT_VAR_DIR=str(var),
        GENOMEPORT_PORT=str(port),
        GENOMEPORT_PUBLIC_URL=f"http://127.0.0.1:{port}",
        GENOMEPORT_WORKERS="1",
        GENOMEPORT_LOG_LEVEL="WARNING",
        GENOMEPORT_LOG_FORMAT="text",
        GENOMEPORT_HTSGET_BLOCK_SIZE=str(1 << 30),
        GENOMEPORT_C4GH_PASSPHRASE=C4GH_PASSPHRASE,
    )
    return env


def percentile(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


class KeepAliveClient:
    """One persistent HTTP/1.1 connection through ``http.client``.

    The latency figures (tickets and the trivial endpoint alike) are measured
    with this client: it adds far less per request than httpx, so what is
    measured is mostly the server.
    """

    def __init__(self, base: str, timeout: float = 60):
        import http.client
        import urllib.parse

        parts = urllib.parse.urlsplit(base)
        self.base = base
        self.conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)

    def get(
        self, url: str, params: dict | None = None, headers: dict | None = None
    ) -> tuple[int, bytes]:
        import urllib.parse

        path = url[len(self.base) :] if url.startswith(self.base) else url
        if params:
            path += "?" + urllib.parse.urlencode(params)
        self.conn.request("GET", path, headers=headers or {})
        resp = self.conn.getresponse()
        return resp.status, resp.read()

    def close(self) -> None:
        self.conn.close()


def timed_get(client: KeepAliveClient, url: str, n: int, **kw) -> list[float]:
    out = []
    for _ in range(n):
        t = time.perf_counter()
        status, body = client.get(url, **kw)
        out.append(time.perf_counter() - t)
        assert status == 200, body[:500]
    return out


def curl_rate(url: str, start: int, length: int) -> float:
    """Bytes per second for one ranged download with curl (a lean client)."""
    t = time.perf_counter()
    out = subprocess.run(
        [
            "curl",
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{size_download}",
            "-H",
            f"Range: bytes={start}-{start + length - 1}",
            url,
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    )
    elapsed = time.perf_counter() - t
    assert int(out.stdout) == length, out.stdout
    return length / elapsed


def disk_rate(path: Path, start: int, length: int) -> float:
    fd = os.open(path, os.O_RDONLY)
    try:
        t = time.perf_counter()
        pos, end = start, start + length
        while pos < end:
            pos += len(os.pread(fd, min(1 << 20, end - pos), pos))
        return length / (time.perf_counter() - t)
    finally:
        os.close(fd)


def evict(path: Path) -> None:
    """Drop the file's pages from the page cache, so the next read comes from disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def bare_sendfile_rate(path: Path, start: int, length: int) -> float:
    """curl's rate from a bare socket that answers with blocking ``os.sendfile`` only.

    No HTTP framework at all, the same client and bytes: a reference for what
    loopback TCP and curl carry on this machine right now, to read the data
    plane's figure against (not a strict upper bound).
    """
    import socket
    import threading

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)

    def serve() -> None:
        conn, _ = listener.accept()
        with conn, open(path, "rb") as fh:
            conn.recv(65536)
            conn.sendall(
                b"HTTP/1.1 206 Partial Content\r\nContent-Length: %d\r\n"
                b"Connection: close\r\n\r\n" % length
            )
            pos, end = start, start + length
            while pos < end:
                pos += os.sendfile(conn.fileno(), fh.fileno(), pos, end - pos)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        return curl_rate(f"http://127.0.0.1:{listener.getsockname()[1]}/", start, length)
    finally:
        thread.join(60)
        listener.close()


FLASK_APP = """
import os
import connexion
import flask

cx = connexion.FlaskApp(__name__)


@cx.app.route("/file")
def whole_file():
    return flask.send_file(os.environ["BENCH_FILE"], conditional=True)
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--range-mb", type=int, default=512, help="size of the data-plane range")
    parser.add_argument("--requests", type=int, default=300, help="ticket requests per measurement")
    parser.add_argument("--keep", action="store_true", help="keep the generated files")
    args = parser.parse_args()

    import logging
    import warnings

    warnings.simplefilter("ignore")
    logging.disable(logging.WARNING)
    import pysam

    from server.db import Database
    from server.genomics import slices
    from server.registry import add_dataset, add_files

    tmp = Path(tempfile.mkdtemp(prefix="bench-htsget-"))
    procs: list[subprocess.Popen] = []
    try:
        length = args.range_mb << 20
        print(f"generating data in {tmp} ...", flush=True)
        bam = tmp / "bench.bam"
        n_reads = make_bam(bam, length + (64 << 20))
        dense = tmp / "dense.bam"
        n_dense = make_dense_bam(dense)
        wgs = tmp / "wgs.bam"
        bai_size = make_wgs_bai(wgs)
        size = bam.stat().st_size
        print(
            f"  bench.bam: {size / 2**20:.0f} MiB, {n_reads} reads of {READ_LEN} bp; dense.bam: "
            f"{n_dense} reads of 150 bp (30x over 2.5 Mbp); "
            f"WGS-scale BAI: {bai_size / 2**20:.1f} MiB",
            flush=True,
        )

        # Cold parse of the WGS-scale index in-process.
        t = time.perf_counter()
        cut = slices.open_indexed(wgs, "BAM", str(wgs) + ".bai")
        cut.body([slices.Region("chr7", 100_000_000, 101_000_000)])
        parse_cold = time.perf_counter() - t

        var = tmp / "var"
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        env = node_env(var, port)
        var.mkdir()
        db = Database(f"sqlite:///{var / 'genomeport.db'}")
        db.upgrade()
        add_dataset(db, "bench", access="public")
        add_files(db, [bam], "bench", object_id="bench", progress=False)
        # The synthetic WGS-scale BAI measures cold index loading; it deliberately
        # does not describe its header-only BAM, so registration's index check
        # (which would refuse it) is skipped for this one file.
        import server.registry as registry

        check_index, registry.check_index = registry.check_index, lambda *a: None
        try:
            add_files(db, [wgs], "bench", object_id="wgs", progress=False)
        finally:
            registry.check_index = check_index
        add_files(db, [dense], "bench", object_id="dense", progress=False)
        client_key = ingest_encrypted(var, db, dense, tmp)
        db.dispose()

        # The ticket computation alone, in-process (no HTTP, no audit row: the
        # decision's row is measured on its own below, as the audit insert).
        from server.auth import ANONYMOUS
        from server.htsget import service
        from server.settings import Settings

        local_db = Database(f"sqlite:///{var / 'genomeport.db'}")
        ctx = service.Context(
            Settings(var_dir=str(var), signing_key="bench" * 8), local_db, ANONYMOUS
        )
        rng = random.Random(2)
        inproc = []
        for i in range(args.requests + 20):
            start = rng.randrange(CONTIG_LEN - 100_000)
            t = time.perf_counter()
            service.plan(
                ctx,
                service.parse_get(
                    "reads",
                    "bench",
                    {"referenceName": "chr1", "start": start, "end": start + 10_000},
                ),
            )
            if i >= 20:
                inproc.append(time.perf_counter() - t)
        local_db.dispose()

        log = tmp / "node.log"
        node = spawn(
            [sys.executable, "-m", "server.cli", "serve", "--workers", "1"], log, env=env, cwd=REPO
        )
        procs.append(node)
        wait_ready(base + "/health/ready", node, log)

        flask_port = free_port()
        (tmp / "bench_flask_app.py").write_text(FLASK_APP)
        flask_log = tmp / "flask.log"
        flask = spawn(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "-k",
                "uvicorn_worker.UvicornWorker",
                "-w",
                "1",
                "-b",
                f"127.0.0.1:{flask_port}",
                "bench_flask_app:cx",
            ],
            flask_log,
            env={**env, "BENCH_FILE": str(bam), "PYTHONPATH": str(tmp)},
            cwd=tmp,
        )
        procs.append(flask)
        wait_ready(f"http://127.0.0.1:{flask_port}/file", flask, flask_log, ready=lambda s: s < 500)

        client = KeepAliveClient(base)
        try:
            # Cold vs warm ticket on the WGS-scale index (the worker has never opened it).
            wgs_url = f"{base}/reads/wgs"
            t = time.perf_counter()
            assert (
                client.get(wgs_url, params={"referenceName": "chr7", "start": 1, "end": 2})[0]
                == 200
            )
            cold = time.perf_counter() - t
            wgs_warm = timed_get(
                client,
                wgs_url,
                max(20, args.requests // 5),
                params={"referenceName": "chr9", "start": 5_000_000, "end": 5_100_000},
            )

            # Warm tickets on the bench BAM vs a trivial endpoint, interleaved.
            timed_get(
                client,
                f"{base}/reads/bench",
                5,
                params={"referenceName": "chr1", "start": 1, "end": 2},
            )
            rng = random.Random(1)
            tickets, trivial = [], []
            for _ in range(args.requests):
                start = rng.randrange(CONTIG_LEN - 100_000)
                tickets += timed_get(
                    client,
                    f"{base}/reads/bench",
                    1,
                    params={"referenceName": "chr1", "start": start, "end": start + 10_000},
                )
                trivial += timed_get(client, f"{base}/service-info", 1)

            # Crypt4GH tickets vs plaintext tickets on the same 30x BAM, interleaved.
            c4gh_headers = {"client-public-key": client_key}
            for oid, extra, hdrs in (
                ("dense", {}, {}),
                ("dense-c4gh", {"encryptionScheme": "C4GH"}, c4gh_headers),
            ):
                timed_get(
                    client,
                    f"{base}/reads/{oid}",
                    5,
                    params={"referenceName": "chr1", "start": 1, "end": 2} | extra,
                    headers=hdrs,
                )
            plain_t, c4gh_t = [], []
            for _ in range(args.requests):
                start = rng.randrange(0, 2_400_000)
                region = {"referenceName": "chr1", "start": start, "end": start + 10_000}
                plain_t += timed_get(client, f"{base}/reads/dense", 1, params=region)
                c4gh_t += timed_get(
                    client,
                    f"{base}/reads/dense-c4gh",
                    1,
                    params=region | {"encryptionScheme": "C4GH"},
                    headers=c4gh_headers,
                )
            mbp = {"referenceName": "chr1", "start": 1_000_000, "end": 2_000_000}
            plain_rate, c4gh_rate, archived_rate = [], [], []
            for _ in range(3):
                tk = json.loads(client.get(f"{base}/reads/dense-c4gh", params=mbp)[1])
                sec, n_archived = fetch_rate(client, tk)
                archived_rate.append(n_archived / sec)
                tk = json.loads(client.get(f"{base}/reads/dense", params=mbp)[1])
                sec, n = fetch_rate(client, tk)
                plain_rate.append(n / sec)
                tk = json.loads(
                    client.get(
                        f"{base}/reads/dense-c4gh",
                        params=mbp | {"encryptionScheme": "C4GH"},
                        headers=c4gh_headers,
                    )[1]
                )
                sec, n_c4gh = fetch_rate(client, tk)
                c4gh_rate.append(n_c4gh / sec)

            # Data plane: a signed URL for the whole BAM from a ticket.
            tk = json.loads(client.get(f"{base}/reads/bench")[1])
            data_url = next(u["url"] for u in tk["htsget"]["urls"] if u["url"].startswith("http"))

            # Small ranges (4 KiB, each one audited) vs the trivial endpoint, interleaved.
            small, trivial2 = [], []
            for i in range(args.requests + 5):
                offset = rng.randrange(1 << 20, length)
                t = time.perf_counter()
                status, body = client.get(
                    data_url, headers={"Range": f"bytes={offset}-{offset + 4095}"}
                )
                elapsed = time.perf_counter() - t
                assert status == 206 and len(body) == 4096, status
                t2 = time.perf_counter()
                assert client.get(f"{base}/service-info")[0] == 200
                if i >= 5:
                    small.append(elapsed)
                    trivial2.append(time.perf_counter() - t2)
        finally:
            client.close()

        # The data plane in-process (no HTTP): a 4 KiB range with its audit row
        # (written before the call returns) against the same range unaudited.
        import asyncio
        import urllib.parse as up

        from server.settings import Settings as _Settings
        from server.web.dataplane import DataPlane

        plane_settings = _Settings(var_dir=str(var), public_url=base)
        plane_db = Database(f"sqlite:///{var / 'genomeport.db'}")

        class Unaudited(DataPlane):
            async def _audit(self, record) -> None:
                return None

        audited, unaudited = (
            DataPlane(plane_settings, plane_db),
            Unaudited(plane_settings, plane_db),
        )
        parts = up.urlsplit(data_url)

        async def one(plane, offset: int) -> float:
            sent = []

            async def send(message):
                sent.append(message)

            async def receive():
                return {"type": "http.request", "body": b"", "more_body": False}

            scope = {
                "type": "http",
                "method": "GET",
                "path": up.unquote(parts.path),
                "query_string": parts.query.encode(),
                "headers": [(b"range", f"bytes={offset}-{offset + 4095}".encode())],
            }
            t = time.perf_counter()
            await plane(scope, receive, send)
            elapsed = time.perf_counter() - t
            assert sent[0]["status"] == 206, sent[0]
            return elapsed

        loop = asyncio.new_event_loop()
        with_audit, without_audit = [], []
        for i in range(args.requests + 5):
            offset = rng.randrange(1 << 20, length)
            a = loop.run_until_complete(one(audited, offset))
            b = loop.run_until_complete(one(unaudited, offset))
            if i >= 5:
                with_audit.append(a)
                without_audit.append(b)
        loop.close()
        plane_db.dispose()

        # The data plane's audit row alone, in-process on the same database.
        from server.auth import audit

        audit_db = Database(f"sqlite:///{var / 'genomeport.db'}")
        audit_t = []
        for i in range(args.requests + 5):
            t = time.perf_counter()
            audit.append(
                audit_db,
                caller="bench",
                api="data",
                action="download.file",
                outcome="granted",
                status=206,
                dataset_id="bench",
                object_id="bench",
                query={
                    "method": "GET",
                    "kind": "file",
                    "start": 0,
                    "end": 4096,
                    "bytes": 4096,
                    "format": "BAM",
                },
            )
            if i >= 5:
                audit_t.append(time.perf_counter() - t)
        audit_db.dispose()

        start = 1 << 20
        # Straight from disk: both sides start with the file out of the page cache.
        disk_cold, plane_cold = [], []
        for _ in range(3):
            evict(bam)
            disk_cold.append(disk_rate(bam, start, length))
            evict(bam)
            plane_cold.append(curl_rate(data_url, start, length))

        disk, plane, via_flask, bare = [], [], [], []
        disk_rate(bam, start, length)  # warm the page cache
        for _ in range(3):
            disk.append(disk_rate(bam, start, length))
            plane.append(curl_rate(data_url, start, length))
            via_flask.append(curl_rate(f"http://127.0.0.1:{flask_port}/file", start, length))
            bare.append(bare_sendfile_rate(bam, start, length))

        # 1 Mbp region: pysam through htsget vs pysam on the local file.
        region = ("chr1", 1_000_000, 2_000_000)
        slice_url = (
            f"{base}/reads/dense?referenceName={region[0]}&start={region[1]}&end={region[2]}"
        )
        local_t, remote_t = [], []
        for _ in range(3):
            t = time.perf_counter()
            with pysam.AlignmentFile(str(dense)) as fh:
                n_local = sum(1 for _ in fh.fetch(*region))
            local_t.append(time.perf_counter() - t)
            t = time.perf_counter()
            with pysam.AlignmentFile(slice_url) as fh:  # htslib cannot check EOF on a stream
                n_remote = sum(1 for _ in fh.fetch(until_eof=True))
            remote_t.append(time.perf_counter() - t)

        ms = 1000
        mib = 2**20
        print()
        print("htsget benchmark (one run, same machine; ratios are what matter)")
        print(
            f"  warm ticket        p50 {statistics.median(tickets) * ms:7.2f} ms  "
            f"p99 {percentile(tickets, 0.99) * ms:7.2f} ms   "
            f"({args.requests} random 10 kbp regions)"
        )
        print(
            f"  trivial endpoint   p50 {statistics.median(trivial) * ms:7.2f} ms  "
            f"p99 {percentile(trivial, 0.99) * ms:7.2f} ms   (GET /service-info)"
        )
        print("  (latencies: one keep-alive http.client connection for both, requests interleaved)")
        print(
            "  ticket / trivial   p50 "
            f"x{statistics.median(tickets) / statistics.median(trivial):.2f}"
        )
        print(
            f"  ticket logic alone p50 {statistics.median(inproc) * ms:7.2f} ms  "
            f"p99 {percentile(inproc, 0.99) * ms:7.2f} ms   "
            "(in-process: lookup, slice, sign; no HTTP, no audit)"
        )
        print(
            f"  WGS-scale BAI ({bai_size / mib:.1f} MiB): cold ticket {cold * ms:.0f} ms "
            f"(in-process parse {parse_cold * ms:.0f} ms), "
            f"warm p50 {statistics.median(wgs_warm) * ms:.2f} ms"
        )
        print(
            f"  4 KiB data range   p50 {statistics.median(small) * ms:7.2f} ms  "
            f"p99 {percentile(small, 0.99) * ms:7.2f} ms   (signed URL, audited; same connection)"
        )
        print(
            f"  trivial endpoint   p50 {statistics.median(trivial2) * ms:7.2f} ms  "
            f"p99 {percentile(trivial2, 0.99) * ms:7.2f} ms   (interleaved with the ranges)"
        )
        print(
            "  4 KiB range / trivial p50 "
            f"x{statistics.median(small) / statistics.median(trivial2):.2f}"
        )
        print(
            f"  in-process 4 KiB range: audited p50 {statistics.median(with_audit) * ms:.3f} ms, "
            f"unaudited {statistics.median(without_audit) * ms:.3f} ms: "
            f"x{statistics.median(with_audit) / statistics.median(without_audit):.2f}"
        )
        print(
            f"  audit row alone    p50 {statistics.median(audit_t) * ms:7.2f} ms  "
            f"p99 {percentile(audit_t, 0.99) * ms:7.2f} ms   (in-process insert + commit, SQLite; "
            "written after the response)"
        )
        print(f"  from disk (page cache evicted before each read), {args.range_mb} MiB range:")
        print(f"  data plane         : {statistics.median(plane_cold) / mib:8.0f} MiB/s")
        print(f"  disk (os.pread)    : {statistics.median(disk_cold) / mib:8.0f} MiB/s")
        print(
            "  data plane / disk   "
            f"x{statistics.median(plane_cold) / statistics.median(disk_cold):.2f}"
        )
        print(f"  from the page cache, {args.range_mb} MiB range:")
        print(f"  data plane         : {statistics.median(plane) / mib:8.0f} MiB/s")
        print(f"  page cache (pread) : {statistics.median(disk) / mib:8.0f} MiB/s")
        print(f"  Flask route        : {statistics.median(via_flask) / mib:8.0f} MiB/s")
        print(
            f"  bare sendfile sock : {statistics.median(bare) / mib:8.0f} MiB/s   "
            "(no HTTP framework, same client and bytes)"
        )
        print(f"  data plane / cache  x{statistics.median(plane) / statistics.median(disk):.2f}")
        print(
            f"  data plane / Flask  x{statistics.median(plane) / statistics.median(via_flask):.2f}"
        )
        print(f"  data plane / bare   x{statistics.median(plane) / statistics.median(bare):.2f}")
        print(
            f"  1 Mbp slice with pysam: htsget {statistics.median(remote_t) * ms:.0f} ms "
            f"({n_remote} reads) "
            f"vs local {statistics.median(local_t) * ms:.0f} ms ({n_local} reads): "
            f"x{statistics.median(remote_t) / statistics.median(local_t):.2f}"
        )
        print(
            f"  C4GH ticket        p50 {statistics.median(c4gh_t) * ms:7.2f} ms  "
            f"p99 {percentile(c4gh_t, 0.99) * ms:7.2f} ms   (encryptionScheme=C4GH, 30x BAM)"
        )
        print(
            f"  plaintext ticket   p50 {statistics.median(plain_t) * ms:7.2f} ms  "
            f"p99 {percentile(plain_t, 0.99) * ms:7.2f} ms   (same regions, plaintext copy)"
        )
        print(
            "  C4GH / plaintext ticket p50 "
            f"x{statistics.median(c4gh_t) / statistics.median(plain_t):.2f}"
        )
        print(
            f"  1 Mbp region bytes: C4GH {statistics.median(c4gh_rate) / mib:.0f} MiB/s "
            f"({n_c4gh / mib:.1f} MiB of segments) vs plaintext data plane "
            f"{statistics.median(plain_rate) / mib:.0f} MiB/s ({n / mib:.1f} MiB): "
            f"x{statistics.median(c4gh_rate) / statistics.median(plain_rate):.2f}"
        )
        print(
            f"  1 Mbp region, plaintext of the archived file (decrypted as it streams): "
            f"{statistics.median(archived_rate) / mib:.0f} MiB/s ({n_archived / mib:.1f} MiB): "
            f"x{statistics.median(archived_rate) / statistics.median(plain_rate):.2f} "
            "of the plaintext copy"
        )
    finally:
        for proc in procs:
            stop(proc)
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
