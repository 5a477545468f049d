"""The ingest pipeline: from an upload in the inbox to a registered, archived file.

``genomeport ingest work`` claims queued uploads from the database (as the
WES worker claims runs: a conditional UPDATE, so two workers never take the
same upload) and, for each:

1. opens the header with the node's key (or a retired one), and rejects a
   file not encrypted for this node, or one carrying an edit list;
2. stream-decrypts the data segments in memory and feeds the plaintext
   through a pipe to the index builder (``samtools index`` for BAM and
   CRAM, ``bcftools index`` for VCF and BCF), which parses every record and
   so validates the format, while sha-256, md5 and size are computed; the
   plaintext exists only in this process's buffers and the pipe, never in a
   file; the BGZF end-of-file marker is checked (the builders cannot seek a
   pipe to look for it);
3. takes the submitted index when it describes the file (the same chunks as
   the one just built, reference by reference), and otherwise rejects the
   upload; without a submitted index it takes the built one;
4. assigns the accession ``GPF`` + the upload's number (stable: kept on the
   row from the first attempt on);
5. writes the archive copy: the header re-encrypted for the node's key,
   followed by the submitted data segments byte for byte (their sha-256
   compared with the inbox's), and the index encrypted for the node's key;
6. registers the file (plaintext checksums and size) as a DRS object of the
   upload's dataset and marks the upload ``ingested``, in one transaction,
   then removes the inbox copy;
7. for an upload asked for the Beacon (``beacon``, VCF and BCF only), the
   registration leaves it ``ingesting`` with ``beacon_state`` ``loading``;
   the archived copy is then decrypted in memory and read once by the Beacon
   loader (``server.beacon.vcf.load_vcf`` with ``stream=``: ``add-genome``
   for a single-sample file, ``load-vcf`` for a multi-sample one), and the
   upload turns ``ingested`` (``loaded``, or ``unchanged`` when the genomes
   were already there). A file the loader refuses (a bad record, a sample
   already there with other calls, another assembly) is rejected with the
   loader's reason and its registration undone: the loader stages its rows
   invisibly and drops them on error, so neither the Beacon nor DRS keeps
   anything of it. A worker that dies during the load leaves
   ``beacon_state`` ``loading``: the next claim goes straight to this step,
   and the loader resumes from its last committed batch.

A rejected upload gets its reason and nothing registered (its archive copy,
if any, is removed). A worker that dies mid-ingest leaves the upload
``ingesting`` with a lease; when the lease runs out (``ingest_lease_seconds``
without progress) another worker claims it and runs it again from step 1;
every step is idempotent (archive files are written under a temporary name
and renamed, the registration checks for its own row).

With a progress bar (``progress``, as ``genomeport files add FILE.c4gh``
and ``genomeport ingest work`` show it), each upload's bytes are counted
through the checks, the archive copy and its verification, and the Beacon
load shows its records.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import io
import logging
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import uuid
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import sqlalchemy as sa

from server.c4gh import keys as node_keys
from server.c4gh import stream
from server.db import Database
from server.db.tables import DataFile
from server.inbox.service import audit, remove_bytes
from server.inbox.tables import InboxUpload
from server.registry import MAGIC_BYTES, bgzf_format
from server.settings import Settings

logger = logging.getLogger(__name__)

BGZF_EOF = bytes.fromhex("1f8b08040000000000ff0600424302001b0003000000000000000000")
EXTENSIONS = {"BAM": ".bam", "CRAM": ".cram", "VCF": ".vcf.gz", "BCF": ".bcf"}
INDEX_KINDS = {"BAM": "BAI", "CRAM": "CRAI", "VCF": "TBI", "BCF": "CSI"}
INDEX_EXT = {"BAI": ".bai", "CRAI": ".crai", "TBI": ".tbi", "CSI": ".csi"}
MAX_INDEX_BYTES = 1 << 30
RENEW_EVERY = 256  # segments (16 MiB) between lease renewals
MAX_ATTEMPTS = 5


class Rejected(Exception):
    """The upload is refused; the message is the reason the submitter reads."""


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def accession_for(pk: int) -> str:
    return f"GPF{pk:09d}"


# ---------------------------------------------------------------- format
def detect_format(first: bytes) -> str:
    """BAM, CRAM, VCF or BCF from the first plaintext bytes."""
    if first.startswith(b"CRAM"):
        return "CRAM"
    if first[:2] != b"\x1f\x8b":
        raise Rejected("the decrypted file is not a BAM, CRAM, BGZF-compressed VCF or BCF")
    try:
        magic = zlib.decompressobj(31).decompress(first, MAGIC_BYTES)
    except zlib.error:
        raise Rejected("the decrypted file is not BGZF-compressed") from None
    fmt = bgzf_format(magic)
    if fmt is None:
        raise Rejected("the decrypted file is not a BAM, CRAM, VCF or BCF")
    return fmt


def index_command(fmt: str, out: Path) -> list[str]:
    """The builder reading plaintext on stdin and writing the index to ``out``."""
    if fmt in ("BAM", "CRAM"):
        return ["samtools", "index", "-o", str(out), "-"]
    flag = "-t" if fmt == "VCF" else "-c"
    # -f: the builder cannot seek a pipe to check the EOF marker; this module checks it
    return ["bcftools", "index", "-f", flag, "-o", str(out), "-"]


def same_index(kind: str, built: bytes, submitted: bytes) -> bool:
    """Do two indexes of one kind describe the same chunks of the same references?"""
    from server.genomics.slices import INDEXES

    try:
        a, b = INDEXES[kind](built), INDEXES[kind](submitted)
    except (ValueError, IndexError, KeyError, OSError):
        return False
    if kind == "CRAI":
        key = lambda e: (e.ref_id, e.start, e.span, e.container)  # noqa: E731
        return sorted(map(key, a)) == sorted(map(key, b))
    if len(a.refs) != len(b.refs) or a.names != b.names:
        return False
    span = 1 << 62
    return all(a.chunks(r, 0, span) == b.chunks(r, 0, span) for r in range(len(a.refs)))


# ---------------------------------------------------------------- the steps
@dataclass
class Scan:
    format: str
    size: int
    sha256: str
    md5: str
    index: bytes  # built from the stream
    header: stream.Header
    data_keys: list[bytes]


def _keys(settings: Settings) -> list[tuple]:
    current = node_keys.node_key(settings)
    out = list(current.decryption_keys)
    for old in node_keys.retired_keys(settings):
        out.extend(old.decryption_keys)
    return out


def open_inbox(settings: Settings, location) -> BinaryIO:
    """The uploaded bytes: a file of the node's inbox, or an object of an S3 inbox."""
    from server.storage import for_location, is_local

    if is_local(str(location)):
        return open(location, "rb")  # noqa: SIM115 - the caller closes it
    return io.BufferedReader(for_location(str(location), settings, raw=True).open(), 1 << 20)


def inbox_size(settings: Settings, location) -> int | None:
    """Bytes of the upload, None when they are gone."""
    from server.storage import for_location

    try:
        return for_location(str(location), settings, raw=True).stat().size
    except FileNotFoundError:
        return None


def scan(
    settings: Settings,
    path,
    renew: Callable[[], None] = lambda: None,
    advance: Callable[[int], None] = lambda n: None,
) -> Scan:
    """Steps 1-2: open the header, stream-decrypt through the index builder
    (``advance``: told the ciphertext bytes read, for a progress bar)."""
    with open_inbox(settings, path) as fh:
        try:
            header = stream.read_header(fh)
            data_keys = stream.session_keys(header, _keys(settings))
        except stream.NotCrypt4GH as exc:
            raise Rejected(str(exc)) from None
        sha, md5 = hashlib.sha256(), hashlib.md5()  # noqa: S324 - md5 is a DRS checksum type
        size, tail, fmt = 0, b"", None
        with tempfile.TemporaryDirectory(prefix="gp-ingest-") as tmp:
            out = Path(tmp) / "index"
            log = open(Path(tmp) / "log", "w+b")  # noqa: SIM115 - closed with the directory
            proc = None
            try:
                for n, segment in enumerate(stream.segments(fh, data_keys)):
                    if fmt is None:
                        fmt = detect_format(segment)
                        proc = subprocess.Popen(  # noqa: S603 - fixed argument list
                            index_command(fmt, out),
                            stdin=subprocess.PIPE,
                            stdout=subprocess.DEVNULL,
                            stderr=log,
                            cwd=tmp,
                        )
                    sha.update(segment)
                    md5.update(segment)
                    size += len(segment)
                    advance(len(segment) + stream.CIPHER_DIFF)
                    tail = (tail + segment)[-len(BGZF_EOF) :]
                    try:
                        proc.stdin.write(segment)
                    except BrokenPipeError:
                        break  # the builder gave up: its message says why
                    if n % RENEW_EVERY == RENEW_EVERY - 1:
                        renew()
            except stream.NotCrypt4GH as exc:
                raise Rejected(str(exc)) from None
            finally:
                if proc is not None:
                    with contextlib.suppress(BrokenPipeError):
                        proc.stdin.close()
                    proc.wait(timeout=600)
                log.seek(0)
                err = log.read()[-4000:]
                log.close()
            if fmt is None:
                raise Rejected("the encrypted file holds no data")
            if fmt != "CRAM" and tail != BGZF_EOF:
                raise Rejected(f"the {fmt} file is truncated (no BGZF end-of-file marker)")
            if proc.returncode != 0 or not out.is_file():
                message = err.decode("utf-8", "replace").strip().splitlines()[-3:]
                raise Rejected(f"not a valid {fmt} file: {' '.join(message) or 'unreadable'}")
            index = out.read_bytes()
    return Scan(fmt, size, sha.hexdigest(), md5.hexdigest(), index, header, data_keys)


def decrypt_small(settings: Settings, path) -> bytes:
    """A small Crypt4GH file (a submitted index), decrypted in memory."""
    size = inbox_size(settings, path)
    if size is None:
        raise Rejected("the submitted index is no longer in the inbox")
    if size > MAX_INDEX_BYTES:
        raise Rejected("the submitted index is larger than 1 GiB")
    with open_inbox(settings, path) as fh:
        try:
            header = stream.read_header(fh)
            data_keys = stream.session_keys(header, _keys(settings))
            return b"".join(stream.segments(fh, data_keys))
        except stream.NotCrypt4GH as exc:
            raise Rejected(f"the index: {exc}") from None


def encrypt_small(settings: Settings, data: bytes) -> bytes:
    """``data`` as a Crypt4GH stream for the node's key (an archived index)."""
    import io

    from crypt4gh import lib

    key = node_keys.node_key(settings)
    out = io.BytesIO()
    lib.encrypt(key.recipients(key.public), io.BytesIO(data), out)
    return out.getvalue()


def write_atomic(target: Path, parts: Callable[[object], None]) -> None:
    """Write ``target`` whole or not at all: ``parts(fh)`` writes a temporary file
    beside it (mode 0600, synced), which then replaces it."""
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.part")
    try:
        with open(tmp, "wb") as fh:
            parts(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def archive(
    settings: Settings,
    path,
    result: Scan,
    target: Path,
    advance: Callable[[int], None] = lambda n: None,
) -> None:
    """Step 5: header re-encrypted for the node key, data segments copied untouched
    (``advance``: told the bytes copied, then the bytes compared)."""
    key = node_keys.node_key(settings)
    new_header = stream.reencrypt(result.header, _keys(settings), key.recipients(key.public))
    copied = hashlib.sha256()

    def write(out) -> None:
        out.write(new_header)
        with open_inbox(settings, path) as src:
            src.seek(result.header.length)
            while chunk := src.read(1 << 20):
                copied.update(chunk)
                out.write(chunk)
                advance(len(chunk))

    write_atomic(target, write)
    original = hashlib.sha256()
    with open_inbox(settings, path) as src:
        src.seek(result.header.length)
        while chunk := src.read(1 << 20):
            original.update(chunk)
            advance(len(chunk))
    if copied.digest() != original.digest():
        target.unlink(missing_ok=True)
        raise RuntimeError("the archive copy differs from the inbox copy")


def cram_names(fh) -> list[str]:
    """A CRAM's ``@SQ`` names (``server.genomics.format_cram``), read in memory."""
    from server.genomics import cram
    from server.genomics.format_cram import reference_names

    major, header_end = cram.header_end(fh)
    try:
        return reference_names(fh, major, header_end)
    except ValueError as exc:
        raise Rejected(str(exc)) from None


def compute_layout(settings: Settings, target: Path, result: Scan, kind: str, index: bytes):
    """Where the blocks, records and containers are (``server.genomics.layout``),
    read from the archived copy through its plaintext view, in memory."""
    from server.genomics import layout
    from server.genomics.slices import INDEXES
    from server.storage import for_location

    plain = for_location(str(target), settings)
    parsed = INDEXES[kind](index)
    with plain.open() as fh:
        names = cram_names(fh) if result.format == "CRAM" else None
        fh.seek(0)
        return layout.compute(fh, result.size, result.format, parsed, names)


# ---------------------------------------------------------------- one upload
class Ingest:
    """One worker: claims uploads and runs the pipeline on each."""

    def __init__(
        self,
        settings: Settings,
        db: Database,
        worker_id: str | None = None,
        *,
        progress: bool = False,
    ):
        self.settings, self.db = settings, db
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}"
        self.progress = progress

    # ------------------------------------------------------------ the queue
    def claim(self) -> InboxUpload | None:
        now = utcnow()
        lease = now + dt.timedelta(seconds=self.settings.ingest_lease_seconds)
        claimable = sa.or_(
            InboxUpload.state == "queued",
            sa.and_(InboxUpload.state == "ingesting", InboxUpload.lease < now),
        )
        with self.db.session() as session:
            candidates = list(
                session.scalars(
                    sa.select(InboxUpload.pk)
                    .where(InboxUpload.kind == "data", claimable)
                    .order_by(InboxUpload.pk)
                    .limit(5)
                )
            )
        for pk in candidates:
            with self.db.session() as session:
                won = session.execute(
                    sa.update(InboxUpload)
                    .where(InboxUpload.pk == pk, claimable)
                    .values(
                        state="ingesting",
                        worker_id=self.worker_id,
                        lease=lease,
                        attempts=InboxUpload.attempts + 1,
                    )
                ).rowcount
            if won == 1:
                with self.db.session() as session:
                    row = session.get(InboxUpload, pk)
                    session.expunge(row)
                    return row
        return None

    def renew(self, pk: int) -> None:
        lease = utcnow() + dt.timedelta(seconds=self.settings.ingest_lease_seconds)
        with self.db.session() as session:
            session.execute(
                sa.update(InboxUpload)
                .where(InboxUpload.pk == pk, InboxUpload.worker_id == self.worker_id)
                .values(lease=lease)
            )

    def run_once(self) -> InboxUpload | None:
        """Claim one upload and ingest it; None when the queue is empty."""
        row = self.claim()
        if row is None:
            return None
        self.process(row)
        with self.db.session() as session:
            done = session.get(InboxUpload, row.pk)
            session.expunge(done)
            return done

    def work(self, *, once: bool = False, idle_exit: float | None = None, poll: float = 1.0) -> int:
        """Ingest until stopped (``once``: until the queue is empty). Returns the count."""
        done, idle_since = 0, time.monotonic()
        while True:
            row = self.run_once()
            if row is not None:
                done += 1
                idle_since = time.monotonic()
                continue
            if once or (idle_exit is not None and time.monotonic() - idle_since > idle_exit):
                return done
            time.sleep(poll)

    # ------------------------------------------------------------ the pipeline
    def process(self, row: InboxUpload) -> None:
        try:
            self._pipeline(row)
        except Rejected as exc:
            self._reject(row, str(exc))
        except Exception:  # noqa: BLE001 - anything else: retried, then rejected
            logger.exception("ingest of upload %s failed", row.id)
            if row.attempts >= MAX_ATTEMPTS:
                self._reject(row, "the node could not ingest this file; an operator was alerted")
            else:
                with self.db.session() as session:  # claimable again at once
                    session.execute(
                        sa.update(InboxUpload)
                        .where(InboxUpload.pk == row.pk, InboxUpload.state == "ingesting")
                        .values(state="queued", worker_id="", lease=None)
                    )

    @contextlib.contextmanager
    def _keep_lease(self, pk: int):
        """Renew the upload's lease from a thread while a step that cannot report
        progress (the Beacon load) runs."""
        stop = threading.Event()
        every = max(0.2, self.settings.ingest_lease_seconds / 3)

        def renew() -> None:
            while not stop.wait(every):
                with contextlib.suppress(Exception):  # the next renewal tries again
                    self.renew(pk)

        thread = threading.Thread(target=renew, name=f"lease-{pk}", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()

    def _bar(self, row: InboxUpload):
        """The upload's progress bar: its bytes checked, archived, then compared."""
        from tqdm import tqdm

        return tqdm(
            total=3 * int(row.declared_size),
            unit="B",
            unit_scale=True,
            desc=f"ingest {row.filename}",
            disable=not self.progress,
            leave=False,
        )

    def _pipeline(self, row: InboxUpload) -> None:
        if row.beacon_state == "loading" and self._registered(row) is not None:
            self._beacon(row)  # registered before the worker stopped: the load resumes
            return
        with self._bar(row) as bar:
            self._archive_and_register(row, bar.update)
        if row.beacon:
            self._beacon(row)

    def _registered(self, row: InboxUpload) -> int | None:
        """The DataFile row of the upload's archive copy (None: not registered)."""
        with self.db.session() as session:
            location = session.get(InboxUpload, row.pk).archive_location
            if not location:
                return None
            return session.scalar(sa.select(DataFile.pk).where(DataFile.location == location))

    def _archive_and_register(self, row: InboxUpload, advance: Callable[[int], None]) -> None:
        settings = self.settings
        path = row.location
        if inbox_size(settings, path) is None:
            raise Rejected("the uploaded bytes are no longer in the inbox")
        result = scan(settings, path, renew=lambda: self.renew(row.pk), advance=advance)
        self.renew(row.pk)
        if row.beacon and result.format not in ("VCF", "BCF"):
            raise Rejected(
                f"beacon: true loads genotypes from a VCF or BCF; the decrypted file is a "
                f"{result.format}"
            )
        kind = INDEX_KINDS[result.format]
        index_bytes = result.index
        index_row = None
        if row.index_upload:
            with self.db.session() as session:
                index_row = session.scalar(
                    sa.select(InboxUpload).where(InboxUpload.id == row.index_upload)
                )
                session.expunge(index_row)
            submitted = decrypt_small(settings, index_row.location)
            if not same_index(kind, result.index, submitted):
                raise Rejected(
                    f"the submitted index ({index_row.filename}) does not describe this "
                    f"{result.format} file: its chunks differ from the file's own"
                )
            index_bytes = submitted
        accession = row.accession or accession_for(row.pk)
        object_id = row.object_id or accession
        with self.db.session() as session:
            session.execute(
                sa.update(InboxUpload)
                .where(InboxUpload.pk == row.pk)
                .values(
                    accession=accession,
                    format=result.format,
                    plain_size=result.size,
                    plain_sha256=result.sha256,
                    plain_md5=result.md5,
                )
            )
            clash = session.scalar(
                sa.select(DataFile).where(
                    DataFile.object_id == object_id, DataFile.format == result.format
                )
            )
            if clash is not None and clash.sha256 != result.sha256:
                raise Rejected(
                    f"object {object_id} ({result.format}) is already registered with other content"
                )
        base = (
            settings.effective_archive_dir
            / row.dataset_id
            / (accession + EXTENSIONS[result.format])
        )
        target = Path(str(base) + ".c4gh")
        index_target = Path(str(base) + INDEX_EXT[kind] + ".c4gh")
        archive(settings, path, result, target, advance)
        encrypted_index = encrypt_small(settings, index_bytes)
        write_atomic(index_target, lambda fh: fh.write(encrypted_index))
        lay = compute_layout(settings, target, result, kind, index_bytes)
        write_atomic(Path(str(base) + ".layout"), lambda fh: fh.write(lay.dumps()))
        self.renew(row.pk)
        self._register(
            row, result, object_id, accession, target, index_target, index_bytes, index_row
        )
        remove_bytes(settings, row)
        if index_row is not None:
            remove_bytes(settings, index_row)

    def _register(
        self,
        row,
        result: Scan,
        object_id,
        accession,
        target: Path,
        index_target: Path,
        index_bytes: bytes,
        index_row,
    ) -> None:
        st, ist = target.stat(), index_target.stat()
        values = dict(
            dataset_id=row.dataset_id,
            location=str(target),
            format=result.format,
            index_location=str(index_target),
            index_format=INDEX_KINDS[result.format],
            reference="",
            size=result.size,
            mtime_ns=st.st_mtime_ns,
            sha256=result.sha256,
            md5=result.md5,
            index_size=len(index_bytes),
            index_mtime_ns=ist.st_mtime_ns,
            index_sha256=hashlib.sha256(index_bytes).hexdigest(),
            index_md5=hashlib.md5(index_bytes).hexdigest(),  # noqa: S324 - DRS checksum
        )
        with self.db.session() as session:
            existing = session.scalar(
                sa.select(DataFile).where(
                    DataFile.object_id == object_id, DataFile.format == result.format
                )
            )
            if existing is None:
                session.add(DataFile(object_id=object_id, **values))
            else:
                for k, v in values.items():
                    setattr(existing, k, v)
            done = (
                {"beacon_state": "loading"}  # step 7 follows, under the same claim
                if row.beacon
                else {"state": "ingested", "lease": None}
            )
            won = session.execute(
                sa.update(InboxUpload)
                .where(InboxUpload.pk == row.pk, InboxUpload.state == "ingesting")
                .values(archive_location=str(target), reason="", **done)
            ).rowcount
            if won != 1:
                raise RuntimeError("the upload was taken over by another worker")
            if index_row is not None:
                session.execute(
                    sa.update(InboxUpload)
                    .where(InboxUpload.pk == index_row.pk)
                    .values(state="ingested", accession=accession)
                )
        query = {"upload": row.id, "accession": accession}
        query |= {"format": result.format, "size": result.size, "sha256": result.sha256}
        self._audit(row, object_id, query)
        logger.info("ingested upload %s as %s", row.id, accession)

    def _audit(
        self, row: InboxUpload, object_id: str, query: dict, action: str = "ingest", **outcome
    ) -> None:
        """The audit row of an upload's ingest (granted, unless ``outcome`` says not)."""
        where = {"dataset_id": row.dataset_id, "object_id": object_id}
        audit(self.db, row.submitter, action, query, **where, **outcome)

    # ------------------------------------------------------------ step 7
    def _beacon(self, row: InboxUpload) -> None:
        """Load the registered file into the dataset's Beacon from its archived copy,
        decrypted in memory; then the upload is ``ingested``."""
        from server.beacon.vcf import load_vcf
        from server.errors import InvalidInput, NotFound
        from server.storage import for_location

        with self.db.session() as session:
            current = session.get(InboxUpload, row.pk)
            session.expunge(current)
        location = current.archive_location
        label = Path(location).name[: -len(".c4gh")]  # the accession's file name
        object_id = current.object_id or current.accession
        query = {"upload": row.id, "accession": current.accession}
        try:
            with self._keep_lease(row.pk), for_location(location, self.settings).open() as fh:
                loaded = load_vcf(
                    self.db,
                    label,
                    row.dataset_id,
                    stream=fh,
                    sha256=current.plain_sha256,
                    single=None,
                    progress=self.progress,
                )
        except (InvalidInput, NotFound) as exc:
            reason = f"the Beacon cannot load this file: {exc}"
            self._audit(
                row, object_id, query | {"reason": reason[:500]}, "ingest.beacon", outcome="error"
            )
            raise Rejected(reason) from None
        state = "unchanged" if loaded.status == "unchanged" else "loaded"
        with self.db.session() as session:
            won = session.execute(
                sa.update(InboxUpload)
                .where(InboxUpload.pk == row.pk, InboxUpload.state == "ingesting")
                .values(state="ingested", beacon_state=state, lease=None)
            ).rowcount
            if won != 1:
                raise RuntimeError("the upload was taken over by another worker")
        query |= {"beacon": state, "status": loaded.status, "load": loaded.load_id}
        query |= {"kind": loaded.kind}
        query |= {"records": loaded.records, "variants": loaded.items}
        self._audit(row, object_id, query, "ingest.beacon")
        logger.info("upload %s: Beacon %s (%s)", row.id, state, loaded.describe())

    def _unregister(self, current: InboxUpload) -> None:
        """Undo the registration of an upload whose Beacon step failed: its DRS
        object goes, and whatever the Beacon staged of it."""
        from server.beacon.vcf import abandon

        abandon(self.db, current.dataset_id, current.plain_sha256)
        with self.db.session() as session:
            session.execute(
                sa.delete(DataFile).where(DataFile.location == current.archive_location)
            )

    def _reject(self, row: InboxUpload, reason: str) -> None:
        with self.db.session() as session:
            current = session.get(InboxUpload, row.pk)
            session.expunge(current)
        if current.beacon_state == "loading":  # registered, then the Beacon step failed
            self._unregister(current)
        with self.db.session() as session:
            current = session.get(InboxUpload, row.pk)
            if current.beacon_state == "loading":
                current.beacon_state = "failed"
            accession = current.accession
            registered = (
                session.scalar(
                    sa.select(DataFile.pk).where(DataFile.location == current.archive_location)
                )
                if current.archive_location
                else None
            )
            if registered is None:  # never leave an archive copy of a rejected file
                for found in settings_archive(self.settings, row.dataset_id, accession):
                    found.unlink(missing_ok=True)
            current.state, current.reason, current.lease = "rejected", reason, None
        remove_bytes(self.settings, row)
        query = {"upload": row.id, "reason": reason[:500]}
        self._audit(row, row.id, query, outcome="error", status=400)
        logger.warning("rejected upload %s: %s", row.id, reason)


def settings_archive(settings: Settings, dataset_id: str, accession: str) -> list[Path]:
    """The archive files of an accession (none without one)."""
    if not accession:
        return []
    directory = settings.effective_archive_dir / dataset_id
    return sorted(directory.glob(f"{accession}.*")) if directory.is_dir() else []


def list_uploads(db: Database, dataset_id: str | None = None) -> list[InboxUpload]:
    with db.session() as session:
        query = sa.select(InboxUpload).order_by(InboxUpload.pk)
        if dataset_id:
            query = query.where(InboxUpload.dataset_id == dataset_id)
        rows = list(session.scalars(query))
        session.expunge_all()
        return rows


def enqueue_local(
    settings: Settings,
    db: Database,
    path: Path,
    dataset_id: str,
    *,
    object_id: str = "",
    index: Path | None = None,
    operator: str,
    beacon: bool = False,
) -> InboxUpload:
    """``genomeport files add FILE.c4gh``: a local encrypted file queued as an upload
    (copied into the inbox first, so the operator's file is never moved or changed)."""
    from server.inbox.service import file_sha256, inbox_path
    from server.registry import get_dataset

    with db.session() as session:
        get_dataset(session, dataset_id)
    rows = []
    for kind, src in (("index", index), ("data", path)):
        if src is None:
            continue
        upload_id = uuid.uuid4().hex
        dest = inbox_path(settings, dataset_id, upload_id)
        dest.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        shutil.copyfile(src, dest)
        os.chmod(dest, 0o600)
        size = dest.stat().st_size
        with db.session() as session:
            row = InboxUpload(
                id=upload_id,
                dataset_id=dataset_id,
                submitter=operator,
                filename=src.name,
                kind=kind,
                index_upload=rows[0].id if (kind == "data" and rows) else "",
                object_id=object_id if kind == "data" else "",
                beacon=beacon and kind == "data",
                declared_size=size,
                declared_sha256=file_sha256(dest),
                received=size,
                location=str(dest),
                state="queued" if kind == "data" else "received",
            )
            session.add(row)
            session.flush()
            session.expunge(row)
        rows.append(row)
        query = {"filename": src.name, "size": size, "kind": kind}
        audit(db, operator, "upload.local", dataset_id=dataset_id, object_id=upload_id, query=query)
    return rows[-1]
