"""Beacon loads from a path against loads from a stream, side by side in one run.

The same VCF/BCF is loaded (``load_vcf``) into fresh datasets of one
database, round after round, three ways:

* ``path``: the file by its path (hashed first, then read once);
* ``stream``: its bytes from an open reader, with the sha-256 given (read
  once, hashed as it goes: a VCF through Python's gzip, a BCF through a
  pipe into htslib);
* ``c4gh``: the same through a Crypt4GH copy (encrypted here for a throwaway
  key) decrypted in memory segment by segment, as the ingest loads an
  upload asked for the Beacon.

Printed: each way's median seconds and its ratio to ``path``. Only the
ratios of this one run mean anything; the machine is shared.

    python bench/beacon_source.py [FILE] [--rounds 3] [--db sqlite|URL]
"""

from __future__ import annotations

import argparse
import hashlib
import io
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from server.beacon.vcf import load_vcf  # noqa: E402
from server.db import Database  # noqa: E402
from server.db.tables import Dataset  # noqa: E402

DEFAULT = REPO.parent / "shared" / "testdata" / "variants" / "test_1000G_hg38.vcf.gz"


class _Decrypting(io.RawIOBase):
    """The plaintext of a Crypt4GH file, decrypted one segment at a time."""

    def __init__(self, path: Path, secret: bytes):
        from server.c4gh import stream

        self.fh = open(path, "rb")  # noqa: SIM115 - closed with the reader
        header = stream.read_header(self.fh)
        keys = stream.session_keys(header, [(0, secret, None)])
        self.segments = stream.segments(self.fh, keys)
        self.pending = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buf) -> int:
        if not self.pending:
            self.pending = next(self.segments, b"")
        n = min(len(buf), len(self.pending))
        buf[:n] = self.pending[:n]
        self.pending = self.pending[n:]
        return n

    def close(self) -> None:
        self.fh.close()
        super().close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("file", nargs="?", default=str(DEFAULT))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--db", default="sqlite", help="sqlite (a temporary file) or a URL")
    args = parser.parse_args()

    from crypt4gh import lib

    from server.c4gh.keys import generate, read_public, unlock

    src = Path(args.file)
    tmp = Path(tempfile.mkdtemp(prefix="bench-beacon-source-"))
    url = f"sqlite:///{tmp / 'bench.db'}" if args.db == "sqlite" else args.db
    db = Database(url)
    db.upgrade()
    sha = hashlib.sha256(src.read_bytes()).hexdigest()
    generate(tmp / "bench.sec", tmp / "bench.pub", "bench-passphrase", "bench")
    secret, public = unlock(tmp / "bench.sec", "bench-passphrase"), read_public(tmp / "bench.pub")
    encrypted = tmp / (src.name + ".c4gh")
    with open(src, "rb") as fin, open(encrypted, "wb") as fout:
        lib.encrypt([(0, secret, public)], fin, fout)

    def load(way: str, dataset: str) -> float:
        with db.session() as s:
            s.add(Dataset(id=dataset, name=dataset, description="", assembly="GRCh38",
                          access="public", grant_value=dataset))  # fmt: skip
        start = time.perf_counter()
        if way == "path":
            load_vcf(db, src, dataset, progress=False)
        elif way == "stream":
            with open(src, "rb") as fh:
                load_vcf(db, src.name, dataset, stream=fh, sha256=sha, progress=False)
        else:
            with io.BufferedReader(_Decrypting(encrypted, secret), 1 << 20) as fh:
                load_vcf(db, src.name, dataset, stream=fh, sha256=sha, progress=False)
        return time.perf_counter() - start

    ways = ("path", "stream", "c4gh")
    times: dict[str, list[float]] = {w: [] for w in ways}
    for n in range(args.rounds):
        for way in ways:
            times[way].append(load(way, f"{way}-{n}"))
    base = statistics.median(times["path"])
    print(f"{src.name}: {args.rounds} rounds, database {db.engine.dialect.name}")
    for way in ways:
        med = statistics.median(times[way])
        print(f"  {way:<7} {med:7.2f} s   x{med / base:.2f} of path")
    db.engine.dispose()
    for p in sorted(tmp.rglob("*"), reverse=True):
        p.unlink() if p.is_file() else p.rmdir()
    os.rmdir(tmp)


if __name__ == "__main__":
    main()
