"""The registry of datasets and data files.

Registering a file checks that it opens and has an index, that the index
belongs to it (``server.genomics.indexcheck``: references, lengths, and a
sample of offsets landing on real records), computes its checksums (with a
progress bar) and only then writes one row in one transaction: an
interrupted ``files add`` leaves no half-written record. The row keeps the
size and modification time of the file and of its index, which the data
plane compares before serving either. Adding the same file again changes
nothing; a file whose bytes changed since it was registered is refused unless
``update=True``. ``verify_files`` re-hashes registered files on demand.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import pysam
import sqlalchemy as sa
from sqlalchemy.orm import Session

from server.db import Database
from server.db.tables import DataFile, Dataset
from server.errors import Conflict, InvalidInput, NotFound
from server.genomics import indexcheck
from server.storage import is_local

logger = logging.getLogger(__name__)

ACCESS_LEVELS = ("public", "registered", "controlled")
FORMATS = ("BAM", "CRAM", "VCF", "BCF")
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
# index file suffixes tried for each format, in order
INDEX_SUFFIXES = {
    "BAM": ((".bai", "BAI"), (".csi", "CSI")),
    "CRAM": ((".crai", "CRAI"),),
    "VCF": ((".tbi", "TBI"), (".csi", "CSI")),
    "BCF": ((".csi", "CSI"),),
}
_STRIP = re.compile(r"(\.vcf\.gz|\.vcf\.bgz|\.bcf|\.bam|\.cram)$", re.IGNORECASE)


def check_id(value: str, what: str = "id") -> str:
    if not _ID.match(value or ""):
        raise InvalidInput(
            f"invalid {what} {value!r}: use 1-128 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return value


# ---------------------------------------------------------------- datasets
def add_dataset(
    db: Database,
    dataset_id: str,
    *,
    access: str,
    name: str = "",
    assembly: str = "",
    description: str = "",
    grant_value: str = "",
) -> tuple[Dataset, str]:
    """Create or update a dataset. Returns the row and "created"/"updated"/"unchanged"."""
    check_id(dataset_id, "dataset id")
    if access not in ACCESS_LEVELS:
        raise InvalidInput(f"access must be one of {', '.join(ACCESS_LEVELS)}")
    wanted = {
        "access": access,
        "name": name or dataset_id,
        "assembly": assembly,
        "description": description,
        "grant_value": grant_value or dataset_id,
    }
    with db.session() as session:
        row = session.get(Dataset, dataset_id)
        if row is None:
            row = Dataset(id=dataset_id, **wanted)
            session.add(row)
            return row, "created"
        changed = False
        for key, value in wanted.items():
            if key in ("name", "assembly", "description") and not value:
                continue
            if getattr(row, key) != value:
                setattr(row, key, value)
                changed = True
        return row, "updated" if changed else "unchanged"


def get_dataset(session: Session, dataset_id: str) -> Dataset:
    row = session.get(Dataset, dataset_id)
    if row is None:
        raise NotFound(f"no dataset {dataset_id!r}")
    return row


def list_datasets(session: Session) -> list[Dataset]:
    return list(session.scalars(sa.select(Dataset).order_by(Dataset.id)))


def file_counts(session: Session) -> dict[str, tuple[int, int]]:
    """``{dataset id: (object ids, files)}`` for every dataset with files."""
    query = sa.select(
        DataFile.dataset_id, sa.func.count(sa.distinct(DataFile.object_id)), sa.func.count()
    ).group_by(DataFile.dataset_id)
    return {dataset: (objects, n) for dataset, objects, n in session.execute(query)}


# ---------------------------------------------------------------- files
def files_for_object(session: Session, object_id: str) -> list[DataFile]:
    return list(
        session.scalars(
            sa.select(DataFile).where(DataFile.object_id == object_id).order_by(DataFile.format)
        )
    )


def list_files(session: Session, dataset_id: str | None = None) -> list[DataFile]:
    query = sa.select(DataFile).order_by(DataFile.object_id, DataFile.format)
    if dataset_id:
        query = query.where(DataFile.dataset_id == dataset_id)
    return list(session.scalars(query))


# What the decompressed start of a BGZF file begins with, by format.
BGZF_MAGIC = {"BAM": b"BAM\x01", "BCF": b"BCF", "VCF": b"##fileformat=VCF"}
MAGIC_BYTES = max(len(magic) for magic in BGZF_MAGIC.values())


def bgzf_format(magic: bytes) -> str | None:
    """BAM, BCF or VCF from the first decompressed bytes of a BGZF file (None: neither)."""
    return next((fmt for fmt, start in BGZF_MAGIC.items() if magic.startswith(start)), None)


def detect_format(path: Path) -> str:
    """BAM, CRAM, VCF (BGZF-compressed) or BCF, from the file's own bytes."""
    with open(path, "rb") as fh:
        head = fh.read(4)
    if head.startswith(b"CRAM"):
        return "CRAM"
    if head[:2] != b"\x1f\x8b":
        raise InvalidInput(f"{path}: not a BAM, CRAM, BGZF-compressed VCF or BCF file")
    try:
        with pysam.BGZFile(str(path), "rb") as bg:
            magic = bg.read(MAGIC_BYTES)
    except OSError as exc:
        raise InvalidInput(f"{path}: not BGZF-compressed ({exc})") from None
    fmt = bgzf_format(magic)
    if fmt is None:
        raise InvalidInput(f"{path}: unrecognised content (not BAM, CRAM, VCF or BCF)")
    return fmt


def find_index(path: Path, fmt: str) -> tuple[Path, str]:
    for suffix, kind in INDEX_SUFFIXES[fmt]:
        for candidate in (Path(str(path) + suffix), path.with_suffix(suffix)):
            if candidate.is_file():
                return candidate, kind
    wanted = " or ".join(s for s, _ in INDEX_SUFFIXES[fmt])
    raise InvalidInput(
        f"{path}: no index found (expected {path.name}{wanted.split(' or ')[0]}, {wanted})"
    )


def check_opens(path: Path, fmt: str, index: Path, reference: Path | None) -> None:
    """Open the file through its index and read one record region, or raise."""
    try:
        if fmt in ("BAM", "CRAM"):
            kwargs = {"index_filename": str(index)}
            if fmt == "CRAM" and reference:
                kwargs["reference_filename"] = str(reference)
            with pysam.AlignmentFile(str(path), "rc" if fmt == "CRAM" else "rb", **kwargs) as fh:
                if fh.nreferences:
                    for _ in fh.fetch(fh.references[0], 0, 1):
                        break
                for _ in fh.head(1):
                    break
        else:
            with pysam.VariantFile(str(path), index_filename=str(index)) as fh:
                contigs = list(fh.header.contigs)
                if contigs:
                    for _ in fh.fetch(contigs[0], 0, 1):
                        break
    except (OSError, ValueError) as exc:
        hint = (
            " (a CRAM needs --reference FASTA unless its reference is embedded)"
            if fmt == "CRAM"
            else ""
        )
        raise InvalidInput(f"{path}: cannot be read with its index: {exc}{hint}") from None


def check_index(path: Path, fmt: str, index: Path, index_kind: str) -> None:
    """Refuse an index that does not describe ``path`` (see ``server.genomics.indexcheck``)."""
    try:
        indexcheck.check(path, fmt, index, index_kind)
    except indexcheck.IndexMismatch as exc:
        raise InvalidInput(
            f"{path}: the index {index.name} does not belong to this file: {exc}. "
            f"Rebuild it (samtools index / bcftools index / tabix) or put the "
            f"file's own index beside it"
        ) from None


def checksums(path: Path, progress: Callable[[int], None] | None = None) -> tuple[str, str]:
    sha, md5 = hashlib.sha256(), hashlib.md5()  # noqa: S324 - md5 is a DRS checksum type
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            sha.update(chunk)
            md5.update(chunk)
            if progress:
                progress(len(chunk))
    return sha.hexdigest(), md5.hexdigest()


@dataclass
class AddResult:
    path: Path
    object_id: str
    format: str
    outcome: str  # created | unchanged | updated


def default_object_id(path: Path) -> str:
    return _STRIP.sub("", path.name)


def add_files(
    db: Database,
    paths: Iterable[str | os.PathLike],
    dataset_id: str,
    *,
    object_id: str | None = None,
    reference: str | None = None,
    update: bool = False,
    verify: bool = False,
    progress: bool = True,
) -> list[AddResult]:
    """Register files, one transaction per file, after every check passed."""
    from tqdm import tqdm

    with db.session() as session:
        get_dataset(session, dataset_id)
    paths = [Path(p).resolve() for p in paths]
    for path in paths:
        if not path.is_file():
            raise InvalidInput(f"{path}: no such file")
    ref = Path(reference).resolve() if reference else None
    if ref is not None and not ref.is_file():
        raise InvalidInput(f"{ref}: no such reference FASTA")
    if object_id:
        check_id(object_id, "object id")

    results = []
    for path in paths:
        fmt = detect_format(path)
        index, index_kind = find_index(path, fmt)
        oid = object_id or default_object_id(path)
        check_id(oid, "object id")
        check_index(path, fmt, index, index_kind)  # first: pysam trusts any index it is given
        check_opens(path, fmt, index, ref if fmt == "CRAM" else None)
        stat = path.stat()
        istat = index.stat()
        with db.session() as session:
            existing = session.scalar(
                sa.select(DataFile).where(DataFile.object_id == oid, DataFile.format == fmt)
            )
        if (
            existing is not None
            and not verify
            and existing.location == str(path)
            and existing.size == stat.st_size
            and existing.mtime_ns == stat.st_mtime_ns
            and existing.index_location == str(index)
            and existing.index_size == istat.st_size
            and existing.index_mtime_ns == istat.st_mtime_ns
        ):
            results.append(AddResult(path, oid, fmt, "unchanged"))
            continue
        total = stat.st_size + istat.st_size
        with tqdm(
            total=total,
            unit="B",
            unit_scale=True,
            desc=path.name,
            disable=not progress,
            leave=False,
        ) as bar:
            sha, md5 = checksums(path, bar.update)
            isha, imd5 = checksums(index, bar.update)
        values = dict(
            dataset_id=dataset_id,
            location=str(path),
            format=fmt,
            index_location=str(index),
            index_format=index_kind,
            reference=str(ref) if (ref and fmt == "CRAM") else "",
            size=stat.st_size,
            mtime_ns=stat.st_mtime_ns,
            sha256=sha,
            md5=md5,
            index_size=istat.st_size,
            index_mtime_ns=istat.st_mtime_ns,
            index_sha256=isha,
            index_md5=imd5,
        )
        with db.session() as session:
            row = session.scalar(
                sa.select(DataFile).where(DataFile.object_id == oid, DataFile.format == fmt)
            )
            if row is None:
                session.add(DataFile(object_id=oid, **values))
                outcome = "created"
            else:
                same_bytes = row.sha256 == sha and row.size == stat.st_size
                relocated = row.location != str(path)
                if relocated and not update:
                    raise Conflict(
                        f"{oid} ({fmt}) is already registered at {row.location}; "
                        "pass --update to point it at this file"
                    )
                if not same_bytes and not update:
                    raise Conflict(
                        f"{path}: its content changed since it was registered "
                        f"(sha-256 {row.sha256[:12]}... now {sha[:12]}...); "
                        "pass --update to accept it"
                    )
                for key, value in values.items():
                    setattr(row, key, value)
                outcome = "updated" if (relocated or not same_bytes) else "unchanged"
        results.append(AddResult(path, oid, fmt, outcome))
    return results


# ---------------------------------------------------------------- verify
@dataclass
class VerifyResult:
    object_id: str
    format: str
    problems: list[str]  # empty: the file and its index are as registered

    @property
    def ok(self) -> bool:
        return not self.problems


def _compare(
    what: str, path: str, size: int, mtime_ns: int, sha256: str, md5: str, bar, settings=None
) -> tuple[list[str], int | None]:
    """Problems with one registered file, and its mtime when its bytes are intact."""
    if path.endswith(".c4gh"):
        return _compare_crypt4gh(what, path, size, mtime_ns, sha256, md5, bar, settings)
    if not is_local(path):
        return [], None  # object storage: not re-hashed
    try:
        st = os.stat(path)
    except OSError:
        bar.update(size)
        return [f"{what} {path} is missing"], None
    problems = []
    if st.st_size != size:
        problems.append(f"{what} size {size:,} -> {st.st_size:,} bytes")
    if mtime_ns and st.st_mtime_ns != mtime_ns:
        problems.append(f"{what} modification time changed")
    sha, digest = checksums(Path(path), bar.update)
    problems += _digest_problems(what, sha256, md5, sha, digest)
    if st.st_size < size:
        bar.update(size - st.st_size)
    intact = st.st_size == size and sha == sha256
    return problems, (st.st_mtime_ns if intact else None)


def _digest_problems(what: str, sha256: str, md5: str, sha: str, digest: str) -> list[str]:
    problems = []
    if sha != sha256:
        problems.append(f"{what} sha-256 {sha256[:12]}... -> {sha[:12]}...")
    if md5 and digest != md5:
        problems.append(f"{what} md5 {md5[:12]}... -> {digest[:12]}...")
    return problems


def _compare_crypt4gh(
    what: str, path: str, size: int, mtime_ns: int, sha256: str, md5: str, bar, settings
) -> tuple[list[str], int | None]:
    """An archived Crypt4GH file (``server.storage.crypt4gh``): its header must
    open with the node's keys and every data segment authenticate as it is
    decrypted, in memory, one segment at a time (so altered ciphertext is
    found, wherever it is); the plaintext's size, sha-256 and md5 are those
    registered. Nothing decrypted is written anywhere."""
    from server.c4gh.stream import NotCrypt4GH
    from server.storage import for_location

    if settings is None:
        raise InvalidInput("verifying Crypt4GH files needs the node's settings (its key)")
    try:
        raw = for_location(path, settings, raw=True).stat()
    except FileNotFoundError:
        bar.update(size)
        return [f"{what} {path} is missing"], None
    problems = []
    if mtime_ns and raw.mtime_ns != mtime_ns:
        problems.append(f"{what} modification time changed")
    sha, digest = hashlib.sha256(), hashlib.md5()  # noqa: S324 - md5 is a DRS checksum type
    read = 0
    try:
        for segment in for_location(path, settings).segments():
            sha.update(segment)
            digest.update(segment)
            read += len(segment)
            bar.update(len(segment))
    except NotCrypt4GH as exc:
        bar.update(max(0, size - read))
        problems.append(f"{what} {path}: the encrypted bytes are damaged or altered ({exc})")
        return problems, None
    if read != size:
        problems.append(f"{what} size {size:,} -> {read:,} bytes (decrypted)")
    problems += _digest_problems(what, sha256, md5, sha.hexdigest(), digest.hexdigest())
    if read < size:
        bar.update(size - read)
    intact = read == size and sha.hexdigest() == sha256
    return problems, (raw.mtime_ns if intact else None)


def verify_files(
    db: Database,
    object_ids: Iterable[str] = (),
    *,
    dataset_id: str | None = None,
    progress: bool = True,
    settings=None,
) -> list[VerifyResult]:
    """Re-hash registered files (sha-256 and md5, as at registration) and their indexes.

    An archived Crypt4GH file (and its index) is decrypted in memory as it is
    read, every segment authenticated, and its plaintext re-hashed
    (``settings``: the node's, for its key).

    Nothing is changed, except that an index registered before its
    modification time was recorded (revision 0003_drs_integrity) gets it, once
    its bytes are shown intact.
    """
    from tqdm import tqdm

    wanted = list(object_ids)
    with db.session() as session:
        query = sa.select(DataFile).order_by(DataFile.object_id, DataFile.format)
        if wanted:
            query = query.where(DataFile.object_id.in_(wanted))
        if dataset_id:
            get_dataset(session, dataset_id)
            query = query.where(DataFile.dataset_id == dataset_id)
        rows = list(session.scalars(query))
        session.expunge_all()
    missing = sorted(set(wanted) - {r.object_id for r in rows})
    if missing:
        raise NotFound(f"no registered file with object id {', '.join(missing)}")
    results = []
    total = sum(int(r.size) + int(r.index_size) for r in rows)
    with tqdm(
        total=total, unit="B", unit_scale=True, desc="verifying", disable=not progress
    ) as bar:
        for row in rows:
            problems, _ = _compare(
                "file",
                row.location,
                int(row.size),
                int(row.mtime_ns),
                row.sha256,
                row.md5,
                bar,
                settings,
            )
            iproblems, imtime = _compare(
                "index",
                row.index_location,
                int(row.index_size),
                int(row.index_mtime_ns or 0),
                row.index_sha256,
                row.index_md5,
                bar,
                settings,
            )
            if not row.index_mtime_ns and imtime is not None and not iproblems:
                with db.session() as session:
                    session.get(DataFile, row.pk).index_mtime_ns = imtime
            results.append(VerifyResult(row.object_id, row.format, problems + iproblems))
    return results
